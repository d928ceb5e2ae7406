//! Method `auto`: use the least-privileged method that works on this host, tried in that
//! order: showq (a socket, group postdrop), postqueue (a setgid program,
//! authorized_mailq_users), scan (reads the queue directories), find (sudo). Every cycle the
//! best method not passed over is used; the choice and the reasons the others were passed over
//! are logged and shown by `check`. Postfix being down passes nothing over; a method that is
//! not permitted or not installed is passed over for 10 minutes, then tried again.
//!
//! One exception to the order: on a queue of more than [`SCAN_ABOVE`] messages scan is tried
//! first, where it is permitted, until the queue falls under [`SCAN_BELOW`]. showq opens every
//! queue file every cycle; scan reads only what changed (BENCHMARKS.md).

use std::time::Duration;

use tokio::time::Instant;

use super::{
    CollectError, Collection, InstanceSettings, Method, MethodConfig, MethodKind, Need, Reads,
};
use crate::exec::Limits;
use crate::postconf;
use crate::queue::FIND_ORDER;

/// The methods auto tries, least privilege first.
pub const ORDER: [MethodKind; 4] = [
    MethodKind::Showq,
    MethodKind::Postqueue,
    MethodKind::Scan,
    MethodKind::Find,
];

/// Auto reads what the methods it tries read, except find's `queues` (it counts the standard
/// ones).
pub const READS: Reads = Reads {
    config_directory: true,
    queue_directory: Need::Optional,
    queues: false,
    lists_messages: true,
};

/// Auto passes the instance's settings on to the method it tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options(pub InstanceSettings);

impl From<&InstanceSettings> for Options {
    fn from(s: &InstanceSettings) -> Options {
        Options(s.clone())
    }
}

/// Auto's own failures are those of the methods it tried; it has none of its own.
#[derive(Debug, thiserror::Error)]
pub enum Error {}

/// How long a method that cannot work here (not permitted, not installed) is passed over
/// before auto tries it again: permissions get fixed, Postfix gets installed.
const RETRY_BETTER: Duration = Duration::from_secs(600);

/// Messages in all queues above which scan is tried first. showq (and postqueue, which asks
/// it) costs about 25 microseconds of CPU a message every cycle, measured with its showq (0.24
/// s at 10,000 messages, some 2% of a core at a 15 s interval, 5.7 s at 200,000), and it grows
/// with the queue; scan's steady cycle over a still queue costs under 10 ms, and its memory is
/// about 107 bytes a message, 1 MB here (BENCHMARKS.md). Below, showq's cost is too small to
/// trade the least privilege for.
pub const SCAN_ABOVE: u64 = 10_000;
/// Under this many messages auto goes back to the least privileged order: the two bounds
/// keep a queue that hovers around one from switching every cycle.
pub const SCAN_BELOW: u64 = 5_000;

#[derive(Debug)]
pub struct Auto {
    settings: InstanceSettings,
    /// The methods, least privilege first, kept between cycles with what each said.
    candidates: Vec<Candidate>,
    /// The candidate that worked last, for the log when the choice changes.
    current: Option<MethodKind>,
    /// Messages in all queues at the last collection that worked.
    queued: u64,
    postconf: postconf::Cache,
}

#[derive(Debug)]
struct Candidate {
    kind: MethodKind,
    method: Method,
    /// Why it cannot work here, and when to try it again.
    passed_over: Option<(Instant, String)>,
}

impl Auto {
    pub fn new(Options(settings): Options) -> Self {
        Auto {
            postconf: postconf::Cache::new(&settings.commands.postconf, &settings.config_directory),
            settings,
            candidates: Vec::new(),
            current: None,
            queued: 0,
        }
    }

