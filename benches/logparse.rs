//! The log wing on a large real-shaped mail log: makes the log, reads it the way the daemon
//! does, and writes it at a steady rate for the daemon to follow.
//!
//!     cargo bench --bench logparse -- generate LINES FILE
//!     cargo bench --bench logparse -- parse FILE
//!     cargo bench --bench logparse -- write FILE LINES_PER_SECOND SECONDS
//!
//! `generate` builds LINES lines from the two captured real logs,
//! `tests/fixtures/logs/maillog-postfix-3.7.11.log` (the delivery side: pickup, cleanup, qmgr,
//! smtp, error and the other programs) and `maillog-postfix-3.7.11-flow.log` (the inbound
//! side: postscreen, smtpd sessions with their rejects, SASL and TLS, cleanup's header
//! actions, bounce notices), and the captured delay reasons
//! (`tests/fixtures/reasons/real-reasons.txt`): every line is a captured line with its values
//! changed (queue ID, pid, time, client, port, addresses, HELO name, SASL user, size,
//! recipients, relay, delays, dsn, status and reply), never a shape of our own. The mix is
//! `Generator::event`'s, stated in BENCHMARKS.md; `generate` prints how many lines of each
//! kind it wrote.
//!
//! `parse` runs the file through what the daemon's log task runs on a backlog (`follow.rs`):
//! `FileSource::read` 64 KiB at a time, each line through `Tally::line` (UTF-8, `line::parse`,
//! the instance, `Counters::count`), and every `FLUSH_BYTES` a flush: the counters' figures,
//! the DogStatsD lines, a send to a loopback UDP port nobody listens on, and the position
//! saved. It reports lines/s and MB/s on one core, the process's peak RSS, and what it counted
//! per family (to check against what `generate` wrote).
//!
//! `write` appends generated lines to FILE at a steady rate (in batches every 100 ms, as a busy
//! syslog daemon does), for a daemon following it.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use postfix_dogstatsd::config::Target;
use postfix_dogstatsd::dogstatsd::{report_lines, Sink};
use postfix_dogstatsd::follow::{Tally, FLUSH_BYTES};
use postfix_dogstatsd::log::counters::Count;
use postfix_dogstatsd::log::line;
use postfix_dogstatsd::log::source::file::{FileSource, StartAt};
use postfix_dogstatsd::metrics::{self, LogState};

const CAPTURE: &str = include_str!("../tests/fixtures/logs/maillog-postfix-3.7.11.log");
const FLOW: &str = include_str!("../tests/fixtures/logs/maillog-postfix-3.7.11-flow.log");
const REASONS: &str = include_str!("../tests/fixtures/reasons/real-reasons.txt");
/// What one `FileSource::read` asks for in `follow.rs` (its `READ_BYTES`).
const READ_BYTES: usize = 64 * 1024;
/// Where the flushes go: a loopback port nobody needs to listen on (the sends are dropped).
const STATSD: &str = "127.0.0.1:18125";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["generate", lines, file] => {
            let lines: u64 = lines.parse().expect("LINES is a number");
            let (bytes, kinds) = generate(Path::new(file), lines);
            println!("generated {lines} lines, {bytes} bytes, in {file}");
            for (kind, n) in kinds {
                println!("{n:>9}  {kind}");
            }
        }
        ["parse", file] => parse(Path::new(file)),
        ["write", file, rate, seconds] => write(
            Path::new(file),
            rate.parse().expect("LINES_PER_SECOND is a number"),
            seconds.parse().expect("SECONDS is a number"),
        ),
        // `cargo bench` with no arguments: a quick run on a log of 100,000 lines.
        [] => {
            let file = std::env::temp_dir().join("pfdd-logparse-100000.log");
            generate(&file, 100_000);
            parse(&file);
            let _ = std::fs::remove_file(&file);
        }
        _ => {
            eprintln!("usage: logparse generate LINES FILE | parse FILE | write FILE RATE SECONDS");
            std::process::exit(2);
        }
    }
}

/// Writes `lines` generated lines to `file`, streamed; returns the bytes written and the lines
/// of each kind.
fn generate(file: &Path, lines: u64) -> (u64, BTreeMap<&'static str, u64>) {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(file).unwrap());
    let mut log = Generator::new(lines);
    let mut event = Vec::new();
    let mut kinds = BTreeMap::new();
    let (mut written, mut bytes) = (0u64, 0u64);
    while written < lines {
        event.clear();
        log.event(&mut event);
        for (kind, l) in event.iter().take((lines - written) as usize) {
            out.write_all(l.as_bytes()).unwrap();
            out.write_all(b"\n").unwrap();
            *kinds.entry(*kind).or_default() += 1;
            written += 1;
            bytes += l.len() as u64 + 1;
        }
    }
    out.flush().unwrap();
    (bytes, kinds)
}

