//! The few POSIX calls std does not offer, each wrapped once so the rest of the crate stays
//! free of `unsafe`.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The effective user ID of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// The user ID of the account `name`, or `None` when no such account exists (or the lookup
/// failed, which for our purpose means the same: we cannot prove we are that user).
pub fn uid_of(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: all-zero is a valid bit pattern for `struct passwd` (pointers become null).
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: `cname` is NUL-terminated and outlives it,
    // `buf` is writable for its length, `pwd` and `result` are live locals.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some(pwd.pw_uid)
}

/// The name of the account with user ID `uid`, if it has one.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: as in `uid_of`: all-zero is a valid `struct passwd`.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: `buf` is writable for its length; `pwd` and `result` are live locals.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// Sends `signal` to every process of the process group `pgid`. Errors (the group is already
/// gone, or holds a process we may not signal) are ignored: the caller reaps what it started
/// and has nothing better to do about the rest.
pub fn kill_group(pgid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        // kill(0) or kill(-1) would hit our own group or every process we may signal.
        return;
    }
    // SAFETY: kill has no memory-safety preconditions; a negative pid names a process group.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Waits until `fd` can be read (or is at its end) or `timeout` passes: whether it can.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one pollfd that lives across the call, on a live descriptor.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(n > 0)
}

/// Puts `fd` in non-blocking mode: a read with nothing to return fails with `WouldBlock`.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on a live descriptor (the borrow guarantees it) with integer arguments.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks for a pipe buffer of `bytes` and returns the size the pipe has afterwards. Unprivileged
/// processes may go up to /proc/sys/fs/pipe-max-size (1 MiB by default) while their user stays
/// under pipe-user-pages-soft; past that the request fails and the pipe keeps its size, which
/// the kernel may already have cut to a few pages for a user over the limit.
pub fn set_pipe_size(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    let wanted = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: fcntl on a live descriptor with an integer argument.
    let granted = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, wanted) };
    if granted > 0 {
        return usize::try_from(granted).map_err(|_| io::Error::last_os_error());
    }
    // SAFETY: as above.
    let current = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) };
    usize::try_from(current).map_err(|_| io::Error::last_os_error())
}

/// The local time zone's offset from UTC, in seconds east, at the moment `unix` (seconds since
/// the epoch): what a syslog stamp without a zone was written in. 0 when the C library cannot
/// tell (no zone data: it then keeps UTC too).
// `time_t` and `tm_gmtoff` are 64-bit on the targets we build for, narrower on some others.
#[allow(clippy::useless_conversion)]
pub fn utc_offset(unix: i64) -> i64 {
    let t = libc::time_t::try_from(unix).unwrap_or(libc::time_t::MAX);
    // SAFETY: all-zero is a valid bit pattern for `struct tm` (integers and a null pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals for the duration of the call; localtime_r is
    // the reentrant form and keeps no pointer to them.
    let done = unsafe { libc::localtime_r(&t, &mut tm) };
    if done.is_null() {
        0
    } else {
        i64::from(tm.tm_gmtoff)
    }
}

/// Makes glibc's malloc give large buffers back to the system when they are freed. By default
/// glibc raises its mmap threshold each time a large block is freed, after which large line
/// buffers come from the heap and fragment it: the soak test saw RSS climb from 7 to 68 MiB
/// that way. A fixed threshold (which also stops the adjusting) and two arenas keep it flat.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

pub use libc::{SIGKILL, SIGTERM};

/// Gives the C allocator's free memory back to the system (glibc; elsewhere nothing): after a
/// burst of short-lived allocations on several threads (method scan's first read of a large
/// spool), what was freed otherwise stays in the process's arenas.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes a size and touches only the allocator's own state.
    unsafe {
        libc::malloc_trim(0);
    }
}
