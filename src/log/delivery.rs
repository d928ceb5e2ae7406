//! The delivery family: one status line per recipient per attempt, from every delivery agent
//! (`QID: to=<R>, relay=X, delay=D, delays=a/b/c/d, dsn=X.Y.Z, status=S (text)`), and the queue
//! manager's expiry line (`QID: from=<S>, status=expired, returned to sender`). Pure and linear.
//!
//! Both addresses and the text in parentheses are written by strangers (a sender chooses the
//! recipient, a remote server the reply), so the fields are found by Postfix's own framing:
//! an address is `<...>` with a quoted local part when it holds anything unusual (Postfix
//! quotes `"a, relay=x"@d`), and the fields between the address and the text are Postfix's.

/// What a delivery status line says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delivery {
    pub status: Status,
    pub relay: Relay,
    /// The first digit of `dsn=`: 2, 4 or 5.
    pub dsn_class: u8,
    /// `delay=`: seconds from arrival to this attempt's end.
    pub delay: f64,
    /// `delays=a/b/c/d`: before the queue manager, in it, connection setup, transmission.
    pub delays: Option<[f64; 4]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Sent,
    Deferred,
    Bounced,
    /// `soft_bounce = yes` turned a bounce into a deferral.
    SoftBounce,
}

/// Where the delivery went, in classes a dashboard can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    /// local, virtual, or a pipe service: delivered on this host.
    Local,
    /// 127.0.0.0/8, ::1 or a Unix socket: a content filter or a local LMTP server.
    Loopback,
    Remote,
    /// No connection was made (`relay=none`).
    None,
}

/// A line of this family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    Delivery(Delivery),
    /// An address-verification probe (`deliverable`, `undeliverable...`): not a delivery.
    Probe,
    /// The queue manager gave up on a message (`status=expired` or `force-expired`): once per
    /// message, not per recipient.
    Expired,
}

impl Status {
    pub fn tag(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Deferred => "deferred",
            Status::Bounced => "bounced",
            Status::SoftBounce => "softbounce",
        }
    }
}

impl Relay {
    pub fn tag(self) -> &'static str {
        match self {
            Relay::Local => "local",
            Relay::Loopback => "loopback",
            Relay::Remote => "remote",
            Relay::None => "none",
        }
    }

    /// `relay=` value: `none`, `local`, `virtual`, a pipe's service name, or `host[addr]:port`
    /// and `host[private/socket]`.
    fn classify(value: &str) -> Relay {
        if value == "none" {
            return Relay::None;
        }
        let Some((_, rest)) = value.split_once('[') else {
            return Relay::Local;
        };
        let addr = rest.split_once(']').map_or(rest, |(a, _)| a);
        let loopback = addr.contains('/')
            || addr
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            Relay::Loopback
        } else {
            Relay::Remote
        }
    }
}

/// The event in the text of a Postfix line (after `ident[pid]: `), if it is of this family.
pub fn parse(text: &str) -> Option<Event> {
    let (queue_id, rest) = text.split_once(": ")?;
    if !is_queue_id(queue_id) {
        return None;
    }
    if let Some(rest) = rest.strip_prefix("to=") {
        return parse_status(rest);
    }
    // qmgr: `from=<S>, status=expired, returned to sender` (or `force-expired`).
    let rest = rest.strip_prefix("from=")?;
    let (_, rest) = split_address(rest)?;
    let rest = rest.strip_prefix(", status=")?;
    (rest.starts_with("expired, ") || rest.starts_with("force-expired, ")).then_some(Event::Expired)
}

/// The recipient (`to=<R>`) of a status line, as logged; only asked for when domains are
/// counted (`log.top_domains`).
pub fn recipient(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once(": ")?;
    Some(split_address(rest.strip_prefix("to=")?)?.0)
}

