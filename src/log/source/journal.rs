//! Following the systemd journal through `journalctl --follow --output=json`, started through
//! `exec` (we link no libsystemd), handing out each mail entry once.
//!
//! The caller drives it on its own clock, like the file source: [`JournalSource::read`] reads
//! what the child wrote so far, at most `max_bytes`, never waiting. After it has flushed the
//! counts, it saves [`JournalSource::cursor`] ([`save_cursor`]), and on the next start hands it
//! back, so that `journalctl --after-cursor` resumes just after the last entry counted.
//!
//! Only entries of the mail facility (`SYSLOG_FACILITY=2`, where Postfix's syslog(3) calls
//! land) are asked for, with only the two fields we read: the identifier and the message.
//!
//! A child that exits (journalctl missing, a cursor it refuses, the journal unreadable) is
//! started again from the last cursor after a back-off that doubles up to a minute. A child
//! that wrote nothing for [`SILENT_RESTART`] is restarted the same way: a journalctl stuck on
//! a vanished journal file would look the same as a quiet server, and a restart costs one
//! fork every few minutes. Nothing is lost or counted twice across a restart, because it
//! resumes from the cursor of the last entry handed out; a line cut off by the child's end
//! is handed out by the next child whole.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

use super::file::StartAt;
use crate::exec::{Command, ExecError, Stream};
use crate::lines::{LineSplitter, Piece};

/// The longest entry (one JSON line) handed out. journalctl shows a field longer than 4,096
/// bytes as `null` (without `--all`), so an entry of the two fields we ask for stays well
/// under this even as an array of byte numbers; a longer one is counted and skipped.
pub const MAX_ENTRY: usize = 64 * 1024;

/// The most bytes one `read(2)` asks for.
const READ_CHUNK: usize = 64 * 1024;

/// A child that wrote nothing for this long is started again from the cursor.
pub const SILENT_RESTART: Duration = Duration::from_secs(300);

/// The first wait before starting a child again, doubled after each failure up to
/// [`MAX_BACKOFF`], and back to this once a child delivers.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A child that runs this long without exiting has got past its start (options, cursor,
/// journal files): an earlier child's failure is over.
const SETTLED: Duration = Duration::from_secs(5);

/// A saved cursor file larger than this is not ours.
const MAX_CURSOR_FILE: u64 = 4096;

/// Where `journalctl` is and which journal it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalOptions {
    /// `commands.journalctl`.
    pub journalctl: PathBuf,
    /// `log.journal_directory`: a directory of journal files (a container's, or a test's)
    /// instead of the system journal.
    pub directory: Option<PathBuf>,
}

/// One journal entry, as `journalctl --output=json` prints it, with the fields we read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// `__CURSOR`: where to resume after this entry.
    pub cursor: Cow<'a, str>,
    /// `SYSLOG_IDENTIFIER` (`postfix/smtp`).
    pub identifier: Option<Cow<'a, str>>,
    /// `MESSAGE`: the text after `ident[pid]: `.
    pub message: Option<Cow<'a, str>>,
    /// `__REALTIME_TIMESTAMP`: when journald received it, in microseconds since the epoch.
    pub realtime: Option<u64>,
}

/// Why a line of journalctl's output is not an entry we can read.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("not a JSON object with a __CURSOR")]
    Json(#[from] serde_json::Error),
}

/// A field's value: a string, an array of byte numbers (a value that is not valid UTF-8 or
/// holds control characters), `null` (longer than 4,096 bytes), or an array of values (the
/// field is repeated in the entry), which we do not read.
#[derive(Deserialize)]
#[serde(untagged)]
enum Field<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Bytes(Vec<u8>),
    Other(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "__CURSOR", borrow)]
    cursor: Cow<'a, str>,
    #[serde(rename = "SYSLOG_IDENTIFIER", borrow, default)]
    identifier: Option<Field<'a>>,
    #[serde(rename = "MESSAGE", borrow, default)]
    message: Option<Field<'a>>,
    #[serde(rename = "__REALTIME_TIMESTAMP", borrow, default)]
    realtime: Option<Cow<'a, str>>,
}

