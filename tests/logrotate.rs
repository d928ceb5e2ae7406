//! The log wing against the real logrotate (Debian's package, /usr/sbin/logrotate): a writer
//! appends 1,000 Postfix delivery lines a second while `logrotate -f` rotates the file, in
//! `create` (rename) mode and in `copytruncate` mode, and the daemon is stopped and started
//! again in the middle (SIGTERM; SIGKILL in a test of its own). What the DogStatsD receiver got
//! is compared with what was written.
//!
//! logrotate runs as whoever runs the tests, with its own state file (`-s`). Without it these
//! tests say they are skipped; with CI=true or POSTFIX_E2E=1 they fail instead (`.ci/run`
//! installs the package).
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

use common::*;

const LOGROTATE: &str = "/usr/sbin/logrotate";
/// Lines the writer appends a second.
const RATE: u64 = 1000;
/// The daemon's `flush_interval`, in seconds.
const FLUSH_SECS: u64 = 1;
const WAIT: Duration = Duration::from_secs(15);

fn logrotate_present(test: &str) -> bool {
    if Path::new(LOGROTATE).is_file() {
        return true;
    }
    let on = |var: &str, value: &str| std::env::var_os(var).is_some_and(|v| v == value);
    // Where the other real-service tests run, a skipped one would pass unseen: fail there.
    assert!(
        !on("CI", "true") && !on("POSTFIX_E2E", "1"),
        "{test}: {LOGROTATE} is missing, and CI=true or POSTFIX_E2E=1: the real-logrotate tests must run there (.ci/run installs the Debian package logrotate)"
    );
    // Straight to stderr: libtest captures eprintln! of passing tests, and a skip must show.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {LOGROTATE} is missing (apt-get install logrotate)"
    );
    false
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// logrotate's default: rename to `mail.log.1`, create a new `mail.log`, then tell the
    /// writer to reopen (as Debian's rsyslog setup does with a HUP in `postrotate`).
    Create,
    /// Copy to `mail.log.1`, then truncate `mail.log` in place; the writer never reopens.
    CopyTruncate,
}

/// Delivery status line number `n`, in the shapes Postfix 3.7 writes (the smtp deferral is
/// the one in tests/fixtures/logs/maillog-postfix-3.7.11.log; the local ones as SPEC 7.2),
/// each with its own queue ID and recipient, so that every line can be told apart in the
/// files logrotate leaves.
fn delivery_line(n: u64) -> String {
    let secs = 20 * 3600 + 46 * 60 + n / RATE;
    let stamp = format!(
        "Dec 01 {:02}:{:02}:{:02} localhost",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    );
    let id = format!("{:010X}", 0xC4_0000_0000 + n);
    match n % 3 {
        0 => format!("{stamp} postfix/smtp[17705]: {id}: to=<u{n}@example.net>, relay=none, delay=0.09, delays=0.05/0.04/0/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:2: Connection refused)\n"),
        1 => format!("{stamp} postfix/local[17699]: {id}: to=<u{n}@localhost>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)\n"),
        _ => format!("{stamp} postfix-out/local[17699]: {id}: to=<u{n}@localhost>, relay=local, delay=0.02, delays=0/0/0/0.01, dsn=5.1.1, status=bounced (unknown user: \"u{n}\")\n"),
    }
}

/// The line numbers found whole in the files at `paths` (those that exist). A copy may end in
/// the middle of a line (logrotate copies while the writer writes): that line is not kept.
fn lines_in(paths: &[PathBuf]) -> BTreeSet<u64> {
    let mut found = BTreeSet::new();
    for p in paths {
        let Ok(text) = std::fs::read_to_string(p) else {
            continue;
        };
        for l in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let n = l
                .split_once("to=<u")
                .and_then(|(_, rest)| rest.split_once('@'))
                .and_then(|(n, _)| n.parse().ok())
                .unwrap_or_else(|| panic!("not a line of ours in {}: {l:?}", p.display()));
            assert!(found.insert(n), "line {n} is twice in the files");
        }
    }
    found
}

