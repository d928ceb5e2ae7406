//! One task per instance: a first run at start-up, then one every `min_collection_interval`.
//! Runs of one instance never overlap (a run still going when the next is due makes that one
//! skipped, and counted); each run is bounded by the instance's timeout; instances never wait on
//! each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::collect::{self, Collection, Method};
use crate::config::Config;
use crate::dogstatsd::{self, Sink};
use crate::exec::Cancel;
use crate::live::Live;
use crate::metrics::{self, Cycle};

/// How long past its timeout a new generation waits for the old one's run of an instance.
const SETTLE_SLACK: Duration = Duration::from_secs(3);
/// How often a failure that keeps repeating word for word is logged again at warn level.
const REPEAT_WARN_EVERY: Duration = Duration::from_secs(600);
/// A set of instance tasks started from one config; a reload starts a new one and retires this.
#[derive(Debug)]
pub struct Generation {
    retire: watch::Sender<bool>,
    pub handles: Vec<JoinHandle<()>>,
}

/// The live work of each instance, kept across reloads by what the instance reads (its Postfix
/// and queue directory), so that a new generation starts no run on a spool while the old one's
/// work there is still going, whatever the instance's place in the file or its method.
#[derive(Debug, Clone, Default)]
pub struct Lives(Arc<Mutex<HashMap<String, Live>>>);

impl Lives {
    fn of(&self, label: &str) -> Live {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(label.to_owned()).or_default().clone()
    }
}

/// What an instance's work touches: its method and what it reads (its Postfix, queue directory
/// and queues). The same for an instance moved in the file after a reload; different for another
/// Postfix or another method. Two identical instances get `#2`, `#3`, ... in file order.
fn live_keys(config: &Config) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    config
        .instances
        .iter()
        .map(|instance| {
            let key = match &instance.method {
                crate::collect::MethodConfig::Run(kind, s) => format!(
                    "{} {} {} {}",
                    kind.name(),
                    s.config_directory.display(),
                    s.queue_directory
                        .as_deref()
                        .map_or(String::new(), |d| d.display().to_string()),
                    s.queues.join(",")
                ),
                crate::collect::MethodConfig::Unavailable(_) => instance.label(),
            };
            let n = seen.entry(key.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                key
            } else {
                format!("{key} #{n}")
            }
        })
        .collect()
}

impl Generation {
    pub fn start(config: &Arc<Config>, sink: &Sink, cancel: &Cancel, lives: &Lives) -> Generation {
        let (retire, retired) = watch::channel(false);
        let keys = live_keys(config);
        let handles = (0..config.instances.len())
            .map(|i| {
                let task = InstanceTask {
                    config: Arc::clone(config),
                    index: i,
                    sink: sink.clone(),
                    retired: retired.clone(),
                    cancel: cancel.clone(),
                    live: lives.of(&keys[i]),
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
    live: Live,
}

impl InstanceTask {
    async fn run(mut self) {
        let instance = &self.config.instances[self.index];
        let mut method = Method::new(&instance.method);
        let mut ticker = tokio::time::interval(instance.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut last_failure: Option<(String, Instant)> = None;
        let label = instance.label();
        // After a reload the old generation's run of this instance may still be going: it
        // reports, and ends by its timeout. Wait for it rather than start beside it.
        let settle = Instant::now() + instance.timeout + SETTLE_SLACK;
        while self.live.describe().is_some() && Instant::now() < settle {
            tokio::select! {
                _ = self.cancel.wait_for(|c| *c) => return,
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        loop {
            tokio::select! {
                biased;
                _ = self.retired.wait_for(|r| *r) => break,
                _ = self.cancel.wait_for(|c| *c) => break,
                _ = ticker.tick() => {}
            }
            // Something of an earlier run still lives (a walk or reader past its deadline, a
            // command out of our reach, the old generation's run after a reload): this run is
            // skipped and counted rather than started on top of it.
            let running = match self.live.try_hold("a run of this instance") {
                Ok(running) => running,
                Err(alive) => {
                    let collection = Collection {
                        errors: vec![collect::CollectError::StillRunning(alive)],
                        ..Collection::default()
                    };
                    let cycle = Cycle {
                        duration: None,
                        skipped: 1,
                    };
                    let report =
                        metrics::report(instance, &self.config.global_tags, &collection, cycle);
                    let _ = self.sink.send(&dogstatsd::report_lines(&report));
                    // Its error says it did not start: no "took longer" warning (skipped 0).
                    log_run(
                        &label,
                        method.name(),
                        &collection,
                        Duration::ZERO,
                        0,
                        &mut last_failure,
                    );
                    continue;
                }
            };
            let (collection, duration) =
                collect::collect_once(&mut method, instance.timeout, &self.cancel, &self.live)
                    .await;
            drop(running);
            if *self.cancel.borrow() {
                break; // shutting down: this run was cut short, its result means nothing
            }
            // Every interval boundary the run overran is a run that did not happen.
            let skipped = (duration.as_nanos() / instance.interval.as_nanos().max(1)) as u64;
            let report = metrics::report(
                instance,
                &self.config.global_tags,
                &collection,
                Cycle {
                    duration: Some(duration),
                    skipped,
                },
            );
            // A failure is logged by the sink and the lines dropped; the schedule goes on.
            let _ = self.sink.send(&dogstatsd::report_lines(&report));
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
