//! Against a real Postfix and a third-party DogStatsD receiver (the npm `statsd` daemon):
//! runs when POSTFIX_E2E=1, after tests/e2e/postfix-setup.sh and tests/e2e/statsd-start.sh
//! (as root; `.ci/run` does both). The real daemon runs as the unprivileged user `pfdtest`
//! with the documented sudoers lines; the truth is counted as root with `find`.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use common::*;

/// The tests share one Postfix: one at a time.
static POSTFIX: Mutex<()> = Mutex::new(());
const USER: &str = "pfdtest";
const STATSD_UDP: &str = "udp://127.0.0.1:18125";
const STATSD_UNIX: &str = "unix:///tmp/pfd-statsd/dsd.socket";
const QUEUES: [&str; 5] = ["incoming", "active", "deferred", "hold", "maildrop"];

fn enabled(test: &str) -> bool {
    if std::env::var_os("POSTFIX_E2E").is_some_and(|v| v == "1") {
        return true;
    }
    // In CI a skipped end-to-end test would pass unseen: there it must fail.
    assert!(
        std::env::var_os("CI").is_none_or(|v| v != "true"),
        "{test}: CI=true but POSTFIX_E2E is not 1: the real-Postfix tests must run in CI (.ci/run sets them up as root on Debian)"
    );
    // Straight to stderr: libtest captures eprintln! of passing tests, and a skip must show.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: set POSTFIX_E2E=1 (after tests/e2e/postfix-setup.sh) to run it against a real Postfix"
    );
    false
}

fn script(name: &str, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo(&format!("tests/e2e/{name}")))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// The files in each queue, counted here, as root, with a walk of our own: not with `find`
/// (what method find runs) nor with the daemon's walker (what scan runs).
fn truth() -> BTreeMap<String, u64> {
    fn files(dir: &std::path::Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => files(&e.path()),
                Ok(t) if t.is_file() => 1,
                _ => 0,
            })
            .sum()
    }
    let spool = script("queue-dir.sh", &[]);
    [
        "maildrop", "incoming", "active", "deferred", "hold", "corrupt",
    ]
    .into_iter()
    .map(|q| {
        (
            q.to_owned(),
            files(&std::path::Path::new(spool.trim()).join(q)),
        )
    })
    .collect()
}

/// Empty queues, then real mail in every queue, frozen (qmgr and pickup paused).
fn fill() -> BTreeMap<String, u64> {
    script("postfix-reset.sh", &[]);
    script("fill-queues.sh", &["12"]);
    let t = truth();
    for q in QUEUES {
        assert!(t[q] > 0, "fill-queues left {q} empty: {t:?}");
    }
    t
}

/// The daemon binary run as `pfdtest`.
fn as_user(s: &Scratch, args: &[&str]) -> Output {
    let me = s.bin_copy();
    Command::new("runuser")
        .args(["-u", USER, "--"])
        .arg(&me)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap()
}

/// The daemon as pfdtest, with its groups, for `Daemon::start_with`: setpriv execs it, so that
/// our signals (and the test's kill when it ends) reach the daemon itself; under runuser they
/// reached runuser, and a daemon outlived its test.
fn as_user_exec(s: &Scratch) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={USER}"),
        &format!("--regid={USER}"),
        "--init-groups",
    ])
    .arg(s.bin_copy());
    cmd
}

/// A config file with the real commands.
fn config(s: &Scratch, body: &str) -> String {
    let path = s.write("config.yaml", body);
    // Readable by pfdtest; writable by root alone, which a daemon run as root insists on.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    path.display().to_string()
}

fn gauges(out: &str, tag: &str) -> BTreeMap<String, u64> {
    out.lines()
        .filter(|l| l.starts_with("postfix.queue.size:") && l.contains(tag))
        .map(|l| {
            let value = l["postfix.queue.size:".len()..]
                .split('|')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let queue = l
                .split("queue:")
                .nth(1)
                .unwrap()
                .split([',', '|'])
                .next()
                .unwrap();
            (queue.to_owned(), value)
        })
        .collect()
}

fn statsd(command: &str) -> String {
    script("statsd-query.sh", &[command, "--json"])
}

