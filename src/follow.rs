//! The log wing's task: choose the source (`log.source`), then every `flush_interval` read
//! what it holds now (a bounded amount), count each line, send the flush, and only then save
//! the position (a file offset or a journal cursor). A crash between sending and saving
//! re-counts at most one flush; a position is never saved ahead of what was sent, so no line
//! is lost. Reading runs on tokio's blocking pool, never on a runtime worker.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::{Config, LogConfig, LogSource};
use crate::dogstatsd::{report_lines, Sink};
use crate::exec::{self, Command, Limits};
use crate::live::Live;
use crate::log::counters::Counters;
use crate::log::line;
use crate::log::source::file::{self, FileSource, Position, SourceError};
use crate::log::source::journal::{self, JournalError, JournalSource};
use crate::metrics::{self, LogState};

/// Bytes one `read` call of the file source asks for.
const READ_BYTES: usize = 64 * 1024;
/// Bytes one flush reads at most: a backlog is worked off over several flushes, each bounded
/// in time (about 0.2 s of CPU: the benchmark read 158 MB in 0.5 s), while memory stays one
/// read buffer whatever the bound. At the default 10 s flush, 64 MiB follows about 40,000
/// lines/s; 4 MiB followed only 2,650, and the benchmark saw it fall behind 5,000 lines/s.
pub const FLUSH_BYTES: u64 = 64 * 1024 * 1024;
/// The same for the journal, whose JSON entries are about three times a syslog line.
pub const JOURNAL_FLUSH_BYTES: usize = 192 * 1024 * 1024;
/// Distinct `instance:` values (from `syslog_name`); later ones count as `other`. Anyone who
/// can call logger(1) can write a line under any name.
pub const MAX_INSTANCES: usize = 32;
pub const OTHER_INSTANCE: &str = "other";
/// The group that may read /var/log/mail.log on Debian and Ubuntu.
pub const LOG_GROUP: &str = "adm";
/// Where syslog puts mail on Debian and Ubuntu.
pub const MAIL_LOG: &str = "/var/log/mail.log";
/// How long `source: auto` waits for journalctl and postconf when it chooses.
const CHOOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How many of the newest mail entries `source: auto` looks at for Postfix's.
const PROBE_ENTRIES: &str = "100";

/// Where the log is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chosen {
    File(PathBuf),
    Journal,
}

impl std::fmt::Display for Chosen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chosen::File(path) => write!(f, "{}", path.display()),
            Chosen::Journal => write!(f, "the journal"),
        }
    }
}

/// The source `config` names, or for `auto` (and `file` without `path`) the one this host
/// has, with why. `auto`: the journal when Postfix's entries are in it; else the first
/// readable file of the Datadog `logs:` file, `path`, /var/log/mail.log and Postfix's
/// `maillog_file`; else the journal when journalctl works (Postfix has not logged yet); else
/// /var/log/mail.log, waited for.
pub async fn choose(config: &LogConfig, cancel: &exec::Cancel) -> (Chosen, String) {
    let limits = || Limits {
        deadline: Instant::now() + CHOOSE_TIMEOUT,
        cancel: cancel.clone(),
        live: Live::default(),
    };
    let journal_state = match config.source {
        LogSource::Journal => return (Chosen::Journal, "log.source is journal".to_owned()),
        LogSource::File => {
            if let Some(path) = &config.path {
                return (Chosen::File(path.clone()), "log.path".to_owned());
            }
            None
        }
        LogSource::Auto => Some(journal_has_postfix(config, &limits()).await),
    };
    if let Some(Ok(true)) = journal_state {
        return (
            Chosen::Journal,
            "Postfix's entries are in the journal".to_owned(),
        );
    }
    let mut files: Vec<PathBuf> = Vec::new();
    if config.source == LogSource::Auto {
        files.extend(config.datadog_path.iter().cloned());
        files.extend(config.path.iter().cloned());
    }
    files.push(PathBuf::from(MAIL_LOG));
    // Empty by default (syslog), or /dev/stdout under a container's supervisor.
    let maillog = postconf_value(&config.postconf, None, "maillog_file", &limits()).await;
    if let Some(f) = maillog.filter(|f| f.starts_with('/') && !f.starts_with("/dev/")) {
        files.push(PathBuf::from(f));
    }
    let names = files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(f) = files.iter().find(|f| std::fs::File::open(f).is_ok()) {
        return (
            Chosen::File(f.clone()),
            format!("the first readable of {names}"),
        );
    }
    if let Some(Ok(false)) = journal_state {
        return (
            Chosen::Journal,
            format!("no file of {names} can be read, and journalctl works: Postfix will log there"),
        );
    }
    let why = match journal_state {
        Some(Err(e)) => format!("no file of {names} can be read, and {e}"),
        _ => format!("no file of {names} can be read yet"),
    };
    let first = files
        .iter()
        .find(|f| f.exists())
        .unwrap_or(&files[0])
        .clone();
    (Chosen::File(first), why)
}

