//! `check` end to end: the real binary against fake Postfix commands that print real captured
//! output, and against the failures a real Postfix cannot produce on demand.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

#[test]
fn postqueue_json_counts_every_queue_of_a_real_capture() {
    let s = Scratch::new();
    s.postfix(
        "pf",
        "ok",
        Some("tests/fixtures/postqueue-j/mixed.jsonl"),
        None,
    );
    let config = s.config(&format!(
        "init_config:\n  service: mail\ninstances:\n  - method: postqueue\n    config_directory: {}\n    tags: [env:test, bare]\n",
        s.path("pf").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    golden("check-postqueue-json.txt", &mask(&stdout(&out), &s));
    // The truth captured with the listing: find -type f per queue, as root.
    let truth = std::fs::read_to_string(repo("tests/fixtures/postqueue-j/mixed.truth")).unwrap();
    for line in truth.lines() {
        let (queue, n) = line.split_once(' ').unwrap();
        if queue == "corrupt" {
            continue; // postqueue does not list corrupt
        }
        let want = format!(
            "postfix.queue.size:{n}|g|#env:test,bare,queue:{queue},instance:{},service:mail",
            s.path("pf").display()
        );
        assert!(stdout(&out).lines().any(|l| l == want), "missing {want}");
    }
}

#[test]
fn long_queue_ids_json_and_text() {
    let s = Scratch::new();
    s.postfix(
        "json",
        "ok",
        Some("tests/fixtures/postqueue-j/long-ids.jsonl"),
        None,
    );
    s.postfix(
        "text",
        "ok",
        None,
        Some("tests/fixtures/postqueue-p/long-ids.txt"),
    );
    s.write("text/mail_version", "3.0.15\n");
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}}}\n  - {{method: postqueue, config_directory: {}}}\n",
        s.path("json").display(),
        s.path("text").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    golden("check-long-ids.txt", &mask(&stdout(&out), &s));
    let text = stdout(&out);
    assert!(text.contains("(postqueue -j, "), "{text}");
    assert!(text.contains("(postqueue -p, "), "{text}");
}

#[test]
fn text_listing_marks_decide_and_stars_in_addresses_do_not() {
    // Postfix before 3.1 has no -j: -p is parsed, and only the mark right after the queue ID
    // counts. mixed.txt has `*` and `!` in senders, recipients and reasons.
    let s = Scratch::new();
    s.postfix(
        "old",
        "ok",
        None,
        Some("tests/fixtures/postqueue-p/mixed.txt"),
    );
    s.write("old/mail_version", "2.11.11\n");
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}}}\n",
        s.path("old").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let tag = format!("instance:{}", s.path("old").display());
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    let gauges: Vec<&String> = tagged(&lines, &tag)
        .into_iter()
        .filter(|l| l.starts_with("postfix.queue.size"))
        .collect();
    // Truth: active 1, hold 5; deferred 7 + incoming 2 + maildrop 3 all look alike in -p.
    assert_eq!(
        gauges,
        vec![
            &format!("postfix.queue.size:1|g|#queue:active,{tag}"),
            &format!("postfix.queue.size:5|g|#queue:hold,{tag}"),
            &format!("postfix.queue.size:12|g|#queue:deferred,{tag}"),
        ]
    );
}

#[test]
fn empty_queue_is_a_true_zero() {
    let s = Scratch::new();
    s.postfix(
        "j",
        "ok",
        Some("tests/fixtures/postqueue-j/empty.jsonl"),
        None,
    );
    s.postfix(
        "p",
        "ok",
        None,
        Some("tests/fixtures/postqueue-p/empty.txt"),
    );
    s.write("p/mail_version", "3.0.1\n");
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}}}\n  - {{method: postqueue, config_directory: {}}}\n",
        s.path("j").display(),
        s.path("p").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("postfix.queue.size:0|g"))
            .count(),
        8,
        "{text}"
    );
}

