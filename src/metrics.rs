//! The only place that knows metric names and tag order. A collection becomes samples here, the
//! same way for every method, so the stock Datadog dashboard sees the same series whichever
//! method an instance uses.
//!
//! Tag order follows the Datadog check: the instance's `tags`, then `queue:`, then `instance:`,
//! then `service:`; our additions (`host:` for `empty_default_hostname`, then the global tags)
//! come after.

use std::time::Duration;

use crate::collect::Collection;
use crate::config::Instance;
use crate::log::counters::{Count, Flush};
use crate::log::delivery::DELAY_STAGES;
use crate::queue;
use crate::reason::Reason;

pub const QUEUE_SIZE: &str = "postfix.queue.size";
pub const QUEUE_BYTES: &str = "postfix.queue.bytes";
pub const QUEUE_RECIPIENTS: &str = "postfix.queue.recipients";
pub const QUEUE_OLDEST_AGE: &str = "postfix.queue.oldest_age";
pub const QUEUE_OLDER_THAN: &str = "postfix.queue.older_than";
pub const RECIPIENTS_BY_REASON: &str = "postfix.queue.recipients_by_reason";
pub const RECIPIENTS_BY_DOMAIN: &str = "postfix.queue.recipients_by_domain";
pub const DURATION: &str = "postfix.collection.duration";
pub const ERRORS: &str = "postfix.collection.errors";
pub const TRUNCATED: &str = "postfix.collection.truncated";
pub const SKIPPED: &str = "postfix.collection.skipped";
pub const FILES_READ: &str = "postfix.collection.files_read";
pub const CAN_COLLECT: &str = "postfix.can_collect";
// The log wing.
pub const DELIVERY_RECIPIENTS: &str = "postfix.delivery.recipients";
pub const DELIVERY_DELAY: &str = "postfix.delivery.delay";
pub const MESSAGES_EXPIRED: &str = "postfix.messages.expired";
pub const DELIVERY_DELAY_STAGE: &str = "postfix.delivery.delay_stage";
pub const DELIVERY_RECIPIENTS_BY_DOMAIN: &str = "postfix.delivery.recipients_by_domain";
pub const MESSAGES_RECEIVED: &str = "postfix.messages.received";
pub const MESSAGES_SIZE: &str = "postfix.messages.size";
pub const SMTPD_CONNECTIONS: &str = "postfix.smtpd.connections";
pub const SMTPD_LOST_CONNECTIONS: &str = "postfix.smtpd.lost_connections";
pub const SMTPD_TIMEOUTS: &str = "postfix.smtpd.timeouts";
pub const SMTPD_REJECTS: &str = "postfix.smtpd.rejects";
pub const SMTPD_AUTH_FAILURES: &str = "postfix.smtpd.auth_failures";
pub const CLEANUP_ACTIONS: &str = "postfix.cleanup.actions";
pub const BOUNCE_NOTIFICATIONS: &str = "postfix.bounce.notifications";
pub const TLS_CONNECTIONS: &str = "postfix.tls.connections";
pub const POSTSCREEN_EVENTS: &str = "postfix.postscreen.events";
pub const LOG_WARNINGS: &str = "postfix.log.warnings";
pub const LOG_LINES: &str = "postfix.log.lines";
pub const LOG_UNPARSED: &str = "postfix.log.unparsed";
pub const LOG_LAG: &str = "postfix.log.lag";
pub const CAN_READ_LOG: &str = "postfix.log.can_read";

/// What a name is sent as, which says what a query may do with it (percentiles of a
/// distribution, `.as_count()` of a count, a service check in a check monitor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Gauge,
    Count,
    Distribution,
    ServiceCheck,
}

/// A metric or service check we send, and the tag keys of its own: what a dashboard or a
/// monitor may filter and group by besides the user's tags (the instance's `tags` or
/// `log.tags`, an instance's `service:`, `host:`, `dogstatsd.tags`, the `DD_*` tags) and the
/// Agent's `host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub name: &'static str,
    pub form: Form,
    pub tags: &'static [&'static str],
}

