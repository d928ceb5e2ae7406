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

pub const QUEUE_SIZE: &str = "postfix.queue.size";
pub const DURATION: &str = "postfix.collection.duration";
pub const ERRORS: &str = "postfix.collection.errors";
pub const SKIPPED: &str = "postfix.collection.skipped";
pub const CAN_COLLECT: &str = "postfix.can_collect";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A whole number, sent without a decimal point.
    Int(u64),
    /// Seconds and other fractions.
    Float(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Count,
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
    pub duration: Duration,
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
    let mut push = |name: &'static str, value, kind, tags| {
        if instance.patterns.allows(name) {
            samples.push(Sample {
                name,
                value,
                kind,
                tags,
            });
        }
    };
    for q in &collection.snapshot.queues {
        push(
            QUEUE_SIZE,
            Value::Int(q.messages),
            Kind::Gauge,
            tagger.tags(Some(&q.queue)),
        );
    }
    push(
        DURATION,
        Value::Float(cycle.duration.as_secs_f64()),
        Kind::Gauge,
        tagger.tags(None),
    );
    push(
        ERRORS,
        Value::Int(collection.errors.len() as u64),
        Kind::Count,
        tagger.tags(None),
    );
    push(
        SKIPPED,
        Value::Int(cycle.skipped),
        Kind::Count,
        tagger.tags(None),
    );
    let check = ServiceCheck {
        name: CAN_COLLECT,
        status: if collection.errors.is_empty() {
            Status::Ok
        } else {
            Status::Critical
        },
        tags: tagger.tags(None),
        message: (!collection.errors.is_empty()).then(|| {
            collection
                .errors
                .iter()
                .map(|e| crate::error_chain(e))
                .collect::<Vec<_>>()
                .join("; ")
        }),
    };
    Report { samples, check }
}

struct Tagger<'a> {
    instance: &'a Instance,
    global: &'a [String],
}

impl Tagger<'_> {
    fn tags(&self, queue: Option<&str>) -> Vec<String> {
        let i = self.instance;
        let mut tags = i.tags.clone();
        if let Some(q) = queue {
            tags.push(format!("queue:{q}"));
        }
        tags.push(format!("instance:{}", i.instance_tag));
        if let Some(s) = &i.service {
            tags.push(format!("service:{s}"));
        }
        if i.empty_default_hostname {
            tags.push("host:".to_owned());
        }
        tags.extend(self.global.iter().cloned());
        tags
    }
}