/// A message listed in more than the parser's bound (13.7 MB on one line) counts in its queue,
/// is reported as truncated and named once in the log, and the instance stays OK.
#[test]
fn an_oversized_message_is_counted_and_reported_not_fatal() {
    let s = Scratch::new();
    s.postfix("pf", "ok", None, None);
    s.write("pf/listing-j", newsletter_queue().0);
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}, timeout: 5}}\n",
        s.path("pf").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let tag = format!("instance:{}", s.path("pf").display());
    for want in [
        format!("postfix.queue.size:4|g|#queue:deferred,{tag}"),
        format!("postfix.queue.bytes:4000|g|#queue:deferred,{tag}"),
        format!("postfix.queue.older_than:4|g|#queue:deferred,age:5m,{tag}"),
        format!("postfix.collection.truncated:1|c|#{tag}"),
        format!("postfix.collection.errors:0|c|#{tag}"),
        format!("_sc|postfix.can_collect|0|#{tag}"),
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&want)),
            "missing {want}: {text}"
        );
    }
    assert!(stderr(&out).contains("NEWSLETTER1"), "{}", stderr(&out));
}

/// Every failure: CRITICAL with its cause, the error counted, and no queue gauge at all.
#[test]
fn failures_are_named_and_send_no_gauge() {
    let s = Scratch::new();
    let cases = [
        ("down", "Postfix is not running"),
        ("denied", "not in Postfix's authorized_mailq_users"),
        ("garbage", "line 1: not a JSON queue entry"),
        ("crash", "killed by signal 11"),
        (
            "exit3",
            "failed with exit status 3: postqueue: fatal: something odd",
        ),
    ];
    let mut body = String::from("instances:\n");
    for (mode, _) in &cases {
        s.postfix(mode, mode, None, None);
        body.push_str(&format!(
            "  - {{method: postqueue, config_directory: {}}}\n",
            s.path(mode).display()
        ));
    }
    body.push_str(&format!(
        "  - {{method: postqueue, config_directory: /etc/postfix, commands: {{postqueue: {}}}}}\n",
        s.path("nonexistent/postqueue").display()
    ));
    let config = s.config(&body);
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for (mode, cause) in cases {
        let tag = format!("instance:{}", s.path(mode).display());
        let mine = tagged(&lines, &tag);
        assert!(
            !mine.iter().any(|l| l.starts_with("postfix.queue.size")),
            "{mode}: a gauge was sent: {mine:?}"
        );
        let sc = mine
            .iter()
            .find(|l| l.starts_with("_sc|postfix.can_collect|2|"))
            .unwrap_or_else(|| panic!("{mode}: no CRITICAL"));
        assert!(sc.contains(cause), "{mode}: {sc}");
        assert!(
            mine.iter()
                .any(|l| l.starts_with("postfix.collection.errors:1|c")),
            "{mode}"
        );
    }
    let missing = tagged(&lines, "instance:/etc/postfix");
    assert!(
        missing
            .iter()
            .any(|l| l.starts_with("_sc|postfix.can_collect|2|") && l.contains("does not exist")),
        "{missing:?}"
    );
}

#[test]
fn a_hung_command_is_killed_with_its_whole_process_group() {
    let s = Scratch::new();
    s.postfix("hang", "hang", None, None);
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}, timeout: 0.5}}\n",
        s.path("hang").display()
    ));
    let started = std::time::Instant::now();
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("did not finish within 0.5s; its process group was killed"),
        "{}",
        stdout(&out)
    );
    // TERM at 0.5 s is enough for sh and sleep: the run ends at its timeout, not 2 s later at
    // the SIGKILL (nor 1000 s later).
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // SIGTERM reached the whole group; give the kernel a moment to finish off the grandchild
    // (the child is reaped before check returns).
    for f in ["hang/child.pid", "hang/grandchild.pid"] {
        let pid = read_pid(&s.path(f), Duration::from_secs(1));
        // A PID counts only while it runs in the fake's directory: PIDs are reused.
        let ours = |pid: u32| {
            alive(pid)
                && std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|d| d == s.path("hang"))
        };
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !ours(pid)
        });
        assert!(gone, "{f} ({pid}) is still running");
    }
}

