//! `log:`, our section for the log wing: which source (a file, the journal, or whichever holds
//! Postfix's lines), where its position is kept, how often counts are flushed, and the tags
//! they carry. Without it (or with `source: none`) the log is not read at all. The Datadog
//! `logs:` section is the Agent's, never ours to validate; only the `path` of its first
//! `type: file` entry is read, as the first file `source: auto` tries.

use std::path::PathBuf;
use std::time::Duration;

use serde_yaml::Value;

use super::yaml::{keys, kind, Node, Walker};
use super::{LogConfig, LogSource};
use crate::collect::Commands;
use crate::log::source::file::StartAt;
use crate::log::source::journal::JournalOptions;
use crate::spelling::did_you_mean;

pub const DEFAULT_STATE_DIRECTORY: &str = "/var/lib/postfix-dogstatsd";
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// `flush_interval` in whole seconds: at least 1, at most an hour.
const FLUSH_SECONDS: std::ops::RangeInclusive<u64> = 1..=3600;

const SOURCES: &[&str] = &["auto", "journal", "file", "none"];
const START_AT: &[&str] = &["end", "beginning"];

keys! {
    /// `log:`.
    LogKey {
        Source = "source",
        Path = "path",
        JournalDirectory = "journal_directory",
        StateDirectory = "state_directory",
        StartAt = "start_at",
        FlushInterval = "flush_interval",
        TopDomains = "top_domains",
        Tags = "tags",
    }
}

/// `log:` under the top-level node `top`: `None` when absent or `source: none`. `logs` is
/// the Datadog `logs:` section, if any.
pub(super) fn from_yaml<K: super::yaml::Keys>(
    w: &mut Walker,
    top: &Node<K>,
    key: K,
    logs: Option<&Value>,
    commands: &Commands,
) -> Option<LogConfig> {
    let n: Node<LogKey> = w.child(top, key);
    let source = match w.string(&n, LogKey::Source).as_deref() {
        None | Some("none") => None,
        Some("file") => Some(LogSource::File),
        Some("journal") => Some(LogSource::Journal),
        Some("auto") => Some(LogSource::Auto),
        Some(other) => {
            let hint = match did_you_mean(other, SOURCES) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "auto, journal, file or none".to_owned(),
            };
            w.error(
                &n.at(LogKey::Source),
                format!("unknown source {other:?}"),
                Some(&hint),
            );
            None
        }
    };
    // Every key is checked whether or not the source is on: a typo shows before it matters.
    let path = w.abs_path_at(&n, LogKey::Path);
    let directory = w.abs_path_at(&n, LogKey::JournalDirectory);
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
    // Off unless asked: a series per status per domain is what the Datadog bill counts.
    let top_domains = w.top_domains(&n, LogKey::TopDomains, 0);
    let tags = w.tags(&n, LogKey::Tags);
    Some(LogConfig {
        source: source?,
        path,
        datadog_path: logs.and_then(datadog_file),
        journal: JournalOptions {
            journalctl: commands.journalctl.clone(),
            directory,
        },
        postconf: commands.postconf.clone(),
        state_directory,
        start_at,
        flush_interval,
        top_domains,
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

/// The `path` of the first `type: file` entry of the Datadog `logs:` section, when absolute.
/// Anything else there is the Agent's business.
fn datadog_file(logs: &Value) -> Option<PathBuf> {
    let Value::Sequence(entries) = logs else {
        return None;
    };
    entries.iter().find_map(|e| {
        let kind = e.get("type").and_then(Value::as_str)?;
        let path = e.get("path").and_then(Value::as_str)?;
        (kind == "file" && path.starts_with('/') && !path.contains('*'))
            .then(|| PathBuf::from(path))
    })
}
