//! Walking a queue directory: every regular file below a root, without following symbolic
//! links, skipping what vanishes while we look. Below every method that reads directories
//! (find's walk, scan), so none of them reaches into another for it.

use std::fs::{self, DirEntry};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How many entries of one directory are read between two looks at the clock.
const CHECK_EVERY: usize = 1024;
/// Queue directories are at most a few levels deep (hash_queue_depth is at most 16).
const MAX_DEPTH: usize = 32;

/// A directory that could not be read, or a file `visit` failed on: the path and why.
pub type WalkError = (PathBuf, io::Error);

/// Calls `visit` for every regular file below `root`, recursively, without following symbolic
/// links. A file or directory that vanishes while we look (a message being delivered) is
/// skipped; any other error, from the walk or from `visit`, stops it.
pub fn walk_files(
    root: &Path,
    deadline: Instant,
    mut visit: impl FnMut(&DirEntry) -> io::Result<()>,
) -> Result<(), WalkError> {
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        read_dir_level(&dir, depth, deadline, &mut stack, &mut visit)?;
    }
    Ok(())
}

/// A walk looks at the clock before each directory: one that runs past its deadline (a huge or
/// slow spool) stops there instead of living on after its run gave up on it.
pub fn check_deadline(dir: &Path, deadline: Instant) -> Result<(), WalkError> {
    if Instant::now() >= deadline {
        return Err((
            dir.to_path_buf(),
            io::Error::new(io::ErrorKind::TimedOut, "the walk reached its deadline"),
        ));
    }
    Ok(())
}

/// One directory of a walk: `visit` for each regular file, each subdirectory pushed onto
/// `subdirs` with its depth. The walk's root (depth 0) must exist; below it, what vanishes
/// while we look is skipped.
pub fn read_dir_level(
    dir: &Path,
    depth: usize,
    deadline: Instant,
    subdirs: &mut Vec<(PathBuf, usize)>,
    visit: &mut impl FnMut(&DirEntry) -> io::Result<()>,
) -> Result<(), WalkError> {
    use io::ErrorKind::NotFound;
    // A queue directory that is a symbolic link could point anywhere: never follow it.
    if depth == 0 && fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err((
            dir.to_path_buf(),
            io::Error::other("it is a symbolic link, which a walk does not follow"),
        ));
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == NotFound && depth > 0 => return Ok(()),
        Err(e) => return Err((dir.to_path_buf(), e)),
    };
    // Checked before the directory and every `CHECK_EVERY` entries in it: a flat queue (hold,
    // incoming, maildrop are not hashed by default) can hold a million files.
    check_deadline(dir, deadline)?;
    for (n, entry) in entries.enumerate() {
        if n % CHECK_EVERY == CHECK_EVERY - 1 {
            check_deadline(dir, deadline)?;
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.kind() == NotFound => continue,
            Err(e) => return Err((dir.to_path_buf(), e)),
        };
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) if e.kind() == NotFound => continue,
            Err(e) => return Err((entry.path(), e)),
        };
        if kind.is_file() {
            match visit(&entry) {
                Ok(()) => {}
                Err(e) if e.kind() == NotFound => {}
                Err(e) => return Err((entry.path(), e)),
            }
        } else if kind.is_dir() {
            if depth + 1 >= MAX_DEPTH {
                return Err((
                    entry.path(),
                    io::Error::other(format!("deeper than {MAX_DEPTH} levels")),
                ));
            }
            subdirs.push((entry.path(), depth + 1));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock is read inside a directory, not only between directories: a flat queue of
    /// thousands of files (hold, incoming, maildrop are not hashed) stops soon after its
    /// deadline, not at its end.
    #[test]
    fn a_flat_directory_stops_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..(CHECK_EVERY * 4) {
            std::fs::write(dir.path().join(format!("F{i}")), "").unwrap();
        }
        let deadline = Instant::now() + std::time::Duration::from_millis(50);
        let mut seen = 0;
        let err = walk_files(dir.path(), deadline, |_| {
            seen += 1;
            std::thread::sleep(std::time::Duration::from_micros(200));
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.1.kind(), io::ErrorKind::TimedOut, "{err:?}");
        // Past the deadline at most one more stretch of CHECK_EVERY entries is read.
        assert!(
            seen < CHECK_EVERY * 2,
            "{seen} of {} entries read",
            CHECK_EVERY * 4
        );
    }
}