const fn sent(name: &'static str, form: Form, tags: &'static [&'static str]) -> Sent {
    Sent { name, form, tags }
}

const QUEUE: &[&str] = &["queue", "instance"];
const INSTANCE: &[&str] = &["instance"];
const DELIVERY: &[&str] = &["status", "service", "dsn_class", "relay", "instance"];

/// Every metric and service check we send, with its form and own tags. The tests hold it to
/// what `report` and `log_report` send, and the shipped dashboard and monitors to it.
pub const ALL: [Sent; 34] = {
    use Form::{Count, Distribution, Gauge, ServiceCheck};
    [
        sent(QUEUE_SIZE, Gauge, QUEUE),
        sent(QUEUE_BYTES, Gauge, QUEUE),
        sent(QUEUE_RECIPIENTS, Gauge, QUEUE),
        sent(QUEUE_OLDEST_AGE, Gauge, QUEUE),
        sent(QUEUE_OLDER_THAN, Gauge, &["queue", "age", "instance"]),
        sent(
            RECIPIENTS_BY_REASON,
            Gauge,
            &["queue", "reason", "instance"],
        ),
        sent(
            RECIPIENTS_BY_DOMAIN,
            Gauge,
            &["queue", "domain", "instance"],
        ),
        sent(DURATION, Gauge, INSTANCE),
        sent(ERRORS, Count, INSTANCE),
        sent(TRUNCATED, Count, INSTANCE),
        sent(SKIPPED, Count, INSTANCE),
        sent(FILES_READ, Count, INSTANCE),
        sent(CAN_COLLECT, ServiceCheck, &["instance", "postfix_version"]),
        sent(DELIVERY_RECIPIENTS, Count, DELIVERY),
        sent(DELIVERY_DELAY, Distribution, DELIVERY),
        sent(MESSAGES_EXPIRED, Count, INSTANCE),
        sent(
            DELIVERY_DELAY_STAGE,
            Distribution,
            &[
                "status",
                "service",
                "dsn_class",
                "relay",
                "stage",
                "instance",
            ],
        ),
        sent(
            DELIVERY_RECIPIENTS_BY_DOMAIN,
            Count,
            &["status", "domain", "instance"],
        ),
        sent(MESSAGES_RECEIVED, Count, &["source", "instance"]),
        sent(MESSAGES_SIZE, Distribution, INSTANCE),
        sent(SMTPD_CONNECTIONS, Count, INSTANCE),
        sent(SMTPD_LOST_CONNECTIONS, Count, &["after", "why", "instance"]),
        sent(SMTPD_TIMEOUTS, Count, &["after", "instance"]),
        sent(
            SMTPD_REJECTS,
            Count,
            &["stage", "code", "reason", "action", "instance"],
        ),
        sent(SMTPD_AUTH_FAILURES, Count, &["method", "instance"]),
        sent(CLEANUP_ACTIONS, Count, &["action", "instance"]),
        sent(BOUNCE_NOTIFICATIONS, Count, &["kind", "instance"]),
        sent(
            TLS_CONNECTIONS,
            Count,
            &["direction", "trust", "protocol", "instance"],
        ),
        sent(POSTSCREEN_EVENTS, Count, &["action", "instance"]),
        sent(LOG_WARNINGS, Count, &["severity", "service", "instance"]),
        // The log's own health has no `instance:`: one log serves every Postfix instance.
        sent(LOG_LINES, Count, &[]),
        sent(LOG_UNPARSED, Count, &["service"]),
        sent(LOG_LAG, Gauge, &[]),
        sent(CAN_READ_LOG, ServiceCheck, &[]),
    ]
};

impl Sent {
    /// The metric or service check of that name, if we send one.
    pub fn named(name: &str) -> Option<&'static Sent> {
        ALL.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A whole number, sent without a decimal point.
    Int(u64),
    /// Seconds and other fractions.
    Float(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Gauge,
    Count,
    /// A DogStatsD distribution (`|d`); `rate` below 1 is the share of the values sent
    /// (`|@rate`), so that Datadog counts what was left out.
    Distribution {
        rate: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: &'static str,
    pub value: Value,
    pub kind: Kind,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    Critical = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCheck {
    pub name: &'static str,
    pub status: Status,
    pub tags: Vec<String>,
    pub message: Option<String>,
}

/// What one cycle of one instance sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub samples: Vec<Sample>,
    pub check: ServiceCheck,
}

/// Everything one cycle of one instance produced, besides the collection itself.
#[derive(Debug, Clone, Copy)]
pub struct Cycle {
    /// How long the run took; `None` for a run that was not started.
    pub duration: Option<Duration>,
    /// Runs of this instance skipped because the previous one was still going.
    pub skipped: u64,
}

/// Turns one collection into what is sent. Queue gauges come only from queues that were read:
/// a failed queue has no gauge, never a 0.
pub fn report(
    instance: &Instance,
    global_tags: &[String],
    collection: &Collection,
    cycle: Cycle,
) -> Report {
    let tagger = Tagger {
        instance,
        global: global_tags,
    };
    let mut samples = Vec::new();
    let mut gauge = |name: &'static str, value: u64, tags: Vec<String>| {
        if instance.patterns.allows(name) {
            samples.push(Sample {
                name,
                value: Value::Int(value),
                kind: Kind::Gauge,
                tags,
            });
        }
    };
    for q in &collection.snapshot.queues {
        let tags = |extra: Option<String>| tagger.tags(Some(&q.queue), extra);
        gauge(QUEUE_SIZE, q.messages, tags(None));
        // A directory scan sums file sizes, a listing message sizes: one or the other, once.
        if let Some(bytes) = q.bytes.or(q.listing.as_ref().map(|l| l.bytes)) {
            gauge(QUEUE_BYTES, bytes, tags(None));
        }
        let Some(l) = &q.listing else { continue };
        gauge(QUEUE_RECIPIENTS, l.recipients, tags(None));
        gauge(QUEUE_OLDEST_AGE, l.oldest_age, tags(None));
        for ((_, label), n) in instance.age_thresholds.iter().zip(&l.older_than) {
            gauge(QUEUE_OLDER_THAN, *n, tags(Some(format!("age:{label}"))));
        }
        // Reasons only mean something for mail that was tried: the deferred queue.
        if q.queue == queue::DEFERRED {
            for r in Reason::ALL {
                let tag = format!("reason:{}", r.as_str());
                gauge(RECIPIENTS_BY_REASON, l.reasons[r.index()], tags(Some(tag)));
            }
        }
        if instance.top_domains > 0 {
            let (top, other) = l.domains.top(instance.top_domains);
            for (domain, n) in top {
                gauge(
                    RECIPIENTS_BY_DOMAIN,
                    n,
                    tags(Some(format!("domain:{domain}"))),
                );
            }
            gauge(
                RECIPIENTS_BY_DOMAIN,
                other,
                tags(Some(format!("domain:{}", crate::snapshot::OTHER_DOMAINS))),
            );
        }
    }
    let own = tagger.tags(None, None);
    let mut push = |name: &'static str, value, kind| {
        if instance.patterns.allows(name) {
            samples.push(Sample {
                name,
                value,
                kind,
                tags: own.clone(),
            });
        }
    };
    // A run that did not start has no duration to report.
    if let Some(duration) = cycle.duration {
        push(DURATION, Value::Float(duration.as_secs_f64()), Kind::Gauge);
    }
    push(
        ERRORS,
        Value::Int(collection.errors.len() as u64),
        Kind::Count,
    );
    // Messages too large to list whole: counted, recipients skipped; not an error.
    push(
        TRUNCATED,
        Value::Int(collection.snapshot.truncated.messages),
        Kind::Count,
    );
    push(SKIPPED, Value::Int(cycle.skipped), Kind::Count);
    // What a method that reads queue files read this time: the cost its cache saved.
    if let Some(n) = collection.files_read {
        push(FILES_READ, Value::Int(n), Kind::Count);
    }
    // `postfix_version:` after the instance's own tags, before the global ones, unless the
    // user's tags have one already (`disable_generic_tags` renames a `version:` to it).
    let user_has_version = instance
        .tags
        .iter()
        .any(|t| t.starts_with("postfix_version:"));
    let check_tags = match &collection.postfix_version {
        Some(v) if !user_has_version => {
            tagger.tags_before_global(None, None, Some(format!("postfix_version:{v}")))
        }
        _ => own.clone(),
    };
    let check = ServiceCheck {
        name: CAN_COLLECT,
        status: if collection.errors.is_empty() {
            Status::Ok
        } else {
            Status::Critical
        },
        tags: check_tags,
        message: (!collection.errors.is_empty()).then(|| collection.error_text()),
    };
    Report { samples, check }
}

/// The most distinct series one cycle of `instance` can send, per metric name: what it costs
/// on a Datadog bill, where every series is a custom metric. Counts what the method can read
/// (listing methods every figure of five queues, scan of six, find the listed queues),
/// the age thresholds, the reason classes, `top_domains` per queue plus `other`, and
/// `metric_patterns`. An instance with `discover` costs this once per Postfix instance.
pub fn most_series(instance: &Instance) -> Vec<(&'static str, usize)> {
    use crate::collect::{MethodConfig, MethodKind};
    let (queues, listed, scanned) = match &instance.method {
        MethodConfig::Run(MethodKind::Find, settings) => (settings.queues.len(), 0, 0),
        // scan lists the messages of six queues, corrupt included; auto may end up on it.
        MethodConfig::Run(MethodKind::Scan | MethodKind::Auto, _) => {
            (queue::SCANNED.len(), queue::SCANNED.len(), 1)
        }
        MethodConfig::Run(_, _) => (queue::LISTED.len(), queue::LISTED.len(), 0),
        MethodConfig::Unavailable(_) => (0, 0, 0),
    };
    let domains = if instance.top_domains > 0 {
        listed * (instance.top_domains + 1)
    } else {
        0
    };
    let reasons = if listed > 0 { Reason::ALL.len() } else { 0 };
    [
        (QUEUE_SIZE, queues),
        (QUEUE_BYTES, listed),
        (QUEUE_RECIPIENTS, listed),
        (QUEUE_OLDEST_AGE, listed),
        (QUEUE_OLDER_THAN, listed * instance.age_thresholds.len()),
        (RECIPIENTS_BY_REASON, reasons),
        (RECIPIENTS_BY_DOMAIN, domains),
        (DURATION, 1),
        (ERRORS, 1),
        (SKIPPED, 1),
        (TRUNCATED, 1),
        (FILES_READ, scanned),
    ]
    .into_iter()
    .filter(|(name, n)| *n > 0 && instance.patterns.allows(name))
    .collect()
}

/// What one flush of the log wing saw besides its counts.
#[derive(Debug, Clone, Default)]
pub struct LogState {
    /// `postfix.log.lag`, in seconds.
    pub lag: f64,
    /// Why the log cannot be read (or its position kept); `None` is OK.
    pub problem: Option<String>,
}

/// Turns one flush of the log wing into what is sent. Tags: `log.tags`, then the series' own
/// (the delivery family's `status:`, `service:`, `dsn_class:`, `relay:`, then `stage:` for
/// `delay_stage`; each other family's in the order `count_tags` writes them), then
/// `instance:`, then the global tags; of `env:`, `service:` and `version:` only the first is
/// kept, as for the queue metrics.
pub fn log_report(
    flush: &Flush,
    state: &LogState,
    log_tags: &[String],
    global: &[String],
) -> Report {
    let tags = |own: &[String]| {
        let mut tags = log_tags.to_vec();
        tags.extend(own.iter().map(|t| crate::tag::sanitize(t).into_owned()));
        tags.extend(global.iter().cloned());
        unified_once(&mut tags);
        tags
    };
    let mut samples = Vec::new();
    let (mut delays, mut stage_delays) = (Vec::new(), Vec::new());
    for (key, figures) in &flush.deliveries {
        let own = tags(&[
            format!("status:{}", key.status),
            format!("service:{}", key.service),
            format!("dsn_class:{}", key.dsn_class),
            format!("relay:{}", key.relay),
            format!("instance:{}", key.instance),
        ]);
        samples.push(Sample {
            name: DELIVERY_RECIPIENTS,
            value: Value::Int(figures.recipients),
            kind: Kind::Count,
            tags: own.clone(),
        });
        let rate = figures.delay_rate;
        // One line per value: every Agent takes it (the `name:v1:v2|d` form needs 6.25/7.25).
        delays.extend(figures.delays.iter().map(|&d| Sample {
            name: DELIVERY_DELAY,
            value: Value::Float(d),
            kind: Kind::Distribution { rate },
            tags: own.clone(),
        }));
        if figures.stages.is_empty() {
            continue;
        }
        for (i, stage) in DELAY_STAGES.iter().enumerate() {
            let staged = tags(&[
                format!("status:{}", key.status),
                format!("service:{}", key.service),
                format!("dsn_class:{}", key.dsn_class),
                format!("relay:{}", key.relay),
                format!("stage:{stage}"),
                format!("instance:{}", key.instance),
            ]);
            stage_delays.extend(figures.stages.iter().map(|s| Sample {
                name: DELIVERY_DELAY_STAGE,
                value: Value::Float(s[i]),
                kind: Kind::Distribution {
                    rate: figures.stage_rate,
                },
                tags: staged.clone(),
            }));
        }
    }
    samples.extend(delays);
    samples.extend(stage_delays);
    for d in &flush.domains {
        let by = |domain: &str, n: u64| Sample {
            name: DELIVERY_RECIPIENTS_BY_DOMAIN,
            value: Value::Int(n),
            kind: Kind::Count,
            tags: tags(&[
                format!("status:{}", d.status),
                format!("domain:{domain}"),
                format!("instance:{}", d.instance),
            ]),
        };
        samples.extend(d.top.iter().map(|(domain, n)| by(domain, *n)));
        if d.other > 0 {
            samples.push(by(crate::snapshot::OTHER_DOMAINS, d.other));
        }
    }
    for (instance, n) in &flush.expired {
        samples.push(Sample {
            name: MESSAGES_EXPIRED,
            value: Value::Int(*n),
            kind: Kind::Count,
            tags: tags(&[format!("instance:{instance}")]),
        });
    }
    for (count, instance, n) in &flush.counts {
        let (name, mut own) = count_tags(count);
        own.push(format!("instance:{instance}"));
        samples.push(Sample {
            name,
            value: Value::Int(*n),
            kind: Kind::Count,
            tags: tags(&own),
        });
    }
    for sizes in &flush.sizes {
        let own = tags(&[format!("instance:{}", sizes.instance)]);
        samples.extend(sizes.bytes.iter().map(|&b| Sample {
            name: MESSAGES_SIZE,
            value: Value::Int(b),
            kind: Kind::Distribution { rate: sizes.rate },
            tags: own.clone(),
        }));
    }
    let plain = tags(&[]);
    samples.push(Sample {
        name: LOG_LINES,
        value: Value::Int(flush.lines),
        kind: Kind::Count,
        tags: plain.clone(),
    });
    for (service, n) in &flush.unparsed {
        samples.push(Sample {
            name: LOG_UNPARSED,
            value: Value::Int(*n),
            kind: Kind::Count,
            tags: tags(&[format!("service:{service}")]),
        });
    }
    samples.push(Sample {
        name: LOG_LAG,
        value: Value::Float(state.lag),
        kind: Kind::Gauge,
        tags: plain.clone(),
    });
    let check = ServiceCheck {
        name: CAN_READ_LOG,
        status: if state.problem.is_none() {
            Status::Ok
        } else {
            Status::Critical
        },
        tags: plain,
        message: state.problem.clone(),
    };
    Report { samples, check }
}

/// The metric of one of the log wing's other counts and its own tags, in order (without
/// `instance:`, which follows them).
fn count_tags(count: &Count) -> (&'static str, Vec<String>) {
    match count {
        Count::Received { source } => (MESSAGES_RECEIVED, vec![format!("source:{source}")]),
        Count::Connections => (SMTPD_CONNECTIONS, Vec::new()),
        Count::LostConnections { why, after } => (
            SMTPD_LOST_CONNECTIONS,
            vec![format!("after:{after}"), format!("why:{why}")],
        ),
        Count::Timeouts { after } => (SMTPD_TIMEOUTS, vec![format!("after:{after}")]),
        Count::Rejects {
            stage,
            code,
            reason,
            action,
        } => {
            let code = code.map_or_else(|| "none".to_owned(), |c| c.to_string());
            (
                SMTPD_REJECTS,
                vec![
                    format!("stage:{stage}"),
                    format!("code:{code}"),
                    format!("reason:{reason}"),
                    format!("action:{action}"),
                ],
            )
        }
        Count::AuthFailures { method } => (SMTPD_AUTH_FAILURES, vec![format!("method:{method}")]),
        Count::CleanupActions { action } => (CLEANUP_ACTIONS, vec![format!("action:{action}")]),
        Count::Notifications { kind } => (BOUNCE_NOTIFICATIONS, vec![format!("kind:{kind}")]),
        Count::Tls {
            direction,
            trust,
            protocol,
        } => (
            TLS_CONNECTIONS,
            vec![
                format!("direction:{direction}"),
                format!("trust:{trust}"),
                format!("protocol:{protocol}"),
            ],
        ),
        Count::Postscreen { action } => (POSTSCREEN_EVENTS, vec![format!("action:{action}")]),
        Count::Warnings { severity, service } => (
            LOG_WARNINGS,
            vec![format!("severity:{severity}"), format!("service:{service}")],
        ),
    }
}

/// Keeps the first of each of Datadog's unified service tags (`env:`, `service:`,
/// `version:`); Datadog lowercases tag keys, so `ENV:` is `env:`.
fn unified_once(tags: &mut Vec<String>) {
    let mut seen = [false; UNIFIED.len()];
    tags.retain(|t| {
        let Some((key, _)) = t.split_once(':') else {
            return true;
        };
        match UNIFIED.iter().position(|u| u.eq_ignore_ascii_case(key)) {
            Some(k) => !std::mem::replace(&mut seen[k], true),
            None => true,
        }
    });
}

struct Tagger<'a> {
    instance: &'a Instance,
    global: &'a [String],
}

