//! The log wing's task: every `flush_interval`, read what the followed file holds now (a
//! bounded amount), count each line, send the flush, and only then save the position. A crash
//! between sending and saving re-counts at most one flush; a position is never saved ahead of
//! what was sent, so no line is lost. File I/O runs on tokio's blocking pool, never on a
//! runtime worker.

use std::path::PathBuf;
use std::time::SystemTime;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::config::LogConfig;
use crate::dogstatsd::{report_lines, Sink};
use crate::log::counters::Counters;
use crate::log::line;
use crate::log::source::file::{Event, FileSource, Position, SourceError};
use crate::metrics::{self, LogState};

/// Bytes one `read` call asks for.
const READ_BYTES: usize = 64 * 1024;
/// Bytes one flush reads at most: a backlog is worked off over several flushes, each bounded
/// in time and memory.
pub const FLUSH_BYTES: u64 = 4 * 1024 * 1024;
/// Distinct `instance:` values (from `syslog_name`); later ones count as `other`. Anyone who
/// can call logger(1) can write a line under any name.
pub const MAX_INSTANCES: usize = 32;
pub const OTHER_INSTANCE: &str = "other";
/// The group that may read /var/log/mail.log on Debian and Ubuntu.
pub const LOG_GROUP: &str = "adm";

/// The running log task.
#[derive(Debug)]
pub struct LogTask {
    retire: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl LogTask {
    /// Starts following `config.path`, resuming from the position saved in its state
    /// directory.
    pub fn start(config: &LogConfig, global_tags: &[String], sink: &Sink) -> LogTask {
        let (retire, mut retired) = watch::channel(false);
        let config = config.clone();
        let global = global_tags.to_vec();
        let sink = sink.clone();
        tracing::info!(
            path = %config.path.display(),
            position = %config.position_file().display(),
            flush_interval = config.flush_interval.as_secs(),
            "following the mail log"
        );
        let handle = tokio::spawn(async move {
            let setup = config.clone();
            let Ok(mut follower) =
                tokio::task::spawn_blocking(move || Follower::open(&setup)).await
            else {
                return;
            };
            let mut tick = tokio::time::interval(config.flush_interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                let last = tokio::select! {
                    _ = tick.tick() => false,
                    _ = retired.changed() => true,
                };
                let (tags, global, sink) = (config.tags.clone(), global.clone(), sink.clone());
                let done = tokio::task::spawn_blocking(move || {
                    follower.flush(&tags, &global, &sink);
                    follower
                })
                .await;
                match done {
                    Ok(f) => follower = f,
                    Err(e) => {
                        tracing::error!("the log task failed: {e}");
                        return;
                    }
                }
                if last {
                    return;
                }
            }
        });
        LogTask { retire, handle }
    }

    /// Asks for a last flush (read, send, save); the handle ends when it is done.
    pub fn retire(self) -> JoinHandle<()> {
        let _ = self.retire.send(true);
        self.handle
    }
}

/// The blocking half: the source, the counters and what went wrong.
struct Follower {
    path: PathBuf,
    position_file: PathBuf,
    source: FileSource,
    counters: Counters,
    /// `syslog_name` up to its first `/`, and its `instance:` value.
    instances: Vec<(String, String)>,
    saved: Option<Position>,
    missing: bool,
    read_problem: Option<String>,
    position_problem: Option<String>,
}

impl Follower {
    fn open(config: &LogConfig) -> Follower {
        let position_file = config.position_file();
        let mut position_problem = None;
        if let Err(e) = std::fs::create_dir_all(&config.state_directory) {
            tracing::warn!(
                "cannot create the state directory {}: {e}",
                config.state_directory.display()
            );
        }
        let saved = match Position::load(&position_file) {
            Ok(saved) => saved,
            Err(e) => {
                let text = format!("{}; started as if there were none", crate::error_chain(&e));
                tracing::warn!("{text}");
                position_problem = Some(text);
                None
            }
        };
        Follower {
            path: config.path.clone(),
            position_file,
            source: FileSource::open(config.path.clone(), saved, config.start_at),
            counters: Counters::new(),
            instances: Vec::new(),
            saved,
            missing: false,
            read_problem: None,
            position_problem,
        }
    }