/// After `to=`: the address, an optional `orig_to=`, then Postfix's own fields up to `status=`.
fn parse_status(rest: &str) -> Option<Event> {
    let (_, mut rest) = split_address(rest)?;
    if let Some(orig) = rest.strip_prefix(", orig_to=") {
        rest = split_address(orig)?.1;
    }
    let mut fields = rest.strip_prefix(", ")?;
    let (mut relay, mut delay, mut delays, mut dsn) = (None, None, None, None);
    // A handful of fields; a line with more is not one of ours.
    for _ in 0..8 {
        let (field, after) = fields.split_once(", ").unwrap_or((fields, ""));
        let (key, value) = field.split_once('=')?;
        match key {
            "relay" => relay = Some(Relay::classify(value)),
            "delay" => {
                delay = value
                    .parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && *d >= 0.0)
            }
            "delays" => delays = parse_delays(value),
            "dsn" => {
                dsn = value
                    .bytes()
                    .next()
                    .filter(u8::is_ascii_digit)
                    .map(|b| b - b'0')
            }
            "status" => {
                // The status is one word; what follows is the reason in parentheses, and the
                // rest of `fields` belongs to it (it may hold ", ").
                let word = value.split_once(' ').map_or(value, |(w, _)| w);
                let status = match word {
                    "sent" => Status::Sent,
                    "deferred" => Status::Deferred,
                    "bounced" => Status::Bounced,
                    "SOFTBOUNCE" => Status::SoftBounce,
                    "deliverable" | "undeliverable" | "undeliverable-but-not-cached" => {
                        return Some(Event::Probe)
                    }
                    _ => return None,
                };
                return Some(Event::Delivery(Delivery {
                    status,
                    relay: relay?,
                    dsn_class: dsn?,
                    delay: delay?,
                    delays,
                }));
            }
            _ => {} // conn_use=, and whatever a later Postfix adds
        }
        if after.is_empty() {
            return None;
        }
        fields = after;
    }
    None
}