fn bad_lines() -> u64 {
    statsd("stats")
        .split("bad_lines_seen")
        .nth(1)
        .and_then(|rest| {
            rest.trim_start_matches(['"', ':', ' '])
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .map(str::to_owned)
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no bad_lines_seen in {}", statsd("stats")))
}

/// A number no earlier call returned in this process.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    now + NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
}

/// The receiver's value for `postfix.queue.size` with `run:<run>` and `queue:<q>`.
fn received(run: &str, queue: &str) -> Option<u64> {
    let json = statsd("gauges");
    let key = format!("postfix.queue.size;run={run};queue={queue};");
    let at = json.find(&key)?;
    let rest = &json[at..];
    let value = rest.split_once("\":")?.1.trim_start();
    value
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// `check --send` as pfdtest; the gauges printed and the gauges statsd received both equal the
/// truth, and statsd rejected no metric line (it rejects service checks: one per instance).
fn check_against_truth(method_yaml: &str, url: &str, run: &str, queues: &[&str]) {
    let _lock = POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
    let want = fill();
    let s = Scratch::new();
    // The receiver outlives this test: a run tag of this run's own, so that only what this
    // run sent is read back.
    let run = &format!("{run}-{}-{}", std::process::id(), unique());
    let cfg = config(
        &s,
        &format!("dogstatsd: {{url: \"{url}\"}}\ninit_config: {{postfix_user: postfix}}\ninstances:\n  - {method_yaml}\n    tags: [\"run:{run}\"]\n"),
    );
    let bad_before = bad_lines();
    let out = as_user(&s, &["check", "--send", "-c", &cfg]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let got = gauges(&text, &format!("run:{run}"));
    for q in queues {
        assert_eq!(
            got.get(*q),
            Some(&want[*q]),
            "queue {q}: check printed {got:?}, truth {want:?}\n{text}"
        );
        // The table row too.
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().take(2).collect::<Vec<_>>()
                    == [*q, &want[*q].to_string()]),
            "{text}"
        );
    }
    // What the third-party receiver made of the lines we sent.
    let mut seen = BTreeMap::new();
    for _ in 0..50 {
        seen = queues
            .iter()
            .filter_map(|q| received(run, q).map(|v| (q.to_string(), v)))
            .collect();
        if seen.len() == queues.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for q in queues {
        assert_eq!(
            seen.get(*q),
            Some(&want[*q]),
            "statsd holds {seen:?}, truth {want:?}"
        );
    }
    let service_checks = text.lines().filter(|l| l.starts_with("_sc|")).count() as u64;
    assert_eq!(
        bad_lines() - bad_before,
        service_checks,
        "statsd rejected metric lines:\n{text}"
    );
}

#[test]
fn find_method_as_unprivileged_user_with_sudoers_over_udp() {
    if enabled("find_method_as_unprivileged_user_with_sudoers_over_udp") {
        check_against_truth(
            "directory: /var/spool/postfix\n    queues: [incoming, active, deferred, hold, maildrop]",
            STATSD_UDP,
            "find-udp",
            &QUEUES,
        );
    }
}

#[test]
fn find_method_over_unix_socket() {
    if enabled("find_method_over_unix_socket") {
        check_against_truth(
            "directory: /var/spool/postfix\n    queues: [incoming, active, deferred, hold, maildrop]",
            STATSD_UNIX,
            "find-unix",
            &QUEUES,
        );
    }
}

#[test]
fn postqueue_method_counts_all_five_queues_over_udp() {
    if enabled("postqueue_method_counts_all_five_queues_over_udp") {
        check_against_truth(
            "method: postqueue\n    config_directory: /etc/postfix",
            STATSD_UDP,
            "pq-udp",
            &QUEUES,
        );
    }
}

#[test]
fn postqueue_method_over_unix_socket() {
    if enabled("postqueue_method_over_unix_socket") {
        check_against_truth(
            "method: postqueue\n    config_directory: /etc/postfix",
            STATSD_UNIX,
            "pq-unix",
            &QUEUES,
        );
    }
}

#[test]
fn missing_sudoers_line_is_named_and_never_hangs() {
    if !enabled("missing_sudoers_line_is_named_and_never_hangs") {
        return;
    }
    let _lock = POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
    let want = fill();
    let s = Scratch::new();
    // The test sudoers has no line for corrupt.
    let cfg = config(
        &s,
        "init_config: {postfix_user: postfix}\ninstances:\n  - {directory: /var/spool/postfix, queues: [deferred, corrupt, hold], timeout: 20}\n",
    );
    let started = std::time::Instant::now();
    let out = as_user(&s, &["check", "-c", &cfg]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "sudo -n must fail at once"
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("error: queue corrupt: sudo refused"),
        "{text}"
    );
    assert!(text.contains("add to sudoers: `pfdtest ALL=(postfix) NOPASSWD: /usr/bin/find /var/spool/postfix/corrupt -type f`"), "{text}");
    let got = gauges(&text, "instance:postfix");
    assert_eq!(got.get("deferred"), Some(&want["deferred"]));
    assert_eq!(got.get("hold"), Some(&want["hold"]));
    assert_eq!(got.get("corrupt"), None, "no gauge for the refused queue");
    assert!(text.contains("_sc|postfix.can_collect|2|"), "{text}");
}

#[test]
fn not_in_authorized_mailq_users_is_reported_as_such() {
    if !enabled("not_in_authorized_mailq_users_is_reported_as_such") {
        return;
    }
    let _lock = POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
    fill();
    let s = Scratch::new();
    let cfg = config(
        &s,
        "instances:\n  - {method: postqueue, config_directory: /etc/postfix}\n",
    );
    postconf("authorized_mailq_users = root");
    let out = as_user(&s, &["check", "-c", &cfg]);
    postconf("authorized_mailq_users = static:anyone");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("this user is not in Postfix's authorized_mailq_users"),
        "{text}"
    );
    assert!(text.contains("User pfdtest"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("postfix.queue.size:")),
        "{text}"
    );
}

fn postconf(setting: &str) {
    let st = Command::new("postconf")
        .args(["-e", setting])
        .status()
        .unwrap();
    assert!(st.success());
}

fn postfix(action: &str) {
    let out = Command::new("postfix").arg(action).output().unwrap();
    assert!(out.status.success(), "postfix {action}: {}", stderr(&out));
}

#[test]
fn postfix_stopped_gives_critical_and_no_gauge_then_recovers_without_restart() {
    if !enabled("postfix_stopped_gives_critical_and_no_gauge_then_recovers_without_restart") {
        return;
    }
    let _lock = POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
    fill();
    let s = Scratch::new();
    let udp = Udp::new();
    let cfg = config(
        &s,
        &format!("dogstatsd: {{url: \"{}\"}}\ninstances:\n  - {{method: postqueue, config_directory: /etc/postfix, min_collection_interval: 0.5}}\n", udp.url()),
    );
    let d = Daemon::start_with(as_user_exec(&s), std::path::Path::new(&cfg));
    let ok = |l: &[String]| {
        l.iter()
            .any(|x| x.starts_with("_sc|postfix.can_collect|0|"))
    };
    assert!(
        ok(&udp.lines_until(Duration::from_secs(15), ok)),
        "{}",
        d.logs()
    );

    postfix("stop");
    let _ = udp.lines_until(Duration::from_secs(1), |_| false); // what was in flight
    let critical = |l: &[String]| {
        l.iter()
            .filter(|x| x.starts_with("_sc|postfix.can_collect|2|"))
            .count()
            >= 2
    };
    let lines = udp.lines_until(Duration::from_secs(15), critical);
    postfix("start");
    assert!(critical(&lines), "{lines:?}\n{}", d.logs());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("m:Postfix is not running") && l.contains("mail system is down")),
        "{lines:?}"
    );
    // While stopped, not one gauge: never a made-up 0.
    let stopped: Vec<&String> = lines
        .iter()
        .skip_while(|l| !l.starts_with("_sc|postfix.can_collect|2|"))
        .take_while(|l| !l.starts_with("_sc|postfix.can_collect|0|"))
        .collect();
    assert!(
        !stopped.iter().any(|l| l.starts_with("postfix.queue.size")),
        "{stopped:?}"
    );

    let after = udp.lines_until(Duration::from_secs(20), ok);
    assert!(ok(&after), "no recovery: {after:?}\n{}", d.logs());
    let want = truth();
    let got = gauges(&after.join("\n"), "instance:/etc/postfix");
    assert_eq!(got.get("deferred"), Some(&want["deferred"]), "{after:?}");
}

