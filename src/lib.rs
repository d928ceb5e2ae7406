//! postfix-dogstatsd: reports Postfix mail queues to Datadog through DogStatsD.
//!
//! The data path, one module each:
//! config -> schedule -> collect (one file per method) -> snapshot -> metrics -> dogstatsd,
//! with `exec` the only place that starts a process, and `paced` reading what postqueue and
//! showq write, one message at a time. Helpers below them all (`lines`, `walk`) import none of
//! the stages, so nothing low in the stack reaches up into `collect`.

pub mod check;
pub mod cli;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod discover;
pub mod dogstatsd;
pub mod exec;
pub mod follow;
pub mod lines;
pub mod live;
pub mod log;
pub mod logging;
pub mod metrics;
pub mod paced;
pub mod postconf;
pub mod queue;
pub mod reason;
pub mod recent;
pub mod schedule;
pub mod snapshot;
pub mod spelling;
mod sys;
pub mod tag;
pub mod walk;

pub use sys::tune_allocator;

/// An error and its causes on one line: "a: b: c".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
