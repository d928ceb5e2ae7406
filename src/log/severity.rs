//! A line's severity: Postfix writes `warning: `, `error: `, `fatal: ` or `panic: ` before
//! the text of anything above info (`util/msg_syslog.c`; ../shared/SPEC.md 7.1), whatever the
//! program. Pure.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Error,
    Fatal,
    Panic,
}

/// The severity of a line's text (after `ident[pid]: `), and the text after the prefix;
/// `None` for an info line. A per-message line starts with its queue ID instead, so a
/// `header_checks` WARN (`QID: warning: header ...`) is not a program's warning.
pub fn parse(text: &str) -> Option<(Severity, &str)> {
    const PREFIXES: [(&str, Severity); 4] = [
        ("warning: ", Severity::Warning),
        ("error: ", Severity::Error),
        ("fatal: ", Severity::Fatal),
        ("panic: ", Severity::Panic),
    ];
    PREFIXES
        .iter()
        .find_map(|&(prefix, severity)| text.strip_prefix(prefix).map(|rest| (severity, rest)))
}

impl Severity {
    pub fn tag(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Fatal => "fatal",
            Severity::Panic => "panic",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's real Postfix 3.7.11 capture holds two `fatal:` lines (postqueue refusing
    /// a user) and no other severity.
    #[test]
    fn captured_log() {
        let log = crate::log::fixtures::CAPTURE;
        let found: Vec<_> = log
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let line = crate::log::line::parse(l).unwrap();
                parse(line.text).map(|(s, _)| (line.program, s))
            })
            .collect();
        assert_eq!(
            found,
            [
                ("postqueue", Severity::Fatal),
                ("postqueue", Severity::Fatal)
            ]
        );
    }

    #[test]
    fn public_lines() {
        // https://github.com/Hsn723/postfix_exporter/blob/master/exporter/postfix_exporter_test.go
        // ("Testing levels of unsupported entries").
        for (text, want) in [
            ("fatal: file /etc/postfix/main.cf: parameter default_privs: unknown user name value: nobody", Some(Severity::Fatal)),
            ("warning: please avoid flushing the whole queue when you have", Some(Severity::Warning)),
            ("table hash:/etc/postfix/virtual_mailbox_maps(0,lock|fold_fix) has changed -- restarting", None),
        ] {
            assert_eq!(parse(text).map(|(s, _)| s), want, "{text}");
        }
        // https://github.com/whyscream/postfix-grok-patterns/tree/master/test/sendmail_0001.yaml
        assert_eq!(
            parse("fatal: root(0): message file too big"),
            Some((Severity::Fatal, "root(0): message file too big"))
        );
        // SPEC 7.1's other two prefixes (source only).
        assert_eq!(parse("error: x").map(|(s, _)| s.tag()), Some("error"));
        assert_eq!(parse("panic: x").map(|(s, _)| s.tag()), Some("panic"));
        for text in [
            "",
            "warning:",
            "Warning: x",
            "1A2B3C4D5E: warning: header Subject: x",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