#[test]
fn check_table_on_the_real_setup() {
    if !enabled("check_table_on_the_real_setup") {
        return;
    }
    let _lock = POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
    let want = fill();
    let s = Scratch::new();
    let cfg = config(
        &s,
        "init_config: {postfix_user: postfix}\ninstances:\n  - {method: postqueue}\n  - {directory: /var/spool/postfix, queues: [incoming, active, deferred, hold, maildrop]}\n",
    );
    let out = as_user(&s, &["check", "-c", &cfg]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // Each table: a header, then one row per queue whose first two columns are queue and count.
    let rows = |after: &str| -> Vec<(String, u64)> {
        text.split(after)
            .nth(1)
            .unwrap_or_else(|| panic!("no {after:?} in:\n{text}"))
            .lines()
            .skip(2)
            .take_while(|l| !l.trim().is_empty())
            .map(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                (c[0].to_owned(), c[1].parse().unwrap())
            })
            .collect()
    };
    let postqueue = rows("instances[0] (postqueue /etc/postfix): OK (postqueue -j, ");
    let find = rows("instances[1] (find postfix): OK (sudo find, ");
    let expect = |qs: &[&str]| {
        qs.iter()
            .map(|q| (q.to_string(), want[*q]))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        postqueue,
        expect(&["active", "hold", "deferred", "incoming", "maildrop"]),
        "{text}"
    );
    assert_eq!(find, expect(&QUEUES), "{text}");
}

/// The daemon as `user`, with only the groups given and no way to gain privileges, as the
/// fully hardened unit runs it (NoNewPrivileges=yes).
fn no_new_privs(s: &Scratch, user: &str, groups: &str, args: &[&str]) -> Output {
    let me = s.bin_copy();
    Command::new("setpriv")
        .args([
            &format!("--reuid={user}"),
            &format!("--regid={user}"),
            &format!("--groups={groups}"),
            "--no-new-privs",
        ])
        .arg(&me)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap()
}

#[test]
fn every_method_gives_the_truth_showq_and_scan_without_new_privileges() {
    if !enabled("every_method_gives_the_truth_showq_and_scan_without_new_privileges") {
        return;
    }
    let _lock = POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
    let want = fill();
    let s = Scratch::new();
    let cfg = |method: &str| {
        config(
            &s,
            &format!("init_config: {{postfix_user: postfix}}\ninstances:\n  - {{method: {method}, config_directory: /etc/postfix}}\n"),
        )
    };
    // showq: an unprivileged user in group postdrop, no setuid or setgid possible.
    let showq = no_new_privs(&s, USER, "postdrop", &["check", "-c", &cfg("showq")]);
    // auto, the same user: showq is the least privileged method and works.
    let auto = no_new_privs(&s, USER, "postdrop", &["check", "-c", &cfg("auto")]);
    // scan: as the postfix user, which owns the queue directories.
    let scan = no_new_privs(&s, "postfix", "postfix", &["check", "-c", &cfg("scan")]);
    // postqueue and find (sudo) as before, for the side-by-side.
    let postqueue = as_user(&s, &["check", "-c", &cfg("postqueue")]);
    let find = as_user(
        &s,
        &["check", "-c", &config(&s, "init_config: {postfix_user: postfix}\ninstances:\n  - {directory: /var/spool/postfix, queues: [incoming, active, deferred, hold, maildrop]}\n")],
    );
    for (name, out) in [
        ("showq", &showq),
        ("auto", &auto),
        ("scan", &scan),
        ("postqueue", &postqueue),
        ("find", &find),
    ] {
        let text = stdout(out);
        assert_eq!(out.status.code(), Some(0), "{name}: {text}{}", stderr(out));
        let got = gauges(&text, "instance:");
        for q in QUEUES {
            assert_eq!(
                got.get(q),
                Some(&want[q]),
                "{name}, queue {q}: {got:?} vs truth {want:?}\n{text}"
            );
        }
    }
    assert!(
        stdout(&auto).contains("(auto: showq socket (the least privileged method, and it works)"),
        "{}",
        stdout(&auto)
    );
    assert_eq!(
        gauges(&stdout(&scan), "instance:").get("corrupt"),
        Some(&want["corrupt"])
    );
    // showq and postqueue -j list the same messages: every rich figure but ages agrees.
    let rich = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| {
                l.starts_with("postfix.queue.")
                    && !l.starts_with("postfix.queue.oldest_age")
                    && !l.starts_with("postfix.queue.older_than")
            })
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(rich(&stdout(&showq)), rich(&stdout(&postqueue)));
    // And they agree with the truth, worked out here from `postqueue -j` as root with a JSON
    // parser of its own: bytes and recipients (each address once per message) per queue.
    let listing = Command::new("postqueue").arg("-j").output().unwrap();
    let mut bytes: BTreeMap<String, u64> = BTreeMap::new();
    let mut recipients: BTreeMap<String, u64> = BTreeMap::new();
    for line in String::from_utf8_lossy(&listing.stdout).lines() {
        let m: serde_json::Value = serde_json::from_str(line).unwrap();
        let q = m["queue_name"].as_str().unwrap().to_owned();
        *bytes.entry(q.clone()).or_default() += m["message_size"].as_u64().unwrap();
        let addresses: std::collections::BTreeSet<&str> = m["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["address"].as_str().unwrap())
            .collect();
        *recipients.entry(q).or_default() += addresses.len() as u64;
    }
    let figure = |text: &str, name: &str, q: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}:")) && l.contains(&format!("queue:{q},")))
            .and_then(|l| l[name.len() + 1..].split('|').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} for {q}: {text}"))
    };
    for q in QUEUES {
        let text = stdout(&showq);
        assert_eq!(
            figure(&text, "postfix.queue.bytes", q),
            bytes.get(q).copied().unwrap_or(0),
            "{q}"
        );
        assert_eq!(
            figure(&text, "postfix.queue.recipients", q),
            recipients.get(q).copied().unwrap_or(0),
            "{q}"
        );
    }
}

