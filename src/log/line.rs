//! One log line taken apart: the syslog prefix (in any of its three forms, `stamp`), the
//! identifier Postfix logs under, and the text. The timestamp is skipped, never trusted: BSD
//! and `maillog_file` stamps have no year and no zone, and counts are made when lines are read.

/// The most copies one `message repeated N times` line stands for.
pub const MAX_REPEATS: u32 = 1000;

/// A Postfix log line, borrowed from the text it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The identifier up to its last `/`: Postfix's `syslog_name` (`postfix`, `postfix-out`,
    /// `postfix/submission`), which tells the Postfix instance.
    pub syslog_name: &'a str,
    /// The identifier after its last `/`: the program (`smtpd`, `smtp`, `qmgr`), whatever
    /// service name master.cf runs it under.
    pub program: &'a str,
    /// The text after `ident[pid]: `.
    pub text: &'a str,
    /// How many times the line stands: more than 1 for rsyslog's
    /// `message repeated N times: [ ... ]` (N copies of the text in brackets).
    pub times: u32,
}

/// Why a line is not a Postfix line we can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("no syslog prefix (timestamp, host, identifier)")]
    NoPrefix,
    #[error("not from Postfix (the identifier has no `/`)")]
    NotPostfix,
}

/// Takes a line of a syslog file or Postfix's own `maillog_file` apart:
///
/// - BSD: `Dec  1 18:24:05 host postfix/smtp[7424]: text` (day space-padded)
/// - Postfix's `maillog_file`: `Dec 01 18:24:05 host postfix/smtp[7424]: text`
/// - RFC 3339 (Debian's rsyslog): `2025-12-01T18:24:05.123456+01:00 host postfix/smtp[7424]: text`
///
/// Linear in the line's length, and it allocates nothing.
pub fn parse(line: &str) -> Result<Line<'_>, LineError> {
    let (_stamp, rest) = super::stamp::split(line).ok_or(LineError::NoPrefix)?;
    let (_host, rest) = rest.split_once(' ').ok_or(LineError::NoPrefix)?;
    let (ident, text) = split_ident(rest).ok_or(LineError::NoPrefix)?;
    from_parts(ident, text)
}

/// A line whose identifier and text come separately (the journal's `SYSLOG_IDENTIFIER` and
/// `MESSAGE`).
pub fn from_parts<'a>(ident: &'a str, text: &'a str) -> Result<Line<'a>, LineError> {
    let (syslog_name, program) = ident.rsplit_once('/').ok_or(LineError::NotPostfix)?;
    if syslog_name.is_empty() || program.is_empty() {
        return Err(LineError::NotPostfix);
    }
    let (text, times) = unrepeat(text);
    Ok(Line {
        syslog_name,
        program,
        text,
        times,
    })
}

/// Whether `syslog_name` is one of Postfix's by its name alone: its first component starts with
/// `postfix` (`postfix`, `postfix-out`, `postfix/submission`). Anyone may log to the mail
/// facility (`logger -p mail.info -t evil/smtp`), and other mail software does; an instance
/// with another `syslog_name` is known from its config instead.
pub fn named_like_postfix(syslog_name: &str) -> bool {
    first_component(syslog_name).starts_with("postfix")
}

/// `syslog_name` up to its first `/`: the part that names the Postfix instance.
pub fn first_component(syslog_name: &str) -> &str {
    syslog_name.split('/').next().unwrap_or(syslog_name)
}

/// The `instance:` tag of a line written under `syslog_name`: what the queue metrics of that
/// Postfix instance carry when its `config_directory` is written the standard way. Postfix's
/// `syslog_name` defaults to `postfix` for the default instance, and Debian's postmulti names
/// an instance `postfix-NAME` with its config in `/etc/postfix-NAME`; a master.cf service may
/// add `/submission` and such, which is cut. Anything else is kept as it is, made tag-safe.
pub fn instance_tag(syslog_name: &str) -> String {
    let name = first_component(syslog_name);
    if name == "postfix" || name.strip_prefix("postfix-").is_some_and(|n| !n.is_empty()) {
        crate::tag::sanitize(&format!("/etc/{name}")).into_owned()
    } else {
        crate::tag::sanitize(name).into_owned()
    }
}

