//! Methods showq, scan and auto end to end through `check`: a real Unix stream socket serving
//! streams captured from a real showq, and a queue directory laid out like Postfix's.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

use common::*;

/// Serves `bytes` to every connection on `<pf>/spool/public/showq` (where the fake postconf
/// puts the queue directory), as showq does: speak, then close.
fn showq_server(s: &Scratch, pf: &str, bytes: &'static [u8]) -> std::path::PathBuf {
    let public = s.path(&format!("{pf}/spool/public"));
    std::fs::create_dir_all(&public).unwrap();
    let path = public.join("showq");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let _ = conn.write_all(bytes);
        }
    });
    path
}

fn lines(out: &std::process::Output) -> Vec<String> {
    stdout(out).lines().map(str::to_owned).collect()
}

fn gauge(lines: &[String], name: &str, queue: &str) -> Option<u64> {
    lines
        .iter()
        .find(|l| l.starts_with(&format!("{name}:")) && l.contains(&format!("queue:{queue},")))
        .map(|l| {
            l[name.len() + 1..]
                .split('|')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
}

#[test]
fn showq_gives_what_postqueue_gives_for_the_same_moment() {
    let s = Scratch::new();
    s.postfix("sq", "ok", None, None);
    showq_server(&s, "sq", include_bytes!("fixtures/showq/mixed.bin"));
    // postqueue -j captured at the same moment as mixed.bin.
    s.postfix("pq", "ok", Some("tests/fixtures/showq/mixed.jsonl"), None);
    let config = s.config(&format!(
        "instances:\n  - {{method: showq, config_directory: {}}}\n  - {{method: postqueue, config_directory: {}}}\n",
        s.path("sq").display(),
        s.path("pq").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let sq = format!("instance:{}", s.path("sq").display());
    let pq = format!("instance:{}", s.path("pq").display());
    let all = lines(&out);
    let strip = |tag: &str| -> Vec<String> {
        tagged(&all, tag)
            .into_iter()
            .filter(|l| l.starts_with("postfix.queue."))
            .map(|l| l.replace(tag, "X"))
            .collect()
    };
    let (a, b) = (strip(&sq), strip(&pq));
    assert!(a.len() > 40, "{a:?}");
    // Ages are computed at slightly different moments; everything else must be equal.
    let no_age = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|l| !l.starts_with("postfix.queue.oldest_age"))
            .collect()
    };
    assert_eq!(no_age(a), no_age(b));
    let truth = std::fs::read_to_string(repo("tests/fixtures/showq/mixed.truth")).unwrap();
    for line in truth.lines() {
        let (q, n) = line.split_once(' ').unwrap();
        if q != "corrupt" {
            assert_eq!(
                gauge(&all, "postfix.queue.size", q),
                Some(n.parse().unwrap()),
                "{q}"
            );
        }
    }
    assert!(stdout(&out).contains("(showq socket, "));
}

/// A message whose recipients pass the parser's bound, from showq's socket: counted, reported
/// as truncated and named in the log, the instance OK; the same figures as postqueue's.
#[test]
fn showq_counts_an_oversized_message_as_postqueue_does() {
    let s = Scratch::new();
    let (json, attr) = newsletter_queue();
    s.postfix("sq", "ok", None, None);
    showq_server(&s, "sq", attr.leak());
    s.postfix("pq", "ok", None, None);
    s.write("pq/listing-j", json);
    let config = s.config(&format!(
        "instances:\n  - {{method: showq, config_directory: {}, timeout: 5}}\n  - {{method: postqueue, config_directory: {}, timeout: 5}}\n",
        s.path("sq").display(),
        s.path("pq").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let all = lines(&out);
    let mine = |pf: &str| -> Vec<String> {
        let tag = format!("instance:{}", s.path(pf).display());
        tagged(&all, &tag)
            .into_iter()
            .filter(|l| !l.starts_with("postfix.collection.duration"))
            .map(|l| l.replace(&tag, "X"))
            .collect()
    };
    let sq = mine("sq");
    assert!(
        sq.contains(&"postfix.queue.size:4|g|#queue:deferred,X".to_owned()),
        "{sq:?}"
    );
    assert!(
        sq.contains(&"postfix.collection.truncated:1|c|#X".to_owned()),
        "{sq:?}"
    );
    assert_eq!(sq, mine("pq"));
    // One warning per instance, naming the message.
    let named = stderr(&out)
        .lines()
        .filter(|l| l.contains("NEWSLETTER1"))
        .count();
    assert_eq!(named, 2, "{}", stderr(&out));
}

#[test]
fn showq_failures_are_named() {
    let s = Scratch::new();
    // No socket at all; a socket nobody listens on; a stream cut short.
    s.postfix("none", "ok", None, None);
    s.postfix("dead", "ok", None, None);
    std::fs::create_dir_all(s.path("dead/spool/public")).unwrap();
    drop(UnixListener::bind(s.path("dead/spool/public/showq")).unwrap());
    s.postfix("cut", "ok", None, None);
    let full: &'static [u8] = include_bytes!("fixtures/showq/mixed.bin");
    showq_server(&s, "cut", &full[..full.len() - 3]);
    s.postfix("noconf", "ok", None, None);
    s.write("noconf/postconf-fails", "");
    // A showq that sends half the stream and then stalls with the connection open.
    s.postfix("stall", "ok", None, None);
    std::fs::create_dir_all(s.path("stall/spool/public")).unwrap();
    let listener = UnixListener::bind(s.path("stall/spool/public/showq")).unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(&full[..full.len() / 2]).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(60));
    });
    let mut body = String::from("instances:\n");
    for pf in ["none", "dead", "cut", "noconf", "stall"] {
        let timeout = if pf == "stall" { 1 } else { 20 };
        body.push_str(&format!(
            "  - {{method: showq, config_directory: {}, timeout: {timeout}}}\n",
            s.path(pf).display()
        ));
    }
    let started = std::time::Instant::now();
    let out = run(&["check", "-c", s.config(&body).to_str().unwrap()]);
    // The stalled read ends at its timeout: `check` does not wait for the 60 s stall.
    assert!(started.elapsed() < std::time::Duration::from_secs(40));
    assert_eq!(out.status.code(), Some(1));
    let all = lines(&out);
    for (pf, cause) in [
        ("none", "no showq socket at"),
        ("dead", "Postfix is not running: nothing listens on"),
        ("cut", "ends before its end marker (truncated)"),
        ("noconf", "cannot read the Postfix parameters"),
        ("stall", "did not finish within 1.0s"),
    ] {
        let mine = tagged(&all, &format!("instance:{}", s.path(pf).display()));
        assert!(
            !mine.iter().any(|l| l.starts_with("postfix.queue.")),
            "{pf}: {mine:?}"
        );
        assert!(
            mine.iter()
                .any(|l| l.starts_with("_sc|postfix.can_collect|2|") && l.contains(cause)),
            "{pf}: {mine:?}"
        );
    }
}

/// A queue file as cleanup writes one (SPEC 8.3): size record, arrival, sender, the
/// recipients, `body_len` bytes of content, end.
fn queue_file(
    dir: &Path,
    rel: &str,
    mode: u32,
    arrival: i64,
    recipients: &[&str],
    body_len: usize,
) {
    fn record(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
        out.push(kind);
        let mut n = data.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { b } else { b | 0x80 });
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(data);
    }
    let mut f = Vec::new();
    record(&mut f, b'C', &[b' '; 95]);
    record(&mut f, b'T', format!("{arrival} 0").as_bytes());
    record(&mut f, b'S', b"sender@example.com");
    for r in recipients {
        record(&mut f, b'R', r.as_bytes());
    }
    record(&mut f, b'M', b"");
    let at = f.len();
    record(&mut f, b'N', &vec![b'x'; body_len]);
    let content = f.len() - at;
    record(&mut f, b'X', b"");
    record(&mut f, b'E', b"");
    let c = format!(
        "{content:>15} {at:>15} {:>15} {:>15} {content:>15} {:>15}",
        recipients.len(),
        0,
        0
    );
    f[2..97].copy_from_slice(c.as_bytes());
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, f).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn scan_reads_every_queue_like_showq() {
    let s = Scratch::new();
    s.postfix("pf", "ok", None, None);
    let spool = s.path("pf/spool");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    queue_file(
        &spool,
        "deferred/A/A1",
        0o700,
        now - 7200,
        &["a@x.example", "b@y.example"],
        297,
    );
    queue_file(
        &spool,
        "deferred/B/B1",
        0o750,
        now - 60,
        &["c@x.example"],
        197,
    ); // forced to expire
    std::fs::create_dir_all(spool.join("defer/A")).unwrap();
    std::fs::write(
        spool.join("defer/A/A1"),
        "\nrecipient=a@x.example\nreason=connect to x.example[192.0.2.1]:25: Connection refused\n\n",
    )
    .unwrap();
    queue_file(&spool, "active/C1", 0o700, now - 10, &["d@x.example"], 8);
    queue_file(&spool, "incoming/D1", 0o600, now, &["e@x.example"], 997); // still being written
    queue_file(&spool, "maildrop/E1", 0o744, now - 5, &["f@x.example"], 3);
    std::fs::create_dir_all(spool.join("corrupt")).unwrap();
    std::fs::write(spool.join("corrupt/F1"), "q").unwrap();
    std::fs::create_dir_all(spool.join("hold")).unwrap();
    let config = s.config(&format!(
        "instances:\n  - {{method: scan, config_directory: {}, age_thresholds: [3600]}}\n",
        s.path("pf").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let all = lines(&out);
    for (q, n, bytes, recipients) in [
        ("active", 1, 10, 1),
        ("hold", 0, 0, 0),
        ("deferred", 2, 500, 3),
        ("incoming", 0, 0, 0),
        ("maildrop", 1, 5, 1),
        ("corrupt", 1, 1, 0),
    ] {
        assert_eq!(gauge(&all, "postfix.queue.size", q), Some(n), "{q}");
        assert_eq!(gauge(&all, "postfix.queue.bytes", q), Some(bytes), "{q}");
        assert_eq!(
            gauge(&all, "postfix.queue.recipients", q),
            Some(recipients),
            "{q}"
        );
    }
    let age = gauge(&all, "postfix.queue.oldest_age", "deferred").unwrap();
    assert!((7200..7300).contains(&age), "{age}");
    let refused = all.iter().find(|l| {
        l.starts_with("postfix.queue.recipients_by_reason:1|")
            && l.contains("reason:connection_refused")
    });
    assert!(refused.is_some(), "{all:?}");
    assert!(
        stdout(&out).contains("postfix.collection.files_read:"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn scan_walks_datadogs_directory_without_asking_postconf() {
    let s = Scratch::new();
    // A Postfix whose postconf fails: scan must not need it when `directory` is given.
    s.postfix("pf", "down", None, None);
    let spool = s.path("spool");
    queue_file(&spool, "deferred/A/A1", 0o700, 1, &["a@x.example"], 297);
    queue_file(&spool, "active/C1", 0o700, 1, &["a@x.example"], 8);
    for q in ["hold", "incoming", "maildrop", "corrupt"] {
        std::fs::create_dir_all(spool.join(q)).unwrap();
    }
    let config = s.config(&format!(
        "instances:\n  - {{method: scan, config_directory: {}, directory: {}}}\n",
        s.path("pf").display(),
        spool.display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let all = lines(&out);
    assert_eq!(gauge(&all, "postfix.queue.size", "deferred"), Some(1));
    assert_eq!(gauge(&all, "postfix.queue.bytes", "deferred"), Some(300));
    assert_eq!(gauge(&all, "postfix.queue.size", "active"), Some(1));
}

#[test]
fn auto_takes_the_least_privileged_method_that_works_and_says_why() {
    let s = Scratch::new();
    // No showq socket; postqueue works.
    s.postfix(
        "pf",
        "ok",
        Some("tests/fixtures/postqueue-j/mixed.jsonl"),
        None,
    );
    let config = s.config(&format!(
        "instances:\n  - {{method: auto, config_directory: {}}}\n",
        s.path("pf").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("(auto: postqueue -j (passed over: showq: no showq socket at"),
        "{text}"
    );
    assert_eq!(
        gauge(&lines(&out), "postfix.queue.size", "deferred"),
        Some(7)
    );

    // Now showq works too: it is chosen first.
    let s2 = Scratch::new();
    s2.postfix("pf", "ok", None, None);
    showq_server(&s2, "pf", include_bytes!("fixtures/showq/mixed.bin"));
    let config = s2.config(&format!(
        "instances:\n  - {{method: auto, config_directory: {}}}\n",
        s2.path("pf").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert!(
        stdout(&out).contains("(auto: showq socket (the least privileged method, and it works)"),
        "{}",
        stdout(&out)
    );

    // Postfix is down: postqueue says so, and auto reports that rather than settle for a
    // more privileged method that does not need Postfix running.
    let s4 = Scratch::new();
    s4.postfix("pf", "down", None, None);
    let config = s4.config(&format!(
        "init_config: {{postfix_user: nobody-here}}\ninstances:\n  - {{method: auto, config_directory: {}}}\n",
        s4.path("pf").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("auto: postqueue -j (passed over: showq: no showq socket"),
        "{text}"
    );
    assert!(text.contains("Postfix is not running"), "{text}");
    assert!(
        !text.contains("queue active") && !text.contains("no method works"),
        "{text}"
    );

    // Nothing works: every method's error, and no gauge.
    let s3 = Scratch::new();
    s3.postfix("pf", "denied", None, None);
    let config = s3.config(&format!(
        "init_config: {{postfix_user: nobody-here}}\ninstances:\n  - {{method: auto, config_directory: {}}}\n",
        s3.path("pf").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("auto: no method works"), "{text}");
    assert!(
        text.contains("no showq socket")
            && text.contains("authorized_mailq_users")
            && text.contains("queue active"),
        "{text}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("postfix.queue.size:")),
        "{text}"
    );
}

#[test]
fn postmulti_discovery_makes_one_instance_per_enabled_postfix() {
    let s = Scratch::new();
    for pf in ["main", "out", "off"] {
        s.postfix(pf, "ok", None, None);
    }
    showq_server(&s, "main", include_bytes!("fixtures/showq/mixed.bin"));
    showq_server(&s, "out", include_bytes!("fixtures/showq/many-rcpts.bin"));
    let listing = format!(
        "-               -               y         {}\nout             mta             y         {}\noff             mta             n         {}\n",
        s.path("main").display(),
        s.path("out").display(),
        s.path("off").display()
    );
    s.write("postmulti.out", listing);
    let fake = s.write(
        "bin/postmulti",
        format!("#!/bin/sh\ncat {}\n", s.path("postmulti.out").display()),
    );
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = s.config(&format!(
        "  postmulti: {}\ninstances:\n  - {{method: showq, discover: postmulti, tags: [\"team:mail\"]}}\n",
        fake.display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let all = lines(&out);
    let main = tagged(&all, "postfix_instance:default");
    let outq = tagged(&all, "postfix_instance:out");
    assert!(
        main.iter().any(|l| l.starts_with(
            "postfix.queue.size:7|g|#team:mail,postfix_instance:default,queue:deferred,instance:"
        )),
        "{main:?}"
    );
    assert!(
        outq.iter()
            .any(|l| l.starts_with("postfix.queue.recipients:50|g|")),
        "{outq:?}"
    );
    assert!(
        tagged(&all, "postfix_instance:off").is_empty(),
        "a disabled instance is not collected"
    );

    // postmulti failing: one CRITICAL instance saying so; nothing else stops.
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'postmulti: fatal: no multi_instance_directories' >&2\nexit 1\n",
    )
    .unwrap();
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("|m:discovery with postmulti failed: `"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("no multi_instance_directories"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn auto_settles_on_scan_when_showq_and_postqueue_cannot_work() {
    let s = Scratch::new();
    // No showq socket, a user outside authorized_mailq_users, but a spool scan can read.
    s.postfix("pf", "denied", None, None);
    for q in [
        "active", "hold", "deferred", "incoming", "maildrop", "corrupt",
    ] {
        std::fs::create_dir_all(s.path(&format!("pf/spool/{q}"))).unwrap();
    }
    queue_file(
        &s.path("pf/spool"),
        "deferred/A/ABCDEF1234",
        0o700,
        1,
        &["a@x.example"],
        1,
    );
    let config = s.config(&format!(
        "instances:\n  - {{method: auto, config_directory: {}}}\n",
        s.path("pf").display()
    ));
    let out = run(&["check", "-c", config.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("(auto: directory scan"), "{text}");
    assert!(
        text.contains("passed over: showq: no showq socket"),
        "{text}"
    );
    assert!(text.contains("postqueue: `"), "{text}");
    let all = lines(&out);
    assert_eq!(
        gauge(&all, "postfix.queue.size", "deferred"),
        Some(1),
        "{text}"
    );
}