impl<'a> Field<'a> {
    fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Field::Text(text) => Some(text),
            Field::Bytes(bytes) => Some(Cow::Owned(String::from_utf8_lossy(&bytes).into_owned())),
            Field::Other(_) => None,
        }
    }
}

/// Takes one line of `journalctl --output=json` apart. Linear in the line's length; a
/// string without escapes is borrowed.
pub fn entry(line: &[u8]) -> Result<Entry<'_>, EntryError> {
    let raw: Raw<'_> = serde_json::from_slice(line)?;
    Ok(Entry {
        cursor: raw.cursor,
        identifier: raw.identifier.and_then(Field::text),
        message: raw.message.and_then(Field::text),
        realtime: raw.realtime.and_then(|t| t.parse().ok()),
    })
}

/// What one [`JournalSource::read`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Entries handed to the callback.
    pub lines: u64,
    /// Entries longer than [`MAX_ENTRY`], skipped.
    pub too_long: u64,
    /// Lines that were not an entry (journalctl's own notices), skipped.
    pub not_entries: u64,
    /// Bytes read from the child.
    pub bytes: u64,
    /// The read stopped at `max_bytes` with more to read.
    pub more: bool,
    /// What happened, each said once, for the caller to log.
    pub events: Vec<Event>,
    /// Why no child runs, or why the one that runs sees nothing: said on each read until a
    /// child has settled (delivered, or run for [`SETTLED`]).
    pub problem: Option<JournalError>,
}

/// Something the caller should say in its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A child was started: the command, as shown.
    Started(String),
    /// The child wrote nothing for [`SILENT_RESTART`]: it is started again from the cursor.
    Silent,
}

/// What can go wrong with the journal source and its saved cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("`{command}` could not be started: {program} does not exist (install systemd's journalctl, or set commands.journalctl, or use log.source: file)")]
    NotFound { command: String, program: String },
    #[error("`{command}` could not be started: {why}")]
    Spawn { command: String, why: String },
    #[error("`{command}` refused the saved cursor ({stderr}); resumed from the cursor's time")]
    CursorRefused { command: String, stderr: String },
    #[error("`{command}` cannot read the system journal (add the service user to the group `systemd-journal`: usermod -a -G systemd-journal postfix-dogstatsd): {stderr}")]
    NoPermission { command: String, stderr: String },
    #[error("`{command}` exited ({status}){}; started again from the cursor", stderr_text(.stderr))]
    Exited {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("reading the output of `{command}` failed: {why}")]
    Read { command: String, why: String },
    #[error("cannot save the journal cursor to {}: {why}", path.display())]
    SaveCursor { path: PathBuf, why: String },
    #[error("cannot read the journal cursor {}: {why}", path.display())]
    LoadCursor { path: PathBuf, why: String },
}

