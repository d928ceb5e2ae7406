//! The part of a log file written since a moment (`check --log-since`), read without a
//! position and without reading the file from its start.
//!
//! Where the window starts is found by a binary search over byte offsets: each probe reads
//! forward from an offset to the first whole line with a timestamp (`time_of`), and the search
//! narrows to the half the window starts in until it is `NEAR` bytes wide; a short scan then
//! finds the first line stamped within the window. Lines are taken to be in time order, as a
//! syslog daemon writes them; a line without a stamp is passed over. A 1 GB file takes about 15
//! probes of a few KiB each.
//!
//! Bounds: at most `budget` bytes of lines are counted, the newest (a larger window is
//! `clipped` and says so); a probe gives up after `PROBE_MAX` bytes without a stamped line;
//! memory is one read buffer and one line of at most [`MAX_LINE`] bytes. Files are read with
//! `pread` and never written; what is appended after the file's length was taken is not read.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::file::{open_error, read_error, SourceError, MAX_LINE};
use crate::lines::{LineSplitter, Piece};

/// Bytes of each line's start handed to `time_of`: every timestamp form fits.
const HEAD: usize = 64;
/// The binary search stops when the window's start is known to within this many bytes.
const NEAR: u64 = 64 * 1024;
/// A probe that finds no stamped line in this many bytes gives up (the search then looks
/// earlier, which only makes the final scan longer).
const PROBE_MAX: u64 = 1024 * 1024;
/// The most bytes one `pread` asks for.
const READ_CHUNK: usize = 64 * 1024;
/// What a probe reads at a time: a few log lines.
const PROBE_CHUNK: usize = 8 * 1024;

/// Something read at an offset without moving a file position: a file, or bytes in a test.
pub trait ReadAt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let from = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - from);
        buf[..n].copy_from_slice(&self[from..from + n]);
        Ok(n)
    }
}

/// Where the window is in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first byte counted: the start of the first line stamped within the window (or of
    /// the first line of the last `budget` bytes, when `clipped`).
    pub start: u64,
    /// The file's length when it was looked at: nothing after it is read.
    pub end: u64,
    /// The window holds more than `budget` bytes: only the last `budget` bytes are counted.
    pub clipped: bool,
    /// No line before `start` is stamped before the window: the window may begin before the
    /// file does (in the file it was rotated from).
    pub from_first_line: bool,
    /// The time of the first stamped line from `start`, when one was read.
    pub first: Option<i64>,
    /// Bytes read to find `start`.
    pub searched: u64,
}

/// Finds the window `[since, end of file)` in the `len` bytes of `at`, keeping it to at most
/// `budget` bytes. `time_of` reads a moment (seconds since the epoch) from the first bytes of
/// a line, `None` for a line without a stamp.
pub fn find<R: ReadAt + ?Sized>(
    at: &R,
    len: u64,
    since: i64,
    budget: u64,
    time_of: &dyn Fn(&[u8]) -> Option<i64>,
) -> io::Result<Span> {
    let (mut probe, mut buf) = (vec![0; PROBE_CHUNK], vec![0; READ_CHUNK]);
    let (mut lo, mut hi) = (0, len);
    let mut older_seen = false;
    let mut searched = 0;
    // Invariant: every stamped line ending at or before `lo` is older than the window, and the
    // first stamped line starting at or after `hi` (if any) is not.
    while hi - lo > NEAR {
        let mid = lo + (hi - lo) / 2;
        let mut found = None;
        searched += lines_from(
            at,
            mid,
            hi.min(mid + PROBE_MAX),
            &mut probe,
            |_, end, head| {
                found = time_of(head).map(|t| (end, t));
                found.is_none()
            },
        )?;
        match found {
            Some((end, t)) if t < since => {
                lo = end;
                older_seen = true;
            }
            _ => hi = mid,
        }
    }
    // The first line stamped within the window, from `lo`.
    let (mut start, mut first) = (len, None);
    let mut scanned_to = lo;
    // The invariant puts it before the first stamped line from `hi`, which a probe finds
    // within `PROBE_MAX` bytes.
    let limit = len.min(hi.saturating_add(PROBE_MAX));
    searched += lines_from(at, lo, limit, &mut buf, |line_start, end, head| {
        scanned_to = end;
        match time_of(head) {
            Some(t) if t >= since => {
                (start, first) = (line_start, Some(t));
                false
            }
            Some(_) => {
                older_seen = true;
                true
            }
            None => true,
        }
    })?;
    if first.is_none() && limit < len {
        // Past the scan's bound without a stamped line: count from where it stopped.
        start = scanned_to;
    }
    let mut span = Span {
        start,
        end: len,
        clipped: false,
        from_first_line: !older_seen,
        first,
        searched,
    };
    if len - start > budget {
        // The window is larger than the budget: its newest `budget` bytes, from a line start.
        let mut cut = None;
        span.searched += lines_from(at, len - budget, len, &mut probe, |line_start, _, head| {
            cut = Some((line_start, time_of(head)));
            false
        })?;
        let (start, first) = cut.unwrap_or((len, None));
        span = Span {
            start,
            first,
            clipped: true,
            from_first_line: false,
            ..span
        };
    }
    Ok(span)
}

