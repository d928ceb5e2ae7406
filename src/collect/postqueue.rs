//! Method `postqueue`: ask Postfix for its queue listing with `postqueue -c <dir> -j` (one JSON
//! object per message, Postfix 3.1+) or, on older Postfix, `postqueue -p`, and count messages per
//! queue from it as it streams.
//!
//! Unlike the Datadog check, a message's queue is never guessed from a `*` or `!` anywhere on a
//! line: `-j` names the queue, and in `-p` only the mark right after the queue ID counts.

use std::path::PathBuf;

use std::borrow::Cow;

use serde::Deserialize;

use super::{excerpt, Collection, Limits, LineSplitter, LineTooLong};
use super::{InstanceSettings, Reads};
use crate::exec::{self, Command, ExecError, Failure};
use crate::postconf;
use crate::snapshot::{ListingRules, Recipient, Snapshot};

/// Queues `postqueue -j` reports, in the order we send them: the Datadog check's three first.
pub const JSON_QUEUES: [&str; 5] = ["active", "hold", "deferred", "incoming", "maildrop"];
/// Queues `postqueue -p` can tell apart: its mark shows active and hold; everything else
/// (deferred, incoming, maildrop) looks the same.
pub const TEXT_QUEUES: [&str; 3] = ["active", "hold", "deferred"];
/// A `-j` line holds one message with all its recipients; Postfix bounds neither, we must. 4 MiB
/// is some 25,000 recipients; a longer line fails the collection with a message saying so.
pub const MAX_JSON_LINE: usize = 4 << 20;
/// A `-p` line is one address or reason.
pub const MAX_TEXT_LINE: usize = 1 << 20;

/// The options of one postqueue instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_directory: PathBuf,
    pub postqueue: PathBuf,
    pub postconf: PathBuf,
    /// Age thresholds in seconds for `postfix.queue.older_than`.
    pub age_thresholds: Vec<u64>,
}

/// Postqueue lists every queue of the Postfix instance it asks.
pub const READS: Reads = Reads::LISTING;

impl From<&InstanceSettings> for Options {
    fn from(s: &InstanceSettings) -> Options {
        Options {
            config_directory: s.config_directory.clone(),
            postqueue: s.commands.postqueue.clone(),
            postconf: s.commands.postconf.clone(),
            age_thresholds: s.age_thresholds.clone(),
        }
    }
}

/// The listing format, decided once per instance from the Postfix version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `postqueue -j`, Postfix 3.1 and later.
    Json,
    /// `postqueue -p`, older Postfix.
    Text,
}

