//! What the log wing counts between two flushes: recipients by outcome with their delays (whole
//! and by stage), expired messages, messages received and their sizes, the SMTP server's
//! sessions, rejects and SASL failures, cleanup's actions, bounce notifications, TLS sessions,
//! postscreen's verdicts, warnings, lines read and lines a family should have understood but
//! did not. Pure: no I/O, no clock.
//!
//! Bounds: every tag value is a fixed word of its family's parser, except `service:` and
//! `source:` (program and master.cf service names, `MAX_SERVICES` of them, later ones `other`)
//! and `instance:` (`MAX_INSTANCES`). Series are capped (`MAX_SERIES` delivery series,
//! `MAX_COUNTS` others); a line that would make one more is counted as unparsed, so it shows.
//! Delays and sizes are kept as a uniform sample of `MAX_DELAYS` per series with the rate it
//! stands for. The queue IDs whose size was sent are remembered (`MAX_SIZED`, oldest forgotten
//! first, and each one forgotten at qmgr's `removed`).
//!
//! Quiet flushes: a series seen once is sent as 0 afterwards, and every instance that wrote a
//! line has its `smtpd.connections` series from then on, so a monitor never falls into
//! "no data" on a quiet server. Distributions send nothing when there is nothing.
//!
//! Each line belongs to at most one family, chosen by its program first (`Line::program`, the
//! identifier's last component) so most lines are tried against one parser. A line with a
//! severity prefix (`warning: `) is a warning, except smtpd's SASL failures, which are counted
//! as `auth_failures` only. Messages are counted once each where they enter the queue: smtpd's
//! `QID: client=` and pickup's `QID: uid=N from=<S>` are written once per queue file (qmgr's
//! `from=` line comes again at each retry, cleanup's `message-id=` does not tell the source).
//! Bounce notifications and local's `forwarded as` copies are Postfix's own messages, in
//! `bounce.notifications` and the delivery family, not in `received`.

use std::collections::{HashMap, VecDeque};

use super::delivery::{self, Event};
use super::line::Line;
use super::{cleanup, postscreen, queue, severity, smtpd, tls};
use crate::snapshot::{domain_of, Domains};

/// Distinct `service:` (and `source:`) values kept; later ones count as `other`. A master.cf
/// has a handful.
pub const MAX_SERVICES: usize = 64;
/// Values kept per distribution series between two flushes; past it, a uniform sample of that
/// size.
pub const MAX_DELAYS: usize = 1000;
/// `delays=a/b/c/d` lines kept per delivery series per flush, each four values: a smaller
/// sample than `delay=`'s, so that a busy flush stays a burst the Agent's socket takes (1,000
/// lines with all four stages made 5,000 DogStatsD lines per series, and a test's receiver
/// dropped the end of it). 50 lines still give each stage's percentiles, with their rate.
pub const MAX_STAGE_DELAYS: usize = 50;
/// Distinct delivery series kept (statuses x services x dsn classes x relays x instances).
pub const MAX_SERIES: usize = 2000;
/// Distinct series of the other counts kept (each family's tags x instances).
pub const MAX_COUNTS: usize = 4000;
/// Distinct `instance:` values kept; later ones count as `other` (the log task keeps fewer).
pub const MAX_INSTANCES: usize = 256;
/// Queue IDs remembered as sized, so that a message's size is sent once however often the
/// queue manager moves it into the active queue. Past it the oldest are forgotten: a message
/// retried after 20,000 others entered the queue is sized again. 100,000 took the process's
/// peak RSS from 9 to 16 MiB on the 1,000,000-line benchmark (whose log has no `removed`).
pub const MAX_SIZED: usize = 20_000;
/// The `service:` value of a line too long to read its identifier.
pub const UNKNOWN_SERVICE: &str = "unknown";
/// The `service:` (and `source:`, `instance:`) value for those past their cap.
pub const OTHER_SERVICE: &str = "other";
/// `source:` of an smtpd run under no service name of its own (no `-o syslog_name=x/NAME`).
pub const SOURCE_SMTPD: &str = "smtpd";
/// `source:` of a message submitted locally (sendmail, postdrop) and taken by pickup.
pub const SOURCE_PICKUP: &str = "pickup";
/// `source:` of a message `postsuper -r` put back through pickup (`orig_id=`): queued before.
pub const SOURCE_REQUEUED: &str = "requeued";
/// `source:` of a message a content filter handed back (see `Counters::received`).
pub const SOURCE_REINJECTED: &str = "reinjected";

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
    /// `delays=a/b/c/d` of a sample of the lines that had it (at most `MAX_STAGE_DELAYS`), in
    /// the order of `delivery::DELAY_STAGES`.
    pub stages: Vec<[f64; 4]>,
    /// The share of this series' delays that `delays` holds (1.0 when it holds them all): the
    /// DogStatsD sample rate, so that Datadog counts what was left out.
    pub delay_rate: f64,
    /// The same for `stages`.
    pub stage_rate: f64,
}

