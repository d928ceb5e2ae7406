//! Method `scan`: walk an instance's queue directories directly (no fork, no socket), counting
//! the finished queue files and their bytes in every queue, `corrupt` included. Queue files
//! being written (in incoming or maildrop) do not have all the owner permission bits yet:
//! Postfix sets rwx when a file is complete, so those are not counted.
//!
//! Reading the queue directories takes uid postfix or root, `CAP_DAC_READ_SEARCH`, or ACLs
//! granting read and search (README: Methods and permissions). Ages are not reported: they
//! would need the arrival record from inside each file, and file times are not arrival times
//! (qmgr sets deferred files' mtime into the future).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{Collection, InstanceSettings, Need, Reads};
use crate::exec::{Limits, Stopped};
use crate::postconf;
use crate::queue::SCANNED;
use crate::walk::{read_dir_level, WalkError};

/// Threads sharing one scan at most.
const SCAN_THREADS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_directory: PathBuf,
    pub postconf: PathBuf,
    /// The queue directory; when `None` it is read with postconf (hourly).
    pub queue_directory: Option<PathBuf>,
}

/// Scan walks every queue under the queue directory: `directory`, or postconf's.
pub const READS: Reads = Reads {
    config_directory: true,
    queue_directory: Need::Optional,
    queues: false,
    lists_messages: false,
};

impl From<&InstanceSettings> for Options {
    fn from(s: &InstanceSettings) -> Options {
        Options {
            config_directory: s.config_directory.clone(),
            postconf: s.commands.postconf.clone(),
            queue_directory: s.queue_directory.clone(),
        }
    }
}

#[derive(Debug)]
pub struct Scan {
    options: Options,
    postconf: postconf::Cache,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("queue {queue}: permission denied on {}: run as the postfix user, grant CAP_DAC_READ_SEARCH, or give this user read and search ACLs (README)", path.display())]
    Denied { queue: String, path: PathBuf },
    #[error("queue {queue}: cannot read {}", path.display())]
    Walk {
        queue: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the directory walk {0}")]
    Stopped(Stopped),
    #[error("cannot read the Postfix parameters")]
    Postconf(#[from] postconf::Error),
}

/// One queue's finished files and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub files: u64,
    pub bytes: u64,
}

impl Scan {
    pub fn new(options: Options) -> Self {
        Scan {
            postconf: postconf::Cache::new(&options.postconf, &options.config_directory),
            options,
        }
    }

    pub async fn collect(&mut self, limits: &Limits) -> Collection {
        let mut collection = Collection {
            how: "directory scan".to_owned(),
            ..Collection::default()
        };
        let dir = match &self.options.queue_directory {
            Some(dir) => dir.clone(),
            None => match self.postconf.get(limits).await {
                Ok(params) => {
                    collection.postfix_version = Some(params.mail_version);
                    params.queue_directory
                }
                Err(e) => {
                    collection.errors.push(Error::from(e).into());
                    return collection;
                }
            },
        };
        let held = limits.live.hold(format!("a scan of {}", dir.display()));
        let deadline = limits.deadline.into_std();
        let walk = tokio::task::spawn_blocking(move || {
            let _held = held;
            let results = scan_queues(&dir, &SCANNED, deadline);
            SCANNED.into_iter().zip(results)
        });
        let results = match crate::exec::within(limits, tokio::time::Instant::now(), walk).await {
            Ok(Ok(results)) => results,
            Ok(Err(join)) => {
                // The walk itself failed (a panic): say so, not "shutting down".
                collection.errors.push(
                    Error::Walk {
                        queue: "all".to_owned(),
                        path: PathBuf::new(),
                        source: std::io::Error::other(join.to_string()),
                    }
                    .into(),
                );
                return collection;
            }
            Err(stopped) => {
                collection.errors.push(Error::Stopped(stopped).into());
                return collection;
            }
        };
        for (queue, result) in results {
            match result {
                Ok(c) => collection.snapshot.add_counted(queue, c.files, c.bytes),
                Err(e) => collection.errors.push(e.into()),
            }
        }
        collection
    }
}

/// Directories of one scan waiting for a worker: (queue index, path, depth).
type Work = Vec<(usize, PathBuf, usize)>;

