//! Helpers shared by the integration tests: a scratch directory with fake Postfix instances,
//! real UDP and Unix datagram receivers, and the daemon binary run as a child process.
#![allow(dead_code, clippy::disallowed_methods, clippy::unwrap_used)] // each test file uses a part; tests start the real binary

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_postfix-dogstatsd")
}

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn fake(name: &str) -> String {
    repo("tests/fake-bin").join(name).display().to_string()
}

pub fn is_root() -> bool {
    // SAFETY-free: /proc tells us our effective uid.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A temporary directory readable by everyone (tests may run the daemon as `nobody`).
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("pfdd-test-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        p
    }

    /// A fake Postfix config directory for tests/fake-bin/postqueue: `mode` and the listings.
    pub fn postfix(
        &self,
        name: &str,
        mode: &str,
        json: Option<&str>,
        text: Option<&str>,
    ) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        self.write(&format!("{name}/mode"), mode);
        if let Some(f) = json {
            self.write(
                &format!("{name}/listing-j"),
                std::fs::read(repo(f)).unwrap(),
            );
        }
        if let Some(f) = text {
            self.write(
                &format!("{name}/listing-p"),
                std::fs::read(repo(f)).unwrap(),
            );
        }
        dir
    }

    /// A config using the fake commands, with `body` (YAML) after it. The fakes (and the
    /// binary, see `bin_copy`) are copied here so that a test running the daemon as `nobody`
    /// can execute them wherever the checkout is.
    pub fn config(&self, body: &str) -> PathBuf {
        let mut text = String::from("commands:\n");
        for name in ["postqueue", "postconf", "sudo"] {
            let to = self.path(&format!("bin/{name}"));
            if !to.exists() {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(fake(name), &to).unwrap();
            }
            text.push_str(&format!("  {name}: {}\n", to.display()));
        }
        text.push_str(body);
        let p = self.write("config.yaml", text);
        // Run as root, the daemon refuses a config others may write (as sshd's StrictModes).
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// The daemon binary, copied where any user may run it.
    pub fn bin_copy(&self) -> PathBuf {
        let to = self.path("bin/postfix-dogstatsd");
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(bin(), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
        to
    }
}

/// What the test runner's own environment could slip into what the binary sends or logs: every
/// binary the tests start runs without them (a test sets what it tests).
const OUTSIDE_ENV: [&str; 8] = [
    "DD_DOGSTATSD_URL",
    "DD_AGENT_HOST",
    "DD_DOGSTATSD_PORT",
    "DD_ENV",
    "DD_SERVICE",
    "DD_VERSION",
    "DD_ENTITY_ID",
    "RUST_LOG",
];

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).stdin(Stdio::null());
    for var in OUTSIDE_ENV {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Replaces what changes from run to run (durations) so output can be compared to a golden file.
pub fn mask(text: &str, scratch: &Scratch) -> String {
    let dir = scratch.dir.path().display().to_string();
    let mut out = String::new();
    let secs = regex::Regex::new(r", \d+\.\d+ s\)").unwrap();
    for line in text
        .replace(&dir, "<scratch>")
        .replace(&repo("").display().to_string(), "<repo>/")
        .lines()
    {
        // Durations, and ages (they grow as the captures get older).
        let timed = [
            "postfix.collection.duration:",
            "postfix.queue.oldest_age:",
            "postfix.queue.older_than:",
        ];
        let line = if let Some(name) = timed.iter().find(|n| line.starts_with(**n)) {
            let tail = line.split_once('|').map_or("", |(_, t)| t);
            format!("{name}<n>|{tail}")
        } else if let Some(m) = secs.find(line) {
            // "(postqueue -j, 0.007 s)", however long it took on a loaded machine.
            format!("{}, <secs> s){}", &line[..m.start()], &line[m.end()..])
        } else {
            line.to_owned()
        };
        // The OLDEST(s) column of the check table grows too.
        let cols: Vec<&str> = line.split_whitespace().collect();
        let line = if line.starts_with("  ")
            && cols.len() == 5
            && cols[1..].iter().all(|c| c.parse::<u64>().is_ok())
        {
            format!(
                "  {:<10} {:>10} {:>12} {:>10} {:>10}",
                cols[0], cols[1], cols[2], cols[3], "<n>"
            )
        } else {
            line
        };
        // The sudoers line names whoever ran the test.
        let line = match line.split_once("add to sudoers: `") {
            Some((head, rest)) => format!(
                "{head}add to sudoers: `<me>{}",
                &rest[rest.find(' ').unwrap_or(0)..]
            ),
            None => line,
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Compares with tests/golden/<name>; UPDATE_GOLDEN=1 rewrites it.
pub fn golden(name: &str, actual: &str) {
    let path = repo("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing; run with UPDATE_GOLDEN=1", path.display()));
    if expected != actual {
        panic!(
            "{} differs (UPDATE_GOLDEN=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}

/// Lines received on a real socket.
pub trait Receiver {
    fn recv_datagram(&self, timeout: Duration) -> Option<Vec<u8>>;

    /// Collects lines until `done(lines so far)` or the timeout; returns what came.
    fn lines_until(&self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let end = Instant::now() + timeout;
        let mut lines = Vec::new();
        while !done(&lines) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Some(d) = self.recv_datagram(left.min(Duration::from_millis(200))) {
                let text = String::from_utf8(d).expect("datagrams are UTF-8");
                lines.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
            }
        }
        lines
    }
}

pub struct Udp {
    pub socket: UdpSocket,
}

impl Udp {
    pub fn new() -> Udp {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        grow_receive_buffer(&socket);
        Udp { socket }
    }

    pub fn url(&self) -> String {
        format!("udp://{}", self.socket.local_addr().unwrap())
    }
}

/// A flush of the log wing is a burst of a few hundred datagrams, read here by a test thread
/// that shares two cores with the daemon and a writer: the default receive buffer (about 200
/// KiB) overflowed in the logrotate tests (the kernel's RcvbufErrors counted the drops). 8 MiB
/// (SO_RCVBUFFORCE as root, as CI runs; else up to the system's rmem_max) holds any flush.
#[allow(unsafe_code)] // std has no setter for the receive buffer; one setsockopt call
fn grow_receive_buffer(socket: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let bytes: libc::c_int = 8 << 20;
    let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt on a live socket with a pointer to an int that outlives the call.
        let done = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&bytes as *const libc::c_int).cast(),
                size,
            )
        };
        if done == 0 {
            return;
        }
    }
}

impl Receiver for Udp {
    fn recv_datagram(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.socket
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .unwrap();
        recv_bounded(|buf| self.socket.recv(buf), 1432, "UDP")
    }
}

/// One datagram, asserted to fit the size the daemon promises for that kind of socket.
fn recv_bounded(
    recv: impl FnOnce(&mut [u8]) -> std::io::Result<usize>,
    max: usize,
    kind: &str,
) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    let n = recv(&mut buf).ok()?;
    assert!(n <= max, "a {kind} datagram of {n} bytes: more than {max}");
    buf.truncate(n);
    Some(buf)
}

