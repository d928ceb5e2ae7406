//! What the log wing counts between two flushes: recipients by outcome, delivery delays,
//! expired messages, lines read and lines a family should have understood but did not. Every
//! tag set is bounded (services past a cap count as `other`), delays are kept as a bounded
//! uniform sample with the rate it stands for, and a series seen once is sent as 0 in quiet
//! flushes, so a monitor never falls into "no data" on a quiet server. Pure: no I/O, no clock.

use std::collections::HashMap;

use super::delivery::{self, Event};
use super::line::Line;

/// Distinct `service:` values kept; later ones count as `other`. A master.cf has a handful.
pub const MAX_SERVICES: usize = 64;
/// Delay values kept per series between two flushes; past it, a uniform sample of that size.
pub const MAX_DELAYS: usize = 1000;
/// Distinct delivery series kept (statuses x services x dsn classes x relays x instances).
pub const MAX_SERIES: usize = 2000;
/// The `service:` value of a line too long to read its identifier.
pub const UNKNOWN_SERVICE: &str = "unknown";
/// The `service:` value for services past `MAX_SERVICES`.
pub const OTHER_SERVICE: &str = "other";

/// One delivery series: its tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryKey {
    pub status: &'static str,
    pub service: String,
    pub dsn_class: u8,
    pub relay: &'static str,
    pub instance: String,
}

/// What one flush sends for one delivery series.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryFigures {
    pub recipients: u64,
    /// `delay=` values, at most `MAX_DELAYS`.
    pub delays: Vec<f64>,
    /// The share of this series' delays that `delays` holds (1.0 when it holds them all): the
    /// DogStatsD sample rate, so that Datadog counts what was left out.
    pub delay_rate: f64,
}

/// Everything one flush sends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flush {
    /// Sorted by key, for a stable output.
    pub deliveries: Vec<(DeliveryKey, DeliveryFigures)>,
    /// Expired messages per instance.
    pub expired: Vec<(String, u64)>,
    pub lines: u64,
    /// Lines a family claims but could not read, per service.
    pub unparsed: Vec<(String, u64)>,
}

#[derive(Debug, Default)]
pub struct Counters {
    deliveries: HashMap<DeliveryKey, Series>,
    expired: HashMap<String, u64>,
    unparsed: HashMap<String, u64>,
    lines: u64,
    services: Vec<String>,
    /// A small deterministic generator for the delay sample (xorshift).
    rng: u64,
}

#[derive(Debug, Default)]
struct Series {
    recipients: u64,
    delays: Vec<f64>,
    /// Delays seen this flush, kept or not.
    seen: u64,
}

impl Counters {
    pub fn new() -> Self {
        Counters {
            rng: 0x9E37_79B9_7F4A_7C15,
            ..Counters::default()
        }
    }

    /// Counts one line of Postfix's log, written by the Postfix instance whose `instance:` tag
    /// is `instance`. A line rsyslog folded (`message repeated N times`) counts N times.
    pub fn count(&mut self, line: &Line<'_>, instance: &str) {
        let times = u64::from(line.times);
        self.lines += times;
        match delivery::parse(line.text) {
            Some(Event::Delivery(d)) => {
                let service = self.service(line.program);
                let key = DeliveryKey {
                    status: d.status.tag(),
                    service,
                    dsn_class: d.dsn_class,
                    relay: d.relay.tag(),
                    instance: instance.to_owned(),
                };
                if !self.deliveries.contains_key(&key) && self.deliveries.len() >= MAX_SERIES {
                    // Past the cap a new series is not made: counted as unparsed, so it shows.
                    *self.unparsed.entry(key.service).or_default() += times;
                    return;
                }
                for _ in 0..times {
                    let rng = self.next_random();
                    let series = self.deliveries.entry(key.clone()).or_default();
                    series.recipients += 1;
                    series.seen += 1;
                    if series.delays.len() < MAX_DELAYS {
                        series.delays.push(d.delay);
                    } else {
                        // Reservoir sampling: each delay of the flush is kept with the same odds.
                        let slot = rng % series.seen;
                        if let Some(kept) = series.delays.get_mut(slot as usize) {
                            *kept = d.delay;
                        }
                    }
                }
            }
            Some(Event::Expired) => *self.expired.entry(instance.to_owned()).or_default() += times,
            Some(Event::Probe) => {}
            None => {
                // A status line that the family could not read: a Postfix that changed the
                // line's shape, or a hostile one. Shown per service, never silently dropped.
                if line.text.contains(" status=") {
                    let service = self.service(line.program);
                    *self.unparsed.entry(service).or_default() += times;
                }
            }
        }
    }

