//! The postscreen family: what the zombie blocker decided about each connection before any
//! smtpd saw it. Pure, linear, no allocation.
//!
//! Shapes (`postscreen/*.c`; ../shared/SPEC.md 7.2): `CONNECT from [a]:p to [a]:p`,
//! `PASS NEW [a]:p`, `PASS OLD [a]:p`, `PREGREET N after T from [a]:p: text`,
//! `DNSBL rank N for [a]:p`, `HANGUP after T from [a]:p in <test>`, `DISCONNECT [a]:p`,
//! `ALLOWLISTED|DENYLISTED [a]:p` (`WHITELISTED`/`BLACKLISTED` before 3.6 or with
//! `respectful_logging = no`), the protocol tests' `COMMAND PIPELINING|NON-SMTP COMMAND|
//! BARE NEWLINE|COMMAND TIME LIMIT|COMMAND COUNT LIMIT|COMMAND LENGTH LIMIT from [a]:p after
//! CMD`, and `NOQUEUE: reject: RCPT|CONNECT from [a]:p: ...` (commas between the envelope
//! fields, unlike smtpd). Only the leading words decide: what follows the client is the
//! client's (its pregreet text, its commands).

/// What postscreen logged, as a bounded tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Connect,
    /// A client passed every test for the first time.
    PassNew,
    /// A client still in the temporary allowlist.
    PassOld,
    /// The client spoke before its turn.
    Pregreet,
    /// The client's DNSBL score reached the threshold.
    Dnsbl,
    /// The client hung up during a test.
    Hangup,
    CommandPipelining,
    NonSmtpCommand,
    BareNewline,
    CommandTimeLimit,
    CommandCountLimit,
    CommandLengthLimit,
    /// The permanent denylist (`postscreen_access_list`), `BLACKLISTED` too.
    Denylist,
    /// The permanent allowlist, `WHITELISTED` too.
    Allowlist,
    /// The allowlist was vetoed (`ALLOWLIST VETO`, `WHITELIST VETO`).
    AllowlistVeto,
    /// `NOQUEUE: reject:` (a failed test enforced, or too many connections).
    Reject,
    Disconnect,
}

/// A line of this family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub action: Action,
    /// `DNSBL rank N`: the client's combined score.
    pub dnsbl_rank: Option<u32>,
}

/// The event in a postscreen line, given the identifier's last component and the text after
/// `ident[pid]: `.
pub fn parse(program: &str, text: &str) -> Option<Event> {
    if program != "postscreen" {
        return None;
    }
    let event = |action| Event {
        action,
        dnsbl_rank: None,
    };
    // Words that are followed by the client, `[addr]:port`.
    const CLIENT_FIRST: [(&str, Action); 11] = [
        ("CONNECT from [", Action::Connect),
        ("PASS NEW [", Action::PassNew),
        ("PASS OLD [", Action::PassOld),
        ("DISCONNECT [", Action::Disconnect),
        ("ALLOWLISTED [", Action::Allowlist),
        ("WHITELISTED [", Action::Allowlist),
        ("DENYLISTED [", Action::Denylist),
        ("BLACKLISTED [", Action::Denylist),
        ("ALLOWLIST VETO [", Action::AllowlistVeto),
        ("WHITELIST VETO [", Action::AllowlistVeto),
        ("NOQUEUE: reject: ", Action::Reject),
    ];
    for (prefix, action) in CLIENT_FIRST {
        if let Some(rest) = text.strip_prefix(prefix) {
            if action == Action::Reject {
                // `RCPT from [a]:p: ...` or `CONNECT from [a]:p: ...`.
                let (_, client) = rest.split_once(" from [")?;
                client.contains("]:").then_some(())?;
            } else {
                rest.contains("]:").then_some(())?;
            }
            return Some(event(action));
        }
    }
    // Words followed by a number or a time, then `from [a]:p`.
    if let Some(rest) = text.strip_prefix("DNSBL rank ") {
        let (rank, rest) = rest.split_once(' ')?;
        rest.starts_with("for [").then_some(())?;
        return Some(Event {
            action: Action::Dnsbl,
            dnsbl_rank: Some(rank.parse().ok()?),
        });
    }
    for (prefix, action) in [
        ("PREGREET ", Action::Pregreet),
        ("HANGUP after ", Action::Hangup),
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            // `PREGREET 11 after 0.04 from [`, `HANGUP after 2.5 from [`: a few short words.
            let head = rest.get(..rest.len().min(48)).unwrap_or(rest);
            return head.contains(" from [").then(|| event(action));
        }
    }
    const PROTOCOL: [(&str, Action); 6] = [
        ("COMMAND PIPELINING from [", Action::CommandPipelining),
        ("NON-SMTP COMMAND from [", Action::NonSmtpCommand),
        ("BARE NEWLINE from [", Action::BareNewline),
        ("COMMAND TIME LIMIT from [", Action::CommandTimeLimit),
        ("COMMAND COUNT LIMIT from [", Action::CommandCountLimit),
        ("COMMAND LENGTH LIMIT from [", Action::CommandLengthLimit),
    ];
    PROTOCOL
        .iter()
        .find(|(prefix, _)| text.starts_with(prefix))
        .map(|&(_, action)| event(action))
}