#[test]
fn find_walks_or_sudoes_and_names_the_refused_queue() {
    let s = Scratch::new();
    for (q, n) in [
        ("incoming", 2),
        ("active", 0),
        ("deferred/A", 3),
        ("deferred/B", 1),
        ("hold", 1),
    ] {
        std::fs::create_dir_all(s.path(&format!("spool/{q}"))).unwrap();
        for i in 0..n {
            s.write(&format!("spool/{q}/F{i}"), "x");
        }
    }
    // The fake sudo refuses hold, as sudo does for a queue with no sudoers line.
    s.write("spool/refuse-hold", "");
    let config = s.config(&format!(
        "init_config:\n  postfix_user: postfix-test-nobody\ninstances:\n  - directory: {}/\n    queues: [incoming, active, deferred, hold, maildrop]\n",
        s.path("spool").display()
    ));
    // As root the daemon would walk the directories itself; as nobody it must use sudo.
    let out = check_as_nobody(&s, &config);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    golden("check-find-sudo.txt", &mask(&stdout(&out), &s));

    if is_root() {
        // As root: no sudo, and every queue but the missing maildrop is counted.
        let out = run(&["check", "-c", config.to_str().unwrap()]);
        let text = stdout(&out);
        assert!(text.contains("directory walk (no sudo needed)"), "{text}");
        assert!(
            text.contains("postfix.queue.size:4|g|#queue:deferred,instance:spool"),
            "{text}"
        );
        assert!(
            text.contains("postfix.queue.size:1|g|#queue:hold,instance:spool"),
            "{text}"
        );
        assert!(text.contains("queue maildrop: cannot read"), "{text}");
    }
}

