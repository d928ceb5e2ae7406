//! Collection: one file per collecting method, and here the registry that ties them together:
//! the method's name in the config (`MethodKind`), what it reads of an instance
//! (`InstanceSettings`, `Reads`), the running method (`Method`) and its errors
//! (`CollectError`), plus the one-run helpers that `schedule` and `check` share. Every method
//! fills the same [`Snapshot`]; how it gets there (fork, socket, directory walk) is its own
//! business.
//!
//! Adding a method takes:
//! 1. `src/collect/<name>.rs` with `Options` (`From<&InstanceSettings>`), `READS`, an `Error`,
//!    and a type with `new(Options)` and `async fn collect(&mut self, &Limits) -> Collection`;
//! 2. its `pub mod <name>;` line and its line in `methods!` below (the name in the config is the
//!    module's name; the place in the list is the order error hints name methods in);
//! 3. its section in README.md's "Methods and permissions" (and, if `auto` should try it, its
//!    kind in `auto::ORDER`).

pub mod auto;
pub mod find;
pub mod listing;
pub mod postqueue;
pub mod scan;
pub mod showq;

use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use crate::exec::{Cancel, Limits};
use crate::live::Live;
use crate::snapshot::Snapshot;

/// Declares every method once: `Kind => module::Type`.
macro_rules! methods {
    ($($kind:ident => $module:ident :: $ty:ident,)*) => {
        /// A method as named in the config (`method:`), parsed once.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum MethodKind {
            $($kind,)*
        }

        impl MethodKind {
            /// Every method, in the order messages list them.
            pub const ALL: &'static [MethodKind] = &[$(MethodKind::$kind,)*];

            /// The name used in the config, logs and the `check` table.
            pub fn name(self) -> &'static str {
                match self {
                    $(MethodKind::$kind => stringify!($module),)*
                }
            }

            /// The instance keys the method reads.
            pub fn reads(self) -> Reads {
                match self {
                    $(MethodKind::$kind => $module::READS,)*
                }
            }
        }

        /// A configured collection method with the state it keeps between cycles.
        #[derive(Debug)]
        pub enum Method {
            $($kind($module::$ty),)*
            /// Cannot run; every collection reports this.
            Unavailable(String),
        }

        impl Method {
            pub fn new(config: &MethodConfig) -> Method {
                match config {
                    $(MethodConfig::Run(MethodKind::$kind, settings) => {
                        Method::$kind($module::$ty::new($module::Options::from(settings.as_ref())))
                    })*
                    MethodConfig::Unavailable(why) => Method::Unavailable(why.clone()),
                }
            }

            /// The name used in the config (`method:`), logs and the `check` table.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Method::$kind(_) => MethodKind::$kind.name(),)*
                    Method::Unavailable(_) => UNAVAILABLE,
                }
            }

            pub async fn collect(&mut self, limits: &Limits) -> Collection {
                match self {
                    $(Method::$kind(m) => m.collect(limits).await,)*
                    Method::Unavailable(why) => Collection {
                        errors: vec![CollectError::Unavailable(why.clone())],
                        ..Collection::default()
                    },
                }
            }
        }

        #[derive(Debug, thiserror::Error)]
        pub enum CollectError {
            $(#[error(transparent)] $kind(#[from] $module::Error),)*
            #[error("{0}")]
            Unavailable(String),
            /// Not started: work of an earlier run still lives (see `live`).
            #[error("run not started: still alive from an earlier run: {0}")]
            StillRunning(String),
            /// A run that overstayed even the kill of its children.
            #[error(transparent)]
            Exec(#[from] crate::exec::ExecError),
        }
    };
}

methods! {
    Postqueue => postqueue::Postqueue,
    Find => find::Find,
    Showq => showq::Showq,
    Scan => scan::Scan,
    Auto => auto::Auto,
}

/// The name of an instance that cannot run.
const UNAVAILABLE: &str = "unavailable";

/// A `method:` that names no method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown method {name:?}")]
pub struct UnknownMethod {
    pub name: String,
    /// `did you mean "showq"?`, or the list of methods.
    pub hint: String,
}

impl std::str::FromStr for MethodKind {
    type Err = UnknownMethod;

    fn from_str(name: &str) -> Result<MethodKind, UnknownMethod> {
        if let Some(kind) = MethodKind::ALL.iter().find(|k| k.name() == name) {
            return Ok(*kind);
        }
        let names: Vec<&str> = MethodKind::ALL.iter().map(|k| k.name()).collect();
        let hint = match crate::spelling::did_you_mean(name, &names) {
            Some(s) => format!("did you mean {s:?}?"),
            None => format!("methods are {}", names.join(", ")),
        };
        Err(UnknownMethod {
            name: name.to_owned(),
            hint,
        })
    }
}

/// Which instance keys a method reads; validation rejects the others when `method:` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// `config_directory`: the method asks that Postfix instance (and so can follow
    /// `discover: postmulti`).
    pub config_directory: bool,
    /// `directory` (alias `queue_directory`): the queue directory.
    pub queue_directory: Need,
    /// `queues`: the method counts only the queues listed (then they are required).
    pub queues: bool,
    /// The method lists messages: `age_thresholds`, `top_domains`.
    pub lists_messages: bool,
}

