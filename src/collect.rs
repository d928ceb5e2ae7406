//! Collection: one file per collecting method, one enum arm each (and `Unavailable`, for an
//! instance whose method could not be set up). Every method fills the same
//! [`Snapshot`]; how it gets there (fork, socket, directory walk) is its own business.

pub mod auto;
pub mod find;
pub mod postqueue;
pub mod scan;
pub mod showq;

use tokio::time::Instant;

use crate::exec::Cancel;
use crate::snapshot::Snapshot;

/// A configured collection method with the state it keeps between cycles.
#[derive(Debug)]
pub enum Method {
    Find(find::Find),
    Postqueue(postqueue::Postqueue),
    Showq(showq::Showq),
    Scan(scan::Scan),
    Auto(auto::Auto),
    /// Cannot run; every collection reports this.
    Unavailable(String),
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
}

/// When a collection must be over, and whether the daemon is stopping.
#[derive(Debug, Clone)]
pub struct Limits {
    pub deadline: Instant,
    pub cancel: Cancel,
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Find(#[from] find::Error),
    #[error(transparent)]
    Postqueue(#[from] postqueue::Error),
    #[error(transparent)]
    Showq(#[from] showq::Error),
    #[error(transparent)]
    Scan(#[from] scan::Error),
    #[error("{0}")]
    Unavailable(String),
    /// A run that overstayed even the kill of its children.
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
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
}

impl Method {
    /// The name used in the config (`method:`), logs and the `check` table.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Find(_) => "find",
            Method::Postqueue(_) => "postqueue",
            Method::Showq(_) => "showq",
            Method::Scan(_) => "scan",
            Method::Auto(_) => "auto",
            Method::Unavailable(_) => "unavailable",
        }
    }

    pub async fn collect(&mut self, limits: &Limits) -> Collection {
        match self {
            Method::Find(m) => m.collect(limits).await,
            Method::Postqueue(m) => m.collect(limits).await,
            Method::Showq(m) => m.collect(limits).await,
            Method::Scan(m) => m.collect(limits).await,
            Method::Auto(m) => m.collect(limits).await,
            Method::Unavailable(why) => Collection {
                errors: vec![CollectError::Unavailable(why.clone())],
                ..Collection::default()
            },
        }
    }
}

/// Queue directories are at most a few levels deep (hash_queue_depth is at most 16).
const MAX_DEPTH: usize = 32;

/// A directory that could not be read, or a file `visit` failed on: the path and why.
pub type WalkError = (std::path::PathBuf, std::io::Error);

/// Calls `visit` for every regular file below `root`, recursively, without following symbolic
/// links. A file or directory that vanishes while we look (a message being delivered) is
/// skipped; any other error, from the walk or from `visit`, stops it.
pub fn walk_files(
    root: &std::path::Path,
    mut visit: impl FnMut(&std::fs::DirEntry) -> std::io::Result<()>,
) -> Result<(), WalkError> {
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        read_dir_level(&dir, depth, &mut stack, &mut visit)?;
    }
    Ok(())
}

/// One directory of a walk: `visit` for each regular file, each subdirectory pushed onto
/// `subdirs` with its depth. The walk's root (depth 0) must exist; below it, what vanishes
/// while we look is skipped.
pub fn read_dir_level(
    dir: &std::path::Path,
    depth: usize,
    subdirs: &mut Vec<(std::path::PathBuf, usize)>,
    visit: &mut impl FnMut(&std::fs::DirEntry) -> std::io::Result<()>,
) -> Result<(), WalkError> {
    use std::io::ErrorKind::NotFound;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == NotFound && depth > 0 => return Ok(()),
        Err(e) => return Err((dir.to_path_buf(), e)),
    };
    for entry in entries {
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
                    std::io::Error::other(format!("deeper than {MAX_DEPTH} levels")),
                ));
            }
            subdirs.push((entry.path(), depth + 1));
        }
    }
    Ok(())
}

/// Splits a byte stream into lines as it arrives, holding at most one partial line of at most
/// `max` bytes: a longer line is an error, so a hostile or broken producer cannot make us
/// buffer without bound.
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    max: usize,
    line_no: u64,
}

/// A partial-line buffer larger than this is freed after use rather than kept.
const KEEP_CAPACITY: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} is longer than {max} bytes")]
pub struct LineTooLong {
    pub line: u64,
    pub max: usize,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        LineSplitter {
            partial: Vec::new(),
            max,
            line_no: 0,
        }
    }

    /// Calls `each(line_number, line)` for every complete line in `chunk` (without its `\n`).
    pub fn feed<E: From<LineTooLong>>(
        &mut self,
        mut chunk: &[u8],
        mut each: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            let (head, rest) = chunk.split_at(pos);
            chunk = &rest[1..];
            self.line_no += 1;
            if self.partial.is_empty() {
                self.check_len(head.len())?;
                each(self.line_no, head)?;
            } else {
                self.check_len(self.partial.len() + head.len())?;
                self.partial.extend_from_slice(head);
                let line = std::mem::take(&mut self.partial);
                each(self.line_no, &line)?;
                // Keep the buffer for the next partial line, unless a rare long line grew it.
                if line.capacity() <= KEEP_CAPACITY {
                    self.partial = line;
                    self.partial.clear();
                }
            }
        }
        if !chunk.is_empty() {
            self.check_len(self.partial.len() + chunk.len())
                .map_err(|mut e| {
                    e.line += 1;
                    e
                })?;
            self.partial.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// Ends the stream: a last line without `\n` is still a line.
    pub fn finish<E>(
        &mut self,
        mut each: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.partial.is_empty() {
            return Ok(());
        }
        self.line_no += 1;
        let line = std::mem::take(&mut self.partial);
        each(self.line_no, &line)
    }

    fn check_len(&self, len: usize) -> Result<(), LineTooLong> {
        if len > self.max {
            Err(LineTooLong {
                line: self.line_no,
                max: self.max,
            })
        } else {
            Ok(())
        }
    }
}

/// The first `max` characters of a line, for error messages.
pub fn excerpt(line: &[u8]) -> String {
    const MAX: usize = 80;
    let text = String::from_utf8_lossy(line);
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]], max: usize) -> Result<Vec<(u64, String)>, LineTooLong> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |n, l| {
                out.push((n, String::from_utf8_lossy(l).into_owned()));
                Ok::<_, LineTooLong>(())
            })?;
        }
        s.finish(|n, l| {
            out.push((n, String::from_utf8_lossy(l).into_owned()));
            Ok::<_, LineTooLong>(())
        })?;
        Ok(out)
    }

    #[test]
    fn lines_across_chunks() {
        let got = lines(&[b"ab", b"c\nde\n\nf", b"g"], 10).unwrap();
        let want: Vec<(u64, String)> = vec![
            (1, "abc".into()),
            (2, "de".into()),
            (3, "".into()),
            (4, "fg".into()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn long_line_is_an_error_even_when_split() {
        assert_eq!(
            lines(&[b"12345", b"678\n"], 6),
            Err(LineTooLong { line: 1, max: 6 })
        );
        assert_eq!(
            lines(&[b"ok\n1234567"], 6),
            Err(LineTooLong { line: 2, max: 6 })
        );
        assert!(lines(&[b"123456\n"], 6).is_ok());
    }
}