impl Action {
    pub fn tag(self) -> &'static str {
        match self {
            Action::Connect => "connect",
            Action::PassNew => "pass_new",
            Action::PassOld => "pass_old",
            Action::Pregreet => "pregreet",
            Action::Dnsbl => "dnsbl",
            Action::Hangup => "hangup",
            Action::CommandPipelining => "command_pipelining",
            Action::NonSmtpCommand => "non_smtp_command",
            Action::BareNewline => "bare_newline",
            Action::CommandTimeLimit => "command_time_limit",
            Action::CommandCountLimit => "command_count_limit",
            Action::CommandLengthLimit => "command_length_limit",
            Action::Denylist => "denylist",
            Action::Allowlist => "allowlist",
            Action::AllowlistVeto => "allowlist_veto",
            Action::Reject => "reject",
            Action::Disconnect => "disconnect",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(text: &str) -> &'static str {
        match parse("postscreen", text) {
            Some(e) => e.action.tag(),
            None => panic!("{text}"),
        }
    }

    // "GROK name.yaml": a line from whyscream/postfix-grok-patterns' test suite,
    // https://github.com/whyscream/postfix-grok-patterns/tree/master/test/name.yaml
    #[test]
    fn public_lines() {
        for (text, want) in [
            // GROK postscreen_0002 .. 0022, 0025 .. 0028
            ("CONNECT from [61.238.241.86]:53024 to [89.105.204.244]:25", "connect"),
            ("DISCONNECT [216.81.72.72]:43421", "disconnect"),
            ("PASS OLD [61.238.241.86]:53024", "pass_old"),
            ("PASS OLD [2604:8d00:0:1::3]:52237", "pass_old"),
            ("PASS NEW [2607:f8b0:4003:c01::23a]:36051", "pass_new"),
            ("WHITELISTED [61.238.241.86]:53024", "allowlist"),
            ("BLACKLISTED [61.238.241.86]:53024", "denylist"),
            ("WHITELIST VETO [61.238.241.86]:53024", "allowlist_veto"),
            ("PREGREET 6 after 1.2 from [216.81.72.72]:43421: RSET\\r\\n", "pregreet"),
            ("DNSBL rank 3 for [111.73.45.149]:1038", "dnsbl"),
            ("HANGUP after 63 from [111.73.45.149]:1038 in tests after SMTP handshake", "hangup"),
            ("HANGUP after 0 from [66.55.85.58]:54017 in tests before SMTP handshake", "hangup"),
            ("COMMAND TIME LIMIT from [182.246.250.243]:51799 after CONNECT", "command_time_limit"),
            ("COMMAND COUNT LIMIT from [182.246.250.243]:51796 after RCPT", "command_count_limit"),
            ("COMMAND LENGTH LIMIT from [182.246.250.243]:51796 after RCPT", "command_length_limit"),
            ("NON-SMTP COMMAND from [93.174.93.51]:45284 after CONNECT: GET http://ipv4scan.com/hello/check.txt HTTP/1.1", "non_smtp_command"),
            ("COMMAND PIPELINING from [88.208.233.4]:42606 after .: \\n", "command_pipelining"),
            ("BARE NEWLINE from [88.208.233.4]:42606 after .", "bare_newline"),
            ("NOQUEUE: reject: RCPT from [182.98.255.184]:2413: 550 5.5.1 Protocol error; from=<lvtowxfdp@yahoo.com>, to=<tom@example.com>, proto=SMTP, helo=<mx32.usaindiamunish.net>", "reject"),
            ("NOQUEUE: reject: RCPT from [27.157.200.233]:4984: 550 5.7.1 Service unavailable; client [27.157.200.233] blocked using zen.spamhaus.org; from=<hcdvbnm@qhhn.com>, to=<4ECEA00F.9040306@example.com>, proto=ESMTP, helo=<qhhn.com>", "reject"),
            // GROK postscreen_0023 (commented out of their .log file; the yaml keeps it).
            ("NOQUEUE: reject: CONNECT from [1.2.3.4]:1337: too many connections", "reject"),
            // Hsn723/postfix_exporter's test lines for the 3.6 spellings:
            // https://github.com/Hsn723/postfix_exporter/blob/master/exporter/postfix_exporter_test.go
            ("ALLOWLISTED [69.171.232.146]:61236", "allowlist"),
            ("DENYLISTED [1.2.3.4]:5678", "denylist"),
        ] {
            assert_eq!(action(text), want, "{text}");
        }
        assert_eq!(
            parse("postscreen", "DNSBL rank 3 for [111.73.45.149]:1038")
                .unwrap()
                .dnsbl_rank,
            Some(3)
        );
    }

    #[test]
    fn not_ours() {
        // GROK postscreen_0001 and 0029: postscreen lines that are no client's verdict.
        for text in [
            "cache btree:/var/lib/postfix-in/postscreen_cache full cleanup: retained=242 dropped=7 entries",
            "warning: getpeername: Transport endpoint is not connected -- dropping this connection",
            "",
            "CONNECT from nowhere",
            "DNSBL rank x for [1.2.3.4]:5",
            "DNSBL rank 99999999999 for [1.2.3.4]:5",
            "PREGREET é",
            "NOQUEUE: reject: RCPT from nowhere",
        ] {
            assert_eq!(parse("postscreen", text), None, "{text}");
        }
        assert_eq!(parse("smtpd", "PASS NEW [192.0.2.1]:2525"), None);
    }
}
