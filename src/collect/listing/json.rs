//! `postqueue -j` (Postfix 3.1+): one JSON object per line and per message, naming its queue and
//! giving its arrival time, size and recipients with their delay reasons.
//!
//! A line longer than [`MAX_MESSAGE`] is not held: its head (the members before `recipients`,
//! which showq_json.c writes first) is parsed from its first bytes, and the rest is followed
//! byte by byte, only to check that the line is one JSON object, then forgotten.

use std::borrow::Cow;

use serde::Deserialize;

use super::{ParseError, MAX_MESSAGE};
use crate::lines::{excerpt, LineSplitter, Piece};
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
    /// The line past the bound being read, between its head and its end.
    cut: Option<Cut>,
}

/// The members before `recipients` of a line past the bound must lie within its first this many
/// bytes (Postfix writes a queue name, an ID, two numbers, a flag and a sender there).
const HEAD_MAX: usize = 64 << 10;

/// A line past the bound: what its head said, and the shape of what followed.
#[derive(Debug)]
struct Cut {
    queue_name: String,
    queue_id: String,
    arrival_time: Option<i64>,
    message_size: Option<u64>,
    shape: Shape,
}

/// Where a byte stream stands in one JSON object, following strings (and the escapes in them)
/// and nesting, in constant memory: enough to find the top-level members and to tell that a
/// cut line holds one object and nothing after it, whatever its strings contain.
#[derive(Debug, Default)]
struct Shape {
    depth: u64,
    in_string: bool,
    escaped: bool,
    closed: bool,
}

impl Shape {
    /// Follows `bytes`, calling `member(i)` at each `{` or `,` that opens a member of the
    /// top-level object.
    fn feed(&mut self, bytes: &[u8], mut member: impl FnMut(usize)) -> Result<(), &'static str> {
        for (i, &b) in bytes.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            let outside = self.depth == 0;
            match b {
                _ if b.is_ascii_whitespace() => {}
                _ if self.closed => return Err("data after the object"),
                b'{' => {
                    self.depth += 1;
                    if outside {
                        member(i);
                    }
                }
                _ if outside => return Err("not a JSON object"),
                b'"' => self.in_string = true,
                b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    self.closed = self.depth == 0;
                }
                b',' if self.depth == 1 => member(i),
                _ => {}
            }
        }
        Ok(())
    }

    fn end(&self) -> Result<(), &'static str> {
        if self.closed {
            Ok(())
        } else {
            Err("the line ends inside its object")
        }
    }
}

