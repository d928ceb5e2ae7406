//! Samples to DogStatsD lines (pure, so `check` can print exactly what `run` sends), and the
//! socket they go to. We format the lines ourselves, which keeps the Datadog tag order exact and
//! lets service checks share the path, and pack whole lines into datagrams (at most 1432 bytes
//! over UDP and 8192 over a Unix socket, as the official clients do).

use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Target;
use crate::metrics::{Kind, Report, Sample, ServiceCheck, Value};

/// No IP fragmentation on a 1500-byte MTU path.
pub const UDP_PAYLOAD: usize = 1432;
/// The Agent's default `dogstatsd_buffer_size`; a bigger datagram would be cut.
pub const UNIX_PAYLOAD: usize = 8192;
/// Service check messages are cut to this many bytes so the line fits one UDP datagram.
const MAX_MESSAGE: usize = 1000;
/// Send errors are logged at most this often; the rest are counted.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(60);

/// `name:value|type|#tag,tag`
/// The lines one report sends, metrics first, then the service check.
pub fn report_lines(report: &Report) -> Vec<String> {
    report
        .samples
        .iter()
        .map(metric_line)
        .chain(std::iter::once(service_check_line(&report.check)))
        .collect()
}

pub fn metric_line(s: &Sample) -> String {
    let mut line = String::with_capacity(64);
    let _ = write!(line, "{}:", s.name);
    match s.value {
        Value::Int(v) => {
            let _ = write!(line, "{v}");
        }
        Value::Float(v) => {
            // Microsecond precision, no exponent, no trailing zeros.
            let text = format!("{v:.6}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            line.push_str(text);
        }
    }
    match s.kind {
        Kind::Gauge => line.push_str("|g"),
        Kind::Count => line.push_str("|c"),
        Kind::Distribution { rate } => {
            line.push_str("|d");
            if rate > 0.0 && rate < 1.0 {
                // A rate too small to write in six decimals is written as the smallest that is.
                let text = format!("{:.6}", rate.max(0.000_001));
                let _ = write!(line, "|@{}", text.trim_end_matches('0'));
            }
        }
    }
    push_tags(&mut line, &s.tags);
    line
}

/// `_sc|name|status|#tags|m:message`, the message last, with newlines written as `\n` and `m:`
/// as `m\:` (the DogStatsD escapes), and `|` (a field separator with no escape) as `¦`. The
/// message is escaped first and then cut, so escapes cannot push the line past a datagram.
pub fn service_check_line(c: &ServiceCheck) -> String {
    let mut line = format!("_sc|{}|{}", c.name, c.status as u8);
    push_tags(&mut line, &c.tags);
    if let Some(message) = &c.message {
        let escaped = message
            .replace('\r', "")
            .replace('\n', "\\n")
            .replace("m:", "m\\:")
            .replace('|', "¦");
        let _ = write!(line, "|m:{}", cut_escaped(&escaped, MAX_MESSAGE));
    }
    line
}

/// At most `max` bytes of an escaped message, on a character boundary and never between a `\`
/// and the character it escapes; `…` marks a cut.
fn cut_escaped(escaped: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if escaped.len() <= max {
        return escaped.into();
    }
    let mut end = max;
    while !escaped.is_char_boundary(end) {
        end -= 1;
    }
    let mut kept = &escaped[..end];
    // An odd run of trailing backslashes ends in half an escape.
    let trailing = kept.len() - kept.trim_end_matches('\\').len();
    if trailing % 2 == 1 {
        kept = &kept[..kept.len() - 1];
    }
    format!("{kept}…").into()
}

fn push_tags(line: &mut String, tags: &[String]) {
    for (i, tag) in tags.iter().enumerate() {
        line.push_str(if i == 0 { "|#" } else { "," });
        line.push_str(tag);
    }
}

/// Where lines go: whole lines packed into datagrams of at most the payload, sent once per
/// cycle. Sending never blocks (the sockets are non-blocking) and never fails a collection.
/// A datagram that cannot be sent is dropped, never kept for later: a gauge or service check
/// arriving minutes late, when the Agent is back, would be a false number. Errors are logged
/// at most once a minute, and returned to callers that want to say so (`check --send`).
#[derive(Clone)]
pub struct Sink {
    inner: Arc<Inner>,
}

struct Inner {
    socket: Socket,
    payload: usize,
    errors: Mutex<ErrorLog>,
    target: String,
}

enum Socket {
    Udp(UdpSocket, SocketAddr),
    /// Unbound and addressed per datagram, so a socket the Agent recreates on restart is found
    /// again without anything on our side.
    Unix(UnixDatagram, PathBuf),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("target", &self.inner.target)
            .finish()
    }
}

