//! The queue's own lines: pickup taking a locally submitted message, the queue manager
//! moving one into the active queue or removing it, and the bounce daemon sending a
//! notification (../shared/SPEC.md 7.2). Pure, linear, no allocation.
//!
//! Shapes: pickup `QID: uid=N from=<S>[ orig_id=OLDQID]` (`pickup/pickup.c`); qmgr `QID:
//! from=<S>, size=N, nrcpt=N (queue active)` (`global/opened.c`) and `QID: removed`; bounce
//! `QID: <sender|postmaster> <non-delivery|delay|delivery status> notification: NEWQID`
//! (`bounce/*_service.c`). The qmgr's expiry line is the delivery family's
//! ([`super::delivery`]).
//!
//! The qmgr line comes **each time** a message enters the active queue (SPEC 7.3), so it is
//! not a message count; cleanup's `message-id=` is.

use super::delivery::{is_queue_id, split_address};

/// A line of this family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// pickup took a message from the maildrop (sendmail, postdrop).
    Pickup {
        /// ` orig_id=`: `postsuper -r` re-queued an existing message, not a new one.
        requeued: bool,
    },
    /// qmgr moved a message into the active queue (once per attempt).
    Active {
        /// Bytes of the message content (`size=`, the queue file's C record).
        size: u64,
        /// Recipients when the message was queued (`nrcpt=`; not reduced by deliveries).
        nrcpt: u32,
        /// `from=<>`: a bounce or another notification.
        null_sender: bool,
    },
    /// The queue file is gone (delivered, bounced or `postsuper -d`).
    Removed,
    /// The bounce daemon queued a notification as a new message.
    Notification { kind: Kind, to: NotifyWhom },
}

/// What a notification tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `non-delivery`: a bounce.
    NonDelivery,
    /// `delay`: still trying (`delay_warning_time`).
    Delay,
    /// `delivery status`: a success DSN (`NOTIFY=SUCCESS`, `sendmail -v`).
    Success,
}

/// Who a notification goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyWhom {
    Sender,
    /// A copy to the postmaster (`notify_classes`).
    Postmaster,
}

/// The event in a pickup, qmgr or bounce line, given the identifier's last component and the
/// text. bounce also runs as `defer` and `trace` in master.cf, under its own program name.
pub fn parse(program: &str, text: &str) -> Option<Event> {
    let (queue_id, rest) = text.split_once(": ")?;
    if !is_queue_id(queue_id) {
        return None;
    }
    match program {
        "pickup" => pickup(rest),
        "qmgr" => qmgr(rest),
        "bounce" => notification(rest),
        _ => None,
    }
}

/// `uid=N from=<S>[ orig_id=OLDQID]`.
fn pickup(rest: &str) -> Option<Event> {
    let rest = rest.strip_prefix("uid=")?;
    let (uid, rest) = rest.split_once(' ')?;
    uid.parse::<u32>().ok()?;
    let (_, rest) = split_address(rest.strip_prefix("from=")?)?;
    Some(Event::Pickup {
        requeued: rest.starts_with(" orig_id="),
    })
}

/// `removed`, or `from=<S>, size=N, nrcpt=N (queue active)`.
fn qmgr(rest: &str) -> Option<Event> {
    if rest == "removed" {
        return Some(Event::Removed);
    }
    let (sender, rest) = split_address(rest.strip_prefix("from=")?)?;
    let rest = rest.strip_prefix(", size=")?;
    let (size, rest) = rest.split_once(", nrcpt=")?;
    let nrcpt = rest.strip_suffix(" (queue active)")?;
    Some(Event::Active {
        size: size.parse().ok()?,
        nrcpt: nrcpt.parse().ok()?,
        null_sender: sender.is_empty(),
    })
}

/// `<sender|postmaster> <non-delivery|delay|delivery status> notification: NEWQID`.
fn notification(rest: &str) -> Option<Event> {
    let (whom, rest) = rest.split_once(' ')?;
    let to = match whom {
        "sender" => NotifyWhom::Sender,
        "postmaster" => NotifyWhom::Postmaster,
        _ => return None,
    };
    let (kind, new_id) = rest.split_once(" notification: ")?;
    let kind = match kind {
        "non-delivery" => Kind::NonDelivery,
        "delay" => Kind::Delay,
        "delivery status" => Kind::Success,
        _ => return None,
    };
    is_queue_id(new_id).then_some(Event::Notification { kind, to })
}

impl Kind {
    pub fn tag(self) -> &'static str {
        match self {
            Kind::NonDelivery => "non-delivery",
            Kind::Delay => "delay",
            Kind::Success => "success",
        }
    }
}