impl Reads {
    /// A method that lists every queue's messages, asking the Postfix instance of
    /// `config_directory` (postqueue, showq).
    pub const LISTING: Reads = Reads {
        config_directory: true,
        queue_directory: Need::No,
        queues: false,
        lists_messages: true,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    No,
    /// Without it the method asks postconf.
    Optional,
    Required,
}

/// Everything of one instance that some method reads; each method takes what it needs
/// (`Options::from`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSettings {
    pub config_directory: PathBuf,
    /// `directory`, the queue directory; `None` when not given (methods that need it ask
    /// postconf; validation requires it for those that cannot).
    pub queue_directory: Option<PathBuf>,
    /// The queues to count, for methods that read `queues`.
    pub queues: Vec<String>,
    pub commands: Commands,
    /// The user `sudo -u` runs `find` as.
    pub postfix_user: String,
    /// Seconds of each `postfix.queue.older_than` series.
    pub age_thresholds: Vec<u64>,
}

/// What an instance runs: a method with its settings, or why it cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodConfig {
    Run(MethodKind, Box<InstanceSettings>),
    /// An instance that cannot run (its discovery failed): every run reports why.
    Unavailable(String),
}

impl MethodConfig {
    pub fn name(&self) -> &'static str {
        match self {
            MethodConfig::Run(kind, _) => kind.name(),
            MethodConfig::Unavailable(_) => UNAVAILABLE,
        }
    }

    /// The same method for another Postfix instance (discovery).
    pub fn with_config_directory(&self, dir: &std::path::Path) -> MethodConfig {
        let mut m = self.clone();
        if let MethodConfig::Run(_, settings) = &mut m {
            settings.config_directory = dir.to_owned();
        }
        m
    }
}

/// Paths of the commands the methods run (`commands:` overrides the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commands {
    pub postqueue: PathBuf,
    pub postconf: PathBuf,
    pub sudo: PathBuf,
    pub find: PathBuf,
    pub postmulti: PathBuf,
    /// Run by the log wing (journal source), from the top-level `commands:` only.
    pub journalctl: PathBuf,
}

impl Commands {
    pub fn paths(&self) -> [&std::path::Path; 6] {
        [
            &self.postqueue,
            &self.postconf,
            &self.sudo,
            &self.find,
            &self.postmulti,
            &self.journalctl,
        ]
    }
}

impl Default for Commands {
    fn default() -> Self {
        Commands {
            postqueue: "/usr/sbin/postqueue".into(),
            postconf: "/usr/sbin/postconf".into(),
            sudo: "/usr/bin/sudo".into(),
            find: "/usr/bin/find".into(),
            postmulti: "/usr/sbin/postmulti".into(),
            journalctl: "/usr/bin/journalctl".into(),
        }
    }
}

/// What one cycle of one instance produced. A method that reads several queues separately
/// (find) can succeed for some and fail for others: the snapshot then holds the queues that
/// were read, and `errors` says what was not.
#[derive(Debug, Default)]
pub struct Collection {
    pub snapshot: Snapshot,
    pub errors: Vec<CollectError>,
    /// How the method went about it this time ("sudo find", "postqueue -j", ...), for logs and
    /// the `check` table.
    pub how: String,
    /// The Postfix `mail_version`, when the method learned it.
    pub postfix_version: Option<String>,
    /// The queues asked for one by one, in order, by a method that reads only listed queues
    /// (find): one missing from the snapshot could not be read. Empty for the others.
    pub asked: Vec<String>,
    /// Queue files and defer logs read this cycle, by a method that reads them (scan).
    pub files_read: Option<u64>,
}

impl CollectError {
    /// Postfix is not running, or the run ran out of time: nothing says the method cannot
    /// work here, so `auto` keeps it rather than fall back to a more privileged one.
    pub fn is_transient(&self) -> bool {
        use crate::exec::ExecError;
        matches!(
            self,
            CollectError::Showq(showq::Error::NotRunning { .. } | showq::Error::Stopped { .. })
                | CollectError::Postqueue(
                    postqueue::Error::MailSystemDown { .. }
                        | postqueue::Error::Exec(
                            ExecError::Timeout { .. } | ExecError::Cancelled { .. }
                        )
                )
                | CollectError::Exec(ExecError::Timeout { .. } | ExecError::Cancelled { .. })
        )
    }
}

impl Collection {
    /// Every error with its causes, one after the other, for messages and logs.
    pub fn error_text(&self) -> String {
        self.errors
            .iter()
            .map(|e| crate::error_chain(e))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The queues a table shows, in order: those asked for (read or not), else those read.
    pub fn queue_names(&self) -> Vec<&str> {
        if self.asked.is_empty() {
            self.snapshot
                .queues
                .iter()
                .map(|q| q.queue.as_str())
                .collect()
        } else {
            self.asked.iter().map(String::as_str).collect()
        }
    }
}

/// Beyond the instance timeout, what a run may take to kill its children before it is given up
/// (the process-group kill in `exec` waits 2 s between SIGTERM and SIGKILL).
const KILL_SLACK: Duration = Duration::from_secs(5);

/// One run of one instance, bounded by `timeout` (and, should a method ignore that, by a
/// last-resort timeout that drops the run, which kills its process group). The daemon's
/// schedules and `check` both run instances through this.
pub async fn collect_once(
    method: &mut Method,
    timeout: Duration,
    cancel: &Cancel,
    live: &Live,
) -> (Collection, Duration) {
    let started = Instant::now();
    let limits = Limits {
        deadline: started + timeout,
        cancel: cancel.clone(),
        live: live.clone(),
    };
    let collection = match tokio::time::timeout(timeout + KILL_SLACK, method.collect(&limits)).await
    {
        Ok(c) => c,
        Err(_) => Collection {
            errors: vec![crate::exec::ExecError::Timeout {
                command: format!("{} collection", method.name()),
                after: timeout,
            }
            .into()],
            ..Collection::default()
        },
    };
    (collection, started.elapsed())
}
