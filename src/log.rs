//! The log wing: the mail flow read from Postfix's log, beside the queue wing's snapshots.
//! Lines come from a source (a file or the journal), are taken apart (`line`), and each family
//! of parsers turns them into events that are counted. The parsers are pure; only `source`
//! does I/O.

pub mod cleanup;
pub mod counters;
pub mod delivery;
pub mod fields;
#[cfg(test)]
pub mod fixtures;
pub mod line;
pub mod postscreen;
pub mod queue;
pub mod severity;
pub mod smtpd;
pub mod source;
pub mod stamp;
pub mod tls;

#[cfg(test)]
mod tests {
    use super::*;

    /// No line of any fixture (the real 3.7.11 capture, the public corpus) is claimed by two
    /// families, so a counter fed every family never counts a line twice (the severity prefix
    /// aside: it is a property of any line, not a family).
    #[test]
    fn each_fixture_line_has_at_most_one_family() {
        let fixture_lines = fixtures::LOGS
            .iter()
            .flat_map(|(_, log)| fixtures::lines(log));
        for l in fixture_lines {
            let Ok(line::Line { program, text, .. }) = line::parse(l) else {
                continue;
            };
            let claims = [
                delivery::parse(text).is_some(),
                smtpd::parse(program, text).is_some(),
                postscreen::parse(program, text).is_some(),
                tls::parse(program, text).is_some(),
                cleanup::parse(program, text).is_some(),
                queue::parse(program, text).is_some(),
            ];
            assert!(claims.iter().filter(|c| **c).count() <= 1, "{l}");
        }
    }
}