    /// Lines the source skipped for their length (never held whole): read, and not understood,
    /// under `service:unknown` since their identifier was not read either.
    pub fn too_long(&mut self, n: u64) {
        if n > 0 {
            self.lines += n;
            *self.unparsed.entry(UNKNOWN_SERVICE.to_owned()).or_default() += n;
        }
    }

    /// The figures since the last flush. Series seen before stay, at 0.
    pub fn flush(&mut self) -> Flush {
        let mut deliveries: Vec<(DeliveryKey, DeliveryFigures)> = self
            .deliveries
            .iter_mut()
            .map(|(key, s)| {
                let delays = std::mem::take(&mut s.delays);
                let delay_rate = if s.seen == 0 {
                    1.0
                } else {
                    delays.len() as f64 / s.seen as f64
                };
                let figures = DeliveryFigures {
                    recipients: std::mem::take(&mut s.recipients),
                    delays,
                    delay_rate,
                };
                s.seen = 0;
                (key.clone(), figures)
            })
            .collect();
        deliveries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut expired: Vec<(String, u64)> = self
            .expired
            .iter_mut()
            .map(|(i, n)| (i.clone(), std::mem::take(n)))
            .collect();
        expired.sort();
        let mut unparsed: Vec<(String, u64)> = self
            .unparsed
            .iter_mut()
            .map(|(s, n)| (s.clone(), std::mem::take(n)))
            .collect();
        unparsed.sort();
        Flush {
            deliveries,
            expired,
            lines: std::mem::take(&mut self.lines),
            unparsed,
        }
    }