impl Tagger<'_> {
    /// The instance's tags, `queue:`, then `extra` (age:, reason:, domain:), `instance:`, ...
    fn tags(&self, queue: Option<&str>, extra: Option<String>) -> Vec<String> {
        self.tags_before_global(queue, extra, None)
    }

    /// As `tags`, with `last_own` after the instance's own tags and before the global ones
    /// (`dogstatsd.tags`, then the `DD_*` tags). Of `env:`, `service:` and `version:` only the
    /// first is kept: a value in the config wins over the environment's, as a Datadog check's
    /// own tags win over the Agent's.
    fn tags_before_global(
        &self,
        queue: Option<&str>,
        extra: Option<String>,
        last_own: Option<String>,
    ) -> Vec<String> {
        let i = self.instance;
        let mut tags = i.tags.clone();
        if let Some(q) = queue {
            tags.push(format!("queue:{q}"));
        }
        tags.extend(extra);
        tags.push(format!("instance:{}", i.instance_tag));
        if let Some(s) = &i.service {
            tags.push(format!("service:{s}"));
        }
        if i.empty_default_hostname {
            tags.push("host:".to_owned());
        }
        tags.extend(last_own);
        tags.extend(self.global.iter().cloned());
        unified_once(&mut tags);
        tags
    }
}

