//! The only place that starts a process. Every child gets an argv (never a shell), a cleared
//! environment, stdin from /dev/null and a process group of its own, so that a timeout or a
//! shutdown can end it and everything it started. Stdout is handed to a parser as it arrives,
//! in batches (`paced`); stderr is kept, bounded, for the error message.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::live::Live;
use crate::{paced, sys};

/// The PATH children see: the standard system directories only, never the daemon's own.
const CHILD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How much of a child's stderr is kept for the error message; the rest is read and dropped.
const STDERR_KEEP: usize = 4096;
/// Time a child gets between SIGTERM and SIGKILL. sudo needs the SIGTERM: it relays it to the
/// command it runs as another user, which we are not allowed to signal ourselves.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// The pipe buffer asked for a child's stdout: room for about 70 ms of postqueue's output, so
/// that `paced::read` can read it a few times a second without making postqueue wait.
const PIPE_WANTED: usize = 1024 * 1024;
/// The smallest pipe Linux makes (two pages), assumed if even asking for the size fails.
const PIPE_SMALLEST: usize = 8 * 1024;

/// A shutdown signal shared by every collection: `true` once the daemon stops.
pub type Cancel = watch::Receiver<bool>;

/// When a collection must be over, and whether the daemon is stopping: what every step of a
/// collection that may block (a child, a socket, postconf) is bounded by.
#[derive(Debug, Clone)]
pub struct Limits {
    pub deadline: Instant,
    pub cancel: Cancel,
    /// What of this instance outlives a run registers here (see `live`).
    pub live: Live,
}

/// Why work bounded by `Limits` ended before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    #[error("did not finish within {:.1}s", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("was stopped because the daemon is shutting down")]
    Cancelled,
}

/// The one deadline every step of a collection that may block goes through (a child, a walk,
/// the showq socket): `work` until it ends, the deadline passes or the daemon stops. `started`
/// is when the step began, for the message.
pub async fn within<F: std::future::Future>(
    limits: &Limits,
    started: Instant,
    work: F,
) -> Result<F::Output, Stopped> {
    let mut cancel = limits.cancel.clone();
    tokio::select! {
        out = work => Ok(out),
        () = tokio::time::sleep_until(limits.deadline) => {
            Err(Stopped::Timeout(limits.deadline.saturating_duration_since(started)))
        }
        _ = cancel.wait_for(|stop| *stop) => Err(Stopped::Cancelled),
    }
}

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl Command {
    pub fn new<I, S>(program: impl Into<PathBuf>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Command {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }
}

/// Shown in errors and logs as the argv joined by spaces, which is how sudoers and a person
/// would write it.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.program.display())?;
        for arg in &self.args {
            write!(f, " {}", arg.to_string_lossy())?;
        }
        Ok(())
    }
}

/// A child that ran to its end.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// The start of its stderr, lossily decoded, trimmed.
    pub stderr: String,
    /// Stderr was longer than what `stderr` keeps.
    pub stderr_cut: bool,
}

impl Finished {
    /// "exit status 69" or "killed by signal 9", for messages.
    pub fn describe_status(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => "unknown exit".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("`{command}` could not be started: {program} does not exist (install it, or set its path under `commands:`)")]
    NotFound { command: String, program: String },
    #[error("`{command}` could not be started")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("`{command}` did not finish within {:.1}s; its process group was killed", after.as_secs_f64())]
    Timeout { command: String, after: Duration },
    #[error("`{command}` was stopped because the daemon is shutting down")]
    Cancelled { command: String },
    #[error("reading the output of `{command}` failed")]
    Read {
        command: String,
        #[source]
        source: io::Error,
    },
}

/// Why a run produced no usable result: the process failed, or its output was rejected by the
/// parser (which stops the child at once).
#[derive(Debug)]
pub enum Failure<E> {
    Exec(ExecError),
    Output(E),
}