#[test]
fn dd_env_sets_target_and_tags_and_send_sends() {
    let s = Scratch::new();
    s.postfix(
        "pf",
        "ok",
        Some("tests/fixtures/postqueue-j/mixed.jsonl"),
        None,
    );
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}}}\n",
        s.path("pf").display()
    ));
    let udp = Udp::new();
    let out = run_env(
        &["check", "--send", "-c", config.to_str().unwrap()],
        &[
            ("DD_DOGSTATSD_URL", &udp.url()),
            ("DD_ENV", "prod"),
            ("DD_AGENT_HOST", "192.0.2.1"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = udp.lines_until(Duration::from_secs(5), |l| {
        l.iter().any(|x| x.starts_with("_sc|"))
    });
    let want = format!(
        "postfix.queue.size:7|g|#queue:deferred,instance:{},env:prod",
        s.path("pf").display()
    );
    assert!(lines.contains(&want), "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.ends_with("env:prod") || l.starts_with("_sc")),
        "{lines:?}"
    );
}

#[test]
fn send_that_cannot_send_fails_and_says_why() {
    let s = Scratch::new();
    s.postfix(
        "pf",
        "ok",
        Some("tests/fixtures/postqueue-j/mixed.jsonl"),
        None,
    );
    let config = s.config(&format!(
        "dogstatsd: {{url: 'unix://{}'}}\ninstances:\n  - {{method: postqueue, config_directory: {}}}\n",
        s.path("nobody-here.socket").display(),
        s.path("pf").display()
    ));
    let out = run(&["check", "--send", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("DogStatsD lines (NOT sent: ")
            && stdout(&out).contains("No such file or directory"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn tag_values_from_the_host_are_mended_once() {
    let s = Scratch::new();
    s.postfix(
        "pf",
        "ok",
        Some("tests/fixtures/postqueue-j/mixed.jsonl"),
        None,
    );
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}}}\n",
        s.path("pf").display()
    ));
    let out = run_env(
        &["check", "-c", config.to_str().unwrap()],
        &[
            ("DD_ENV", "prod\ninjected:1|g"),
            ("DD_SERVICE", "mail,team:x"),
            ("DD_VERSION", "1#2"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let sent: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("postfix.") || l.starts_with("_sc|"))
        .collect();
    assert!(!sent.is_empty(), "{text}");
    for line in &sent {
        assert!(
            line.ends_with(",env:prod_injected:1_g,service:mail_team:x,version:1#2")
                || line.contains(",env:prod_injected:1_g,service:mail_team:x,version:1#2,"),
            "{line}"
        );
    }
    assert!(!text.lines().any(|l| l.starts_with("injected")), "{text}");
    assert_eq!(
        stderr(&out).matches("DD_ENV").count(),
        1,
        "{}",
        stderr(&out)
    );
}

#[test]
fn find_counts_through_files_vanishing_but_not_through_real_errors() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    for q in ["active", "hold"] {
        std::fs::create_dir_all(s.path(&format!("spool/{q}"))).unwrap();
    }
    // GNU find on a file system without d_type: a file delivered between readdir and stat
    // is "No such file or directory" and exit 1; a real problem is something else.
    let find = s.write(
        "bin/find",
        "#!/bin/sh\nq=\"$1\"\necho \"$q/f1\"\necho \"$q/f2\"\ncase \"$q\" in\n*/active) echo \"find: '$q/gone': No such file or directory\" >&2; exit 1;;\n*/hold) echo \"find: '$q/x': Permission denied\" >&2; exit 1;;\nesac\n",
    );
    std::fs::set_permissions(&find, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = s.config(&format!(
        "init_config:\n  postfix_user: postfix-test-nobody\ninstances:\n  - directory: {}\n    queues: [active, hold]\n    commands: {{find: {}}}\n",
        s.path("spool").display(),
        find.display()
    ));
    // As root the daemon would walk the directories itself; as nobody it must use sudo.
    let out = check_as_nobody(&s, &config);
    let text = stdout(&out);
    assert!(
        text.contains("postfix.queue.size:2|g|#queue:active,instance:spool"),
        "{text}{}",
        stderr(&out)
    );
    assert!(!text.contains("queue:hold,instance:spool"), "{text}");
    assert!(text.contains("Permission denied"), "{text}");
    assert_eq!(out.status.code(), Some(1), "{text}");
}

#[test]
fn without_postfix_user_find_asks_sudo_for_the_queue_owner_never_root() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("spool/deferred")).unwrap();
    // A Datadog config as the Agent ships it: no postfix_user (the check's default was root).
    s.write("spool/refuse-deferred", "");
    let config = s.config(&format!(
        "instances:\n  - directory: {}\n    queues: [deferred]\n",
        s.path("spool").display()
    ));
    // As root the daemon would walk the directories itself; as nobody it must use sudo.
    let out = check_as_nobody(&s, &config);
    let text = stdout(&out);
    assert!(text.contains("ALL=(postfix) NOPASSWD:"), "{text}");
    assert!(!text.contains("(root)"), "{text}");
}

#[test]
fn a_listing_that_never_ends_is_stopped_at_the_deadline() {
    let s = Scratch::new();
    // A valid listing, printed again and again: parsing must not hold the run past its timeout.
    s.postfix(
        "pf",
        "endless",
        Some("tests/fixtures/postqueue-j/mixed.jsonl"),
        None,
    );
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}, timeout: 1}}\n",
        s.path("pf").display()
    ));
    let started = std::time::Instant::now();
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("did not finish within 1.0s"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("postfix.queue.size:")),
        "{text}"
    );
    // The timeout, plus the 2 s between SIGTERM and SIGKILL at most.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn unified_tags_from_the_config_win_over_the_environment() {
    let s = Scratch::new();
    s.postfix(
        "pf",
        "ok",
        Some("tests/fixtures/postqueue-j/mixed.jsonl"),
        None,
    );
    let config = s.config(&format!(
        "dogstatsd: {{tags: ['version:from-file']}}\ninstances:\n  - {{method: postqueue, config_directory: {pf}, tags: ['env:prod'], service: mail}}\n  - {{method: postqueue, config_directory: {pf}, tags: ['version:1', 'team:x'], disable_generic_tags: true}}\n",
        pf = s.path("pf").display()
    ));
    let out = run_env(
        &["check", "-c", config.to_str().unwrap()],
        &[
            ("DD_ENV", "staging"),
            ("DD_SERVICE", "other"),
            ("DD_VERSION", "9"),
        ],
    );
    let text = stdout(&out);
    let sent: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("postfix.") || l.starts_with("_sc|"))
        .collect();
    assert!(!sent.is_empty(), "{text}");
    for line in &sent {
        let tags = line.rsplit_once("|#").map_or("", |(_, t)| t);
        let tags = tags.split('|').next().unwrap();
        for key in ["env:", "service:", "version:", "postfix_version:"] {
            assert!(
                tags.split(',').filter(|t| t.starts_with(key)).count() <= 1,
                "{line}"
            );
        }
        // The config's values, never the environment's, where the config has one.
        assert!(!tags.contains("version:9"), "{line}");
        if tags.contains("env:prod") {
            assert!(
                !tags.contains("env:staging") && !tags.contains("service:other"),
                "{line}"
            );
        }
    }
    let first = format!("instance:{}", s.path("pf").display());
    assert!(
        sent.iter().any(|l| l.starts_with("postfix.queue.size:")
            && l.ends_with(&format!(
                "#env:prod,queue:deferred,{first},service:mail,version:from-file"
            ))),
        "{text}"
    );
    // disable_generic_tags made the user's `version:1` a `postfix_version:1`: it is the one sent.
    assert!(
        sent.iter().any(|l| l.starts_with("_sc|")
            && l.contains("#postfix_version:1,team:x,")
            && l.contains(",version:from-file,env:staging")),
        "{text}"
    );
}

