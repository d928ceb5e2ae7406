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
use std::path::PathBuf;

use super::{walk_files, Collection, Limits};
use crate::postconf;

/// The queues, in the order the gauges are sent: the Datadog check's first.
pub const QUEUES: [&str; 6] = [
    "active", "hold", "deferred", "incoming", "maildrop", "corrupt",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_directory: PathBuf,
    pub postconf: PathBuf,
    /// The queue directory; when `None` it is read with postconf (hourly).
    pub queue_directory: Option<PathBuf>,
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
    #[error("the directory walk did not finish within the timeout")]
    Timeout,
    #[error("stopped: the daemon is shutting down")]
    Cancelled,
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
        let walk = tokio::task::spawn_blocking(move || {
            QUEUES.map(|queue| (queue, scan_queue(&dir.join(queue), queue)))
        });
        let mut cancel = limits.cancel.clone();
        let results = tokio::select! {
            joined = walk => joined,
            () = tokio::time::sleep_until(limits.deadline) => {
                collection.errors.push(Error::Timeout.into());
                return collection;
            }
            _ = cancel.wait_for(|stop| *stop) => {
                collection.errors.push(Error::Cancelled.into());
                return collection;
            }
        };
        let Ok(results) = results else {
            collection.errors.push(Error::Cancelled.into());
            return collection;
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

/// Counts the finished queue files under one queue directory.
pub fn scan_queue(root: &std::path::Path, queue: &str) -> Result<Counted, Error> {
    let mut counted = Counted::default();
    walk_files(root, |entry| {
        let meta = entry.metadata()?;
        // Owner rwx: Postfix's mark of a complete queue file.
        if meta.mode() & 0o700 == 0o700 {
            counted.files += 1;
            counted.bytes += meta.size();
        }
        Ok(())
    })
    .map_err(|(path, source)| {
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
    })?;
    Ok(counted)
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
        assert_eq!(
            scan_queue(&q, "deferred").unwrap(),
            Counted {
                files: 3,
                bytes: 121
            }
        );
        assert!(matches!(
            scan_queue(&dir.path().join("nope"), "nope"),
            Err(Error::Walk { .. })
        ));
    }
}