#[test]
fn a_second_postfix_instance_through_postmulti_discovery() {
    if !enabled("a_second_postfix_instance_through_postmulti_discovery") {
        return;
    }
    let _lock = POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
    let want = fill();
    script("postmulti-setup.sh", &["--reset"]);
    script("postmulti-setup.sh", &["--fill", "9"]);
    let want_out: BTreeMap<String, u64> = script("postmulti-setup.sh", &["--truth"])
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(q, n)| (q.to_owned(), n.trim().parse().unwrap()))
        .collect();
    assert_eq!(want_out["deferred"], 9, "{want_out:?}");
    let s = Scratch::new();
    let cfg = config(&s, "instances:\n  - {method: showq, discover: postmulti}\n  - {method: postqueue, config_directory: /etc/postfix-out}\n");
    let out = no_new_privs(&s, USER, "postdrop", &["check", "-c", &cfg]);
    let text = stdout(&out);
    script("postmulti-setup.sh", &["--reset"]);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let main = gauges(&text, "postfix_instance:default");
    let second = gauges(&text, "postfix_instance:postfix-out");
    for q in QUEUES {
        assert_eq!(main.get(q), Some(&want[q]), "default instance, {q}\n{text}");
        assert_eq!(
            second.get(q),
            Some(&want_out[q]),
            "postfix-out, {q}\n{text}"
        );
    }
    // The same second instance through postqueue -c agrees (as pfdtest: allowed because
    // postmulti lists it in multi_instance_directories).
    let direct: String = text
        .lines()
        .filter(|l| !l.contains("postfix_instance:") && l.ends_with("instance:/etc/postfix-out"))
        .collect::<Vec<_>>()
        .join("\n");
    let direct = gauges(&direct, "instance:/etc/postfix-out");
    for q in QUEUES {
        assert_eq!(
            direct.get(q),
            Some(&want_out[q]),
            "postqueue -c /etc/postfix-out, {q}\n{text}"
        );
    }
}

#[test]
fn a_hung_command_under_real_sudo_is_never_started_twice() {
    if !enabled("a_hung_command_under_real_sudo_is_never_started_twice") {
        return;
    }
    // What sudo runs as postfix ignores our SIGTERM (sudo relays it) and our SIGKILL cannot
    // reach it: a run times out after 2 s, its command lives 7 s, runs come every 3 s.
    let s = Scratch::new();
    let udp = Udp::new();
    let cfg = config(
        &s,
        &format!("dogstatsd: {{url: \"{}\"}}\ninit_config: {{postfix_user: postfix}}\ncommands: {{find: /usr/local/libexec/pfdtest-hang-find}}\ninstances:\n  - {{method: find, directory: /var/spool/postfix, queues: [deferred], min_collection_interval: 3, timeout: 2}}\n", udp.url()),
    );
    let mut d = Daemon::start_with(as_user_exec(&s), std::path::Path::new(&cfg));
    // The hung command's shell, each counted once: the child it forks for `sleep` has the same
    // command line until it execs, so a process whose parent is one of them is not counted.
    let hung = || {
        let is_hung = |pid: &str| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"/bin/sh\0/usr/local/libexec/pfdtest-hang-find"))
        };
        let parent = |pid: &str| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...: comm may hold spaces, so after the last ')'.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after.split_whitespace().nth(1).unwrap_or("0").to_owned()
        };
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
            .filter(|pid| is_hung(pid) && !is_hung(&parent(pid)))
            .count()
    };
    let started = std::time::Instant::now();
    let mut most = 0;
    while started.elapsed() < Duration::from_secs(30) {
        most = most.max(hung());
        std::thread::sleep(Duration::from_millis(100));
    }
    d.signal("TERM");
    let stopped = std::time::Instant::now();
    assert_eq!(
        d.wait_exit(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0),
        "{}",
        d.logs()
    );
    assert!(stopped.elapsed() < Duration::from_secs(5));
    let lines = udp.lines_until(Duration::from_millis(200), |_| false);
    let checks: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("_sc|postfix.can_collect|"))
        .collect();
    assert_eq!(most, 1, "hung commands alive at once: {most}\n{}", d.logs());
    // Every cycle CRITICAL: timed out, or not started while the command lived.
    assert!(checks.len() >= 8, "{checks:?}");
    assert!(
        checks
            .iter()
            .all(|l| l.starts_with("_sc|postfix.can_collect|2|")),
        "{checks:?}"
    );
    assert!(
        checks.iter().any(|l| l.contains("did not finish within")),
        "{checks:?}"
    );
    assert!(
        checks
            .iter()
            .any(|l| l.contains("still running after it was stopped")),
        "{checks:?}"
    );
}