/// Calls `each(start, end, head)` for every whole line that starts at or after `from` and
/// ends (with its `\n`) at or before `limit`, `head` being its first `HEAD` bytes, until
/// `each` returns `false`. Returns the bytes read.
fn lines_from<R: ReadAt + ?Sized>(
    at: &R,
    from: u64,
    limit: u64,
    buf: &mut [u8],
    mut each: impl FnMut(u64, u64, &[u8]) -> bool,
) -> io::Result<u64> {
    // A line starts at `from` only when the byte before it ends one: read from there.
    let mut pos = from.saturating_sub(1);
    let mut skipping = from > 0;
    let mut line_start = pos;
    let (mut head, mut head_len) = ([0u8; HEAD], 0);
    let mut read = 0;
    while pos < limit {
        let want = buf
            .len()
            .min(usize::try_from(limit - pos).unwrap_or(usize::MAX));
        let n = match at.read_at(&mut buf[..want], pos) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        read += n as u64;
        let mut chunk = &buf[..n];
        let mut chunk_at = pos;
        while !chunk.is_empty() {
            let newline = chunk.iter().position(|&b| b == b'\n');
            let body = &chunk[..newline.unwrap_or(chunk.len())];
            if !skipping {
                let take = body.len().min(HEAD - head_len);
                head[head_len..head_len + take].copy_from_slice(&body[..take]);
                head_len += take;
            }
            let Some(i) = newline else { break };
            let end = chunk_at + i as u64 + 1;
            if !skipping && !each(line_start, end, &head[..head_len]) {
                return Ok(read);
            }
            skipping = false;
            (line_start, head_len) = (end, 0);
            chunk = &chunk[i + 1..];
            chunk_at = end;
        }
        pos += n as u64;
    }
    Ok(read)
}

/// What was counted of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub path: PathBuf,
    pub span: Span,
    /// Whole lines handed out.
    pub lines: u64,
    /// Lines longer than [`MAX_LINE`], skipped.
    pub too_long: u64,
}

/// Reads the lines of `span` of `at`, calling `each_line` with each whole line (without its
/// `\n`); a last line without its `\n` is not read. Memory: one read buffer and one line.
pub fn read<R: ReadAt + ?Sized>(
    at: &R,
    span: &Span,
    mut each_line: impl FnMut(&[u8]),
) -> io::Result<(u64, u64)> {
    let mut buf = vec![0; READ_CHUNK];
    let mut splitter = LineSplitter::new(MAX_LINE);
    let (mut lines, mut too_long) = (0, 0);
    let mut pos = span.start;
    while pos < span.end {
        let want = buf
            .len()
            .min(usize::try_from(span.end - pos).unwrap_or(usize::MAX));
        let n = match at.read_at(&mut buf[..want], pos) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        pos += n as u64;
        let result = splitter.pieces(&buf[..n], |_, piece| {
            match piece {
                Piece::Line(line) => {
                    lines += 1;
                    each_line(line);
                }
                Piece::End => too_long += 1,
                Piece::Head(_) | Piece::Tail(_) => {}
            }
            Ok::<(), std::convert::Infallible>(())
        });
        result.unwrap_or_else(|never| match never {});
    }
    Ok((lines, too_long))
}

/// What [`read_since`] read: the files in the order their lines were handed out (the rotated
/// `path.1` first, when the window starts in it), and why `path.1` could not be read when it
/// was wanted.
#[derive(Debug)]
pub struct Since {
    pub parts: Vec<Part>,
    pub rotated_problem: Option<SourceError>,
}