#[derive(Debug, Default)]
struct ErrorLog {
    last: Option<Instant>,
    suppressed: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up sending to {target}")]
pub struct SinkError {
    target: String,
    #[source]
    source: io::Error,
}

/// Some datagrams of one send were dropped.
#[derive(Debug, thiserror::Error)]
#[error("{dropped} of {datagrams} datagrams to {target} could not be sent")]
pub struct SendError {
    pub target: String,
    pub dropped: usize,
    pub datagrams: usize,
    #[source]
    pub source: io::Error,
}

impl Sink {
    pub fn new(target: &Target) -> Result<Sink, SinkError> {
        let fail = |source| SinkError {
            target: target.to_string(),
            source,
        };
        let (socket, payload) = match target {
            Target::Udp(addr) => {
                use std::net::ToSocketAddrs;
                let resolved = addr
                    .to_socket_addrs()
                    .map_err(fail)?
                    .next()
                    .ok_or_else(|| fail(io::Error::new(io::ErrorKind::NotFound, "no address")))?;
                let bind = if resolved.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(bind).map_err(fail)?;
                socket.set_nonblocking(true).map_err(fail)?;
                (Socket::Udp(socket, resolved), UDP_PAYLOAD)
            }
            Target::Unix(path) => {
                let socket = UnixDatagram::unbound().map_err(fail)?;
                socket.set_nonblocking(true).map_err(fail)?;
                (Socket::Unix(socket, path.clone()), UNIX_PAYLOAD)
            }
        };
        Ok(Sink {
            inner: Arc::new(Inner {
                socket,
                payload,
                errors: Mutex::default(),
                target: target.to_string(),
            }),
        })
    }

    /// Sends the lines, each ending in `\n`, packed into as few datagrams as fit the payload (a
    /// line longer than the payload goes alone). What fails is dropped and logged.
    pub fn send(&self, lines: &[String]) -> Result<(), SendError> {
        let payload = self.inner.payload;
        let mut datagram = Vec::with_capacity(payload);
        let (mut datagrams, mut dropped, mut first_error) = (0, 0, None);
        let mut flush = |datagram: &mut Vec<u8>| {
            if datagram.is_empty() {
                return;
            }
            datagrams += 1;
            if let Err(e) = self.inner.send_one(datagram) {
                dropped += 1;
                first_error.get_or_insert(e);
            }
            datagram.clear();
        };
        for line in lines {
            if !datagram.is_empty() && datagram.len() + line.len() + 1 > payload {
                flush(&mut datagram);
            }
            datagram.extend_from_slice(line.as_bytes());
            datagram.push(b'\n');
        }
        flush(&mut datagram);
        match first_error {
            None => Ok(()),
            Some(source) => {
                let e = SendError {
                    target: self.inner.target.clone(),
                    dropped,
                    datagrams,
                    source,
                };
                self.inner.log_error(&e);
                Err(e)
            }
        }
    }
}

impl Inner {
    fn send_one(&self, datagram: &[u8]) -> io::Result<()> {
        let sent = match &self.socket {
            Socket::Udp(socket, addr) => socket.send_to(datagram, addr)?,
            Socket::Unix(socket, path) => socket.send_to(datagram, path)?,
        };
        if sent < datagram.len() {
            return Err(io::Error::other(format!(
                "sent {sent} of {} bytes",
                datagram.len()
            )));
        }
        Ok(())
    }

