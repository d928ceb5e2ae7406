//! Soak: 20 instances every 100 ms against a fake postqueue that in turn succeeds, hangs past
//! the timeout, crashes, prints garbage, prints an over-long line and exits non-zero. Over
//! thousands of runs: no child left behind, file descriptors and RSS flat, every failure a
//! CRITICAL with the error counted, every success exact.
//!
//!     SOAK_SECONDS=180 cargo test --release --test soak -- --ignored --nocapture
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use common::*;

const INSTANCES: usize = 20;

fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// The open descriptors of `pid`, each as "N->target", with the PID a pidfd watches.
fn open_fds(pid: u32) -> BTreeSet<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            let n = e.file_name().to_string_lossy().into_owned();
            let watched = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{n}"))
                .ok()
                .and_then(|info| {
                    info.lines()
                        .find(|l| l.starts_with("Pid:"))
                        .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_owned())
                })
                .map_or(String::new(), |p| format!(" pid {p}"));
            Some(format!("{n}->{}{watched}", target.display()))
        })
        .collect()
}

/// The descriptors open, the same ones, at three looks 3 s apart, with `wait` run between
/// two. A collection holds its pipes and pidfd for at most its timeout and the kill grace;
/// one that outlives that leaked. (The fewest descriptors seen over a while is no measure:
/// with 20 instances on 2 cores, some run is in flight at every moment. Three looks, because
/// the /dev/null a spawn opens for a moment has no identity to tell two spawns apart.)
fn lasting_fds(pid: u32, mut wait: impl FnMut()) -> BTreeSet<String> {
    let mut lasting = open_fds(pid);
    for _ in 0..2 {
        wait();
        let now = open_fds(pid);
        lasting.retain(|fd| now.contains(fd));
    }
    lasting
}

/// Children of `pid` (any of its threads) that exited and were not reaped.
fn zombie_children(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|st| {
                    st.rsplit_once(')')
                        .map(|(_, rest)| rest.trim_start().starts_with('Z'))
                })
                .unwrap_or(false)
        })
        .count()
}

/// The least RSS over 40 samples, with `between` run between two: collections in flight
/// hold buffers for a moment, a leak holds them for good.
fn least_rss(pid: u32, mut between: impl FnMut()) -> u64 {
    (0..40)
        .map(|_| {
            let rss = proc_status(pid, "VmRSS:");
            between();
            rss
        })
        .min()
        .unwrap()
}

#[derive(Default, Debug)]
struct Tally {
    ok: u64,
    critical: u64,
    errors_counted: u64,
    wrong_gauges: Vec<String>,
}

