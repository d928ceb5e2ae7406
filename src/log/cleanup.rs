//! The cleanup family: a message entering the queue (`QID: message-id=<...>`, once per
//! message whatever its source), and what header/body checks and milters did to it
//! (`cleanup/cleanup_message.c`, `cleanup_milter.c`; ../shared/SPEC.md 7.2). Pure, linear, no
//! allocation.
//!
//! Shapes: `QID: message-id=<...>`; `QID: ACT: header|body TEXT from ORIGIN; from=<S> to=<R>
//! proto=P helo=<H>[: text]` for a check's action; `QID: milter-reject|milter-discard|
//! milter-hold: STAGE from host[addr]: reply; from=<S> ...` for a milter's. The header or body
//! text is the sender's, so only the two words after the queue ID are read.

use super::delivery::is_queue_id;

/// A line of this family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `message-id=`: a new queue file, once per message (also `message-id=<>` when the
    /// message has none).
    MessageId,
    /// A header/body check or a milter acted on the message.
    Action { action: Action, by: By },
}

/// What a check or a milter did, in a bounded set (`header_checks(5)`'s actions that log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reject,
    Discard,
    Hold,
    Redirect,
    Filter,
    Bcc,
    Delay,
    Prepend,
    Replace,
    Strip,
    /// `WARN`: logged, nothing done.
    Warning,
    /// `INFO`: logged, nothing done.
    Info,
    MilterReject,
    MilterDiscard,
    MilterHold,
}

/// Which check acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// `header_checks`, `mime_header_checks`, `nested_header_checks`.
    Header,
    /// `body_checks`.
    Body,
    Milter,
}

/// The event in a cleanup line, given the identifier's last component and the text.
pub fn parse(program: &str, text: &str) -> Option<Event> {
    if program != "cleanup" {
        return None;
    }
    let (queue_id, rest) = text.split_once(": ")?;
    if !is_queue_id(queue_id) {
        return None;
    }
    if rest.starts_with("message-id=") {
        return Some(Event::MessageId);
    }
    let (word, rest) = rest.split_once(": ")?;
    let action = Action::from_word(word)?;
    let by = match action {
        Action::MilterReject | Action::MilterDiscard | Action::MilterHold => {
            // `END-OF-MESSAGE from host[addr]: ...` (or another SMTP stage).
            let (stage, _) = rest.split_once(" from ")?;
            if stage.is_empty() || !stage.bytes().all(|b| b.is_ascii_uppercase() || b == b'-') {
                return None;
            }
            By::Milter
        }
        _ if rest.starts_with("header ") => By::Header,
        _ if rest.starts_with("body ") => By::Body,
        _ => return None,
    };
    Some(Event::Action { action, by })
}

impl Action {
    fn from_word(word: &str) -> Option<Action> {
        Some(match word {
            "reject" => Action::Reject,
            "discard" => Action::Discard,
            "hold" => Action::Hold,
            "redirect" => Action::Redirect,
            "filter" => Action::Filter,
            "bcc" => Action::Bcc,
            "delay" => Action::Delay,
            "prepend" => Action::Prepend,
            "replace" => Action::Replace,
            "strip" => Action::Strip,
            "warning" => Action::Warning,
            "info" => Action::Info,
            "milter-reject" => Action::MilterReject,
            "milter-discard" => Action::MilterDiscard,
            "milter-hold" => Action::MilterHold,
            _ => return None,
        })
    }

    pub fn tag(self) -> &'static str {
        match self {
            Action::Reject => "reject",
            Action::Discard => "discard",
            Action::Hold => "hold",
            Action::Redirect => "redirect",
            Action::Filter => "filter",
            Action::Bcc => "bcc",
            Action::Delay => "delay",
            Action::Prepend => "prepend",
            Action::Replace => "replace",
            Action::Strip => "strip",
            Action::Warning => "warning",
            Action::Info => "info",
            Action::MilterReject => "milter-reject",
            Action::MilterDiscard => "milter-discard",
            Action::MilterHold => "milter-hold",
        }
    }
}

