//! A message's defer log (`defer/<hash>/<queue id>`, SPEC 8.5), read the way showq reads it
//! (`global/bounce_log.c`): entries separated by blank lines, each naming a recipient and why
//! its delivery was deferred, in the `name = value` form or the old `<address>: reason` form
//! (Postfix writes both, the old first). Pure and streaming: an iterator over the bytes that
//! holds one entry at a time.

use super::qfile::{is_space, printable};

/// What an entry says when it names no recipient, or an empty one, or gives no reason.
const NO_ADDRESS: &str = "(recipient address unavailable)";
const EMPTY_ADDRESS: &str = "(MAILER-DAEMON)";
const NO_REASON: &str = "(description unavailable)";

/// One recipient of a defer log, as showq lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub address: String,
    pub reason: String,
}

/// The entries of a defer log. `utf8` is `smtputf8_enable`: whether UTF-8 survives the
/// sanitizing showq applies to every line.
pub fn entries(log: &[u8], utf8: bool) -> Entries<'_> {
    Entries { rest: log, utf8 }
}

#[derive(Debug)]
pub struct Entries<'a> {
    rest: &'a [u8],
    utf8: bool,
}

impl Iterator for Entries<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let mut found = false;
        let mut address = String::new();
        let mut reason = String::new();
        let mut line = Vec::new();
        loop {
            // A line without its newline; the last may lack one. An entry still open at the
            // end of the file was not finished by its writer: bounce_log_read drops it.
            if self.rest.is_empty() {
                return None;
            }
            let (raw, rest) = match self.rest.iter().position(|b| *b == b'\n') {
                Some(n) => (&self.rest[..n], &self.rest[n + 1..]),
                None => (self.rest, &self.rest[self.rest.len()..]),
            };
            self.rest = rest;
            // Read as a C string: up to its first NUL.
            let raw = raw.split(|b| *b == 0).next().unwrap_or_default();
            if raw.is_empty() {
                if found {
                    break;
                }
                continue;
            }
            found = true;
            line.clear();
            line.extend_from_slice(raw);
            printable(&mut line, self.utf8);
            if line[0].is_ascii_alphanumeric() {
                if let Some((name, value)) = split_nameval(&line) {
                    let value = String::from_utf8_lossy(value).into_owned();
                    match name {
                        b"recipient" if value.is_empty() => address = EMPTY_ADDRESS.to_owned(),
                        b"recipient" => address = value,
                        b"reason" => reason = value,
                        _ => {}
                    }
                }
            } else if line[0] == b'<' {
                let Some(gt) = line.windows(3).position(|w| w == b">: ") else {
                    continue;
                };
                address = match &line[1..gt] {
                    b"" => EMPTY_ADDRESS.to_owned(),
                    a => String::from_utf8_lossy(a).into_owned(),
                };
                let text = &line[gt + 2..];
                let text = &text[text.iter().take_while(|b| is_space(**b)).count()..];
                reason = String::from_utf8_lossy(text).into_owned();
            }
        }
        if address.is_empty() {
            address = NO_ADDRESS.to_owned();
        }
        if reason.is_empty() {
            reason = NO_REASON.to_owned();
        }
        Some(Entry { address, reason })
    }
}

/// `split_nameval`: `name = value`, spaces around both trimmed; `None` without an `=` after
/// the name.
fn split_nameval(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = line.iter().take_while(|b| is_space(**b)).count();
    let name_len = line[start..]
        .iter()
        .take_while(|b| !is_space(**b) && **b != b'=')
        .count();
    let name = &line[start..start + name_len];
    let after = &line[start + name_len..];
    let eq = after.iter().take_while(|b| is_space(**b)).count();
    if name.is_empty() || after.get(eq) != Some(&b'=') {
        return None;
    }
    let value = &after[eq + 1..];
    let value = &value[value.iter().take_while(|b| is_space(**b)).count()..];
    let trimmed = value.len() - value.iter().rev().take_while(|b| is_space(**b)).count();
    Some((name, &value[..trimmed]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(log: &[u8]) -> Vec<(String, String)> {
        entries(log, true).map(|e| (e.address, e.reason)).collect()
    }

    /// SPEC 8.9's sample, as the defer service writes it.
    const SAMPLE: &[u8] = b"
<erin@example.com>: delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:2: Connection refused
recipient=erin@example.com
offset=245
dsn_orig_rcpt=rfc822;erin@example.com
status=4.4.1
action=delayed
reason=delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:2: Connection refused

";

    #[test]
    fn the_observed_sample() {
        assert_eq!(
            all(SAMPLE),
            [(
                "erin@example.com".to_owned(),
                "delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:2: Connection refused".to_owned()
            )]
        );
    }

    #[test]
    fn old_style_alone_and_placeholders() {
        let log = b"<a@x>:   timed out\n\n<>: bounced\n\n\n\nstatus=4.0.0\n\nnot a line\nreason  =  why  \n\n";
        assert_eq!(
            all(log),
            [
                ("a@x".to_owned(), "timed out".to_owned()),
                ("(MAILER-DAEMON)".to_owned(), "bounced".to_owned()),
                (NO_ADDRESS.to_owned(), NO_REASON.to_owned()),
                (NO_ADDRESS.to_owned(), "why".to_owned()),
            ]
        );
    }

    #[test]
    fn an_unfinished_entry_is_dropped() {
        assert_eq!(
            all(b"\nrecipient=a@x\nreason=r\n\nrecipient=b@x\nreason=r\n").len(),
            1
        );
        assert!(all(b"").is_empty());
        assert!(all(b"\n\n\n").is_empty());
    }

    #[test]
    fn lines_are_sanitized() {
        let got = all("recipient=j\törg@x\nreason=a\u{1}b é\n\n".as_bytes());
        assert_eq!(got, [("j?örg@x".to_owned(), "a?b é".to_owned())]);
        let ascii: Vec<Entry> = entries("recipient=é@x\n\n".as_bytes(), false).collect();
        assert_eq!(ascii[0].address, "??@x");
        // A NUL ends the line as showq reads it.
        assert_eq!(all(b"recipient=a@x\0junk\n\n")[0].0, "a@x");
    }
}