#[test]
fn thousands_of_messages_counted_by_every_method() {
    if !enabled("thousands_of_messages_counted_by_every_method") {
        return;
    }
    let _lock = POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
    // 3,000 real deferred queue files (copies of one real message, renamed by postsuper).
    script("bulk-fill.sh", &["3000"]);
    let want = truth();
    assert!(want["deferred"] >= 3000, "{want:?}");
    let s = Scratch::new();
    for method in [
        "{method: postqueue, config_directory: /etc/postfix}",
        "{method: find, directory: /var/spool/postfix, queues: [incoming, active, deferred, hold, maildrop]}",
    ] {
        let cfg = config(
            &s,
            &format!("init_config: {{postfix_user: postfix}}\ninstances:\n  - {method}\n"),
        );
        let out = as_user(&s, &["check", "-c", &cfg]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{method}: {text}{}", stderr(&out));
        let got = gauges(&text, "instance:");
        for q in QUEUES {
            assert_eq!(got.get(q), Some(&want[q]), "{method}, {q}: {got:?} vs {want:?}");
        }
    }
    script("postfix-reset.sh", &[]);
}

/// maillog_file, set by postfix-setup.sh.
const POSTFIX_LOG: &str = "/var/log/postfix.log";

/// The lines of Postfix's log file, from byte `from` on.
fn log_since(from: u64) -> Vec<String> {
    let text = std::fs::read(POSTFIX_LOG).unwrap_or_default();
    let from = usize::try_from(from).unwrap_or(usize::MAX).min(text.len());
    String::from_utf8_lossy(&text[from..])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn log_len() -> u64 {
    std::fs::metadata(POSTFIX_LOG).map_or(0, |m| m.len())
}

/// Waits (up to 60 s) until the log's lines since `from` that contain `needle` are `want`,
/// and says how many there were.
fn wait_log_lines(from: u64, needle: &str, want: usize) -> usize {
    let count = || {
        log_since(from)
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    };
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while count() < want && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    count()
}

/// A message through `sendmail` (pickup), as root.
fn sendmail(from: &str, to: &str) {
    let mut child = Command::new("sendmail")
        .args(["-f", from, to])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Subject: log test\n\nbody\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// The daemon following Postfix's log file from its end, flushing every second, with only a
/// queue collection an hour away, its series tagged `run:<run>`. Returned once past its first
/// flush, so that only what comes next is counted.
fn follow_the_log(s: &Scratch, run: &str) -> Daemon {
    std::fs::create_dir_all(s.path("state")).unwrap();
    let cfg = config(
        s,
        &format!(
            "dogstatsd: {{url: \"{STATSD_UDP}\"}}\ninit_config: {{postqueue: true}}\ninstances:\n  - {{config_directory: /etc/postfix, min_collection_interval: 3600}}\nlog:\n  source: file\n  path: {POSTFIX_LOG}\n  state_directory: {}\n  start_at: end\n  flush_interval: 1\n  top_domains: 2\n  tags: [\"run:{run}\"]\n",
            s.path("state").display()
        ),
    );
    // As root: the test reads a root-owned log; the daemon's permissions are the unit's business.
    let mut cmd = Command::new(s.bin_copy());
    cmd.args(["--log-level", "info"]);
    let d = Daemon::start_with(cmd, std::path::Path::new(&cfg));
    assert!(
        d.wait_log("collecting", Duration::from_secs(10)),
        "{}",
        d.logs()
    );
    std::thread::sleep(Duration::from_millis(1500)); // past the first flush: start_at end
    d
}

/// What the receiver counted for one run: the sum of a metric's counters carrying `run:<run>`
/// and every one of `tags` (statsd folds tags into the key as `key=value`, and writes `/` as
/// `-`).
struct Counted {
    counters: serde_json::Value,
    run: String,
}

impl Counted {
    /// Two more flushes, then the daemon stopped and the receiver asked.
    fn after(mut d: Daemon, run: &str) -> Counted {
        std::thread::sleep(Duration::from_millis(2500));
        d.signal("TERM");
        let _ = d.wait_exit(Duration::from_secs(5));
        Counted {
            counters: serde_json::from_str(&statsd("counters")).unwrap(),
            run: run.to_owned(),
        }
    }

    fn count(&self, metric: &str, tags: &[&str]) -> u64 {
        self.counters
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| {
                let k = format!("{k};");
                k.starts_with(&format!("{metric};"))
                    && k.contains(&format!(";run={};", self.run))
                    && tags.iter().all(|t| k.contains(&format!(";{t};")))
            })
            .map(|(_, v)| v.as_f64().unwrap() as u64)
            .sum()
    }

    /// This run's series of one metric, for a failure's message.
    fn series(&self, metric: &str) -> Vec<String> {
        let run = format!(";run={};", self.run);
        self.counters
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{metric};")) && format!("{k};").contains(&run))
            .map(|(k, v)| format!("{k} = {v}"))
            .collect()
    }
}

#[test]
fn the_real_postfix_log_counted_by_outcome() {
    if !enabled("the_real_postfix_log_counted_by_outcome") {
        return;
    }
    let _lock = POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
    // Postfix running, nothing paused, nothing queued: only our traffic moves.
    script("postfix-reset.sh", &[]);
    let s = Scratch::new();
    let run = format!("log-{}-{}", std::process::id(), unique());
    let d = follow_the_log(&s, &run);
    let from = log_len();
    // Known traffic: 3 delivered locally, 2 to an unknown local user (bounced, and their 2
    // non-delivery notices delivered to root), 2 to the closed relay port (deferred, then
    // expired below).
    for to in ["root@localhost"; 3] {
        sendmail("root@localhost", to);
    }
    for to in ["nosuchuser@localhost"; 2] {
        sendmail("root@localhost", to);
    }
    for to in ["someone@refused.test"; 2] {
        sendmail("root@localhost", to);
    }
    assert_eq!(
        wait_log_lines(from, " status=", 9),
        9,
        "status lines in {POSTFIX_LOG}"
    );
    // Expiry: with maximal_queue_lifetime = 0, the retry of each deferred message is deferred
    // once more, then the queue manager returns it to the sender (one `status=expired` line
    // per message), and the notice is delivered to root.
    let postconf = |args: &[&str]| {
        assert!(Command::new("postconf")
            .args(args)
            .status()
            .unwrap()
            .success());
        assert!(Command::new("postfix")
            .arg("reload")
            .status()
            .unwrap()
            .success());
    };
    // Put back even when an assertion fails: every later test needs mail to stay queued.
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = Command::new("postconf")
                .args(["-X", "maximal_queue_lifetime"])
                .status();
            let _ = Command::new("postfix").arg("reload").status();
        }
    }
    let restore = Restore;
    postconf(&["-e", "maximal_queue_lifetime = 0"]);
    assert!(Command::new("postqueue")
        .arg("-f")
        .status()
        .unwrap()
        .success());
    // 4 more recipient status lines (2 retries, 2 notices) and the 2 `status=expired` lines.
    let expired = ", status=expired, returned to sender";
    assert_eq!(
        wait_log_lines(from, expired, 2),
        2,
        "expiry lines in {POSTFIX_LOG}"
    );
    assert_eq!(
        wait_log_lines(from, " status=", 15),
        15,
        "status lines in {POSTFIX_LOG}"
    );
    drop(restore);
    let c = Counted::after(d, &run);
    let recipients = "postfix.delivery.recipients";
    let here = "instance=-etc-postfix";
    let all = || c.series(recipients).join("\n");
    // 3 delivered, 2 notices of the bounces, 2 notices of the expired messages.
    let sent = [
        "status=sent",
        "service=local",
        "dsn_class=2",
        "relay=local",
        here,
    ];
    assert_eq!(c.count(recipients, &sent), 7, "{}", all());
    let bounced = [
        "status=bounced",
        "service=local",
        "dsn_class=5",
        "relay=local",
        here,
    ];
    assert_eq!(c.count(recipients, &bounced), 2, "{}", all());
    // Two first attempts and two retries, all refused by the closed port.
    let deferred = [
        "status=deferred",
        "service=smtp",
        "dsn_class=4",
        "relay=none",
        here,
    ];
    assert_eq!(c.count(recipients, &deferred), 4, "{}", all());
    assert_eq!(c.count(recipients, &[]), 13, "{}", all());
    assert_eq!(c.count("postfix.messages.expired", &[here]), 2);
    script("postfix-reset.sh", &[]);
}

