//! Following a log file (`/var/log/mail.log`, or Postfix's own `maillog_file`) across
//! growth, rotation by rename, copytruncate and restarts, handing out each complete line once.
//!
//! The caller drives it on its own clock: [`FileSource::read`] reads what is there now, at most
//! `max_bytes`, and returns; nothing here sleeps, spawns or watches. After it has flushed the
//! counts the lines produced, the caller saves [`FileSource::position`] ([`Position::save`]),
//! and on the next start hands the loaded position back to [`FileSource::open`].
//!
//! How a file is recognised (the shape of vector's `file-source`):
//! - by device and inode, to notice a rename rotation (logrotate's default `create`, Debian's
//!   rsyslog setup, `postfix logrotate`): the path names a new inode. The old file is finished
//!   to its end through the descriptor we hold, then the new one is read from 0. We move on
//!   only once the new file has bytes in it: a syslog daemon keeps appending to the old file
//!   until it is told to reopen (rsyslog's HUP in `postrotate`), and writes to the new one only
//!   after, so by then the old file has all it will get.
//! - by a fingerprint of its first line, so that a new file that got an old inode number, or a
//!   file truncated and rewritten in place, is not taken for the one we were reading.
//! - by that fingerprint alone, to find logrotate's copy: with `copytruncate` the file is
//!   copied to `path.1` (another inode) and then truncated in place. When the file we read
//!   was truncated, or when a restart finds it so, and `path.1` starts with its first line and
//!   is at least as long as what we had read, the rest of what we had not read yet is there:
//!   the copy is finished from our offset, then `path` is read from 0, as after a rename.
//!
//! What is lost, knowingly:
//! - copytruncate: lines written between logrotate's copy and its truncate are in neither
//!   file (logrotate documents that loss for the mode); with no copy at `path.1` (compressed
//!   at once, or another tool's truncate), whatever we had not read when the file was
//!   truncated.
//! - lines appended to a rotated file after the new file got bytes (a second writer that
//!   reopens late), and a whole file rotated past us twice between two reads.
//! - on a restart, the rest of a saved file that is no longer at `path` or `path.1` (renamed
//!   to `path.2.gz`, or to `postfix logrotate`'s dated name): reported as
//!   [`Event::SavedGone`].

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::lines::{LineSplitter, Piece};

/// The longest line handed out, in bytes. Postfix writes at most about 2,000 characters and
/// rsyslog cuts at 8 KiB by default; a longer line is counted ([`Progress::too_long`]) and
/// skipped, never held whole.
pub const MAX_LINE: usize = 64 * 1024;

/// The most bytes one `read(2)` asks for: the one read buffer a source holds.
const READ_CHUNK: usize = 64 * 1024;

/// The most bytes of a file's start its fingerprint covers.
pub const FINGERPRINT_BYTES: usize = 256;

/// A saved position file larger than this is not ours.
const MAX_POSITION_FILE: u64 = 4096;

/// Where to start when there is no saved position (the first run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// After the last complete line present at the first read: only what is logged from now
    /// on is counted.
    End,
    /// From the first line of the file.
    Beginning,
}

/// A place in a file that survives a restart: which file (device, inode and fingerprint)
/// and how far into it (`offset`, always just after a complete line).
///
/// `fingerprint` is the 64-bit FNV-1a hash of the file's first line including its `\n`, or of
/// its first [`FINGERPRINT_BYTES`] bytes when the first line is longer. It is fixed once the
/// file holds a newline or that many bytes; before then no line has been handed out, the
/// offset is 0, and a position at offset 0 is matched by device and inode alone (resuming at
/// 0 is the same as starting over, except that a rotated `path.1` is read whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    pub fingerprint: u64,
}

/// What one [`FileSource::read`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Complete lines handed to the callback.
    pub lines: u64,
    /// Lines longer than [`MAX_LINE`], skipped to their newline (counted when it arrives, so
    /// a restart never counts one twice).
    pub too_long: u64,
    /// Bytes read from files.
    pub bytes: u64,
    /// The read stopped at `max_bytes` with more to read: call again without waiting.
    pub more: bool,
    /// What happened to the files, each said once, in order, for the caller to log.
    pub events: Vec<Event>,
}

/// Something the caller should say in its log. Each is reported once, when it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// First read: the saved position is in the file at `path`; reading resumes there.
    Resumed,
    /// First read: the saved position is in `path.1` (rotated, or copied there by
    /// copytruncate, while we were stopped); its rest comes first, then `path` from its start.
    ResumedRotated,
    /// First read: the saved position matches neither `path` nor `path.1` (the file is gone,
    /// or was truncated or replaced): `path` is read from its start, and whatever the old
    /// file held past the saved offset is not counted.
    SavedGone,
    /// `path` names no file. Said once; the file is picked up when it appears.
    Missing,
    /// `path` names a file again after [`Event::Missing`].
    Appeared,
    /// The file we read was rotated: it was finished to its end, and the new file at `path`
    /// is read from its start.
    Rotated,
    /// The file we read got shorter than what we had read, or its first line changed, and
    /// `path.1` holds no copy of it: it is read again from its start.
    Truncated,
    /// The file we read was truncated after logrotate copied it to `path.1` (copytruncate):
    /// the copy is read from where we were to its end, then `path` from its start.
    CopyTruncated,
}