pub struct Unix {
    pub path: PathBuf,
    pub socket: UnixDatagram,
}

impl Unix {
    pub fn new(path: PathBuf) -> Unix {
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        Unix { path, socket }
    }

    pub fn url(&self) -> String {
        format!("unix://{}", self.path.display())
    }
}

impl Receiver for Unix {
    fn recv_datagram(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.socket
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .unwrap();
        recv_bounded(|buf| self.socket.recv(buf), 8192, "Unix")
    }
}

/// The daemon running in the background, its stderr collected.
pub struct Daemon {
    pub child: Child,
    logs: Arc<Mutex<String>>,
}

impl Daemon {
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_with(Command::new(bin()), config)
    }

    pub fn start_with(mut cmd: Command, config: &Path) -> Daemon {
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC"] {
            cmd.env_remove(var);
        }
        Daemon::start_keeping_env(cmd, config)
    }

    /// Like `start_with`, but keeps what `cmd` sets (NOTIFY_SOCKET, WATCHDOG_USEC).
    pub fn start_keeping_env(mut cmd: Command, config: &Path) -> Daemon {
        cmd.args(["run", "--config"])
            .arg(config)
            .args(["--log-level", "debug"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for var in OUTSIDE_ENV {
            cmd.env_remove(var);
        }
        let mut child = cmd.spawn().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Daemon { child, logs }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a process is still there (a zombie waiting for init to reap it counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

pub fn read_pid(path: &Path, timeout: Duration) -> u32 {
    let end = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(Instant::now() < end, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lines that carry `tag`.
pub fn tagged<'a>(lines: &'a [String], tag: &str) -> Vec<&'a String> {
    lines
        .iter()
        .filter(|l| {
            l.split("|#")
                .nth(1)
                .is_some_and(|t| t.split(['|', ',']).any(|x| x == tag))
        })
        .collect()
}

pub fn count_service_checks(lines: &[String], tag: &str) -> usize {
    tagged(lines, tag)
        .iter()
        .filter(|l| l.starts_with("_sc|"))
        .count()
}

/// A queue a hostile or careless sender can make: three ordinary deferred messages and a
/// newsletter of 140,000 recipients, each with its delay reason, queue ID `NEWSLETTER1`; as
/// `postqueue -j` lists it (the newsletter some 13.7 MB on one line) and as showq's attribute
/// stream says it.
pub fn newsletter_queue() -> (Vec<u8>, Vec<u8>) {
    let reason = "connect to mx.example.com[192.0.2.10]:25: Connection refused";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (mut json, mut attr) = (
        Vec::new(),
        b"protocol\0mail_queue_list_protocol\0\0".to_vec(),
    );
    for (id, recipients) in [
        ("4C0D6280E1", 1),
        ("NEWSLETTER1", 140_000),
        ("4C0D6280E2", 2),
        ("4C0D6280E3", 3),
    ] {
        let (arrival, size) = (now - 600, 1000);
        json.extend_from_slice(format!("{{\"queue_name\": \"deferred\", \"queue_id\": \"{id}\", \"arrival_time\": {arrival}, \"message_size\": {size}, \"forced_expire\": false, \"sender\": \"news@example.com\", \"recipients\": [").as_bytes());
        attr.extend_from_slice(format!("queue_name\0deferred\0queue_id\0{id}\0time\0{arrival}\0size\0{size}\0sender\0news@example.com\0").as_bytes());
        for i in 0..recipients {
            let sep = if i == 0 { "" } else { ", " };
            json.extend_from_slice(
                format!(
                    "{sep}{{\"address\": \"user{i}@d{}.example\", \"delay_reason\": \"{reason}\"}}",
                    i % 7
                )
                .as_bytes(),
            );
            attr.extend_from_slice(
                format!("recipient\0user{i}@d{}.example\0reason\0{reason}\0", i % 7).as_bytes(),
            );
        }
        json.extend_from_slice(b"]}\n");
        attr.push(0);
    }
    attr.push(0);
    (json, attr)
}

/// Lines of the captured Postfix 3.7.11 log, without its comments.
pub fn captured_log() -> String {
    let text =
        std::fs::read_to_string(repo("tests/fixtures/logs/maillog-postfix-3.7.11.log")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `n` delivery lines with `status`, as Postfix writes them (SPEC 7.2), under `syslog_name`.
pub fn status_lines(syslog_name: &str, status: &str, n: usize) -> String {
    let (dsn, text) = match status {
        "sent" => ("2.0.0", "delivered to mailbox"),
        _ => ("5.1.1", "unknown user: \"nosuchuser\""),
    };
    (0..n)
        .map(|i| {
            format!("Dec 01 20:46:{:02} localhost {syslog_name}/local[17699]: B10D1B84E{}: to=<u{i}@localhost>, relay=local, delay=0.01, delays=0/0/0/0, dsn={dsn}, status={status} ({text})\n", i % 60, i % 10)
        })
        .collect()
}

/// systemd-journal-remote writes real journal files from journald's export format, so the
/// journal source is tested on what journalctl really reads, without a running journald.
/// .ci/run installs it (Debian's systemd-journal-remote).
pub fn journal_remote() -> Option<&'static str> {
    let path = "/lib/systemd/systemd-journal-remote";
    if Path::new(path).exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none() && std::env::var_os("POSTFIX_E2E").is_none(),
        "{path} is missing: apt-get install systemd-journal-remote"
    );
    eprintln!("skipped: {path} is missing (apt-get install systemd-journal-remote)");
    None
}

/// Appends syslog `lines` (`Mmm dd hh:mm:ss host ident[pid]: text`) to the journal file
/// `file` as journald keeps them: identifier and message apart, facility `facility`. A line
/// holding `\u{fffd}` gets a 0xff byte there instead, which journalctl shows as an array of
/// byte numbers.
pub fn journal_append(remote: &str, file: &Path, lines: &str, facility: u8) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    journal_append_at(remote, file, lines, facility, now);
}

/// `journal_append` with journald's receive time `at` (microseconds since the epoch), one
/// microsecond apart.
pub fn journal_append_at(remote: &str, file: &Path, lines: &str, facility: u8, at: u64) {
    use std::io::Write;
    let mut export = Vec::new();
    for (i, line) in lines.lines().enumerate() {
        let rest = line.splitn(5, ' ').nth(4).unwrap();
        let (head, text) = rest.split_once(": ").unwrap();
        let (ident, pid) = head.trim_end_matches(']').split_once('[').unwrap();
        let at = at + i as u64;
        write!(
            export,
            "__REALTIME_TIMESTAMP={at}\n__MONOTONIC_TIMESTAMP={at}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_TRANSPORT=syslog\nSYSLOG_FACILITY={facility}\nSYSLOG_IDENTIFIER={ident}\nSYSLOG_PID={pid}\n"
        )
        .unwrap();
        let message = text.replace('\u{fffd}', "\u{0}").into_bytes();
        let message: Vec<u8> = message
            .into_iter()
            .map(|b| if b == 0 { 0xff } else { b })
            .collect();
        export.extend_from_slice(b"MESSAGE\n");
        export.extend_from_slice(&(message.len() as u64).to_le_bytes());
        export.extend_from_slice(&message);
        export.extend_from_slice(b"\n\n");
    }
    let mut child = Command::new(remote)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&export).unwrap();
    assert!(child.wait().unwrap().success());
}