fn stderr_text(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

/// What journalctl prints when the user may read no journal but its own.
fn says_no_permission(stderr: &str) -> bool {
    stderr.contains("insufficient permissions")
        || stderr.contains("not seeing messages from other users")
}

/// Follows the journal. See the module documentation.
#[derive(Debug)]
pub struct JournalSource {
    options: JournalOptions,
    start_at: StartAt,
    /// The cursor of the last entry handed out (or the saved one, before any).
    cursor: Option<String>,
    /// `__REALTIME_TIMESTAMP` of the last entry read.
    newest: Option<u64>,
    /// The cursor journalctl refused: the next child starts at its time instead.
    refused: Option<String>,
    /// When the child that is running (or ran last) started, for a restart without a cursor.
    first_start: Option<SystemTime>,
    child: Option<Running>,
    /// Why the last child ended, said on each read until a new child delivers.
    failure: Option<JournalError>,
    next_start: Instant,
    backoff: Duration,
    buf: Vec<u8>,
}

#[derive(Debug)]
struct Running {
    stream: Stream,
    splitter: LineSplitter,
    started: Instant,
    last_output: Instant,
    delivered: bool,
}

impl JournalSource {
    /// A source that resumes after `saved`, or starts as `start_at` says without one. No
    /// process is started here: the first [`JournalSource::read`] does it.
    pub fn open(options: JournalOptions, saved: Option<String>, start_at: StartAt) -> Self {
        JournalSource {
            options,
            start_at,
            cursor: saved,
            newest: None,
            refused: None,
            first_start: None,
            child: None,
            failure: None,
            next_start: Instant::now(),
            backoff: FIRST_BACKOFF,
            buf: Vec::new(),
        }
    }

    /// The cursor to save once the counts of the entries handed out so far are flushed.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// When the newest entry read so far was written (journald's receive time).
    pub fn newest(&self) -> Option<SystemTime> {
        self.newest
            .map(|us| SystemTime::UNIX_EPOCH + Duration::from_micros(us))
    }

    /// The argv of the next child.
    fn command(&self) -> Command {
        let mut args: Vec<String> = vec![
            "--follow".into(),
            "--output=json".into(),
            "--output-fields=SYSLOG_IDENTIFIER,MESSAGE".into(),
            "--no-pager".into(),
        ];
        if let Some(dir) = &self.options.directory {
            args.push(format!("--directory={}", dir.display()));
        }
        if let Some(refused) = &self.refused {
            // The cursor's own time (`t=`, microseconds), just after it.
            args.push(match cursor_time(refused) {
                Some(us) => format!(
                    "--since=@{}.{:06}",
                    (us + 1) / 1_000_000,
                    (us + 1) % 1_000_000
                ),
                None => "--lines=0".into(),
            });
        } else if let Some(cursor) = &self.cursor {
            args.push(format!("--after-cursor={cursor}"));
        } else if let Some(started) = self.first_start {
            // Restarted before any entry came: nothing was counted since the first start.
            let secs = started
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            args.push(format!("--since=@{secs}"));
        } else {
            args.push(match self.start_at {
                StartAt::End => "--lines=0".into(),
                StartAt::Beginning => "--lines=all".into(),
            });
        }
        args.push("SYSLOG_FACILITY=2".into());
        Command::new(&self.options.journalctl, args)
    }

    /// Reads what the child wrote so far, at most `max_bytes`, calling `each(identifier,
    /// message)` for every complete entry that has both, in journal order. Starts the child
    /// first when none runs and its back-off is over.
    pub fn read(&mut self, max_bytes: usize, mut each: impl FnMut(&str, &str)) -> Progress {
        let mut progress = Progress::default();
        let now = Instant::now();
        let silent = |c: &Running| now.duration_since(c.last_output) >= SILENT_RESTART;
        if self.child.as_ref().is_some_and(silent) {
            progress.events.push(Event::Silent);
            self.child = None;
        }
        if self.child.is_none() && (now < self.next_start || !self.start(&mut progress)) {
            progress.problem = self.failure.clone();
            return progress;
        }
        if self.buf.is_empty() {
            self.buf = vec![0; READ_CHUNK];
        }
        let mut budget = max_bytes;
        let ended = loop {
            let Some(child) = self.child.as_mut() else {
                break false;
            };
            if budget == 0 {
                progress.more = true;
                break false;
            }
            let want = budget.min(self.buf.len());
            match child.stream.read(&mut self.buf[..want]) {
                Ok(0) => break true,
                Ok(n) => {
                    budget -= n;
                    progress.bytes += n as u64;
                    child.last_output = Instant::now();
                    let (cursor, newest) = (&mut self.cursor, &mut self.newest);
                    let delivered = &mut child.delivered;
                    let result = child.splitter.pieces(&self.buf[..n], |_, piece| {
                        match piece {
                            Piece::Line(line) => match entry(line) {
                                Ok(e) => {
                                    if let (Some(ident), Some(text)) = (&e.identifier, &e.message) {
                                        each(ident, text);
                                        progress.lines += 1;
                                    }
                                    *newest = e.realtime.or(*newest);
                                    *cursor = Some(e.cursor.into_owned());
                                    *delivered = true;
                                }
                                Err(_) => progress.not_entries += 1,
                            },
                            Piece::End => progress.too_long += 1,
                            Piece::Head(_) | Piece::Tail(_) => {}
                        }
                        Ok::<(), std::convert::Infallible>(())
                    });
                    result.unwrap_or_else(|never| match never {});
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let command = child.stream.command().to_owned();
                    self.failed(JournalError::Read {
                        command,
                        why: e.to_string(),
                    });
                    break false;
                }
            }
        };
        if self
            .child
            .as_ref()
            .is_some_and(|c| c.delivered || c.started.elapsed() >= SETTLED)
        {
            self.refused = None;
            self.backoff = FIRST_BACKOFF;
            self.failure = None;
        }
        if ended {
            self.ended();
        }
        if let Some(child) = self.child.as_mut() {
            let stderr = child.stream.stderr();
            if says_no_permission(&stderr) {
                self.failure = Some(JournalError::NoPermission {
                    command: child.stream.command().to_owned(),
                    stderr,
                });
            }
        }
        progress.problem = self.failure.clone();
        progress
    }

    /// Starts a child; whether one runs.
    fn start(&mut self, progress: &mut Progress) -> bool {
        let cmd = self.command();
        match Stream::start(&cmd) {
            Ok(stream) => {
                progress
                    .events
                    .push(Event::Started(stream.command().to_owned()));
                self.first_start.get_or_insert_with(SystemTime::now);
                self.child = Some(Running {
                    stream,
                    splitter: LineSplitter::new(MAX_ENTRY),
                    started: Instant::now(),
                    last_output: Instant::now(),
                    delivered: false,
                });
                true
            }
            Err(e) => {
                let error = match e {
                    ExecError::NotFound { command, program } => {
                        JournalError::NotFound { command, program }
                    }
                    other => JournalError::Spawn {
                        command: cmd.to_string(),
                        why: crate::error_chain(&other),
                    },
                };
                self.failed(error);
                false
            }
        }
    }

    /// The child closed its output: why it ended, and when to start the next.
    fn ended(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let command = child.stream.command().to_owned();
        // It closed stdout; its exit is a moment away.
        let mut finished = child.stream.exited();
        let end = Instant::now() + Duration::from_secs(1);
        while finished.is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
            finished = child.stream.exited();
        }
        let stderr = finished
            .as_ref()
            .map_or_else(|| child.stream.stderr(), |f| f.stderr.clone());
        let error = if stderr.contains("cursor") && self.cursor.is_some() && self.refused.is_none()
        {
            self.refused = self.cursor.take();
            // Started again at once, at the cursor's time.
            self.backoff = Duration::ZERO;
            JournalError::CursorRefused { command, stderr }
        } else if says_no_permission(&stderr) {
            JournalError::NoPermission { command, stderr }
        } else {
            JournalError::Exited {
                command,
                status: finished
                    .map_or_else(|| "still running".to_owned(), |f| f.describe_status()),
                stderr,
            }
        };
        self.failed(error);
    }

    fn failed(&mut self, error: JournalError) {
        self.child = None;
        self.failure = Some(error);
        self.next_start = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
    }
}