/// `cmd` as every child starts: argv, a cleared environment but for PATH and LC_ALL, stdin
/// from /dev/null, stdout and stderr piped, a process group of its own.
fn prepared(cmd: &Command) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    #[allow(clippy::disallowed_methods)] // this is the one place
    let mut command = std::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .env_clear()
        .env("PATH", CHILD_PATH)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    command
}

/// Why `cmd` could not be started: a missing program is named with the fix.
fn spawn_error(cmd: &Command, source: io::Error) -> ExecError {
    if source.kind() == io::ErrorKind::NotFound {
        ExecError::NotFound {
            command: cmd.to_string(),
            program: cmd.program.display().to_string(),
        }
    } else {
        ExecError::Spawn {
            command: cmd.to_string(),
            source,
        }
    }
}

/// Runs `cmd` until it exits, `deadline` passes or `cancel` turns true, feeding its stdout to
/// `on_stdout` chunk by chunk. On timeout or cancel the whole process group gets SIGTERM, then
/// SIGKILL after a grace period, and is reaped before this returns.
pub async fn run<E>(
    cmd: &Command,
    limits: &Limits,
    mut on_stdout: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<Finished, Failure<E>> {
    let deadline = limits.deadline;
    let shown = cmd.to_string();
    let mut command = tokio::process::Command::from(prepared(cmd));
    command.kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|source| Failure::Exec(spawn_error(cmd, source)))?;
    // The group ID is the child's PID (process_group(0)); the guard kills the group if this
    // future is dropped half-way, e.g. by the scheduler's last-resort timeout.
    let guard = GroupGuard(child.id());
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    // A second descriptor of stdout's read end: the pipe reaches its end only when the last
    // process holding its write end is gone, including one we may not kill (what sudo runs as
    // another user). See `witness`.
    let witness = std::sync::Mutex::new(stdout.as_fd().try_clone_to_owned().ok());
    // Output the parser rejects ends the run: then our read ends must all close, so that a
    // child that keeps writing gets SIGPIPE.
    let mut on_stdout = |chunk: &[u8]| {
        let verdict = on_stdout(chunk);
        if verdict.is_err() {
            drop(witness.lock().unwrap_or_else(|p| p.into_inner()).take());
        }
        verdict
    };
    let start = Instant::now();

    let work = async {
        let (out, err) = tokio::join!(
            read_stdout(stdout, &mut child, &mut on_stdout),
            read_bounded(&mut stderr)
        );
        (out, err)
    };
    let (out, err) = match within(limits, start, work).await {
        Ok(done) => done,
        Err(stopped) => {
            guard.terminate(&mut child).await;
            let witness = witness.lock().unwrap_or_else(|p| p.into_inner()).take();
            witness_until_closed(witness, &limits.live, &shown);
            return Err(Failure::Exec(match stopped {
                Stopped::Cancelled => ExecError::Cancelled { command: shown },
                Stopped::Timeout(after) => ExecError::Timeout {
                    command: shown,
                    after,
                },
            }));
        }
    };
    match out {
        Ok(Ok(())) => {}
        Ok(Err(parse)) => {
            guard.terminate(&mut child).await;
            return Err(Failure::Output(parse));
        }
        Err(source) => {
            guard.terminate(&mut child).await;
            let witness = witness.lock().unwrap_or_else(|p| p.into_inner()).take();
            witness_until_closed(witness, &limits.live, &shown);
            return Err(Failure::Exec(ExecError::Read {
                command: shown,
                source,
            }));
        }
    }
    // Both pipes are closed; the exit cannot be far, but a child that closed its pipes and
    // keeps running is still bound by the deadline.
    let status = match tokio::time::timeout_at(deadline, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(source)) => {
            guard.terminate(&mut child).await;
            return Err(Failure::Exec(ExecError::Read {
                command: shown,
                source,
            }));
        }
        Err(_) => {
            guard.terminate(&mut child).await;
            return Err(Failure::Exec(ExecError::Timeout {
                command: shown,
                after: deadline.saturating_duration_since(start),
            }));
        }
    };
    guard.disarm();
    let (err, stderr_cut) = err;
    Ok(Finished {
        status,
        stderr: String::from_utf8_lossy(&err).trim().to_owned(),
        stderr_cut,
    })
}