impl NotifyWhom {
    pub fn tag(self) -> &'static str {
        match self {
            NotifyWhom::Sender => "sender",
            NotifyWhom::Postmaster => "postmaster",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's real Postfix 3.7.11 capture: every pickup and qmgr line is one of ours,
    /// with the sizes it says.
    #[test]
    fn captured_log() {
        let log = crate::log::fixtures::CAPTURE;
        let (mut pickups, mut active) = (0, 0);
        for l in log.lines().filter(|l| !l.starts_with('#')) {
            let line = crate::log::line::parse(l).unwrap();
            match parse(line.program, line.text) {
                Some(Event::Pickup { requeued }) => {
                    assert!(!requeued);
                    pickups += 1;
                }
                Some(Event::Active {
                    size,
                    nrcpt,
                    null_sender,
                }) => {
                    assert!(l.contains(&format!(", size={size}, nrcpt={nrcpt} ")), "{l}");
                    assert!(!null_sender);
                    active += 1;
                }
                None => assert!(!["pickup", "qmgr"].contains(&line.program), "{l}"),
                other => panic!("{l}: {other:?}"),
            }
        }
        assert!(pickups >= 12 && active >= 12, "{pickups} {active}");
    }

    /// The Debian 12 journal capture (tests/fixtures/journal): `removed`, a null sender's
    /// bounce entering the queue, and the bounce daemon's notification.
    #[test]
    fn captured_journal() {
        let capture = include_str!("../../tests/fixtures/journal/postfix-3.7.11.jsonl");
        let mut seen = Vec::new();
        for raw in capture.lines() {
            let entry = crate::log::source::journal::entry(raw.as_bytes()).unwrap();
            let (Some(ident), Some(message)) = (entry.identifier, entry.message) else {
                continue;
            };
            let line = crate::log::line::from_parts(&ident, &message).unwrap();
            if let Some(event) = parse(line.program, line.text) {
                seen.push(event);
            }
        }
        let count = |want: fn(&Event) -> bool| seen.iter().filter(|e| want(e)).count();
        assert_eq!(count(|e| matches!(e, Event::Removed)), 4);
        assert_eq!(count(|e| matches!(e, Event::Pickup { .. })), 4);
        assert_eq!(
            count(|e| matches!(
                e,
                Event::Active {
                    null_sender: true,
                    size: 2193,
                    nrcpt: 1
                }
            )),
            1
        );
        assert_eq!(
            count(|e| *e
                == Event::Notification {
                    kind: Kind::NonDelivery,
                    to: NotifyWhom::Sender
                }),
            1
        );
    }

    #[test]
    fn public_lines() {
        // SPEC 7.2 "Log:" (Postfix 3.7.11).
        assert_eq!(
            parse(
                "bounce",
                "60133B84C7: sender non-delivery notification: 69817B84E3"
            ),
            Some(Event::Notification {
                kind: Kind::NonDelivery,
                to: NotifyWhom::Sender
            })
        );
        // https://github.com/whyscream/postfix-grok-patterns/tree/master/test/ bounce_0002,
        // bounce_0003, pickup_0001, qmgr_0001, qmgr_0002 .yaml
        assert_eq!(
            parse(
                "bounce",
                "65AFB8B5: sender delivery status notification: 1DF35917"
            ),
            Some(Event::Notification {
                kind: Kind::Success,
                to: NotifyWhom::Sender
            })
        );
        assert_eq!(
            parse("bounce", "264FE1A18: sender delay notification: 0A87A1A08"),
            Some(Event::Notification {
                kind: Kind::Delay,
                to: NotifyWhom::Sender
            })
        );
        assert_eq!(
            parse("pickup", "D2FAE20586: uid=0 from=<fail2ban>"),
            Some(Event::Pickup { requeued: false })
        );
        assert_eq!(parse("qmgr", "0F5383D: removed"), Some(Event::Removed));
        assert_eq!(
            parse("qmgr", "0F5383D: from=<owner-postfix-users@postfix.org>, size=5360, nrcpt=1 (queue active)"),
            Some(Event::Active { size: 5360, nrcpt: 1, null_sender: false })
        );
        // SPEC 7.2's other shapes (source only): a postmaster copy, a re-queued pickup.
        assert_eq!(
            parse(
                "bounce",
                "60133B84C7: postmaster non-delivery notification: 69817B84E4"
            ),
            Some(Event::Notification {
                kind: Kind::NonDelivery,
                to: NotifyWhom::Postmaster
            })
        );
        assert_eq!(
            parse(
                "pickup",
                "29A27B82EB: uid=0 from=<a@example.com> orig_id=1A2B3C4D5E"
            ),
            Some(Event::Pickup { requeued: true })
        );
    }

    #[test]
    fn strangers_cannot_move_the_size() {
        // A quoted local part holding qmgr's own fields (Postfix quotes such an address).
        assert_eq!(
            parse("qmgr", "ABCDEF1234: from=<\"x>, size=1, nrcpt=9 (queue active)\"@example.com>, size=77, nrcpt=2 (queue active)"),
            Some(Event::Active { size: 77, nrcpt: 2, null_sender: false })
        );
    }

    #[test]
    fn not_ours() {
        for (program, text) in [
            ("qmgr", "ABCDEF1234: from=<a@b>, status=expired, returned to sender"),
            ("qmgr", "ABCDEF1234: from=<a@b>, size=-1, nrcpt=1 (queue active)"),
            ("qmgr", "ABCDEF1234: from=<a@b>, size=99999999999999999999999, nrcpt=1 (queue active)"),
            ("qmgr", "warning: bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting bounce_queue_lifetime"),
            ("pickup", "ABCDEF1234: uid=x from=<a@b>"),
            ("bounce", "ABCDEF1234: sender non-delivery notification: not an id!"),
            ("bounce", "ABCDEF1234: someone delay notification: ABCDEF1235"),
            ("smtp", "ABCDEF1234: removed"),
            ("postsuper", "15119B82CE: placed on hold"),
        ] {
            assert_eq!(parse(program, text), None, "{text}");
        }
    }
}