#[derive(Debug)]
pub struct Postqueue {
    options: Options,
    /// `mail_version` decides the format: `-j` from Postfix 3.1.
    postconf: postconf::Cache,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Postfix is not running: `{command}` says: {stderr}")]
    MailSystemDown { command: String, stderr: String },
    #[error("`{command}` was refused: this user is not in Postfix's authorized_mailq_users ({stderr}); add it there, or use method: find")]
    NotAuthorized { command: String, stderr: String },
    #[error("`{command}` failed with {status}: {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("cannot read the Postfix parameters")]
    Postconf(#[from] postconf::Error),
    #[error("the output of `{command}` is not understood")]
    Parse {
        command: String,
        #[source]
        source: ParseError,
    },
    #[error(transparent)]
    Exec(#[from] ExecError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    TooLong(#[from] LineTooLong),
    #[error("line {line}: not a JSON queue entry ({reason}): {excerpt}")]
    Json {
        line: u64,
        reason: String,
        excerpt: String,
    },
    #[error("line {line}: not a queue listing line: {excerpt}")]
    Text { line: u64, excerpt: String },
    #[error("the listing ends without its `-- N Kbytes in M Requests.` summary (truncated?)")]
    NoSummary,
    #[error("the listing holds {counted} messages but its summary says {summary}")]
    SummaryMismatch { counted: u64, summary: u64 },
    #[error("empty output (postqueue -p always prints at least `Mail queue is empty`)")]
    Empty,
}

impl Postqueue {
    pub fn new(options: Options) -> Self {
        Postqueue {
            postconf: postconf::Cache::new(&options.postconf, &options.config_directory),
            options,
        }
    }

    pub async fn collect(&mut self, limits: &Limits) -> Collection {
        let mut collection = Collection::default();
        let result = async {
            let params = self.postconf.get(limits).await?;
            let format = if params.version >= (3, 1) {
                Format::Json
            } else {
                Format::Text
            };
            collection.postfix_version = Some(params.mail_version);
            collection.how = match format {
                Format::Json => "postqueue -j".to_owned(),
                Format::Text => "postqueue -p".to_owned(),
            };
            self.list(format, limits).await
        }
        .await;
        match result {
            Ok(snapshot) => collection.snapshot = snapshot,
            Err(e) => collection.errors.push(e.into()),
        }
        collection
    }

    async fn list(&self, format: Format, limits: &Limits) -> Result<Snapshot, Error> {
        let flag = match format {
            Format::Json => "-j",
            Format::Text => "-p",
        };
        let cmd = Command::new(
            &self.options.postqueue,
            [
                "-c".into(),
                self.options.config_directory.clone().into_os_string(),
                flag.into(),
            ],
        );
        let rules = ListingRules::now(&self.options.age_thresholds);
        let mut parser = Parser::new(format, rules);
        let finished = exec::run(&cmd, limits.deadline, &limits.cancel, |chunk| {
            parser.feed(chunk)
        })
        .await
        .map_err(|f| failure(&cmd, f))?;
        // A failed postqueue prints nothing useful on stdout: judge the exit first, so that
        // "mail system is down" is reported as that and not as an empty listing.
        check_status(&cmd, &finished)?;
        parser.finish().map_err(|source| Error::Parse {
            command: cmd.to_string(),
            source,
        })
    }
}

fn failure(cmd: &Command, f: Failure<ParseError>) -> Error {
    match f {
        Failure::Exec(e) => e.into(),
        Failure::Output(source) => Error::Parse {
            command: cmd.to_string(),
            source,
        },
    }
}

/// Sorts a non-zero exit into the causes an admin can act on.
fn check_status(cmd: &Command, finished: &exec::Finished) -> Result<(), Error> {
    if finished.status.success() {
        return Ok(());
    }
    let command = cmd.to_string();
    let stderr = finished.stderr.clone();
    // postqueue's own wording (postqueue.c); its exit codes (69, 77) are shared with other
    // failures, so the text is what tells them apart.
    if stderr.contains("mail system is down") {
        Err(Error::MailSystemDown { command, stderr })
    } else if stderr.contains("is not allowed to view the mail queue") {
        Err(Error::NotAuthorized { command, stderr })
    } else {
        Err(Error::Failed {
            command,
            status: finished.describe_status(),
            stderr,
        })
    }
}

/// A streaming parser for either listing format: feed it chunks, then `finish`.
#[derive(Debug)]
pub struct Parser {
    format: Format,
    lines: LineSplitter,
    snapshot: Snapshot,
    rules: ListingRules,
    text: TextState,
}

#[derive(Debug, Default)]
struct TextState {
    /// Any line at all was seen.
    seen: bool,
    empty_notice: bool,
    summary: Option<u64>,
    counted: u64,
}

/// The members of a `-j` entry we read; the rest (and any a future Postfix adds) are ignored.
/// Strings borrow from the line unless they hold escapes.
#[derive(Deserialize)]
struct JsonEntry<'a> {
    #[serde(borrow)]
    queue_name: Cow<'a, str>,
    #[serde(default)]
    arrival_time: Option<i64>,
    #[serde(default)]
    message_size: Option<u64>,
    #[serde(default, borrow)]
    recipients: Vec<JsonRecipient<'a>>,
}

#[derive(Deserialize)]
struct JsonRecipient<'a> {
    #[serde(borrow)]
    address: Cow<'a, str>,
    #[serde(default, borrow)]
    delay_reason: Option<Cow<'a, str>>,
}