    /// Tries the methods least privilege first, skipping those passed over until their retry
    /// time. A method that fails because Postfix is not running (or that ran out of time) is
    /// not passed over: auto reports that failure and tries it again next cycle, rather than
    /// settle for a more privileged method that happens not to need Postfix running. Only "not
    /// permitted" or "not installed" sends it down the list, for `RETRY_BETTER`.
    pub async fn collect(&mut self, limits: &Limits) -> Collection {
        // Built once and kept; a method that could not be built yet (find, while postconf
        // cannot name the queue directory) is added when it can, in its place.
        if self.candidates.len() < ORDER.len() {
            self.add_missing_candidates(limits).await;
        }
        let now = Instant::now();
        let mut passed_over: Vec<String> = Vec::new();
        let mut errors = Vec::new();
        let mut skipped = Vec::new();
        let large = prefers_scan(self.current, self.queued);
        let mut order: Vec<usize> = (0..self.candidates.len()).collect();
        if large {
            order.sort_by_key(|&i| self.candidates[i].kind != MethodKind::Scan);
        }
        for i in order {
            let c = &mut self.candidates[i];
            let name = c.kind.name();
            if let Some((retry_at, why)) = &c.passed_over {
                if now < *retry_at {
                    passed_over.push(format!("{name}: {why}"));
                    skipped.push(format!(
                        "{name} (passed over until it is tried again): {why}"
                    ));
                    continue;
                }
            }
            let mut got = Box::pin(c.method.collect(limits)).await;
            if got.errors.is_empty() || got.errors.iter().all(CollectError::is_transient) {
                c.passed_over = None;
                let why = if large && c.kind == MethodKind::Scan {
                    format!(
                        "preferred on a queue of {} messages (scan from {SCAN_ABOVE}, down to {SCAN_BELOW})",
                        self.queued
                    )
                } else if passed_over.is_empty() {
                    "the least privileged method, and it works".to_owned()
                } else {
                    format!("passed over: {}", passed_over.join("; "))
                };
                if got.errors.is_empty() {
                    self.queued = got.snapshot.queues.iter().map(|q| q.messages).sum();
                }
                if got.errors.is_empty() && self.current != Some(c.kind) {
                    tracing::info!(method = name, reason = %why, "method auto chose {name}");
                    self.current = Some(c.kind);
                }
                got.how = format!("auto: {} ({why})", got.how);
                return got;
            }
            let text = got.error_text();
            passed_over.push(format!("{name}: {text}"));
            c.passed_over = Some((now + RETRY_BETTER, text));
            errors.append(&mut got.errors);
        }
        // Nothing worked: what was passed over this cycle still failed, and says so (a cycle
        // with every method passed over must not look like a success).
        errors.extend(skipped.into_iter().map(CollectError::Unavailable));
        Collection {
            how: format!("auto: no method works ({})", passed_over.join("; ")),
            errors,
            ..Collection::default()
        }
    }

    /// The methods to try, in `ORDER`: those missing from `candidates` are built and put in
    /// their place. A method that needs the queue directory (find) gets postconf's when
    /// `directory` is not given, and waits while postconf cannot say.
    async fn add_missing_candidates(&mut self, limits: &Limits) {
        let mut settings = self.settings.clone();
        settings.queues = FIND_ORDER.iter().map(|q| q.to_string()).collect();
        for (place, kind) in ORDER.into_iter().enumerate() {
            if self.candidates.iter().any(|c| c.kind == kind) {
                continue;
            }
            let mut settings = settings.clone();
            if kind.reads().queue_directory == Need::Required && settings.queue_directory.is_none()
            {
                match self.postconf.get(limits).await {
                    Ok(params) => settings.queue_directory = Some(params.queue_directory),
                    Err(_) => continue,
                }
            }
            let at = place.min(self.candidates.len());
            self.candidates.insert(
                at,
                Candidate {
                    kind,
                    method: Method::new(&MethodConfig::Run(kind, Box::new(settings))),
                    passed_over: None,
                },
            );
        }
    }
}

/// Whether scan goes first: the queue is large (`SCAN_ABOVE`), or scan has it and it is not yet
/// small again (`SCAN_BELOW`).
fn prefers_scan(current: Option<MethodKind>, queued: u64) -> bool {
    if current == Some(MethodKind::Scan) {
        queued >= SCAN_BELOW
    } else {
        queued > SCAN_ABOVE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_first_on_large_queues_with_hysteresis() {
        assert!(!prefers_scan(None, 0));
        assert!(!prefers_scan(Some(MethodKind::Showq), SCAN_ABOVE));
        assert!(prefers_scan(Some(MethodKind::Showq), SCAN_ABOVE + 1));
        assert!(prefers_scan(Some(MethodKind::Scan), SCAN_BELOW));
        assert!(!prefers_scan(Some(MethodKind::Scan), SCAN_BELOW - 1));
        // Not permitted, scan is passed over like any method and showq keeps the queue.
        assert!(prefers_scan(Some(MethodKind::Postqueue), 50_000));
    }
}
