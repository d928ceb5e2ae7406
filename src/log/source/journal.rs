//! Reading the systemd journal with `journalctl --output=json`, started through `exec` (we link
//! no libsystemd), handing out each mail entry once.
//!
//! The caller drives it on its own clock, like the file source: each [`JournalSource::read`]
//! runs journalctl once for what was logged after the last entry handed out
//! (`--after-cursor`), reads at most `max_bytes` of it and returns. After it has flushed the
//! counts, it saves [`JournalSource::cursor`] ([`save_cursor`]), and on the next start hands it
//! back.
//!
//! Why one run per flush and not `journalctl --follow`: in a booted Debian 12 (systemd 252),
//! `--follow` under a unit with `ProtectKernelTunables=`, `ProtectControlGroups=` or
//! `ProtectProc=` starts, reads the entries it had at the start, and then never shows another
//! (it sees the journal change and finds nothing new), and it exits at once under
//! `ProcSubset=pid` (it needs the boot ID). A run to the end works under all of them, costs
//! one fork per flush interval, and cannot hang unseen: each run has a deadline. Nothing is
//! lost or counted twice between runs, because each starts after the cursor of the last entry
//! handed out; an entry cut off by a run's end (the byte budget, or its deadline) is read
//! whole by the next run.
//!
//! Only entries of the mail facility (`SYSLOG_FACILITY=2`, where Postfix's syslog(3) calls
//! land) are asked for, with only the two fields we read: the identifier and the message.

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

/// How long one run of journalctl may take; one that is slower is stopped, reported, and the
/// next run goes on from the last entry read.
pub const RUN_DEADLINE: Duration = Duration::from_secs(30);

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
    /// The command this read ran, as shown, when it differs in shape from the one before (the
    /// first run, and a change of how it starts: `--lines`, `--since`, `--after-cursor`).
    pub started: Option<String>,
    /// Why this run read nothing or not all: said on each read while it lasts.
    pub problem: Option<JournalError>,
}

/// What can go wrong with the journal source and its saved cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error("`{command}` could not be started: {program} does not exist (install systemd's journalctl, or set commands.journalctl, or use log.source: file)")]
    NotFound { command: String, program: String },
    #[error("`{command}` could not be started: {why}")]
    Spawn { command: String, why: String },
    #[error(
        "`{command}` refused the saved cursor ({stderr}); reading goes on from the cursor's time"
    )]
    CursorRefused { command: String, stderr: String },
    #[error("`{command}` cannot read the system journal (add the service user to the group `systemd-journal`: usermod -a -G systemd-journal postfix-dogstatsd): {stderr}")]
    NoPermission { command: String, stderr: String },
    #[error("`{command}` failed ({status}){}", stderr_text(.stderr))]
    Exited {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("reading the output of `{command}` failed: {why}")]
    Read { command: String, why: String },
    #[error("`{command}` did not finish within {:.0} s; stopped", after.as_secs_f64())]
    Timeout { command: String, after: Duration },
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

/// Reads the journal run by run. See the module documentation.
#[derive(Debug)]
pub struct JournalSource {
    options: JournalOptions,
    start_at: StartAt,
    /// The cursor of the last entry handed out (or the saved one, before any).
    cursor: Option<String>,
    /// `__REALTIME_TIMESTAMP` of the last entry read.
    newest: Option<u64>,
    /// The cursor journalctl refused: the next run starts at its time instead.
    refused: Option<String>,
    /// Without a cursor after the first run (a journal with no mail entry yet): the time of
    /// that run, from which later runs read.
    since: Option<SystemTime>,
    /// The shape of the last command run, so that a change is said once.
    last_shape: Option<String>,
    /// How long one run may take ([`RUN_DEADLINE`]).
    run_deadline: Duration,
    buf: Vec<u8>,
}

impl JournalSource {
    /// A source that resumes after `saved`, or starts as `start_at` says without one. No
    /// process is started here.
    pub fn open(options: JournalOptions, saved: Option<String>, start_at: StartAt) -> Self {
        JournalSource {
            options,
            start_at,
            cursor: saved,
            newest: None,
            refused: None,
            since: None,
            last_shape: None,
            run_deadline: RUN_DEADLINE,
            buf: Vec::new(),
        }
    }