/// The members of a `-j` entry we read; the rest (and any a future Postfix adds) are ignored.
/// Strings borrow from the line unless they hold escapes.
#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    queue_name: Cow<'a, str>,
    #[serde(default, borrow)]
    queue_id: Option<Cow<'a, str>>,
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
                cut: None,
            },
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ParseError> {
        self.lines
            .pieces(chunk, |n, piece| self.messages.piece(n, piece))
    }

    pub fn finish(mut self) -> Result<Snapshot, ParseError> {
        self.lines
            .finish_pieces(|n, piece| self.messages.piece(n, piece))?;
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
    fn piece(&mut self, n: u64, piece: Piece<'_>) -> Result<(), ParseError> {
        let fail = |reason: &str, bytes: &[u8]| ParseError::Json {
            line: n,
            reason: format!("a line of more than {MAX_MESSAGE} bytes: {reason}"),
            excerpt: excerpt(bytes),
        };
        match piece {
            Piece::Line(line) => self.line(n, line),
            Piece::Head(head) => {
                self.cut = Some(Cut::start(head).map_err(|reason| fail(&reason, head))?);
                Ok(())
            }
            Piece::Tail(tail) => match &mut self.cut {
                Some(cut) => cut.shape.feed(tail, |_| {}).map_err(|r| fail(r, tail)),
                None => Ok(()),
            },
            Piece::End => {
                let Some(cut) = self.cut.take() else {
                    return Ok(());
                };
                cut.shape.end().map_err(|r| fail(r, b""))?;
                if ListingFormat::Structured.names(&cut.queue_name) {
                    self.snapshot.record_truncated(
                        &cut.queue_name,
                        &self.rules,
                        cut.arrival_time,
                        cut.message_size,
                        &cut.queue_id,
                    );
                }
                Ok(())
            }
        }
    }

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

impl Cut {
    /// Reads the head of a line past the bound: the members before `recipients`, parsed as an
    /// object of their own (copied, at most `HEAD_MAX` bytes), and the shape of all of `head`.
    fn start(head: &[u8]) -> Result<Cut, String> {
        let mut shape = Shape::default();
        let mut recipients = None;
        shape.feed(head, |i| {
            let rest = head[i + 1..].trim_ascii_start();
            if recipients.is_none() && i < HEAD_MAX && rest.starts_with(b"\"recipients\"") {
                recipients = Some(i);
            }
        })?;
        let end = recipients
            .ok_or_else(|| format!("no `recipients` member in its first {HEAD_MAX} bytes"))?;
        // `{"queue_name": ..., "sender": "...",` becomes `{... "sender": "..."}`.
        let mut members = head[..=end].to_vec();
        if members.last() == Some(&b',') {
            members.pop();
        }
        members.push(b'}');
        let entry: Entry = serde_json::from_slice(&members).map_err(|e| e.to_string())?;
        Ok(Cut {
            queue_name: entry.queue_name.into_owned(),
            queue_id: entry.queue_id.map(Cow::into_owned).unwrap_or_default(),
            arrival_time: entry.arrival_time,
            message_size: entry.message_size,
            shape,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::listing::tests::{
        assert_newsletter_counted, counts, json_listing, newsletter_queue, random_chunks, rules,
    };
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

    /// The newsletter's line is some 13.7 MB: counted from its head, never held, and fed
    /// whole or in random pieces the figures are the same.
    #[test]
    fn an_oversized_message_is_counted_not_fatal() {
        let input = json_listing(&newsletter_queue());
        let longest = input.split(|&b| b == b'\n').map(<[u8]>::len).max();
        assert!(longest > Some(13_000_000), "{longest:?}");
        assert_newsletter_counted(&parse(rules(), &input).unwrap());
        for seed in [1, 2, 3] {
            let mut p = Parser::new(rules());
            for piece in random_chunks(&input, seed) {
                p.feed(piece).unwrap();
                assert!(p.lines.capacity() <= MAX_MESSAGE, "{}", p.lines.capacity());
            }
            assert_newsletter_counted(&p.finish().unwrap());
        }
    }

    /// Strings of a cut line may hold anything JSON allows (quotes, braces, a fake
    /// `"recipients"` member): the head and the end of the object are still found. What is
    /// not one object, or has no head we can read, is still an error.
    #[test]
    fn an_oversized_line_is_followed_through_its_strings() {
        let filler = "x".repeat(MAX_MESSAGE);
        let tricky = r#"a\"}, \"recipients\": [\\"#;
        let line = format!(
            "{{\"queue_name\": \"hold\", \"queue_id\": \"ABC\", \"sender\": \"{tricky}\", \"recipients\": [{{\"address\": \"{tricky}{filler}]}}\"}}]}}\n"
        );
        let s = parse(rules(), line.as_bytes()).unwrap();
        assert_eq!(s.messages("hold"), Some(1));
        assert_eq!(s.truncated.ids, vec!["ABC".to_owned()]);
        let fails = |line: String| {
            let err = parse(rules(), line.as_bytes()).unwrap_err();
            assert!(matches!(err, ParseError::Json { line: 1, .. }), "{err}");
        };
        // Not closed; something after the object; no recipients member in the head; not JSON.
        fails(format!(
            "{{\"queue_name\": \"hold\", \"recipients\": [\"{filler}\"]"
        ));
        fails(format!(
            "{{\"queue_name\": \"hold\", \"recipients\": [\"{filler}\"]}} x"
        ));
        fails(format!(
            "{{\"queue_name\": \"hold\", \"other\": \"{filler}\"}}"
        ));
        fails(format!(
            "{{\"queue_name\": hold, \"recipients\": [\"{filler}\"]}}"
        ));
        fails(filler.clone());
        // A line just within the bound is an ordinary line.
        let within = r#"{"queue_name": "hold", "x": ""}"#;
        let pad = " ".repeat(MAX_MESSAGE - within.len());
        let s = parse(rules(), format!("{pad}{within}\n").as_bytes()).unwrap();
        assert_eq!((s.messages("hold"), s.truncated.messages), (Some(1), 0));
    }

    /// 140,000 recipients in 3.7 MB, under the bound: parsed whole, every recipient counted,
    /// in linear time (a quadratic de-duplication took 55 s of CPU here).
    #[test]
    fn a_message_of_140000_recipients_under_the_bound_is_read_whole() {
        let recipients: Vec<String> = (0..140_000)
            .map(|i| format!("{{\"address\": \"u{i}@x{}\"}}", i % 9))
            .collect();
        let line = format!(
            "{{\"queue_name\": \"deferred\", \"arrival_time\": 1, \"recipients\": [{}]}}\n",
            recipients.join(", ")
        );
        assert!(
            (3_500_000..MAX_MESSAGE).contains(&line.len()),
            "{}",
            line.len()
        );
        let started = std::time::Instant::now();
        let s = parse(rules(), line.as_bytes()).unwrap();
        let l = s.get("deferred").unwrap().listing.as_ref().unwrap();
        assert_eq!((l.recipients, s.truncated.messages), (140_000, 0));
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
}