/// The daemon's read loop (`follow.rs`, `Follower::read_file` and `Follower::flush`) over
/// `file`.
fn parse(file: &Path) {
    let state = tempfile::tempdir().unwrap();
    let position_file = state.path().join("log-position.json");
    let sink = Sink::new(&Target::Udp(STATSD.to_owned())).unwrap();
    let tags: Vec<String> = Vec::new();
    let size = std::fs::metadata(file).unwrap().len();
    let rss_before = peak_rss_kib();

    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let mut source = FileSource::open(file.to_owned(), None, StartAt::Beginning);
    // No configured instance: each line's instance comes from its syslog_name.
    let mut tally = Tally::new(Vec::new(), 0);
    let (mut lines, mut bytes, mut flushes, mut datagram_lines) = (0u64, 0u64, 0u64, 0usize);
    let mut by_status: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_family: BTreeMap<(&'static str, String), u64> = BTreeMap::new();
    let mut unparsed = 0u64;
    let mut saving = Duration::ZERO;
    loop {
        // One flush: at most FLUSH_BYTES read, counted, sent, the position saved.
        let mut budget = FLUSH_BYTES;
        let at_end = loop {
            let progress = source.read(READ_BYTES, |raw| tally.line(raw)).unwrap();
            tally.counters.too_long(progress.too_long);
            bytes += progress.bytes;
            budget = budget.saturating_sub(progress.bytes.max(1));
            if !progress.more {
                break true;
            }
            if budget == 0 {
                break false;
            }
        };
        let counts = tally.counters.flush();
        lines += counts.lines;
        unparsed += counts.unparsed.iter().map(|(_, n)| n).sum::<u64>();
        for (key, figures) in &counts.deliveries {
            *by_status.entry(key.status).or_default() += figures.recipients;
        }
        for (count, _, n) in &counts.counts {
            *by_family.entry(family(count)).or_default() += n;
        }
        let report = metrics::log_report(&counts, &LogState::default(), &tags, &[]);
        let out = report_lines(&report);
        datagram_lines += out.len();
        let _ = sink.send(&out);
        let save_started = Instant::now();
        source.position().unwrap().save(&position_file).unwrap();
        saving += save_started.elapsed();
        flushes += 1;
        if at_end {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_started;
    assert_eq!(bytes, size, "read the whole file");
    println!("file                {}", file.display());
    println!("lines               {lines}");
    println!("bytes               {bytes}");
    println!("flushes             {flushes} ({datagram_lines} DogStatsD lines)");
    let recipients: Vec<String> = by_status.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!(
        "recipients          {} (unparsed {unparsed})",
        recipients.join(", ")
    );
    let mut families: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((family, tag), n) in by_family.iter().filter(|(_, n)| **n > 0) {
        families
            .entry(family)
            .or_default()
            .push(format!("{tag} {n}"));
    }
    for (family, tags) in families {
        println!("{family:<22}{}", tags.join(", "));
    }
    println!(
        "wall seconds        {secs:.3} (of which saving the position, fsync: {:.3})",
        saving.as_secs_f64()
    );
    println!("CPU seconds         {cpu:.3}");
    println!(
        "lines/s             {:.0} (per CPU second: {:.0})",
        lines as f64 / secs,
        lines as f64 / cpu
    );
    println!(
        "throughput MB/s     {:.0} (per CPU second: {:.0})",
        bytes as f64 / secs / 1e6,
        bytes as f64 / cpu / 1e6
    );
    println!(
        "peak RSS KiB        {} (before reading: {rss_before})",
        peak_rss_kib()
    );
}

/// A counted series as the family it belongs to and one of its tags, for the summary.
fn family(count: &Count) -> (&'static str, String) {
    match count {
        Count::Received { source } => ("received", source.clone()),
        Count::Connections => ("smtpd", "connections".to_owned()),
        Count::LostConnections { why, .. } => ("smtpd", (*why).to_owned()),
        Count::Timeouts { .. } => ("smtpd", "timeout".to_owned()),
        Count::Rejects { stage, .. } => ("smtpd rejects", (*stage).to_owned()),
        Count::AuthFailures { method } => ("smtpd auth_failures", (*method).to_owned()),
        Count::CleanupActions { action } => ("cleanup actions", (*action).to_owned()),
        Count::Notifications { kind } => ("bounce notifications", (*kind).to_owned()),
        Count::Tls { direction, .. } => ("tls", (*direction).to_owned()),
        Count::Postscreen { action } => ("postscreen", (*action).to_owned()),
        Count::Warnings { severity, .. } => ("warnings", (*severity).to_owned()),
    }
}

/// Appends generated lines to `file` at `rate` lines per second for `seconds`.
fn write(file: &Path, rate: u64, seconds: u64) {
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    let mut log = Generator::new(rate * seconds);
    let tick = Duration::from_millis(100);
    let per_tick = rate / 10;
    let started = Instant::now();
    let (mut written, mut pending) = (0u64, Vec::<String>::new());
    let mut event = Vec::new();
    for n in 1..=seconds * 10 {
        let mut batch = String::new();
        for _ in 0..per_tick {
            if pending.is_empty() {
                event.clear();
                log.event(&mut event);
                pending = event.drain(..).rev().map(|(_, l)| l).collect();
            }
            let l = pending.pop().unwrap();
            batch.push_str(&l);
            batch.push('\n');
        }
        out.write_all(batch.as_bytes()).unwrap();
        written += per_tick;
        let due = started + tick * n as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    println!(
        "wrote {written} lines in {:.1} s to {}",
        started.elapsed().as_secs_f64(),
        file.display()
    );
}

/// What `generate` counts each line as: the family that reads it, and the line's kind.
mod kind {
    pub const PICKUP: &str = "queue: pickup uid= (a message received)";
    pub const ACTIVE: &str = "queue: qmgr from= (queue active)";
    pub const REMOVED: &str = "queue: qmgr removed";
    pub const NOTIFICATION: &str = "queue: bounce sender non-delivery notification";
    pub const MESSAGE_ID: &str = "cleanup: message-id=";
    pub const HEADER_REJECT: &str = "cleanup: reject: header";
    pub const HEADER_HOLD: &str = "cleanup: hold: header";
    pub const SENT: &str = "delivery: status=sent";
    pub const DEFERRED: &str = "delivery: status=deferred";
    pub const BOUNCED: &str = "delivery: status=bounced";
    pub const REFUSED: &str = "smtp: connect to ...: Connection refused";
    pub const CONNECT: &str = "smtpd: connect from";
    pub const DISCONNECT: &str = "smtpd: disconnect from";
    pub const CLIENT: &str = "smtpd: client= (a message received)";
    pub const NOQUEUE: &str = "smtpd: NOQUEUE: reject:";
    pub const QUEUED_REJECT: &str = "smtpd: QID: reject:";
    pub const LOST: &str = "smtpd: lost connection after";
    pub const TIMEOUT: &str = "smtpd: timeout after";
    pub const SASL: &str = "smtpd: warning: SASL authentication failed";
    pub const TLS_IN: &str = "tls: TLS connection established from (smtpd)";
    pub const TLS_OUT: &str = "tls: TLS connection established to (smtp)";
    pub const PS_CONNECT: &str = "postscreen: CONNECT";
    pub const PS_PASS_OLD: &str = "postscreen: PASS OLD";
    pub const PS_PASS_NEW: &str = "postscreen: PASS NEW";
    pub const PS_PREGREET: &str = "postscreen: PREGREET";
    pub const PS_DISCONNECT: &str = "postscreen: DISCONNECT";
    pub const OTHER: &str =
        "other programs (master, scache, postfix-script, postsuper, postqueue, postscreen's cache)";
}

/// One captured line: the identifier (`postfix/smtp`), the pid, and the text after
/// `ident[pid]: `.
#[derive(Debug, Clone)]
struct Captured {
    ident: String,
    pid: String,
    text: String,
}

/// The lines of a capture (comments left out), and its host name.
fn captured(log: &str) -> (String, Vec<Captured>) {
    let mut host = None;
    let mut all = Vec::new();
    for l in log.lines().filter(|l| !l.starts_with('#')) {
        let parsed = line::parse(l).unwrap();
        // `Mmm dd hh:mm:ss host ...`
        host.get_or_insert_with(|| l.split(' ').nth(3).unwrap().to_owned());
        let pid = l.split_once('[').unwrap().1.split_once(']').unwrap().0;
        all.push(Captured {
            ident: format!("{}/{}", parsed.syslog_name, parsed.program),
            pid: pid.to_owned(),
            text: parsed.text.to_owned(),
        });
    }
    (host.unwrap(), all)
}

/// The text of the first captured line of `program` (the identifier's last component) that
/// passes `pred`.
fn first(all: &[Captured], program: &str, pred: impl Fn(&str) -> bool) -> String {
    first_at(all, program, pred).1
}

fn first_at(all: &[Captured], program: &str, pred: impl Fn(&str) -> bool) -> (usize, String) {
    all.iter()
        .enumerate()
        .find(|(_, c)| c.ident.rsplit('/').next() == Some(program) && pred(&c.text))
        .map(|(i, c)| (i, c.text.clone()))
        .unwrap_or_else(|| panic!("the captures have no {program} line of that shape"))
}

/// A captured smtpd line and the command counts of the `disconnect from` that ended its
/// session (the next one of the same process).
fn with_counts(all: &[Captured], pred: impl Fn(&str) -> bool) -> (String, String) {
    let (at, text) = first_at(all, "smtpd", pred);
    let counts = all[at..]
        .iter()
        .find(|c| {
            (&c.ident, &c.pid) == (&all[at].ident, &all[at].pid)
                && c.text.starts_with("disconnect from ")
        })
        .and_then(|c| c.text.split_once("] "))
        .map(|(_, counts)| counts.to_owned())
        .unwrap();
    (text, counts)
}

/// The captured lines the log is made of.
#[derive(Debug)]
struct Shapes {
    /// The delivery capture's host name (the field after the timestamp), used for every line.
    host: String,
    pickup: String,
    cleanup: String,
    qmgr: String,
    /// smtp's `connect to ...: Connection refused`, logged before a refused deferral.
    connect: String,
    smtp_status: String,
    error_status: String,
    /// Lines of the other programs, as captured, in capture order (scache's come in threes).
    other: Vec<Captured>,
    // The flow capture's.
    ps_connect: String,
    ps_pass_old: String,
    ps_pass_new: String,
    ps_pregreet: String,
    ps_disconnect: String,
    smtpd_connect: String,
    smtpd_disconnect: String,
    client: String,
    client_sasl: String,
    tls_in: String,
    tls_out: String,
    /// `QID: reject: RCPT ...` in a session that goes on to send a message: unknown user
    /// (550), policy service (554), greylisting (450).
    queued_rejects: Vec<String>,
    /// A session that ends without a message: its key line and its disconnect's counts.
    reject_connect: (String, String),
    reject_helo: (String, String),
    reject_mail: (String, String),
    reject_relay: (String, String),
    reject_rcpt_tls: (String, String),
    reject_data: (String, String),
    reject_eom: (String, String),
    lost: (String, String),
    timeout: (String, String),
    sasl_failure: (String, String),
    tls_probe_counts: String,
    pass_only_counts: String,
    header_reject: (String, String),
    header_hold: (String, String),
    notification: String,
    removed: String,
    qmgr_null_sender: String,
}

impl Shapes {
    fn from_captures() -> Shapes {
        let (host, all) = captured(CAPTURE);
        let (_, flow) = captured(FLOW);
        let message_programs = ["postfix/pickup", "postfix/cleanup", "postfix/qmgr"];
        let mut other: Vec<Captured> = all
            .iter()
            .filter(|c| {
                !message_programs.contains(&c.ident.as_str())
                    && !c.text.contains(" status=")
                    && !c.text.starts_with("connect to ")
                    // postsuper's per-message lines name queue IDs of the capture.
                    && !is_queue_id_line(&c.text)
            })
            .cloned()
            .collect();
        // postscreen's cache cleanup: a line of the flow capture outside any session.
        other.extend(
            flow.iter()
                .filter(|c| c.text.starts_with("cache "))
                .cloned(),
        );
        let smtpd = |pred: &dyn Fn(&str) -> bool| with_counts(&flow, pred);
        let cleanup_action = |word: &str| {
            let (at, text) = first_at(&flow, "cleanup", |t| t.contains(word));
            // The session the action ended: the next disconnect after it.
            let counts = flow[at..]
                .iter()
                .find(|c| c.text.starts_with("disconnect from "))
                .and_then(|c| c.text.split_once("] "))
                .unwrap()
                .1
                .to_owned();
            (text, counts)
        };
        Shapes {
            host,
            pickup: first(&all, "pickup", |t| t.contains(": uid=")),
            cleanup: first(&all, "cleanup", |t| t.contains(": message-id=<")),
            qmgr: first(&all, "qmgr", |t| t.contains(", nrcpt=")),
            connect: first(&all, "smtp", |t| t.starts_with("connect to ")),
            smtp_status: first(&all, "smtp", |t| t.contains(" status=")),
            error_status: first(&all, "error", |t| t.contains(" status=")),
            other,
            ps_connect: first(&flow, "postscreen", |t| t.starts_with("CONNECT from [")),
            ps_pass_old: first(&flow, "postscreen", |t| t.starts_with("PASS OLD ")),
            ps_pass_new: first(&flow, "postscreen", |t| t.starts_with("PASS NEW ")),
            ps_pregreet: first(&flow, "postscreen", |t| t.starts_with("PREGREET ")),
            ps_disconnect: first(&flow, "postscreen", |t| t.starts_with("DISCONNECT [")),
            smtpd_connect: first(&flow, "smtpd", |t| t.starts_with("connect from ")),
            smtpd_disconnect: first(&flow, "smtpd", |t| t.starts_with("disconnect from ")),
            client: first(&flow, "smtpd", |t| {
                t.contains(": client=") && !t.contains("sasl_")
            }),
            client_sasl: first(&flow, "smtpd", |t| t.contains(", sasl_method=")),
            tls_in: first(&flow, "smtpd", |t| {
                t.contains(" TLS connection established from ")
            }),
            tls_out: first(&flow, "smtp", |t| {
                t.contains(" TLS connection established to ")
            }),
            queued_rejects: flow
                .iter()
                .filter(|c| {
                    c.ident.ends_with("/smtpd")
                        && c.text.contains(": reject: RCPT ")
                        && !c.text.starts_with("NOQUEUE")
                })
                .map(|c| c.text.clone())
                .collect(),
            reject_connect: smtpd(&|t| t.starts_with("NOQUEUE: reject: CONNECT ")),
            reject_helo: smtpd(&|t| t.starts_with("NOQUEUE: reject: EHLO ")),
            reject_mail: smtpd(&|t| t.starts_with("NOQUEUE: reject: MAIL ")),
            reject_relay: smtpd(&|t| {
                t.starts_with("NOQUEUE: reject: RCPT ") && t.contains("Relay access denied")
            }),
            reject_rcpt_tls: smtpd(&|t| {
                t.starts_with("NOQUEUE: reject: RCPT ") && t.contains("Recipient address")
            }),
            reject_data: smtpd(&|t| t.contains(": reject: DATA ")),
            reject_eom: smtpd(&|t| t.contains(": reject: END-OF-MESSAGE ")),
            lost: smtpd(&|t| t.starts_with("lost connection after ")),
            timeout: smtpd(&|t| t.starts_with("timeout after ")),
            sasl_failure: smtpd(&|t| t.contains(" authentication failed")),
            tls_probe_counts: smtpd(&|t| t.contains(" TLS connection established from ")).1,
            pass_only_counts: flow
                .iter()
                .find(|c| c.text.ends_with(" ehlo=1 quit=1 commands=2"))
                .and_then(|c| c.text.split_once("] "))
                .unwrap()
                .1
                .to_owned(),
            header_reject: cleanup_action(": reject: header "),
            header_hold: cleanup_action(": hold: header "),
            notification: first(&flow, "bounce", |t| t.contains(" notification: ")),
            removed: first(&flow, "qmgr", |t| t.ends_with(": removed")),
            qmgr_null_sender: first(&flow, "qmgr", |t| t.contains(": from=<>, size=")),
        }
    }
}

/// Whether a text starts with a queue ID (`C4626B82C5: ...`).
fn is_queue_id_line(text: &str) -> bool {
    text.split_once(": ").is_some_and(|(id, _)| {
        id.len() >= 10
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
    })
}

/// An SMTP client of the inbound side.
#[derive(Debug, Clone)]
struct Client {
    /// Its reverse DNS name, or `unknown`.
    host: String,
    ip: String,
    port: u64,
    helo: String,
}

/// The values put into a captured inbound line.
#[derive(Debug)]
struct Session {
    qid: String,
    client: Client,
    sender: String,
    rcpt: String,
    user: String,
}

/// The kinds of inbound SMTP sessions (see `Generator::event` for the mix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inbound {
    /// A message accepted on port 25 (behind postscreen) or on submission (with SASL).
    Message {
        submission: bool,
    },
    Pregreet,
    RejectConnect,
    RejectHelo,
    RejectMail,
    RejectRelay,
    RejectRcptTls,
    RejectData,
    RejectEom,
    HeaderReject,
    HeaderHold,
    Lost,
    Timeout,
    SaslFailure,
    TlsProbe,
    /// Passed postscreen, said EHLO and QUIT.
    PassOnly,
}

/// The server's own address and port in postscreen's `CONNECT ... to [addr]:port`.
const SERVER: &str = "[192.0.2.25]:25";

/// Makes the log, deterministically (a seeded xorshift), from the captured shapes.
#[derive(Debug)]
struct Generator {
    /// Made once per run and never freed, so that a session can hold its shapes while
    /// drawing numbers.
    shapes: &'static Shapes,
    reasons: Vec<&'static str>,
    /// Recipient and sender addresses of the delivery capture, used beside generated ones.
    captured_addresses: Vec<String>,
    rng: u64,
    /// Queue IDs made so far (the low half of the next one).
    queue_ids: u64,
    /// Lines made so far, and the seconds each stands for: the log spans a day whatever its
    /// length.
    made: u64,
    secs_per_line: f64,
    next_other: usize,
    next_queued_reject: usize,
}

impl Generator {
    fn new(lines: u64) -> Generator {
        let shapes = Box::leak(Box::new(Shapes::from_captures()));
        let mut captured_addresses: Vec<String> = CAPTURE
            .lines()
            .filter_map(|l| {
                let at = l.find("to=<").or_else(|| l.find("from=<"))?;
                let rest = &l[at..];
                let start = rest.find('<')? + 1;
                let end = rest.find('>')?;
                Some(rest[start..end].to_owned())
            })
            .collect();
        captured_addresses.sort();
        captured_addresses.dedup();
        Generator {
            shapes,
            reasons: REASONS.lines().filter(|l| !l.is_empty()).collect(),
            captured_addresses,
            rng: 0x2545_F491_4F6C_DD1D,
            queue_ids: 0,
            made: 0,
            secs_per_line: 86_400.0 / (lines as f64).max(1.0),
            next_other: 0,
            next_queued_reject: 0,
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// A whole number below `n`.
    fn below(&mut self, n: u64) -> u64 {
        self.random() % n
    }

    fn address(&mut self) -> String {
        if self.below(10) == 0 {
            let i = self.below(self.captured_addresses.len() as u64) as usize;
            return self.captured_addresses[i].clone();
        }
        let user = self.below(50_000);
        let domain = self.below(2_000);
        let tld = ["com", "net", "org"][(domain % 3) as usize];
        format!("user{user}@d{domain}.example.{tld}")
    }

    /// One of 5,000 clients: a third without reverse DNS (`unknown`), one in ten on IPv6.
    fn client(&mut self) -> Client {
        let n = self.below(5_000);
        let ip = if n % 10 == 0 {
            format!("2001:db8:{:x}::{:x}", n % 256, 1 + n / 256)
        } else {
            let net = ["192.0.2", "198.51.100", "203.0.113"][(n % 3) as usize];
            format!("{net}.{}", 1 + n % 254)
        };
        let name = format!("mail{}.c{n}.example.org", n % 7);
        let host = if n % 3 == 0 {
            "unknown".to_owned()
        } else {
            name.clone()
        };
        Client {
            host,
            ip,
            port: 1024 + self.below(64_000),
            helo: name,
        }
    }

    /// Postfix's short queue ID: microseconds and inode number, in hex.
    fn new_queue_id(&mut self) -> String {
        self.queue_ids += 1;
        format!(
            "{:05X}{:05X}",
            self.below(0x10_0000),
            (self.queue_ids * 7919) & 0xF_FFFF
        )
    }

    /// The lines of one event, appended to `out` with their kinds. Per 100 events:
    ///
    /// - 20 messages submitted locally (pickup), 28 received on port 25 behind postscreen
    ///   (PASS OLD 85%, PASS NEW 15%; TLS 60%; one queued RCPT reject in 10%), 7 on
    ///   submission (TLS, SASL); each then queued and delivered as `message` says;
    /// - 45 sessions that bring no message: 8 PREGREET (postscreen only), and behind
    ///   postscreen 6 CONNECT, 3 HELO, 3 MAIL, 5 RCPT (relay) and 3 RCPT (recipient, over
    ///   TLS) NOQUEUE rejects, 2 DATA and 1 END-OF-MESSAGE rejects, 1 header_checks reject,
    ///   1 header_checks hold, 4 lost connections and 2 timeouts after EHLO, 2 TLS probes
    ///   (STARTTLS, QUIT), 1 EHLO and QUIT; on submission 3 SASL failures;
    ///
    /// and, once in 40 events, the next line of the other programs.
    fn event(&mut self, out: &mut Vec<(&'static str, String)>) {
        let ts = timestamp(self.made as f64 * self.secs_per_line);
        let before = out.len();
        match self.below(100) {
            0..=19 => {
                let qid = self.new_queue_id();
                let sender = self.address();
                let pickup = &self.shapes.pickup;
                let text = set(
                    &pickup.replacen(queue_id(pickup), &qid, 1),
                    "from",
                    &format!("<{sender}>"),
                );
                self.emit(out, kind::PICKUP, &ts, "postfix/pickup", 17_484, &text);
                let text = self.message_id(&qid, &ts);
                let pid = 17_700 + self.below(4) as u32;
                self.emit(out, kind::MESSAGE_ID, &ts, "postfix/cleanup", pid, &text);
                let recipients = self.recipients();
                self.queued(out, &ts, &qid, &sender, recipients);
            }
            20..=47 => self.inbound(out, &ts, Inbound::Message { submission: false }),
            48..=54 => self.inbound(out, &ts, Inbound::Message { submission: true }),
            55..=62 => self.inbound(out, &ts, Inbound::Pregreet),
            63..=68 => self.inbound(out, &ts, Inbound::RejectConnect),
            69..=71 => self.inbound(out, &ts, Inbound::RejectHelo),
            72..=74 => self.inbound(out, &ts, Inbound::RejectMail),
            75..=79 => self.inbound(out, &ts, Inbound::RejectRelay),
            80..=82 => self.inbound(out, &ts, Inbound::RejectRcptTls),
            83..=84 => self.inbound(out, &ts, Inbound::RejectData),
            85 => self.inbound(out, &ts, Inbound::RejectEom),
            86 => self.inbound(out, &ts, Inbound::HeaderReject),
            87 => self.inbound(out, &ts, Inbound::HeaderHold),
            88..=91 => self.inbound(out, &ts, Inbound::Lost),
            92..=93 => self.inbound(out, &ts, Inbound::Timeout),
            94..=96 => self.inbound(out, &ts, Inbound::SaslFailure),
            97..=98 => self.inbound(out, &ts, Inbound::TlsProbe),
            _ => self.inbound(out, &ts, Inbound::PassOnly),
        }
        // The other programs, in the capture's order.
        if self.below(40) == 0 && !self.shapes.other.is_empty() {
            let take = if self.shapes.other[self.next_other].ident == "postfix/scache" {
                3
            } else {
                1
            };
            for _ in 0..take {
                let c = self.shapes.other[self.next_other].clone();
                let pid = 20_000 + self.below(10_000) as u32;
                self.emit(out, kind::OTHER, &ts, &c.ident, pid, &c.text);
                self.next_other = (self.next_other + 1) % self.shapes.other.len();
            }
        }
        self.made += (out.len() - before) as u64;
    }

    /// cleanup's `QID: message-id=<yyyymmddhhmmss.QID@host>`: the stamp and both queue IDs.
    fn message_id(&self, qid: &str, ts: &str) -> String {
        let cleanup = &self.shapes.cleanup;
        let old_stamp = &cleanup[cleanup.find("=<").unwrap() + 2..][..14];
        let hms: String = ts[7..].chars().filter(char::is_ascii_digit).collect();
        cleanup
            .replacen(old_stamp, &format!("20261201{hms}"), 1)
            .replace(queue_id(cleanup), qid)
    }

    /// One SMTP session (with postscreen's lines in front on port 25).
    fn inbound(&mut self, out: &mut Vec<(&'static str, String)>, ts: &str, what: Inbound) {
        let client = self.client();
        let ps_client = format!("[{}]:{}", client.ip, client.port);
        let ps = |text: &str| postscreen_client(text, &ps_client);
        let ps_pid = 9_950;
        let submission = matches!(
            what,
            Inbound::Message { submission: true } | Inbound::SaslFailure
        );
        if !submission {
            let text = ps(&self.shapes.ps_connect);
            self.emit(
                out,
                kind::PS_CONNECT,
                ts,
                "postfix/postscreen",
                ps_pid,
                &text,
            );
            if what == Inbound::Pregreet {
                let text = ps(&self.shapes.ps_pregreet);
                self.emit(
                    out,
                    kind::PS_PREGREET,
                    ts,
                    "postfix/postscreen",
                    ps_pid,
                    &text,
                );
                let text = ps(&self.shapes.ps_disconnect);
                let k = kind::PS_DISCONNECT;
                self.emit(out, k, ts, "postfix/postscreen", ps_pid, &text);
                return;
            }
            let (k, text) = if self.below(100) < 15 {
                (kind::PS_PASS_NEW, ps(&self.shapes.ps_pass_new))
            } else {
                (kind::PS_PASS_OLD, ps(&self.shapes.ps_pass_old))
            };
            self.emit(out, k, ts, "postfix/postscreen", ps_pid, &text);
        }
        let (ident, pid) = if submission {
            ("postfix/submission/smtpd", 31_000 + self.below(10) as u32)
        } else {
            ("postfix/smtpd", 30_000 + self.below(40) as u32)
        };
        let s = Session {
            qid: self.new_queue_id(),
            client,
            sender: self.address(),
            rcpt: self.address(),
            user: format!("user{}", self.below(500)),
        };
        let text = fill(&self.shapes.smtpd_connect, &s);
        self.emit(out, kind::CONNECT, ts, ident, pid, &text);
        let cleanup_pid = 17_700 + self.below(4) as u32;
        // The session's lines after `connect from`, then its disconnect's command counts.
        let mut lines: Vec<(&'static str, &'static str, u32, String)> = Vec::new();
        let mut line = |k, ident, pid, text: String| lines.push((k, ident, pid, text));
        let sh = self.shapes;
        let counts = match what {
            Inbound::Message { submission } => {
                let tls = submission || self.below(100) < 60;
                if tls {
                    line(kind::TLS_IN, ident, pid, fill(&sh.tls_in, &s));
                }
                let client = if submission {
                    &sh.client_sasl
                } else {
                    &sh.client
                };
                line(kind::CLIENT, ident, pid, fill(client, &s));
                let rejected = u32::from(!submission && self.below(10) == 0);
                if rejected > 0 {
                    let reject = &sh.queued_rejects[self.next_queued_reject];
                    self.next_queued_reject =
                        (self.next_queued_reject + 1) % sh.queued_rejects.len();
                    let rejected_rcpt = Session {
                        rcpt: self.address(),
                        ..s
                    };
                    line(
                        kind::QUEUED_REJECT,
                        ident,
                        pid,
                        fill(reject, &rejected_rcpt),
                    );
                    let s = rejected_rcpt;
                    let text = self.message_id(&s.qid, ts);
                    let recipients = self.recipients();
                    line(kind::MESSAGE_ID, "postfix/cleanup", cleanup_pid, text);
                    let counts = session_counts(tls, submission, recipients, rejected);
                    return self.finish(out, ts, (ident, pid), &s, lines, counts, Some(recipients));
                }
                let text = self.message_id(&s.qid, ts);
                line(kind::MESSAGE_ID, "postfix/cleanup", cleanup_pid, text);
                let recipients = self.recipients();
                let counts = session_counts(tls, submission, recipients, 0);
                return self.finish(out, ts, (ident, pid), &s, lines, counts, Some(recipients));
            }
            Inbound::Pregreet => unreachable!("postscreen's alone"),
            Inbound::RejectConnect
            | Inbound::RejectHelo
            | Inbound::RejectMail
            | Inbound::RejectRelay
            | Inbound::Lost
            | Inbound::Timeout
            | Inbound::SaslFailure => {
                let ((text, counts), k) = match what {
                    Inbound::RejectConnect => (&sh.reject_connect, kind::NOQUEUE),
                    Inbound::RejectHelo => (&sh.reject_helo, kind::NOQUEUE),
                    Inbound::RejectMail => (&sh.reject_mail, kind::NOQUEUE),
                    Inbound::RejectRelay => (&sh.reject_relay, kind::NOQUEUE),
                    Inbound::Lost => (&sh.lost, kind::LOST),
                    Inbound::Timeout => (&sh.timeout, kind::TIMEOUT),
                    _ => (&sh.sasl_failure, kind::SASL),
                };
                line(k, ident, pid, fill(text, &s));
                counts.clone()
            }
            Inbound::RejectRcptTls => {
                line(kind::TLS_IN, ident, pid, fill(&sh.tls_in, &s));
                let (text, counts) = &sh.reject_rcpt_tls;
                line(kind::NOQUEUE, ident, pid, fill(text, &s));
                counts.clone()
            }
            Inbound::RejectData | Inbound::RejectEom => {
                line(kind::CLIENT, ident, pid, fill(&sh.client, &s));
                let (text, counts) = if what == Inbound::RejectData {
                    &sh.reject_data
                } else {
                    &sh.reject_eom
                };
                line(kind::QUEUED_REJECT, ident, pid, fill(text, &s));
                if what == Inbound::RejectEom {
                    // cleanup had the headers before smtpd refused the end of data.
                    let text = self.message_id(&s.qid, ts);
                    line(kind::MESSAGE_ID, "postfix/cleanup", cleanup_pid, text);
                }
                counts.clone()
            }
            Inbound::HeaderReject | Inbound::HeaderHold => {
                line(kind::CLIENT, ident, pid, fill(&sh.client, &s));
                let ((text, counts), k) = if what == Inbound::HeaderReject {
                    (&sh.header_reject, kind::HEADER_REJECT)
                } else {
                    (&sh.header_hold, kind::HEADER_HOLD)
                };
                line(k, "postfix/cleanup", cleanup_pid, fill(text, &s));
                if what == Inbound::HeaderHold {
                    // Held: in the queue, not delivered.
                    let text = self.message_id(&s.qid, ts);
                    line(kind::MESSAGE_ID, "postfix/cleanup", cleanup_pid, text);
                }
                counts.clone()
            }
            Inbound::TlsProbe => {
                line(kind::TLS_IN, ident, pid, fill(&sh.tls_in, &s));
                sh.tls_probe_counts.clone()
            }
            Inbound::PassOnly => sh.pass_only_counts.clone(),
        };
        self.finish(out, ts, (ident, pid), &s, lines, counts, None);
    }

    /// A session's lines after its `connect from`, its `disconnect from` with `counts`, and
    /// for an accepted message with `recipients`, the queue manager and delivery.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        out: &mut Vec<(&'static str, String)>,
        ts: &str,
        (ident, pid): (&str, u32),
        s: &Session,
        lines: Vec<(&'static str, &'static str, u32, String)>,
        counts: String,
        recipients: Option<u32>,
    ) {
        for (k, ident, pid, text) in lines {
            self.emit(out, k, ts, ident, pid, &text);
        }
        // `disconnect from host[addr] COUNTS`: the captured client, then this session's counts.
        let (client, _) = self.shapes.smtpd_disconnect.split_once("] ").unwrap();
        let text = fill(&format!("{client}] {counts}"), s);
        self.emit(out, kind::DISCONNECT, ts, ident, pid, &text);
        if let Some(n) = recipients {
            self.queued(out, ts, &s.qid, &s.sender, n);
        }
    }

    /// 1 to 3 recipients (70/20/10%).
    fn recipients(&mut self) -> u32 {
        match self.below(10) {
            0..=6 => 1,
            7 | 8 => 2,
            _ => 3,
        }
    }

    /// qmgr's `from=` line, one status line per recipient, then, if one bounced, the bounce
    /// daemon's notice and its notification delivered, and qmgr's `removed` once no
    /// recipient is left deferred.
    fn queued(
        &mut self,
        out: &mut Vec<(&'static str, String)>,
        ts: &str,
        qid: &str,
        sender: &str,
        recipients: u32,
    ) {
        let qmgr = &self.shapes.qmgr;
        let mut text = qmgr.replacen(queue_id(qmgr), qid, 1);
        text = set(&text, "from", &format!("<{sender}>"));
        text = set(&text, "size", &(300 + self.below(200_000)).to_string());
        text = set(&text, "nrcpt", &recipients.to_string());
        self.emit(out, kind::ACTIVE, ts, "postfix/qmgr", 17_485, &text);
        let (mut deferred, mut bounced) = (false, false);
        for _ in 0..recipients {
            let to = self.address();
            let roll = self.below(100);
            match self.status_line(out, ts, qid, &to, roll) {
                "deferred" => deferred = true,
                "bounced" => bounced = true,
                _ => {}
            }
        }
        let shapes = self.shapes;
        let removed = |qid: &str| {
            let removed = &shapes.removed;
            removed.replacen(queue_id(removed), qid, 1)
        };
        if !bounced {
            if !deferred {
                let text = removed(qid);
                self.emit(out, kind::REMOVED, ts, "postfix/qmgr", 17_485, &text);
            }
            return;
        }
        // The notification, as captured: its cleanup and qmgr lines, the bounce daemon's
        // notice, the original removed, the notification delivered and removed.
        let notice = self.new_queue_id();
        let text = self.message_id(&notice, ts);
        let cleanup_pid = 17_700 + self.below(4) as u32;
        self.emit(
            out,
            kind::MESSAGE_ID,
            ts,
            "postfix/cleanup",
            cleanup_pid,
            &text,
        );
        let null = &self.shapes.qmgr_null_sender;
        let text = set(
            &null.replacen(queue_id(null), &notice, 1),
            "size",
            &(2_000 + self.below(3_000)).to_string(),
        );
        self.emit(out, kind::ACTIVE, ts, "postfix/qmgr", 17_485, &text);
        let n = &self.shapes.notification;
        let (old, new) = (queue_id(n), n.rsplit_once(": ").unwrap().1);
        let text = n.replacen(old, qid, 1).replacen(new, &notice, 1);
        let pid = 17_800 + self.below(4) as u32;
        self.emit(out, kind::NOTIFICATION, ts, "postfix/bounce", pid, &text);
        if !deferred {
            let text = removed(qid);
            self.emit(out, kind::REMOVED, ts, "postfix/qmgr", 17_485, &text);
        }
        self.status_line(out, ts, &notice, sender, 0);
        let text = removed(&notice);
        self.emit(out, kind::REMOVED, ts, "postfix/qmgr", 17_485, &text);
    }

    /// One recipient's status line, by `roll` (0 to 99): mostly sent to a remote relay (with
    /// smtp's TLS line before it in 60%), some to a local content filter, some deferred (with
    /// the captured reasons), a few bounced. Returns the status.
    fn status_line(
        &mut self,
        out: &mut Vec<(&'static str, String)>,
        ts: &str,
        qid: &str,
        to: &str,
        roll: u64,
    ) -> &'static str {
        let to = format!("<{to}>");
        let mx = self.below(500);
        let host = format!(
            "mx{mx}.d{}.example.net[{}.{}]",
            mx * 3,
            ["192.0.2", "198.51.100", "203.0.113"][(mx % 3) as usize],
            1 + mx % 254
        );
        let remote = format!("{host}:25");
        let (a, b) = (
            self.below(200) as f64 / 100.0,
            self.below(30) as f64 / 100.0,
        );
        let (c, d) = (
            self.below(80) as f64 / 100.0,
            self.below(300) as f64 / 100.0,
        );
        let pid = 17_705 + self.below(20) as u32;
        // error writes the deferrals of a destination smtp has given up on for now.
        let (ident, shape) = if (94..97).contains(&roll) {
            ("postfix/error", self.shapes.error_status.clone())
        } else {
            ("postfix/smtp", self.shapes.smtp_status.clone())
        };
        let mut text = shape.replacen(queue_id(&shape), qid, 1);
        text = set(&text, "to", &to);
        let (relay, delays, dsn, status, reply): (String, [f64; 4], &str, &str, String) = match roll
        {
            // Sent to a remote MX.
            0..=80 => (
                remote,
                [a, b, c, d],
                "2.0.0",
                "sent",
                format!("250 2.0.0 Ok: queued as {}", self.queue_id()),
            ),
            // Sent to a content filter on loopback (the capture's relay form).
            81..=84 => (
                "127.0.0.1[127.0.0.1]:10025".to_owned(),
                [a, b, 0.0, c / 10.0],
                "2.0.0",
                "sent",
                format!("250 2.0.0 Ok: queued as {}", self.queue_id()),
            ),
            // Deferred, by smtp (85-93) or by error (94-96, "delivery temporarily
            // suspended"), with the captured reasons; retried messages have waited.
            85..=96 => {
                let pick = self.below(self.reasons.len() as u64) as usize;
                let reason = self.reasons[pick];
                let waited = self.below(400_000) as f64;
                // A refused connection or a name not found made none (the capture's
                // relay=none); a reply or a lost connection names the host it came from.
                let (relay, reason) = if reason.starts_with("connect to ")
                    || reason.starts_with("delivery temporarily suspended")
                    || !reason.contains("127.0.0.1[127.0.0.1]")
                {
                    ("none".to_owned(), reason.to_owned())
                } else {
                    (remote, reason.replace("127.0.0.1[127.0.0.1]", &host))
                };
                if ident == "postfix/smtp" && reason.starts_with("connect to ") {
                    let connect = self.shapes.connect.clone();
                    self.emit(out, kind::REFUSED, ts, "postfix/smtp", pid, &connect);
                }
                let reason = if ident == "postfix/error"
                    && !reason.starts_with("delivery temporarily suspended")
                {
                    format!("delivery temporarily suspended: {reason}")
                } else {
                    reason
                };
                (relay, [waited, b, c, 0.0], "4.4.1", "deferred", reason)
            }
            // Bounced: a captured rejection, made permanent.
            _ => {
                let reason = self
                    .reasons
                    .iter()
                    .find(|r| r.contains(" said: 452 4.2.2"))
                    .unwrap()
                    .replace("452 4.2.2", "552 5.2.2")
                    .replace("host 127.0.0.1[127.0.0.1]", &format!("host {host}"));
                (remote, [a, b, c, d], "5.2.2", "bounced", reason)
            }
        };
        // A session with the remote MX: its TLS line first, in 60% of them.
        if (status == "sent" || status == "bounced")
            && relay != "none"
            && !relay.starts_with("127.")
            && self.below(100) < 60
        {
            let tls = &self.shapes.tls_out;
            let (head, rest) = tls.split_once(" to ").unwrap();
            let (_, tail) = rest.split_once(": ").unwrap();
            let text = format!("{head} to {relay}: {tail}");
            self.emit(out, kind::TLS_OUT, ts, "postfix/smtp", pid, &text);
        }
        text = set(&text, "relay", &relay);
        let total: f64 = delays.iter().sum();
        text = set(&text, "delay", &delay(total));
        let delays: Vec<String> = delays.iter().map(|&v| delay(v)).collect();
        text = set(&text, "delays", &delays.join("/"));
        text = set(&text, "dsn", dsn);
        text = set(&text, "status", status);
        // The reply in parentheses runs to the end of the line.
        let head = format!("status={status} (");
        text.truncate(text.find(&head).unwrap() + head.len());
        text.push_str(&reply);
        text.push(')');
        let k = match status {
            "sent" => kind::SENT,
            "deferred" => kind::DEFERRED,
            _ => kind::BOUNCED,
        };
        self.emit(out, k, ts, ident, pid, &text);
        status
    }

    fn queue_id(&mut self) -> String {
        format!("{:05X}{:05X}", self.below(0x10_0000), self.below(0x10_0000))
    }

    fn emit(
        &self,
        out: &mut Vec<(&'static str, String)>,
        k: &'static str,
        ts: &str,
        ident: &str,
        pid: u32,
        text: &str,
    ) {
        let line = format!("{ts} {} {ident}[{pid}]: {text}", self.shapes.host);
        out.push((k, line));
    }
}

/// smtpd's command counts at `disconnect from`, as Postfix writes them (`cmd=ok` or
/// `cmd=ok/total` when some failed): EHLO (twice with STARTTLS), AUTH on submission, MAIL,
/// one RCPT per recipient (`rejected` of them refused), DATA, QUIT.
fn session_counts(tls: bool, auth: bool, accepted: u32, rejected: u32) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut ok = 0;
    if tls {
        parts.push("ehlo=2 starttls=1".to_owned());
        ok += 3;
    } else {
        parts.push("ehlo=1".to_owned());
        ok += 1;
    }
    if auth {
        parts.push("auth=1".to_owned());
        ok += 1;
    }
    parts.push("mail=1".to_owned());
    parts.push(if rejected > 0 {
        format!("rcpt={accepted}/{}", accepted + rejected)
    } else {
        format!("rcpt={accepted}")
    });
    ok += 1 + accepted + 2;
    parts.push("data=1 quit=1".to_owned());
    parts.push(if rejected > 0 {
        format!("commands={ok}/{}", ok + rejected)
    } else {
        format!("commands={ok}")
    });
    parts.join(" ")
}

/// A captured inbound line with a session's values: its queue ID, its client (the capture's
/// are all `unknown[127.0.0.N]`, also where a reply names the client), its envelope addresses
/// (also where a reply echoes them), its HELO name (not a rejected one) and SASL user.
fn fill(text: &str, s: &Session) -> String {
    let mut t = text.to_owned();
    if is_queue_id_line(&t) {
        t = t.replacen(queue_id(&t), &s.qid, 1);
    }
    if let Some(i) = t.find("unknown[") {
        let end = i + t[i..].find(']').unwrap() + 1;
        let old = t[i..end].to_owned();
        t = t.replace(&old, &format!("{}[{}]", s.client.host, s.client.ip));
    }
    for (key, new) in [("from", &s.sender), ("to", &s.rcpt)] {
        if let Some(old) = angle_value(&t, key).filter(|o| !o.is_empty()) {
            t = t.replace(&format!("<{old}>"), &format!("<{new}>"));
        }
    }
    if angle_value(&t, "helo").is_some_and(|h| !t.contains(&format!("<{h}>: Helo command"))) {
        t = set_angle(&t, "helo", &s.client.helo);
    }
    if t.contains(", sasl_username=") {
        t = set(&t, "sasl_username", &s.user);
    }
    t
}

/// postscreen's client, `[addr]:port` (the first in the text), replaced; and the server's
/// after ` to `.
fn postscreen_client(text: &str, client: &str) -> String {
    let (head, server) = match text.split_once(" to [") {
        Some((head, _)) => (head, Some(SERVER)),
        None => (text, None),
    };
    let start = head.find('[').unwrap();
    let port = start + head[start..].find("]:").unwrap() + 2;
    let end = head[port..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(head.len(), |e| port + e);
    let mut t = format!("{}{client}{}", &head[..start], &head[end..]);
    if let Some(server) = server {
        t.push_str(" to ");
        t.push_str(server);
    }
    t
}

/// The value of `key=<value>` (after a space or at the start).
fn angle_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("{key}=<");
    let (i, _) = text
        .match_indices(&pat)
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b' ')?;
    let rest = &text[i + pat.len()..];
    Some(&rest[..rest.find('>')?])
}

/// `key=<value>` in `text` with its value replaced.
fn set_angle(text: &str, key: &str, value: &str) -> String {
    let old = angle_value(text, key).unwrap();
    text.replacen(&format!("{key}=<{old}>"), &format!("{key}=<{value}>"), 1)
}

/// The queue ID a captured text starts with.
fn queue_id(text: &str) -> &str {
    text.split_once(": ").unwrap().0
}

/// `key=value` in `text` with its value replaced; the value runs to the next `,` or space
/// (no captured value, and none we put in, holds either).
fn set(text: &str, key: &str, value: &str) -> String {
    let pat = format!("{key}=");
    let start = text
        .match_indices(&pat)
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b' ')
        .unwrap_or_else(|| panic!("no {key}= in {text}"))
        .0
        + pat.len();
    let end = text[start..]
        .find([',', ' '])
        .map_or(text.len(), |e| start + e);
    format!("{}{value}{}", &text[..start], &text[end..])
}

/// Postfix's way of writing a delay: two decimals at most, trailing zeros cut.
fn delay(v: f64) -> String {
    if v >= 10.0 {
        return format!("{v:.0}");
    }
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// `maillog_file`'s stamp, `Dec 01 hh:mm:ss`, `secs` into the capture's day (the last
/// second of it past its end, so that time never runs back).
fn timestamp(secs: f64) -> String {
    let s = (secs as u64).min(86_399);
    format!("Dec 01 {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn peak_rss_kib() -> u64 {
    proc_status("VmHWM:")
}

fn proc_status(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU time of this process, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // After the command name's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}