    /// A source that reads what was logged from `since` on (`--since=@SECONDS`), without a
    /// cursor: `check`'s window, which saves nothing.
    pub fn since(options: JournalOptions, since: SystemTime) -> Self {
        JournalSource {
            since: Some(since),
            ..JournalSource::open(options, None, StartAt::Beginning)
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

    /// The argv of the next run, and whether its entries only set the cursor (the first run
    /// of `start_at: end`, which finds where the journal ends without counting it).
    fn command(&self) -> (Command, bool) {
        let mut args: Vec<String> = vec![
            "--output=json".into(),
            "--output-fields=SYSLOG_IDENTIFIER,MESSAGE".into(),
            "--no-pager".into(),
        ];
        if let Some(dir) = &self.options.directory {
            args.push(format!("--directory={}", dir.display()));
        }
        let mut only_cursor = false;
        if let Some(refused) = &self.refused {
            // The cursor's own time (`t=`, microseconds), just after it.
            args.push(match cursor_time(refused) {
                Some(us) => format!(
                    "--since=@{}.{:06}",
                    (us + 1) / 1_000_000,
                    (us + 1) % 1_000_000
                ),
                None => {
                    only_cursor = true;
                    "--lines=1".into()
                }
            });
        } else if let Some(cursor) = &self.cursor {
            args.push(format!("--after-cursor={cursor}"));
        } else if let Some(since) = self.since {
            let secs = since
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            args.push(format!("--since=@{secs}"));
        } else if self.start_at == StartAt::End {
            only_cursor = true;
            args.push("--lines=1".into());
        }
        args.push("SYSLOG_FACILITY=2".into());
        (Command::new(&self.options.journalctl, args), only_cursor)
    }

    /// Runs journalctl once for what was logged after the last entry read, reading at most
    /// `max_bytes` of it, and calls `each(identifier, message)` for every complete entry that
    /// has both, in journal order. Blocks for at most [`RUN_DEADLINE`].
    pub fn read(&mut self, max_bytes: usize, mut each: impl FnMut(&str, &str)) -> Progress {
        let mut progress = Progress::default();
        let (cmd, only_cursor) = self.command();
        let shown = cmd.to_string();
        // The options without their values: a new cursor each run is no news.
        let shape: String = cmd
            .args
            .iter()
            .map(|a| {
                a.to_string_lossy()
                    .split('=')
                    .next()
                    .unwrap_or("")
                    .to_owned()
                    + " "
            })
            .collect();
        if self.last_shape.as_deref() != Some(shape.as_str()) {
            progress.started = Some(shown.clone());
            self.last_shape = Some(shape);
        }
        let run_started = SystemTime::now();
        let mut stream = match Stream::start(&cmd) {
            Ok(stream) => stream,
            Err(e) => {
                progress.problem = Some(match e {
                    ExecError::NotFound { command, program } => {
                        JournalError::NotFound { command, program }
                    }
                    other => JournalError::Spawn {
                        command: shown,
                        why: crate::error_chain(&other),
                    },
                });
                return progress;
            }
        };
        if self.buf.is_empty() {
            self.buf = vec![0; READ_CHUNK];
        }
        let deadline = Instant::now() + self.run_deadline;
        let mut splitter = LineSplitter::new(MAX_ENTRY);
        let mut budget = max_bytes;
        let mut ended = false;
        while budget > 0 {
            let want = budget.min(self.buf.len());
            match stream.read_until(&mut self.buf[..want], deadline) {
                Ok(Some(0)) => {
                    ended = true;
                    break;
                }
                Ok(Some(n)) => {
                    budget -= n;
                    progress.bytes += n as u64;
                    let (cursor, newest) = (&mut self.cursor, &mut self.newest);
                    let result = splitter.pieces(&self.buf[..n], |_, piece| {
                        match piece {
                            Piece::Line(line) => match entry(line) {
                                Ok(e) => {
                                    if let (false, Some(ident), Some(text)) =
                                        (only_cursor, &e.identifier, &e.message)
                                    {
                                        each(ident, text);
                                        progress.lines += 1;
                                    }
                                    *newest = e.realtime.or(*newest);
                                    *cursor = Some(e.cursor.into_owned());
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
                Ok(None) => {
                    progress.problem = Some(JournalError::Timeout {
                        command: shown,
                        after: self.run_deadline,
                    });
                    return progress;
                }
                Err(e) => {
                    progress.problem = Some(JournalError::Read {
                        command: shown,
                        why: e.to_string(),
                    });
                    return progress;
                }
            }
        }
        if !ended {
            // The budget is spent: the rest is the next run's (dropping the stream stops this
            // one).
            progress.more = true;
            return progress;
        }
        if self.cursor.is_none() && self.since.is_none() {
            // No mail entry in the journal yet: what comes from now on is new.
            self.since = Some(run_started);
        }
        progress.problem = self.ended(&mut stream, shown);
        progress
    }

    /// A run read to its end: whether it went well, and what it said.
    fn ended(&mut self, stream: &mut Stream, command: String) -> Option<JournalError> {
        // It closed stdout; its exit is a moment away.
        let end = Instant::now() + Duration::from_secs(1);
        let mut finished = stream.exited();
        while finished.is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
            finished = stream.exited();
        }
        let stderr = finished
            .as_ref()
            .map_or_else(|| stream.stderr(), |f| f.stderr.clone());
        let ok = finished.as_ref().is_some_and(|f| f.status.success());
        if ok {
            self.refused = None;
            // journalctl still exits 0 when it may read no journal but the user's own.
            return says_no_permission(&stderr)
                .then_some(JournalError::NoPermission { command, stderr });
        }
        if stderr.contains("cursor") && self.cursor.is_some() {
            self.refused = self.cursor.take();
            return Some(JournalError::CursorRefused { command, stderr });
        }
        if says_no_permission(&stderr) {
            return Some(JournalError::NoPermission { command, stderr });
        }
        Some(JournalError::Exited {
            command,
            status: finished.map_or_else(|| "still running".to_owned(), |f| f.describe_status()),
            stderr,
        })
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
    fn debian_12_journald_captured_counts_like_the_log_file() {
        // tests/systemd/capture-journal.sh: what journald kept of Postfix 3.7.11 in a booted
        // Debian 12, for 2 messages to root, 1 to an unknown user (bounced, its notice to
        // root) and 1 to a closed port (deferred).
        let text = include_str!("../../../tests/fixtures/journal/postfix-3.7.11.jsonl");
        let mut counters = crate::log::counters::Counters::new();
        for line in text.lines() {
            let e = entry(line.as_bytes()).unwrap();
            assert!(e.cursor.starts_with("s="), "{line}");
            let (ident, message) = (e.identifier.unwrap(), e.message.unwrap());
            let l = crate::log::line::from_parts(&ident, &message).unwrap();
            counters.count(&l, "/etc/postfix");
        }
        let flush = counters.flush();
        assert_eq!(flush.lines, 27);
        let by: Vec<(&str, &str, u8, &str, u64)> = flush
            .deliveries
            .iter()
            .map(|(k, f)| {
                (
                    k.status,
                    k.service.as_str(),
                    k.dsn_class,
                    k.relay,
                    f.recipients,
                )
            })
            .collect();
        assert_eq!(
            by,
            [
                ("bounced", "local", 5, "local", 1),
                ("deferred", "smtp", 4, "none", 1),
                ("sent", "local", 2, "local", 3),
            ]
        );
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
        let (argv, only_cursor) = s.command();
        assert_eq!(argv.to_string(), "/usr/bin/journalctl --output=json --output-fields=SYSLOG_IDENTIFIER,MESSAGE --no-pager --directory=/j --lines=1 SYSLOG_FACILITY=2");
        assert!(only_cursor, "the first run of start_at: end counts nothing");
        s.since = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(77));
        assert!(s.command().0.to_string().contains(" --since=@77 "));
        s.cursor = Some("s=1;t=10".into());
        assert!(s
            .command()
            .0
            .to_string()
            .contains(" --after-cursor=s=1;t=10 "));
        s.refused = Some("s=1;t=f4240".into()); // 1,000,000 us
        let (argv, only_cursor) = s.command();
        assert!(argv.to_string().contains(" --since=@1.000001 "), "{argv}");
        assert!(!only_cursor);
        let options = JournalOptions {
            journalctl: "/usr/bin/journalctl".into(),
            directory: None,
        };
        let (argv, only_cursor) =
            JournalSource::open(options.clone(), None, StartAt::Beginning).command();
        assert_eq!(argv.to_string(), "/usr/bin/journalctl --output=json --output-fields=SYSLOG_IDENTIFIER,MESSAGE --no-pager SYSLOG_FACILITY=2");
        assert!(!only_cursor);
        // check's window: from a time, no cursor.
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_613_445);
        let (argv, only_cursor) = JournalSource::since(options, at).command();
        assert_eq!(argv.to_string(), "/usr/bin/journalctl --output=json --output-fields=SYSLOG_IDENTIFIER,MESSAGE --no-pager --since=@1764613445 SYSLOG_FACILITY=2");
        assert!(!only_cursor);
    }

    /// A stand-in for journalctl (failures a real one does not produce on demand): a shell
    /// script run with journalctl's arguments.
    fn fake(dir: &Path, script: &str) -> JournalSource {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("journalctl");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let options = JournalOptions {
            journalctl: path,
            directory: None,
        };
        JournalSource::open(options, Some("s=1;t=f4240".into()), StartAt::End)
    }

    #[test]
    fn a_hung_journalctl_is_stopped_at_the_deadline_and_what_it_gave_counts() {
        let dir = tempfile::tempdir().unwrap();
        let line =
            r#"{"__CURSOR":"s=2;t=1e8480","SYSLOG_IDENTIFIER":"postfix/smtp","MESSAGE":"m"}"#;
        let mut s = fake(dir.path(), &format!("echo '{line}'; exec sleep 100"));
        s.run_deadline = Duration::from_millis(500);
        let started = Instant::now();
        let mut seen = Vec::new();
        let progress = s.read(1 << 20, |i, m| seen.push(format!("{i} {m}")));
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(seen, ["postfix/smtp m"]);
        assert_eq!(s.cursor(), Some("s=2;t=1e8480"));
        assert!(
            matches!(progress.problem, Some(JournalError::Timeout { .. })),
            "{progress:?}"
        );
        assert!(progress
            .started
            .unwrap()
            .contains("--after-cursor=s=1;t=f4240"));
    }

    #[test]
    fn a_failing_journalctl_says_why_and_a_refused_cursor_moves_to_its_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = fake(
            dir.path(),
            "echo 'Failed to open files: Bad message' >&2; exit 1",
        );
        let p = s.read(1 << 20, |_, _| {});
        let e = p.problem.unwrap().to_string();
        assert!(
            e.contains("failed (exit status 1): Failed to open files: Bad message"),
            "{e}"
        );
        assert_eq!(s.cursor(), Some("s=1;t=f4240"), "kept for the next run");
        let mut s = fake(
            dir.path(),
            "echo 'Failed to seek to cursor: Invalid argument' >&2; exit 1",
        );
        let p = s.read(1 << 20, |_, _| {});
        assert!(
            matches!(p.problem, Some(JournalError::CursorRefused { .. })),
            "{p:?}"
        );
        assert!(s.command().0.to_string().contains(" --since=@1.000001 "));
        let mut s = fake(dir.path(), "echo 'Hint: You are currently not seeing messages from other users and the system.' >&2");
        let p = s.read(1 << 20, |_, _| {});
        let e = p.problem.unwrap().to_string();
        assert!(e.contains("usermod -a -G systemd-journal"), "{e}");
        let mut s = fake(dir.path(), "exit 0");
        s.options.journalctl = dir.path().join("nothing-here");
        let p = s.read(1 << 20, |_, _| {});
        assert!(
            matches!(p.problem, Some(JournalError::NotFound { .. })),
            "{p:?}"
        );
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
