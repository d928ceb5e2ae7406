//! Method `showq`: read the queue listing straight from Postfix's showq service, the socket
//! `postqueue` itself reads (`<queue_directory>/public/<showq_service_name>`). No fork and no
//! setgid program: the daemon's user needs only group `postdrop` (the `public` directory is
//! postfix:postdrop 0710). Connecting directly also skips `authorized_mailq_users`.
//!
//! Postfix 3.1 and later speak an attribute stream (`name\0value\0` pairs, a lone `\0` closing
//! each message, another closing the stream; 3.6+ opens with a `protocol` announcement);
//! older Postfix sends the `postqueue -p` text, which the postqueue method's parser reads.
//! `tests/fixtures/showq/FORMAT.md` describes the stream as seen on 3.7.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::UnixStream;

use super::postqueue::{self, Format, JSON_QUEUES};
use super::{Collection, Limits};
use super::{InstanceSettings, Reads};
use crate::snapshot::{ListingRules, Recipient, Snapshot};
use crate::{paced, postconf};

/// Postfix bounds its attribute strings (4 x line_length_limit); we bound them too.
pub const MAX_TOKEN: usize = 64 * 1024;
/// Recipients of one message held until the message ends, as for a `postqueue -j` line.
pub const MAX_MESSAGE: usize = 4 << 20;
/// Sets the flag when dropped: tells a reader thread that nobody waits for it any more.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_directory: PathBuf,
    pub postconf: PathBuf,
    pub age_thresholds: Vec<u64>,
}

/// Showq lists every queue; the socket's place comes from postconf.
pub const READS: Reads = Reads::LISTING;

impl From<&InstanceSettings> for Options {
    fn from(s: &InstanceSettings) -> Options {
        Options {
            config_directory: s.config_directory.clone(),
            postconf: s.commands.postconf.clone(),
            age_thresholds: s.age_thresholds.clone(),
        }
    }
}

