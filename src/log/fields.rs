//! Small pieces of Postfix's log framing that several families share: a client's
//! `host[addr]`, whether an address is this host's own, a case-insensitive search. Pure,
//! linear, no allocation.

/// `host[addr]` at the start of `s` into the host, the address and what follows the `]`.
/// A host name holds no `[` (DNS names cannot) and an address no `]`, so the first of each
/// frames it whatever follows.
pub fn split_client(s: &str) -> Option<(&str, &str, &str)> {
    let (host, rest) = s.split_once('[')?;
    let (addr, rest) = rest.split_once(']')?;
    (!host.is_empty() && !host.contains(' ')).then_some((host, addr, rest))
}

/// Whether a logged client address is this host talking to itself (127.0.0.0/8, ::1, or an
/// IPv4-mapped 127.x): how a content filter re-injects mail.
pub fn is_loopback(addr: &str) -> bool {
    addr.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Whether `needle` (ASCII, lower case) occurs in `hay` whatever its case. Linear in `hay`
/// for the short, fixed needles we search for.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    let (hay, needle) = (hay.as_bytes(), needle.as_bytes());
    if needle.is_empty() {
        return true;
    }
    hay.windows(needle.len()).any(|w| {
        w.iter()
            .zip(needle)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

/// A three-digit SMTP reply code at the start of `s` (`250`, `450`, `554`), and the rest.
pub fn reply_code(s: &str) -> Option<(u16, &str)> {
    let b = s.as_bytes();
    let digits = b.get(..3)?;
    if !(b'2'..=b'5').contains(&digits[0]) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    // `550 5.1.1 text`, `550-5.1.1` in a multi-line reply, or just `550`.
    match b.get(3) {
        None => Some((code, "")),
        Some(b' ' | b'-') => Some((code, &s[4..])),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_and_loopback() {
        assert_eq!(
            split_client("localhost[127.0.0.1]: x"),
            Some(("localhost", "127.0.0.1", ": x"))
        );
        assert_eq!(
            split_client("unknown[2001:db8::1]"),
            Some(("unknown", "2001:db8::1", ""))
        );
        assert_eq!(split_client("[1.2.3.4]:25"), None);
        assert_eq!(split_client("no brackets"), None);
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("::ffff:127.0.0.2"));
        assert!(!is_loopback("192.0.2.1"));
        assert!(!is_loopback("private/dovecot"));
    }

    #[test]
    fn case_insensitive_search() {
        assert!(contains_ci(
            "Recipient address rejected: GREYLISTED",
            "greylisted"
        ));
        assert!(!contains_ci("grey", "greylisted"));
        assert!(contains_ci("é x", "x"));
    }

    #[test]
    fn reply_codes() {
        assert_eq!(reply_code("550 5.1.1 <a>"), Some((550, "5.1.1 <a>")));
        assert_eq!(reply_code("450"), Some((450, "")));
        assert_eq!(reply_code("650 x"), None);
        assert_eq!(reply_code("55"), None);
        assert_eq!(reply_code("5.7.1 x"), None);
        assert_eq!(reply_code("5é0"), None);
    }
}
