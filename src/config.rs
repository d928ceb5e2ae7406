//! The configuration: a Datadog `conf.d/postfix.d/conf.yaml` loads unchanged, with our own
//! additions (`dogstatsd:`, `commands:`, per-instance `method:`, `timeout:`). The YAML is read
//! into a generic tree and checked key by key (`validate`), so that every problem in the file
//! is reported at once with its YAML path, where serde would stop at the first.

mod env;
mod instance;
mod log;
mod rules;
mod validate;
mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use env::{DatadogEnv, UrlError};
pub use rules::{age_label, parse_age};

pub use crate::collect::{Commands, MethodConfig};

/// Where the packaged config lives.
pub const DEFAULT_PATH: &str = "/etc/postfix-dogstatsd/config.yaml";
/// What runs when there is no config at the default path: the postqueue method on the default
/// Postfix instance, which works for any user Postfix lets read the queue, and the mail log
/// from wherever this host keeps it.
pub const EMBEDDED_DEFAULT: &str = "\
init_config:
instances:
  - method: postqueue
    config_directory: /etc/postfix
    min_collection_interval: 15
    top_domains: 3
    age_thresholds: [1h, 1d]
log:
  source: auto
";
/// A config file larger than this is not a config file.
const MAX_FILE_SIZE: u64 = 1 << 20;

pub const DEFAULT_UDP: &str = "127.0.0.1:8125";
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);
pub const MAX_DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The queue's owner. The Datadog check's default was root: a root grant for a file count is
/// more than it needs, and the packaged sudoers lines allow `(postfix)`.
pub const DEFAULT_POSTFIX_USER: &str = "postfix";
pub const DEFAULT_CONFIG_DIRECTORY: &str = "/etc/postfix";
/// 5m, 1h, 4h, 1d, 3d.
pub const DEFAULT_AGE_THRESHOLDS: [u64; 5] = [300, 3600, 14_400, 86_400, 259_200];
pub const DEFAULT_TOP_DOMAINS: usize = 10;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from, for logs.
    pub source: String,
    pub target: Target,
    /// Tags on every metric and service check, after the instance's own.
    pub global_tags: Vec<String>,
    pub instances: Vec<Instance>,
    /// `log:` with a source; `None` reads no log.
    pub log: Option<LogConfig>,
    /// Things worth an info line at start-up (ignored sections and keys).
    pub notes: Vec<String>,
}

/// `log:` with a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub source: LogSource,
    /// `path`, when given.
    pub path: Option<PathBuf>,
    /// The `path` of the Datadog `logs:` section's first `type: file` entry: the first file
    /// `source: auto` tries.
    pub datadog_path: Option<PathBuf>,
    /// How to run journalctl, and on which journal.
    pub journal: crate::log::source::journal::JournalOptions,
    /// Asked for Postfix's `maillog_file` when no `path` is given.
    pub postconf: PathBuf,
    /// Where the position (or the journal cursor) is kept.
    pub state_directory: PathBuf,
    pub start_at: crate::log::source::file::StartAt,
    pub flush_interval: Duration,
    /// `log.top_domains`: recipients by domain for the `n` domains with most, 0 = not sent.
    pub top_domains: usize,
    /// `log.tags`, first on every line of the log wing.
    pub tags: Vec<String>,
}

/// `log.source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    File,
    Journal,
    /// The journal when Postfix's entries are in it, else the first readable file.
    Auto,
}

impl LogConfig {
    /// The saved position of the file source.
    pub fn position_file(&self) -> PathBuf {
        self.state_directory.join("log-position.json")
    }

    /// The saved cursor of the journal source.
    pub fn cursor_file(&self) -> PathBuf {
        self.state_directory.join("journal-cursor")
    }
}

