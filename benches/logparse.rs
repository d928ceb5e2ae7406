//! The log wing on a large real-shaped mail log: makes the log, reads it the way the daemon
//! does, and writes it at a steady rate for the daemon to follow.
//!
//!     cargo bench --bench logparse -- generate LINES FILE
//!     cargo bench --bench logparse -- parse FILE
//!     cargo bench --bench logparse -- write FILE LINES_PER_SECOND SECONDS
//!
//! `generate` builds LINES lines from the captured real log
//! (`tests/fixtures/logs/maillog-postfix-3.7.11.log`) and the captured delay reasons
//! (`tests/fixtures/reasons/real-reasons.txt`): every line is a captured line with its values
//! changed (queue ID, pid, time, addresses, size, recipients, relay, delays, dsn, status and
//! reply), never a shape of our own. Per message: pickup, cleanup and qmgr's `from=` line,
//! then one status line per recipient (1 to 3), from smtp or error, with smtp's `connect to`
//! line before a refused connection; the capture's other programs (scache, master,
//! postfix-script, postsuper, postqueue) now and then.
//!
//! `parse` runs the file through what the daemon's log task runs on a backlog (`follow.rs`):
//! `FileSource::read` 64 KiB at a time, each line through `str::from_utf8` (lossy if not),
//! `line::parse` and `Counters::count`, and every `FLUSH_BYTES` a flush: the counters' figures,
//! the DogStatsD lines, a send to a loopback UDP port nobody listens on, and the position
//! saved. It reports lines/s and MB/s on one core and the process's peak RSS.
//!
//! `write` appends generated lines to FILE at a steady rate (in batches every 100 ms, as a busy
//! syslog daemon does), for a daemon following it.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use postfix_dogstatsd::config::Target;
use postfix_dogstatsd::dogstatsd::{report_lines, Sink};
use postfix_dogstatsd::follow::FLUSH_BYTES;
use postfix_dogstatsd::log::counters::Counters;
use postfix_dogstatsd::log::line;
use postfix_dogstatsd::log::source::file::{FileSource, StartAt};
use postfix_dogstatsd::metrics::{self, LogState};

const CAPTURE: &str = include_str!("../tests/fixtures/logs/maillog-postfix-3.7.11.log");
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
            let bytes = generate(Path::new(file), lines);
            println!("generated {lines} lines, {bytes} bytes, in {file}");
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

/// Writes `lines` generated lines to `file`, streamed; returns the bytes written.
fn generate(file: &Path, lines: u64) -> u64 {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(file).unwrap());
    let mut log = Generator::new(lines);
    let mut buf = String::new();
    let (mut written, mut bytes) = (0u64, 0u64);
    while written < lines {
        buf.clear();
        log.message(&mut buf);
        for l in buf.lines().take((lines - written) as usize) {
            out.write_all(l.as_bytes()).unwrap();
            out.write_all(b"\n").unwrap();
            written += 1;
            bytes += l.len() as u64 + 1;
        }
    }
    out.flush().unwrap();
    bytes
}