/// `ident[pid]: text` or `ident: text` into the identifier and the text.
fn split_ident(rest: &str) -> Option<(&str, &str)> {
    let (head, text) = rest.split_once(": ")?;
    let ident = match head.split_once('[') {
        Some((ident, pid)) => {
            let digits = pid.strip_suffix(']')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            ident
        }
        None => head,
    };
    (!ident.is_empty() && !ident.contains(' ')).then_some((ident, text))
}

/// rsyslog's repeat notice: `message repeated N times: [ text]` stands for N copies.
fn unrepeat(text: &str) -> (&str, u32) {
    let Some(rest) = text.strip_prefix("message repeated ") else {
        return (text, 1);
    };
    let Some((n, rest)) = rest.split_once(" times: [") else {
        return (text, 1);
    };
    match (n.parse::<u32>(), rest.strip_suffix(']')) {
        // Anyone can write this line with logger(1): a count rsyslog could have written, no
        // more (it flushes a repeat run long before).
        (Ok(n), Some(inner)) if n > 0 => {
            (inner.strip_prefix(' ').unwrap_or(inner), n.min(MAX_REPEATS))
        }
        _ => (text, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_by_its_name() {
        for name in [
            "postfix",
            "postfix-out",
            "postfix/submission",
            "postfix-out/relay",
        ] {
            assert!(named_like_postfix(name), "{name}");
        }
        for name in ["dovecot", "evil", "mta-out", "opendkim/x"] {
            assert!(!named_like_postfix(name), "{name}");
        }
        assert_eq!(first_component("postfix-out/relay"), "postfix-out");
    }

    // Lines from a real Postfix 3.7.11 `maillog_file` (../shared/SPEC.md section 7.2), in
    // each of the three prefixes.
    const SMTP: &str = "postfix/smtp[7424]: 29A27B82EB: to=<bench@bench.invalid>, relay=none, delay=0.05, delays=0.02/0.03/0/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:2: Connection refused)";

    #[test]
    fn three_prefixes_one_result() {
        for prefix in [
            "Dec 01 18:24:05 bench ",
            "Dec  1 18:24:05 bench ",
            "2025-12-01T18:24:05.123456+01:00 bench ",
        ] {
            let line = format!("{prefix}{SMTP}");
            let got = parse(&line).unwrap();
            assert_eq!(got.syslog_name, "postfix", "{prefix}");
            assert_eq!(got.program, "smtp");
            assert!(got.text.starts_with("29A27B82EB: to=<bench@bench.invalid>"));
            assert_eq!(got.times, 1);
        }
    }

    #[test]
    fn identifier_last_component_is_the_program() {
        let l = parse("Dec 01 10:00:00 h postfix/submission/smtpd[17749]: connect from x[1.2.3.4]")
            .unwrap();
        assert_eq!((l.syslog_name, l.program), ("postfix/submission", "smtpd"));
        let l = parse("Dec 01 10:00:00 h postfix-out/qmgr[1]: ABC: removed").unwrap();
        assert_eq!((l.syslog_name, l.program), ("postfix-out", "qmgr"));
        // No pid: still an identifier.
        let l = parse("Dec 01 10:00:00 h postfix/postlog: text").unwrap();
        assert_eq!(l.program, "postlog");
    }

    #[test]
    fn not_postfix_or_no_prefix() {
        assert_eq!(
            parse("Dec 01 10:00:00 h sshd[1]: Accepted"),
            Err(LineError::NotPostfix)
        );
        assert_eq!(parse("garbage"), Err(LineError::NoPrefix));
        assert_eq!(
            parse("Dec 01 10:00 h postfix/smtp[1]: x"),
            Err(LineError::NoPrefix)
        );
        assert_eq!(
            parse("Dec 01 10:00:00 h postfix/smtp[x]: x"),
            Err(LineError::NoPrefix)
        );
        assert_eq!(parse(""), Err(LineError::NoPrefix));
        assert_eq!(from_parts("postfix/", "x"), Err(LineError::NotPostfix));
    }

    #[test]
    fn rsyslog_repeats_count_n_times() {
        let l = parse("Dec  1 18:24:05 bench postfix/smtpd[9]: message repeated 3 times: [ warning: hostname x does not resolve]").unwrap();
        assert_eq!(
            (l.text, l.times),
            ("warning: hostname x does not resolve", 3)
        );
        // Anyone can log this: a huge count stands for no more than rsyslog could have meant.
        let l =
            parse("Dec  1 18:24:05 bench postfix/smtp[9]: message repeated 4000000000 times: [x]")
                .unwrap();
        assert_eq!(l.times, MAX_REPEATS);
        // Not the notice's shape: the text as it is, once.
        let l = parse("Dec  1 18:24:05 bench postfix/smtpd[9]: message repeated many times: [x]")
            .unwrap();
        assert_eq!(l.times, 1);
    }

    /// Prefixes of public lines (tests/fixtures/logs/public-other-versions.log, with their
    /// sources there): rsyslog's RFC 3339 with and without UTC, a day written with one space,
    /// a zero-padded one, a service name of two components, rsyslog's repeat notice.
    #[test]
    fn public_prefixes() {
        for (line, name, program, times) in [
            ("2021-03-13T12:04:09.755361+01:00 cx20-2 postfix/pickup[7274]: B83DE2400BE: uid=30 from=<wwwrun>", "postfix", "pickup", 1),
            ("2024-10-26T18:34:42.079431+11:00 mail postfix/smtps/smtpd[152054]: warning: non-SMTP command from unknown[0.0.0.0]: GET / HTTP/1.1", "postfix/smtps", "smtpd", 1),
            ("Jul 4 10:18:29 mail postfix/submission/smtpd[2960795]: connect from unknown[47.15.240.42]", "postfix/submission", "smtpd", 1),
            ("Jul 07 13:42:53 mailserver postfix/smtpd[2694213]: NOQUEUE: reject: RCPT from x[87.106.67.224]: 554 5.7.1 x", "postfix", "smtpd", 1),
            ("Jan 23 03:30:03 Pixel-games postfix/amavis/smtp[21388]: 4JhJXC248TzgB0: removed", "postfix/amavis", "smtp", 1),
            ("Jul 24 23:50:25 test haproxy/postscreen[2953]: PREGREET 6 after 0 from [1.2.3.4]:22354: EHLO\\r\\n", "haproxy", "postscreen", 1),
            ("Sep 30 17:10:44 svcenmta01 postfix/smtp[26192]: message repeated 2 times: [ C71221E1E6C: to=<admin@svcenmta01.ldomain.local>, relay=none, delay=0.01, delays=0.01/0/0/0, dsn=5.4.6, status=bounced (mail for svcenmta01.ldomain.local loops back to myself)]", "postfix", "smtp", 2),
        ] {
            let l = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!((l.syslog_name, l.program, l.times), (name, program, times), "{line}");
        }
        // `docker logs --timestamps` puts its stamp before the syslog line's: not a syslog
        // format, not read (https://github.com/anonaddy/docker/issues/290).
        assert_eq!(
            parse("2024-07-03T17:18:06.603714476Z Jul 03 19:18:06 mail postfix/smtpd[7610]: connect from unknown[10.5.0.1]"),
            Err(LineError::NoPrefix)
        );
    }

    #[test]
    fn instance_tags_follow_debian_postmulti_names() {
        assert_eq!(instance_tag("postfix"), "/etc/postfix");
        assert_eq!(instance_tag("postfix/submission"), "/etc/postfix");
        assert_eq!(instance_tag("postfix-out"), "/etc/postfix-out");
        assert_eq!(instance_tag("postfix-out/relay"), "/etc/postfix-out");
        assert_eq!(instance_tag("postfix-"), "postfix-");
        assert_eq!(instance_tag("mta2"), "mta2");
        assert_eq!(instance_tag("a,b|c"), "a_b_c");
    }

    #[test]
    fn multibyte_text_is_fine() {
        for line in [
            "Déc 01 10:00:00 h postfix/smtp[1]: é",
            "é",
            "2025-é",
            "Dec 0é 10:00:00 h a/b: c",
        ] {
            let _ = parse(line);
        }
    }
}