/// `check -c config` as user nobody (setpriv when we are root), so that find goes through the
/// (fake) sudo rather than walking the directories itself.
fn check_as_nobody(s: &Scratch, config: &std::path::Path) -> std::process::Output {
    let me = s.bin_copy();
    let mut cmd = std::process::Command::new(if is_root() {
        "setpriv".as_ref()
    } else {
        me.as_os_str()
    });
    if is_root() {
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&me);
    }
    cmd.args(["check", "-c", config.to_str().unwrap()])
        .env_remove("DD_DOGSTATSD_URL")
        .output()
        .unwrap()
}

#[test]
fn documented_instance_keys_show_in_the_output() {
    let s = Scratch::new();
    s.postfix(
        "pf",
        "ok",
        Some("tests/fixtures/postqueue-j/mixed.jsonl"),
        None,
    );
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}, service: outbound, empty_default_hostname: true, top_domains: 1, age_thresholds: [90s, 2h], disable_generic_tags: true, tags: ['env:x', 'keep:me'], metric_patterns: {{exclude: ['^postfix\\.queue\\.bytes$']}}}}\n",
        s.path("pf").display()
    ));
    let out = run_env(
        &["check", "-c", config.to_str().unwrap()],
        &[("DD_ENTITY_ID", "pod-1")],
    );
    let text = stdout(&out);
    let sent: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("postfix.") || l.starts_with("_sc|"))
        .collect();
    assert!(!sent.is_empty(), "{text}");
    // metric_patterns.exclude: no bytes at all.
    assert!(
        !sent.iter().any(|l| l.starts_with("postfix.queue.bytes:")),
        "{text}"
    );
    for line in &sent {
        // disable_generic_tags: env:x became postfix_env:x; then service, host:, entity id.
        assert!(line.contains("#postfix_env:x,keep:me,"), "{line}");
        assert!(line.contains(",service:outbound,host:,"), "{line}");
        assert!(line.ends_with(",dd.internal.entity_id:pod-1"), "{line}");
    }
    // age_thresholds as written, one series each.
    for age in ["age:90s", "age:2h"] {
        assert!(
            sent.iter()
                .any(|l| l.starts_with("postfix.queue.older_than:") && l.contains(age)),
            "{age}: {text}"
        );
    }
    assert!(!sent.iter().any(|l| l.contains("age:5m")), "{text}");
    // top_domains: 1: one real domain per queue, the rest in domain:other, which is not 0
    // where the deferred queue has several domains.
    let deferred: Vec<&&str> = sent
        .iter()
        .filter(|l| {
            l.starts_with("postfix.queue.recipients_by_domain:") && l.contains("queue:deferred,")
        })
        .collect();
    assert_eq!(deferred.len(), 2, "{deferred:?}");
    let other = deferred
        .iter()
        .find(|l| l.contains("domain:other,"))
        .expect("domain:other");
    assert!(
        !other.starts_with("postfix.queue.recipients_by_domain:0|"),
        "{other}"
    );
}

