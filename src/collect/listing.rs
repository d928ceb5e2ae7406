//! The queue listings Postfix writes, parsed: pure streaming parsers, fed bytes as they arrive,
//! giving a [`Snapshot`]; no process, no socket, no file. The methods that read a listing
//! (postqueue, showq) do the I/O and hand each chunk here.
//!
//! - [`json`]: `postqueue -j`, one JSON object per message (Postfix 3.1+);
//! - [`attr`]: showq's attribute stream, what `postqueue -j` itself reads (Postfix 3.1+);
//! - [`text`]: the `postqueue -p` text, which older Postfix's showq also sends;
//! - [`qfile`] and [`defer`]: what showq itself reads, a queue file and its defer log, read
//!   the way showq reads them (method scan).
//!
//! Which Postfix writes which, and which queues each can name, is `crate::queue`'s.
//!
//! A message longer than [`MAX_MESSAGE`] (anyone who can send mail can queue one) is counted
//! from what comes before its recipients and reported in [`Snapshot::truncated`], never a
//! failure; [`TruncationLog`] is how the methods name it in the log.

pub mod attr;
pub mod defer;
pub mod json;
pub mod qfile;
pub mod text;

use std::collections::HashSet;
use std::path::Path;

use crate::snapshot::Snapshot;

/// One message with all its recipients (a `-j` line, an attribute-stream group): Postfix bounds
/// neither, we must. 4 MiB is some 25,000 recipients; a longer message is truncated: counted
/// from its head, its recipients skipped unheld. Fuzzing lowers the bound so that small inputs
/// reach the truncating paths.
pub const MAX_MESSAGE: usize = if cfg!(fuzzing) { 4 << 10 } else { 4 << 20 };

/// Why a listing was not understood, whichever its format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
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
    #[error("an attribute is longer than {} bytes", attr::MAX_TOKEN)]
    AttributeTooLong,
    #[error("message {message}: {name} is not a number: {value:?}")]
    Number {
        message: u64,
        name: &'static str,
        value: String,
    },
    #[error("the stream ends before its end marker (truncated)")]
    Truncated,
    #[error("data after the end marker")]
    TrailingData,
}

/// A parser for the format a method chose at run time, from the Postfix version.
#[derive(Debug)]
pub enum Parser {
    Json(json::Parser),
    Attributes(attr::Parser),
    Text(text::Parser),
}

impl Parser {
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ParseError> {
        match self {
            Parser::Json(p) => p.feed(chunk),
            Parser::Attributes(p) => p.feed(chunk),
            Parser::Text(p) => p.feed(chunk),
        }
    }

    pub fn finish(self) -> Result<Snapshot, ParseError> {
        match self {
            Parser::Json(p) => p.finish(),
            Parser::Attributes(p) => p.finish(),
            Parser::Text(p) => p.finish(),
        }
    }
}

/// Names truncated messages in the log, once per queue ID rather than every run: a message
/// that stays queued (a deferred newsletter stays up to five days) is named when it first
/// shows up truncated. What is remembered is the last listing's truncated IDs, so memory is
/// bounded as a snapshot's list is (`snapshot::MAX_TRUNCATED_IDS`) and an ID that leaves and
/// comes back (Postfix reuses short queue IDs) is another message, named again. A method keeps
/// one (a reload starts afresh, and names them again once).
#[derive(Debug, Default)]
pub struct TruncationLog {
    named: HashSet<String>,
}

impl TruncationLog {
    /// Logs the truncated messages of `snapshot` not truncated in the last listing, and
    /// remembers them. Only a listing that was read whole comes here: a failed run forgets
    /// nothing.
    pub fn note(&mut self, snapshot: &Snapshot, config_directory: &Path) {
        for id in self.news(snapshot) {
            tracing::warn!(
                queue_id = %id,
                config_directory = %config_directory.display(),
                "message {id} is listed in more than {MAX_MESSAGE} bytes: it counts in its queue's size, bytes and ages, its recipients are skipped"
            );
        }
    }