/// Datadog's unified service tags: one value each per series.
const UNIFIED: [&str; 3] = ["env", "service", "version"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::Collection;
    use crate::dogstatsd::report_lines;
    use crate::log::counters::Counters;
    use crate::log::line;

    /// One flush of `lines` (`ident|text`), with `log.tags` `wing:log` and the global `dc:test`,
    /// domains counted (`log.top_domains: 3`).
    fn flushed(lines: &[(&str, &str)]) -> Report {
        let mut c = Counters::with_top_domains(3);
        for (ident, text) in lines {
            let l = line::from_parts(ident, text).unwrap();
            c.count(&l, &line::instance_tag(l.syslog_name));
        }
        log_report(
            &c.flush(),
            &LogState::default(),
            &["wing:log".to_owned()],
            &["dc:test".to_owned()],
        )
    }

    /// The DogStatsD lines of one flush of `lines` (`ident|text`), those of `names` only.
    fn sent(lines: &[(&str, &str)], names: &[&str]) -> Vec<String> {
        report_lines(&flushed(lines))
            .into_iter()
            .filter(|l| names.iter().any(|n| l.starts_with(&format!("{n}:"))))
            .collect()
    }

    /// `ALL` says what is sent: every sample and service check of a queue report and of a log
    /// flush that sees every family has the form and only the own tag keys `ALL` gives its
    /// name, and every name and tag key in `ALL` is sent.
    #[test]
    fn all_names_the_form_and_tags_of_what_is_sent() {
        use crate::config::{parse, DatadogEnv};
        use crate::snapshot::{ListingRules, Recipient, Snapshot};
        let config = parse(
            "t",
            "instances:\n  - method: postqueue\n    config_directory: /etc/postfix\n    tags: [mine:x]\n    top_domains: 1\n    age_thresholds: [1h]\n",
            &DatadogEnv::default(),
        )
        .unwrap();
        let rules = ListingRules {
            now: 7200,
            age_thresholds: vec![3600],
        };
        let mut snapshot = Snapshot::listed(&queue::LISTED, &rules);
        let deferred = Recipient {
            address: "a@example.com",
            delay_reason: Some("connect to mx.example.com[192.0.2.1]:25: Connection refused"),
        };
        snapshot.record(queue::DEFERRED, &rules, Some(0), Some(300), &[deferred]);
        snapshot.record_truncated(queue::ACTIVE, &rules, Some(0), Some(9), "ABC");
        let collection = Collection {
            snapshot,
            postfix_version: Some("3.7.11".to_owned()),
            files_read: Some(2),
            ..Collection::default()
        };
        let cycle = Cycle {
            duration: Some(Duration::from_millis(5)),
            skipped: 1,
        };
        let queues = report(
            &config.instances[0],
            &["dc:test".to_owned()],
            &collection,
            cycle,
        );

        let log = flushed(&[
            ("postfix/smtpd", "connect from mail.example.com[192.0.2.9]"),
            ("postfix/smtpd", "lost connection after STARTTLS from unknown[192.0.2.7]"),
            ("postfix/smtpd", "timeout after CONNECT from unknown[192.0.2.3]"),
            ("postfix/smtpd", "NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 550 5.1.1 <nosuchuser@localhost>: Recipient address rejected: User unknown in local recipient table; from=<a@example.net> to=<nosuchuser@localhost> proto=ESMTP helo=<client.example>"),
            ("postfix/submission/smtpd", "warning: laptop.local[192.168.1.2]: SASL PLAIN authentication failed: generic failure"),
            ("postfix/smtpd", "4104E3D: client=mail.example.com[192.0.2.9]"),
            ("postfix/cleanup", "4104E3D: milter-reject: END-OF-MESSAGE from mail.example.com[192.0.2.9]: 5.7.1 Blocked; from=<a@example.net> to=<b@example.com> proto=ESMTP helo=<x>"),
            ("postfix/bounce", "264FE1A18: sender delay notification: 0A87A1A08"),
            ("postfix/smtp", "Verified TLS connection established to mx.example.com[192.0.2.1]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"),
            ("postfix/postscreen", "PASS NEW [192.0.2.5]:36051"),
            ("postfix/postqueue", "fatal: User pfdtest(999) is not allowed to submit mail"),
            ("postfix/qmgr", "29A27B82EB: from=<a@example.com>, size=316, nrcpt=1 (queue active)"),
            ("postfix/qmgr", "29A27B82EB: from=<a@example.com>, status=expired, returned to sender"),
            ("postfix/smtp", "ABCDEF1234: to=<a@b>, relay=mx[192.0.2.1]:25, delay=1.5, delays=0/0/0.5/1, dsn=2.0.0, status=sent (250 ok)"),
            ("postfix/smtp", "ABCDEF1234: to=<a@b>, status=sent (mangled)"),
        ]);

        let users = ["mine", "dc", "wing"];
        let mut seen: Vec<(&str, &str)> = Vec::new();
        let mut saw = |name: &'static str, form: Form, tags: &[String]| {
            let known = Sent::named(name).unwrap_or_else(|| panic!("{name} is not in ALL"));
            assert_eq!(known.form, form, "{name}");
            for tag in tags {
                let key = tag.split_once(':').map_or(tag.as_str(), |(k, _)| k);
                if users.contains(&key) {
                    continue;
                }
                let key = known.tags.iter().find(|k| **k == key).unwrap_or_else(|| {
                    panic!("{name} is sent with {tag}, which ALL does not name")
                });
                seen.push((name, key));
            }
            seen.push((name, ""));
        };
        for report in [&queues, &log] {
            for s in &report.samples {
                let form = match s.kind {
                    Kind::Gauge => Form::Gauge,
                    Kind::Count => Form::Count,
                    Kind::Distribution { .. } => Form::Distribution,
                };
                saw(s.name, form, &s.tags);
            }
            saw(report.check.name, Form::ServiceCheck, &report.check.tags);
        }
        for known in ALL {
            assert!(
                seen.contains(&(known.name, "")),
                "{} is never sent",
                known.name
            );
            for key in known.tags {
                assert!(
                    seen.contains(&(known.name, *key)),
                    "{} is never sent with {key}:",
                    known.name
                );
            }
        }
    }

    /// The real journal capture (Postfix 3.7.11): four messages from pickup, one bounce
    /// notification (not received: Postfix's own), each size once although 90181DE6A4's
    /// `from=` line is the only one of its kind here, and the stages of each status line.
    #[test]
    fn the_journal_capture_sends_received_sizes_notifications_and_stages() {
        let capture = include_str!("../tests/fixtures/journal/postfix-3.7.11.jsonl");
        let entries: Vec<_> = capture
            .lines()
            .map(|l| crate::log::source::journal::entry(l.as_bytes()).unwrap())
            .collect();
        let lines: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| {
                (
                    e.identifier.as_deref().unwrap(),
                    e.message.as_deref().unwrap(),
                )
            })
            .collect();
        let got = sent(
            &lines,
            &[
                MESSAGES_RECEIVED,
                MESSAGES_SIZE,
                BOUNCE_NOTIFICATIONS,
                SMTPD_CONNECTIONS,
                LOG_WARNINGS,
            ],
        );
        let want = [
            "postfix.messages.received:4|c|#wing:log,source:pickup,instance:/etc/postfix,dc:test",
            "postfix.smtpd.connections:0|c|#wing:log,instance:/etc/postfix,dc:test",
            "postfix.bounce.notifications:1|c|#wing:log,kind:non-delivery,instance:/etc/postfix,dc:test",
            "postfix.messages.size:279|d|#wing:log,instance:/etc/postfix,dc:test",
            "postfix.messages.size:279|d|#wing:log,instance:/etc/postfix,dc:test",
            "postfix.messages.size:279|d|#wing:log,instance:/etc/postfix,dc:test",
            "postfix.messages.size:279|d|#wing:log,instance:/etc/postfix,dc:test",
            "postfix.messages.size:2193|d|#wing:log,instance:/etc/postfix,dc:test",
        ];
        assert_eq!(got, want);
        let stages = sent(&lines, &[DELIVERY_DELAY_STAGE]);
        let bounced: Vec<_> = stages
            .iter()
            .filter(|l| l.contains("status:bounced"))
            .collect();
        // `delays=0.01/0.02/0/0.02`.
        assert_eq!(bounced, [
            "postfix.delivery.delay_stage:0.01|d|#wing:log,status:bounced,service:local,dsn_class:5,relay:local,stage:before_queue_manager,instance:/etc/postfix,dc:test",
            "postfix.delivery.delay_stage:0.02|d|#wing:log,status:bounced,service:local,dsn_class:5,relay:local,stage:in_queue_manager,instance:/etc/postfix,dc:test",
            "postfix.delivery.delay_stage:0|d|#wing:log,status:bounced,service:local,dsn_class:5,relay:local,stage:connection_setup,instance:/etc/postfix,dc:test",
            "postfix.delivery.delay_stage:0.02|d|#wing:log,status:bounced,service:local,dsn_class:5,relay:local,stage:transmission,instance:/etc/postfix,dc:test",
        ]);
        // Five status lines, four stages each.
        assert_eq!(stages.len(), 5 * 4);
    }

    /// One public or SPEC line per family, and the exact line each sends. Sources: SPEC 7.2
    /// "Log:" lines (Postfix 3.7.11) and whyscream/postfix-grok-patterns' test suite, as in the
    /// parsers' tests.
    #[test]
    fn each_family_sends_its_metric() {
        let lines = [
            ("postfix/smtpd", "connect from 061238241086.static.ctinets.com[61.238.241.86]"),
            ("postfix/smtpd", "disconnect from 061238241086.static.ctinets.com[61.238.241.86]"),
            ("postfix/smtpd", "lost connection after STARTTLS from unknown[72.13.58.7]"),
            ("postfix/smtpd", "timeout after CONNECT from unknown[177.227.18.3]"),
            ("postfix/smtpd", "NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 550 5.1.1 <nosuchuser@localhost>: Recipient address rejected: User unknown in local recipient table; from=<a@example.net> to=<nosuchuser@localhost> proto=ESMTP helo=<client.example>"),
            ("postfix/submission/smtpd", "warning: laptop.local[192.168.1.2]: SASL PLAIN authentication failed: generic failure"),
            ("postfix/smtpd", "4104E3D: client=061238241086.static.ctinets.com[61.238.241.86]"),
            ("postfix/submission/smtpd", "EB4B2C19E2: client=xxx[1.2.3.4], sasl_method=PLAIN, sasl_username=user@domain"),
            ("postfix/smtpd", "5C7E6B82D9: client=localhost[127.0.0.1], orig_queue_id=29A27B82EB, orig_client=mx.example.com[192.0.2.9]"),
            ("postfix/cleanup", "4104E3D: milter-reject: END-OF-MESSAGE from 061238241086.static.ctinets.com[61.238.241.86]: 5.7.1 Blocked by SpamAssassin; from=<wumt5@cchfdc.com> to=<voorzitter@example.com> proto=ESMTP helo=<ecsolved.com>"),
            ("postfix/bounce", "264FE1A18: sender delay notification: 0A87A1A08"),
            ("postfix/smtp", "Verified TLS connection established to gmail-smtp-in.l.google.com[108.177.14.26]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256"),
            ("postfix/postscreen", "PASS NEW [2607:f8b0:4003:c01::23a]:36051"),
            ("postfix/postqueue", "fatal: User pfdtest(999) is not allowed to submit mail"),
            ("postfix/qmgr", "29A27B82EB: from=<a@example.com>, size=316, nrcpt=1 (queue active)"),
            ("postfix/qmgr", "29A27B82EB: from=<a@example.com>, size=316, nrcpt=1 (queue active)"),
        ];
        let names = [
            MESSAGES_RECEIVED,
            MESSAGES_SIZE,
            SMTPD_CONNECTIONS,
            SMTPD_LOST_CONNECTIONS,
            SMTPD_TIMEOUTS,
            SMTPD_REJECTS,
            SMTPD_AUTH_FAILURES,
            CLEANUP_ACTIONS,
            BOUNCE_NOTIFICATIONS,
            TLS_CONNECTIONS,
            POSTSCREEN_EVENTS,
            LOG_WARNINGS,
        ];
        let got = sent(&lines, &names);
        let t = "instance:/etc/postfix,dc:test";
        let want = [
            format!("postfix.messages.received:1|c|#wing:log,source:reinjected,{t}"),
            format!("postfix.messages.received:1|c|#wing:log,source:smtpd,{t}"),
            format!("postfix.messages.received:1|c|#wing:log,source:submission,{t}"),
            format!("postfix.smtpd.connections:1|c|#wing:log,{t}"),
            format!("postfix.smtpd.lost_connections:1|c|#wing:log,after:starttls,why:lost_connection,{t}"),
            format!("postfix.smtpd.timeouts:1|c|#wing:log,after:connect,{t}"),
            format!("postfix.smtpd.rejects:1|c|#wing:log,stage:rcpt,code:550,reason:unknown_recipient,action:reject,{t}"),
            format!("postfix.smtpd.auth_failures:1|c|#wing:log,method:PLAIN,{t}"),
            format!("postfix.cleanup.actions:1|c|#wing:log,action:milter-reject,{t}"),
            format!("postfix.bounce.notifications:1|c|#wing:log,kind:delay,{t}"),
            format!("postfix.tls.connections:1|c|#wing:log,direction:out,trust:verified,protocol:TLSv1.3,{t}"),
            format!("postfix.postscreen.events:1|c|#wing:log,action:pass_new,{t}"),
            format!("postfix.log.warnings:1|c|#wing:log,severity:fatal,service:postqueue,{t}"),
            format!("postfix.messages.size:316|d|#wing:log,{t}"),
        ];
        assert_eq!(got, want);
    }
}