impl By {
    pub fn tag(self) -> &'static str {
        match self {
            By::Header => "header",
            By::Body => "body",
            By::Milter => "milter",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cleanup line captured from this machine's real Postfix 3.7.11 is a
    /// `message-id=`, one per pickup line (each message entered the queue once).
    #[test]
    fn captured_log() {
        let log = crate::log::fixtures::CAPTURE;
        let (mut ids, mut pickups) = (0, 0);
        for l in log.lines().filter(|l| !l.starts_with('#')) {
            let line = crate::log::line::parse(l).unwrap();
            match parse(line.program, line.text) {
                Some(Event::MessageId) => ids += 1,
                None => assert_ne!(line.program, "cleanup", "{l}"),
                other => panic!("{l}: {other:?}"),
            }
            pickups += usize::from(line.program == "pickup");
        }
        assert_eq!(ids, pickups);
        assert!(ids >= 12, "{ids}");
    }

    #[test]
    fn public_lines() {
        // https://github.com/whyscream/postfix-grok-patterns/tree/master/test/ cleanup_0001,
        // cleanup_0002 and cleanup_0004 .yaml
        for text in [
            "0F5383D: message-id=<544D2523.30609@rhsoft.net>",
            "4104E3D: message-id=<>",
        ] {
            assert_eq!(parse("cleanup", text), Some(Event::MessageId), "{text}");
        }
        assert_eq!(
            parse("cleanup", "4104E3D: milter-reject: END-OF-MESSAGE from 061238241086.static.ctinets.com[61.238.241.86]: 5.7.1 Blocked by SpamAssassin; from=<wumt5@cchfdc.com> to=<voorzitter@example.com> proto=ESMTP helo=<ecsolved.com>"),
            Some(Event::Action { action: Action::MilterReject, by: By::Milter })
        );
        // cleanup_0003.yaml: a `milter-header-redirect` word that Postfix 3.7.11's cleanup
        // does not write (a patched or older build): not ours.
        assert_eq!(parse("cleanup", "4104E3D: milter-header-redirect: header X-Spam-Status: Yes, score=39.3 required=5.0 tests=ADVANCE_FE from 061238241086.static.ctinets.com[61.238.241.86]; from=<wumt5@cchfdc.com> to=<voorzitter@example.com> proto=ESMTP helo=<ecsolved.com>: tom@example.com"), None);
        // cleanup_0005.yaml: a warning, not a message event.
        assert_eq!(parse("cleanup", "warning: dict_ldap_get_values[1]: DN uid=mguiraud,ou=people,dc=neotion,dc=com not found, skipping "), None);
    }

    /// SPEC 7.2's header/body check shape (`QID: <act>: <header|body> <text> from <origin>;
    /// from=<S> to=<R> proto=P helo=<H>: text`); built from that documented format, with RFC
    /// 5737/2606 names.
    #[test]
    fn checks_on_built_lines() {
        for (act, part, want) in [
            (
                "reject",
                "header Subject: win big",
                (Action::Reject, By::Header),
            ),
            (
                "discard",
                "body click here now",
                (Action::Discard, By::Body),
            ),
            ("hold", "header X-Mailer: bulk", (Action::Hold, By::Header)),
            (
                "redirect",
                "header To: a@example.com",
                (Action::Redirect, By::Header),
            ),
            (
                "warning",
                "header Subject: x",
                (Action::Warning, By::Header),
            ),
        ] {
            let text = format!("1A2B3C4D5E: {act}: {part} from unknown[192.0.2.1]; from=<s@example.com> to=<r@example.net> proto=ESMTP helo=<h.example>: 5.7.1 no thanks");
            assert_eq!(
                parse("cleanup", &text),
                Some(Event::Action {
                    action: want.0,
                    by: want.1
                }),
                "{text}"
            );
        }
        assert_eq!(Action::MilterHold.tag(), "milter-hold");
    }

    #[test]
    fn not_ours() {
        for text in [
            "",
            "1A2B3C4D5E: resent-message-id=<x@y>",
            "1A2B3C4D5E: reject: something else",
            "1A2B3C4D5E: milter-reject: lower from x[1.2.3.4]: 5.7.1 x",
            "not-an-id: message-id=<x>",
            "1A2B3C4D5E: pass: header X",
        ] {
            assert_eq!(parse("cleanup", text), None, "{text}");
        }
        assert_eq!(parse("qmgr", "0F5383D: message-id=<a@b>"), None);
    }
}