/// After a child was stopped, what it started may still live: sudo passes our SIGTERM on to the
/// command it runs as another user, but our SIGKILL cannot reach that command (EPERM), so a
/// command that ignores SIGTERM outlives its run. Until the last writer of its stdout is gone,
/// it counts as alive work of the instance (`Live`), and the instance starts no other run.
fn witness_until_closed(witness: Option<std::os::fd::OwnedFd>, live: &Live, command: &str) {
    let Some(fd) = witness else { return };
    let Ok(pipe) = tokio::net::unix::pipe::Receiver::from_file(std::fs::File::from(fd)) else {
        return;
    };
    // Already at its end (the usual case): nothing outlived the run. A few reads at most here;
    // a writer that keeps the pipe full is drained by the task below, not on this worker.
    let mut buf = [0u8; 4096];
    for _ in 0..16 {
        match pipe.try_read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return,
        }
    }
    let held = live.hold(format!("`{command}`, still running after it was stopped"));
    tracing::warn!(command, "a stopped command is still running (it may run as another user, out of our reach); this instance starts no new run until it ends");
    tokio::spawn(async move {
        let _held = held;
        let mut pipe = pipe;
        // Drained as it comes, so the command is never blocked writing to us.
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
}

/// Feeds a child's stdout to `sink` until EOF, or until the sink rejects a chunk: from an
/// enlarged pipe taken out of the reactor, on a clock (see `paced`).
async fn read_stdout<E>(
    stdout: tokio::process::ChildStdout,
    child: &mut tokio::process::Child,
    sink: &mut impl FnMut(&[u8]) -> Result<(), E>,
) -> io::Result<Result<(), E>> {
    let fd = stdout.into_owned_fd()?;
    sys::set_nonblocking(fd.as_fd())?;
    let room = sys::set_pipe_size(fd.as_fd(), PIPE_WANTED).unwrap_or(PIPE_SMALLEST);
    // Reaping the child here, before its output ends, is safe for the group kills that may
    // follow: while any member of the group lives, the kernel keeps its ID reserved.
    let exited = async {
        let _ = child.wait().await;
    };
    paced::read(&mut std::fs::File::from(fd), room, exited, sink).await
}

/// Reads a stream to EOF, keeping only its first `STDERR_KEEP` bytes, and whether there was
/// more. A read error just ends it: stderr only ever decorates a message.
async fn read_bounded(stream: &mut (impl AsyncRead + Unpin)) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = STDERR_KEEP.saturating_sub(kept.len());
        cut |= n > room;
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    (kept, cut)
}

/// A child read without blocking (or with a deadline) by a caller on its own clock, on a
/// blocking thread (`journalctl`, from the log task). It starts like every child (argv, cleared
/// environment, stdin from /dev/null, its own process group); dropping it ends the group
/// (SIGTERM, then SIGKILL after [`KILL_GRACE`]) and reaps the child.
#[derive(Debug)]
pub struct Stream {
    child: std::process::Child,
    shown: String,
    stdout: std::fs::File,
    stderr: std::fs::File,
    /// The start of its stderr so far.
    kept: Vec<u8>,
}

