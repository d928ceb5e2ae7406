//! The TLS family: one line per TLS session the SMTP server (`from`) or client (`to`) set up,
//! `<Anonymous|Untrusted|Trusted|Verified> TLS connection <established|reused> <from|to>
//! host[addr][:port]: TLSv1.3 with cipher ...` (`tls/tls_misc.c`; ../shared/SPEC.md 7.2).
//! Pure, linear, no allocation.

/// A line of this family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub direction: Direction,
    pub trust: Trust,
    pub protocol: Protocol,
    /// `reused`: a resumed session rather than a new handshake.
    pub reused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `from`: a client connected to us (smtpd, tlsproxy for postscreen).
    In,
    /// `to`: we connected to a server (smtp, lmtp).
    Out,
}

/// How far the peer's certificate was checked (`tls_misc.c`'s `TLS_CERT_IS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    Anonymous,
    Untrusted,
    Trusted,
    Verified,
}

/// The protocol version, in a bounded set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    TlsV1,
    TlsV1_1,
    TlsV1_2,
    TlsV1_3,
    Other,
}

/// The programs that log TLS sessions. Each is matched on the identifier's last component,
/// so a master.cf service (`relay/smtp`, `submission/smtpd`) counts as its program.
const PROGRAMS: [&str; 4] = ["smtpd", "smtp", "lmtp", "tlsproxy"];

/// The event in a TLS line, given the identifier's last component and the text.
pub fn parse(program: &str, text: &str) -> Option<Event> {
    if !PROGRAMS.contains(&program) {
        return None;
    }
    let (trust, rest) = text.split_once(" TLS connection ")?;
    let trust = match trust {
        "Anonymous" => Trust::Anonymous,
        "Untrusted" => Trust::Untrusted,
        "Trusted" => Trust::Trusted,
        "Verified" => Trust::Verified,
        _ => return None,
    };
    let (state, rest) = rest.split_once(' ')?;
    let reused = match state {
        "established" => false,
        "reused" => true,
        _ => return None,
    };
    let (direction, rest) = if let Some(rest) = rest.strip_prefix("from ") {
        (Direction::In, rest)
    } else {
        (Direction::Out, rest.strip_prefix("to ")?)
    };
    // `host[addr]:port[ to sni]: PROTOCOL with cipher`: the host and SNI are names, with no
    // `: `, so the first `: ` after the `]` ends the peer. A line quoted cut short after the
    // peer's name (one word, no `[`) is still a session, of an unknown protocol.
    let protocol = match rest.split_once(']') {
        Some((_, rest)) => rest.split_once(": ")?.1.split_once(" with cipher ")?.0,
        None if !rest.is_empty() && !rest.contains(' ') => "",
        None => return None,
    };
    Some(Event {
        direction,
        trust,
        protocol: match protocol {
            "TLSv1" => Protocol::TlsV1,
            "TLSv1.1" => Protocol::TlsV1_1,
            "TLSv1.2" => Protocol::TlsV1_2,
            "TLSv1.3" => Protocol::TlsV1_3,
            _ => Protocol::Other,
        },
        reused,
    })
}