/// Whether the newest mail entries of the journal include Postfix's; an error says why the
/// journal could not be asked.
async fn journal_has_postfix(config: &LogConfig, limits: &Limits) -> Result<bool, String> {
    let mut args = vec![
        "--output=json".to_owned(),
        "--output-fields=SYSLOG_IDENTIFIER".to_owned(),
        format!("--lines={PROBE_ENTRIES}"),
        "--no-pager".to_owned(),
    ];
    if let Some(dir) = &config.journal.directory {
        args.push(format!("--directory={}", dir.display()));
    }
    args.push("SYSLOG_FACILITY=2".to_owned());
    let cmd = Command::new(&config.journal.journalctl, args);
    let mut lines = crate::lines::LineSplitter::new(journal::MAX_ENTRY);
    let mut found = false;
    let done = exec::run(&cmd, limits, |chunk| {
        lines.pieces(chunk, |_, piece| {
            if let crate::lines::Piece::Line(l) = piece {
                let ident = journal::entry(l).ok().and_then(|e| e.identifier);
                found |= ident.is_some_and(|i| line::from_parts(&i, "").is_ok());
            }
            Ok::<(), ()>(())
        })
    })
    .await
    .map_err(|e| match e {
        exec::Failure::Exec(e) => crate::error_chain(&e),
        exec::Failure::Output(()) => format!("`{cmd}` printed what is not understood"),
    })?;
    if done.status.success() {
        Ok(found)
    } else {
        Err(format!(
            "`{cmd}` failed ({}): {}",
            done.describe_status(),
            done.stderr
        ))
    }
}

/// One Postfix parameter, expanded (`postconf [-c DIR] -xh NAME`); `None` when postconf fails.
async fn postconf_value(
    postconf: &Path,
    config_directory: Option<&Path>,
    name: &str,
    limits: &Limits,
) -> Option<String> {
    let mut args: Vec<&std::ffi::OsStr> = Vec::new();
    if let Some(dir) = config_directory {
        args.extend([std::ffi::OsStr::new("-c"), dir.as_os_str()]);
    }
    args.extend([std::ffi::OsStr::new("-xh"), std::ffi::OsStr::new(name)]);
    let cmd = Command::new(postconf, args);
    let mut out = Vec::new();
    let done = exec::run(&cmd, limits, |chunk| {
        // A parameter's value fits in a few KiB; more is not one.
        let room = 4096usize.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        Ok::<(), ()>(())
    })
    .await
    .ok()?;
    done.status
        .success()
        .then(|| String::from_utf8_lossy(&out).trim().to_owned())
}