impl Stream {
    /// Starts `cmd` with its stdout and stderr in non-blocking pipes.
    pub fn start(cmd: &Command) -> Result<Stream, ExecError> {
        let shown = cmd.to_string();
        let mut child = prepared(cmd)
            .spawn()
            .map_err(|source| spawn_error(cmd, source))?;
        let pipes = (child.stdout.take(), child.stderr.take());
        let (Some(out), Some(err)) = pipes else {
            unreachable!("both are piped")
        };
        let (stdout, stderr) = (
            std::fs::File::from(OwnedFd::from(out)),
            std::fs::File::from(OwnedFd::from(err)),
        );
        let nonblocking = sys::set_nonblocking(stdout.as_fd())
            .and_then(|()| sys::set_nonblocking(stderr.as_fd()));
        let stream = Stream {
            child,
            shown,
            stdout,
            stderr,
            kept: Vec::new(),
        };
        if let Err(source) = nonblocking {
            // Dropping the stream ends the child.
            return Err(ExecError::Spawn {
                command: stream.shown.clone(),
                source,
            });
        }
        // A bigger pipe lets the child run ahead between two reads; the default is fine too.
        let _ = sys::set_pipe_size(stream.stdout.as_fd(), PIPE_WANTED);
        Ok(stream)
    }

    /// What was started, as shown in messages.
    pub fn command(&self) -> &str {
        &self.shown
    }

