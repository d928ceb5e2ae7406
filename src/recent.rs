//! What the mail log held in the last minutes, for `check`: read from the source `run` would
//! follow (`follow::choose`) and counted as `run` counts (`follow::Tally`), but from a time
//! instead of a saved position. The position and the journal cursor are neither read nor
//! written, and no file or directory is made. A file's window is found by its lines'
//! timestamps (`log::source::window`), the journal's by `journalctl --since`; each read has
//! the follower's bound for one flush.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::LogConfig;
use crate::exec;
use crate::follow::{self, Chosen, Tally, FLUSH_BYTES, JOURNAL_FLUSH_BYTES};
use crate::log::counters::Flush;
use crate::log::source::journal::{JournalOptions, JournalSource};
use crate::log::source::window;
use crate::log::stamp;

/// What the window held.
#[derive(Debug, Clone, Default)]
pub struct Recent {
    /// The window, in seconds since the epoch: from `since` to `now`.
    pub since: i64,
    pub now: i64,
    pub flush: Flush,
    /// Where what was counted is not exactly the window (cut to the bound, starting at a
    /// file's first line, the rotated file read too), for people.
    pub notes: Vec<String>,
    /// Why the log could not be read, or not all of it.
    pub problem: Option<String>,
}

/// Counts what `chosen` holds from `window` ago until now. `instances` as for the log task
/// (`follow::instances`), whose `syslog_name`s are asked of postconf.
pub async fn read(
    config: &LogConfig,
    chosen: &Chosen,
    instances: &[(PathBuf, String)],
    window: Duration,
    cancel: &exec::Cancel,
) -> Recent {
    let known = follow::syslog_names(&config.postconf, instances, cancel).await;
    let now = unix(SystemTime::now());
    let since = now.saturating_sub(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
    let (chosen, journal) = (chosen.clone(), config.journal.clone());
    let top_domains = config.top_domains;
    let done = tokio::task::spawn_blocking(move || {
        let mut recent = Recent {
            since,
            now,
            ..Recent::default()
        };
        let mut tally = Tally::new(known, top_domains);
        match chosen {
            Chosen::File(path) => from_file(&path, &mut tally, &mut recent),
            Chosen::Journal => from_journal(journal, &mut tally, &mut recent),
        }
        recent.flush = tally.counters.flush();
        recent
    })
    .await;
    done.unwrap_or_else(|e| Recent {
        since,
        now,
        problem: Some(format!("reading the mail log failed: {e}")),
        ..Recent::default()
    })
}

/// `t` as local time for people (`stamp::local_text` in this host's zone).
pub fn local_text(t: i64, now: i64) -> String {
    stamp::local_text(t, now, &crate::sys::utc_offset)
}

fn from_file(path: &Path, tally: &mut Tally, r: &mut Recent) {
    let now = r.now;
    let time_of = |head: &[u8]| {
        // A stamp is ASCII: a multibyte character cut at the end of the head is dropped.
        let text = match std::str::from_utf8(head) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
        };
        stamp::moment(text, now, &crate::sys::utc_offset)
    };
    let read = window::read_since(path, r.since, FLUSH_BYTES, &time_of, |l| tally.line(l));
    let since = match read {
        Ok(since) => since,
        Err(e) => {
            r.problem = Some(follow::file_problem(&e));
            return;
        }
    };
    for part in &since.parts {
        tally.counters.too_long(part.too_long);
    }
    let [first, ..] = since.parts.as_slice() else {
        return;
    };
    if let [rotated, current] = since.parts.as_slice() {
        r.notes.push(format!(
            "the window starts in {}: {} lines from it, then {}",
            rotated.path.display(),
            grouped(rotated.lines),
            current.path.display()
        ));
    }
    if let Some(clipped) = since.parts.iter().find(|p| p.span.clipped) {
        let from = clipped
            .span
            .first
            .map_or_else(String::new, |t| format!(", from {}", local_text(t, now)));
        r.notes.push(format!(
            "more than {} MiB was logged in the window: counted only the last {} MiB{from}",
            FLUSH_BYTES >> 20,
            FLUSH_BYTES >> 20
        ));
    }
    if let (true, Some(t)) = (first.span.from_first_line, first.span.first) {
        let before = match (&since.rotated_problem, since.parts.len()) {
            (Some(e), _) => format!(", and {}", follow::file_problem(e)),
            (None, 1) => format!(", and there is no {}.1", path.display()),
            _ => String::new(),
        };
        r.notes.push(format!(
            "{} starts at {}, after the window's start{before}: counted from its first line",
            first.path.display(),
            local_text(t, now)
        ));
    }
}

fn from_journal(options: JournalOptions, tally: &mut Tally, r: &mut Recent) {
    let since = SystemTime::UNIX_EPOCH + Duration::from_secs(r.since.max(0).unsigned_abs());
    let mut source = JournalSource::since(options, since);
    let progress = source.read(JOURNAL_FLUSH_BYTES, |ident, text| tally.entry(ident, text));
    tally
        .counters
        .too_long(progress.too_long + progress.not_entries);
    if progress.more {
        let until = source.newest().map_or_else(String::new, |t| {
            format!(", up to {}", local_text(unix(t), r.now))
        });
        r.notes.push(format!(
            "journalctl printed more than {} MiB for the window: counted only its first {} MiB{until}",
            JOURNAL_FLUSH_BYTES >> 20,
            JOURNAL_FLUSH_BYTES >> 20
        ));
    }
    r.problem = progress.problem.map(|e| e.to_string());
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
