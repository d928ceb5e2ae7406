//! Where log lines come from: a followed file (`file`) or the systemd journal (`journal`).
//! Each source hands out whole lines and a position (a file offset, a journal cursor) that
//! the caller saves once the counts those lines produced are flushed. `window` reads the last
//! minutes of a file without a position, for `check`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

pub mod file;
pub mod journal;
pub mod window;

/// Writes `bytes` to `path` so that a crash leaves either the old or the new content, never a
/// mix: a temporary file beside it, fsync, rename over, fsync of the directory.
pub(crate) fn save_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    let tmp = dir.join(name);
    let written = File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        // A temporary file left behind would only be overwritten next time; still, tidy.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable only once the directory is.
    File::open(dir).and_then(|d| d.sync_all())
}
