//! showq's attribute stream (Postfix 3.1+), what `postqueue -j` itself reads: `name\0value\0`
//! pairs, a lone `\0` closing each message, another closing the stream; 3.6+ opens with a
//! `protocol` announcement. `tests/fixtures/showq/FORMAT.md` describes the stream as seen on
//! 3.7.
//!
//! A message whose recipients and reasons pass [`MAX_MESSAGE`] is truncated: its recipients
//! are dropped, later ones skipped as they come, and it counts from its other attributes
//! (queue, time, size come before the recipients).

use super::{ParseError, MAX_MESSAGE};
use crate::queue::ListingFormat;
use crate::snapshot::{ListingRules, Recipient, Snapshot};

/// Postfix bounds its attribute strings (4 x line_length_limit); we bound them too.
pub const MAX_TOKEN: usize = 64 * 1024;

/// A streaming parser: feed it chunks, then `finish`.
#[derive(Debug)]
pub struct Parser {
    rules: ListingRules,
    snapshot: Snapshot,
    /// Bytes of the attribute being read (name or value).
    token: Vec<u8>,
    /// The name whose value comes next, when we are between a name and its value.
    name: Option<Vec<u8>>,
    /// Pairs read since the last group end: a group end with none ends the stream.
    pairs: usize,
    message: Message,
    messages: u64,
    done: bool,
}

#[derive(Debug, Default)]
struct Message {
    queue: Option<String>,
    id: String,
    arrival: Option<i64>,
    size: Option<u64>,
    /// (address, reason), in order.
    recipients: Vec<(String, String)>,
    bytes: usize,
    /// Its recipients passed the bound: those read are dropped, the rest skipped.
    truncated: bool,
}

