//! Method `find`: count the files under `<directory>/<queue>` for each configured queue, the way
//! the Datadog check does, with `sudo -n -u <postfix_user> find <directory>/<queue> -type f`.
//!
//! The argv is exactly the check's, so the sudoers lines users already have keep matching; unlike
//! the check we never run `sudo -l` first (that is what floods auth.log), we pass `-n` so sudo
//! fails instead of waiting for a password, and a refusal or a failed `find` is an error, not a
//! zero. A daemon that already runs as root or as the postfix user walks the directories itself.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::{Collection, InstanceSettings, Need, Reads};
use crate::exec::{self, Command, ExecError, Failure, Limits};
use crate::sys;
use crate::walk::walk_files;

/// After sudo refuses a queue, wait this long before asking again, doubling up to the maximum:
/// Debian's sudo mails root about each refusal, and that mail lands in the queue we count.
const REFUSAL_BACKOFF: Duration = Duration::from_secs(60);
const REFUSAL_BACKOFF_MAX: Duration = Duration::from_secs(3600);

/// The options of one find instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The queue directory, normalised (absolute, no trailing slash).
    pub directory: PathBuf,
    /// Queue names, each one path component, in the order the gauges are sent.
    pub queues: Vec<String>,
    /// The user `sudo -u` runs `find` as.
    pub user: String,
    pub sudo: PathBuf,
    pub find: PathBuf,
}

/// Find counts the files of the listed queues under `directory`, without asking Postfix.
pub const READS: Reads = Reads {
    config_directory: false,
    queue_directory: Need::Required,
    queues: true,
    lists_messages: false,
};

impl From<&InstanceSettings> for Options {
    fn from(s: &InstanceSettings) -> Options {
        Options {
            // Validation requires `directory` for find, and auto fills it in before it tries find.
            directory: s.queue_directory.clone().unwrap_or_default(),
            queues: s.queues.clone(),
            user: s.postfix_user.clone(),
            sudo: s.commands.sudo.clone(),
            find: s.commands.find.clone(),
        }
    }
}

#[derive(Debug)]
pub struct Find {
    options: Options,
    /// Whether we may read the queues ourselves; decided at the first collection.
    direct: Option<bool>,
    refused: HashMap<String, Refusal>,
}

#[derive(Debug, Clone)]
struct Refusal {
    until: Instant,
    backoff: Duration,
    message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "queue {queue}: sudo refused `{command}`: {stderr} (add to sudoers: `{sudoers_line}`)"
    )]
    SudoRefused {
        queue: String,
        command: String,
        stderr: String,
        sudoers_line: String,
    },
    #[error("queue {queue}: not counted: sudo refused it earlier ({message}) and is asked again in {retry_in}s")]
    BackingOff {
        queue: String,
        retry_in: u64,
        message: String,
    },
    #[error("queue {queue}: `{command}` failed with {status}: {stderr}")]
    Failed {
        queue: String,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("queue {queue}: cannot read {}", path.display())]
    Walk {
        queue: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("queue {queue}: {source}")]
    Exec {
        queue: String,
        #[source]
        source: ExecError,
    },
}

impl Find {
    pub fn new(options: Options) -> Self {
        Find {
            options,
            direct: None,
            refused: HashMap::new(),
        }
    }

    pub async fn collect(&mut self, limits: &Limits) -> Collection {
        let direct = *self.direct.get_or_insert_with(|| {
            let me = sys::effective_uid();
            me == 0 || sys::uid_of(&self.options.user) == Some(me)
        });
        let mut collection = Collection {
            how: if direct {
                "directory walk (no sudo needed)".to_owned()
            } else {
                "sudo find".to_owned()
            },
            asked: self.options.queues.clone(),
            ..Collection::default()
        };
        for queue in self.options.queues.clone() {
            let path = self.options.directory.join(&queue);
            let counted = if direct {
                walk_queue(&queue, path, limits).await
            } else {
                self.sudo_find(&queue, &path, limits).await
            };
            match counted {
                Ok(n) => collection.snapshot.add(&queue, n),
                Err(e) => collection.errors.push(e.into()),
            }
        }
        collection
    }

    async fn sudo_find(&mut self, queue: &str, path: &Path, limits: &Limits) -> Result<u64, Error> {
        let now = Instant::now();
        if let Some(r) = self.refused.get(queue) {
            if now < r.until {
                return Err(Error::BackingOff {
                    queue: queue.to_owned(),
                    retry_in: r.until.duration_since(now).as_secs(),
                    message: r.message.clone(),
                });
            }
        }
        let o = &self.options;
        let cmd = Command::new(
            &o.sudo,
            [
                "-n".into(),
                "-u".into(),
                o.user.clone().into(),
                o.find.clone().into_os_string(),
                path.as_os_str().to_owned(),
                "-type".into(),
                "f".into(),
            ],
        );
        let mut counter = LineCounter::default();
        let finished = exec::run(&cmd, limits, |chunk| {
            counter.feed(chunk);
            Ok::<(), std::convert::Infallible>(())
        })
        .await
        .map_err(|f| match f {
            Failure::Exec(source) => Error::Exec {
                queue: queue.to_owned(),
                source,
            },
            Failure::Output(never) => match never {},
        })?;
        if finished.status.success() || only_vanished(&finished, path) {
            self.refused.remove(queue);
            return Ok(counter.finish());
        }
        if is_sudo_refusal(&finished.stderr) {
            let backoff = self.refused.get(queue).map_or(REFUSAL_BACKOFF, |r| {
                (r.backoff * 2).min(REFUSAL_BACKOFF_MAX)
            });
            let err = Error::SudoRefused {
                queue: queue.to_owned(),
                command: cmd.to_string(),
                stderr: finished.stderr.clone(),
                sudoers_line: sudoers_line(o, path),
            };
            self.refused.insert(
                queue.to_owned(),
                Refusal {
                    until: now + backoff,
                    backoff,
                    message: finished.stderr.clone(),
                },
            );
            return Err(err);
        }
        Err(Error::Failed {
            queue: queue.to_owned(),
            command: cmd.to_string(),
            status: finished.describe_status(),
            stderr: finished.stderr,
        })
    }
}

