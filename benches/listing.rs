//! Parses a generated `postqueue -j` listing of many messages (default 1,000,000) the way the
//! daemon does, 64 KiB at a time, and reports throughput and the process's peak RSS.
//!
//!     cargo bench --bench listing -- [MESSAGES] [FILE]
//!
//! The listing is written to FILE first (default: a file in the temp directory), streamed, so
//! that generating it does not raise the peak; its messages look like a real deferred queue:
//! several domains, one to three recipients, the delay reasons Postfix writes.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::io::{BufWriter, Read, Write};
use std::time::Instant;

use postfix_dogstatsd::collect::listing::json::Parser;
use postfix_dogstatsd::snapshot::ListingRules;

const REASONS: [&str; 5] = [
    "connect to mx.example.com[192.0.2.10]:25: Connection refused",
    "delivery temporarily suspended: connect to mx.example.com[192.0.2.10]:25: Connection timed out",
    "host mx.example.net[192.0.2.20] said: 450 4.2.0 <x@example.net>: Recipient address rejected: Greylisted (in reply to RCPT TO command)",
    "host mx.example.org[192.0.2.30] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)",
    "lost connection with mx.example.com[192.0.2.10] while receiving the initial server greeting",
];
const QUEUES: [&str; 5] = ["deferred", "deferred", "deferred", "active", "hold"];

fn generate(path: &std::path::Path, messages: u64) -> u64 {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut bytes = 0u64;
    for i in 0..messages {
        let queue = QUEUES[(i % 5) as usize];
        let mut line = format!(
            "{{\"queue_name\": \"{queue}\", \"queue_id\": \"{:X}\", \"arrival_time\": {}, \"message_size\": {}, \"forced_expire\": false, \"sender\": \"sender{}@example.com\", \"recipients\": [",
            0x1_0000_0000u64 + i,
            1_795_000_000 + (i % 86_400) as i64,
            300 + i % 5000,
            i % 97
        );
        for r in 0..=(i % 3) {
            if r > 0 {
                line.push_str(", ");
            }
            let domain = format!("d{}.example", (i * 7 + r) % 500);
            if queue == "deferred" {
                let reason = REASONS[((i + r) % 5) as usize];
                line.push_str(&format!(
                    "{{\"address\": \"user{r}@{domain}\", \"delay_reason\": \"{reason}\"}}"
                ));
            } else {
                line.push_str(&format!("{{\"address\": \"user{r}@{domain}\"}}"));
            }
        }
        line.push_str("]}\n");
        bytes += line.len() as u64;
        out.write_all(line.as_bytes()).unwrap();
    }
    out.flush().unwrap();
    bytes
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let messages: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let path = args
        .get(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("pfdd-listing-{messages}.jsonl")));
    let bytes = generate(&path, messages);
    let rss_before = peak_rss_kib();

    let mut file = std::fs::File::open(&path).unwrap();
    let rules = ListingRules {
        now: 1_795_100_000,
        age_thresholds: vec![300, 3600, 14_400, 86_400, 259_200],
    };
    let started = Instant::now();
    let mut parser = Parser::new(rules);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        parser.feed(&buf[..n]).unwrap();
    }
    let snapshot = parser.finish().unwrap();
    let secs = started.elapsed().as_secs_f64();
    let counted: u64 = snapshot.queues.iter().map(|q| q.messages).sum();
    assert_eq!(counted, messages);
    println!("messages            {messages}");
    println!("listing bytes       {bytes}");
    println!("parse seconds       {secs:.3}");
    println!("throughput MB/s     {:.0}", bytes as f64 / secs / 1e6);
    println!("messages/s          {:.0}", messages as f64 / secs);
    println!(
        "peak RSS KiB        {} (after generating: {rss_before})",
        peak_rss_kib()
    );
    if args.get(1).is_none() {
        let _ = std::fs::remove_file(&path);
    }
}