/// Where DogStatsD lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `host:port`, resolved when the sink is made.
    Udp(String),
    Unix(PathBuf),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Udp(addr) => write!(f, "udp://{addr}"),
            Target::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// One entry of `instances:`.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Where it is in the file (`instances[N]`), for messages.
    pub yaml_path: String,
    pub method: MethodConfig,
    pub interval: Duration,
    pub timeout: Duration,
    /// The user's `tags`, in order (renamed when `disable_generic_tags` is set).
    pub tags: Vec<String>,
    /// The value of the `instance:` tag: the directory's basename (find) or the config
    /// directory as written (postqueue), as the Datadog check does.
    pub instance_tag: String,
    /// `service:` tag value, from the instance or else init_config.
    pub service: Option<String>,
    /// Send `host:` (empty) so the Agent attaches no hostname.
    pub empty_default_hostname: bool,
    pub patterns: MetricPatterns,
    /// Seconds and the `age:` tag value of each `postfix.queue.older_than` series.
    pub age_thresholds: Vec<(u64, String)>,
    /// Domains per queue in `postfix.queue.recipients_by_domain`; 0 turns it off.
    pub top_domains: usize,
    /// `discover: postmulti`: the postmulti program; this instance is a template, expanded into
    /// one instance per enabled Postfix instance when the schedules start.
    pub discover: Option<PathBuf>,
}

impl Instance {
    /// `instances[0] (postqueue /etc/postfix)`: enough to find it in the file.
    pub fn label(&self) -> String {
        format!(
            "{} ({} {})",
            self.yaml_path,
            self.method.name(),
            self.instance_tag
        )
    }
}

/// `metric_patterns`, with the Datadog check's semantics: a name is sent if it matches some
/// `include` pattern (or there are none) and no `exclude` pattern; patterns match anywhere in the
/// name (Python's `re.search`).
#[derive(Debug, Clone, Default)]
pub struct MetricPatterns {
    pub include: Vec<regex::Regex>,
    pub exclude: Vec<regex::Regex>,
}

impl MetricPatterns {
    pub fn allows(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|r| r.is_match(name)))
            && !self.exclude.iter().any(|r| r.is_match(name))
    }
}