#[test]
fn captured_failures_of_a_real_postqueue_and_the_odd_fakes() {
    let s = Scratch::new();
    let mut body = String::from("instances:\n");
    // Captured from a real Postfix 3.7: stopped (as a user, and as root, which lists the queue
    // directly with a warning), and a user outside authorized_mailq_users.
    for name in ["down", "down-root", "denied"] {
        let jsonl = format!("tests/fixtures/postqueue-j/{name}.jsonl");
        let listing = repo(&jsonl).exists().then_some(jsonl.as_str());
        s.postfix(name, "captured", listing, None);
        for part in ["stderr", "exitcode"] {
            let from = repo(&format!("tests/fixtures/postqueue-j/{name}.{part}"));
            s.write(&format!("{name}/{part}"), std::fs::read(from).unwrap());
        }
        body.push_str(&format!(
            "  - {{method: postqueue, config_directory: {}}}\n",
            s.path(name).display()
        ));
    }
    // Output no listing is made of: 100 MB without a newline, bytes that are not UTF-8, and
    // 10 MB of stderr.
    for mode in ["huge", "binary", "stderr-flood"] {
        s.postfix(mode, mode, None, None);
        body.push_str(&format!(
            "  - {{method: postqueue, config_directory: {}, timeout: 20}}\n",
            s.path(mode).display()
        ));
    }
    let out = run(&["check", "-c", s.config(&body).to_str().unwrap()]);
    let text = stdout(&out);
    let critical = |name: &str, cause: &str| {
        let tag = format!("instance:{}", s.path(name).display());
        assert!(
            text.lines()
                .any(|l| l.starts_with("_sc|postfix.can_collect|2|")
                    && l.contains(&format!("{tag},"))
                    && l.contains(cause)),
            "{name}: {text}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.starts_with("postfix.queue.size:") && l.contains(&format!("{tag},"))),
            "{name}: {text}"
        );
    };
    critical("down", "Postfix is not running");
    critical("denied", "authorized_mailq_users");
    critical("huge", "not a JSON queue entry (a line of more than");
    critical("binary", "not understood");
    critical("stderr-flood", "failed with exit status 1");
    // As root with Postfix down, postqueue warns and lists the queue itself: that is a listing.
    let root = format!("instance:{}", s.path("down-root").display());
    assert!(
        text.lines()
            .any(|l| l.starts_with("postfix.queue.size:") && l.contains(&root)),
        "{text}"
    );
    // The flood is kept bounded in the message.
    assert!(text.len() < 200_000, "{} bytes of output", text.len());
}