    /// Reads, counts, sends, and then saves the position.
    fn flush(&mut self, log_tags: &[String], global: &[String], sink: &Sink) {
        let at_end = self.read();
        let lag = if at_end && self.read_problem.is_none() && !self.missing {
            self.lag()
        } else {
            0.0
        };
        let counts = self.counters.flush();
        let missing = self.missing.then(|| {
            format!(
                "{} does not exist; it is read from its start once it appears",
                self.path.display()
            )
        });
        let problems: Vec<&str> = [&missing, &self.read_problem, &self.position_problem]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let state = LogState {
            lag,
            problem: (!problems.is_empty()).then(|| problems.join("; ")),
        };
        let report = metrics::log_report(&counts, &state, log_tags, global);
        // Errors are logged by the sink; what it could not send is dropped, never resent.
        let _ = sink.send(&report_lines(&report));
        self.save();
    }

    /// Reads up to `FLUSH_BYTES`, counting each line; whether it reached the end.
    fn read(&mut self) -> bool {
        let mut budget = FLUSH_BYTES;
        loop {
            let (counters, instances) = (&mut self.counters, &mut self.instances);
            let result = self.source.read(READ_BYTES, |bytes| {
                let text = String::from_utf8_lossy(bytes);
                if let Ok(l) = line::parse(&text) {
                    let instance = instance_of(instances, l.syslog_name);
                    counters.count(&l, &instance);
                }
            });
            let progress = match result {
                Ok(progress) => progress,
                Err(e) => {
                    let text = match &e {
                        SourceError::PermissionDenied { path } => format!(
                            "cannot read {}: permission denied (add the service user to the group `{LOG_GROUP}`, which may read the mail log: usermod -a -G {LOG_GROUP} postfix-dogstatsd)",
                            path.display()
                        ),
                        other => crate::error_chain(other),
                    };
                    if self.read_problem.as_ref() != Some(&text) {
                        tracing::error!("{text}");
                    }
                    self.read_problem = Some(text);
                    return false;
                }
            };
            if self.read_problem.take().is_some() {
                tracing::info!(path = %self.path.display(), "the mail log can be read again");
            }
            for event in &progress.events {
                self.say(*event);
            }
            self.counters.too_long(progress.too_long);
            budget = budget.saturating_sub(progress.bytes.max(1));
            if !progress.more {
                return true;
            }
            if budget == 0 {
                return false;
            }
        }
    }

    fn say(&mut self, event: Event) {
        let path = self.path.display();
        match event {
            Event::Resumed => tracing::info!(%path, "resumed from the saved log position"),
            Event::ResumedRotated => tracing::info!(
                %path,
                "the saved log position is in the rotated file: its rest first, then the new one"
            ),
            Event::SavedGone => tracing::warn!(
                %path,
                "the saved log position is in no file any more: reading from the start of the file; what the old file held past it is not counted"
            ),
            Event::Missing => {
                self.missing = true;
                tracing::warn!(%path, "the mail log does not exist; waiting for it");
            }
            Event::Appeared => {
                self.missing = false;
                tracing::info!(%path, "the mail log appeared");
            }
            Event::Rotated => {
                tracing::info!(%path, "the mail log was rotated: now reading the new file")
            }
            Event::Truncated => tracing::warn!(
                %path,
                "the mail log was truncated or rewritten, and the .1 beside it is no copy of it: reading it from its start; what it held past the last read is not counted"
            ),
            Event::CopyTruncated => tracing::info!(
                %path,
                "the mail log was copied to the .1 beside it and truncated (copytruncate): the rest of the copy first, then the file from its start"
            ),
        }
    }

    /// At the end of the file, how long ago it was last written: the age of the newest line
    /// read (line timestamps are not trusted).
    fn lag(&self) -> f64 {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map_or(0.0, |d| d.as_secs_f64())
    }