/// Hands `each_line` every whole line of `path` written since `since`, at most `budget`
/// bytes of them (the newest), and those of `path.1` too when the window starts before
/// `path`'s first line. Reads only; a missing or unreadable `path` is an error, a missing
/// `path.1` is not.
pub fn read_since(
    path: &Path,
    since: i64,
    budget: u64,
    time_of: &dyn Fn(&[u8]) -> Option<i64>,
    mut each_line: impl FnMut(&[u8]),
) -> Result<Since, SourceError> {
    let (file, meta) = open(path)?;
    let span = find(&file, meta.len(), since, budget, time_of).map_err(|e| read_error(path, e))?;
    let mut rotated = None;
    let mut rotated_problem = None;
    let left = budget - (span.end - span.start);
    if span.from_first_line && left > 0 {
        let mut name = path.as_os_str().to_owned();
        name.push(".1");
        let older = PathBuf::from(name);
        match open(&older) {
            Ok((f, m)) if (m.dev(), m.ino()) != (meta.dev(), meta.ino()) => {
                match find(&f, m.len(), since, left, time_of) {
                    Ok(s) => rotated = Some((older, f, s)),
                    Err(e) => rotated_problem = Some(read_error(&older, e)),
                }
            }
            Ok(_) => {}
            Err(SourceError::Open { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => rotated_problem = Some(e),
        }
    }
    let mut parts = Vec::new();
    if let Some((older, f, s)) = rotated {
        match read(&f, &s, &mut each_line) {
            Ok((lines, too_long)) => parts.push(Part {
                path: older,
                span: s,
                lines,
                too_long,
            }),
            Err(e) => rotated_problem = Some(read_error(&older, e)),
        }
    }
    let (lines, too_long) = read(&file, &span, &mut each_line).map_err(|e| read_error(path, e))?;
    parts.push(Part {
        path: path.to_owned(),
        span,
        lines,
        too_long,
    });
    Ok(Since {
        parts,
        rotated_problem,
    })
}

fn open(path: &Path) -> Result<(File, std::fs::Metadata), SourceError> {
    let file = File::open(path).map_err(|e| open_error(path, e))?;
    let meta = file.metadata().map_err(|e| read_error(path, e))?;
    Ok((file, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines `T text` stamped with the number `T`; `#` lines have no stamp.
    fn time_of(head: &[u8]) -> Option<i64> {
        let text = std::str::from_utf8(head).ok()?;
        text.split(' ').next()?.parse().ok()
    }

    fn log(times: &[i64], filler: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, t) in times.iter().enumerate() {
            out.extend_from_slice(format!("{t} line {i} {}\n", "x".repeat(filler)).as_bytes());
        }
        out
    }

    /// The first line stamped at or after `since`, the slow way.
    fn linear(bytes: &[u8], since: i64) -> u64 {
        let mut at = 0;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            if time_of(line).is_some_and(|t| t >= since) {
                return at;
            }
            at += line.len() as u64;
        }
        bytes.len() as u64
    }

    #[test]
    fn the_search_finds_what_a_linear_scan_finds_reading_little() {
        // 200,000 lines of about 100 bytes (20 MB), ten per second.
        let times: Vec<i64> = (0..200_000).map(|i| 1_000_000 + i / 10).collect();
        let bytes = log(&times, 80);
        let len = bytes.len() as u64;
        for since in [
            0, 1_000_000, 1_000_001, 1_010_000, 1_019_999, 1_020_000, 2_000_000,
        ] {
            let span = find(&bytes[..], len, since, u64::MAX, &time_of).unwrap();
            assert_eq!(span.start, linear(&bytes, since), "since {since}");
            assert_eq!(span.end, len);
            assert!(!span.clipped);
            assert_eq!(span.from_first_line, since <= 1_000_000, "since {since}");
            // About 19 probes of a few KiB and a scan of at most NEAR and a chunk.
            assert!(span.searched < 3 * NEAR + 19 * 8192, "{since}: {span:?}");
        }
    }

    #[test]
    fn unstamped_lines_and_lines_out_of_order() {
        // Every other line has no stamp; the search passes over them.
        let mut bytes = Vec::new();
        for i in 0..50_000i64 {
            bytes.extend_from_slice(
                format!("{} stamped {i}\n# continuation\n", 5000 + i).as_bytes(),
            );
        }
        let len = bytes.len() as u64;
        for since in [5000, 30_000, 54_999, 60_000] {
            let span = find(&bytes[..], len, since, u64::MAX, &time_of).unwrap();
            assert_eq!(span.start, linear(&bytes, since), "since {since}");
            assert_eq!(span.first, (since < 55_000).then_some(since));
        }
        // Nothing but unstamped lines: counted from the start, which may be the window's.
        let bytes = "# no stamp here\n".repeat(20_000).into_bytes();
        let span = find(&bytes[..], bytes.len() as u64, 10, u64::MAX, &time_of).unwrap();
        assert_eq!(
            (span.start, span.from_first_line),
            (bytes.len() as u64, true)
        );
    }

    #[test]
    fn a_window_larger_than_the_budget_is_clipped_to_its_newest_lines() {
        let times: Vec<i64> = (0..10_000).collect();
        let bytes = log(&times, 10);
        let len = bytes.len() as u64;
        let span = find(&bytes[..], len, 100, 1000, &time_of).unwrap();
        assert!(span.clipped && !span.from_first_line);
        assert!(len - span.start <= 1000);
        // At a line start.
        assert_eq!(bytes[span.start as usize - 1], b'\n');
        let (lines, _) = read(&bytes[..], &span, |_| {}).unwrap();
        assert_eq!(Some(10_000 - lines as i64), span.first);
        // A window that fits is not clipped.
        let span = find(&bytes[..], len, 9_990, 1000, &time_of).unwrap();
        assert!(!span.clipped);
        assert_eq!(span.first, Some(9_990));
    }

    #[test]
    fn empty_files_partial_lines_and_long_lines() {
        let span = find(&b""[..], 0, 5, 100, &time_of).unwrap();
        assert_eq!((span.start, span.end, span.from_first_line), (0, 0, true));
        // A last line without its `\n` is not counted; a line past MAX_LINE is skipped.
        let mut bytes = b"1 a\n2 b\n".to_vec();
        bytes.extend_from_slice(format!("3 {}\n", "y".repeat(MAX_LINE + 10)).as_bytes());
        bytes.extend_from_slice(b"4 d\n5 partial");
        let len = bytes.len() as u64;
        let span = find(&bytes[..], len, 2, u64::MAX, &time_of).unwrap();
        assert_eq!(span.start, 4);
        let mut got = Vec::new();
        let (lines, too_long) = read(&bytes[..], &span, |l| {
            got.push(String::from_utf8_lossy(l).into_owned());
        })
        .unwrap();
        assert_eq!(got, ["2 b", "4 d"]);
        assert_eq!((lines, too_long), (2, 1));
    }

    #[test]
    fn the_rotated_file_is_read_first_when_the_window_starts_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.log");
        std::fs::write(dir.path().join("mail.log.1"), log(&[10, 20, 30], 0)).unwrap();
        std::fs::write(&path, log(&[40, 50], 0)).unwrap();
        let mut got = Vec::new();
        let mut each = |l: &[u8]| got.push(time_of(l).unwrap());
        let since = read_since(&path, 25, u64::MAX, &time_of, &mut each).unwrap();
        assert_eq!(got, [30, 40, 50]);
        assert_eq!(since.parts.len(), 2);
        assert!(since.parts[0].path.ends_with("mail.log.1"));
        assert!(!since.parts[0].span.from_first_line);
        // The window starts in the current file: the rotated one is not opened.
        got.clear();
        let since = read_since(&path, 45, u64::MAX, &time_of, |l| {
            got.push(time_of(l).unwrap())
        })
        .unwrap();
        assert_eq!((got.as_slice(), since.parts.len()), (&[50][..], 1));
        // No rotated file: the count starts at the file's first line, and says so.
        std::fs::remove_file(dir.path().join("mail.log.1")).unwrap();
        let since = read_since(&path, 0, u64::MAX, &time_of, |_| {}).unwrap();
        assert!(since.parts[0].span.from_first_line && since.rotated_problem.is_none());
        // A missing file is an error.
        let e = read_since(&dir.path().join("none"), 0, 10, &time_of, |_| {}).unwrap_err();
        assert!(matches!(e, SourceError::Open { .. }), "{e:?}");
    }
}