#[derive(Debug)]
pub struct Showq {
    options: Options,
    postconf: postconf::Cache,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Postfix is not running: nothing listens on {}", socket.display())]
    NotRunning { socket: PathBuf },
    #[error("no showq socket at {}: is Postfix installed, and is queue_directory right?", socket.display())]
    NoSocket { socket: PathBuf },
    #[error("permission denied on {}: add this user to group postdrop (`usermod -aG postdrop <user>`)", socket.display())]
    Denied { socket: PathBuf },
    #[error("cannot read {}", socket.display())]
    Io {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} did not finish within the timeout", socket.display())]
    Timeout { socket: PathBuf },
    #[error("stopped reading {}: the daemon is shutting down", socket.display())]
    Cancelled { socket: PathBuf },
    #[error("the stream from {} is not understood", socket.display())]
    Parse {
        socket: PathBuf,
        #[source]
        source: ParseError,
    },
    #[error("cannot read the Postfix parameters")]
    Postconf(#[from] postconf::Error),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("an attribute is longer than {MAX_TOKEN} bytes")]
    TooLong,
    #[error("message {message}: its recipients exceed {MAX_MESSAGE} bytes")]
    MessageTooLarge { message: u64 },
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
    #[error(transparent)]
    Text(#[from] postqueue::ParseError),
}

impl Showq {
    pub fn new(options: Options) -> Self {
        Showq {
            postconf: postconf::Cache::new(&options.postconf, &options.config_directory),
            options,
        }
    }

    pub async fn collect(&mut self, limits: &Limits) -> Collection {
        let mut collection = Collection {
            how: "showq socket".to_owned(),
            ..Collection::default()
        };
        let result = async {
            let params = self.postconf.get(limits).await?;
            collection.postfix_version = Some(params.mail_version.clone());
            let socket = params
                .queue_directory
                .join("public")
                .join(&params.showq_service_name);
            let rules = ListingRules::now(&self.options.age_thresholds);
            let parser = if params.version >= (3, 1) {
                StreamParser::Attributes(Parser::new(rules))
            } else {
                StreamParser::Text(postqueue::Parser::new(Format::Text, rules))
            };
            read(&socket, parser, limits).await
        }
        .await;
        match result {
            Ok(snapshot) => collection.snapshot = snapshot,
            Err(e) => collection.errors.push(e.into()),
        }
        collection
    }
}

enum StreamParser {
    Attributes(Parser),
    Text(postqueue::Parser),
}

async fn read(
    socket: &PathBuf,
    mut parser: StreamParser,
    limits: &Limits,
) -> Result<Snapshot, Error> {
    let fail = |e: io::Error| match e.kind() {
        io::ErrorKind::ConnectionRefused => Error::NotRunning {
            socket: socket.clone(),
        },
        io::ErrorKind::NotFound => Error::NoSocket {
            socket: socket.clone(),
        },
        io::ErrorKind::PermissionDenied => Error::Denied {
            socket: socket.clone(),
        },
        _ => Error::Io {
            socket: socket.clone(),
            source: e,
        },
    };
    let parse = |source: ParseError| Error::Parse {
        socket: socket.clone(),
        source,
    };
    let mut cancel = limits.cancel.clone();
    let work = async {
        let mut stream = UnixStream::connect(socket)
            .await
            .and_then(UnixStream::into_std)
            .map_err(fail)?;
        // showq writes every message on its own into about 20 KB of socket room: read it in
        // batches, on a thread with a sub-millisecond clock (see `paced`). A thread of its own,
        // not one of tokio's blocking pool, where directory walks that outlived their deadline
        // could keep it waiting. Leaving this future (deadline, shutdown) stops the thread
        // within one pause.
        let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = Arc::clone(&stop.0);
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("showq-reader".to_owned())
            .spawn(move || {
                let mut feed = |chunk: &[u8]| match &mut parser {
                    StreamParser::Attributes(p) => p.feed(chunk),
                    StreamParser::Text(p) => p.feed(chunk).map_err(ParseError::from),
                };
                let outcome = paced::read_blocking(&mut stream, &flag, &mut feed);
                let _ = done.send((parser, outcome));
            })
            .map_err(fail)?;
        let (parser, outcome) = result
            .await
            .map_err(|_| fail(io::Error::other("the reader thread ended without a result")))?;
        outcome.map_err(fail)?.map_err(parse)?;
        match parser {
            StreamParser::Attributes(p) => p.finish().map_err(parse),
            StreamParser::Text(p) => p.finish().map_err(|e| parse(e.into())),
        }
    };
    tokio::select! {
        result = work => result,
        () = tokio::time::sleep_until(limits.deadline) => Err(Error::Timeout { socket: socket.clone() }),
        _ = cancel.wait_for(|stop| *stop) => Err(Error::Cancelled { socket: socket.clone() }),
    }
}

/// A streaming parser for the 3.1+ attribute stream.
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
    arrival: Option<i64>,
    size: Option<u64>,
    /// (address, reason), in order.
    recipients: Vec<(String, String)>,
    bytes: usize,
}

impl Parser {
    pub fn new(rules: ListingRules) -> Self {
        let mut snapshot = Snapshot::default();
        for q in JSON_QUEUES {
            snapshot.add_listed(q, &rules);
        }
        Parser {
            rules,
            snapshot,
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
            return Err(ParseError::TooLong);
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
            b"time" => m.arrival = Some(parse_number(value).ok_or_else(|| number("time"))?),
            b"size" => m.size = Some(parse_number(value).ok_or_else(|| number("size"))?),
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
        if self.message.bytes > MAX_MESSAGE {
            return Err(ParseError::MessageTooLarge {
                message: self.messages + 1,
            });
        }
        Ok(())
    }

    fn end_message(&mut self) {
        let m = std::mem::take(&mut self.message);
        // The announcement group has no queue_name; an unknown queue is not one of ours.
        let Some(queue) = m.queue.filter(|q| JSON_QUEUES.contains(&q.as_str())) else {
            return;
        };
        self.messages += 1;
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

    fn rules() -> ListingRules {
        ListingRules {
            now: 1_800_000_000,
            age_thresholds: vec![300, 3600],
        }
    }

    /// Each capture decodes to what `postqueue -j` said at the same moment, figure for figure,
    /// fed in every chunk size from 1 byte up.
    #[test]
    fn captures_agree_with_postqueue_j() {
        let cases: [(&[u8], &[u8]); 5] = [
            (include_bytes!("../../tests/fixtures/showq/empty.bin"), b""),
            (
                include_bytes!("../../tests/fixtures/showq/mixed.bin"),
                include_bytes!("../../tests/fixtures/showq/mixed.jsonl"),
            ),
            (
                include_bytes!("../../tests/fixtures/showq/long-ids.bin"),
                include_bytes!("../../tests/fixtures/showq/long-ids.jsonl"),
            ),
            (
                include_bytes!("../../tests/fixtures/showq/many-rcpts.bin"),
                include_bytes!("../../tests/fixtures/showq/many-rcpts.jsonl"),
            ),
            (
                include_bytes!("../../tests/fixtures/showq/odd-addrs.bin"),
                include_bytes!("../../tests/fixtures/showq/odd-addrs.jsonl"),
            ),
        ];
        for (bin, jsonl) in cases {
            let want = postqueue::parse(Format::Json, rules(), jsonl).unwrap();
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
        let bin = include_bytes!("../../tests/fixtures/showq/many-rcpts.bin");
        let s = parse(rules(), bin).unwrap();
        let d = s.get("deferred").unwrap().listing.as_ref().unwrap();
        // 56 recipient records in the queue file, 50 distinct addresses.
        assert_eq!(d.recipients, 50);
    }

    #[test]
    fn truncation_garbage_and_bounds() {
        let bin = include_bytes!("../../tests/fixtures/showq/mixed.bin");
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
        assert_eq!(parse(rules(), &long), Err(ParseError::TooLong));
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

    #[test]
    fn recipients_past_the_bound_fail_the_message() {
        let mut input = b"queue_name\0deferred\0".to_vec();
        let rcpt = format!("recipient\0{}@example.com\0reason\0\0", "x".repeat(60_000));
        for _ in 0..(MAX_MESSAGE / 60_000 + 2) {
            input.extend_from_slice(rcpt.as_bytes());
        }
        assert!(matches!(
            parse(rules(), &input),
            Err(ParseError::MessageTooLarge { message: 1 })
        ));
    }
}
