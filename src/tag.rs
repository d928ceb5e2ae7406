//! The one sanitizer every tag value passes: DogStatsD separates lines with a newline, fields
//! with `|` and tags with `,`, so a value holding one of them would cut the line, add a field or
//! split the tag. Values from the config are refused with their YAML path (`problem`); values
//! from the host (directories, instance names, `DD_*`, the Postfix version) are mended with `_`
//! (`sanitize`) and the caller says so once in the log.

use std::borrow::Cow;

/// What no tag value may hold.
fn forbidden(c: char) -> bool {
    c == ',' || c == '|' || c.is_control()
}

/// Why `value` cannot be a tag value as it is, if it cannot.
pub fn problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("is empty")
    } else if value.contains(forbidden) {
        Some("contains `,`, `|` or a control character such as a line break, which DogStatsD cannot carry")
    } else {
        None
    }
}

/// `value` with every character DogStatsD cannot carry replaced by `_` (an empty value becomes
/// `_`); borrowed when nothing needed mending.
pub fn sanitize(value: &str) -> Cow<'_, str> {
    if value.is_empty() {
        return Cow::Borrowed("_");
    }
    if !value.contains(forbidden) {
        return Cow::Borrowed(value);
    }
    Cow::Owned(
        value
            .chars()
            .map(|c| if forbidden(c) { '_' } else { c })
            .collect(),
    )
}

/// A tag value that comes from the host rather than the config (`what` names where): mended
/// with `sanitize`, with a warning when it needed mending. Called where the value is read
/// (once at start, at a reload, or when Postfix's parameters are read again), not per cycle.
pub fn from_host(what: &str, value: &str) -> String {
    let mended = sanitize(value);
    if mended != value {
        tracing::warn!("{what} {value:?} holds characters DogStatsD cannot carry in a tag; it is sent as {mended:?}");
    }
    mended.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mends_what_breaks_the_wire_and_keeps_the_rest() {
        assert_eq!(sanitize("/etc/postfix"), "/etc/postfix");
        assert!(matches!(sanitize("/etc/postfix"), Cow::Borrowed(_)));
        assert_eq!(sanitize("/etc/pf\nx:1|g,y#z"), "/etc/pf_x:1_g_y#z");
        assert_eq!(sanitize("a\r\0\tb"), "a___b");
        assert_eq!(sanitize(""), "_");
        assert_eq!(problem("env:prod"), None);
        assert!(problem("a,b").is_some() && problem("a|b").is_some() && problem("a\nb").is_some());
        assert_eq!(problem(""), Some("is empty"));
    }
}