/// `lines` (each starting with a 15-byte `Dec 01 20:46:37` stamp) stamped `at` (seconds since
/// the epoch) instead, as `date` writes it in the zone `tz` with `format`.
fn stamped(lines: &str, at: u64, tz: &str, format: &str) -> String {
    let out = std::process::Command::new("date")
        .env("TZ", tz)
        .args(["-d", &format!("@{at}"), &format!("+{format}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stamp = stdout(&out).trim_end_matches('\n').to_owned();
    lines
        .lines()
        .map(|l| format!("{stamp}{}\n", &l[15..]))
        .collect()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The rows of the table `title` in `check`'s mail flow, each split on whitespace, without
/// its header.
fn flow_rows(text: &str, title: &str) -> Vec<Vec<String>> {
    let want = format!("  {title}");
    text.lines()
        .skip_while(|l| *l != want)
        .skip(2)
        .take_while(|l| l.starts_with("    "))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// The captured log twice, an hour apart, with 3 bounces before and 2 deliveries after: the
/// last 10 minutes hold one copy and the 2 deliveries, the last 2 hours everything.
#[test]
fn check_counts_the_last_minutes_of_the_log_file_and_writes_nothing() {
    let s = Scratch::new();
    s.postfix(
        "pf",
        "ok",
        Some("tests/fixtures/postqueue-j/mixed.jsonl"),
        None,
    );
    let state = s.path("state");
    let log = s.path("mail.log");
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}}}\nlog:\n  source: file\n  path: {}\n  state_directory: {}\n",
        s.path("pf").display(),
        log.display(),
        state.display()
    ));
    // BSD (space-padded day) and maillog_file stamps are local time: a zone east and one west
    // of UTC; RFC 3339 carries its own offset.
    for (tz, format) in [
        ("UTC-3", "%b %e %H:%M:%S"),
        ("UTC+5", "%b %d %H:%M:%S"),
        ("UTC+5", "%Y-%m-%dT%H:%M:%S.123456%:z"),
        ("UTC", "%Y-%m-%dT%H:%M:%SZ"),
    ] {
        let now = now();
        let text = [
            stamped(
                &status_lines("postfix", "bounced", 3),
                now - 3700,
                tz,
                format,
            ),
            stamped(&captured_log(), now - 3600, tz, format),
            stamped(&captured_log(), now - 300, tz, format),
            stamped(&status_lines("postfix", "sent", 2), now - 60, tz, format),
        ]
        .concat();
        std::fs::write(&log, text).unwrap();
        let out = run_env(&["check", "-c", config.to_str().unwrap()], &[("TZ", tz)]);
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {text}{}",
            stderr(&out)
        );
        assert!(
            text.contains(&format!("mail log: {} (log.path)\n", log.display())),
            "{text}"
        );
        assert!(
            text.contains("mail flow, last 10m (from ")
                && text.contains("): 112 lines, 0 not understood\n"),
            "{format}: {text}"
        );
        let recipients = flow_rows(&text, "postfix.delivery.recipients");
        assert_eq!(
            recipients,
            [
                row(&["deferred", "error", "4", "none", "/etc/postfix", "12"]),
                row(&["deferred", "smtp", "4", "none", "/etc/postfix", "6"]),
                row(&["sent", "local", "2", "local", "/etc/postfix", "2"]),
            ],
            "{format}: {text}"
        );
        assert_eq!(
            flow_rows(&text, "postfix.messages.received"),
            [row(&["pickup", "/etc/postfix", "12"])],
            "{text}"
        );
        assert_eq!(
            flow_rows(&text, "postfix.log.warnings"),
            [row(&["fatal", "postqueue", "/etc/postfix", "2"])],
            "{text}"
        );
        // The mail flow sits between the queue table and the series.
        let (queues, flow, series) = (
            text.find("  QUEUE ").unwrap(),
            text.find("mail flow,").unwrap(),
            text.find("series (each").unwrap(),
        );
        assert!(queues < flow && flow < series, "{text}");
        // Nothing from the log is among the lines sent.
        assert!(!text.contains("postfix.delivery.recipients:"), "{text}");

        let out = run_env(
            &["check", "-c", config.to_str().unwrap(), "--log-since", "2h"],
            &[("TZ", tz)],
        );
        let text = stdout(&out);
        assert!(
            text.contains("mail flow, last 2h (from ")
                && text.contains("): 225 lines, 0 not understood\n"),
            "{format}: {text}"
        );
        assert_eq!(
            flow_rows(&text, "postfix.delivery.recipients"),
            [
                row(&["bounced", "local", "5", "local", "/etc/postfix", "3"]),
                row(&["deferred", "error", "4", "none", "/etc/postfix", "24"]),
                row(&["deferred", "smtp", "4", "none", "/etc/postfix", "12"]),
                row(&["sent", "local", "2", "local", "/etc/postfix", "2"]),
            ],
            "{format}: {text}"
        );
        // The window starts before the file's first line, and there is no mail.log.1.
        assert!(
            text.contains(&format!("note: {} starts at ", log.display()))
                && text.contains("after the window's start, and there is no "),
            "{text}"
        );
        assert!(!state.exists(), "check made {}", state.display());
    }

    // A saved position and cursor are neither read nor changed.
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("log-position.json"), "not json").unwrap();
    std::fs::write(state.join("journal-cursor"), "s=1;t=2\n").unwrap();
    // Each file of the state directory and its modification time.
    let files = || -> Vec<_> {
        std::fs::read_dir(&state)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.metadata().unwrap().modified().unwrap())
            })
            .collect()
    };
    let before = files();
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("): 112 lines"), "{}", stdout(&out));
    let after = files();
    assert_eq!(before, after);
    assert_eq!(
        std::fs::read_to_string(state.join("log-position.json")).unwrap(),
        "not json"
    );
}

/// The window starts in the rotated file: its lines first, then the current file's.
#[test]
fn check_reads_the_rotated_file_when_the_window_starts_in_it() {
    let s = Scratch::new();
    s.postfix(
        "pf",
        "ok",
        Some("tests/fixtures/postqueue-j/empty.jsonl"),
        None,
    );
    let log = s.path("mail.log");
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}}}\nlog:\n  source: file\n  path: {}\n  state_directory: {}\n",
        s.path("pf").display(),
        log.display(),
        s.path("state").display()
    ));
    let (now, tz, format) = (now(), "UTC", "%b %e %H:%M:%S");
    s.write(
        "mail.log.1",
        [
            stamped(
                &status_lines("postfix", "bounced", 3),
                now - 3600,
                tz,
                format,
            ),
            stamped(
                &status_lines("postfix", "bounced", 4),
                now - 400,
                tz,
                format,
            ),
        ]
        .concat(),
    );
    s.write(
        "mail.log",
        stamped(&status_lines("postfix", "sent", 5), now - 100, tz, format),
    );
    let out = run_env(&["check", "-c", config.to_str().unwrap()], &[("TZ", tz)]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("): 9 lines, 0 not understood\n"), "{text}");
    assert!(
        text.contains(&format!(
            "note: the window starts in {}.1: 4 lines from it, then {}\n",
            log.display(),
            log.display()
        )),
        "{text}"
    );
    assert_eq!(
        flow_rows(&text, "postfix.delivery.recipients"),
        [
            row(&["bounced", "local", "5", "local", "/etc/postfix", "4"]),
            row(&["sent", "local", "2", "local", "/etc/postfix", "5"]),
        ],
        "{text}"
    );
}