    /// Reads what stdout holds now into `buf`: `Ok(0)` at its end (the child closed it),
    /// `WouldBlock` when nothing is there yet.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::Read;
        self.keep_stderr();
        self.stdout.read(buf)
    }

    /// Reads what stdout holds, waiting for it until `deadline`: `Ok(Some(0))` at its end,
    /// `Ok(None)` when the deadline passed first.
    pub fn read_until(
        &mut self,
        buf: &mut [u8],
        deadline: std::time::Instant,
    ) -> io::Result<Option<usize>> {
        loop {
            match self.read(buf) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    // Stderr is drained between waits, so a child that writes a lot of it
                    // never blocks on it while we wait for stdout.
                    sys::wait_readable(self.stdout.as_fd(), left.min(Duration::from_millis(200)))?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The start of what the child wrote to stderr so far, trimmed.
    pub fn stderr(&mut self) -> String {
        self.keep_stderr();
        String::from_utf8_lossy(&self.kept).trim().to_owned()
    }

    /// Whether the child has exited, and how; it is reaped then.
    pub fn exited(&mut self) -> Option<Finished> {
        let status = self.child.try_wait().ok().flatten()?;
        let cut = self.keep_stderr();
        Some(Finished {
            status,
            stderr: String::from_utf8_lossy(&self.kept).trim().to_owned(),
            stderr_cut: cut,
        })
    }

    /// Reads what stderr holds now, keeping its first `STDERR_KEEP` bytes: a child that writes
    /// more is never blocked on it. Whether some was dropped.
    fn keep_stderr(&mut self) -> bool {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        let mut cut = self.kept.len() >= STDERR_KEEP;
        while let Ok(n) = self.stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = STDERR_KEEP.saturating_sub(self.kept.len());
            cut |= n > room;
            self.kept.extend_from_slice(&buf[..n.min(room)]);
        }
        cut
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let pgid = self.child.id();
        if self.child.try_wait().ok().flatten().is_none() {
            sys::kill_group(pgid, sys::SIGTERM);
            let end = std::time::Instant::now() + KILL_GRACE;
            while std::time::Instant::now() < end {
                if self.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        sys::kill_group(pgid, sys::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Kills a child's process group when dropped while armed.
struct GroupGuard(Option<u32>);

impl GroupGuard {
    /// SIGTERM to the group, SIGKILL after the grace period, then reap the child.
    async fn terminate(mut self, child: &mut tokio::process::Child) {
        if let Some(pgid) = self.0.take() {
            sys::kill_group(pgid, sys::SIGTERM);
            if tokio::time::timeout(KILL_GRACE, child.wait())
                .await
                .is_err()
            {
                sys::kill_group(pgid, sys::SIGKILL);
                let _ = child.wait().await;
            }
            // Whatever else the child left in its group goes too.
            sys::kill_group(pgid, sys::SIGKILL);
        }
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // tokio's kill_on_drop reaps the child itself; this reaches its descendants.
            sys::kill_group(pgid, sys::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        Command::new("/bin/sh", ["-c", script])
    }

    fn never() -> (watch::Sender<bool>, Cancel) {
        watch::channel(false)
    }

    fn limits(secs: u64, cancel: &Cancel) -> Limits {
        Limits {
            deadline: Instant::now() + Duration::from_secs(secs),
            cancel: cancel.clone(),
            live: Live::default(),
        }
    }

    #[tokio::test]
    async fn what_outlives_a_stopped_command_is_alive_until_it_ends() {
        // As with sudo: the command runs in a group our kill does not reach, ignores SIGTERM,
        // and holds stdout for 3 s after its run gave up.
        let cmd = sh("setsid sh -c 'trap \"\" TERM; sleep 3' & echo start; sleep 100");
        let (_keep, cancel) = never();
        let limits = limits(1, &cancel);
        let err = run(&cmd, &limits, |_| Ok::<(), ()>(())).await.unwrap_err();
        assert!(
            matches!(err, Failure::Exec(ExecError::Timeout { .. })),
            "{err:?}"
        );
        let alive = limits
            .live
            .describe()
            .expect("the stray command counts as alive");
        assert!(
            alive.contains("still running after it was stopped"),
            "{alive}"
        );
        // It ends on its own; then nothing of the run lives.
        let mut gone = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if limits.live.describe().is_none() {
                gone = true;
                break;
            }
        }
        assert!(gone, "still alive: {:?}", limits.live.describe());
        // A command that ends with its group leaves nothing behind (once the kernel has
        // finished off what SIGTERM reached).
        let limits = super::tests::limits(1, &cancel);
        let _ = run(&sh("sleep 100"), &limits, |_| Ok::<(), ()>(())).await;
        let mut gone = false;
        for _ in 0..50 {
            if limits.live.describe().is_none() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "still alive: {:?}", limits.live.describe());
    }

    #[tokio::test]
    async fn many_small_writes_arrive_whole_in_few_reads() {
        // dash's echo is a builtin that writes each line at once: 20,000 writes, like postqueue.
        let cmd = sh("i=0; while [ $i -lt 20000 ]; do echo \"line $i\"; i=$((i+1)); done");
        let (_keep, cancel) = never();
        let mut got = Vec::new();
        let mut reads = 0;
        let done = run(&cmd, &limits(30, &cancel), |chunk| {
            reads += 1;
            got.extend_from_slice(chunk);
            Ok::<(), ()>(())
        })
        .await
        .unwrap();
        assert!(done.status.success());
        let text = String::from_utf8(got).unwrap();
        assert_eq!(text.lines().count(), 20_000);
        assert_eq!(text.lines().last(), Some("line 19999"));
        // Read on a clock, not per write: a reader woken per write makes thousands of reads.
        assert!(reads < 2_000, "{reads} reads for 20,000 writes");
    }

    #[tokio::test]
    async fn a_grandchild_holding_stdout_after_the_child_exits_meets_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let cmd = sh(&format!(
            "echo start; sleep 1000 & echo $! > {}; exit 0",
            pidfile.display()
        ));
        let (_keep, cancel) = never();
        let mut got = Vec::new();
        let err = run(&cmd, &limits(2, &cancel), |chunk| {
            got.extend_from_slice(chunk);
            Ok::<(), ()>(())
        })
        .await
        .unwrap_err();
        assert!(
            matches!(err, Failure::Exec(ExecError::Timeout { .. })),
            "{err:?}"
        );
        assert_eq!(got, b"start\n");
        let pid: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed with the group; give the kernel a moment to finish it off.
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |st| st.contains(") Z"))
        });
        assert!(gone, "grandchild {pid} still running");
    }

    #[tokio::test]
    async fn a_rejected_chunk_stops_the_child() {
        let cmd = sh("while :; do echo y; done");
        let (_keep, cancel) = never();
        let err = run(&cmd, &limits(30, &cancel), |_| Err("no thanks"))
            .await
            .unwrap_err();
        assert!(matches!(err, Failure::Output("no thanks")), "{err:?}");
    }
}