/// Appends `delivery_line`s at `RATE` a second until stopped, each with one write(2) on a
/// descriptor opened with O_APPEND, as a syslog daemon does. With `reopen`, it opens the path
/// again before its next line once that flag file appears (and removes it): rsyslog reopens
/// its files on the HUP Debian's `postrotate` sends; here `postrotate` touches the flag.
/// Without, it keeps its first descriptor forever (what copytruncate is for).
struct Writer {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    reopened: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    fn start(path: PathBuf, reopen: Option<PathBuf>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let reopened = Arc::new(AtomicU64::new(0));
        let (s, w, r) = (stop.clone(), written.clone(), reopened.clone());
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
                .unwrap()
        };
        let mut file = open(&path);
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            let mut n = 0u64;
            while !s.load(Ordering::SeqCst) {
                let due = start.elapsed().as_millis() as u64 * RATE / 1000;
                while n < due {
                    if let Some(flag) = &reopen {
                        if std::fs::remove_file(flag).is_ok() {
                            file = open(&path);
                            r.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    file.write_all(delivery_line(n).as_bytes()).unwrap();
                    n += 1;
                    w.store(n, Ordering::SeqCst);
                }
                sleep(Duration::from_millis(2));
            }
        });
        Writer {
            stop,
            written,
            reopened,
            handle: Some(handle),
        }
    }

    fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }

    /// Stops it; the lines it wrote and how many times it reopened the file.
    fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.take().unwrap().join().unwrap();
        (self.written(), self.reopened.load(Ordering::SeqCst))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads the receiver on a thread of its own, from start to end: a flush of 1,000 lines is