#[test]
fn check_fails_when_the_log_cannot_be_read_and_says_why() {
    let s = Scratch::new();
    s.postfix(
        "pf",
        "ok",
        Some("tests/fixtures/postqueue-j/empty.jsonl"),
        None,
    );
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}}}\nlog:\n  source: file\n  path: {}\n  state_directory: {}\n",
        s.path("pf").display(),
        s.path("nowhere.log").display(),
        s.path("state").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "  error: cannot open {}: No such file or directory",
            s.path("nowhere.log").display()
        )),
        "{text}"
    );
    // The queues were still collected and shown.
    assert!(text.contains(": OK (postqueue -j, "), "{text}");
    assert!(!s.path("state").exists());
}

#[test]
fn a_bad_log_since_is_a_usage_error() {
    for (value, says) in [
        ("10x", "is not an age"),
        ("m", "is not an age"),
        ("-5m", "is not an age"),
        ("0", "longer than 0"),
    ] {
        let out = run(&["check", &format!("--log-since={value}")]);
        assert_eq!(out.status.code(), Some(2), "{value}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("--log-since") && err.contains(says),
            "{value}: {err}"
        );
    }
}

/// The journal's window, by journald's receive time: an hour-old copy of the captured log is
/// left out, and another facility's entry is not the mail log.
#[test]
fn check_counts_the_last_minutes_of_the_journal() {
    let Some(remote) = journal_remote() else {
        return;
    };
    let s = Scratch::new();
    s.postfix(
        "pf",
        "ok",
        Some("tests/fixtures/postqueue-j/empty.jsonl"),
        None,
    );
    let journal = s.path("journal");
    std::fs::create_dir_all(&journal).unwrap();
    let file = journal.join("remote.journal");
    let us = now() * 1_000_000;
    journal_append_at(
        remote,
        &file,
        &status_lines("postfix", "bounced", 3),
        2,
        us - 3_700_000_000,
    );
    journal_append_at(remote, &file, &captured_log(), 2, us - 3_600_000_000);
    journal_append_at(remote, &file, &captured_log(), 2, us - 300_000_000);
    journal_append_at(
        remote,
        &file,
        &status_lines("postfix", "sent", 2),
        2,
        us - 60_000_000,
    );
    journal_append_at(
        remote,
        &file,
        &status_lines("postfix", "sent", 1),
        3,
        us - 30_000_000,
    );
    let state = s.path("state");
    let config = s.config(&format!(
        "instances:\n  - {{method: postqueue, config_directory: {}}}\nlog:\n  source: journal\n  journal_directory: {}\n  state_directory: {}\n",
        s.path("pf").display(),
        journal.display(),
        state.display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains("mail log: the journal (log.source is journal)\n"),
        "{text}"
    );
    assert!(text.contains("): 112 lines, 0 not understood\n"), "{text}");
    assert_eq!(
        flow_rows(&text, "postfix.delivery.recipients"),
        [
            row(&["deferred", "error", "4", "none", "/etc/postfix", "12"]),
            row(&["deferred", "smtp", "4", "none", "/etc/postfix", "6"]),
            row(&["sent", "local", "2", "local", "/etc/postfix", "2"]),
        ],
        "{text}"
    );
    let out = run(&["check", "-c", config.to_str().unwrap(), "--log-since", "2h"]);
    let text = stdout(&out);
    assert!(text.contains("): 225 lines, 0 not understood\n"), "{text}");
    assert!(!state.exists(), "check made {}", state.display());
}