/// `<address>` at the start of `s` into the address and the rest. A local part that starts
/// with `"` is a quoted string: it ends at the next unescaped `"`, whatever it holds.
pub fn split_address(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_prefix('<')?;
    let mut start_of_rest = 0;
    if body.starts_with('"') {
        let mut escaped = false;
        let mut end = None;
        for (i, b) in body.bytes().enumerate().skip(1) {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        start_of_rest = end? + 1;
    }
    let close = start_of_rest + body[start_of_rest..].find('>')?;
    Some((&body[..close], &body[close + 1..]))
}

/// The four stages of `delays=a/b/c/d`, in order, as tag values: before the queue manager
/// (arrival to the last entry into the active queue), in it, connection setup (DNS, HELO,
/// TLS), transmission (postconf(5) `delay_logging_resolution_limit`).
pub const DELAY_STAGES: [&str; 4] = [
    "before_queue_manager",
    "in_queue_manager",
    "connection_setup",
    "transmission",
];

/// `delays=` without its key (`0.02/0.03/0/0`) into its four stages, in the order of
/// [`DELAY_STAGES`]; `None` unless it is four finite, non-negative numbers.
pub fn parse_delays(value: &str) -> Option<[f64; 4]> {
    let mut out = [0.0; 4];
    let mut parts = value.split('/');
    for slot in &mut out {
        *slot = parts
            .next()?
            .parse::<f64>()
            .ok()
            .filter(|d| d.is_finite() && *d >= 0.0)?;
    }
    parts.next().is_none().then_some(out)
}

/// A short queue ID (`[0-9A-F]{6,}`) or a long one (`enable_long_queue_ids`: letters and
/// digits with a `z`).
pub fn is_queue_id(s: &str) -> bool {
    (6..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(text: &str) -> Delivery {
        match parse(text) {
            Some(Event::Delivery(d)) => d,
            other => panic!("{text}: {other:?}"),
        }
    }

    // Real lines from a Postfix 3.7.11 `maillog_file` (../shared/SPEC.md section 7.2).
    #[test]
    fn real_status_lines() {
        let d = delivery("29A27B82EB: to=<bench@bench.invalid>, relay=none, delay=0.05, delays=0.02/0.03/0/0, dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:2: Connection refused)");
        assert_eq!(
            (d.status, d.relay, d.dsn_class),
            (Status::Deferred, Relay::None, 4)
        );
        assert_eq!(d.delay, 0.05);
        assert_eq!(d.delays, Some([0.02, 0.03, 0.0, 0.0]));
        let d = delivery("B10D1B84E1: to=<root@localhost>, relay=local, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)");
        assert_eq!(
            (d.status, d.relay, d.dsn_class),
            (Status::Sent, Relay::Local, 2)
        );
        let d = delivery("60133B84C7: to=<nosuchuser@localhost>, relay=local, delay=0.02, delays=0.01/0/0/0.01, dsn=5.1.1, status=bounced (unknown user: \"nosuchuser\")");
        assert_eq!((d.status, d.dsn_class), (Status::Bounced, 5));
    }

    /// Every status line captured from this machine's real Postfix is a delivery, and every
    /// other line of the capture is not one of this family.
    #[test]
    fn captured_log() {
        let log = crate::log::fixtures::CAPTURE;
        let mut deliveries = 0;
        for l in log.lines().filter(|l| !l.starts_with('#')) {
            let line = crate::log::line::parse(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            match parse(line.text) {
                Some(Event::Delivery(d)) => {
                    assert!(l.contains(&format!("status={}", d.status.tag())), "{l}");
                    deliveries += 1;
                }
                None => assert!(!l.contains(" status="), "{l}"),
                other => panic!("{l}: {other:?}"),
            }
        }
        assert!(deliveries >= 12, "{deliveries}");
    }

    #[test]
    fn relay_classes() {
        let relay = |r: &str| {
            let line = format!("ABCDEF1234: to=<a@b>, relay={r}, conn_use=2, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)");
            delivery(&line).relay
        };
        assert_eq!(relay("mx.example.com[192.0.2.1]:25"), Relay::Remote);
        assert_eq!(relay("127.0.0.1[127.0.0.1]:10024"), Relay::Loopback);
        assert_eq!(relay("localhost[::1]:10024"), Relay::Loopback);
        assert_eq!(
            relay("mail.example.com[private/dovecot-lmtp]"),
            Relay::Loopback
        );
        assert_eq!(relay("dovecot"), Relay::Local);
        assert_eq!(relay("virtual"), Relay::Local);
        assert_eq!(relay("none"), Relay::None);
    }

    #[test]
    fn hostile_addresses_and_replies_do_not_move_the_fields() {
        // A quoted local part holding the very fields, and a reply that imitates them.
        let d = delivery("ABCDEF1234: to=<\"x>, relay=none, delay=9, delays=9/9/9/9, dsn=2.0.0, status=sent (\\\"\"@example.com>, orig_to=<y@z>, relay=mx[192.0.2.1]:25, delay=3, delays=0/0/1/2, dsn=5.0.0, status=bounced (550 x, relay=none, dsn=2.0.0, status=sent (ok))");
        assert_eq!(
            (d.status, d.relay, d.dsn_class, d.delay),
            (Status::Bounced, Relay::Remote, 5, 3.0)
        );
    }

    #[test]
    fn probes_expiry_and_others() {
        assert_eq!(parse("ABCDEF1234: to=<a@b>, relay=none, delay=0, delays=0/0/0/0, dsn=2.0.0, status=deliverable (ok)"), Some(Event::Probe));
        assert_eq!(
            parse("ABCDEF1234: from=<a@b>, status=expired, returned to sender"),
            Some(Event::Expired)
        );
        assert_eq!(
            parse("ABCDEF1234: from=<a@b>, status=force-expired, returned to sender"),
            Some(Event::Expired)
        );
        assert_eq!(
            parse("ABCDEF1234: from=<a@b>, size=300, nrcpt=1 (queue active)"),
            None
        );
        assert_eq!(parse("ABCDEF1234: removed"), None);
        assert_eq!(parse("connect from localhost[127.0.0.1]"), None);
        assert_eq!(parse("NOQUEUE: reject: RCPT from x"), None);
        assert_eq!(parse("ABCDEF1234: to=<a@b>, relay=none, delay=x, delays=0/0/0/0, dsn=2.0.0, status=sent (x)"), None);
        assert_eq!(parse("ABCDEF1234: to=<\"unterminated@b>, relay=none"), None);
        let d = delivery("ABCDEF1234: to=<a@b>, relay=none, delay=1, delays=0/0/0/1, dsn=4.0.0, status=SOFTBOUNCE (x)");
        assert_eq!(d.status.tag(), "softbounce");
    }

    #[test]
    fn delays_by_stage() {
        // SPEC 7.2 "Log:" (Postfix 3.7.11): `delays=0.02/0.03/0/0`.
        assert_eq!(parse_delays("0.02/0.03/0/0"), Some([0.02, 0.03, 0.0, 0.0]));
        // https://github.com/whyscream/postfix-grok-patterns/tree/master/test/delays_0001.yaml
        let d = parse_delays("0.2/0.02/0.04/3.3").unwrap();
        let stages: Vec<_> = DELAY_STAGES.iter().copied().zip(d).collect();
        assert_eq!(
            stages,
            [
                ("before_queue_manager", 0.2),
                ("in_queue_manager", 0.02),
                ("connection_setup", 0.04),
                ("transmission", 3.3)
            ]
        );
        // Hsn723/postfix_exporter's test line (a message 2017 s in the queue manager):
        // https://github.com/Hsn723/postfix_exporter/blob/master/exporter/postfix_exporter_test.go
        let d = delivery("5270320179: to=<hebj@telia.com>, relay=mail.telia.com[81.236.60.210]:25, delay=2017, delays=0.1/2017/0.03/0.05, dsn=2.0.0, status=sent (250 2.0.0 6FVIjIMwUJwU66FVIjAEB0 mail accepted for delivery)");
        assert_eq!(d.delays, Some([0.1, 2017.0, 0.03, 0.05]));
        for bad in [
            "",
            "1/2/3",
            "1/2/3/4/5",
            "1/-2/3/4",
            "1/x/3/4",
            "1/inf/3/4",
            "1/NaN/3/4",
        ] {
            assert_eq!(parse_delays(bad), None, "{bad}");
        }
    }
}
