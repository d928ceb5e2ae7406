//! Sorts Postfix delay reasons into a fixed, documented set of classes, so that "why is mail
//! deferred" becomes a bounded `reason:` tag. The rules look for the cause Postfix or the remote
//! server wrote, most specific first; `delivery temporarily suspended: <cause>` is sorted by its
//! cause.

/// A delay reason class; `as_str` is the `reason:` tag value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    ConnectionRefused,
    ConnectionTimeout,
    HostNotFound,
    NoRoute,
    TlsFailure,
    LostConnection,
    MailboxFull,
    RateLimited,
    Remote4xx,
    LocalProblem,
    NoReason,
    Other,
}

impl Reason {
    pub const ALL: [Reason; 12] = [
        Reason::ConnectionRefused,
        Reason::ConnectionTimeout,
        Reason::HostNotFound,
        Reason::NoRoute,
        Reason::TlsFailure,
        Reason::LostConnection,
        Reason::MailboxFull,
        Reason::RateLimited,
        Reason::Remote4xx,
        Reason::LocalProblem,
        Reason::NoReason,
        Reason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ConnectionRefused => "connection_refused",
            Reason::ConnectionTimeout => "connection_timeout",
            Reason::HostNotFound => "host_not_found",
            Reason::NoRoute => "no_route",
            Reason::TlsFailure => "tls_failure",
            Reason::LostConnection => "lost_connection",
            Reason::MailboxFull => "mailbox_full",
            Reason::RateLimited => "rate_limited",
            Reason::Remote4xx => "remote_4xx",
            Reason::LocalProblem => "local_problem",
            Reason::NoReason => "no_reason",
            Reason::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// In order: the first class with a matching phrase wins. DNS failures say "temporary" and
/// "host", connection failures come wrapped in "delivery temporarily suspended", remote 4xx
/// replies quote mailbox or rate problems: hence the order.
const RULES: &[(Reason, &[&str])] = &[
    (
        Reason::HostNotFound,
        &[
            "host or domain name not found",
            "name service error",
            "host not found",
            "no mx host",
            "unable to look up host",
            "failure in name resolution",
        ],
    ),
    (Reason::ConnectionRefused, &["connection refused"]),
    (
        Reason::ConnectionTimeout,
        &[
            "connection timed out",
            "timed out while",
            "operation timed out",
        ],
    ),
    (
        Reason::NoRoute,
        &[
            "no route to host",
            "network is unreachable",
            "host is unreachable",
        ],
    ),
    (
        Reason::TlsFailure,
        &[
            "tls is required",
            "start tls",
            "starttls",
            "tls library problem",
            "tls handshake",
            "tls negotiation",
            "certificate",
            "handshake failure",
            "ssl_",
        ],
    ),
    (
        Reason::LostConnection,
        &[
            "lost connection",
            "connection reset",
            "broken pipe",
            "unexpected eof",
        ],
    ),
    (
        Reason::MailboxFull,
        &[
            "mailbox full",
            "mailbox is full",
            "quota",
            "insufficient storage",
            "4.2.2",
            "mailbox size limit",
        ],
    ),
    (
        Reason::RateLimited,
        &[
            "too many",
            "rate limit",
            "ratelimit",
            "throttl",
            "4.7.28",
            "slow down",
            "try again later, closing connection",
        ],
    ),
    (
        Reason::Remote4xx,
        &[
            " said: 4",
            "refused to talk to me: 4",
            "greylist",
            "graylist",
            "try again later",
        ],
    ),
    (
        Reason::LocalProblem,
        &[
            "mail transport unavailable",
            "configuration error",
            "unknown mail transport",
            "loops back to myself",
            "lookup failure",
            "lookup table",
            "cannot update mailbox",
            "permission denied",
            "cannot open",
            "queue file write error",
            "insufficient system storage",
            "unavailable",
        ],
    ),
];

/// The class of one recipient's delay reason (`None` or empty: not tried yet).
pub fn classify(reason: Option<&str>) -> Reason {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Reason::NoReason;
    };
    let lower = reason.to_ascii_lowercase();
    RULES
        .iter()
        .find(|(_, phrases)| phrases.iter().any(|p| lower.contains(p)))
        .map_or(Reason::Other, |(class, _)| *class)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tests/fixtures/reason-classes.txt`: `class<TAB>reason` per line, real Postfix reason
    /// strings (captured here, or as Postfix and well-known servers word them).
    #[test]
    fn corpus() {
        let text = include_str!("../tests/fixtures/reason-classes.txt");
        let mut seen = std::collections::BTreeSet::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (class, reason) = line.split_once('\t').expect("class<TAB>reason");
            let got = classify(Some(reason)).as_str();
            assert_eq!(got, class, "{reason}");
            seen.insert(got);
        }
        // Every class but the two that need no text is exercised by a real string.
        for r in Reason::ALL {
            if r != Reason::NoReason {
                assert!(seen.contains(r.as_str()), "no example of {}", r.as_str());
            }
        }
        assert_eq!(classify(None), Reason::NoReason);
        assert_eq!(classify(Some("  ")), Reason::NoReason);
    }

    #[test]
    fn every_captured_reason_has_a_class_other_than_other() {
        let text = include_str!("../tests/fixtures/reasons/real-reasons.txt");
        for reason in text.lines().filter(|l| !l.is_empty()) {
            assert_ne!(classify(Some(reason)), Reason::Other, "{reason}");
        }
    }
}