    fn log_error(&self, e: &SendError) {
        let mut log = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if log
            .last
            .is_some_and(|t| now.duration_since(t) < ERROR_LOG_EVERY)
        {
            log.suppressed += 1;
            return;
        }
        tracing::warn!(
            suppressed = log.suppressed,
            "cannot send to DogStatsD: {}; what could not be sent is dropped, never sent late (logged at most once a minute)",
            crate::error_chain(e)
        );
        log.last = Some(now);
        log.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Status;

    #[test]
    fn lines() {
        let s = Sample {
            name: "postfix.queue.size",
            value: Value::Int(42),
            kind: Kind::Gauge,
            tags: vec!["env:prod".into(), "queue:deferred".into()],
        };
        assert_eq!(
            metric_line(&s),
            "postfix.queue.size:42|g|#env:prod,queue:deferred"
        );
        let d = Sample {
            name: "postfix.collection.duration",
            value: Value::Float(0.012_300_4),
            kind: Kind::Gauge,
            tags: vec![],
        };
        assert_eq!(metric_line(&d), "postfix.collection.duration:0.0123|g");
        let z = Sample {
            value: Value::Float(2.0),
            ..d
        };
        assert_eq!(metric_line(&z), "postfix.collection.duration:2|g");
        let all = Sample {
            name: "postfix.delivery.delay",
            value: Value::Float(1.5),
            kind: Kind::Distribution { rate: 1.0 },
            tags: vec!["status:sent".into()],
        };
        assert_eq!(
            metric_line(&all),
            "postfix.delivery.delay:1.5|d|#status:sent"
        );
        let sampled = Sample {
            kind: Kind::Distribution { rate: 0.25 },
            ..all
        };
        assert_eq!(
            metric_line(&sampled),
            "postfix.delivery.delay:1.5|d|@0.25|#status:sent"
        );
    }

    #[test]
    fn service_check_escapes() {
        let c = ServiceCheck {
            name: "postfix.can_collect",
            status: Status::Critical,
            tags: vec!["instance:/etc/postfix".into()],
            message: Some("postqueue: fatal: down\nterm: a|b".into()),
        };
        assert_eq!(
            service_check_line(&c),
            "_sc|postfix.can_collect|2|#instance:/etc/postfix|m:postqueue: fatal: down\\nterm\\: a¦b"
        );
        let long = ServiceCheck {
            message: Some("é".repeat(2000)),
            ..c
        };
        assert!(service_check_line(&long).len() < UDP_PAYLOAD);
        // Escaping doubles newlines and `m:`; the cut comes after it, so the line still fits,
        // and it never leaves half an escape.
        let escapes = ServiceCheck {
            message: Some("\n".repeat(900) + &"m:".repeat(900)),
            ..long
        };
        let line = service_check_line(&escapes);
        assert!(line.len() < UDP_PAYLOAD, "{}", line.len());
        assert!(line.ends_with("\\n…"), "{}", &line[line.len() - 20..]);
        for max in 1..12 {
            let cut = cut_escaped("a\\nb\\\\c", max);
            let kept = cut.trim_end_matches('…');
            let trailing = kept.len() - kept.trim_end_matches('\\').len();
            assert_eq!(trailing % 2, 0, "{max}: {cut}");
        }
    }

    #[test]
    fn lines_packed_into_datagrams_and_failures_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dsd.socket");
        let target = Target::Unix(path.clone());
        let sink = Sink::new(&target).unwrap();
        // No receiver: an error, and nothing is kept for later.
        let e = sink.send(&["stale:1|g".to_owned()]).unwrap_err();
        assert_eq!((e.dropped, e.datagrams), (1, 1));
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_nonblocking(true).unwrap();
        let long = "x".repeat(UNIX_PAYLOAD / 2);
        let lines = vec![
            "a:1|g".to_owned(),
            long.clone(),
            long.clone(),
            "b:2|c".to_owned(),
        ];
        sink.send(&lines).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0; 2 * UNIX_PAYLOAD];
        while let Ok(n) = rx.recv(&mut buf) {
            got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        assert_eq!(
            got,
            vec![format!("a:1|g\n{long}\n"), format!("{long}\nb:2|c\n")]
        );
    }

    #[test]
    fn udp_datagrams_stay_within_1432_bytes_and_a_longer_line_goes_alone() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let sink = Sink::new(&Target::Udp(rx.local_addr().unwrap().to_string())).unwrap();
        let line = "x".repeat(300);
        let huge = "y".repeat(UDP_PAYLOAD + 10);
        let mut lines = vec![line.clone(); 10];
        lines.insert(5, huge.clone());
        sink.send(&lines).unwrap();
        let mut got: Vec<String> = Vec::new();
        let mut buf = vec![0; 4 * UDP_PAYLOAD];
        while got.iter().map(|d| d.matches('\n').count()).sum::<usize>() < 11 {
            let n = rx.recv(&mut buf).unwrap();
            got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        for d in &got {
            assert!(
                d.len() <= UDP_PAYLOAD || *d == format!("{huge}\n"),
                "{}",
                d.len()
            );
        }
        // Whole lines, in order.
        let joined: Vec<String> = got.concat().lines().map(str::to_owned).collect();
        assert_eq!(joined.len(), 11);
        assert_eq!(joined[5], huge);
    }
}