    fn save(&mut self) {
        let Some(position) = self.source.position() else {
            return;
        };
        if self.saved == Some(position) && self.position_problem.is_none() {
            return;
        }
        match position.save(&self.position_file) {
            Ok(()) => {
                self.saved = Some(position);
                if self.position_problem.take().is_some() {
                    tracing::info!(
                        position = %self.position_file.display(),
                        "the log position is saved again"
                    );
                }
            }
            Err(e) => {
                let text = crate::error_chain(&e);
                if self.position_problem.as_ref() != Some(&text) {
                    tracing::error!("{text}");
                }
                self.position_problem = Some(text);
            }
        }
    }
}

/// The `instance:` value of `syslog_name`, within `MAX_INSTANCES` values.
fn instance_of(known: &mut Vec<(String, String)>, syslog_name: &str) -> String {
    let name = syslog_name.split('/').next().unwrap_or(syslog_name);
    if let Some((_, tag)) = known.iter().find(|(n, _)| n == name) {
        return tag.clone();
    }
    if known.len() >= MAX_INSTANCES {
        return OTHER_INSTANCE.to_owned();
    }
    let tag = line::instance_tag(name);
    known.push((name.to_owned(), tag.clone()));
    tag
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Target;
    use crate::log::source::file::StartAt;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn received(rx: &UdpSocket) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = rx.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            lines.extend(text.lines().map(str::to_owned));
        }
        lines
    }

    #[test]
    fn an_unreadable_position_is_critical_once_then_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        let status = "Dec 01 10:00:00 h postfix-out/smtp[1]: ABCDEF1234: to=<a@b>, relay=mx[192.0.2.1]:25, delay=1.5, delays=0/0/0.5/1, dsn=2.0.0, status=sent (250 ok)\n";
        std::fs::write(&log, status.repeat(3)).unwrap();
        let config = LogConfig {
            path: log.clone(),
            state_directory: dir.path().join("state"),
            start_at: StartAt::Beginning,
            flush_interval: Duration::from_secs(1),
            tags: vec!["wing:log".into()],
        };
        std::fs::create_dir_all(&config.state_directory).unwrap();
        std::fs::write(config.position_file(), "not json").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let sink = Sink::new(&Target::Udp(rx.local_addr().unwrap().to_string())).unwrap();

        let mut f = Follower::open(&config);
        f.flush(&config.tags, &["dc:x".into()], &sink);
        let lines = received(&rx);
        assert!(lines.contains(&"postfix.delivery.recipients:3|c|#wing:log,status:sent,service:smtp,dsn_class:2,relay:remote,instance:/etc/postfix-out,dc:x".to_owned()), "{lines:#?}");
        let delays = lines
            .iter()
            .filter(|l| l.starts_with("postfix.delivery.delay:1.5|d|#wing:log,status:sent,"))
            .count();
        assert_eq!(delays, 3, "{lines:#?}");
        assert!(lines.contains(&"postfix.log.lines:3|c|#wing:log,dc:x".to_owned()));
        let check = lines.iter().find(|l| l.starts_with("_sc|")).unwrap();
        assert!(
            check.starts_with("_sc|postfix.log.can_read|2|#wing:log,dc:x|m:")
                && check.contains("is not one we wrote"),
            "{check}"
        );
        // The flush saved a good position over it: OK from then on, and nothing re-counted.
        assert!(Position::load(&config.position_file()).unwrap().is_some());
        f.flush(&config.tags, &[], &sink);
        let lines = received(&rx);
        assert!(
            lines.contains(&"_sc|postfix.log.can_read|0|#wing:log".to_owned()),
            "{lines:#?}"
        );
        assert!(lines.contains(&"postfix.delivery.recipients:0|c|#wing:log,status:sent,service:smtp,dsn_class:2,relay:remote,instance:/etc/postfix-out".to_owned()), "{lines:#?}");
        // A restart resumes after the three lines.
        let mut again = Follower::open(&config);
        again.flush(&config.tags, &[], &sink);
        let lines = received(&rx);
        assert!(
            lines.contains(&"postfix.log.lines:0|c|#wing:log".to_owned()),
            "{lines:#?}"
        );
    }

    #[test]
    fn instances_are_bounded() {
        let mut known = Vec::new();
        assert_eq!(
            instance_of(&mut known, "postfix/submission"),
            "/etc/postfix"
        );
        assert_eq!(instance_of(&mut known, "postfix"), "/etc/postfix");
        for i in 0..MAX_INSTANCES * 2 {
            let _ = instance_of(&mut known, &format!("x{i}"));
        }
        assert_eq!(known.len(), MAX_INSTANCES);
        assert_eq!(instance_of(&mut known, "late"), OTHER_INSTANCE);
        assert_eq!(instance_of(&mut known, "postfix"), "/etc/postfix");
    }
}
