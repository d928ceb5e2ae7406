//! The captured and quoted log files under `tests/fixtures/logs/`, for the tests of every family:
//! one list of the files, one reading of their lines, and the one test that every line of every
//! file is counted by a family or ignored on purpose, with the reason why.

use super::counters::Counters;
use super::delivery::is_queue_id;
use super::line::{self, LineError};

/// Every file of `tests/fixtures/logs/`, by name (`every_fixture_file_is_listed` keeps the list
/// whole).
pub const LOGS: [(&str, &str); 3] = [
    (
        "maillog-postfix-3.7.11.log",
        include_str!("../../tests/fixtures/logs/maillog-postfix-3.7.11.log"),
    ),
    (
        "maillog-postfix-3.7.11-flow.log",
        include_str!("../../tests/fixtures/logs/maillog-postfix-3.7.11-flow.log"),
    ),
    (
        "public-other-versions.log",
        include_str!("../../tests/fixtures/logs/public-other-versions.log"),
    ),
];

/// This machine's real Postfix 3.7.11 capture.
pub const CAPTURE: &str = LOGS[0].1;
/// The same Postfix's lines of the SMTP traffic of `tests/e2e/smtp-flow.py` (every family).
pub const FLOW: &str = LOGS[1].1;
/// The quoted corpus of other versions and syslog formats.
pub const PUBLIC: &str = LOGS[2].1;

/// A fixture's log lines: not its `#` comments, not its blank lines.
pub fn lines(log: &str) -> impl Iterator<Item = &str> {
    log.lines().filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Lines no family counts, and why: `(program, start of the text, reason)`. The start is
/// matched on the text after `ident[pid]: `, or after its queue ID (`QID: host ... said:`).
pub const IGNORED_ON_PURPOSE: [(&str, &str, &str); 16] = [
    (
        "master",
        "daemon started -- ",
        "start and reload: no mail flow",
    ),
    ("master", "reload -- ", "idem"),
    ("postfix-script", "", "the `postfix` command's own words"),
    (
        "postsuper",
        "",
        "an administrator's hold, delete or expire; expiry counts at qmgr's line",
    ),
    (
        "scache",
        "statistics: ",
        "the connection cache's statistics",
    ),
    (
        "smtp",
        "connect to ",
        "a failed connection: its outcome is the status line after it",
    ),
    (
        "smtp",
        "host ",
        "a server's reply to one attempt (`said:`, `refused to talk to me`): the status line after it counts",
    ),
    (
        "smtpd",
        "improper command pipelining after ",
        "a client's slip, not a verdict or an end: `reject_unauth_pipelining`'s reject counts, when configured",
    ),
    (
        "smtpd",
        "SSL_accept error from ",
        "a failed handshake: the session's end after it (`lost connection after STARTTLS`) counts",
    ),
    (
        "smtpd",
        "table ",
        "`table ... has changed -- restarting`: a process renewing itself",
    ),
    (
        "smtpd",
        "< ",
        "verbose logging (`-v`, `debug_peer_list`): the client's command",
    ),
    ("smtpd", "> ", "verbose logging: the server's reply"),
    (
        "smtpd",
        "xsasl_",
        "verbose logging: the SASL glue's trace",
    ),
    (
        "postscreen",
        "cache ",
        "postscreen's cache cleanup statistics",
    ),
    (
        "dnsblog",
        "addr ",
        "one DNSBL's answer; postscreen's `DNSBL rank` line counts the verdict",
    ),
    (
        "tlsproxy",
        "CONNECT from ",
        "tlsproxy taking over postscreen's connection (its TLS line counts)",
    ),
];

/// Lines the framer rejects on purpose: `(error, text in the line, reason)`.
pub const NOT_FRAMED_ON_PURPOSE: [(LineError, &str, &str); 2] = [
    (
        LineError::NotPostfix,
        "",
        "another program's line in the same syslog file (opendkim, policyd-spf, postsrsd)",
    ),
    (
        LineError::NoPrefix,
        "Z Jul 03 ",
        "`docker logs --timestamps` put its own stamp before the syslog line: not a syslog format",
    ),
];

/// Whether a line no family counted is listed in [`IGNORED_ON_PURPOSE`].
pub fn ignored_on_purpose(program: &str, text: &str) -> bool {
    let after_queue_id = text
        .split_once(": ")
        .filter(|(q, _)| is_queue_id(q))
        .map(|(_, rest)| rest);
    IGNORED_ON_PURPOSE.iter().any(|(p, start, _)| {
        program == *p
            && (text.starts_with(start) || after_queue_id.is_some_and(|r| r.starts_with(start)))
    })
}

#[test]
fn every_fixture_file_is_listed() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/logs");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<&str> = LOGS.iter().map(|(name, _)| *name).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "list every file of {dir} in LOGS");
}

