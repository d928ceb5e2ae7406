//! The `postqueue -p` text, which older Postfix's showq also sends: counts per queue, checked
//! against the listing's own summary line so that a truncated listing is an error, not a
//! smaller queue.
//!
//! Unlike the Datadog check, a message's queue is never guessed from a `*` or `!` anywhere on a
//! line: only the mark right after the queue ID counts.

use super::ParseError;
use crate::lines::{excerpt, LineSplitter, Piece};
use crate::queue::{self, ListingFormat};
use crate::snapshot::Snapshot;

/// A `-p` line is one address or reason. A longer line is read by its first `MAX_LINE` bytes
/// and the rest skipped: every line says what it is (and a message line its queue) at its
/// start, and `-p` gives nothing but the count, so nothing is lost and nothing is reported.
pub const MAX_LINE: usize = 1 << 20;

/// A streaming parser: feed it chunks, then `finish`.
#[derive(Debug)]
pub struct Parser {
    lines: LineSplitter,
    state: State,
}

/// What the lines so far said.
#[derive(Debug)]
struct State {
    snapshot: Snapshot,
    /// Any line at all was seen.
    seen: bool,
    empty_notice: bool,
    summary: Option<u64>,
    counted: u64,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new()
    }
}

impl Parser {
    pub fn new() -> Self {
        Parser {
            lines: LineSplitter::new(MAX_LINE),
            state: State {
                snapshot: Snapshot::empty(ListingFormat::Text.queues()),
                seen: false,
                empty_notice: false,
                summary: None,
                counted: 0,
            },
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ParseError> {
        self.lines
            .pieces(chunk, |n, piece| self.state.piece(n, piece))
    }

    pub fn finish(mut self) -> Result<Snapshot, ParseError> {
        self.lines
            .finish_pieces(|n, piece| self.state.piece(n, piece))?;
        let t = self.state;
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
        Ok(t.snapshot)
    }
}

/// Parses a whole listing at once (tests, fuzzing).
pub fn parse(input: &[u8]) -> Result<Snapshot, ParseError> {
    let mut p = Parser::new();
    p.feed(input)?;
    p.finish()
}

impl State {
    fn piece(&mut self, n: u64, piece: Piece<'_>) -> Result<(), ParseError> {
        match piece {
            Piece::Line(line) | Piece::Head(line) => self.line(n, line),
            Piece::Tail(_) | Piece::End => Ok(()),
        }
    }

    fn line(&mut self, n: u64, line: &[u8]) -> Result<(), ParseError> {
        self.seen = true;
        let bad = || ParseError::Text {
            line: n,
            excerpt: excerpt(line),
        };
        let Some(&first) = line.first() else {
            return Ok(()); // the blank line after each message
        };
        if line == b"Mail queue is empty" {
            self.empty_notice = true;
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
                    self.summary = Some(m.parse().map_err(|_| bad())?);
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
        // "<queue id><marks> <size> <arrival time> <sender>": the marks, if any, are the bytes
        // right after the ID (`*` active, `!` hold, `#` forced to expire; a held message being
        // expired shows `!#`); what follows them must be blank space, then the size.
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
            queue::ACTIVE
        } else if marks.contains(&b'!') {
            queue::HOLD
        } else {
            queue::DEFERRED
        };
        self.snapshot.add(queue, 1);
        self.counted += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::listing::tests::counts;

    #[test]
    fn marks_only_count_right_after_the_id() {
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
        let s = parse(input).unwrap();
        assert_eq!(
            counts(&s),
            vec![("active", 1), ("hold", 1), ("deferred", 1)]
        );
    }

    #[test]
    fn rejects_truncation_and_garbage() {
        let truncated = b"-Queue ID-  --Size--\n4C0D6280E4*     339 Sat Nov 28 10:00:00  a@b\n";
        assert_eq!(parse(truncated), Err(ParseError::NoSummary));
        let mismatch =
            b"4C0D6280E4*     339 Sat Nov 28 10:00:00  a@b\n-- 1 Kbytes in 2 Requests.\n";
        assert_eq!(
            parse(mismatch),
            Err(ParseError::SummaryMismatch {
                counted: 1,
                summary: 2
            })
        );
        assert!(matches!(
            parse(b"<html>oops</html>\n"),
            Err(ParseError::Text { line: 1, .. })
        ));
        assert!(matches!(
            parse(b"4C0D6280E4*oops\n"),
            Err(ParseError::Text { line: 1, .. })
        ));
        assert_eq!(parse(b""), Err(ParseError::Empty));
    }

    /// The real captures against the truth counted beside them (`find -type f` per queue),
    /// fed in several chunk sizes: `-p` tells active and hold by their marks, and shows
    /// deferred, incoming and maildrop alike.
    #[test]
    fn captures_agree_with_the_truth() {
        let cases: [(&[u8], &str); 2] = [
            (
                include_bytes!("../../../tests/fixtures/postqueue-p/mixed.txt"),
                include_str!("../../../tests/fixtures/postqueue-p/mixed.truth"),
            ),
            (
                include_bytes!("../../../tests/fixtures/postqueue-p/long-ids.txt"),
                include_str!("../../../tests/fixtures/postqueue-p/long-ids.truth"),
            ),
        ];
        for (text, truth) in cases {
            let count = |queue: &str| -> u64 {
                truth
                    .lines()
                    .find_map(|l| l.strip_prefix(queue)?.strip_prefix(' ')?.parse().ok())
                    .unwrap()
            };
            let want = vec![
                ("active", count("active")),
                ("hold", count("hold")),
                (
                    "deferred",
                    count("deferred") + count("incoming") + count("maildrop"),
                ),
            ];
            for chunk in [1, 7, 4096, text.len()] {
                let mut p = Parser::new();
                for piece in text.chunks(chunk) {
                    p.feed(piece).unwrap();
                }
                assert_eq!(counts(&p.finish().unwrap()), want, "chunk size {chunk}");
            }
        }
        let empty = parse(include_bytes!(
            "../../../tests/fixtures/postqueue-p/empty.txt"
        ));
        assert_eq!(
            counts(&empty.unwrap()),
            vec![("active", 0), ("hold", 0), ("deferred", 0)]
        );
    }

    /// A line past the bound (a recipient, a reason, a sender of a megabyte) is read by its
    /// start: the message counts, the listing is understood.
    #[test]
    fn an_oversized_line_is_read_by_its_start() {
        let long = "x".repeat(3 * MAX_LINE);
        let pad = " ".repeat(41);
        let input = [
            "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------".to_owned(),
            format!("4C0D6280E4*     339 Sat Nov 28 10:00:00  {long}@example.com"),
            format!("{pad}{long}@example.com"),
            format!("({long})"),
            String::new(),
            "4C0D6280E5      339 Sat Nov 28 10:00:00  a@example.com".to_owned(),
            format!("{pad}b@example.com"),
            String::new(),
            "-- 1 Kbytes in 2 Requests.\n".to_owned(),
        ]
        .join("\n");
        for chunk in [4096, 1 << 20, input.len()] {
            let mut p = Parser::new();
            for piece in input.as_bytes().chunks(chunk) {
                p.feed(piece).unwrap();
            }
            assert_eq!(
                counts(&p.finish().unwrap()),
                vec![("active", 1), ("hold", 0), ("deferred", 1)],
                "chunk size {chunk}"
            );
        }
    }
}
