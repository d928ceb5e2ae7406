//! `run` end to end: the real daemon, fake Postfix commands, real UDP and Unix datagram
//! sockets, real signals.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(15);

/// Starts a daemon with one good and one failing instance sending to `url`.
fn two_instances(s: &Scratch, url: &str, extra_tag: &str) -> std::path::PathBuf {
    s.postfix(
        "good",
        "ok",
        Some("tests/fixtures/postqueue-j/mixed.jsonl"),
        None,
    );
    s.postfix("down", "down", None, None);
    s.config(&format!(
        "dogstatsd:\n  url: {url}\n  tags: [{extra_tag}]\ninit_config:\n  postqueue: true\ninstances:\n  - config_directory: {}\n    min_collection_interval: 0.2\n    tags: [role:out]\n    metric_patterns: {{include: ['^postfix\\.queue\\.size$', '^postfix\\.collection\\.']}}\n  - config_directory: {}\n    min_collection_interval: 0.2\n",
        s.path("good").display(),
        s.path("down").display()
    ))
}

fn assert_exact_lines(s: &Scratch, lines: &[String], extra_tag: &str) {
    let good = format!("instance:{}", s.path("good").display());
    let down = format!("instance:{}", s.path("down").display());
    // One cycle of the good instance, exactly, durations aside.
    let first: Vec<String> = tagged(lines, &good)
        .into_iter()
        .take(10)
        .map(|l| mask(l, s).trim_end().to_owned())
        // Under a loaded test machine a 0.2 s run may overrun: skipped runs are tested elsewhere.
        .map(|l| {
            l.replace(
                "postfix.collection.skipped:1|",
                "postfix.collection.skipped:0|",
            )
        })
        .collect();
    let pf = "<scratch>/good";
    let want: Vec<String> = [
        format!("postfix.queue.size:1|g|#role:out,queue:active,instance:{pf},{extra_tag}"),
        format!("postfix.queue.size:5|g|#role:out,queue:hold,instance:{pf},{extra_tag}"),
        format!("postfix.queue.size:7|g|#role:out,queue:deferred,instance:{pf},{extra_tag}"),
        format!("postfix.queue.size:2|g|#role:out,queue:incoming,instance:{pf},{extra_tag}"),
        format!("postfix.queue.size:3|g|#role:out,queue:maildrop,instance:{pf},{extra_tag}"),
        format!("postfix.collection.duration:<n>|g|#role:out,instance:{pf},{extra_tag}"),
        format!("postfix.collection.errors:0|c|#role:out,instance:{pf},{extra_tag}"),
        format!("postfix.collection.truncated:0|c|#role:out,instance:{pf},{extra_tag}"),
        format!("postfix.collection.skipped:0|c|#role:out,instance:{pf},{extra_tag}"),
        format!(
            "_sc|postfix.can_collect|0|#role:out,instance:{pf},postfix_version:3.7.11,{extra_tag}"
        ),
    ]
    .into();
    assert_eq!(first, want, "all lines: {lines:#?}");
    // The failing one: CRITICAL with the cause, errors counted, never a queue gauge.
    let mine = tagged(lines, &down);
    assert!(!mine.is_empty());
    assert!(
        !mine.iter().any(|l| l.starts_with("postfix.queue.size")),
        "{mine:?}"
    );
    assert!(
        mine.iter()
            .any(|l| l.starts_with("_sc|postfix.can_collect|2|")
                && l.contains("|m:Postfix is not running: ")),
        "{mine:?}"
    );
    assert!(mine
        .iter()
        .any(|l| l.starts_with("postfix.collection.errors:1|c|")));
}

