//! Samples to DogStatsD lines (pure, so `check` can print exactly what `run` sends), and the
//! socket they go to. We format the lines ourselves, which keeps the Datadog tag order exact and
//! lets service checks share the path; cadence supplies the buffered UDP and Unix datagram sinks
//! (whole lines per datagram, at most 1432 bytes over UDP and 8192 over a Unix socket).

use std::fmt::Write as _;
use std::io;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cadence::{BufferedUdpMetricSink, BufferedUnixMetricSink, MetricSink};

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
    line.push_str(match s.kind {
        Kind::Gauge => "|g",
        Kind::Count => "|c",
    });
    push_tags(&mut line, &s.tags);
    line
}

/// `_sc|name|status|#tags|m:message`, the message last, with newlines written as `\n` and `m:`
/// as `m\:` (the DogStatsD escapes), and `|` (a field separator with no escape) as `¦`.
pub fn service_check_line(c: &ServiceCheck) -> String {
    let mut line = format!("_sc|{}|{}", c.name, c.status as u8);
    push_tags(&mut line, &c.tags);
    if let Some(message) = &c.message {
        let mut m = message.as_str();
        if m.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            m = &m[..end];
        }
        let escaped = m
            .replace('\r', "")
            .replace('\n', "\\n")
            .replace("m:", "m\\:")
            .replace('|', "¦");
        let _ = write!(line, "|m:{escaped}");
        if m.len() < message.len() {
            line.push('…');
        }
    }
    line
}

fn push_tags(line: &mut String, tags: &[String]) {
    for (i, tag) in tags.iter().enumerate() {
        line.push_str(if i == 0 { "|#" } else { "," });
        line.push_str(tag);
    }
}

/// Where lines go: a buffered cadence sink, flushed once per cycle. Sending never blocks (the
/// sockets are non-blocking) and never fails a collection: errors are logged at most once a
/// minute.
#[derive(Clone)]
pub struct Sink {
    inner: Arc<dyn MetricSink + Send + Sync>,
    errors: Arc<Mutex<ErrorLog>>,
    target: String,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("target", &self.target)
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

impl Sink {
    pub fn new(target: &Target) -> Result<Sink, SinkError> {
        let fail = |source| SinkError {
            target: target.to_string(),
            source,
        };
        let inner: Arc<dyn MetricSink + Send + Sync> = match target {
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
                let sink = BufferedUdpMetricSink::with_capacity(resolved, socket, UDP_PAYLOAD)
                    .map_err(|e| fail(io::Error::other(e.to_string())))?;
                Arc::new(sink)
            }
            Target::Unix(path) => {
                // Unbound and addressed per datagram, so a socket the Agent recreates on restart
                // is found again without anything on our side.
                let socket = UnixDatagram::unbound().map_err(fail)?;
                socket.set_nonblocking(true).map_err(fail)?;
                Arc::new(BufferedUnixMetricSink::with_capacity(
                    path,
                    socket,
                    UNIX_PAYLOAD,
                ))
            }
        };
        Ok(Sink {
            inner,
            errors: Arc::default(),
            target: target.to_string(),
        })
    }

    /// A sink over any cadence sink (tests use `SpyMetricSink`).
    #[cfg(test)]
    pub fn from_cadence(inner: Arc<dyn MetricSink + Send + Sync>) -> Sink {
        Sink {
            inner,
            errors: Arc::default(),
            target: "test".to_owned(),
        }
    }

    /// Buffers the lines and flushes them.
    pub fn send(&self, lines: &[String]) {
        let mut first_error = None;
        for line in lines {
            if let Err(e) = self.inner.emit(line) {
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.inner.flush() {
            first_error.get_or_insert(e);
        }
        if let Some(e) = first_error {
            self.log_error(&e);
        }
    }

    fn log_error(&self, e: &io::Error) {
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
            target = %self.target,
            error = %e,
            suppressed = log.suppressed,
            "cannot send to DogStatsD; metrics are dropped until it is reachable (logged at most once a minute)"
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
    }

    #[test]
    fn spy_sink_gets_whole_lines() {
        let (rx, spy) = cadence::SpyMetricSink::new();
        let sink = Sink::from_cadence(Arc::new(spy));
        sink.send(&["a:1|g".to_owned(), "b:2|c".to_owned()]);
        let got: Vec<Vec<u8>> = rx.try_iter().collect();
        assert_eq!(got, vec![b"a:1|g".to_vec(), b"b:2|c".to_vec()]);
    }
}