impl Direction {
    pub fn tag(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

impl Trust {
    pub fn tag(self) -> &'static str {
        match self {
            Trust::Anonymous => "anonymous",
            Trust::Untrusted => "untrusted",
            Trust::Trusted => "trusted",
            Trust::Verified => "verified",
        }
    }
}

impl Protocol {
    pub fn tag(self) -> &'static str {
        match self {
            Protocol::TlsV1 => "TLSv1",
            Protocol::TlsV1_1 => "TLSv1.1",
            Protocol::TlsV1_2 => "TLSv1.2",
            Protocol::TlsV1_3 => "TLSv1.3",
            Protocol::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(program: &str, text: &str) -> (&'static str, &'static str, &'static str) {
        match parse(program, text) {
            Some(e) => (e.direction.tag(), e.trust.tag(), e.protocol.tag()),
            None => panic!("{text}"),
        }
    }

    #[test]
    fn public_lines() {
        // https://github.com/kumina/postfix_exporter/blob/master/postfix_exporter_test.go
        // ("Issue #35"): Postfix >= 3.4 adds key-exchange and signature details.
        assert_eq!(
            tags("smtp", "Verified TLS connection established to gmail-smtp-in.l.google.com[108.177.14.26]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256"),
            ("out", "verified", "TLSv1.3")
        );
        assert_eq!(
            tags("smtp", "Verified TLS connection established to mx2.comcast.net[2001:558:fe21:2a::6]:25: TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)"),
            ("out", "verified", "TLSv1.2")
        );
        // https://github.com/whyscream/postfix-grok-patterns/tree/master/test/ smtp_0003,
        // smtp_0015, smtp_0016 and smtpd_0010 .yaml
        assert_eq!(
            tags("smtp", "Untrusted TLS connection established to mx4.hotmail.com[65.55.92.136]:25: TLSv1.2 with cipher ECDHE-RSA-AES256-SHA384 (256/256 bits)"),
            ("out", "untrusted", "TLSv1.2")
        );
        assert_eq!(
            tags("smtp", "Trusted TLS connection established to gmail-smtp-in.l.google.com[74.125.136.26]:25: TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256 (128/128 bits)"),
            ("out", "trusted", "TLSv1.2")
        );
        assert_eq!(
            tags("smtp", "Verified TLS connection established to mail.sys4.de[2001:1578:400:111::7]:25: TLSv1 with cipher ECDHE-RSA-AES256-SHA (256/256 bits)"),
            ("out", "verified", "TLSv1")
        );
        assert_eq!(
            tags("smtpd", "Anonymous TLS connection established from julie.example.com[10.163.89.202]: TLSv1.2 with cipher AECDH-AES256-SHA (256/256 bits)"),
            ("in", "anonymous", "TLSv1.2")
        );
    }

    /// SPEC 7.2's shape with its optional parts (`reused`, ` to sni`); built, not captured.
    #[test]
    fn documented_variants() {
        let e = parse("smtp", "Untrusted TLS connection reused to mx.example.com[192.0.2.5]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)").unwrap();
        assert!(e.reused);
        assert_eq!(
            tags("smtpd", "Anonymous TLS connection established from unknown[192.0.2.1] to mail.example.com: TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits)"),
            ("in", "anonymous", "TLSv1.3")
        );
        assert_eq!(
            tags("lmtp", "Anonymous TLS connection established to lmtp.example.com[192.0.2.6]:24: SSLv3 with cipher RC4-SHA (128/128 bits)"),
            ("out", "anonymous", "other")
        );
    }

    /// https://github.com/sovereign/sovereign/pull/26 quotes two sessions cut after the peer's
    /// name (2013): counted, of an unknown protocol.
    #[test]
    fn a_line_cut_after_the_peer() {
        assert_eq!(
            tags(
                "smtp",
                "Untrusted TLS connection established to gmail-smtp-in.l.google.com"
            ),
            ("out", "untrusted", "other")
        );
        assert_eq!(
            tags(
                "smtp",
                "Trusted TLS connection established to gmail-smtp-in.l.google.com"
            ),
            ("out", "trusted", "other")
        );
        // More than a name after `to` is not a cut line.
        assert_eq!(
            parse("smtp", "Trusted TLS connection established to a b"),
            None
        );
    }

    #[test]
    fn not_ours() {
        for text in [
            "",
            "Anonymous TLS connection established",
            "Mostly TLS connection established to x[1.2.3.4]:25: TLSv1.3 with cipher y",
            "Verified TLS connection opened to x[1.2.3.4]:25: TLSv1.3 with cipher y",
            "Verified TLS connection established via x[1.2.3.4]:25: TLSv1.3 with cipher y",
            "Verified TLS connection established to x[1.2.3.4]:25: TLSv1.3",
            // https://github.com/whyscream/postfix-grok-patterns/tree/master/test/smtpd_0019.yaml
            "SSL_accept error from unknown[72.13.58.7]: lost connection",
        ] {
            assert_eq!(parse("smtpd", text), None, "{text}");
        }
        assert_eq!(parse("qmgr", "Anonymous TLS connection established from x[1.2.3.4]: TLSv1.2 with cipher y (1/1 bits)"), None);
    }
}