/// Every family but delivery, from SMTP traffic whose outcome is known session by session
/// (tests/e2e/smtp-flow.py lists them; flow-setup.sh the services they talk to), and one
/// message to tls.test, which Postfix's SMTP client takes over STARTTLS to a service that
/// rejects it.
#[test]
fn every_log_family_counted_from_real_smtp_traffic() {
    if !enabled("every_log_family_counted_from_real_smtp_traffic") {
        return;
    }
    let _lock = POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
    script("postfix-reset.sh", &[]);
    script("flow-setup.sh", &[]);
    let s = Scratch::new();
    let run = format!("flow-{}-{}", std::process::id(), unique());
    let d = follow_the_log(&s, &run);
    let from = log_len();
    let out = Command::new("python3")
        .arg(repo("tests/e2e/smtp-flow.py"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    sendmail("root@localhost", "tls@tls.test");
    // Delivered to root: the recipients, submission and pass-new sessions' messages and the
    // notice of the tls.test bounce; and the bounce itself.
    assert_eq!(
        wait_log_lines(from, " status=", 5),
        5,
        "{}",
        log_since(from).join("\n")
    );
    assert_eq!(wait_log_lines(from, "PASS OLD ", 1), 1);
    let c = Counted::after(d, &run);
    let here = "instance=-etc-postfix";
    let log = log_since(from).join("\n");
    let is = |metric: &str, tags: &[&str], want: u64| {
        assert_eq!(
            c.count(metric, &[tags, &[here]].concat()),
            want,
            "{metric} {tags:?}: {:#?}\n{log}",
            c.series(metric)
        );
    };
    let received = "postfix.messages.received";
    // A queue file is made at the first accepted recipient: the recipients, data,
    // end-of-data and both header sessions on postfix/flow.
    is(received, &["source=flow"], 5);
    is(received, &["source=submission"], 1);
    is(received, &["source=smtpd"], 1); // behind postscreen
    is(received, &["source=pickup"], 1);
    is(received, &[], 8);
    // 12 sessions on postfix/flow, 2 on submission, 2 behind postscreen, 1 on tlsin.
    is("postfix.smtpd.connections", &[], 17);
    let rejects = "postfix.smtpd.rejects";
    for (stage, code, reason) in [
        ("connect", "554", "client"),
        ("helo", "501", "helo"),
        ("mail", "550", "unknown_sender"),
        ("rcpt", "554", "relay_denied"),
        ("rcpt", "550", "unknown_recipient"),
        ("rcpt", "554", "policy"),
        ("rcpt", "450", "greylist"),
        ("data", "554", "client"),
        ("end-of-data", "554", "sender"),
    ] {
        let tags = [
            format!("stage={stage}"),
            format!("code={code}"),
            format!("reason={reason}"),
            "action=reject".to_owned(),
        ];
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        is(rejects, &tags, 1);
    }
    // tlsin's reject of tls@tls.test: a recipient map's verdict.
    is(rejects, &["stage=rcpt", "code=554", "reason=recipient"], 1);
    is(rejects, &[], 10);
    is(
        "postfix.smtpd.lost_connections",
        &["after=helo", "why=lost_connection"],
        1,
    );
    is("postfix.smtpd.lost_connections", &[], 1);
    is("postfix.smtpd.timeouts", &["after=helo"], 1);
    is("postfix.smtpd.auth_failures", &["method=PLAIN"], 1);
    is("postfix.smtpd.auth_failures", &[], 1);
    is("postfix.cleanup.actions", &["action=reject"], 1);
    is("postfix.cleanup.actions", &["action=hold"], 1);
    is("postfix.cleanup.actions", &[], 2);
    is("postfix.bounce.notifications", &["kind=non-delivery"], 1);
    is("postfix.bounce.notifications", &[], 1);
    let tls = "postfix.tls.connections";
    // The starttls session, and tlsin's side of the tls.test delivery; the SMTP client's side.
    is(tls, &["direction=in", "trust=anonymous"], 2);
    is(tls, &["direction=out", "trust=untrusted"], 1);
    is(tls, &[], 3);
    let postscreen = "postfix.postscreen.events";
    is(postscreen, &["action=connect"], 3);
    is(postscreen, &["action=pregreet"], 1);
    is(postscreen, &["action=pass_new"], 1);
    is(postscreen, &["action=pass_old"], 1);
    let recipients = "postfix.delivery.recipients";
    is(
        recipients,
        &["status=sent", "service=local", "relay=local"],
        4,
    );
    is(
        recipients,
        &[
            "status=bounced",
            "service=smtp",
            "dsn_class=5",
            "relay=loopback",
        ],
        1,
    );
    is(recipients, &[], 5);
    let by_domain = "postfix.delivery.recipients_by_domain";
    is(by_domain, &["status=sent", "domain=localhost"], 4);
    is(by_domain, &["status=bounced", "domain=tls.test"], 1);
    is(by_domain, &[], 5);
    is("postfix.log.warnings", &[], 0);
    script("postfix-reset.sh", &[]);
}

/// The `postfix.queue.*` lines of `check` output for the five queues postqueue lists, with
/// `oldest_age` rounded to ten seconds (two runs a moment apart), sorted.
fn queue_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("postfix.queue.") && !l.contains("queue:corrupt"))
        .map(|l| {
            if let Some(rest) = l.strip_prefix("postfix.queue.oldest_age:") {
                let (n, tags) = rest.split_once('|').unwrap();
                format!(
                    "postfix.queue.oldest_age:~{}|{tags}",
                    n.parse::<u64>().unwrap() / 10
                )
            } else {
                l.to_owned()
            }
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn scan_reads_queue_files_and_equals_postqueue_metric_for_metric() {
    if !enabled("scan_reads_queue_files_and_equals_postqueue_metric_for_metric") {
        return;
    }
    let _lock = POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
    fill();
    // The second instance, with long queue IDs: deferred and hold.
    script("postmulti-setup.sh", &[]);
    script("postmulti-setup.sh", &["--reset"]);
    script("postmulti-setup.sh", &["--fill", "5"]);
    let out_q = "/var/spool/postfix-out";
    let held = Command::new("sh")
        .arg("-c")
        .arg(format!("find {out_q}/deferred -type f -printf '%f\\n' | sort | head -n 2 | postsuper -c /etc/postfix-out -h -"))
        .status()
        .unwrap();
    assert!(held.success());
    let s = Scratch::new();
    let instances = |method: &str| {
        config(
            &s,
            &format!("instances:\n  - {{method: {method}, config_directory: /etc/postfix, top_domains: 10}}\n  - {{method: {method}, config_directory: /etc/postfix-out, top_domains: 10}}\n"),
        )
    };
    let scan = no_new_privs(
        &s,
        "postfix",
        "postfix",
        &["check", "-c", &instances("scan")],
    );
    let postqueue = as_user(&s, &["check", "-c", &instances("postqueue")]);
    // Without the permission, check names it and the ways to it.
    let denied = no_new_privs(&s, USER, USER, &["check", "-c", &instances("scan")]);
    let denied = stdout(&denied);
    assert!(
        denied.contains("permission denied: cannot list /var/spool/postfix")
            && denied.contains("run as the postfix user, grant CAP_DAC_READ_SEARCH"),
        "{denied}"
    );
    let long_ids = Command::new("postqueue")
        .args(["-c", "/etc/postfix-out", "-j"])
        .output()
        .unwrap();
    assert!(long_ids.status.success());
    // Long IDs: at least ten time characters, a `z`, the inode (SPEC 8.6).
    assert!(
        String::from_utf8_lossy(&long_ids.stdout).lines().all(|l| {
            let id = l
                .split("\"queue_id\": \"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            id.len() > 11 && id[10..].contains('z')
        }),
        "{}",
        String::from_utf8_lossy(&long_ids.stdout)
    );
    script("postmulti-setup.sh", &["--reset"]);
    let (scan, postqueue) = (stdout(&scan), stdout(&postqueue));
    assert!(scan.contains("OK (directory scan"), "{scan}");
    let (got, want) = (queue_lines(&scan), queue_lines(&postqueue));
    for instance in ["instance:/etc/postfix", "instance:/etc/postfix-out"] {
        assert!(
            got.iter()
                .any(|l| l.ends_with(instance)
                    && l.starts_with("postfix.queue.recipients_by_reason:"))
        );
    }
    assert_eq!(got, want, "scan:\n{scan}\npostqueue:\n{postqueue}");
    assert!(
        scan.lines()
            .any(|l| l.starts_with("postfix.queue.size:") && l.contains("queue:corrupt")),
        "{scan}"
    );
}

/// Every regular file below `dir`, by name.
fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.filter_map(Result::ok) {
        match e.file_type() {
            Ok(t) if t.is_dir() => out.extend(files_below(&e.path())),
            Ok(t) if t.is_file() => out.push(e.path()),
            _ => {}
        }
    }
    out
}

/// The value of the next `postfix.collection.files_read` the daemon sends, and the
/// `postfix.queue.` lines of the same cycle (sent before it).
fn next_cycle(udp: &Udp, d: &Daemon) -> (u64, String) {
    let lines = udp.lines_until(Duration::from_secs(90), |l| {
        l.iter()
            .any(|x| x.starts_with("postfix.collection.files_read:"))
    });
    let read = lines
        .iter()
        .find_map(|l| l.strip_prefix("postfix.collection.files_read:"))
        .unwrap_or_else(|| panic!("no cycle: {lines:?}\n{}", d.logs()));
    let n = read.split('|').next().unwrap().parse().unwrap();
    (n, lines.join("\n"))
}

#[test]
fn scan_between_cycles_reads_only_the_changed_files() {
    if !enabled("scan_between_cycles_reads_only_the_changed_files") {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let _lock = POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
    script("postfix-reset.sh", &[]);
    let fill = Command::new("bash")
        .arg(repo("tests/e2e/fill-queues.sh"))
        .arg("8")
        .envs([
            ("FILL_HOLD", "2"),
            ("FILL_EXPIRE", "1"),
            ("FILL_ACTIVE", "0"),
            ("FILL_INCOMING", "0"),
            ("FILL_MAILDROP", "0"),
        ])
        .output()
        .unwrap();
    assert!(fill.status.success(), "{}", stderr(&fill));
    let spool = std::path::PathBuf::from(script("queue-dir.sh", &[]).trim());
    let queued: Vec<std::path::PathBuf> = ["deferred", "hold"]
        .iter()
        .flat_map(|q| files_below(&spool.join(q)))
        .collect();
    let logs = files_below(&spool.join("defer")).len();
    assert_eq!(queued.len(), 8);
    assert_eq!(logs, 8, "every message was deferred with a reason");

    let s = Scratch::new();
    let udp = Udp::new();
    let cfg = config(
        &s,
        &format!("dogstatsd: {{url: \"{}\"}}\ninstances:\n  - {{method: scan, config_directory: /etc/postfix, top_domains: 10, min_collection_interval: 30}}\n", udp.url()),
    );
    let me = s.bin_copy();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=postfix",
        "--regid=postfix",
        "--clear-groups",
        "--no-new-privs",
    ])
    .arg(&me);
    let mut d = Daemon::start_with(cmd, std::path::Path::new(&cfg));
    let (first, _) = next_cycle(&udp, &d);
    assert_eq!(
        first,
        16,
        "every queue file and defer log, once\n{}",
        d.logs()
    );
    let (second, _) = next_cycle(&udp, &d);
    assert_eq!(second, 0, "nothing changed, nothing read");

    // Between two cycles (30 s apart): a release from hold, a retry, a delivery, new mail.
    let id = |p: &std::path::Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let held = files_below(&spool.join("hold"));
    let retried = files_below(&spool.join("deferred"))
        .into_iter()
        .find(|p| std::fs::metadata(p).unwrap().mode() & 0o010 == 0)
        .unwrap();
    let retried_mtime = std::fs::metadata(&retried).unwrap().mtime();
    let sh = |cmd: &str| {
        let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
        assert!(out.status.success(), "{cmd}: {}", stderr(&out));
    };
    sh(&format!("postsuper -H {}", id(&held[0])));
    script("postfix-unpause.sh", &[]);
    sh(&format!("postqueue -i {}", id(&retried)));
    let mail = |to: &str| {
        sh(&format!(
            "printf 'Subject: between cycles\\n\\nscan e2e\\n' | sendmail -f alice@example.com {to}"
        ))
    };
    mail("root@localhost y@refused.test"); // one recipient delivered, one deferred
    mail("root@localhost"); // delivered whole: gone before any cycle sees it
    mail("z@refused.test"); // new mail, deferred
    let settled = || {
        let moving = ["maildrop", "incoming", "active"]
            .iter()
            .map(|q| files_below(&spool.join(q)).len())
            .sum::<usize>();
        let deferred = files_below(&spool.join("deferred"));
        moving == 0
            && deferred.len() == 6 + 1 + 2
            && deferred.iter().any(|p| {
                id(p) == id(&retried)
                    && std::fs::metadata(p).is_ok_and(|m| m.mtime() != retried_mtime)
            })
    };
    let started = std::time::Instant::now();
    while !settled() && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
    }
    script("postfix-pause.sh", &["qmgr", "pickup"]);
    assert!(
        settled(),
        "the queue did not settle: {:?}",
        files_below(&spool)
    );

    let (third, lines) = next_cycle(&udp, &d);
    d.signal("TERM");
    let _ = d.wait_exit(Duration::from_secs(5));
    // The retried message and its new defer log, the half-delivered one and its log, the new
    // one and its log; the release from hold is a rename, not read again.
    assert_eq!(third, 6, "{lines}\n{}", d.logs());
    // And what the cache holds now is what postqueue lists.
    let postqueue = as_user(
        &s,
        &[
            "check",
            "-c",
            &config(&s, "instances:\n  - {method: postqueue, config_directory: /etc/postfix, top_domains: 10}\n"),
        ],
    );
    script("postfix-reset.sh", &[]);
    assert_eq!(
        queue_lines(&lines),
        queue_lines(&stdout(&postqueue)),
        "{lines}"
    );
}