impl Parser {
    pub fn new(format: Format, rules: ListingRules) -> Self {
        let mut snapshot = Snapshot::default();
        match format {
            Format::Json => JSON_QUEUES
                .iter()
                .for_each(|q| snapshot.add_listed(q, &rules)),
            Format::Text => TEXT_QUEUES.iter().for_each(|q| snapshot.add(q, 0)),
        }
        Parser {
            format,
            lines: LineSplitter::new(match format {
                Format::Json => MAX_JSON_LINE,
                Format::Text => MAX_TEXT_LINE,
            }),
            snapshot,
            rules,
            text: TextState::default(),
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ParseError> {
        let Parser {
            format,
            lines,
            snapshot,
            rules,
            text,
        } = self;
        lines.feed(chunk, |n, line| match format {
            Format::Json => json_line(snapshot, rules, n, line),
            Format::Text => text_line(snapshot, text, n, line),
        })
    }

    pub fn finish(mut self) -> Result<Snapshot, ParseError> {
        let Parser {
            format,
            lines,
            snapshot,
            rules,
            text,
        } = &mut self;
        lines.finish(|n, line| match format {
            Format::Json => json_line(snapshot, rules, n, line),
            Format::Text => text_line(snapshot, text, n, line),
        })?;
        if self.format == Format::Text {
            let t = &self.text;
            if !t.seen {
                return Err(ParseError::Empty);
            }
            if !t.empty_notice {
                match t.summary {
                    None => return Err(ParseError::NoSummary),
                    Some(s) if s != t.counted => {
                        return Err(ParseError::SummaryMismatch {
                            counted: t.counted,
                            summary: s,
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(self.snapshot)
    }
}

/// Parses a whole listing at once (tests, benchmarks, fuzzing).
pub fn parse(format: Format, rules: ListingRules, input: &[u8]) -> Result<Snapshot, ParseError> {
    let mut p = Parser::new(format, rules);
    p.feed(input)?;
    p.finish()
}

fn json_line(
    snapshot: &mut Snapshot,
    rules: &ListingRules,
    n: u64,
    line: &[u8],
) -> Result<(), ParseError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let entry: JsonEntry = serde_json::from_slice(line).map_err(|e| ParseError::Json {
        line: n,
        reason: e.to_string(),
        excerpt: excerpt(line),
    })?;
    // Only the five queues exist; a name we do not know is not counted as any of them.
    if JSON_QUEUES.contains(&entry.queue_name.as_ref()) {
        let recipients: Vec<Recipient> = entry
            .recipients
            .iter()
            .map(|r| Recipient {
                address: &r.address,
                delay_reason: r.delay_reason.as_deref(),
            })
            .collect();
        snapshot.record(
            &entry.queue_name,
            rules,
            entry.arrival_time,
            entry.message_size,
            &recipients,
        );
    }
    Ok(())
}

fn text_line(
    snapshot: &mut Snapshot,
    state: &mut TextState,
    n: u64,
    line: &[u8],
) -> Result<(), ParseError> {
    state.seen = true;
    let bad = || ParseError::Text {
        line: n,
        excerpt: excerpt(line),
    };
    let Some(&first) = line.first() else {
        return Ok(()); // the blank line after each message
    };
    if line == b"Mail queue is empty" {
        state.empty_notice = true;
        return Ok(());
    }
    // "-Queue ID-  --Size-- ...", or "----Queue ID----- --Size-- ..." with long queue IDs.
    if first == b'-' && line.windows(9).any(|w| w == b"Queue ID-") {
        return Ok(());
    }
    if let Some(rest) = line.strip_prefix(b"-- ") {
        // "-- 12 Kbytes in 3 Requests." (or "Request.")
        let text = std::str::from_utf8(rest).map_err(|_| bad())?;
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        match words.as_slice() {
            [_, "Kbytes", "in", m, req] if req.starts_with("Request") => {
                state.summary = Some(m.parse().map_err(|_| bad())?);
                return Ok(());
            }
            _ => return Err(bad()),
        }
    }
    if first == b' ' || first == b'\t' || first == b'(' {
        return Ok(()); // a recipient, or a delay reason
    }
    if !first.is_ascii_alphanumeric() {
        return Err(bad());
    }
    // "<queue id><marks> <size> <arrival time> <sender>": the marks, if any, are the bytes right
    // after the ID (`*` active, `!` hold, `#` forced to expire; a held message being expired
    // shows `!#`); what follows them must be blank space, then the size.
    let id_len = line
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
        .ok_or_else(bad)?;
    let after_id = &line[id_len..];
    let marks_len = after_id
        .iter()
        .position(|b| !matches!(b, b'*' | b'!' | b'#'))
        .unwrap_or(after_id.len());
    let (marks, rest) = after_id.split_at(marks_len);
    let size = rest.trim_ascii_start();
    if size.len() == rest.len() || !size.first().is_some_and(u8::is_ascii_digit) {
        return Err(bad());
    }
    let queue = if marks.contains(&b'*') {
        "active"
    } else if marks.contains(&b'!') {
        "hold"
    } else {
        "deferred"
    };
    snapshot.add(queue, 1);
    state.counted += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(s: &Snapshot) -> Vec<(&str, u64)> {
        s.queues
            .iter()
            .map(|q| (q.queue.as_str(), q.messages))
            .collect()
    }

    #[test]
    fn text_marks_only_count_right_after_the_id() {
        let input = br"-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
4C0D6280E4*     339 Sat Nov 28 10:00:00  a*b@example.com
                                         bang!path@example.com

4C0D6280E5!     339 Sat Nov 28 10:00:00  x@example.com
(connection refused * ! here)
                                         y*@example.com

4C0D6280E6      339 Sat Nov 28 10:00:00  wow!@example.com
                                         (deferred: mail*box ! full)
                                         z@example.com

-- 1 Kbytes in 3 Requests.
";
        let s = parse(Format::Text, ListingRules::default(), input).unwrap();
        assert_eq!(
            counts(&s),
            vec![("active", 1), ("hold", 1), ("deferred", 1)]
        );
    }

    #[test]
    fn text_rejects_truncation_and_garbage() {
        let truncated = b"-Queue ID-  --Size--\n4C0D6280E4*     339 Sat Nov 28 10:00:00  a@b\n";
        assert_eq!(
            parse(Format::Text, ListingRules::default(), truncated),
            Err(ParseError::NoSummary)
        );
        let mismatch =
            b"4C0D6280E4*     339 Sat Nov 28 10:00:00  a@b\n-- 1 Kbytes in 2 Requests.\n";
        assert_eq!(
            parse(Format::Text, ListingRules::default(), mismatch),
            Err(ParseError::SummaryMismatch {
                counted: 1,
                summary: 2
            })
        );
        assert!(matches!(
            parse(
                Format::Text,
                ListingRules::default(),
                b"<html>oops</html>\n"
            ),
            Err(ParseError::Text { line: 1, .. })
        ));
        assert!(matches!(
            parse(Format::Text, ListingRules::default(), b"4C0D6280E4*oops\n"),
            Err(ParseError::Text { line: 1, .. })
        ));
        assert_eq!(
            parse(Format::Text, ListingRules::default(), b""),
            Err(ParseError::Empty)
        );
    }

    #[test]
    fn json_counts_by_queue_name_and_ignores_unknown_members() {
        let input = br#"{"queue_name": "deferred", "queue_id": "A", "new_member": [1,2]}
{"queue_name": "maildrop", "queue_id": "B"}

{"queue_name": "deferred", "queue_id": "C"}
{"queue_name": "future", "queue_id": "D"}"#;
        let s = parse(Format::Json, ListingRules::default(), input).unwrap();
        assert_eq!(
            counts(&s),
            vec![
                ("active", 0),
                ("hold", 0),
                ("deferred", 2),
                ("incoming", 0),
                ("maildrop", 1)
            ]
        );
    }

    /// The real capture, with "now" fixed: every figure checked against an independent reading
    /// of the same file.
    #[test]
    fn json_listing_figures_match_the_capture() {
        let input = include_bytes!("../../tests/fixtures/postqueue-j/mixed.jsonl");
        let entries: Vec<serde_json::Value> = input
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let newest = entries
            .iter()
            .map(|e| e["arrival_time"].as_i64().unwrap())
            .max()
            .unwrap();
        let now = newest + 3600;
        let rules = ListingRules {
            now,
            age_thresholds: vec![60, 3599, 3600 + 120],
        };
        let s = parse(Format::Json, rules, input).unwrap();
        for q in JSON_QUEUES {
            let mine: Vec<&serde_json::Value> =
                entries.iter().filter(|e| e["queue_name"] == q).collect();
            let stats = s.get(q).unwrap();
            let l = stats.listing.as_ref().unwrap();
            assert_eq!(stats.messages, mine.len() as u64, "{q}");
            let bytes: u64 = mine
                .iter()
                .map(|e| e["message_size"].as_u64().unwrap())
                .sum();
            assert_eq!(l.bytes, bytes, "{q}");
            let rcpts: usize = mine
                .iter()
                .map(|e| e["recipients"].as_array().unwrap().len())
                .sum();
            assert_eq!(l.recipients, rcpts as u64, "{q}");
            let ages: Vec<i64> = mine
                .iter()
                .map(|e| now - e["arrival_time"].as_i64().unwrap())
                .collect();
            assert_eq!(
                l.oldest_age,
                ages.iter().copied().max().unwrap_or(0) as u64,
                "{q}"
            );
            for (i, t) in [60, 3599, 3720].iter().enumerate() {
                assert_eq!(
                    l.older_than[i],
                    ages.iter().filter(|a| **a > *t).count() as u64,
                    "{q} > {t}"
                );
            }
        }
        // All seven deferred recipients were refused by the closed relay port.
        let d = s.get("deferred").unwrap().listing.as_ref().unwrap();
        assert_eq!(
            d.reasons[crate::reason::Reason::ConnectionRefused.index()],
            7
        );
    }

    #[test]
    fn json_rejects_garbage_and_deep_nesting() {
        assert!(matches!(
            parse(
                Format::Json,
                ListingRules::default(),
                b"{\"queue_name\": \"deferred\"\n"
            ),
            Err(ParseError::Json { line: 1, .. })
        ));
        let deep = format!("{{\"x\":{}{}}}\n", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            parse(Format::Json, ListingRules::default(), deep.as_bytes()),
            Err(ParseError::Json { line: 1, .. })
        ));
        assert!(matches!(
            parse(Format::Json, ListingRules::default(), b"\xff\xfe\0\n"),
            Err(ParseError::Json { line: 1, .. })
        ));
    }
}