/// What can go wrong with the file source and its saved position.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {}: permission denied", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot save the log position to {}", path.display())]
    SavePosition {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the log position from {}", path.display())]
    LoadPosition {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the log position in {} is not one we wrote", path.display())]
    CorruptPosition {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Follows one log file. See the module documentation for what it recognises.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    /// `path.1`, where Debian's logrotate puts the file it rotates.
    rotated: PathBuf,
    /// Until the first read finds where to start.
    start: Option<Start>,
    /// The file lines come from; `None` until one is found.
    current: Option<Reader>,
    /// Whether `path` was missing at the last read (so [`Event::Missing`] is said once).
    missing: bool,
    buf: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Start {
    saved: Option<Position>,
    start_at: StartAt,
}

/// One open file and how far into it we are.
#[derive(Debug)]
struct Reader {
    file: File,
    /// The name it was opened under, for errors.
    path: PathBuf,
    dev: u64,
    ino: u64,
    fingerprint: Option<u64>,
    /// Just after the last line handed out or skipped: what a restart resumes from.
    committed: u64,
    /// Just after the last byte read: `committed` plus the partial line held or skipped.
    read_offset: u64,
    splitter: LineSplitter,
    /// Bytes so far of a line longer than the bound.
    cut_len: u64,
    /// Started in the middle of a line (`StartAt::End` on a file whose last line was not
    /// complete): its rest is dropped, uncounted.
    skip_rest: bool,
}

impl FileSource {
    /// A source for `path`. No I/O happens here: the first [`FileSource::read`] looks for
    /// `saved` (in `path`, then in `path.1`) and reports what it found as an [`Event`].
    /// `start_at` applies only without a saved position, and only to a file present at that
    /// first read: a file that appears later is new, and read from its start.
    pub fn open(path: PathBuf, saved: Option<Position>, start_at: StartAt) -> FileSource {
        let mut rotated = path.clone().into_os_string();
        rotated.push(".1");
        FileSource {
            path,
            rotated: PathBuf::from(rotated),
            start: Some(Start { saved, start_at }),
            current: None,
            missing: false,
            buf: Vec::new(),
        }
    }

    /// Reads what is there now, at most `max_bytes`, calling `each_line` with every complete
    /// line (without its `\n`), in file order. A last line without its `\n` stays unread
    /// until the newline arrives. Linear in the bytes read; holds one read buffer and at most
    /// one partial line of at most [`MAX_LINE`] bytes.
    ///
    /// On an error, the lines already handed to `each_line` in this call stay handed out (the
    /// position is past them) but this call's [`Progress`] figures are lost; the next call
    /// goes on from there, so it can simply be retried later (a permission fixed, a disk
    /// back). The same error comes back on each call until its cause goes away: the caller
    /// says it once.
    pub fn read(
        &mut self,
        max_bytes: usize,
        mut each_line: impl FnMut(&[u8]),
    ) -> Result<Progress, SourceError> {
        let mut progress = Progress::default();
        if let Some(start) = self.start {
            self.resolve(start, &mut progress)?;
            self.start = None;
        }
        let mut named = match fs::metadata(&self.path) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(open_error(&self.path, e)),
        };
        match (&named, self.missing) {
            (None, false) => progress.events.push(Event::Missing),
            (Some(_), true) => progress.events.push(Event::Appeared),
            _ => {}
        }
        self.missing = named.is_none();
        if self.current.is_none() {
            if named.is_none() {
                return Ok(progress);
            }
            // Appeared after we started: all of it is new.
            self.current = Reader::open(&self.path)?;
        }
        if self.buf.is_empty() {
            self.buf = vec![0; READ_CHUNK];
        }
        let mut budget = max_bytes;
        while let Some(cur) = self.current.as_mut() {
            if cur.rewritten()? {
                // Taken for a rotation: the copy is finished, then `path` read from 0.
                if let Some(copy) = Reader::open_matching(&self.rotated, &cur.position(), true)? {
                    self.current = Some(copy);
                    progress.events.push(Event::CopyTruncated);
                    continue;
                }
                cur.start_over()?;
                progress.events.push(Event::Truncated);
            }
            let at_end =
                cur.read_some(&mut self.buf, &mut budget, &mut each_line, &mut progress)?;
            cur.note_fingerprint()?;
            if !at_end {
                progress.more = true;
                break;
            }
            let moved = named.as_ref().is_some_and(|meta| {
                (meta.dev(), meta.ino()) != (cur.dev, cur.ino) && meta.len() > 0
            });
            if !moved {
                break;
            }
            // Open the new file before letting go of the old one: if it vanished meanwhile,
            // the old one is still ours.
            let Some(new) = Reader::open(&self.path)? else {
                break;
            };
            cur.finish(&mut each_line, &mut progress);
            named = None;
            self.current = Some(new);
            progress.events.push(Event::Rotated);
        }
        Ok(progress)
    }

    /// Just after the last complete line handed out (or too-long line skipped): the position
    /// to save once the counts those lines produced are flushed. `None` before any file was
    /// found and without a saved position (nothing to save yet).
    pub fn position(&self) -> Option<Position> {
        match (&self.current, &self.start) {
            (Some(r), _) => Some(r.position()),
            (None, Some(start)) => start.saved,
            (None, None) => None,
        }
    }

    /// The first read: find the saved position, or apply `start_at`.
    fn resolve(&mut self, start: Start, progress: &mut Progress) -> Result<(), SourceError> {
        let Some(saved) = start.saved else {
            self.current = match start.start_at {
                StartAt::Beginning => Reader::open(&self.path)?,
                StartAt::End => Reader::open_at_end(&self.path)?,
            };
            return Ok(());
        };
        if let Some(r) = Reader::open_matching(&self.path, &saved, false)? {
            self.current = Some(r);
            progress.events.push(Event::Resumed);
        } else if let Some(r) = Reader::open_matching(&self.rotated, &saved, true)? {
            // Once it is read to its end, `read` moves on to `path` as after any rotation.
            self.current = Some(r);
            progress.events.push(Event::ResumedRotated);
        } else {
            self.current = Reader::open(&self.path)?;
            progress.events.push(Event::SavedGone);
        }
        Ok(())
    }
}

impl Reader {
    /// `path` from its start; `None` when it does not exist.
    fn open(path: &Path) -> Result<Option<Reader>, SourceError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(open_error(path, e)),
        };
        let meta = file.metadata().map_err(|e| open_error(path, e))?;
        let fingerprint = fingerprint(&file).map_err(|e| read_error(path, e))?;
        Ok(Some(Reader {
            file,
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint,
            committed: 0,
            read_offset: 0,
            splitter: LineSplitter::new(MAX_LINE),
            cut_len: 0,
            skip_rest: false,
        }))
    }

    /// `path` after its last complete line.
    fn open_at_end(path: &Path) -> Result<Option<Reader>, SourceError> {
        let Some(mut r) = Reader::open(path)? else {
            return Ok(None);
        };
        let len = r.file.metadata().map_err(|e| read_error(path, e))?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            let n = r
                .file
                .read_at(&mut last, len - 1)
                .map_err(|e| read_error(path, e))?;
            r.skip_rest = n == 1 && last[0] != b'\n';
            r.seek(len)?;
        }
        Ok(Some(r))
    }

    /// `path` at `saved.offset` if it is the file `saved` was taken in or, with `copy`, a
    /// copy of it (another inode with the same first line, at least that long).
    fn open_matching(
        path: &Path,
        saved: &Position,
        copy: bool,
    ) -> Result<Option<Reader>, SourceError> {
        let Some(mut r) = Reader::open(path)? else {
            return Ok(None);
        };
        let len = r.file.metadata().map_err(|e| read_error(path, e))?.len();
        let same_first_line = r.fingerprint == Some(saved.fingerprint);
        let same =
            (r.dev, r.ino) == (saved.dev, saved.ino) && (saved.offset == 0 || same_first_line);
        // Before its first line nothing was read: no copy holds anything we still need.
        let a_copy = copy && saved.offset > 0 && same_first_line;
        if !(same || a_copy) || len < saved.offset {
            return Ok(None);
        }
        r.seek(saved.offset)?;
        Ok(Some(r))
    }

    fn seek(&mut self, offset: u64) -> Result<(), SourceError> {
        self.file
            .seek(SeekFrom::Start(offset))
            .map_err(|e| read_error(&self.path, e))?;
        self.committed = offset;
        self.read_offset = offset;
        self.splitter = LineSplitter::new(MAX_LINE);
        self.cut_len = 0;
        Ok(())
    }

    /// Just after the last line handed out, in this file.
    fn position(&self) -> Position {
        Position {
            dev: self.dev,
            ino: self.ino,
            offset: self.committed,
            fingerprint: self.fingerprint.unwrap_or(0),
        }
    }

    /// Whether the file was truncated (shorter than what we read) or rewritten in place
    /// (another first line) since the last read.
    fn rewritten(&self) -> Result<bool, SourceError> {
        let len = self
            .file
            .metadata()
            .map_err(|e| read_error(&self.path, e))?
            .len();
        Ok(len < self.read_offset
            || match self.fingerprint {
                Some(known) => {
                    fingerprint(&self.file).map_err(|e| read_error(&self.path, e))? != Some(known)
                }
                None => false,
            })
    }

    /// Reads the file again from 0, as a new one.
    fn start_over(&mut self) -> Result<(), SourceError> {
        self.seek(0)?;
        self.skip_rest = false;
        self.fingerprint = None;
        self.note_fingerprint()
    }

    /// Takes the fingerprint once the file holds enough for one.
    fn note_fingerprint(&mut self) -> Result<(), SourceError> {
        if self.fingerprint.is_none() {
            self.fingerprint = fingerprint(&self.file).map_err(|e| read_error(&self.path, e))?;
        }
        Ok(())
    }

    /// Reads until the end of the file or of the budget; `true` at the end of the file.
    fn read_some<F: FnMut(&[u8])>(
        &mut self,
        buf: &mut [u8],
        budget: &mut usize,
        each: &mut F,
        progress: &mut Progress,
    ) -> Result<bool, SourceError> {
        loop {
            if *budget == 0 {
                return Ok(false);
            }
            let want = buf.len().min(*budget);
            let n = match self.file.read(&mut buf[..want]) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(&self.path, e)),
            };
            *budget -= n;
            self.read_offset += n as u64;
            progress.bytes += n as u64;
            self.take(&buf[..n], each, progress);
        }
    }

    /// Splits bytes just read into lines, moving `committed` past each one handed out.
    fn take<F: FnMut(&[u8])>(&mut self, mut chunk: &[u8], each: &mut F, progress: &mut Progress) {
        if self.skip_rest {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.committed += i as u64 + 1;
                    self.skip_rest = false;
                    chunk = &chunk[i + 1..];
                }
                None => return,
            }
        }
        let Reader {
            splitter,
            committed,
            cut_len,
            ..
        } = self;
        let result = splitter.pieces(chunk, |_, piece| {
            match piece {
                Piece::Line(line) => {
                    *committed += line.len() as u64 + 1;
                    progress.lines += 1;
                    each(line);
                }
                Piece::Head(head) => *cut_len = head.len() as u64,
                Piece::Tail(tail) => *cut_len += tail.len() as u64,
                Piece::End => {
                    *committed += *cut_len + 1;
                    *cut_len = 0;
                    progress.too_long += 1;
                }
            }
            Ok::<(), std::convert::Infallible>(())
        });
        result.unwrap_or_else(|never| match never {});
    }

    /// The file was rotated away and read to its end: its last line, even without a `\n`,
    /// will get no more bytes.
    fn finish<F: FnMut(&[u8])>(&mut self, each: &mut F, progress: &mut Progress) {
        if self.skip_rest {
            return;
        }
        let Reader {
            splitter,
            committed,
            cut_len,
            ..
        } = self;
        let result = splitter.finish_pieces(|_, piece| {
            match piece {
                Piece::Line(line) => {
                    *committed += line.len() as u64;
                    progress.lines += 1;
                    each(line);
                }
                Piece::End => {
                    *committed += *cut_len;
                    progress.too_long += 1;
                }
                Piece::Head(_) | Piece::Tail(_) => {}
            }
            Ok::<(), std::convert::Infallible>(())
        });
        result.unwrap_or_else(|never| match never {});
    }
}