/// some 80 datagrams, and a test that read only between its steps would overflow the socket
/// buffer and count losses of its own.
struct Collector {
    lines: Arc<Mutex<Vec<String>>>,
    /// Flush reports received (each ends with its service check).
    flushes: Arc<AtomicU64>,
    /// Reads that timed out: the socket was empty when each ended.
    idle: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Collector {
    fn start(udp: &Udp) -> Collector {
        let socket = udp.socket.try_clone().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let flushes = Arc::new(AtomicU64::new(0));
        let idle = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, f, i, s) = (lines.clone(), flushes.clone(), idle.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::SeqCst) {
                let Ok(n) = socket.recv(&mut buf) else {
                    i.fetch_add(1, Ordering::SeqCst);
                    continue;
                };
                assert!(n <= 1432, "a UDP datagram of {n} bytes");
                let text = String::from_utf8(buf[..n].to_vec()).unwrap();
                let mut l = l.lock().unwrap();
                for line in text.lines().filter(|x| !x.is_empty()) {
                    l.push(line.to_owned());
                    if line.starts_with("_sc|postfix.log.can_read|") {
                        f.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
        Collector {
            lines,
            flushes,
            idle,
            stop,
            handle: Some(handle),
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Recipients received so far, all daemons together.
    fn recipients(&self) -> u64 {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| recipients(l))
            .sum()
    }

    /// Waits until the next flush report has come in whole.
    fn next_flush(&self) {
        let seen = self.flushes.load(Ordering::SeqCst);
        let end = Instant::now() + WAIT;
        while self.flushes.load(Ordering::SeqCst) == seen {
            assert!(Instant::now() < end, "no flush in {WAIT:?}");
            sleep(Duration::from_micros(200));
        }
    }

    /// Waits until everything sent so far has been read: a read that ends empty-handed after
    /// now. (A datagram sent on the loopback is in the socket's queue when `send` returns.)
    fn drained(&self) {
        let seen = self.idle.load(Ordering::SeqCst);
        let end = Instant::now() + WAIT;
        while self.idle.load(Ordering::SeqCst) < seen + 2 {
            assert!(Instant::now() < end, "the receiver is never idle");
            sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the recipients received have not changed for three flush intervals (the
    /// writer has stopped: the daemon catches up, then every flush counts 0); their sum.
    fn settled(&self) -> u64 {
        let quiet = Duration::from_secs(3 * FLUSH_SECS);
        let end = Instant::now() + Duration::from_secs(30);
        let (mut last, mut since) = (self.recipients(), Instant::now());
        while Instant::now() < end && since.elapsed() < quiet {
            sleep(Duration::from_millis(100));
            let now = self.recipients();
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
        assert!(since.elapsed() >= quiet, "still counting after 30 s");
        last
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The recipients a `postfix.delivery.recipients` line counts; 0 for any other line.
fn recipients(line: &str) -> u64 {
    line.strip_prefix("postfix.delivery.recipients:")
        .and_then(|rest| rest.split_once('|'))
        .map_or(0, |(n, _)| n.parse().unwrap())
}

/// Recipients per `status:` value, for the failure messages.
fn by_status(lines: &[String]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for l in lines {
        let n = recipients(l);
        if let Some(status) = l
            .split_once("|#")
            .and_then(|(_, tags)| tags.split(',').find_map(|t| t.strip_prefix("status:")))
            .filter(|_| l.starts_with("postfix.delivery.recipients:"))
        {
            *out.entry(status.to_owned()).or_default() += n;
        }
    }
    out
}

/// What the test set up: the scratch directory, the receiver, the writer, logrotate's
/// config and the daemon's.
struct Rig {
    s: Scratch,
    log: PathBuf,
    collector: Collector,
    writer: Option<Writer>,
    rotate_conf: PathBuf,
    config: PathBuf,
    rotations: usize,
    /// Times the writer opened the file again (`create` mode: once a rotation).
    reopens: u64,
    /// The logs of the daemons that were stopped, for the failure messages.
    logs: String,
    _udp: Udp,
}

impl Rig {
    fn new(mode: Mode) -> Rig {
        let s = Scratch::new();
        let udp = Udp::new();
        let collector = Collector::start(&udp);
        s.postfix("good", "ok", None, None);
        let log = s.path("mail.log");
        let flag = s.path("reopen");
        let how = match mode {
            Mode::Create => format!(
                "create\n    postrotate\n        touch {}\n    endscript",
                flag.display()
            ),
            Mode::CopyTruncate => "copytruncate".to_owned(),
        };
        // logrotate refuses a config file others may write.
        let rotate_conf = s.write(
            "logrotate.conf",
            format!(
                "{} {{\n    rotate 5\n    missingok\n    nocompress\n    {how}\n}}\n",
                log.display()
            ),
        );
        std::fs::set_permissions(
            &rotate_conf,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        let writer = Writer::start(log.clone(), (mode == Mode::Create).then_some(flag));
        // The queue instance is asked once an hour: only the log wing speaks.
        let config = s.config(&format!(
            "dogstatsd:\n  url: {}\ninit_config:\n  postqueue: true\ninstances:\n  - config_directory: {}\n    min_collection_interval: 3600\nlog:\n  source: file\n  path: {}\n  state_directory: {}\n  start_at: beginning\n  flush_interval: {FLUSH_SECS}\n",
            udp.url(),
            s.path("good").display(),
            log.display(),
            s.path("state").display(),
        ));
        Rig {
            s,
            log,
            collector,
            writer: Some(writer),
            rotate_conf,
            config,
            rotations: 0,
            reopens: 0,
            logs: String::new(),
            _udp: udp,
        }
    }

    /// `logrotate -f` with its own state file, as root or not.
    fn rotate(&mut self) {
        let out = Command::new(LOGROTATE)
            .arg("-f")
            .arg("-s")
            .arg(self.s.path("logrotate.state"))
            .arg(&self.rotate_conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "logrotate failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
        self.rotations += 1;
        assert!(self.rotated(self.rotations.min(5)).is_file());
    }

    /// `mail.log.N`.
    fn rotated(&self, n: usize) -> PathBuf {
        self.s.path(&format!("mail.log.{n}"))
    }

    fn start(&self) -> Daemon {
        Daemon::start(&self.config)
    }

    /// SIGTERM: the last flush and the save happen before it exits 0.
    fn stop(&mut self, mut d: Daemon) {
        d.signal("TERM");
        assert_eq!(d.wait_exit(WAIT).and_then(|st| st.code()), Some(0));
        self.logs.push_str(&d.logs());
    }

    /// Stops the writer; the lines it wrote.
    fn stop_writing(&mut self) -> u64 {
        let (written, reopens) = self.writer.take().unwrap().stop();
        self.reopens = reopens;
        written
    }
}

/// Writes for about ten seconds while logrotate rotates five times, once while the daemon is
/// stopped (SIGTERM) and started again with the same config; waits until its counts settle.
/// Returns the rig, the lines written, the recipients counted and the daemon's logs.
fn rotate_and_restart(mode: Mode) -> (Rig, u64, u64, String) {
    let started = Instant::now();
    let mut rig = Rig::new(mode);
    let d = rig.start();
    sleep(Duration::from_millis(1500));
    rig.rotate();
    sleep(Duration::from_millis(2000));
    rig.rotate();
    sleep(Duration::from_millis(1000));
    rig.stop(d);
    // Rotated while stopped: the restart finds the rest of its file in mail.log.1.
    sleep(Duration::from_millis(300));
    rig.rotate();
    sleep(Duration::from_millis(300));
    let d = rig.start();
    sleep(Duration::from_millis(1500));
    rig.rotate();
    sleep(Duration::from_millis(2000));
    rig.rotate();
    sleep(Duration::from_millis(1000));
    let written = rig.stop_writing();
    let counted = rig.collector.settled();
    let logs = format!("{}{}", rig.logs, d.logs());
    eprintln!(
        "{mode:?}: {written} lines written, {counted} recipients counted, {} rotations, {:.1} s",
        rig.rotations,
        started.elapsed().as_secs_f64()
    );
    (rig, written, counted, logs)
}

#[test]
fn logrotate_create_with_a_restart_counts_every_line_exactly_once() {
    if !logrotate_present("logrotate_create_with_a_restart_counts_every_line_exactly_once") {
        return;
    }
    let (rig, written, counted, logs) = rotate_and_restart(Mode::Create);
    assert_eq!(
        counted,
        written,
        "by status: {:?}\n{logs}",
        by_status(&rig.collector.lines())
    );
    // postrotate told the writer each time, and the daemon followed it to the new file, the
    // one rotated while it was stopped too.
    assert_eq!(rig.reopens, 5);
    assert!(logs.contains("the mail log was rotated"), "{logs}");
    assert!(logs.contains(RESUMED_ROTATED), "{logs}");
}

const RESUMED_ROTATED: &str = "the saved log position is in the rotated file";

#[test]
fn logrotate_copytruncate_with_a_restart_counts_no_line_twice_and_loses_only_what_logrotate_does() {
    if !logrotate_present(
        "logrotate_copytruncate_with_a_restart_counts_no_line_twice_and_loses_only_what_logrotate_does",
    ) {
        return;
    }
    let (rig, written, counted, logs) = rotate_and_restart(Mode::CopyTruncate);
    // What logrotate kept (five rotations, `rotate 5`: every copy is still there). A line
    // missing from them was written between a copy and its truncate: logrotate's own loss.
    let mut files = vec![rig.log.clone()];
    files.extend((1..=5).map(|n| rig.rotated(n)));
    let kept = lines_in(&files);
    let lost_by_logrotate = written - kept.len() as u64;
    eprintln!(
        "CopyTruncate: {} lines in the files, {lost_by_logrotate} lost by logrotate between copy and truncate, {} more lost by us",
        kept.len(),
        (kept.len() as u64).saturating_sub(counted)
    );
    let status = by_status(&rig.collector.lines());
    assert!(
        counted <= written,
        "{counted} recipients counted for {written} lines written: some counted twice; by status {status:?}\n{logs}"
    );
    assert!(
        counted >= kept.len() as u64,
        "{counted} recipients counted, but {} of the {written} lines written are in the files logrotate left: {} lost beyond what logrotate loses; by status {status:?}\n{logs}",
        kept.len(),
        kept.len() as u64 - counted
    );
    // The copies were read (not only the file from 0), the one made while stopped too.
    assert!(
        logs.contains("copied to the .1 beside it and truncated"),
        "{logs}"
    );
    assert!(logs.contains(RESUMED_ROTATED), "{logs}");
}

/// SIGKILL right after a flush report came in, most likely before the daemon has saved the
/// position after it (the moment that shows the bound), then a rotation while it is down and
/// a restart. The design (src/follow.rs): the position is saved only after the flush was
/// sent, so at most the lines of that one flush are counted twice, and none is lost.
/// Asserted: written <= counted <= written + the recipients of the killed daemon's last flush
/// (whole, or the part of it sent before the kill), and that flush holds about one interval
/// of lines.
#[test]
fn logrotate_create_with_a_sigkill_counts_at_most_the_last_flush_twice() {
    if !logrotate_present("logrotate_create_with_a_sigkill_counts_at_most_the_last_flush_twice") {
        return;
    }
    let started = Instant::now();
    let mut rig = Rig::new(Mode::Create);
    let mut d = rig.start();
    sleep(Duration::from_millis(1500));
    rig.rotate();
    sleep(Duration::from_millis(1500));
    rig.collector.next_flush();
    d.child.kill().unwrap();
    let status = d.wait_exit(WAIT).unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let written_at_kill = rig.writer.as_ref().unwrap().written();
    rig.collector.drained();
    let before = rig.collector.lines();
    let logs = d.logs();
    drop(d);
    // The killed daemon's last flush: its last whole report, or the part of one it sent
    // before the kill cut it short.
    let last_flush: u64 = before
        .split_inclusive(|l| l.starts_with("_sc|postfix.log.can_read|"))
        .next_back()
        .unwrap()
        .iter()
        .map(|l| recipients(l))
        .sum();

    sleep(Duration::from_millis(300));
    rig.rotate();
    sleep(Duration::from_millis(300));
    let d = rig.start();
    sleep(Duration::from_millis(1500));
    rig.rotate();
    sleep(Duration::from_millis(1000));
    let written = rig.stop_writing();
    let counted = rig.collector.settled();
    let logs = format!("{logs}{}", d.logs());
    eprintln!(
        "SIGKILL: {written} lines written ({written_at_kill} at the kill), {counted} recipients counted, {} counted twice, the killed daemon's last flush {last_flush}, {:.1} s",
        counted as i64 - written as i64,
        started.elapsed().as_secs_f64()
    );
    let status = by_status(&rig.collector.lines());
    assert!(
        counted >= written,
        "{counted} recipients counted for {written} lines written: {} lost; by status {status:?}\n{logs}",
        written - counted
    );
    assert!(
        counted - written <= last_flush,
        "{} counted twice, more than the {last_flush} of the killed daemon's last flush; by status {status:?}\n{logs}",
        counted - written
    );
    assert!(
        last_flush <= RATE * FLUSH_SECS * 3 / 2,
        "the killed daemon's last flush counted {last_flush}: more than one interval's lines\n{logs}"
    );
    assert!(logs.contains(RESUMED_ROTATED), "{logs}");
}