/// The `t=` field of a cursor: the entry's time in microseconds since the epoch.
fn cursor_time(cursor: &str) -> Option<u64> {
    cursor
        .split(';')
        .find_map(|part| part.strip_prefix("t="))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
}

/// Writes `cursor` to `path` so that a crash leaves the old or the new one, never a mix.
pub fn save_cursor(cursor: &str, path: &Path) -> Result<(), JournalError> {
    let mut text = cursor.as_bytes().to_vec();
    text.push(b'\n');
    super::save_atomically(path, &text).map_err(|e| JournalError::SaveCursor {
        path: path.to_owned(),
        why: e.to_string(),
    })
}

/// Reads a cursor [`save_cursor`] wrote; a missing file is `Ok(None)` (the first run).
pub fn load_cursor(path: &Path) -> Result<Option<String>, JournalError> {
    let error = |why: String| JournalError::LoadCursor {
        path: path.to_owned(),
        why,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error(e.to_string())),
    };
    let mut text = String::new();
    file.take(MAX_CURSOR_FILE)
        .read_to_string(&mut text)
        .map_err(|e| error(e.to_string()))?;
    let cursor = text.trim();
    // A cursor is `key=value` pairs joined by `;`, with no spaces or newlines.
    if cursor.is_empty()
        || !cursor.contains('=')
        || cursor
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(error("it does not hold a journal cursor".to_owned()));
    }
    Ok(Some(cursor.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_as_journalctl_prints_it() {
        // systemd 252's journalctl --output=json on a journal systemd-journal-remote wrote.
        let line = br#"{"SYSLOG_IDENTIFIER":"postfix/smtp","__MONOTONIC_TIMESTAMP":"1000","__REALTIME_TIMESTAMP":"1796166547307957","__CURSOR":"s=2c0030cc594c42ce9a5fb24601399258;i=1;b=0123456789abcdef0123456789abcdef;m=3e8;t=6619a9d027db5;x=81d2f2a2a5248fda","_BOOT_ID":"0123456789abcdef0123456789abcdef","MESSAGE":"ABC0: to=<a@b>, relay=none, delay=0.05, delays=0.02/0.03/0/0, dsn=4.4.1, status=deferred (connect)"}"#;
        let e = entry(line).unwrap();
        assert_eq!(e.identifier.as_deref(), Some("postfix/smtp"));
        assert!(e
            .message
            .as_deref()
            .unwrap()
            .ends_with("status=deferred (connect)"));
        assert!(matches!(e.identifier, Some(Cow::Borrowed(_))));
        assert_eq!(cursor_time(&e.cursor), Some(0x6619a9d027db5));
    }

    #[test]
    fn byte_arrays_nulls_and_repeated_fields() {
        // "ok\xff" as journalctl shows a value that is not UTF-8.
        let e = entry(
            br#"{"__CURSOR":"c=1","SYSLOG_IDENTIFIER":"postfix/smtpd","MESSAGE":[111,107,255]}"#,
        )
        .unwrap();
        assert_eq!(e.message.as_deref(), Some("ok\u{fffd}"));
        let e = entry(br#"{"__CURSOR":"c=1","SYSLOG_IDENTIFIER":"postfix/smtpd","MESSAGE":null}"#)
            .unwrap();
        assert_eq!(e.message, None);
        let e =
            entry(br#"{"__CURSOR":"c=1","SYSLOG_IDENTIFIER":["a","b"],"MESSAGE":"x"}"#).unwrap();
        assert_eq!(e.identifier, None);
        assert!(entry(br#"{"MESSAGE":"no cursor"}"#).is_err());
        assert!(entry(b"-- No entries --").is_err());
        assert!(entry(b"").is_err());
    }

    #[test]
    fn the_argv_resumes_from_what_it_knows() {
        let options = JournalOptions {
            journalctl: "/usr/bin/journalctl".into(),
            directory: Some("/j".into()),
        };
        let mut s = JournalSource::open(options, None, StartAt::End);
        let argv = s.command().to_string();
        assert_eq!(argv, "/usr/bin/journalctl --follow --output=json --output-fields=SYSLOG_IDENTIFIER,MESSAGE --no-pager --directory=/j --lines=0 SYSLOG_FACILITY=2");
        s.cursor = Some("s=1;t=10".into());
        assert!(s
            .command()
            .to_string()
            .contains(" --after-cursor=s=1;t=10 "));
        s.refused = Some("s=1;t=f4240".into()); // 1,000,000 us
        assert!(
            s.command().to_string().contains(" --since=@1.000001 "),
            "{}",
            s.command()
        );
        s.refused = None;
        s.cursor = None;
        s.first_start = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(77));
        assert!(s.command().to_string().contains(" --since=@77 "));
    }

    #[test]
    fn cursor_files_round_trip_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal-cursor");
        assert_eq!(load_cursor(&path).unwrap(), None);
        save_cursor("s=ab;i=1;t=5", &path).unwrap();
        assert_eq!(load_cursor(&path).unwrap().as_deref(), Some("s=ab;i=1;t=5"));
        std::fs::write(&path, "not a cursor\n").unwrap();
        assert!(load_cursor(&path).is_err());
    }
}
