//! `postqueue -j` (Postfix 3.1+): one JSON object per line and per message, naming its queue and
//! giving its arrival time, size and recipients with their delay reasons.

use std::borrow::Cow;

use serde::Deserialize;

use super::{ParseError, MAX_MESSAGE};
use crate::lines::{excerpt, LineSplitter};
use crate::queue::ListingFormat;
use crate::snapshot::{ListingRules, Recipient, Snapshot};

/// A streaming parser: feed it chunks, then `finish`.
#[derive(Debug)]
pub struct Parser {
    lines: LineSplitter,
    messages: Messages,
}

/// The figures of the messages listed so far.
#[derive(Debug)]
struct Messages {
    snapshot: Snapshot,
    rules: ListingRules,
}

/// The members of a `-j` entry we read; the rest (and any a future Postfix adds) are ignored.
/// Strings borrow from the line unless they hold escapes.
#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    queue_name: Cow<'a, str>,
    #[serde(default)]
    arrival_time: Option<i64>,
    #[serde(default)]
    message_size: Option<u64>,
    #[serde(default, borrow)]
    recipients: Vec<EntryRecipient<'a>>,
}

#[derive(Deserialize)]
struct EntryRecipient<'a> {
    #[serde(borrow)]
    address: Cow<'a, str>,
    #[serde(default, borrow)]
    delay_reason: Option<Cow<'a, str>>,
}

impl Parser {
    pub fn new(rules: ListingRules) -> Self {
        Parser {
            // A line is a message with all its recipients.
            lines: LineSplitter::new(MAX_MESSAGE),
            messages: Messages {
                snapshot: Snapshot::listed(ListingFormat::Structured.queues(), &rules),
                rules,
            },
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ParseError> {
        self.lines
            .feed(chunk, |n, line| self.messages.line(n, line))
    }

    pub fn finish(mut self) -> Result<Snapshot, ParseError> {
        self.lines.finish(|n, line| self.messages.line(n, line))?;
        Ok(self.messages.snapshot)
    }
}

/// Parses a whole listing at once (tests, benchmarks, fuzzing).
pub fn parse(rules: ListingRules, input: &[u8]) -> Result<Snapshot, ParseError> {
    let mut p = Parser::new(rules);
    p.feed(input)?;
    p.finish()
}

impl Messages {
    fn line(&mut self, n: u64, line: &[u8]) -> Result<(), ParseError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let entry: Entry = serde_json::from_slice(line).map_err(|e| ParseError::Json {
            line: n,
            reason: e.to_string(),
            excerpt: excerpt(line),
        })?;
        if ListingFormat::Structured.names(&entry.queue_name) {
            let recipients: Vec<Recipient> = entry
                .recipients
                .iter()
                .map(|r| Recipient {
                    address: &r.address,
                    delay_reason: r.delay_reason.as_deref(),
                })
                .collect();
            self.snapshot.record(
                &entry.queue_name,
                &self.rules,
                entry.arrival_time,
                entry.message_size,
                &recipients,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::listing::tests::counts;
    use crate::queue::LISTED;

    #[test]
    fn counts_by_queue_name_and_ignores_unknown_members() {
        let input = br#"{"queue_name": "deferred", "queue_id": "A", "new_member": [1,2]}
{"queue_name": "maildrop", "queue_id": "B"}

{"queue_name": "deferred", "queue_id": "C"}
{"queue_name": "future", "queue_id": "D"}"#;
        let s = parse(ListingRules::default(), input).unwrap();
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
    fn listing_figures_match_the_capture() {
        let input = include_bytes!("../../../tests/fixtures/postqueue-j/mixed.jsonl");
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
        let s = parse(rules, input).unwrap();
        for q in LISTED {
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
    fn rejects_garbage_and_deep_nesting() {
        assert!(matches!(
            parse(ListingRules::default(), b"{\"queue_name\": \"deferred\"\n"),
            Err(ParseError::Json { line: 1, .. })
        ));
        let deep = format!("{{\"x\":{}{}}}\n", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            parse(ListingRules::default(), deep.as_bytes()),
            Err(ParseError::Json { line: 1, .. })
        ));
        assert!(matches!(
            parse(ListingRules::default(), b"\xff\xfe\0\n"),
            Err(ParseError::Json { line: 1, .. })
        ));
    }
}