/// The configured Postfix instances the log wing tags lines for: each instance's config
/// directory and its `instance:` value (an instance that cannot run, its discovery failed,
/// has none).
pub fn instances(config: &Config) -> Vec<(PathBuf, String)> {
    config
        .instances
        .iter()
        .filter_map(|i| match &i.method {
            crate::collect::MethodConfig::Run(_, settings) => {
                Some((settings.config_directory.clone(), i.instance_tag.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Lines counted as the daemon counts them: only Postfix's (`instance_of`), each under its
/// instance's `instance:` value. The follower and `check`'s window share it.
#[derive(Debug)]
pub struct Tally {
    pub counters: Counters,
    /// `syslog_name` up to its first `/`, and its `instance:` value.
    instances: Vec<(String, String)>,
}

impl Tally {
    /// `known`: the configured instances' syslog names, as [`syslog_names`] finds them.
    /// `top_domains`: `log.top_domains`.
    pub fn new(known: Vec<(String, String)>, top_domains: usize) -> Tally {
        Tally {
            counters: Counters::with_top_domains(top_domains),
            instances: known,
        }
    }

    /// One line of a log file, without its `\n`.
    pub fn line(&mut self, bytes: &[u8]) {
        // Almost every line is valid UTF-8: checking is cheaper than a lossy copy.
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        };
        if let Ok(l) = line::parse(&text) {
            if let Some(instance) = instance_of(&mut self.instances, l.syslog_name) {
                self.counters.count(&l, &instance);
            }
        }
    }

    /// One journal entry: its `SYSLOG_IDENTIFIER` and `MESSAGE`.
    pub fn entry(&mut self, ident: &str, text: &str) {
        if let Ok(l) = line::from_parts(ident, text) {
            if let Some(instance) = instance_of(&mut self.instances, l.syslog_name) {
                self.counters.count(&l, &instance);
            }
        }
    }
}

/// Why the file source could not read, with what to do about a permission.
pub fn file_problem(e: &SourceError) -> String {
    match e {
        SourceError::PermissionDenied { path } => format!(
            "cannot read {}: permission denied (add the service user to the group `{LOG_GROUP}`, which may read the mail log: usermod -a -G {LOG_GROUP} postfix-dogstatsd)",
            path.display()
        ),
        other => crate::error_chain(other),
    }
}

/// The running log task.
#[derive(Debug)]
pub struct LogTask {
    retire: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl LogTask {
    /// Chooses the source and follows it, resuming from the position saved in its state
    /// directory.
    /// `instances` are the configured Postfix instances (config directory, `instance:` value),
    /// whose lines carry the same `instance:` as their queue metrics.
    pub fn start(
        config: &LogConfig,
        instances: Vec<(PathBuf, String)>,
        global_tags: &[String],
        sink: &Sink,
    ) -> LogTask {
        let (retire, mut retired) = watch::channel(false);
        let config = config.clone();
        let global = global_tags.to_vec();
        let sink = sink.clone();
        let handle = tokio::spawn(async move {
            let (chosen, why) = choose(&config, &retired).await;
            let known = syslog_names(&config.postconf, &instances, &retired).await;
            tracing::info!(
                source = %chosen,
                why,
                state_directory = %config.state_directory.display(),
                flush_interval = config.flush_interval.as_secs(),
                "following the mail log"
            );
            let setup = config.clone();
            let Ok(mut follower) =
                tokio::task::spawn_blocking(move || Follower::open(&setup, chosen, known)).await
            else {
                return;
            };
            let mut tick = tokio::time::interval(config.flush_interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                let last = *retired.borrow()
                    || tokio::select! {
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

/// A source and the place in it that a restart resumes from.
#[derive(Debug)]
enum Source {
    File {
        path: PathBuf,
        source: FileSource,
        saved: Option<Position>,
        /// Whether the file was missing at the last read.
        missing: bool,
    },
    Journal {
        source: JournalSource,
        saved: Option<String>,
    },
}

/// The blocking half: the source, the counters and what went wrong.
struct Follower {
    source: Source,
    /// Where the position (or cursor) is saved.
    position_file: PathBuf,
    tally: Tally,
    read_problem: Option<String>,
    position_problem: Option<String>,
}

impl Follower {
    fn open(config: &LogConfig, chosen: Chosen, known: Vec<(String, String)>) -> Follower {
        let mut position_problem = None;
        if let Err(e) = std::fs::create_dir_all(&config.state_directory) {
            tracing::warn!(
                "cannot create the state directory {}: {e}",
                config.state_directory.display()
            );
        }
        let mut problem = |text: String| {
            let text = format!("{text}; started as if there were none");
            tracing::warn!("{text}");
            position_problem = Some(text);
        };
        let (source, position_file) = match chosen {
            Chosen::File(path) => {
                let position_file = config.position_file();
                let saved = Position::load(&position_file).unwrap_or_else(|e| {
                    problem(crate::error_chain(&e));
                    None
                });
                let source = FileSource::open(path.clone(), saved, config.start_at);
                let source = Source::File {
                    path,
                    source,
                    saved,
                    missing: false,
                };
                (source, position_file)
            }
            Chosen::Journal => {
                let position_file = config.cursor_file();
                let saved = journal::load_cursor(&position_file).unwrap_or_else(|e| {
                    problem(e.to_string());
                    None
                });
                let source =
                    JournalSource::open(config.journal.clone(), saved.clone(), config.start_at);
                (Source::Journal { source, saved }, position_file)
            }
        };
        Follower {
            source,
            position_file,
            tally: Tally::new(known, config.top_domains),
            read_problem: None,
            position_problem,
        }
    }

    /// Reads, counts, sends, and then saves the position.
    fn flush(&mut self, log_tags: &[String], global: &[String], sink: &Sink) {
        let at_end = match &self.source {
            Source::File { .. } => self.read_file(),
            Source::Journal { .. } => self.read_journal(),
        };
        let lag = match (&self.source, at_end && self.read_problem.is_none()) {
            (
                Source::File {
                    missing: false,
                    path,
                    ..
                },
                true,
            ) => age(std::fs::metadata(path).and_then(|m| m.modified()).ok()),
            (Source::Journal { source, .. }, true) => age(source.newest()),
            _ => 0.0,
        };
        let counts = self.tally.counters.flush();
        let missing = match &self.source {
            Source::File {
                missing: true,
                path,
                ..
            } => Some(format!(
                "{} does not exist; it is read from its start once it appears",
                path.display()
            )),
            _ => None,
        };
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

    /// Reads up to `FLUSH_BYTES` of the file, counting each line; whether it reached the end.
    fn read_file(&mut self) -> bool {
        let Source::File {
            path,
            source,
            missing,
            ..
        } = &mut self.source
        else {
            return false;
        };
        let mut budget = FLUSH_BYTES;
        loop {
            let tally = &mut self.tally;
            let progress = match source.read(READ_BYTES, |bytes| tally.line(bytes)) {
                Ok(progress) => progress,
                Err(e) => {
                    report(&mut self.read_problem, file_problem(&e));
                    return false;
                }
            };
            if self.read_problem.take().is_some() {
                tracing::info!(path = %path.display(), "the mail log can be read again");
            }
            for event in &progress.events {
                say_file(path, missing, *event);
            }
            self.tally.counters.too_long(progress.too_long);
            budget = budget.saturating_sub(progress.bytes.max(1));
            if !progress.more {
                return true;
            }
            if budget == 0 {
                return false;
            }
        }
    }

    /// Runs journalctl for what was logged since the last entry read (up to
    /// `JOURNAL_FLUSH_BYTES`), counting each entry; whether it reached the end.
    fn read_journal(&mut self) -> bool {
        let Source::Journal { source, .. } = &mut self.source else {
            return false;
        };
        let tally = &mut self.tally;
        let progress = source.read(JOURNAL_FLUSH_BYTES, |ident, text| tally.entry(ident, text));
        if let Some(command) = progress.started {
            tracing::info!(command, "reading the journal");
        }
        // An entry too long to hold, or output that is no entry: counted where it shows
        // (`postfix.log.unparsed`, `service:unknown`), never dropped unseen.
        self.tally
            .counters
            .too_long(progress.too_long + progress.not_entries);
        match progress.problem {
            Some(e) => {
                // What the error cannot know: the follower goes on from where it stopped.
                let why = match e {
                    JournalError::Exited { .. } | JournalError::Timeout { .. } => {
                        format!("{e}; the next run starts from the last entry read")
                    }
                    _ => e.to_string(),
                };
                report(&mut self.read_problem, why);
                false
            }
            None => {
                if self.read_problem.take().is_some() {
                    tracing::info!("the journal can be read again");
                }
                !progress.more
            }
        }
    }

    fn save(&mut self) {
        let saved = match &mut self.source {
            Source::File { source, saved, .. } => {
                let Some(position) = source.position() else {
                    return;
                };
                if *saved == Some(position) && self.position_problem.is_none() {
                    return;
                }
                position
                    .save(&self.position_file)
                    .map(|()| *saved = Some(position))
                    .map_err(|e| crate::error_chain(&e))
            }
            Source::Journal { source, saved } => {
                let Some(cursor) = source.cursor() else {
                    return;
                };
                if saved.as_deref() == Some(cursor) && self.position_problem.is_none() {
                    return;
                }
                journal::save_cursor(cursor, &self.position_file)
                    .map(|()| *saved = Some(cursor.to_owned()))
                    .map_err(|e| e.to_string())
            }
        };
        match saved {
            Ok(()) => {
                if self.position_problem.take().is_some() {
                    tracing::info!(
                        position = %self.position_file.display(),
                        "the log position is saved again"
                    );
                }
            }
            Err(text) => report(&mut self.position_problem, text),
        }
    }
}

/// Keeps `text` as the current problem, logging it when it is new.
fn report(problem: &mut Option<String>, text: String) {
    if problem.as_ref() != Some(&text) {
        tracing::error!("{text}");
    }
    *problem = Some(text);
}

/// Seconds since `t`, 0 when unknown or in the future.
fn age(t: Option<SystemTime>) -> f64 {
    t.and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

fn say_file(path: &Path, missing: &mut bool, event: file::Event) {
    use file::Event;
    let path = path.display();
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
            *missing = true;
            tracing::warn!(%path, "the mail log does not exist; waiting for it");
        }
        Event::Appeared => {
            *missing = false;
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

/// The `instance:` value of a line written under `syslog_name`, within `MAX_INSTANCES`
/// values: a configured instance's own (`known` starts with them), else one made from a
/// Postfix-like name; `None` for a line that is not Postfix's, which is not counted.
fn instance_of(known: &mut Vec<(String, String)>, syslog_name: &str) -> Option<String> {
    let name = line::first_component(syslog_name);
    if let Some((_, tag)) = known.iter().find(|(n, _)| n == name) {
        return Some(tag.clone());
    }
    if !line::named_like_postfix(name) {
        return None;
    }
    if known.len() >= MAX_INSTANCES {
        return Some(OTHER_INSTANCE.to_owned());
    }
    let tag = line::instance_tag(name);
    known.push((name.to_owned(), tag.clone()));
    Some(tag)
}

/// Each configured Postfix instance's `syslog_name` (its first component) and the `instance:`
/// value its queue metrics carry, asked of `postconf -c DIR -xh syslog_name` (the first
/// instance of a config directory wins). An instance postconf cannot tell about is left to the
/// naming rule of `line::instance_tag`.
pub async fn syslog_names(
    postconf: &Path,
    instances: &[(PathBuf, String)],
    cancel: &exec::Cancel,
) -> Vec<(String, String)> {
    let mut known: Vec<(String, String)> = Vec::new();
    let mut asked: Vec<&Path> = Vec::new();
    for (dir, tag) in instances.iter().take(MAX_INSTANCES) {
        if asked.contains(&dir.as_path()) {
            continue;
        }
        asked.push(dir);
        let limits = Limits {
            deadline: Instant::now() + CHOOSE_TIMEOUT,
            cancel: cancel.clone(),
            live: Live::default(),
        };
        let Some(name) = postconf_value(postconf, Some(dir), "syslog_name", &limits).await else {
            continue;
        };
        let name = line::first_component(&name);
        if !name.is_empty() && !known.iter().any(|(n, _)| n == name) {
            known.push((name.to_owned(), tag.clone()));
        }
    }
    known
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
            source: LogSource::File,
            path: Some(log.clone()),
            datadog_path: None,
            journal: journal::JournalOptions {
                journalctl: "/nonexistent".into(),
                directory: None,
            },
            postconf: "/nonexistent".into(),
            state_directory: dir.path().join("state"),
            start_at: StartAt::Beginning,
            flush_interval: Duration::from_secs(1),
            top_domains: 0,
            tags: vec!["wing:log".into()],
        };
        std::fs::create_dir_all(&config.state_directory).unwrap();
        std::fs::write(config.position_file(), "not json").unwrap();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let sink = Sink::new(&Target::Udp(rx.local_addr().unwrap().to_string())).unwrap();

        let mut f = Follower::open(&config, Chosen::File(log.clone()), Vec::new());
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
        let mut again = Follower::open(&config, Chosen::File(log.clone()), Vec::new());
        again.flush(&config.tags, &[], &sink);
        let lines = received(&rx);
        assert!(
            lines.contains(&"postfix.log.lines:0|c|#wing:log".to_owned()),
            "{lines:#?}"
        );
    }

    #[test]
    fn instances_are_bounded_and_only_postfix_counts() {
        // A configured instance with its own syslog_name, as `syslog_names` finds it.
        let mut known = vec![("mta-out".to_owned(), "/etc/postfix-out".to_owned())];
        let tag = |known: &mut Vec<_>, name: &str| instance_of(known, name);
        assert_eq!(
            tag(&mut known, "mta-out/relay").as_deref(),
            Some("/etc/postfix-out")
        );
        assert_eq!(
            tag(&mut known, "postfix/submission").as_deref(),
            Some("/etc/postfix")
        );
        assert_eq!(tag(&mut known, "postfix").as_deref(), Some("/etc/postfix"));
        // Another program on the mail facility is not Postfix, and takes no slot.
        assert_eq!(tag(&mut known, "dovecot/imap"), None);
        for i in 0..MAX_INSTANCES * 2 {
            let _ = tag(&mut known, &format!("postfix-x{i}"));
        }
        assert_eq!(known.len(), MAX_INSTANCES);
        assert_eq!(
            tag(&mut known, "postfix-late").as_deref(),
            Some(OTHER_INSTANCE)
        );
        assert_eq!(tag(&mut known, "postfix").as_deref(), Some("/etc/postfix"));
        assert_eq!(tag(&mut known, "evil"), None);
    }
}
