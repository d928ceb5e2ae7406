//! `log:`, our section for the log wing: where the mail log is, where its position is kept,
//! how often counts are flushed, and the tags they carry. Without it (or with `source: none`)
//! the log is not read at all.

use std::path::PathBuf;
use std::time::Duration;

use serde_yaml::Value;

use super::yaml::{keys, kind, Node, Walker};
use super::LogConfig;
use crate::log::source::file::StartAt;
use crate::spelling::did_you_mean;

pub const DEFAULT_LOG_PATH: &str = "/var/log/mail.log";
pub const DEFAULT_STATE_DIRECTORY: &str = "/var/lib/postfix-dogstatsd";
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// `flush_interval` in whole seconds: at least 1, at most an hour.
const FLUSH_SECONDS: std::ops::RangeInclusive<u64> = 1..=3600;

const SOURCES: &[&str] = &["file", "none", "journal", "auto"];
const START_AT: &[&str] = &["end", "beginning"];

keys! {
    /// `log:`.
    LogKey {
        Source = "source",
        Path = "path",
        StateDirectory = "state_directory",
        StartAt = "start_at",
        FlushInterval = "flush_interval",
        Tags = "tags",
    }
}

/// `log:` under the top-level node `n`: `None` when absent or `source: none`.
pub(super) fn from_yaml<K: super::yaml::Keys>(
    w: &mut Walker,
    top: &Node<K>,
    key: K,
) -> Option<LogConfig> {
    let n: Node<LogKey> = w.child(top, key);
    let source = w.string(&n, LogKey::Source);
    let on = match source.as_deref() {
        None | Some("none") => false,
        Some("file") => true,
        Some("journal" | "auto") => {
            w.error(
                &n.at(LogKey::Source),
                format!(
                    "{:?}: not yet supported: use source: file with path",
                    source.unwrap_or_default()
                ),
                Some("e.g. `source: file` and `path: /var/log/mail.log`, the file syslog writes"),
            );
            false
        }
        Some(other) => {
            let hint = match did_you_mean(other, SOURCES) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "file or none".to_owned(),
            };
            w.error(
                &n.at(LogKey::Source),
                format!("unknown source {other:?}"),
                Some(&hint),
            );
            false
        }
    };
    // Every key is checked whether or not the source is on: a typo shows before it matters.
    let path = w
        .abs_path_at(&n, LogKey::Path)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LOG_PATH));
    let state_directory = w
        .abs_path_at(&n, LogKey::StateDirectory)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIRECTORY));
    let start_at = match w.string(&n, LogKey::StartAt).as_deref() {
        None | Some("end") => StartAt::End,
        Some("beginning") => StartAt::Beginning,
        Some(other) => {
            let hint = match did_you_mean(other, START_AT) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "end or beginning".to_owned(),
            };
            w.error(
                &n.at(LogKey::StartAt),
                format!("unknown start_at {other:?}"),
                Some(&hint),
            );
            StartAt::End
        }
    };
    let flush_interval = flush_interval(w, &n).unwrap_or(DEFAULT_FLUSH_INTERVAL);
    let tags = w.tags(&n, LogKey::Tags);
    on.then_some(LogConfig {
        path,
        state_directory,
        start_at,
        flush_interval,
        tags,
    })
}

fn flush_interval(w: &mut Walker, n: &Node<LogKey>) -> Option<Duration> {
    let at = n.at(LogKey::FlushInterval);
    match n.get(LogKey::FlushInterval)? {
        Value::Number(secs) => match secs.as_u64() {
            Some(s) if FLUSH_SECONDS.contains(&s) => Some(Duration::from_secs(s)),
            _ => {
                w.error(
                    &at,
                    format!("{secs} is not a whole number of seconds from 1 to 3600"),
                    Some("e.g. 10"),
                );
                None
            }
        },
        other => {
            w.error(
                &at,
                format!("expected a number of seconds, found {}", kind(other)),
                Some("e.g. 10"),
            );
            None
        }
    }
}