/// One problem in the config, at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The YAML path, e.g. `instances[1].queues[2]`.
    pub path: String,
    pub problem: String,
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// Every problem found in one config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub source: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{}: {n} problem{}:",
            self.source,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Which config to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--config PATH`: it must exist.
    Explicit(PathBuf),
    /// No `--config`: the default path if it exists, else the embedded default.
    Default,
}

/// Reads, parses and validates the config, then applies the `DD_*` environment.
pub fn load(source: &Source, env: &DatadogEnv) -> Result<Config, ConfigErrors> {
    let (name, file, text) = match source {
        Source::Explicit(path) => (
            path.display().to_string(),
            Some(path.as_path()),
            read(path)?,
        ),
        Source::Default => match std::fs::metadata(DEFAULT_PATH) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                format!("built-in default config ({DEFAULT_PATH} does not exist)"),
                None,
                EMBEDDED_DEFAULT.to_owned(),
            ),
            _ => (
                DEFAULT_PATH.to_owned(),
                Some(Path::new(DEFAULT_PATH)),
                read(Path::new(DEFAULT_PATH))?,
            ),
        },
    };
    let config = parse(&name, &text, env)?;
    if crate::sys::effective_uid() == 0 {
        let errors = strict_modes(&config, file);
        if !errors.is_empty() {
            return Err(ConfigErrors {
                source: name,
                errors,
            });
        }
    }
    Ok(config)
}

/// Running as root, a config or a program that another user can change is a way to become
/// root, so (as sshd's StrictModes) each must be owned by root and writable by no one else, and
/// so must every directory above it (a directory with the sticky bit, such as /tmp, may be
/// writable by all: no one else can replace what root owns in it). A program that does not
/// exist is left to the method that runs it to report.
fn strict_modes(config: &Config, file: Option<&Path>) -> Vec<ConfigError> {
    let mut paths: Vec<(&str, &Path)> = file.map(|f| ("(file)", f)).into_iter().collect();
    for i in &config.instances {
        if let crate::collect::MethodConfig::Run(_, settings) = &i.method {
            paths.extend(settings.commands.paths().map(|p| (i.yaml_path.as_str(), p)));
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut errors = Vec::new();
    for (at, path) in paths {
        if !seen.insert(path) {
            continue;
        }
        if let Some(problem) = unsafe_to_trust(path) {
            errors.push(ConfigError {
                path: at.to_owned(),
                problem: format!("running as root, {} is not to be trusted: {problem}", path.display()),
                hint: Some("make it and every directory above it owned by root and writable by root alone (chown root; chmod go-w)".to_owned()),
            });
        }
    }
    errors
}

/// Why `path` (or a directory above it) could be changed by someone other than root. Both the
/// path as written and the path it resolves to are checked, directory by directory: a symbolic
/// link on the way is only as safe as the directory it sits in, and its target is checked too.
fn unsafe_to_trust(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(_) => return None,
    };
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Some(format!(
            "it is owned by uid {} with mode {:o}",
            meta.uid(),
            meta.mode() & 0o7777
        ));
    }
    let written = match std::env::current_dir() {
        Ok(cwd) => cwd.join(path),
        Err(_) => path.to_path_buf(),
    };
    let resolved = std::fs::canonicalize(path).ok()?;
    let dirs = written
        .ancestors()
        .skip(1)
        .chain(resolved.ancestors().skip(1));
    for dir in dirs {
        // A link's own mode means nothing; what it points to is on the resolved path.
        let Ok(meta) = std::fs::symlink_metadata(dir) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.uid() != 0 || (meta.mode() & 0o022 != 0 && !sticky) {
            return Some(format!(
                "{} is owned by uid {} with mode {:o}",
                dir.display(),
                meta.uid(),
                meta.mode() & 0o7777
            ));
        }
    }
    None
}

/// Parses and validates config text; `name` says where it came from in messages.
pub fn parse(name: &str, text: &str, env: &DatadogEnv) -> Result<Config, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        source: name.to_owned(),
        errors,
    };
    let tree: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        fail(vec![ConfigError {
            path: match e.location() {
                Some(l) => format!("line {} column {}", l.line(), l.column()),
                None => "(document)".to_owned(),
            },
            problem: format!("not valid YAML: {e}"),
            hint: None,
        }])
    })?;
    let mut config = validate::validate(&tree, env).map_err(fail)?;
    config.source = name.to_owned();
    Ok(config)
}

fn read(path: &Path) -> Result<String, ConfigErrors> {
    let fail = |problem: String, hint: Option<&str>| ConfigErrors {
        source: path.display().to_string(),
        errors: vec![ConfigError {
            path: "(file)".to_owned(),
            problem,
            hint: hint.map(str::to_owned),
        }],
    };
    use std::io::Read;
    let cannot_read = |e: std::io::Error| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => "pass an existing file with --config",
            // The package makes the config 0640, group postfix-dogstatsd.
            std::io::ErrorKind::PermissionDenied => "run as root or as the service user (sudo -u postfix-dogstatsd ...), or give this user read access",
            _ => "check the path",
        };
        fail(format!("cannot read it: {e}"), Some(hint))
    };
    // Opened first and looked at through the open file: what is checked is what is read.
    // O_NONBLOCK: opening a FIFO would otherwise wait for a writer (it does nothing to a
    // regular file); O_NOCTTY: a terminal named by mistake never becomes ours.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(cannot_read)?
    };
    let meta = file.metadata().map_err(cannot_read)?;
    if !meta.is_file() {
        return Err(fail(
            "it is not a regular file".to_owned(),
            Some("pass the YAML file itself, not a device, FIFO or directory"),
        ));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(fail(
            format!(
                "it is {} bytes; a config is at most {MAX_FILE_SIZE}",
                meta.len()
            ),
            None,
        ));
    }
    // Never more than the bound, even from a file that grows while it is read.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(fail(
            format!("it grew past {MAX_FILE_SIZE} bytes while it was read"),
            None,
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        fail(
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            Some("YAML files are UTF-8"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in default costs what the packaged config does (tests/config.rs holds that
    /// one to the budget): the same instance, within 70 series.
    #[test]
    fn embedded_default_within_the_series_budget() {
        let config = parse("default", EMBEDDED_DEFAULT, &DatadogEnv::default()).unwrap();
        let most: usize = config
            .instances
            .iter()
            .flat_map(crate::metrics::most_series)
            .map(|(_, n)| n)
            .sum();
        assert!((60..=70).contains(&most), "{most}");
    }
}