    /// The `service:` value of a program name, within `MAX_SERVICES` distinct values and the
    /// characters a tag keeps.
    fn service(&mut self, program: &str) -> String {
        if let Some(known) = self.services.iter().find(|s| s.as_str() == program) {
            return known.clone();
        }
        if self.services.len() >= MAX_SERVICES {
            return OTHER_SERVICE.to_owned();
        }
        let clean = crate::tag::sanitize(program).into_owned();
        self.services.push(clean.clone());
        clean
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::line;

    fn count_all(c: &mut Counters, log: &str) {
        for l in log.lines().filter(|l| !l.starts_with('#')) {
            if let Ok(line) = line::parse(l) {
                c.count(&line, "/etc/postfix");
            }
        }
    }

    #[test]
    fn the_captured_log_counted_by_outcome() {
        let mut c = Counters::new();
        let log = include_str!("../../tests/fixtures/logs/maillog-postfix-3.7.11.log");
        count_all(&mut c, log);
        let f = c.flush();
        let want_lines = log.lines().filter(|l| !l.starts_with('#')).count() as u64;
        assert_eq!(f.lines, want_lines);
        // Every status line of the capture is a deferral on the closed relay port.
        let status_lines = log
            .lines()
            .filter(|l| l.contains(" status=deferred "))
            .count() as u64;
        let deferred: u64 = f
            .deliveries
            .iter()
            .filter(|(k, _)| k.status == "deferred" && k.dsn_class == 4 && k.relay == "none")
            .map(|(_, d)| d.recipients)
            .sum();
        assert_eq!(deferred, status_lines);
        assert!(f.unparsed.is_empty(), "{:?}", f.unparsed);
        // Delays: all of them, at full rate, as written.
        for (_, d) in &f.deliveries {
            assert_eq!(d.delays.len() as u64, d.recipients);
            assert_eq!(d.delay_rate, 1.0);
        }
        // A quiet flush: the same series, at 0.
        let quiet = c.flush();
        assert_eq!(quiet.deliveries.len(), f.deliveries.len());
        assert!(quiet
            .deliveries
            .iter()
            .all(|(_, d)| d.recipients == 0 && d.delays.is_empty()));
        assert_eq!(quiet.lines, 0);
    }

    #[test]
    fn repeats_services_unparsed_and_bounds() {
        let mut c = Counters::new();
        let status = "ABCDEF1234: to=<a@b>, relay=mx[192.0.2.1]:25, delay=1.5, delays=0/0/0.5/1, dsn=2.0.0, status=sent (250 ok)";
        let line = |ident: &str, text: &str| format!("Dec 01 10:00:00 h {ident}[1]: {text}");
        // Renamed services count under their own name; a repeat counts N times.
        for (ident, text) in [
            ("postfix/relay/smtp", status.to_owned()),
            (
                "postfix-out/smtp",
                format!("message repeated 3 times: [ {status}]"),
            ),
            (
                "postfix/smtp",
                "ABCDEF1234: to=<a@b>, status=sent (mangled)".to_owned(),
            ),
        ] {
            let l = line(ident, &text);
            c.count(&line::parse(&l).unwrap(), "/etc/postfix");
        }
        let f = c.flush();
        assert_eq!(f.lines, 5);
        let smtp: u64 = f
            .deliveries
            .iter()
            .filter(|(k, _)| k.service == "smtp" && k.relay == "remote" && k.status == "sent")
            .map(|(_, d)| d.recipients)
            .sum();
        assert_eq!(smtp, 4);
        assert_eq!(f.unparsed, vec![("smtp".to_owned(), 1)]);
        // More delays than kept: a sample of MAX_DELAYS with the rate it stands for.
        let mut c = Counters::new();
        let l = line("postfix/smtp", status);
        let parsed = line::parse(&l).unwrap();
        for _ in 0..(MAX_DELAYS * 3) {
            c.count(&parsed, "/etc/postfix");
        }
        let f = c.flush();
        let (_, d) = &f.deliveries[0];
        assert_eq!(d.recipients, (MAX_DELAYS * 3) as u64);
        assert_eq!(d.delays.len(), MAX_DELAYS);
        assert!((d.delay_rate - 1.0 / 3.0).abs() < 1e-9, "{}", d.delay_rate);
        // Services past the cap are `other`.
        let mut c = Counters::new();
        for i in 0..(MAX_SERVICES + 5) {
            let l = line(&format!("postfix/pipe{i}"), status);
            c.count(&line::parse(&l).unwrap(), "/etc/postfix");
        }
        let f = c.flush();
        assert!(f.deliveries.iter().any(|(k, _)| k.service == OTHER_SERVICE));
        assert!(f.deliveries.len() <= MAX_SERVICES + 1);
    }

    #[test]
    fn expiry_counts_messages_once_and_probes_nothing() {
        let mut c = Counters::new();
        for text in [
            "ABCDEF1234: from=<a@b>, status=expired, returned to sender",
            "ABCDEF1234: to=<a@b>, relay=none, delay=0, delays=0/0/0/0, dsn=2.0.0, status=deliverable (ok)",
        ] {
            let l = format!("Dec 01 10:00:00 h postfix/qmgr[1]: {text}");
            c.count(&line::parse(&l).unwrap(), "/etc/postfix-out");
        }
        let f = c.flush();
        assert_eq!(f.expired, vec![("/etc/postfix-out".to_owned(), 1)]);
        assert!(f.deliveries.is_empty());
        c.too_long(2);
        let f = c.flush();
        assert_eq!((f.lines, f.unparsed), (2, vec![("unknown".to_owned(), 2)]));
    }
}