#[test]
#[ignore = "long: run with --ignored (SOAK_SECONDS, default 180)"]
fn soak() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let s = Scratch::new();
    let udp = Udp::new();
    let mut body = format!("dogstatsd: {{url: \"{}\"}}\ninstances:\n", udp.url());
    for i in 0..INSTANCES {
        let name = format!("pf{i}");
        s.postfix(
            &name,
            "cycle",
            Some("tests/fixtures/postqueue-j/mixed.jsonl"),
            None,
        );
        body.push_str(&format!(
            "  - {{method: postqueue, config_directory: {}, min_collection_interval: 0.1, timeout: 0.3, top_domains: 0, age_thresholds: []}}\n",
            s.path(&name).display()
        ));
    }
    let config = s.config(&body);
    let mut d = Daemon::start(&config);
    let pid = d.child.id();
    let truth: HashMap<&str, u64> = [
        ("active", 1),
        ("hold", 5),
        ("deferred", 7),
        ("incoming", 2),
        ("maildrop", 3),
    ]
    .into();

    let mut tally = Tally::default();
    let read = |until: Instant, tally: &mut Tally| {
        while Instant::now() < until {
            let Some(datagram) = udp.recv_datagram(Duration::from_millis(200)) else {
                continue;
            };
            for line in String::from_utf8(datagram).unwrap().lines() {
                if line.starts_with("_sc|postfix.can_collect|0|") {
                    tally.ok += 1;
                } else if line.starts_with("_sc|postfix.can_collect|2|") {
                    tally.critical += 1;
                } else if let Some(rest) = line.strip_prefix("postfix.collection.errors:") {
                    tally.errors_counted += rest.split('|').next().unwrap().parse::<u64>().unwrap();
                } else if let Some(rest) = line.strip_prefix("postfix.queue.size:") {
                    let value: u64 = rest.split('|').next().unwrap().parse().unwrap();
                    let queue = rest
                        .split("queue:")
                        .nth(1)
                        .unwrap()
                        .split(',')
                        .next()
                        .unwrap();
                    if truth.get(queue) != Some(&value) {
                        tally.wrong_gauges.push(line.to_owned());
                    }
                }
            }
        }
    };

    let measure = |tally: &mut Tally| {
        let rss = least_rss(pid, || {
            read(Instant::now() + Duration::from_millis(50), tally)
        });
        let fds = lasting_fds(pid, || read(Instant::now() + Duration::from_secs(3), tally));
        (rss, fds)
    };

    // Warm up, then measure the start.
    read(Instant::now() + Duration::from_secs(10), &mut tally);
    let (rss0, fds0) = measure(&mut tally);
    read(
        Instant::now() + Duration::from_secs(seconds.saturating_sub(10).max(10)),
        &mut tally,
    );
    let (rss1, fds1) = measure(&mut tally);
    let hwm = proc_status(pid, "VmHWM:");
    // Children the daemon has not reaped show up as zombies among its children; a moment's
    // zombie between exit and reap is normal, one in every sample is a leak.
    let zombies = (0..20)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            zombie_children(pid)
        })
        .min()
        .unwrap();
    d.signal("TERM");
    let status = d.wait_exit(Duration::from_secs(5));

    let runs = tally.ok + tally.critical;
    println!(
        "soak: {seconds}s, {INSTANCES} instances at 100 ms: {runs} runs, {} OK, {} CRITICAL",
        tally.ok, tally.critical
    );
    println!(
        "soak: RSS {rss0} KiB after warm-up, {rss1} KiB at the end (peak {hwm} KiB); lasting fds {} -> {}",
        fds0.len(),
        fds1.len()
    );
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", d.logs());
    // Each instance is due every 100 ms; a hang costs its 0.3 s timeout and the next tick. Well
    // under the ideal count means the scheduler stalled.
    let ideal = INSTANCES as u64 * seconds * 10;
    assert!(
        runs * 10 >= ideal * 6,
        "only {runs} runs of an ideal {ideal}"
    );
    // One run in six succeeds; every other is a CRITICAL, and each counts its error.
    assert!(
        tally.ok > runs / 10 && tally.critical > runs / 2,
        "{tally:?}"
    );
    assert_eq!(
        tally.errors_counted, tally.critical,
        "errors counted vs CRITICAL checks"
    );
    assert!(
        tally.wrong_gauges.is_empty(),
        "wrong gauges: {:?}",
        &tally.wrong_gauges[..tally.wrong_gauges.len().min(5)]
    );
    assert_eq!(
        fds0.len(),
        fds1.len(),
        "lasting file descriptors: gone {:?}, new {:?}",
        fds0.difference(&fds1).collect::<Vec<_>>(),
        fds1.difference(&fds0).collect::<Vec<_>>()
    );
    assert!(
        rss1 <= rss0 + rss0 / 5 + 1024,
        "RSS grew from {rss0} to {rss1} KiB"
    );
    // Every process a hanging fake started is gone. Thousands of runs wrap the PID space
    // (pid_max is often 32768), so a listed PID that is alive may belong to someone else now:
    // a leftover is one still running in its instance's directory, where the fake put it.
    let mut left = Vec::new();
    for i in 0..INSTANCES {
        let dir = s.path(&format!("pf{i}")).canonicalize().unwrap();
        let pids = std::fs::read_to_string(dir.join("all.pids")).unwrap_or_default();
        left.extend(
            pids.split_whitespace()
                .map(|p| p.parse::<u32>().unwrap())
                .filter(|p| {
                    alive(*p)
                        && std::fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|cwd| cwd == dir)
                }),
        );
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
    // And while it ran, every child it started was reaped.
    assert_eq!(zombies, 0, "unreaped children in every sample");
}