#[test]
fn udp_exact_lines_and_no_gauge_for_a_failed_instance() {
    let s = Scratch::new();
    let udp = Udp::new();
    let config = two_instances(&s, &udp.url(), "dc:test");
    let mut d = Daemon::start(&config);
    let good = format!("instance:{}", s.path("good").display());
    let down = format!("instance:{}", s.path("down").display());
    let lines = udp.lines_until(WAIT, |l| {
        count_service_checks(l, &good) >= 3 && count_service_checks(l, &down) >= 3
    });
    assert_exact_lines(&s, &lines, "dc:test");
    // Runs repeat on the interval: 3 cycles in well under the wait.
    assert!(count_service_checks(&lines, &good) >= 3, "{}", d.logs());
    d.signal("TERM");
    assert_eq!(
        d.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn unix_socket_lines_and_a_recreated_socket_is_found_again() {
    let s = Scratch::new();
    let rx = Unix::new(s.path("dsd.socket"));
    let config = two_instances(&s, &rx.url(), "via:unix");
    let mut d = Daemon::start(&config);
    let good = format!("instance:{}", s.path("good").display());
    let down = format!("instance:{}", s.path("down").display());
    let lines = rx.lines_until(WAIT, |l| {
        count_service_checks(l, &good) >= 1 && count_service_checks(l, &down) >= 1
    });
    assert_exact_lines(&s, &lines, "via:unix");

    // The Agent restarts: the socket goes away, then comes back under the same path.
    drop(rx);
    std::fs::remove_file(s.path("dsd.socket")).unwrap();
    assert!(d.wait_log("cannot send to DogStatsD", WAIT), "{}", d.logs());
    let rx = Unix::new(s.path("dsd.socket"));
    let lines = rx.lines_until(WAIT, |l| count_service_checks(l, &good) >= 2);
    assert!(
        count_service_checks(&lines, &good) >= 2,
        "nothing after the socket came back: {}",
        d.logs()
    );
    d.signal("TERM");
    assert_eq!(
        d.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn unreachable_agent_never_stops_collection() {
    let s = Scratch::new();
    // Nothing listens at this path: every send fails.
    let config = two_instances(
        &s,
        &format!("unix://{}", s.path("nobody-here.socket").display()),
        "x:y",
    );
    s.write("good/calls", "");
    let d = Daemon::start(&config);
    std::thread::sleep(Duration::from_secs(2));
    let calls = std::fs::read_to_string(s.path("good/calls"))
        .unwrap()
        .lines()
        .count();
    // 0.2 s interval over 2 s: about 10 runs; the point is that runs go on.
    assert!(calls >= 5, "only {calls} runs: {}", d.logs());
    let warnings = d.logs().matches("cannot send to DogStatsD").count();
    assert_eq!(
        warnings,
        1,
        "send errors are logged once a minute: {}",
        d.logs()
    );
}

#[test]
fn sighup_applies_a_good_config_and_keeps_the_old_on_a_bad_one() {
    let s = Scratch::new();
    let udp = Udp::new();
    let config = two_instances(&s, &udp.url(), "gen:one");
    let mut d = Daemon::start(&config);
    let lines = udp.lines_until(WAIT, |l| l.iter().any(|x| x.ends_with("gen:one")));
    assert!(lines.iter().any(|x| x.ends_with("gen:one")), "{}", d.logs());

    two_instances(&s, &udp.url(), "gen:two");
    d.signal("HUP");
    let lines = udp.lines_until(WAIT, |l| l.iter().any(|x| x.ends_with("gen:two")));
    assert!(lines.iter().any(|x| x.ends_with("gen:two")), "{}", d.logs());
    assert!(d.wait_log("reloaded", WAIT));

    s.write("config.yaml", "instances: [{method: nonsense}]\n");
    d.signal("HUP");
    assert!(
        d.wait_log("reload failed, the running config stays in place", WAIT),
        "{}",
        d.logs()
    );
    assert!(
        d.logs()
            .contains("instances[0].method: unknown method \"nonsense\""),
        "{}",
        d.logs()
    );
    // Still running, still the second config.
    let _ = udp.lines_until(Duration::from_millis(500), |_| false);
    let lines = udp.lines_until(WAIT, |l| l.len() > 20);
    assert!(
        lines
            .iter()
            .all(|x| x.ends_with("gen:two") || x.starts_with("_sc|")),
        "{lines:?}"
    );
    assert!(d.child.try_wait().unwrap().is_none());
    d.signal("TERM");
    assert_eq!(
        d.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn sigterm_during_a_hung_collection_exits_0_within_5s_and_leaves_no_child() {
    let s = Scratch::new();
    let udp = Udp::new();
    s.postfix("hang", "hang", None, None);
    let config = s.config(&format!(
        "dogstatsd: {{url: {}}}\ninstances:\n  - {{method: postqueue, config_directory: {}, timeout: 50}}\n",
        udp.url(),
        s.path("hang").display()
    ));
    let mut d = Daemon::start(&config);
    let child = read_pid(&s.path("hang/child.pid"), WAIT);
    let grandchild = read_pid(&s.path("hang/grandchild.pid"), WAIT);
    assert!(alive(child) && alive(grandchild));
    let asked = Instant::now();
    d.signal("TERM");
    let status = d.wait_exit(Duration::from_secs(5));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", d.logs());
    assert!(asked.elapsed() < Duration::from_secs(5));
    assert!(!alive(child) && !alive(grandchild), "children left behind");
}

#[test]
fn a_hung_instance_never_delays_another() {
    let s = Scratch::new();
    let udp = Udp::new();
    s.postfix("hang", "hang", None, None);
    s.postfix(
        "good",
        "ok",
        Some("tests/fixtures/postqueue-j/empty.jsonl"),
        None,
    );
    let config = s.config(&format!(
        "dogstatsd: {{url: {}}}\ninstances:\n  - {{method: postqueue, config_directory: {}, min_collection_interval: 1, timeout: 8}}\n  - {{method: postqueue, config_directory: {}, min_collection_interval: 0.2}}\n",
        udp.url(),
        s.path("hang").display(),
        s.path("good").display()
    ));
    let d = Daemon::start(&config);
    let good = format!("instance:{}", s.path("good").display());
    let hang = format!("instance:{}", s.path("hang").display());
    let started = Instant::now();
    let lines = udp.lines_until(WAIT, |l| count_service_checks(l, &good) >= 8);
    // 8 runs of the good instance (about 1.6 s) while the other hangs for 8 s: a scheduler that
    // let the hang block it would need more than 8 s.
    assert!(count_service_checks(&lines, &good) >= 8, "{}", d.logs());
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    // The hung one: timeout, then a skipped-run count for the ticks it overran.
    let lines = udp.lines_until(WAIT, |l| count_service_checks(l, &hang) >= 1);
    let mine = tagged(&lines, &hang);
    assert!(
        mine.iter()
            .any(|l| l.starts_with("_sc|postfix.can_collect|2|")
                && l.contains("did not finish within 8.0s")),
        "{mine:?}"
    );
    let skipped: Vec<u64> = mine
        .iter()
        .filter_map(|l| l.strip_prefix("postfix.collection.skipped:"))
        .filter_map(|l| l.split('|').next()?.parse().ok())
        .collect();
    // An 8 s run on a 1 s interval overruns about eight ticks.
    assert!(skipped.iter().any(|&n| (6..=10).contains(&n)), "{mine:?}");
}

#[test]
fn udp_receiver_down_then_back_and_config_garbage_then_fixed() {
    let s = Scratch::new();
    let udp = Udp::new();
    let addr = udp.socket.local_addr().unwrap();
    let config = two_instances(&s, &udp.url(), "gen:one");
    let mut d = Daemon::start(&config);
    let good = format!("instance:{}", s.path("good").display());
    assert!(
        count_service_checks(
            &udp.lines_until(WAIT, |l| count_service_checks(l, &good) >= 1),
            &good
        ) >= 1
    );

    // The Agent goes away for a second (datagrams to a closed port are lost), then comes back
    // on the same port: lines flow again with no restart.
    drop(udp);
    std::thread::sleep(Duration::from_secs(1));
    let udp = Udp {
        socket: std::net::UdpSocket::bind(addr).unwrap(),
    };
    assert!(
        count_service_checks(
            &udp.lines_until(WAIT, |l| count_service_checks(l, &good) >= 2),
            &good
        ) >= 2
    );

    // Garbage, reloaded: kept running on the old config. Then fixed: the new one applies.
    s.write("config.yaml", b"\x00\xff garbage: [unclosed\n");
    d.signal("HUP");
    assert!(
        d.wait_log("reload failed, the running config stays in place", WAIT),
        "{}",
        d.logs()
    );
    assert!(
        count_service_checks(
            &udp.lines_until(WAIT, |l| count_service_checks(l, &good) >= 2),
            &good
        ) >= 2
    );
    two_instances(&s, &udp.url(), "gen:fixed");
    d.signal("HUP");
    let lines = udp.lines_until(WAIT, |l| l.iter().any(|x| x.ends_with("gen:fixed")));
    assert!(
        lines.iter().any(|x| x.ends_with("gen:fixed")),
        "{}",
        d.logs()
    );
    d.signal("TERM");
    assert_eq!(
        d.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
}

/// systemd's side of sd_notify: READY once the schedules run, RELOADING (with
/// MONOTONIC_USEC) then READY around a reload, WATCHDOG while WATCHDOG_USEC is set, STOPPING.
#[test]
fn sd_notify_ready_reloading_watchdog_stopping() {
    let s = Scratch::new();
    let udp = Udp::new();
    let config = two_instances(&s, &udp.url(), "sd:notify");
    let notify = std::os::unix::net::UnixDatagram::bind(s.path("notify.sock")).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut cmd = std::process::Command::new(bin());
    cmd.env("WATCHDOG_USEC", "400000");
    cmd.env("NOTIFY_SOCKET", s.path("notify.sock"));
    let mut d = Daemon::start_keeping_env(cmd, &config);
    let mut got: Vec<String> = Vec::new();
    let read_until = |want: &str, got: &mut Vec<String>| {
        let end = Instant::now() + WAIT;
        while Instant::now() < end && !got.iter().any(|m| m.contains(want)) {
            let mut buf = [0u8; 4096];
            if let Ok(n) = notify.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        assert!(got.iter().any(|m| m.contains(want)), "no {want} in {got:?}");
    };
    read_until("READY=1", &mut got);
    read_until("WATCHDOG=1", &mut got);
    d.signal("HUP");
    read_until("RELOADING=1", &mut got);
    let reloading = got.iter().find(|m| m.contains("RELOADING=1")).unwrap();
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let at = got.iter().position(|m| m.contains("RELOADING=1")).unwrap();
    got.drain(..=at);
    read_until("READY=1", &mut got);
    d.signal("TERM");
    read_until("STOPPING=1", &mut got);
    assert_eq!(
        d.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
}

#[test]
fn work_that_outlives_its_run_is_never_started_twice() {
    let s = Scratch::new();
    let udp = Udp::new();
    s.postfix("stray", "stray", None, None);
    let config = s.config(&format!(
        "dogstatsd: {{url: {}}}\ninstances:\n  - {{method: postqueue, config_directory: {}, min_collection_interval: 0.5, timeout: 0.5}}\n",
        udp.url(),
        s.path("stray").display()
    ));
    let mut d = Daemon::start(&config);
    let me = format!("instance:{}", s.path("stray").display());
    // Each run times out after 0.5 s and leaves a command we cannot kill for 3 s.
    // Wait for the second run: it may start only once the first one's stray has ended.
    let lines = udp.lines_until(Duration::from_secs(15), |l| {
        l.iter()
            .filter(|x| x.starts_with("_sc|") && x.contains("did not finish within"))
            .count()
            >= 2
    });
    d.signal("TERM");
    let _ = d.wait_exit(Duration::from_secs(5));
    let mine = tagged(&lines, &me);
    assert!(
        mine.iter()
            .any(|l| l.starts_with("_sc|postfix.can_collect|2|")
                && l.contains("still running after it was stopped")),
        "{mine:?}"
    );
    assert!(
        mine.iter()
            .any(|l| l.starts_with("postfix.collection.skipped:1|c")),
        "{mine:?}"
    );
    // Never two at once: each stray starts after the one before it ended.
    std::thread::sleep(Duration::from_secs(4));
    let log = std::fs::read_to_string(s.path("stray/strays")).unwrap();
    let times: Vec<(&str, f64)> = log
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(what, t)| (what, t.parse().unwrap()))
        .collect();
    let starts: Vec<f64> = times
        .iter()
        .filter(|(w, _)| *w == "start")
        .map(|(_, t)| *t)
        .collect();
    let ends: Vec<f64> = times
        .iter()
        .filter(|(w, _)| *w == "end")
        .map(|(_, t)| *t)
        .collect();
    assert!(starts.len() >= 2, "{log}");
    for (i, start) in starts.iter().enumerate().skip(1) {
        assert!(
            *start >= ends[i - 1],
            "stray {i} started before {} ended: {log}",
            i - 1
        );
    }
}

#[test]
fn auto_started_while_postfix_is_down_takes_postqueue_once_it_is_up() {
    let s = Scratch::new();
    let udp = Udp::new();
    s.postfix(
        "pf",
        "down",
        Some("tests/fixtures/postqueue-j/mixed.jsonl"),
        None,
    );
    // A spool scan could read: the old auto settled on it for good while Postfix was down.
    for q in [
        "active", "hold", "deferred", "incoming", "maildrop", "corrupt",
    ] {
        std::fs::create_dir_all(s.path(&format!("pf/spool/{q}"))).unwrap();
    }
    let config = s.config(&format!(
        "dogstatsd: {{url: {}}}\ninit_config: {{postfix_user: nobody-here}}\ninstances:\n  - {{method: auto, config_directory: {}, min_collection_interval: 0.3}}\n",
        udp.url(),
        s.path("pf").display()
    ));
    let mut d = Daemon::start(&config);
    let me = format!("instance:{}", s.path("pf").display());
    let down = udp.lines_until(WAIT, |l| {
        l.iter().any(|x| x.contains("Postfix is not running"))
    });
    let mine = tagged(&down, &me);
    assert!(
        mine.iter()
            .any(|l| l.starts_with("_sc|postfix.can_collect|2|")
                && l.contains("Postfix is not running")),
        "{mine:?}"
    );
    // Postfix comes up: the next cycle uses postqueue (scan and find were never settled on).
    s.write("pf/mode", "ok");
    let up = udp.lines_until(WAIT, |l| {
        l.iter()
            .any(|x| x.starts_with("_sc|postfix.can_collect|0|"))
    });
    assert!(
        tagged(&up, &me)
            .iter()
            .any(|l| l.starts_with("postfix.queue.size:7|g|#queue:deferred")),
        "{up:?}\n{}",
        d.logs()
    );
    // The log line is read from the daemon's stderr by another thread: wait for it.
    assert!(
        d.wait_log("method auto chose postqueue", WAIT),
        "{}",
        d.logs()
    );
    d.signal("TERM");
    let _ = d.wait_exit(Duration::from_secs(5));
}

#[test]
fn a_hung_showq_is_never_read_twice_at_once() {
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let s = Scratch::new();
    let udp = Udp::new();
    s.postfix("pf", "ok", None, None);
    std::fs::create_dir_all(s.path("pf/spool/public")).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(s.path("pf/spool/public/showq")).unwrap();
    // A showq that accepts and never writes: each connection is open until the daemon lets go.
    let (open, most, total) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    {
        let (open, most, total) = (open.clone(), most.clone(), total.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                total.fetch_add(1, Ordering::SeqCst);
                let open = open.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64];
                    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
    }
    let config = s.config(&format!(
        "dogstatsd: {{url: {}}}\ninstances:\n  - {{method: showq, config_directory: {}, min_collection_interval: 0.3, timeout: 0.5}}\n",
        udp.url(),
        s.path("pf").display()
    ));
    let mut d = Daemon::start(&config);
    let me = format!("instance:{}", s.path("pf").display());
    // Every run times out and the next tick finds its reader still stopping: about one run
    // and one skip per 0.6 s.
    let lines = udp.lines_until(Duration::from_secs(10), |l| {
        count_service_checks(l, &me) >= 8
    });
    d.signal("TERM");
    let _ = d.wait_exit(Duration::from_secs(5));
    assert!(count_service_checks(&lines, &me) >= 8, "{}", d.logs());
    assert!(total.load(Ordering::SeqCst) >= 3, "{}", d.logs());
    assert_eq!(most.load(Ordering::SeqCst), 1, "{}", d.logs());
}

#[test]
fn json_logs_and_sigint_stops_cleanly() {
    let s = Scratch::new();
    let udp = Udp::new();
    s.postfix("pf", "down", None, None);
    let config = s.config(&format!(
        "dogstatsd: {{url: {}}}\ninstances:\n  - {{method: postqueue, config_directory: {}, min_collection_interval: 0.3}}\n",
        udp.url(),
        s.path("pf").display()
    ));
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["--log-format", "json"]);
    let mut d = Daemon::start_with(cmd, &config);
    assert!(d.wait_log("Postfix is not running", WAIT), "{}", d.logs());
    d.signal("INT");
    assert_eq!(
        d.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );
    // Another thread reads the daemon's stderr, and may not have the last lines yet.
    assert!(d.wait_log("SIGINT: stopping", WAIT), "{}", d.logs());
    let logs = d.logs();
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.starts_with('{') && line.ends_with('}') && line.contains("\"level\""),
            "not JSON: {line}"
        );
    }
}

#[test]
fn auto_with_every_method_passed_over_stays_critical() {
    let s = Scratch::new();
    let udp = Udp::new();
    // showq: no socket; postqueue: not authorised; scan and find: no queue directories.
    s.postfix("pf", "denied", None, None);
    let config = s.config(&format!(
        "dogstatsd: {{url: {}}}\ninit_config: {{postfix_user: nobody-here}}\ninstances:\n  - {{method: auto, config_directory: {}, min_collection_interval: 0.3}}\n",
        udp.url(),
        s.path("pf").display()
    ));
    let mut d = Daemon::start(&config);
    let me = format!("instance:{}", s.path("pf").display());
    let lines = udp.lines_until(WAIT, |l| count_service_checks(l, &me) >= 4);
    d.signal("TERM");
    let _ = d.wait_exit(Duration::from_secs(5));
    let checks: Vec<&String> = tagged(&lines, &me)
        .into_iter()
        .filter(|l| l.starts_with("_sc|"))
        .collect();
    assert!(checks.len() >= 4, "{checks:?}");
    // Later cycles pass every method over: still CRITICAL, saying why.
    assert!(
        checks
            .iter()
            .all(|l| l.starts_with("_sc|postfix.can_collect|2|")),
        "{checks:?}"
    );
    assert!(
        checks
            .last()
            .unwrap()
            .contains("passed over until it is tried again"),
        "{checks:?}"
    );
}

#[test]
fn a_refused_queue_is_asked_again_only_after_a_back_off() {
    let s = Scratch::new();
    let udp = Udp::new();
    for q in ["deferred", "hold"] {
        std::fs::create_dir_all(s.path(&format!("spool/{q}"))).unwrap();
    }
    // The fake sudo logs each call here (the file is writable by all, as Scratch makes files).
    s.write("spool/sudo.calls", "");
    s.write("spool/refuse-deferred", "");
    let config = s.config(&format!(
        "dogstatsd: {{url: {}}}\ninit_config: {{postfix_user: postfix-test-nobody}}\ninstances:\n  - {{directory: {}, queues: [deferred, hold], min_collection_interval: 0.2}}\n",
        udp.url(),
        s.path("spool").display()
    ));
    let me = s.bin_copy();
    // As root the daemon would walk the directories itself; as nobody it asks (fake) sudo.
    let mut cmd = std::process::Command::new(if is_root() {
        "setpriv".as_ref()
    } else {
        me.as_os_str()
    });
    if is_root() {
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&me);
    }
    let mut d = Daemon::start_with(cmd, &config);
    let tag = "instance:spool";
    let lines = udp.lines_until(WAIT, |l| count_service_checks(l, tag) >= 10);
    d.signal("TERM");
    let _ = d.wait_exit(Duration::from_secs(5));
    assert!(count_service_checks(&lines, tag) >= 10, "{}", d.logs());
    let calls = std::fs::read_to_string(s.path("spool/sudo.calls")).unwrap_or_default();
    let asked = |q: &str| {
        calls
            .lines()
            .filter(|l| l.ends_with(&format!("/{q}")))
            .count()
    };
    // Ten cycles: hold every time, the refused queue once (then 1 minute of back-off).
    assert!(asked("hold") >= 10, "{calls}");
    assert_eq!(asked("deferred"), 1, "{calls}");
    // Still reported every cycle: first with the sudoers line that would allow it, then with
    // when it is asked again.
    let checks: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("_sc|postfix.can_collect|"))
        .collect();
    assert!(
        checks
            .iter()
            .all(|l| l.starts_with("_sc|postfix.can_collect|2|")),
        "{checks:?}"
    );
    assert!(checks[0].contains("add to sudoers"), "{checks:?}");
    assert!(
        checks[1..]
            .iter()
            .all(|l| l.contains("and is asked again in")),
        "{checks:?}"
    );
}

#[test]
fn reload_adds_and_removes_instances_and_moves_the_target() {
    let s = Scratch::new();
    let (before, after) = (Udp::new(), Udp::new());
    for pf in ["one", "two"] {
        s.postfix(
            pf,
            "ok",
            Some("tests/fixtures/postqueue-j/mixed.jsonl"),
            None,
        );
    }
    let instance = |pf: &str| {
        format!(
            "  - {{method: postqueue, config_directory: {}, min_collection_interval: 0.2}}\n",
            s.path(pf).display()
        )
    };
    let config = s.config(&format!(
        "dogstatsd: {{url: {}, tags: ['gen:a']}}\ninstances:\n{}",
        before.url(),
        instance("one")
    ));
    let mut d = Daemon::start(&config);
    let one = format!("instance:{}", s.path("one").display());
    let two = format!("instance:{}", s.path("two").display());
    assert!(
        count_service_checks(
            &before.lines_until(WAIT, |l| count_service_checks(l, &one) >= 1),
            &one
        ) >= 1
    );
    // The new config drops `one`, adds `two`, and sends elsewhere.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&before.url(), &after.url())
        .replace("gen:a", "gen:b")
        .replace(&instance("one"), &instance("two"));
    std::fs::write(&config, text).unwrap();
    d.signal("HUP");
    assert!(
        d.wait_log("reloaded: the new config is running", WAIT),
        "{}",
        d.logs()
    );
    let lines = after.lines_until(WAIT, |l| count_service_checks(l, &two) >= 3);
    assert!(count_service_checks(&lines, &two) >= 3, "{}", d.logs());
    assert!(lines.iter().all(|l| l.contains("gen:b")), "{lines:?}");
    assert_eq!(count_service_checks(&lines, &one), 0, "{lines:?}");
    // Nothing more goes to the old target (what was in flight at the reload aside).
    let _ = before.lines_until(Duration::from_millis(300), |_| false);
    let late = before.lines_until(Duration::from_secs(1), |_| false);
    assert!(late.is_empty(), "{late:?}");
    d.signal("TERM");
    let _ = d.wait_exit(Duration::from_secs(5));
}

#[test]
fn a_reload_never_runs_old_and_new_collections_of_an_instance_at_once() {
    let s = Scratch::new();
    let udp = Udp::new();
    s.postfix("hang", "hang", None, None);
    let config = s.config(&format!(
        "dogstatsd: {{url: {}}}\ninstances:\n  - {{method: postqueue, config_directory: {}, min_collection_interval: 0.2, timeout: 2}}\n",
        udp.url(),
        s.path("hang").display()
    ));
    let mut d = Daemon::start(&config);
    let calls = || std::fs::read_to_string(s.path("hang/calls")).map_or(0, |c| c.lines().count());
    let until = Instant::now() + WAIT;
    while calls() == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(calls(), 1);
    // Reload while the first run hangs: the new schedule waits for it (it ends at 2 s).
    d.signal("HUP");
    assert!(
        d.wait_log("reloaded: the new config is running", WAIT),
        "{}",
        d.logs()
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        calls(),
        1,
        "a second run started beside the first: {}",
        d.logs()
    );
    // Once the old run has ended, the new schedule runs.
    let until = Instant::now() + WAIT;
    while calls() < 2 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(calls() >= 2, "{}", d.logs());
    d.signal("TERM");
    let _ = d.wait_exit(Duration::from_secs(5));
}

#[test]
fn a_reload_reads_postmulti_again() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let udp = Udp::new();
    for pf in ["main", "out"] {
        s.postfix(
            pf,
            "ok",
            Some("tests/fixtures/postqueue-j/mixed.jsonl"),
            None,
        );
    }
    let listing = |out_enabled: &str| {
        format!(
            "-               -               y         {}\nout             mta             {out_enabled}         {}\n",
            s.path("main").display(),
            s.path("out").display()
        )
    };
    s.write("postmulti.out", listing("n"));
    let fake = s.write(
        "bin/postmulti",
        format!("#!/bin/sh\ncat {}\n", s.path("postmulti.out").display()),
    );
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = s.config(&format!(
        "  postmulti: {}\ndogstatsd: {{url: {}}}\ninstances:\n  - {{method: postqueue, discover: postmulti, min_collection_interval: 0.2}}\n",
        fake.display(),
        udp.url()
    ));
    let mut d = Daemon::start(&config);
    let lines = udp.lines_until(WAIT, |l| {
        count_service_checks(l, "postfix_instance:default") >= 1
    });
    assert!(
        count_service_checks(&lines, "postfix_instance:default") >= 1,
        "{}",
        d.logs()
    );
    assert_eq!(count_service_checks(&lines, "postfix_instance:out"), 0);
    // `postmulti -e enable` for out, then a reload: it is discovered.
    s.write("postmulti.out", listing("y"));
    d.signal("HUP");
    let lines = udp.lines_until(WAIT, |l| {
        count_service_checks(l, "postfix_instance:out") >= 1
    });
    assert!(
        count_service_checks(&lines, "postfix_instance:out") >= 1,
        "{}",
        d.logs()
    );
    d.signal("TERM");
    let _ = d.wait_exit(Duration::from_secs(5));
}

/// Recipients received so far per `status:` value.
fn recipients_by_status(lines: &[String]) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for l in lines {
        let Some(rest) = l.strip_prefix("postfix.delivery.recipients:") else {
            continue;
        };
        let (n, tags) = rest.split_once("|c|#").unwrap();
        let status = tags
            .split(',')
            .find_map(|t| t.strip_prefix("status:"))
            .unwrap();
        *out.entry(status.to_owned()).or_default() += n.parse::<u64>().unwrap();
    }
    out
}

fn totals(pairs: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
    pairs.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
}

fn append(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn log_file_counts_every_recipient_once_across_rotation_and_restart() {
    let s = Scratch::new();
    let udp = Udp::new();
    s.postfix(
        "good",
        "ok",
        Some("tests/fixtures/postqueue-j/mixed.jsonl"),
        None,
    );
    let log = s.path("mail.log");
    let state = s.path("state");
    // Phase 1: the captured log (18 deferrals) and two sent and one bounced recipient.
    let mut first = captured_log();
    first.push_str(&status_lines("postfix", "sent", 2));
    first.push_str(&status_lines("postfix-out", "bounced", 1));
    s.write("mail.log", &first);
    let config = s.config(&format!(
        "dogstatsd:\n  url: {}\n  tags: [dc:test]\ninit_config:\n  postqueue: true\ninstances:\n  - config_directory: {}\n    min_collection_interval: 3600\nlog:\n  source: file\n  path: {}\n  state_directory: {}\n  start_at: beginning\n  flush_interval: 1\n  tags: [wing:log]\n",
        udp.url(),
        s.path("good").display(),
        log.display(),
        state.display(),
    ));
    let mut d = Daemon::start(&config);
    let want = totals(&[("bounced", 1), ("deferred", 18), ("sent", 2)]);
    let mut lines = udp.lines_until(WAIT, |l| recipients_by_status(l) == want);
    assert_eq!(recipients_by_status(&lines), want, "{}", d.logs());
    // The rest of that flush: delays, self-metrics, the service check.
    lines.extend(udp.lines_until(WAIT, |l| {
        l.iter().any(|l| l.starts_with("_sc|postfix.log.can_read|"))
    }));
    // The exact tags of one series: log.tags first, then the series', then the global ones.
    assert!(
        lines.iter().any(|l| l.as_str()
            == "postfix.delivery.recipients:1|c|#wing:log,status:bounced,service:local,dsn_class:5,relay:local,instance:/etc/postfix-out,dc:test"),
        "{lines:#?}"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("postfix.delivery.delay:0.01|d|#wing:log,status:sent,")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("_sc|postfix.log.can_read|0|#wing:log,dc:test")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("postfix.log.lag:") && l.contains("|g|#wing:log,dc:test")));

    // Phase 2: a rename rotation, then more lines in the new file.
    std::fs::rename(&log, s.path("mail.log.1")).unwrap();
    append(&log, &status_lines("postfix", "sent", 3));
    let want = totals(&[("bounced", 1), ("deferred", 18), ("sent", 5)]);
    lines.extend(udp.lines_until(WAIT, |l| {
        let mut all = lines.clone();
        all.extend_from_slice(l);
        recipients_by_status(&all) == want
    }));
    assert_eq!(recipients_by_status(&lines), want, "{}", d.logs());
    assert!(d.wait_log("rotated", WAIT), "{}", d.logs());

    // A reload restarts the log task: its last flush counts what was just written, and the
    // new task resumes from the position saved then.
    append(&log, &status_lines("postfix", "sent", 1));
    d.signal("HUP");
    assert!(d.wait_log("reloaded", WAIT), "{}", d.logs());
    append(&log, &status_lines("postfix", "sent", 1));
    let want = totals(&[("bounced", 1), ("deferred", 18), ("sent", 7)]);
    lines.extend(udp.lines_until(WAIT, |l| {
        let mut all = lines.clone();
        all.extend_from_slice(l);
        recipients_by_status(&all) == want
    }));
    assert_eq!(recipients_by_status(&lines), want, "{}", d.logs());

    // Phase 3: lines written just before a SIGTERM are counted by its last flush; lines
    // written while it is down, after the restart.
    append(&log, &status_lines("postfix", "bounced", 2));
    d.signal("TERM");
    assert_eq!(d.wait_exit(WAIT).and_then(|st| st.code()), Some(0));
    assert!(state.join("log-position.json").is_file());
    append(&log, &status_lines("postfix", "sent", 4));
    let d = Daemon::start(&config);
    let want = totals(&[("bounced", 3), ("deferred", 18), ("sent", 11)]);
    lines.extend(udp.lines_until(WAIT, |l| {
        let mut all = lines.clone();
        all.extend_from_slice(l);
        recipients_by_status(&all) == want
    }));
    assert!(
        d.wait_log("resumed from the saved log position", WAIT),
        "{}",
        d.logs()
    );
    // A few more flushes: nothing is counted twice.
    lines.extend(udp.lines_until(Duration::from_millis(2500), |_| false));
    assert_eq!(recipients_by_status(&lines), want, "{}", d.logs());
}

#[test]
fn journal_counts_every_recipient_once_across_runs_and_restarts() {
    let Some(remote) = journal_remote() else {
        return;
    };
    let s = Scratch::new();
    let udp = Udp::new();
    s.postfix("good", "ok", None, None);
    let journal = s.path("journal");
    std::fs::create_dir_all(&journal).unwrap();
    let file = journal.join("remote.journal");
    let state = s.path("state");
    // Batch 1: the captured log (18 deferrals), two sent, one sent whose message is not UTF-8,
    // and a sent line from another facility, which is not the mail log.
    let mut first = captured_log();
    first.push_str(&status_lines("postfix", "sent", 2));
    journal_append(remote, &file, &first, 2);
    let odd = status_lines("postfix", "sent", 1).replace("u0@", "u\u{fffd}@");
    journal_append(remote, &file, &odd, 2);
    journal_append(remote, &file, &status_lines("postfix", "sent", 1), 3);
    let config = s.config(&format!(
        "dogstatsd:\n  url: {}\ninit_config:\n  postqueue: true\ninstances:\n  - config_directory: {}\n    min_collection_interval: 3600\nlog:\n  source: journal\n  journal_directory: {}\n  state_directory: {}\n  start_at: beginning\n  flush_interval: 1\n  tags: [wing:journal]\n",
        udp.url(),
        s.path("good").display(),
        journal.display(),
        state.display(),
    ));
    let mut d = Daemon::start(&config);
    let want = totals(&[("deferred", 18), ("sent", 3)]);
    let mut lines = udp.lines_until(WAIT, |l| recipients_by_status(l) == want);
    assert_eq!(recipients_by_status(&lines), want, "{}", d.logs());
    lines.extend(udp.lines_until(WAIT, |l| {
        l.iter()
            .any(|l| l.starts_with("_sc|postfix.log.can_read|0|#wing:journal"))
    }));
    assert!(
        lines.iter().any(|l| l
            == "postfix.delivery.recipients:2|c|#wing:journal,status:sent,service:local,dsn_class:2,relay:local,instance:/etc/postfix")
            || lines.iter().any(|l| l
                == "postfix.delivery.recipients:3|c|#wing:journal,status:sent,service:local,dsn_class:2,relay:local,instance:/etc/postfix"),
        "{lines:#?}"
    );
    assert!(d.wait_log("reading the journal", WAIT), "{}", d.logs());

    // Batch 2, written while the daemon is down: counted once after the restart.
    d.signal("TERM");
    assert_eq!(d.wait_exit(WAIT).and_then(|st| st.code()), Some(0));
    let cursor = std::fs::read_to_string(state.join("journal-cursor")).unwrap();
    assert!(cursor.starts_with("s="), "{cursor}");
    journal_append(remote, &file, &status_lines("postfix", "bounced", 2), 2);
    let d = Daemon::start(&config);
    let want = totals(&[("bounced", 2), ("deferred", 18), ("sent", 3)]);
    lines.extend(udp.lines_until(WAIT, |l| {
        let mut all = lines.clone();
        all.extend_from_slice(l);
        recipients_by_status(&all) == want
    }));
    assert_eq!(recipients_by_status(&lines), want, "{}", d.logs());
    assert!(d.wait_log("--after-cursor=s=", WAIT), "{}", d.logs());

    // Batch 3, while it runs: the next run starts after the last entry read; counted once.
    journal_append(remote, &file, &status_lines("postfix-out", "sent", 4), 2);
    let want = totals(&[("bounced", 2), ("deferred", 18), ("sent", 7)]);
    lines.extend(udp.lines_until(WAIT, |l| {
        let mut all = lines.clone();
        all.extend_from_slice(l);
        recipients_by_status(&all) == want
    }));
    assert_eq!(recipients_by_status(&lines), want, "{}", d.logs());
    // A few more flushes: nothing is counted twice, and the service check is OK again.
    let after = udp.lines_until(Duration::from_millis(3000), |_| false);
    lines.extend(after.iter().cloned());
    assert_eq!(recipients_by_status(&lines), want, "{}", d.logs());
    assert!(
        after
            .iter()
            .any(|l| l.starts_with("_sc|postfix.log.can_read|0|#wing:journal")),
        "{after:#?}\n{}",
        d.logs()
    );
}

#[test]
fn a_refused_journal_cursor_is_critical_and_reading_goes_on() {
    let Some(remote) = journal_remote() else {
        return;
    };
    let s = Scratch::new();
    let udp = Udp::new();
    s.postfix("good", "ok", None, None);
    let journal = s.path("journal");
    std::fs::create_dir_all(&journal).unwrap();
    let file = journal.join("remote.journal");
    journal_append(remote, &file, &status_lines("postfix", "sent", 1), 2);
    let state = s.path("state");
    std::fs::create_dir_all(&state).unwrap();
    // A cursor of the right shape that journalctl cannot seek to.
    std::fs::write(state.join("journal-cursor"), "s=nothing;i=zz\n").unwrap();
    let config = s.config(&format!(
        "dogstatsd:\n  url: {}\ninit_config:\n  postqueue: true\ninstances:\n  - config_directory: {}\n    min_collection_interval: 3600\nlog:\n  source: journal\n  journal_directory: {}\n  state_directory: {}\n  flush_interval: 1\n",
        udp.url(),
        s.path("good").display(),
        journal.display(),
        state.display(),
    ));
    let d = Daemon::start(&config);
    let lines = udp.lines_until(WAIT, |l| {
        l.iter()
            .any(|l| l.starts_with("_sc|postfix.log.can_read|2|"))
    });
    let check = lines
        .iter()
        .find(|l| l.starts_with("_sc|postfix.log.can_read|2|"))
        .unwrap_or_else(|| panic!("{lines:#?}\n{}", d.logs()));
    assert!(check.contains("refused the saved cursor"), "{check}");
    // A cursor without a time: the next run finds where the journal ends, and what is logged
    // from then on is counted.
    assert!(d.wait_log("--lines=1", WAIT), "{}", d.logs());
    std::thread::sleep(Duration::from_millis(1500));
    journal_append(remote, &file, &status_lines("postfix", "bounced", 3), 2);
    let lines = udp.lines_until(WAIT, |l| recipients_by_status(l).get("bounced") == Some(&3));
    assert_eq!(
        recipients_by_status(&lines).get("bounced"),
        Some(&3),
        "{}",
        d.logs()
    );
}

#[test]
fn log_file_missing_is_critical_with_its_reason() {
    let s = Scratch::new();
    let udp = Udp::new();
    s.postfix("good", "ok", None, None);
    let config = s.config(&format!(
        "dogstatsd:\n  url: {}\ninit_config:\n  postqueue: true\ninstances:\n  - config_directory: {}\n    min_collection_interval: 3600\nlog:\n  source: file\n  path: {}\n  state_directory: {}\n  flush_interval: 1\n",
        udp.url(),
        s.path("good").display(),
        s.path("nowhere.log").display(),
        s.path("state").display(),
    ));
    let d = Daemon::start(&config);
    let lines = udp.lines_until(WAIT, |l| {
        l.iter().any(|l| l.starts_with("_sc|postfix.log.can_read|"))
    });
    let check = lines
        .iter()
        .find(|l| l.starts_with("_sc|postfix.log.can_read|"))
        .unwrap_or_else(|| panic!("{}", d.logs()));
    assert!(
        check.starts_with("_sc|postfix.log.can_read|2|")
            && check.contains("nowhere.log does not exist"),
        "{check}"
    );
}
