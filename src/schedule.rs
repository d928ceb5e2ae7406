//! One task per instance: a first run at start-up, then one every `min_collection_interval`.
//! Runs of one instance never overlap (a run still going when the next is due makes that one
//! skipped, and counted); each run is bounded by the instance's timeout; instances never wait on
//! each other.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::collect::{auto, find, postqueue, scan, showq, Collection, Method};
use crate::config::{Config, Instance, MethodConfig};
use crate::dogstatsd::{self, Sink};
use crate::exec::{Cancel, Limits};
use crate::metrics::{self, Cycle, Report};

/// How often a failure that keeps repeating word for word is logged again at warn level.
const REPEAT_WARN_EVERY: Duration = Duration::from_secs(600);
/// Beyond the instance timeout, what a run may take to kill its children before the scheduler
/// gives up on it (the process-group kill in `exec` waits 2 s between SIGTERM and SIGKILL).
const KILL_SLACK: Duration = Duration::from_secs(5);

pub fn method_for(config: &MethodConfig) -> Method {
    match config {
        MethodConfig::Find(o) => Method::Find(find::Find::new(o.clone())),
        MethodConfig::Postqueue(o) => Method::Postqueue(postqueue::Postqueue::new(o.clone())),
        MethodConfig::Showq(o) => Method::Showq(showq::Showq::new(o.clone())),
        MethodConfig::Scan(o) => Method::Scan(scan::Scan::new(o.clone())),
        MethodConfig::Auto(o) => Method::Auto(auto::Auto::new(o.clone())),
        MethodConfig::Unavailable(why) => Method::Unavailable(why.clone()),
    }
}

/// One run of one instance, bounded by its timeout (and, should a method ignore that, by a
/// last-resort timeout that drops the run, which kills its process group).
pub async fn collect_once(
    instance: &Instance,
    method: &mut Method,
    cancel: &Cancel,
) -> (Collection, Duration) {
    let started = Instant::now();
    let limits = Limits {
        deadline: started + instance.timeout,
        cancel: cancel.clone(),
    };
    let collection =
        match tokio::time::timeout(instance.timeout + KILL_SLACK, method.collect(&limits)).await {
            Ok(c) => c,
            Err(_) => Collection {
                errors: vec![crate::exec::ExecError::Timeout {
                    command: format!("{} collection", method.name()),
                    after: instance.timeout,
                }
                .into()],
                ..Collection::default()
            },
        };
    (collection, started.elapsed())
}

/// The lines one report sends, metrics first, then the service check.
pub fn lines(report: &Report) -> Vec<String> {
    report
        .samples
        .iter()
        .map(dogstatsd::metric_line)
        .chain(std::iter::once(dogstatsd::service_check_line(
            &report.check,
        )))
        .collect()
}

/// A set of instance tasks started from one config; a reload starts a new one and retires this.
#[derive(Debug)]
pub struct Generation {
    retire: watch::Sender<bool>,
    pub handles: Vec<JoinHandle<()>>,
}

impl Generation {
    pub fn start(config: &Arc<Config>, sink: &Sink, cancel: &Cancel) -> Generation {
        let (retire, retired) = watch::channel(false);
        let handles = (0..config.instances.len())
            .map(|i| {
                let task = InstanceTask {
                    config: Arc::clone(config),
                    index: i,
                    sink: sink.clone(),
                    retired: retired.clone(),
                    cancel: cancel.clone(),
                };
                tokio::spawn(task.run())
            })
            .collect();
        Generation { retire, handles }
    }

    /// Asks every task to stop after the run it may be in; that run still reports, so a reload
    /// drops no cycle.
    pub fn retire(self) -> Vec<JoinHandle<()>> {
        let _ = self.retire.send(true);
        self.handles
    }
}

struct InstanceTask {
    config: Arc<Config>,
    index: usize,
    sink: Sink,
    retired: watch::Receiver<bool>,
    cancel: Cancel,
}

impl InstanceTask {
    async fn run(mut self) {
        let instance = &self.config.instances[self.index];
        let mut method = method_for(&instance.method);
        let mut ticker = tokio::time::interval(instance.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut last_failure: Option<(String, Instant)> = None;
        let label = instance.label();
        loop {
            tokio::select! {
                biased;
                _ = self.retired.wait_for(|r| *r) => break,
                _ = self.cancel.wait_for(|c| *c) => break,
                _ = ticker.tick() => {}
            }
            let (collection, duration) = collect_once(instance, &mut method, &self.cancel).await;
            if *self.cancel.borrow() {
                break; // shutting down: this run was cut short, its result means nothing
            }
            // Every interval boundary the run overran is a run that did not happen.
            let skipped = (duration.as_nanos() / instance.interval.as_nanos().max(1)) as u64;
            let report = metrics::report(
                instance,
                &self.config.global_tags,
                &collection,
                Cycle { duration, skipped },
            );
            // A failure is logged by the sink and the lines dropped; the schedule goes on.
            let _ = self.sink.send(&lines(&report));
            log_run(
                &label,
                method.name(),
                &collection,
                duration,
                skipped,
                &mut last_failure,
            );
        }
    }
}

fn log_run(
    label: &str,
    method: &str,
    collection: &Collection,
    duration: Duration,
    skipped: u64,
    last_failure: &mut Option<(String, Instant)>,
) {
    let secs = duration.as_secs_f64();
    if skipped > 0 {
        tracing::warn!(
            instance = label,
            method,
            skipped,
            duration = secs,
            "the run took longer than the interval; runs were skipped"
        );
    }
    if collection.errors.is_empty() {
        if last_failure.take().is_some() {
            tracing::info!(
                instance = label,
                method,
                duration = secs,
                "collection works again"
            );
        } else {
            tracing::debug!(instance = label, method, how = %collection.how, duration = secs, queues = collection.snapshot.queues.len(), "collected");
        }
        return;
    }
    let message = collection.error_text();
    let now = Instant::now();
    let repeat = matches!(last_failure, Some((m, at)) if *m == message && now.duration_since(*at) < REPEAT_WARN_EVERY);
    if repeat {
        tracing::debug!(instance = label, method, error = %message, "collection failed again");
    } else {
        tracing::warn!(instance = label, method, error = %message, duration = secs, "collection failed; no queue gauges sent for what failed");
        *last_failure = Some((message, now));
    }
}