/// The daemon's read loop (`follow.rs`, `Follower::read` and `Follower::flush`) over `file`.
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
    let mut counters = Counters::new();
    let mut instances: Vec<(String, String)> = Vec::new();
    let (mut lines, mut bytes, mut flushes, mut datagram_lines) = (0u64, 0u64, 0u64, 0usize);
    let mut by_status: Vec<(&'static str, u64)> = Vec::new();
    let mut unparsed = 0u64;
    let mut saving = Duration::ZERO;
    loop {
        // One flush: at most FLUSH_BYTES read, counted, sent, the position saved.
        let mut budget = FLUSH_BYTES;
        let at_end = loop {
            let progress = source
                .read(READ_BYTES, |raw| {
                    let text = match std::str::from_utf8(raw) {
                        Ok(text) => std::borrow::Cow::Borrowed(text),
                        Err(_) => String::from_utf8_lossy(raw),
                    };
                    if let Ok(l) = line::parse(&text) {
                        let instance = instance_of(&mut instances, l.syslog_name);
                        counters.count(&l, &instance);
                    }
                })
                .unwrap();
            counters.too_long(progress.too_long);
            bytes += progress.bytes;
            budget = budget.saturating_sub(progress.bytes.max(1));
            if !progress.more {
                break true;
            }
            if budget == 0 {
                break false;
            }
        };
        let counts = counters.flush();
        lines += counts.lines;
        unparsed += counts.unparsed.iter().map(|(_, n)| n).sum::<u64>();
        for (key, figures) in &counts.deliveries {
            match by_status.iter_mut().find(|(s, _)| *s == key.status) {
                Some((_, n)) => *n += figures.recipients,
                None => by_status.push((key.status, figures.recipients)),
            }
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
    by_status.sort();
    println!("file                {}", file.display());
    println!("lines               {lines}");
    println!("bytes               {bytes}");
    println!("flushes             {flushes} ({datagram_lines} DogStatsD lines)");
    let recipients: Vec<String> = by_status.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!(
        "recipients          {} (unparsed {unparsed})",
        recipients.join(", ")
    );
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

/// `follow.rs`'s `instance_of` (private there): the `instance:` value of a `syslog_name`.
fn instance_of(known: &mut Vec<(String, String)>, syslog_name: &str) -> String {
    let name = syslog_name.split('/').next().unwrap_or(syslog_name);
    if let Some((_, tag)) = known.iter().find(|(n, _)| n == name) {
        return tag.clone();
    }
    if known.len() >= postfix_dogstatsd::follow::MAX_INSTANCES {
        return postfix_dogstatsd::follow::OTHER_INSTANCE.to_owned();
    }
    let tag = line::instance_tag(name);
    known.push((name.to_owned(), tag.clone()));
    tag
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
    let mut buf = String::new();
    for n in 1..=seconds * 10 {
        let mut batch = String::new();
        for _ in 0..per_tick {
            if pending.is_empty() {
                buf.clear();
                log.message(&mut buf);
                pending = buf.lines().rev().map(str::to_owned).collect();
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

/// The captured lines a message is made of, and the rest of the capture's programs.
#[derive(Debug)]
struct Shapes {
    /// The capture's host name (the field after the timestamp).
    host: String,
    pickup: Captured,
    cleanup: Captured,
    qmgr: Captured,
    /// smtp's `connect to ...: Connection refused`, logged before a refused deferral.
    connect: Captured,
    smtp_status: Captured,
    error_status: Captured,
    /// Lines of the other programs, as captured, in capture order (scache's come in threes).
    other: Vec<Captured>,
}

/// One captured line: the identifier (`postfix/smtp`) and the text after `ident[pid]: `.
#[derive(Debug, Clone)]
struct Captured {
    ident: String,
    text: String,
}

impl Shapes {
    fn from_capture() -> Shapes {
        let mut host = None;
        let mut all: Vec<Captured> = Vec::new();
        for l in CAPTURE.lines().filter(|l| !l.starts_with('#')) {
            let parsed = line::parse(l).unwrap();
            // `Mmm dd hh:mm:ss host ...`
            host.get_or_insert_with(|| l.split(' ').nth(3).unwrap().to_owned());
            all.push(Captured {
                ident: format!("{}/{}", parsed.syslog_name, parsed.program),
                text: parsed.text.to_owned(),
            });
        }
        let first = |ident: &str, pred: &dyn Fn(&str) -> bool| {
            all.iter()
                .find(|c| c.ident == ident && pred(&c.text))
                .unwrap_or_else(|| panic!("the capture has no {ident} line of that shape"))
                .clone()
        };
        let message_programs = ["postfix/pickup", "postfix/cleanup", "postfix/qmgr"];
        Shapes {
            host: host.unwrap(),
            pickup: first("postfix/pickup", &|t| t.contains(": uid=")),
            cleanup: first("postfix/cleanup", &|t| t.contains(": message-id=<")),
            qmgr: first("postfix/qmgr", &|t| t.contains(", nrcpt=")),
            connect: first("postfix/smtp", &|t| t.starts_with("connect to ")),
            smtp_status: first("postfix/smtp", &|t| t.contains(" status=")),
            error_status: first("postfix/error", &|t| t.contains(" status=")),
            other: all
                .iter()
                .filter(|c| {
                    !message_programs.contains(&c.ident.as_str())
                        && !c.text.contains(" status=")
                        && !c.text.starts_with("connect to ")
                        // postsuper's per-message lines name queue IDs of the capture.
                        && !is_queue_id_line(&c.text)
                })
                .cloned()
                .collect(),
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

/// Makes messages, deterministically, from the captured shapes.
#[derive(Debug)]
struct Generator {
    shapes: Shapes,
    reasons: Vec<&'static str>,
    /// Recipient and sender addresses of the capture, used beside generated ones.
    captured_addresses: Vec<String>,
    rng: u64,
    message: u64,
    /// Seconds since the log's first line; the log spans about a day whatever its length.
    clock: f64,
    step: f64,
    next_other: usize,
}

impl Generator {
    fn new(lines: u64) -> Generator {
        let shapes = Shapes::from_capture();
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
            message: 0,
            clock: 0.0,
            // About 4.4 lines per message: the log spans a day.
            step: 86_400.0 / (lines as f64 / 4.4).max(1.0),
            next_other: 0,
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

    /// The lines of one message, each ending in `\n`, appended to `out`.
    fn message(&mut self, out: &mut String) {
        self.message += 1;
        self.clock += self.step;
        let now = self.clock;
        // Postfix's short queue ID: microseconds and inode number, in hex.
        let qid = format!(
            "{:05X}{:05X}",
            self.below(0x10_0000),
            (self.message * 7919) & 0xF_FFFF
        );
        let ts = timestamp(now);
        let sender = self.address();
        let recipients = match self.below(10) {
            0..=6 => 1,
            7 | 8 => 2,
            _ => 3,
        };
        let s = &self.shapes;
        let (pickup, cleanup, qmgr) = (s.pickup.clone(), s.cleanup.clone(), s.qmgr.clone());
        let old_qid = queue_id(&pickup.text);
        let pickup_text = set(
            &pickup.text.replacen(old_qid, &qid, 1),
            "from",
            &format!("<{sender}>"),
        );
        self.emit(out, &ts, &pickup.ident, 17_484, &pickup_text);
        // `QID: message-id=<yyyymmddhhmmss.QID@host>`: the stamp and both queue IDs.
        let old_stamp = &cleanup.text[cleanup.text.find("=<").unwrap() + 2..][..14];
        let cleanup_text = cleanup
            .text
            .replacen(old_stamp, &format!("20261201{}", compact_time(now)), 1)
            .replace(queue_id(&cleanup.text), &qid);
        let pid = 17_700 + self.below(4) as u32;
        self.emit(out, &ts, &cleanup.ident, pid, &cleanup_text);
        let mut qmgr_text = qmgr.text.replacen(queue_id(&qmgr.text), &qid, 1);
        qmgr_text = set(&qmgr_text, "from", &format!("<{sender}>"));
        qmgr_text = set(&qmgr_text, "size", &(300 + self.below(200_000)).to_string());
        qmgr_text = set(&qmgr_text, "nrcpt", &recipients.to_string());
        self.emit(out, &ts, &qmgr.ident, 17_485, &qmgr_text);
        for _ in 0..recipients {
            self.status_line(out, &ts, &qid);
        }
        // The capture's other programs, in its order, about one line per 40 messages.
        if self.below(40) == 0 && !self.shapes.other.is_empty() {
            let take = if self.shapes.other[self.next_other].ident == "postfix/scache" {
                3
            } else {
                1
            };
            for _ in 0..take {
                let c = self.shapes.other[self.next_other].clone();
                let pid = 20_000 + self.below(10_000) as u32;
                self.emit(out, &ts, &c.ident, pid, &c.text);
                self.next_other = (self.next_other + 1) % self.shapes.other.len();
            }
        }
    }

    /// One recipient's status line: mostly sent to a remote relay, some to a local content
    /// filter, some deferred (with the captured reasons), a few bounced.
    fn status_line(&mut self, out: &mut String, ts: &str, qid: &str) {
        let to = format!("<{}>", self.address());
        let roll = self.below(100);
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
        // error writes the deferrals of a destination smtp has given up on for now.
        let shape = if (94..97).contains(&roll) {
            self.shapes.error_status.clone()
        } else {
            self.shapes.smtp_status.clone()
        };
        let mut text = shape.text.replacen(queue_id(&shape.text), qid, 1);
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
                if shape.ident == "postfix/smtp" && reason.starts_with("connect to ") {
                    let connect = self.shapes.connect.clone();
                    let pid = 17_705 + self.below(20) as u32;
                    self.emit(out, ts, &connect.ident, pid, &connect.text);
                }
                let reason = if shape.ident == "postfix/error"
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
        let pid = 17_705 + self.below(20) as u32;
        self.emit(out, ts, &shape.ident, pid, &text);
    }

    fn queue_id(&mut self) -> String {
        format!("{:05X}{:05X}", self.below(0x10_0000), self.below(0x10_0000))
    }

    fn emit(&self, out: &mut String, ts: &str, ident: &str, pid: u32, text: &str) {
        out.push_str(&format!(
            "{ts} {} {ident}[{pid}]: {text}\n",
            self.shapes.host
        ));
    }
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

/// `hhmmss` for a message-id stamp.
fn compact_time(secs: f64) -> String {
    let s = (secs as u64).min(86_399);
    format!("{:02}{:02}{:02}", s / 3600, s / 60 % 60, s % 60)
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