impl Parser {
    pub fn new(rules: ListingRules) -> Self {
        Parser {
            snapshot: Snapshot::listed(ListingFormat::Structured.queues(), &rules),
            rules,
            token: Vec::new(),
            name: None,
            pairs: 0,
            message: Message::default(),
            messages: 0,
            done: false,
        }
    }

    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), ParseError> {
        while !chunk.is_empty() {
            if self.done {
                return Err(ParseError::TrailingData);
            }
            match chunk.iter().position(|&b| b == 0) {
                None => {
                    self.push(chunk)?;
                    return Ok(());
                }
                Some(end) => {
                    self.push(&chunk[..end])?;
                    chunk = &chunk[end + 1..];
                    let token = std::mem::take(&mut self.token);
                    self.token_done(&token)?;
                    self.token = token;
                    self.token.clear();
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Snapshot, ParseError> {
        if !self.done {
            return Err(ParseError::Truncated);
        }
        Ok(self.snapshot)
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        if self.token.len() + bytes.len() > MAX_TOKEN {
            return Err(ParseError::AttributeTooLong);
        }
        self.token.extend_from_slice(bytes);
        Ok(())
    }

    fn token_done(&mut self, token: &[u8]) -> Result<(), ParseError> {
        match self.name.take() {
            Some(name) => {
                self.pairs += 1;
                self.attribute(&name, token)
            }
            None if token.is_empty() => {
                // A lone NUL: the end of a group, or with no pairs since the last one, of all.
                if self.pairs == 0 {
                    self.done = true;
                } else {
                    self.end_message();
                }
                self.pairs = 0;
                Ok(())
            }
            None => {
                self.name = Some(token.to_vec());
                Ok(())
            }
        }
    }

    fn attribute(&mut self, name: &[u8], value: &[u8]) -> Result<(), ParseError> {
        let m = &mut self.message;
        let text = || String::from_utf8_lossy(value).into_owned();
        let number = |name: &'static str| ParseError::Number {
            message: self.messages + 1,
            name,
            value: String::from_utf8_lossy(value).into_owned(),
        };
        match name {
            b"queue_name" => m.queue = Some(text()),
            b"queue_id" => m.id = text(),
            b"time" => m.arrival = Some(parse_number(value).ok_or_else(|| number("time"))?),
            b"size" => m.size = Some(parse_number(value).ok_or_else(|| number("size"))?),
            b"recipient" | b"reason" if m.truncated => {}
            b"recipient" => {
                m.bytes += value.len();
                m.recipients.push((text(), String::new()));
            }
            b"reason" => {
                m.bytes += value.len();
                if let Some(last) = m.recipients.last_mut() {
                    last.1 = text();
                }
            }
            // protocol, queue_id, forced_expire, sender, original_recipient, log_class, and
            // whatever a later Postfix adds.
            _ => {}
        }
        if m.bytes > MAX_MESSAGE {
            m.truncated = true;
            m.recipients = Vec::new();
            m.bytes = 0;
        }
        Ok(())
    }

    fn end_message(&mut self) {
        let m = std::mem::take(&mut self.message);
        // The announcement group has no queue_name.
        let Some(queue) = m.queue.filter(|q| ListingFormat::Structured.names(q)) else {
            return;
        };
        self.messages += 1;
        if m.truncated {
            self.snapshot
                .record_truncated(&queue, &self.rules, m.arrival, m.size, &m.id);
            return;
        }
        let recipients: Vec<Recipient> = m
            .recipients
            .iter()
            .map(|(address, reason)| Recipient {
                address,
                delay_reason: Some(reason.as_str()),
            })
            .collect();
        self.snapshot
            .record(&queue, &self.rules, m.arrival, m.size, &recipients);
    }
}

fn parse_number<T: std::str::FromStr>(value: &[u8]) -> Option<T> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

/// Parses a whole stream at once (tests, fuzzing).
pub fn parse(rules: ListingRules, input: &[u8]) -> Result<Snapshot, ParseError> {
    let mut p = Parser::new(rules);
    p.feed(input)?;
    p.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::listing::tests::{
        assert_newsletter_counted, attr_stream, json_listing, newsletter_queue, random_chunks,
        rules,
    };

    /// Each capture decodes to what `postqueue -j` said at the same moment, figure for figure,
    /// fed in every chunk size from 1 byte up.
    #[test]
    fn captures_agree_with_postqueue_j() {
        let cases: [(&[u8], &[u8]); 5] = [
            (
                include_bytes!("../../../tests/fixtures/showq/empty.bin"),
                b"",
            ),
            (
                include_bytes!("../../../tests/fixtures/showq/mixed.bin"),
                include_bytes!("../../../tests/fixtures/showq/mixed.jsonl"),
            ),
            (
                include_bytes!("../../../tests/fixtures/showq/long-ids.bin"),
                include_bytes!("../../../tests/fixtures/showq/long-ids.jsonl"),
            ),
            (
                include_bytes!("../../../tests/fixtures/showq/many-rcpts.bin"),
                include_bytes!("../../../tests/fixtures/showq/many-rcpts.jsonl"),
            ),
            (
                include_bytes!("../../../tests/fixtures/showq/odd-addrs.bin"),
                include_bytes!("../../../tests/fixtures/showq/odd-addrs.jsonl"),
            ),
        ];
        for (bin, jsonl) in cases {
            let want = crate::collect::listing::json::parse(rules(), jsonl).unwrap();
            for chunk in [1, 2, 3, 7, 64, 4096, bin.len().max(1)] {
                let mut p = Parser::new(rules());
                for piece in bin.chunks(chunk) {
                    p.feed(piece).unwrap();
                }
                assert_eq!(p.finish().unwrap(), want, "chunk size {chunk}");
            }
        }
    }

    #[test]
    fn many_recipients_are_counted_once_per_message() {
        let bin = include_bytes!("../../../tests/fixtures/showq/many-rcpts.bin");
        let s = parse(rules(), bin).unwrap();
        let d = s.get("deferred").unwrap().listing.as_ref().unwrap();
        // 56 recipient records in the queue file, 50 distinct addresses.
        assert_eq!(d.recipients, 50);
    }

    #[test]
    fn truncation_garbage_and_bounds() {
        let bin = include_bytes!("../../../tests/fixtures/showq/mixed.bin");
        for cut in [0, 10, 35, bin.len() / 2, bin.len() - 1] {
            assert_eq!(
                parse(rules(), &bin[..cut]),
                Err(ParseError::Truncated),
                "cut at {cut}"
            );
        }
        let mut extra = bin.to_vec();
        extra.extend_from_slice(b"queue_name\0deferred\0");
        assert_eq!(parse(rules(), &extra), Err(ParseError::TrailingData));
        let long = vec![b'a'; MAX_TOKEN + 1];
        assert_eq!(parse(rules(), &long), Err(ParseError::AttributeTooLong));
        let bad_time = b"queue_name\0deferred\0time\0yesterday\0\0\0";
        assert!(matches!(
            parse(rules(), bad_time),
            Err(ParseError::Number { name: "time", .. })
        ));
        // Without the 3.6 announcement, as 3.1 to 3.5 send it.
        let old = b"queue_name\0hold\0queue_id\0ABC\0time\x001799999000\0size\x00100\0sender\0a@b\0recipient\0c@d\0reason\0\0\0\0";
        let s = parse(rules(), old).unwrap();
        assert_eq!(s.messages("hold"), Some(1));
        assert_eq!(
            s.get("hold").unwrap().listing.as_ref().unwrap().oldest_age,
            1000
        );
    }

    /// Postfix 3.11 adds `original_recipient` before and `log_class` after each recipient, and
    /// `forced_expire` came in 3.5: unknown names are skipped, the figures stay right.
    #[test]
    fn later_protocol_fields() {
        let input = b"protocol\0mail_queue_list_protocol\0\0\
queue_name\0deferred\0queue_id\0ABC\0time\x001799996400\0size\x00500\0forced_expire\x001\0sender\0a@b\0\
original_recipient\0Orig@example.com\0recipient\0x@example.com\0log_class\0defer\0reason\0connect to mx: Connection refused\0\
original_recipient\0\0recipient\0y@example.org\0log_class\0defer\0reason\0\0\
\0\0";
        let s = parse(rules(), input).unwrap();
        let d = s.get("deferred").unwrap();
        assert_eq!(d.messages, 1);
        let l = d.listing.as_ref().unwrap();
        assert_eq!((l.bytes, l.recipients, l.oldest_age), (500, 2, 3600));
        assert_eq!(
            l.reasons[crate::reason::Reason::ConnectionRefused.index()],
            1
        );
        assert_eq!(l.reasons[crate::reason::Reason::NoReason.index()], 1);
    }

    /// The newsletter as showq sends it, 13.7 MB of recipients in one message: counted from
    /// its queue, time and size, its recipients dropped at the bound, the same figures as
    /// `postqueue -j` gives for it, fed whole or in random pieces.
    #[test]
    fn an_oversized_message_is_counted_not_fatal() {
        let messages = newsletter_queue();
        let input = attr_stream(&messages);
        assert!(input.len() > 13_000_000, "{}", input.len());
        let want = crate::collect::listing::json::parse(rules(), &json_listing(&messages));
        let whole = parse(rules(), &input).unwrap();
        assert_newsletter_counted(&whole);
        assert_eq!(Ok(&whole), want.as_ref());
        for seed in [1, 2, 3] {
            let mut p = Parser::new(rules());
            for piece in random_chunks(&input, seed) {
                p.feed(piece).unwrap();
                // What a message holds stays under the bound (the recipients, once cut, are
                // not kept at all).
                assert!(p.message.bytes <= MAX_MESSAGE);
                assert!(!p.message.truncated || p.message.recipients.is_empty());
            }
            assert_eq!(p.finish().unwrap(), whole, "seed {seed}");
        }
    }
}