/// Counts the finished queue files under `<queue_directory>/<queue>` for each queue, with up to
/// `SCAN_THREADS` threads sharing the directories (deferred, most of the spool, is hashed into
/// subdirectories), since each file costs a stat that `find -type f` does not need.
pub fn scan_queues(
    queue_directory: &Path,
    queues: &[&str],
    deadline: std::time::Instant,
) -> Vec<Result<Counted, Error>> {
    let work: Mutex<Work> = Mutex::new(
        queues
            .iter()
            .enumerate()
            .map(|(i, q)| (i, queue_directory.join(q), 0))
            .collect(),
    );
    let busy = AtomicUsize::new(0);
    let totals: Mutex<Vec<Result<Counted, Error>>> =
        Mutex::new(queues.iter().map(|_| Ok(Counted::default())).collect());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(SCAN_THREADS));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| worker(queues, deadline, &work, &busy, &totals));
        }
    });
    totals.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn worker(
    queues: &[&str],
    deadline: std::time::Instant,
    work: &Mutex<Work>,
    busy: &AtomicUsize,
    totals: &Mutex<Vec<Result<Counted, Error>>>,
) {
    fn lock(m: &Mutex<Work>) -> std::sync::MutexGuard<'_, Work> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }
    loop {
        let next = {
            let mut w = lock(work);
            let next = w.pop();
            if next.is_some() {
                busy.fetch_add(1, Ordering::SeqCst);
            }
            next
        };
        let Some((q, dir, depth)) = next else {
            if busy.load(Ordering::SeqCst) == 0 && lock(work).is_empty() {
                return;
            }
            std::thread::yield_now();
            continue;
        };
        let mut found = Vec::new();
        let result = scan_dir(&dir, depth, deadline, &mut found);
        if !found.is_empty() {
            lock(work).extend(found.into_iter().map(|(d, depth)| (q, d, depth)));
        }
        {
            let mut t = totals.lock().unwrap_or_else(|p| p.into_inner());
            match (&mut t[q], result) {
                (Ok(total), Ok(c)) => {
                    total.files += c.files;
                    total.bytes += c.bytes;
                }
                (slot @ Ok(_), Err((path, source))) => *slot = Err(error(queues[q], path, source)),
                (Err(_), _) => {}
            }
        }
        busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One directory: its finished files counted, its subdirectories handed back.
fn scan_dir(
    dir: &Path,
    depth: usize,
    deadline: std::time::Instant,
    subdirs: &mut Vec<(PathBuf, usize)>,
) -> Result<Counted, WalkError> {
    let mut counted = Counted::default();
    read_dir_level(dir, depth, deadline, subdirs, &mut |entry| {
        let meta = entry.metadata()?;
        // Owner rwx: Postfix's mark of a complete queue file.
        if meta.mode() & 0o700 == 0o700 {
            counted.files += 1;
            counted.bytes += meta.size();
        }
        Ok(())
    })?;
    Ok(counted)
}

fn error(queue: &str, path: PathBuf, source: io::Error) -> Error {
    if source.kind() == io::ErrorKind::PermissionDenied {
        Error::Denied {
            queue: queue.to_owned(),
            path,
        }
    } else {
        Error::Walk {
            queue: queue.to_owned(),
            path,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn counts_only_finished_files_with_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("deferred");
        std::fs::create_dir_all(q.join("A")).unwrap();
        let file = |name: &str, mode: u32, len: usize| {
            let p = q.join(name);
            std::fs::write(&p, vec![b'x'; len]).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        file("A/done1", 0o700, 100);
        file("A/expire", 0o750, 20); // group-execute: forced to expire, still a message
        file("writing", 0o600, 999);
        file("done2", 0o700, 1);
        std::fs::create_dir_all(dir.path().join("hold/deep/er/still")).unwrap();
        std::fs::write(dir.path().join("hold/deep/er/still/x"), b"12").unwrap();
        std::fs::set_permissions(
            dir.path().join("hold/deep/er/still/x"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let got = scan_queues(dir.path(), &["deferred", "hold", "nope"], later);
        assert_eq!(
            got[0].as_ref().unwrap(),
            &Counted {
                files: 3,
                bytes: 121
            }
        );
        assert_eq!(got[1].as_ref().unwrap(), &Counted { files: 1, bytes: 2 });
        assert!(matches!(got[2], Err(Error::Walk { .. })));
    }
}