/// A counted series' own tags, besides `instance:`. Names (`source:`, `service:`) are indices
/// into the counter's table of names while counting (`Count<u16>`), strings in a `Flush`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Count<N = String> {
    /// A message entered the queue, from `source`.
    Received { source: N },
    /// `connect from`: an SMTP session began.
    Connections,
    /// A session cut short: `lost connection` or `too many errors` (`why`), after a command.
    LostConnections {
        why: &'static str,
        after: &'static str,
    },
    /// `timeout after CMD`.
    Timeouts { after: &'static str },
    /// A restriction's verdict (`NOQUEUE` or not); `code` `None` for a reply without one.
    Rejects {
        stage: &'static str,
        code: Option<u16>,
        reason: &'static str,
        action: &'static str,
    },
    /// A SASL authentication failed.
    AuthFailures { method: &'static str },
    /// A header/body check or a milter acted on a message in cleanup.
    CleanupActions { action: &'static str },
    /// The bounce daemon queued a notification.
    Notifications { kind: &'static str },
    /// A TLS session was set up (new or resumed).
    Tls {
        direction: &'static str,
        trust: &'static str,
        protocol: &'static str,
    },
    /// postscreen's verdict or step.
    Postscreen { action: &'static str },
    /// A line with a severity prefix, by the program that wrote it.
    Warnings { severity: &'static str, service: N },
}

/// The sizes (bytes) of the messages one instance moved into the active queue for the first
/// time, at most `MAX_DELAYS`, and the share of them these are.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizes {
    pub instance: String,
    pub bytes: Vec<u64>,
    pub rate: f64,
}

/// The status lines of one status on one instance by recipient domain: the top domains (most
/// recipients first) and the sum of the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainCounts {
    pub status: &'static str,
    pub instance: String,
    pub top: Vec<(String, u64)>,
    pub other: u64,
}

/// Everything one flush sends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flush {
    /// Sorted by key, for a stable output.
    pub deliveries: Vec<(DeliveryKey, DeliveryFigures)>,
    /// Expired messages per instance.
    pub expired: Vec<(String, u64)>,
    /// The other counts: what, on which instance, how many. Sorted.
    pub counts: Vec<(Count, String, u64)>,
    /// Message sizes per instance (only instances with some this flush).
    pub sizes: Vec<Sizes>,
    /// Recipients by domain, per status and instance, when asked (`Counters::with_top_domains`).
    pub domains: Vec<DomainCounts>,
    pub lines: u64,
    /// Lines a family claims but could not read, per service.
    pub unparsed: Vec<(String, u64)>,
}

#[derive(Debug, Default)]
pub struct Counters {
    deliveries: HashMap<DeliveryKey, Series>,
    expired: HashMap<String, u64>,
    unparsed: HashMap<String, u64>,
    counts: HashMap<(Count<u16>, u16), u64>,
    /// Per instance index: sizes this flush, and whether it handed mail to a loopback relay.
    instances: Vec<InstanceState>,
    sized: Sized,
    /// `log.top_domains` (0: domains are not counted), and the count per status and instance
    /// index this flush (each at most `snapshot::MAX_DOMAINS` domains, the rest summed).
    top_domains: usize,
    domains: HashMap<(&'static str, u16), Domains>,
    lines: u64,
    /// Program, service and source names: as written, and as a tag value.
    names: Vec<(String, String)>,
    /// A small deterministic generator for the samples (xorshift).
    rng: u64,
}

#[derive(Debug)]
struct Series {
    recipients: u64,
    /// `delay=` of the sampled lines.
    delays: Reservoir<f64>,
    /// `delays=a/b/c/d` of another, smaller sample of the same lines.
    stages: Reservoir<[f64; 4]>,
}

impl Default for Series {
    fn default() -> Self {
        Series {
            recipients: 0,
            delays: Reservoir::default(),
            stages: Reservoir::with_cap(MAX_STAGE_DELAYS),
        }
    }
}

#[derive(Debug)]
struct InstanceState {
    name: String,
    sizes: Reservoir<u64>,
    /// Flushes since this instance last handed mail to a loopback relay (`relay=127.0.0.1...`
    /// with `status=sent`: a content filter, or a local LMTP server); 0 = in this one.
    since_handoff: Option<u8>,
}

/// A uniform sample of at most `MAX_DELAYS` values (reservoir sampling: each value of the
/// flush is kept with the same odds), or of `cap` when one is given.
#[derive(Debug)]
struct Reservoir<T> {
    kept: Vec<T>,
    /// Values offered this flush, kept or not.
    seen: u64,
    cap: usize,
}

impl<T> Default for Reservoir<T> {
    fn default() -> Self {
        Reservoir::with_cap(MAX_DELAYS)
    }
}

impl<T> Reservoir<T> {
    fn with_cap(cap: usize) -> Self {
        Reservoir {
            kept: Vec::new(),
            seen: 0,
            cap,
        }
    }

    fn add(&mut self, value: T, random: u64) {
        self.seen += 1;
        if self.kept.len() < self.cap {
            self.kept.push(value);
        } else if let Some(kept) = self.kept.get_mut((random % self.seen) as usize) {
            *kept = value;
        }
    }

    /// The values kept and the share of the flush's values they are (1.0 for all of them).
    fn take(&mut self) -> (Vec<T>, f64) {
        let kept = std::mem::take(&mut self.kept);
        let rate = if self.seen == 0 {
            1.0
        } else {
            kept.len() as f64 / self.seen as f64
        };
        self.seen = 0;
        (kept, rate)
    }
}

/// The queue IDs (per instance, hashed) whose size was sent, in a bounded set forgotten
/// oldest first.
#[derive(Debug, Default)]
struct Sized {
    /// Key -> the number it was remembered under (a reused short queue ID gets a new one).
    ids: HashMap<u64, u64>,
    order: VecDeque<(u64, u64)>,
    next: u64,
}

impl Sized {
    /// Whether `id` is new, remembering it.
    fn first(&mut self, id: u64) -> bool {
        if self.ids.contains_key(&id) {
            return false;
        }
        if self.order.len() >= MAX_SIZED {
            if let Some((old, n)) = self.order.pop_front() {
                if self.ids.get(&old) == Some(&n) {
                    self.ids.remove(&old);
                }
            }
        }
        self.next += 1;
        self.ids.insert(id, self.next);
        self.order.push_back((id, self.next));
        true
    }

    fn forget(&mut self, id: u64) {
        self.ids.remove(&id);
    }
}

/// A queue ID of an instance as a number (FNV-1a): the set holds no strings, and two of the
/// 20,000 remembered colliding is a one in billions chance (a size not sent, once).
fn queue_key(instance: u16, queue_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(instance);
    for b in queue_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Counters {
    pub fn new() -> Self {
        Counters {
            rng: 0x9E37_79B9_7F4A_7C15,
            ..Counters::default()
        }
    }

    /// Counters that also count status lines by recipient domain, sending the `n` domains
    /// with most (0: none, as `new`).
    pub fn with_top_domains(n: usize) -> Self {
        Counters {
            top_domains: n,
            ..Counters::new()
        }
    }

    /// Counts one line of Postfix's log, written by the Postfix instance whose `instance:` tag
    /// is `instance`. A line rsyslog folded (`message repeated N times`) counts N times.
    /// Whether a family claimed the line (counted, or read and not counted on purpose, as
    /// smtpd's `disconnect` or cleanup's `message-id=`).
    pub fn count(&mut self, line: &Line<'_>, instance: &str) -> bool {
        let times = u64::from(line.times);
        self.lines += times;
        let inst = self.instance(instance);
        let (program, text) = (line.program, line.text);
        if let Some((severity, _)) = severity::parse(text) {
            let key = match smtpd::parse(program, text) {
                Some(smtpd::Event::AuthFailure { method }) => Count::AuthFailures {
                    method: method.tag(),
                },
                _ => Count::Warnings {
                    severity: severity.tag(),
                    service: self.name(program),
                },
            };
            self.add(key, inst, times, program);
            return true;
        }
        let claimed = match program {
            "smtpd" => self.smtpd(line, inst, times),
            "postscreen" => postscreen::parse(program, text).map(|e| {
                let key = Count::Postscreen {
                    action: e.action.tag(),
                };
                self.add(key, inst, times, program);
            }),
            "cleanup" => cleanup::parse(program, text).map(|e| {
                if let cleanup::Event::Action { action, .. } = e {
                    let key = Count::CleanupActions {
                        action: action.tag(),
                    };
                    self.add(key, inst, times, program);
                }
            }),
            "pickup" | "qmgr" | "bounce" => match self.queue(line, inst, times) {
                Some(()) => Some(()),
                None => self.delivery(line, instance, inst, times),
            },
            "smtp" | "lmtp" => match self.delivery(line, instance, inst, times) {
                Some(()) => Some(()),
                None => self.tls(line, inst, times),
            },
            "tlsproxy" => self.tls(line, inst, times),
            _ => self.delivery(line, instance, inst, times),
        };
        if claimed.is_none() && text.contains(" status=") {
            // A status line that the family could not read: a Postfix that changed the
            // line's shape, or a hostile one. Shown per service, never silently dropped.
            let service = self.service(program);
            *self.unparsed.entry(service).or_default() += times;
        }
        claimed.is_some()
    }

    fn smtpd(&mut self, line: &Line<'_>, inst: u16, times: u64) -> Option<()> {
        let Some(event) = smtpd::parse(line.program, line.text) else {
            return self.tls(line, inst, times);
        };
        let key = match event {
            smtpd::Event::Connect => Count::Connections,
            smtpd::Event::Disconnect => return Some(()),
            smtpd::Event::Lost {
                why: smtpd::Lost::Timeout,
                after,
            } => Count::Timeouts { after: after.tag() },
            smtpd::Event::Lost { why, after } => Count::LostConnections {
                why: why.tag(),
                after: after.tag(),
            },
            smtpd::Event::Reject(r) => Count::Rejects {
                stage: r.stage.tag(),
                code: r.code,
                reason: r.reason.tag(),
                action: r.action.tag(),
            },
            smtpd::Event::AuthFailure { method } => Count::AuthFailures {
                method: method.tag(),
            },
            smtpd::Event::Accepted(a) => {
                let source = self.received(line.syslog_name, a, inst);
                Count::Received { source }
            }
        };
        self.add(key, inst, times, line.program);
        Some(())
    }

    /// The `source:` of a message smtpd accepted. `reinjected` when a content filter hands it
    /// back: the client sent the original queue ID (`orig_queue_id=`), or it is a loopback
    /// client on an instance that handed mail to a loopback relay in this flush or the one
    /// before (a filter may re-inject before it answers, so the hand-off can come later in
    /// the log). A loopback relay may be a local LMTP server too: on an instance with both,
    /// local programs submitting by SMTP on 127.0.0.1 count as `reinjected`. Otherwise the
    /// master.cf service's name (`postfix/submission` -> `submission`), or `smtpd`.
    fn received(&mut self, syslog_name: &str, a: smtpd::Accepted, inst: u16) -> u16 {
        let handed = self
            .instances
            .get(usize::from(inst))
            .is_some_and(|i| i.since_handoff.is_some_and(|n| n <= 1));
        if a.orig_queue_id || (a.loopback && handed) {
            return self.name(SOURCE_REINJECTED);
        }
        let service = syslog_name
            .rsplit_once('/')
            .map_or(SOURCE_SMTPD, |(_, s)| s);
        self.name(service)
    }

    fn tls(&mut self, line: &Line<'_>, inst: u16, times: u64) -> Option<()> {
        let e = tls::parse(line.program, line.text)?;
        let key = Count::Tls {
            direction: e.direction.tag(),
            trust: e.trust.tag(),
            protocol: e.protocol.tag(),
        };
        self.add(key, inst, times, line.program);
        Some(())
    }

    /// pickup, qmgr and bounce lines (not the qmgr's delivery and expiry lines).
    fn queue(&mut self, line: &Line<'_>, inst: u16, times: u64) -> Option<()> {
        let event = queue::parse(line.program, line.text)?;
        let queue_id = line.text.split_once(": ").map_or("", |(q, _)| q);
        let key = match event {
            queue::Event::Pickup { requeued } => Count::Received {
                source: self.name(if requeued {
                    SOURCE_REQUEUED
                } else {
                    SOURCE_PICKUP
                }),
            },
            queue::Event::Active { size, .. } => {
                if self.sized.first(queue_key(inst, queue_id)) {
                    let random = self.next_random();
                    if let Some(i) = self.instances.get_mut(usize::from(inst)) {
                        i.sizes.add(size, random);
                    }
                }
                return Some(());
            }
            queue::Event::Removed => {
                self.sized.forget(queue_key(inst, queue_id));
                return Some(());
            }
            queue::Event::Notification { kind, .. } => Count::Notifications { kind: kind.tag() },
        };
        self.add(key, inst, times, line.program);
        Some(())
    }

    /// A delivery status line or qmgr's expiry line.
    fn delivery(&mut self, line: &Line<'_>, instance: &str, inst: u16, times: u64) -> Option<()> {
        let d = match delivery::parse(line.text)? {
            Event::Delivery(d) => d,
            Event::Expired => {
                *self.expired.entry(instance.to_owned()).or_default() += times;
                return Some(());
            }
            Event::Probe => return Some(()),
        };
        if d.status == delivery::Status::Sent && d.relay == delivery::Relay::Loopback {
            if let Some(i) = self.instances.get_mut(usize::from(inst)) {
                i.since_handoff = Some(0);
            }
        }
        if self.top_domains > 0 {
            if let Some(to) = delivery::recipient(line.text) {
                self.domains
                    .entry((d.status.tag(), inst))
                    .or_default()
                    .add(&domain_of(to), times);
            }
        }
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
            return Some(());
        }
        for _ in 0..times {
            let rng = self.next_random();
            let series = self.deliveries.entry(key.clone()).or_default();
            series.recipients += 1;
            series.delays.add(d.delay, rng);
            if let Some(stages) = d.delays {
                // Another draw: the two samples are independent.
                let rng = self.next_random();
                let series = self.deliveries.entry(key.clone()).or_default();
                series.stages.add(stages, rng);
            }
        }
        Some(())
    }

    /// Adds `times` to a series, within `MAX_COUNTS` series (past it, unparsed).
    fn add(&mut self, key: Count<u16>, inst: u16, times: u64, program: &str) {
        if let Some(n) = self.counts.get_mut(&(key, inst)) {
            *n += times;
        } else if self.counts.len() < MAX_COUNTS {
            self.counts.insert((key, inst), times);
        } else {
            let service = self.service(program);
            *self.unparsed.entry(service).or_default() += times;
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
                let (delays, delay_rate) = s.delays.take();
                let (stages, stage_rate) = s.stages.take();
                let figures = DeliveryFigures {
                    recipients: std::mem::take(&mut s.recipients),
                    delays,
                    stages,
                    delay_rate,
                    stage_rate,
                };
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
        let mut counts: Vec<(Count, String, u64)> = self
            .counts
            .iter_mut()
            .map(|((key, inst), n)| {
                let instance = self.instances.get(usize::from(*inst)).map(|i| &i.name);
                let name = |i: u16| self.names.get(usize::from(i)).map(|(_, c)| c.clone());
                (
                    key.named(name),
                    instance.cloned().unwrap_or_default(),
                    std::mem::take(n),
                )
            })
            .collect();
        counts.sort();
        let mut sizes = Vec::new();
        for i in &mut self.instances {
            let (bytes, rate) = i.sizes.take();
            if !bytes.is_empty() {
                sizes.push(Sizes {
                    instance: i.name.clone(),
                    bytes,
                    rate,
                });
            }
            i.since_handoff = i.since_handoff.map(|n| n.saturating_add(1));
        }
        sizes.sort_by(|a, b| a.instance.cmp(&b.instance));
        let mut domains: Vec<DomainCounts> = self
            .domains
            .drain()
            .map(|((status, inst), d)| {
                let (top, other) = d.top(self.top_domains);
                DomainCounts {
                    status,
                    instance: self
                        .instances
                        .get(usize::from(inst))
                        .map(|i| i.name.clone())
                        .unwrap_or_default(),
                    top: top.into_iter().map(|(d, n)| (d.to_owned(), n)).collect(),
                    other,
                }
            })
            .collect();
        domains.sort_by(|a, b| (a.status, &a.instance).cmp(&(b.status, &b.instance)));
        let mut unparsed: Vec<(String, u64)> = self
            .unparsed
            .iter_mut()
            .map(|(s, n)| (s.clone(), std::mem::take(n)))
            .collect();
        unparsed.sort();
        Flush {
            deliveries,
            expired,
            counts,
            sizes,
            domains,
            lines: std::mem::take(&mut self.lines),
            unparsed,
        }
    }

    /// The index of an `instance:` value, within `MAX_INSTANCES` (then `other`). A new
    /// instance gets its `smtpd.connections` series, sent from then on (0 when quiet).
    fn instance(&mut self, instance: &str) -> u16 {
        if let Some(i) = self.instances.iter().position(|i| i.name == instance) {
            return i as u16;
        }
        let name = if self.instances.len() >= MAX_INSTANCES {
            if let Some(i) = self.instances.iter().position(|i| i.name == OTHER_SERVICE) {
                return i as u16;
            }
            OTHER_SERVICE
        } else {
            instance
        };
        self.instances.push(InstanceState {
            name: name.to_owned(),
            sizes: Reservoir::default(),
            since_handoff: None,
        });
        let inst = (self.instances.len() - 1) as u16;
        if self.counts.len() < MAX_COUNTS {
            self.counts.entry((Count::Connections, inst)).or_default();
        }
        inst
    }

    /// The index of a program, service or source name in the table of names, within
    /// `MAX_SERVICES` distinct values (then `other`).
    fn name(&mut self, name: &str) -> u16 {
        if let Some(i) = self.names.iter().position(|(n, _)| n == name) {
            return i as u16;
        }
        let name = if self.names.len() >= MAX_SERVICES {
            if let Some(i) = self.names.iter().position(|(n, _)| n == OTHER_SERVICE) {
                return i as u16;
            }
            OTHER_SERVICE
        } else {
            name
        };
        let clean = crate::tag::sanitize(name).into_owned();
        self.names.push((name.to_owned(), clean));
        (self.names.len() - 1) as u16
    }

    /// The `service:` value of a program name, within `MAX_SERVICES` distinct values and the
    /// characters a tag keeps.
    fn service(&mut self, program: &str) -> String {
        let i = self.name(program);
        self.names
            .get(usize::from(i))
            .map_or_else(|| OTHER_SERVICE.to_owned(), |(_, c)| c.clone())
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

impl Count<u16> {
    /// The same tags with names for indices.
    fn named(self, name: impl Fn(u16) -> Option<String>) -> Count {
        let name = |i| name(i).unwrap_or_else(|| OTHER_SERVICE.to_owned());
        match self {
            Count::Received { source } => Count::Received {
                source: name(source),
            },
            Count::Warnings { severity, service } => Count::Warnings {
                severity,
                service: name(service),
            },
            Count::Connections => Count::Connections,
            Count::LostConnections { why, after } => Count::LostConnections { why, after },
            Count::Timeouts { after } => Count::Timeouts { after },
            Count::Rejects {
                stage,
                code,
                reason,
                action,
            } => Count::Rejects {
                stage,
                code,
                reason,
                action,
            },
            Count::AuthFailures { method } => Count::AuthFailures { method },
            Count::CleanupActions { action } => Count::CleanupActions { action },
            Count::Notifications { kind } => Count::Notifications { kind },
            Count::Tls {
                direction,
                trust,
                protocol,
            } => Count::Tls {
                direction,
                trust,
                protocol,
            },
            Count::Postscreen { action } => Count::Postscreen { action },
        }
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
        let log = crate::log::fixtures::CAPTURE;
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
        // Stages: a smaller sample of their own, with its own rate.
        assert_eq!(d.stages.len(), MAX_STAGE_DELAYS);
        let want = MAX_STAGE_DELAYS as f64 / (MAX_DELAYS * 3) as f64;
        assert!((d.stage_rate - want).abs() < 1e-9, "{}", d.stage_rate);
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
    fn recipients_by_domain_only_when_asked_top_n_and_the_rest() {
        let lines = [
            "to=<a@Example.COM>, relay=mx[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (ok)",
            "to=<b@example.com>, relay=mx[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (ok)",
            "to=<\"x y\"@other.org>, relay=mx[192.0.2.2]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (ok)",
            "to=<c@other.org>, relay=none, delay=1, delays=0/0/0/1, dsn=4.4.1, status=deferred (refused)",
        ];
        let feed = |c: &mut Counters| {
            for text in lines {
                let l = format!("Dec 01 10:00:00 h postfix/smtp[1]: ABCDEF1234: {text}");
                c.count(&line::parse(&l).unwrap(), "/etc/postfix");
            }
        };
        let mut off = Counters::new();
        feed(&mut off);
        assert!(off.flush().domains.is_empty());
        let mut c = Counters::with_top_domains(1);
        feed(&mut c);
        let f = c.flush();
        let want = |status, top: &[(&str, u64)], other| DomainCounts {
            status,
            instance: "/etc/postfix".to_owned(),
            top: top.iter().map(|(d, n)| ((*d).to_owned(), *n)).collect(),
            other,
        };
        assert_eq!(
            f.domains,
            vec![
                want("deferred", &[("other.org", 1)], 0),
                want("sent", &[("example.com", 2)], 1),
            ]
        );
        // Counted per flush: a quiet flush sends none.
        assert!(c.flush().domains.is_empty());
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

    /// The 3.7.11 capture's messages and warnings, each counted once (that every one of its
    /// lines is counted or ignored on purpose is `fixtures`' test, for every fixture).
    #[test]
    fn the_captured_log_counts_each_message_once() {
        let log = crate::log::fixtures::CAPTURE;
        let mut c = Counters::new();
        count_all(&mut c, log);
        let f = c.flush();
        let count = |want: &Count| {
            f.counts
                .iter()
                .filter(|(k, _, _)| k == want)
                .map(|(_, _, n)| *n)
                .sum::<u64>()
        };
        let lines_with = |needle: &str| log.lines().filter(|l| l.contains(needle)).count() as u64;
        // Each message once, from pickup; its size once however often qmgr moved it.
        assert_eq!(
            count(&Count::Received {
                source: SOURCE_PICKUP.to_owned()
            }),
            lines_with("postfix/pickup[")
        );
        let sized: usize = f.sizes.iter().map(|s| s.bytes.len()).sum();
        assert_eq!(sized as u64, lines_with("postfix/pickup["));
        let active: std::collections::HashSet<_> = log
            .lines()
            .filter(|l| l.ends_with("(queue active)"))
            .filter_map(|l| line::parse(l).ok()?.text.split_once(": ").map(|(q, _)| q))
            .collect();
        assert_eq!(sized, active.len());
        assert_eq!(
            count(&Count::Warnings {
                severity: "fatal",
                service: "postqueue".to_owned()
            }),
            2
        );
        assert_eq!(count(&Count::Connections), 0);
        assert!(f.unparsed.is_empty(), "{:?}", f.unparsed);
    }

    #[test]
    fn sizes_once_per_queue_id_until_removed() {
        let mut c = Counters::new();
        let active = "Dec 01 10:00:00 h postfix/qmgr[1]: ABCDEF1234: from=<a@b>, size=100, nrcpt=1 (queue active)";
        let removed = "Dec 01 10:00:00 h postfix/qmgr[1]: ABCDEF1234: removed";
        for l in [active, active, removed, active] {
            c.count(&line::parse(l).unwrap(), "/etc/postfix");
        }
        // Another instance's queue ID is another message.
        c.count(&line::parse(active).unwrap(), "/etc/postfix-out");
        let f = c.flush();
        let sizes: Vec<_> = f
            .sizes
            .iter()
            .map(|s| (s.instance.as_str(), s.bytes.clone(), s.rate))
            .collect();
        assert_eq!(
            sizes,
            [
                ("/etc/postfix", vec![100, 100], 1.0),
                ("/etc/postfix-out", vec![100], 1.0)
            ]
        );
        // Remembered across flushes: a retry in the next flush sends no size.
        c.count(&line::parse(active).unwrap(), "/etc/postfix");
        assert!(c.flush().sizes.is_empty());
        // The set is bounded: the oldest are forgotten first.
        let mut s = Sized::default();
        for id in 0..(MAX_SIZED as u64 + 10) {
            assert!(s.first(id));
        }
        assert!(s.ids.len() <= MAX_SIZED && s.order.len() <= MAX_SIZED);
        assert!(s.first(0), "the oldest was forgotten");
        assert!(!s.first(MAX_SIZED as u64 + 9));
    }

    #[test]
    fn reinjection_is_told_apart_and_quiet_flushes_send_zeros() {
        let mut c = Counters::new();
        let at = |c: &mut Counters, ident: &str, text: &str| {
            let l = format!("Dec 01 10:00:00 h {ident}[1]: {text}");
            c.count(&line::parse(&l).unwrap(), "/etc/postfix")
        };
        // A loopback client before any hand-off: a local program submitting by SMTP.
        at(
            &mut c,
            "postfix/smtpd",
            "AAAAAA1111: client=localhost[127.0.0.1]",
        );
        // A hand-off to a content filter, then its copy from a loopback client.
        at(&mut c, "postfix/smtp", "BBBBBB2222: to=<a@example.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.3, delays=0.1/0/0.1/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as CCCCCC3333)");
        at(
            &mut c,
            "postfix/smtpd",
            "CCCCCC3333: client=localhost[127.0.0.1]",
        );
        let f = c.flush();
        let received: Vec<_> = f
            .counts
            .iter()
            .filter_map(|(k, _, n)| match k {
                Count::Received { source } => Some((source.as_str(), *n)),
                _ => None,
            })
            .collect();
        assert_eq!(received, [("reinjected", 1), ("smtpd", 1)]);
        // The flush after still knows the hand-off; two flushes later it is forgotten.
        c.flush();
        c.flush();
        at(
            &mut c,
            "postfix/smtpd",
            "DDDDDD4444: client=localhost[127.0.0.1]",
        );
        let f = c.flush();
        assert!(f.counts.iter().any(|(k, _, n)| *k
            == Count::Received {
                source: "smtpd".to_owned()
            }
            && *n == 1));
        // Quiet: every series seen, at 0, and connections from the instance's first line.
        let quiet = c.flush();
        assert!(quiet.counts.iter().all(|(_, _, n)| *n == 0));
        assert!(quiet
            .counts
            .iter()
            .any(|(k, i, _)| *k == Count::Connections && i == "/etc/postfix"));
        assert_eq!(quiet.counts.len(), 3);
    }

    #[test]
    fn counts_are_bounded() {
        let mut c = Counters::new();
        // Distinct services past the cap are `other`, in warnings as in deliveries.
        for i in 0..(MAX_SERVICES + 5) {
            let l = format!("Dec 01 10:00:00 h postfix/prog{i}[1]: warning: x");
            c.count(&line::parse(&l).unwrap(), "/etc/postfix");
        }
        let f = c.flush();
        assert!(f.counts.len() <= MAX_SERVICES + 2, "{}", f.counts.len());
        assert!(f.counts.iter().any(|(k, _, n)| *k
            == Count::Warnings {
                severity: "warning",
                service: OTHER_SERVICE.to_owned()
            }
            && *n >= 5));
        // Reject codes are three digits: at most 400 x the fixed stages, reasons and actions;
        // past MAX_COUNTS, unparsed.
        let mut c = Counters::new();
        for i in 0..(MAX_COUNTS as u32 + 10) {
            let instance = format!("i{}", i % 1000);
            let l = format!(
                "Dec 01 10:00:00 h postfix/postscreen[1]: PASS NEW [192.0.2.{}]:25",
                i % 200
            );
            c.count(&line::parse(&l).unwrap(), &instance);
        }
        let f = c.flush();
        assert!(f.counts.len() <= MAX_COUNTS);
        let instances: std::collections::HashSet<_> = f.counts.iter().map(|(_, i, _)| i).collect();
        assert!(instances.len() <= MAX_INSTANCES + 1);
    }
}