/// The sudoers line that allows this exact command for the daemon's user.
pub fn sudoers_line(o: &Options, path: &Path) -> String {
    let me = whoami();
    format!(
        "{me} ALL=({}) NOPASSWD: {} {} -type f",
        o.user,
        o.find.display(),
        path.display()
    )
}

fn whoami() -> String {
    let uid = sys::effective_uid();
    sys::user_name(uid).unwrap_or_else(|| format!("#{uid}"))
}

/// GNU find exits 1 when a file vanishes between reading its directory and looking at it
/// (on file systems without d_type). In `active`, `incoming` and `maildrop` that is Postfix at
/// work: the files it did list are the count. Only when every line of stderr (all of it) says
/// so for a path under this queue; a permission or I/O error still fails the queue.
fn only_vanished(finished: &exec::Finished, queue: &Path) -> bool {
    let prefix = format!("find: '{}/", queue.display());
    finished.status.code() == Some(1)
        && !finished.stderr_cut
        && !finished.stderr.is_empty()
        && finished
            .stderr
            .lines()
            .all(|l| l.starts_with(&prefix) && l.ends_with("': No such file or directory"))
}

/// sudo's wording for "you may not", as opposed to the command itself failing.
fn is_sudo_refusal(stderr: &str) -> bool {
    stderr.starts_with("sudo:")
        && [
            "a password is required",
            "is not allowed to execute",
            "is not in the sudoers file",
            "may not run sudo",
            "a terminal is required",
            "unknown user",
        ]
        .iter()
        .any(|needle| stderr.contains(needle))
}

/// Counts the lines of `find` output as it streams, holding nothing.
#[derive(Debug, Default)]
pub struct LineCounter {
    lines: u64,
    /// The last byte seen was not a newline: a final line without one still counts.
    open: bool,
}

impl LineCounter {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        if let Some(&last) = chunk.last() {
            self.open = last != b'\n';
        }
    }

    pub fn finish(self) -> u64 {
        self.lines + u64::from(self.open)
    }
}

/// Counts regular files under `path` without forking, in a blocking thread, within the
/// deadline. Symbolic links are not followed and not counted, as with `find -type f`.
async fn walk_queue(queue: &str, path: PathBuf, limits: &Limits) -> Result<u64, Error> {
    let q = queue.to_owned();
    let held = limits
        .live
        .hold(format!("a directory walk of {}", path.display()));
    let deadline = limits.deadline.into_std();
    let walk = tokio::task::spawn_blocking(move || {
        let _held = held;
        count_files(&path, deadline).map_err(|(path, source)| Error::Walk {
            queue: q,
            path,
            source,
        })
    });
    let failed = |problem: String| Error::Walk {
        queue: queue.to_owned(),
        path: PathBuf::new(),
        source: io::Error::other(problem),
    };
    // The walk stops itself at the deadline, at the next directory; until then it counts as
    // alive, and the instance starts no other run.
    match exec::within(limits, tokio::time::Instant::now(), walk).await {
        Ok(joined) => joined.unwrap_or_else(|join| Err(failed(join.to_string()))),
        Err(stopped) => Err(failed(format!("the directory walk {stopped}"))),
    }
}

/// Counts the regular files below `root`, recursively, like `find -type f`.
pub fn count_files(root: &Path, deadline: std::time::Instant) -> Result<u64, (PathBuf, io::Error)> {
    let mut count = 0u64;
    walk_files(root, deadline, |_| {
        count += 1;
        Ok(())
    })?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_counter_streams() {
        let mut c = LineCounter::default();
        c.feed(b"/a/b\n/a/");
        c.feed(b"c\n/a/d");
        assert_eq!(c.finish(), 3);
        let mut c = LineCounter::default();
        c.feed(b"");
        assert_eq!(c.finish(), 0);
    }

    #[test]
    fn counts_files_recursively_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("A/B")).unwrap();
        std::fs::write(root.join("top"), b"").unwrap();
        std::fs::write(root.join("A/one"), b"").unwrap();
        std::fs::write(root.join("A/B/two"), b"").unwrap();
        std::os::unix::fs::symlink(root.join("A/one"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(root, root.join("A/loop")).unwrap();
        let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
        assert_eq!(count_files(root, later).unwrap(), 3);
        let missing = root.join("nope");
        let (path, err) = count_files(&missing, later).unwrap_err();
        assert_eq!(path, missing);
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn sudo_refusals_are_recognised() {
        assert!(is_sudo_refusal("sudo: a password is required"));
        assert!(is_sudo_refusal(
            "sudo: user pfdtest is not allowed to execute '/usr/bin/find /x -type f' as postfix on host."
        ));
        assert!(!is_sudo_refusal(
            "find: '/var/spool/postfix/nope': No such file or directory"
        ));
    }
}