/// Every line of every fixture is counted by a family, or ignored on purpose (by a family's
/// list above, or by the framer's), so a new shape in a capture or a quote shows here.
#[test]
fn every_captured_line_is_counted_or_ignored_on_purpose() {
    let mut wrong = Vec::new();
    for (name, log) in LOGS {
        let mut c = Counters::new();
        let (mut counted, mut ignored) = (0, 0);
        for l in lines(log) {
            let line = match line::parse(l) {
                Ok(line) => line,
                Err(e) => {
                    let on_purpose = NOT_FRAMED_ON_PURPOSE
                        .iter()
                        .any(|(err, needle, _)| *err == e && l.contains(needle));
                    if !on_purpose {
                        wrong.push(format!("{name}: not framed ({e}): {l}"));
                    }
                    ignored += 1;
                    continue;
                }
            };
            if c.count(&line, "/etc/postfix") {
                counted += 1;
            } else {
                if !ignored_on_purpose(line.program, line.text) {
                    wrong.push(format!("{name}: neither counted nor ignored: {l}"));
                }
                ignored += 1;
            }
        }
        assert!(
            counted > ignored,
            "{name}: {counted} counted, {ignored} ignored"
        );
        let f = c.flush();
        assert!(f.unparsed.is_empty(), "{name}: {:?}", f.unparsed);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The public corpus counted by family: each total is what a plain substring count of the file
/// says it must be, so no line is counted twice or by the wrong family.
#[test]
fn public_corpus_totals_by_family() {
    use super::counters::Count;
    let mut c = Counters::new();
    for l in lines(PUBLIC) {
        if let Ok(line) = line::parse(l) {
            c.count(&line, "/etc/postfix");
        }
    }
    let f = c.flush();
    let sum = |want: &dyn Fn(&Count) -> bool| -> u64 {
        f.counts
            .iter()
            .filter(|(k, _, _)| want(k))
            .map(|(_, _, n)| *n)
            .sum()
    };
    // Framed lines holding every piece; rsyslog's `message repeated N times` stands for N.
    let with = |pieces: &[&str]| -> u64 {
        lines(PUBLIC)
            .filter(|l| line::parse(l).is_ok() && pieces.iter().all(|p| l.contains(p)))
            .map(|l| {
                l.split_once("message repeated ")
                    .and_then(|(_, r)| r.split_once(" times"))
                    .and_then(|(n, _)| n.parse().ok())
                    .unwrap_or(1)
            })
            .sum()
    };
    // Rejects by stage, as smtpd writes the stage word.
    for (words, tag) in [
        (&["CONNECT"][..], "connect"),
        (&["HELO", "EHLO"][..], "helo"),
        (&["MAIL"][..], "mail"),
        (&["RCPT", "VRFY"][..], "rcpt"),
        (&["DATA", "BDAT"][..], "data"),
        (&["END-OF-MESSAGE"][..], "end-of-data"),
    ] {
        let want: u64 = words
            .iter()
            .map(|w| with(&["/smtpd[", &format!("reject: {w} from ")]))
            .sum();
        let got = sum(&|k| matches!(k, Count::Rejects { stage, .. } if *stage == tag));
        assert_eq!(got, want, "rejects at {tag}");
    }
    assert_eq!(
        sum(&|k| matches!(k, Count::Rejects { .. })),
        with(&["/smtpd[", "reject: "])
    );
    assert_eq!(
        sum(&|k| matches!(k, Count::AuthFailures { .. })),
        with(&["/smtpd[", ": SASL ", " authentication failed"])
    );
    assert_eq!(
        sum(&|k| matches!(k, Count::Tls { .. })),
        with(&[" TLS connection established "])
    );
    assert_eq!(
        sum(&|k| matches!(k, Count::Postscreen { .. })),
        with(&["/postscreen["]) - with(&["/postscreen[", "]: cache "])
    );
    assert_eq!(
        sum(&|k| *k == Count::Connections),
        with(&["/smtpd[", "]: connect from "])
    );
    assert_eq!(
        sum(&|k| matches!(k, Count::LostConnections { .. })),
        with(&["/smtpd[", "]: lost connection after "])
            + with(&["/smtpd[", "]: too many errors after "])
    );
    assert_eq!(
        sum(&|k| matches!(k, Count::Received { .. })),
        with(&["/smtpd[", ": client="]) + with(&["/pickup[", ": uid="])
    );
    assert_eq!(
        sum(&|k| matches!(k, Count::Notifications { .. })),
        with(&["/bounce[", " notification: "])
    );
    assert_eq!(
        sum(&|k| matches!(k, Count::CleanupActions { .. })),
        with(&["/cleanup[", ": warning: header "]) + with(&["/cleanup[", ": milter-reject: "])
    );
    // Warnings and worse: every severity prefix, less smtpd's SASL failures (counted above).
    let severities: u64 = ["]: warning: ", "]: error: ", "]: fatal: ", "]: panic: "]
        .iter()
        .map(|p| with(&[p]))
        .sum();
    assert_eq!(
        sum(&|k| matches!(k, Count::Warnings { .. })),
        severities
            - with(&[
                "/smtpd[",
                "]: warning: ",
                ": SASL ",
                " authentication failed"
            ])
    );
    // Deliveries by status (probes are none), and expiries.
    for status in ["sent", "deferred", "bounced"] {
        let got: u64 = f
            .deliveries
            .iter()
            .filter(|(k, _)| k.status == status)
            .map(|(_, d)| d.recipients)
            .sum();
        assert_eq!(got, with(&[&format!(" status={status} (")]), "{status}");
    }
    let expired: u64 = f.expired.iter().map(|(_, n)| n).sum();
    assert_eq!(
        expired,
        with(&[", status=expired, "]) + with(&[", status=force-expired, "])
    );
    assert!(f.unparsed.is_empty(), "{:?}", f.unparsed);
}