    /// The truncated IDs of `snapshot` not named after the last listing; remembers them all.
    fn news<'a>(&mut self, snapshot: &'a Snapshot) -> Vec<&'a str> {
        let ids = &snapshot.truncated.ids;
        let news = ids
            .iter()
            .filter(|id| !self.named.contains(*id))
            .map(String::as_str)
            .collect();
        self.named = ids.iter().cloned().collect();
        news
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::snapshot::{ListingRules, Snapshot};

    /// Each queue's message count, in the snapshot's order, for comparing with a literal.
    pub fn counts(s: &Snapshot) -> Vec<(&str, u64)> {
        s.queues
            .iter()
            .map(|q| (q.queue.as_str(), q.messages))
            .collect()
    }

    /// A message truncated run after run is named once; one that left and came back (a reused
    /// queue ID) is named again.
    #[test]
    fn truncated_messages_are_named_once() {
        let mut log = super::TruncationLog::default();
        let listing = |ids: &[&str]| {
            let mut s = Snapshot::default();
            for id in ids {
                s.record_truncated("deferred", &rules(), None, None, id);
            }
            s
        };
        let (ab, b, a) = (listing(&["A", "B"]), listing(&["B"]), listing(&["A"]));
        assert_eq!(log.news(&ab), vec!["A", "B"]);
        assert!(log.news(&ab).is_empty());
        assert!(log.news(&b).is_empty());
        assert_eq!(log.news(&a), vec!["A"]);
    }

    /// "Now" for the generated listings.
    pub const NOW: i64 = 1_800_000_000;

    pub fn rules() -> ListingRules {
        ListingRules {
            now: NOW,
            age_thresholds: vec![300, 3600],
        }
    }

    /// One message of a generated listing.
    pub struct Message {
        pub id: String,
        pub arrival: i64,
        pub size: u64,
        /// (address, delay reason)
        pub recipients: Vec<(String, String)>,
    }

    /// Three ordinary deferred messages and, second, the newsletter a hostile or careless
    /// sender can queue: 140,000 recipients, each with its delay reason, the oldest message.
    pub fn newsletter_queue() -> Vec<Message> {
        let reason = "connect to mx.example.com[192.0.2.10]:25: Connection refused";
        let message = |id: &str, age: i64, size: u64, n: usize| Message {
            id: id.to_owned(),
            arrival: NOW - age,
            size,
            recipients: (0..n)
                .map(|i| (format!("user{i}@d{}.example", i % 7), reason.to_owned()))
                .collect(),
        };
        vec![
            message("4C0D6280E1", 100, 1000, 1),
            message("NEWSLETTER1", 4000, 50_000, 140_000),
            message("4C0D6280E2", 400, 2000, 2),
            message("4C0D6280E3", 10, 3000, 3),
        ]
    }

    /// The messages as `postqueue -j` lists them (showq_json.c's member order), all deferred.
    pub fn json_listing(messages: &[Message]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            let recipients: Vec<serde_json::Value> = m
                .recipients
                .iter()
                .map(|(a, r)| serde_json::json!({"address": a, "delay_reason": r}))
                .collect();
            let head = format!(
                "{{\"queue_name\": \"deferred\", \"queue_id\": \"{}\", \"arrival_time\": {}, \"message_size\": {}, \"forced_expire\": false, \"sender\": \"news@example.com\", \"recipients\": ",
                m.id, m.arrival, m.size
            );
            out.extend_from_slice(head.as_bytes());
            serde_json::to_writer(&mut out, &recipients).unwrap();
            out.extend_from_slice(b"}\n");
        }
        out
    }

    /// The same messages as showq's attribute stream (3.6+, with its announcement).
    pub fn attr_stream(messages: &[Message]) -> Vec<u8> {
        let mut out = b"protocol\0mail_queue_list_protocol\0\0".to_vec();
        let pair = |out: &mut Vec<u8>, name: &str, value: &str| {
            for part in [name, value] {
                out.extend_from_slice(part.as_bytes());
                out.push(0);
            }
        };
        for m in messages {
            pair(&mut out, "queue_name", "deferred");
            pair(&mut out, "queue_id", &m.id);
            pair(&mut out, "time", &m.arrival.to_string());
            pair(&mut out, "size", &m.size.to_string());
            pair(&mut out, "sender", "news@example.com");
            for (address, reason) in &m.recipients {
                pair(&mut out, "recipient", address);
                pair(&mut out, "reason", reason);
            }
            out.push(0);
        }
        out.push(0);
        out
    }

    /// `input` in pieces of random sizes from 1 byte to 256 KiB (a fixed seed).
    pub fn random_chunks(input: &[u8], mut seed: u64) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            // xorshift64: no dependency for a test's dice.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = (seed % (256 << 10)) as usize + 1;
            let (piece, after) = rest.split_at(n.min(rest.len()));
            out.push(piece);
            rest = after;
        }
        out
    }

    /// What a listing of `newsletter_queue` must give, however it was fed: every message in
    /// the size, bytes and ages; the newsletter truncated, and none of its recipients counted.
    pub fn assert_newsletter_counted(s: &Snapshot) {
        let d = s.get("deferred").unwrap();
        assert_eq!(d.messages, 4);
        let l = d.listing.as_ref().unwrap();
        assert_eq!(l.bytes, 56_000);
        assert_eq!(l.oldest_age, 4000);
        assert_eq!(l.older_than, vec![2, 1]);
        assert_eq!(l.recipients, 6);
        assert_eq!(s.truncated.messages, 1);
        assert_eq!(s.truncated.ids, vec!["NEWSLETTER1".to_owned()]);
    }
}