impl Position {
    /// Writes the position to `path` so that a crash leaves either the old or the new one,
    /// never a mix: a temporary file beside it, fsync, rename over, fsync of the directory.
    pub fn save(&self, path: &Path) -> Result<(), SourceError> {
        let error = |source| SourceError::SavePosition {
            path: path.to_owned(),
            source,
        };
        let mut text = serde_json::to_vec(self)
            .map_err(io::Error::other)
            .map_err(error)?;
        text.push(b'\n');
        super::save_atomically(path, &text).map_err(error)
    }

    /// Reads a position [`Position::save`] wrote. A missing file is `Ok(None)` (the first
    /// run); a file that does not hold one is [`SourceError::CorruptPosition`], which the
    /// caller reports before starting as if there were none.
    pub fn load(path: &Path) -> Result<Option<Position>, SourceError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SourceError::LoadPosition {
                    path: path.to_owned(),
                    source: e,
                })
            }
        };
        let mut text = Vec::new();
        file.take(MAX_POSITION_FILE)
            .read_to_end(&mut text)
            .map_err(|e| SourceError::LoadPosition {
                path: path.to_owned(),
                source: e,
            })?;
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| SourceError::CorruptPosition {
                path: path.to_owned(),
                source: e,
            })
    }
}

/// The fingerprint of the file's first line (see [`Position`]), or `None` while it holds
/// neither a newline nor [`FINGERPRINT_BYTES`] bytes. Read with `pread`, so the offset we
/// read from does not move.
fn fingerprint(file: &File) -> io::Result<Option<u64>> {
    let mut head = [0u8; FINGERPRINT_BYTES];
    let mut n = 0;
    while n < head.len() {
        match file.read_at(&mut head[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = &head[..n];
    Ok(match head.iter().position(|&b| b == b'\n') {
        Some(i) => Some(fnv1a(&head[..=i])),
        None if n == FINGERPRINT_BYTES => Some(fnv1a(head)),
        None => None,
    })
}

/// FNV-1a, 64 bits: written down here because the value is saved to disk, and std's hashers
/// promise no stability across releases.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub(super) fn open_error(path: &Path, source: io::Error) -> SourceError {
    if source.kind() == io::ErrorKind::PermissionDenied {
        SourceError::PermissionDenied {
            path: path.to_owned(),
        }
    } else {
        SourceError::Open {
            path: path.to_owned(),
            source,
        }
    }
}

pub(super) fn read_error(path: &Path, source: io::Error) -> SourceError {
    SourceError::Read {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::time::Instant;

    /// Everything one or more reads handed out.
    #[derive(Debug, Default)]
    struct Got {
        lines: Vec<String>,
        too_long: u64,
        events: Vec<Event>,
    }

    /// Reads until nothing more is there now, `max_bytes` at a time.
    fn drain(src: &mut FileSource, max_bytes: usize) -> Got {
        let mut got = Got::default();
        loop {
            let before = got.lines.len();
            let p = src
                .read(max_bytes, |l| {
                    got.lines.push(String::from_utf8(l.to_vec()).unwrap())
                })
                .unwrap();
            assert_eq!(p.lines as usize, got.lines.len() - before);
            got.too_long += p.too_long;
            got.events.extend(p.events);
            if !p.more {
                return got;
            }
        }
    }

    fn append(path: &Path, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// `n` numbered lines, `prefix 0` .. `prefix n-1`, each with its newline.
    fn numbered(prefix: &str, n: usize) -> (String, Vec<String>) {
        let lines: Vec<String> = (0..n).map(|i| format!("{prefix} {i}")).collect();
        let mut text = lines.join("\n");
        text.push('\n');
        (text, lines)
    }

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        let rotated = dir.path().join("mail.log.1");
        (dir, log, rotated)
    }

    /// Lines appended between reads come out once and in order; a partial line waits for its
    /// newline, and the position never passes it.
    #[test]
    fn grows() {
        let (_dir, log, _) = setup();
        append(&log, "a\nb\n");
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        assert_eq!(drain(&mut src, 1 << 20).lines, ["a", "b"]);
        assert_eq!(drain(&mut src, 1 << 20).lines, Vec::<String>::new());

        append(&log, "c\npart");
        assert_eq!(drain(&mut src, 1 << 20).lines, ["c"]);
        assert_eq!(src.position().unwrap().offset, 6, "just after `c\\n`");
        append(&log, "ial");
        assert_eq!(drain(&mut src, 1 << 20).lines, Vec::<String>::new());
        assert_eq!(src.position().unwrap().offset, 6);
        append(&log, "\nd\n");
        // Two bytes at a time: lines cut across reads still come out whole.
        assert_eq!(drain(&mut src, 2).lines, ["partial", "d"]);
        let pos = src.position().unwrap();
        assert_eq!(pos.offset, fs::metadata(&log).unwrap().len());
        assert_eq!(pos.ino, fs::metadata(&log).unwrap().ino());
    }

    /// StartAt applies to a first run only: End skips what is there (and the rest of a line
    /// cut in the middle), Beginning reads it all.
    #[test]
    fn start_at_end_or_beginning() {
        let (_dir, log, _) = setup();
        append(&log, "old 1\nold 2\nhalf a li");
        let mut end = FileSource::open(log.clone(), None, StartAt::End);
        assert_eq!(drain(&mut end, 1 << 20).lines, Vec::<String>::new());
        let mut beginning = FileSource::open(log.clone(), None, StartAt::Beginning);
        assert_eq!(drain(&mut beginning, 1 << 20).lines, ["old 1", "old 2"]);
        append(&log, "ne\nnew\n");
        assert_eq!(drain(&mut end, 1 << 20).lines, ["new"]);
        assert_eq!(drain(&mut beginning, 1 << 20).lines, ["half a line", "new"]);
    }

    /// logrotate's `create`: the file is renamed to `.1` and a new one made, while the writer
    /// still appends to the old one until it reopens. Every line once, the old file's rest
    /// first; while the new file is empty the old one is still followed.
    #[test]
    fn rename_rotation_mid_stream() {
        let (_dir, log, rotated) = setup();
        let (text, mut want) = numbered("old", 100);
        append(&log, &text);
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        let mut got = Vec::new();
        let p = src
            .read(300, |l| got.push(String::from_utf8(l.to_vec()).unwrap()))
            .unwrap();
        assert!(p.more && !got.is_empty() && got.len() < 100);

        fs::rename(&log, &rotated).unwrap();
        File::create(&log).unwrap();
        append(&rotated, "old late 1\n");
        // The new file is still empty: the writer has not reopened, keep following the old.
        let first = drain(&mut src, 1 << 20);
        assert!(!first.events.contains(&Event::Rotated));
        got.extend(first.lines);
        append(&rotated, "old late 2\n");
        append(&log, "new 1\nnew 2\n");
        let second = drain(&mut src, 64);
        assert_eq!(second.events, [Event::Rotated]);
        got.extend(second.lines);
        want.extend(["old late 1", "old late 2", "new 1", "new 2"].map(String::from));
        assert_eq!(got, want);

        let pos = src.position().unwrap();
        assert_eq!(pos.ino, fs::metadata(&log).unwrap().ino());
        assert_eq!(pos.offset, 12);
        append(&log, "new 3\n");
        assert_eq!(drain(&mut src, 1 << 20).lines, ["new 3"]);
    }

    /// A last line without its newline in a rotated file is still a line: nothing more will
    /// be written to it.
    #[test]
    fn rotated_file_last_line_without_newline() {
        let (_dir, log, rotated) = setup();
        append(&log, "one\ntwo");
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        assert_eq!(drain(&mut src, 1 << 20).lines, ["one"]);
        fs::rename(&log, &rotated).unwrap();
        append(&log, "three\n");
        assert_eq!(drain(&mut src, 1 << 20).lines, ["two", "three"]);
    }

    /// `postfix logrotate` renames the file away and postlogd makes a new one later: the
    /// missing path is said once, the old file is still read meanwhile, the new one after.
    #[test]
    fn renamed_away_then_recreated() {
        let (dir, log, _) = setup();
        append(&log, "a\n");
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        assert_eq!(drain(&mut src, 1 << 20).lines, ["a"]);
        fs::rename(&log, dir.path().join("mail.log.20260101-000000")).unwrap();
        let dated = dir.path().join("mail.log.20260101-000000");
        append(&dated, "b\n");
        let got = drain(&mut src, 1 << 20);
        assert_eq!(
            (got.lines, got.events),
            (vec!["b".to_owned()], vec![Event::Missing])
        );
        assert_eq!(drain(&mut src, 1 << 20).events, []);
        append(&log, "c\n");
        let got = drain(&mut src, 1 << 20);
        assert_eq!(got.lines, ["c"]);
        assert_eq!(got.events, [Event::Appeared, Event::Rotated]);
    }

    /// copytruncate without a copy at `path.1`: the same inode gets shorter than our offset:
    /// start over at 0, nothing twice. Truncated and refilled past our offset before we look:
    /// the first line tells.
    #[test]
    fn truncated() {
        let (_dir, log, _) = setup();
        let (text, want) = numbered("before", 50);
        append(&log, &text);
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        assert_eq!(drain(&mut src, 1 << 20).lines, want);
        let ino = fs::metadata(&log).unwrap().ino();

        truncate(&log);
        append(&log, "after 1\nafter 2\n");
        assert_eq!(fs::metadata(&log).unwrap().ino(), ino);
        let got = drain(&mut src, 1 << 20);
        assert_eq!(got.events, [Event::Truncated]);
        assert_eq!(got.lines, ["after 1", "after 2"]);
        assert_eq!(drain(&mut src, 1 << 20).lines, Vec::<String>::new());

        // Again, but the file grows past where we were before the next read.
        let offset = src.position().unwrap().offset;
        truncate(&log);
        let (text, want) = numbered("refilled", 20);
        append(&log, &text);
        assert!(fs::metadata(&log).unwrap().len() > offset);
        let got = drain(&mut src, 1 << 20);
        assert_eq!(got.events, [Event::Truncated]);
        assert_eq!(got.lines, want);
    }

    fn truncate(path: &Path) {
        OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    /// logrotate's copytruncate: what we had not read when the file was copied to `path.1`
    /// and truncated is read from the copy, then the file from 0; every line once. An older
    /// copy at `path.1` (another first line) is not taken for this one.
    #[test]
    fn copytruncate_finishes_the_copy() {
        let (_dir, log, rotated) = setup();
        let (text, mut want) = numbered("first", 50);
        append(&log, &text);
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        let mut got = drain(&mut src, 1 << 20).lines;
        append(&log, "first unread 1\nfirst unread 2\npart");
        // Read up to the partial line: the copy is read from the last whole line.
        got.extend(drain(&mut src, 1 << 20).lines);
        append(&log, "ial\n");
        fs::copy(&log, &rotated).unwrap();
        truncate(&log);
        append(&log, "second 1\n");
        let next = drain(&mut src, 1 << 20);
        assert_eq!(next.events, [Event::CopyTruncated, Event::Rotated]);
        got.extend(next.lines);
        want.extend(["first unread 1", "first unread 2", "partial", "second 1"].map(String::from));
        assert_eq!(got, want);

        // Truncated while still empty: the copy's rest now, the file once it has lines.
        append(&log, "second 2\n");
        fs::copy(&log, &rotated).unwrap();
        truncate(&log);
        let next = drain(&mut src, 1 << 20);
        assert_eq!(
            (next.lines, next.events),
            (vec!["second 2".to_owned()], vec![Event::CopyTruncated])
        );
        append(&log, "third 1\n");
        let next = drain(&mut src, 1 << 20);
        assert_eq!(
            (next.lines, next.events),
            (vec!["third 1".to_owned()], vec![Event::Rotated])
        );

        // Lines read between the copy and the truncate are past the copy's end: it is not
        // read again (those lines are logrotate's loss, but we had them).
        append(&log, "third 2\n");
        fs::copy(&log, &rotated).unwrap();
        append(&log, "third 3\n");
        assert_eq!(drain(&mut src, 1 << 20).lines, ["third 2", "third 3"]);
        truncate(&log);
        append(&log, "fourth 1\n");
        let next = drain(&mut src, 1 << 20);
        assert_eq!(
            (next.lines, next.events),
            (vec!["fourth 1".to_owned()], vec![Event::Truncated])
        );

        // `path.1` holds an older copy: not ours.
        truncate(&log);
        append(&log, "fifth 1\n");
        let next = drain(&mut src, 1 << 20);
        assert_eq!(
            (next.lines, next.events),
            (vec!["fifth 1".to_owned()], vec![Event::Truncated])
        );
    }

    /// A restart with the saved position continues exactly where the last one stopped.
    #[test]
    fn restart_resumes_exactly() {
        let (dir, log, _) = setup();
        let saved = dir.path().join("position.json");
        let (text, want) = numbered("line", 200);
        append(&log, &text);
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        let mut got = Vec::new();
        // Stop in the middle of a line: the position is at the last whole one.
        src.read(1001, |l| got.push(String::from_utf8(l.to_vec()).unwrap()))
            .unwrap();
        src.position().unwrap().save(&saved).unwrap();
        drop(src);

        let loaded = Position::load(&saved).unwrap();
        assert!(loaded.is_some());
        let mut src = FileSource::open(log.clone(), loaded, StartAt::End);
        let rest = drain(&mut src, 1 << 20);
        assert_eq!(rest.events, [Event::Resumed]);
        got.extend(rest.lines);
        assert_eq!(got, want);
    }

    /// A rename rotation while stopped: the rest of `path.1` first, then `path` from 0.
    #[test]
    fn restart_after_rotation_while_stopped() {
        let (dir, log, rotated) = setup();
        let saved = dir.path().join("position.json");
        let (text, mut want) = numbered("old", 100);
        append(&log, &text);
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        let mut got = drain(&mut src, 1 << 20).lines;
        src.position().unwrap().save(&saved).unwrap();
        drop(src);

        append(&log, "old unread 1\nold unread 2\n");
        fs::rename(&log, &rotated).unwrap();
        append(&log, "new 1\n");
        want.extend(["old unread 1", "old unread 2", "new 1"].map(String::from));

        let mut src = FileSource::open(log.clone(), Position::load(&saved).unwrap(), StartAt::End);
        let rest = drain(&mut src, 10);
        assert_eq!(rest.events, [Event::ResumedRotated, Event::Rotated]);
        got.extend(rest.lines);
        assert_eq!(got, want);
    }

    /// copytruncate while stopped: the rest of the copy at `path.1` first (another inode, the
    /// same first line), then `path` from 0.
    #[test]
    fn restart_after_copytruncate_while_stopped() {
        let (dir, log, rotated) = setup();
        let saved = dir.path().join("position.json");
        let (text, mut want) = numbered("old", 100);
        append(&log, &text);
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        let mut got = drain(&mut src, 1 << 20).lines;
        src.position().unwrap().save(&saved).unwrap();
        drop(src);

        append(&log, "old unread 1\nold unread 2\n");
        fs::copy(&log, &rotated).unwrap();
        truncate(&log);
        append(&log, "new 1\n");
        want.extend(["old unread 1", "old unread 2", "new 1"].map(String::from));

        let mut src = FileSource::open(log.clone(), Position::load(&saved).unwrap(), StartAt::End);
        let rest = drain(&mut src, 10);
        assert_eq!(rest.events, [Event::ResumedRotated, Event::Rotated]);
        got.extend(rest.lines);
        assert_eq!(got, want);
    }

    /// A different file at the path, whether or not it got the old inode number, is read
    /// from its start, never from the saved offset.
    #[test]
    fn inode_reuse_is_not_resumed() {
        let (dir, log, _) = setup();
        let saved = dir.path().join("position.json");
        append(&log, "first file 1\nfirst file 2\n");
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        drain(&mut src, 1 << 20);
        let pos = src.position().unwrap();
        pos.save(&saved).unwrap();
        drop(src);

        // Same inode, another first line: what a reused inode looks like to us.
        let forged = Position {
            fingerprint: pos.fingerprint ^ 1,
            ..pos
        };
        let mut src = FileSource::open(log.clone(), Some(forged), StartAt::End);
        let got = drain(&mut src, 1 << 20);
        assert_eq!(got.events, [Event::SavedGone]);
        assert_eq!(got.lines, ["first file 1", "first file 2"]);

        // Removed and made again, longer than the saved offset (tmpfs and ext4 often hand
        // the freed inode number straight back).
        fs::remove_file(&log).unwrap();
        let (text, want) = numbered("second file", 10);
        append(&log, &text);
        let mut src = FileSource::open(log.clone(), Position::load(&saved).unwrap(), StartAt::End);
        let got = drain(&mut src, 1 << 20);
        assert_eq!(got.events, [Event::SavedGone]);
        assert_eq!(got.lines, want);
    }

    /// The saved file gone altogether (rotated to `.2.gz`): `path` from its start, said.
    #[test]
    fn saved_file_gone() {
        let (_dir, log, rotated) = setup();
        append(&log, "x\n");
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        drain(&mut src, 1 << 20);
        let pos = src.position().unwrap();
        drop(src);
        fs::rename(&log, &rotated).unwrap();
        fs::remove_file(&rotated).unwrap();
        append(&log, "y\n");
        let mut src = FileSource::open(log.clone(), Some(pos), StartAt::End);
        let got = drain(&mut src, 1 << 20);
        assert_eq!(got.events, [Event::SavedGone]);
        assert_eq!(got.lines, ["y"]);
    }

    /// A missing file: said once, picked up from its start when it appears, even with
    /// StartAt::End (it is new).
    #[test]
    fn missing_then_appearing() {
        let (_dir, log, _) = setup();
        let mut src = FileSource::open(log.clone(), None, StartAt::End);
        let got = drain(&mut src, 1 << 20);
        assert_eq!((got.lines.len(), got.events), (0, vec![Event::Missing]));
        assert_eq!(src.position(), None);
        assert_eq!(drain(&mut src, 1 << 20).events, []);
        append(&log, "hello\n");
        let got = drain(&mut src, 1 << 20);
        assert_eq!(got.events, [Event::Appeared]);
        assert_eq!(got.lines, ["hello"]);
    }

    /// A line past the bound is counted and skipped to its newline, whatever the read size,
    /// and counted once across a restart in its middle.
    #[test]
    fn too_long_lines_counted_and_skipped() {
        let (_dir, log, _) = setup();
        let long = "x".repeat(MAX_LINE + 1);
        let exact = "y".repeat(MAX_LINE);
        append(&log, &format!("a\n{long}\nb\n{exact}\n{long}{long}\nc\n"));
        for max_bytes in [1000, 4096, MAX_LINE, 1 << 20] {
            let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
            let got = drain(&mut src, max_bytes);
            assert_eq!(got.lines, ["a", "b", exact.as_str(), "c"], "{max_bytes}");
            assert_eq!(got.too_long, 2, "{max_bytes}");
            let held = src.current.as_ref().unwrap().splitter.capacity();
            assert!(held <= MAX_LINE, "{held}");
        }

        // Stopped inside a long line: the position is before it, so it counts once.
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        let p = src.read(1000, |_| {}).unwrap();
        assert_eq!((p.lines, p.too_long), (1, 0));
        let pos = src.position().unwrap();
        assert_eq!(pos.offset, 2);
        let mut src = FileSource::open(log.clone(), Some(pos), StartAt::End);
        let got = drain(&mut src, 1000);
        assert_eq!(got.lines, ["b", exact.as_str(), "c"]);
        assert_eq!(got.too_long, 2);
    }

    /// Positions survive a save and a load; no temporary file is left; a missing file is no
    /// position, a damaged one an error.
    #[test]
    fn position_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log.position");
        assert_eq!(Position::load(&path).unwrap(), None);
        let pos = Position {
            dev: 2049,
            ino: u64::MAX,
            offset: 123_456_789,
            fingerprint: 0xdead_beef_dead_beef,
        };
        pos.save(&path).unwrap();
        pos.save(&path).unwrap();
        assert_eq!(Position::load(&path).unwrap(), Some(pos));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["mail.log.position"]);

        fs::write(&path, "{\"dev\": 1, \"ino\":").unwrap();
        assert!(matches!(
            Position::load(&path),
            Err(SourceError::CorruptPosition { .. })
        ));
        let in_missing_dir = dir.path().join("no/such/dir/position");
        assert!(matches!(
            pos.save(&in_missing_dir),
            Err(SourceError::SavePosition { .. })
        ));
    }

    /// The error for a file we may not read names it (the caller adds the hint about `adm`).
    #[test]
    fn permission_denied_names_the_path() {
        if crate::sys::effective_uid() == 0 {
            // root reads anything: nothing to test.
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let (_dir, log, _) = setup();
        append(&log, "secret\n");
        fs::set_permissions(&log, fs::Permissions::from_mode(0o000)).unwrap();
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        let err = src.read(1 << 20, |_| {}).unwrap_err();
        assert!(
            matches!(&err, SourceError::PermissionDenied { path } if *path == log),
            "{err:?}"
        );
        assert!(err.to_string().contains("mail.log"));
        // Fixed: the next read starts as the first would have.
        fs::set_permissions(&log, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(drain(&mut src, 1 << 20).lines, ["secret"]);
    }

    /// Size: a million lines read 64 KiB at a time are a million lines, none lost at the
    /// read boundaries, in about linear time.
    #[test]
    fn million_lines() {
        const N: usize = 1_000_000;
        let (_dir, log, _) = setup();
        let mut text = String::with_capacity(N * 60);
        for i in 0..N {
            text.push_str(&format!(
                "Dec  1 18:24:05 host postfix/smtp[7424]: {i:08X}: status=sent\n"
            ));
        }
        fs::write(&log, &text).unwrap();
        let started = Instant::now();
        let mut src = FileSource::open(log.clone(), None, StartAt::Beginning);
        let (mut lines, mut last_ok, mut reads) = (0usize, true, 0);
        loop {
            let p = src
                .read(64 * 1024, |l| {
                    last_ok &= l.ends_with(b"status=sent");
                    lines += 1;
                })
                .unwrap();
            reads += 1;
            if !p.more {
                break;
            }
        }
        assert!(last_ok);
        assert_eq!(lines, N);
        assert_eq!(src.position().unwrap().offset, text.len() as u64);
        assert!(reads > text.len() / (64 * 1024));
        eprintln!("{N} lines in {:?}", started.elapsed());
    }
}
