//! The queue vocabulary, written once: Postfix's queue names, the orders we send them in, which
//! queues each listing format can name, and which Postfix lists in which format. Every method
//! and parser takes its queue names from here; the config keeps its own list of what a user may
//! name (`config::validate`), which also holds Postfix's bookkeeping directories.

pub const ACTIVE: &str = "active";
pub const HOLD: &str = "hold";
pub const DEFERRED: &str = "deferred";
pub const INCOMING: &str = "incoming";
pub const MAILDROP: &str = "maildrop";
pub const CORRUPT: &str = "corrupt";

/// The five queues a message can be in, in the order the listing methods send them: the
/// Datadog check's postqueue mode reports active, hold and deferred, so those come first.
pub const LISTED: [&str; 5] = [ACTIVE, HOLD, DEFERRED, INCOMING, MAILDROP];

/// The same five in the order the Datadog check's find mode counts them (its example config
/// lists incoming, active, deferred), for a find that stands in for the check.
pub const FIND_ORDER: [&str; 5] = [INCOMING, ACTIVE, DEFERRED, HOLD, MAILDROP];

/// What a directory scan counts: every queue a message can be in, and `corrupt`, where Postfix
/// puts the queue files it cannot read.
pub const SCANNED: [&str; 6] = [ACTIVE, HOLD, DEFERRED, INCOMING, MAILDROP, CORRUPT];

/// `postqueue -p` text shows active and hold by a mark; deferred, incoming and maildrop look
/// the same, so all three count as deferred.
const TEXT_LISTED: [&str; 3] = [ACTIVE, HOLD, DEFERRED];

/// How Postfix lists its queue, which decides what a listing can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingFormat {
    /// Postfix 3.1 and later: one record per message naming its queue and giving its arrival,
    /// size and recipients (`postqueue -j`, showq's attribute stream).
    Structured,
    /// Older Postfix: the `postqueue -p` text, from postqueue or from showq alike.
    Text,
}

impl ListingFormat {
    /// The format a Postfix of `version` (major, minor) lists in.
    pub fn of_version(version: (u32, u32)) -> Self {
        if version >= (3, 1) {
            ListingFormat::Structured
        } else {
            ListingFormat::Text
        }
    }

    /// The queues a listing in this format can name, in the order they are sent.
    pub fn queues(self) -> &'static [&'static str] {
        match self {
            ListingFormat::Structured => &LISTED,
            ListingFormat::Text => &TEXT_LISTED,
        }
    }

    /// Whether a listing in this format names `queue`: a name a later Postfix might add is not
    /// counted as any of ours.
    pub fn names(self, queue: &str) -> bool {
        self.queues().contains(&queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_order_holds_the_same_five_queues() {
        let mut listed = LISTED.to_vec();
        listed.sort_unstable();
        let mut find = FIND_ORDER.to_vec();
        find.sort_unstable();
        assert_eq!(find, listed);
        assert_eq!(SCANNED[..5], LISTED);
    }

    #[test]
    fn postfix_3_1_lists_by_record() {
        assert_eq!(ListingFormat::of_version((3, 1)), ListingFormat::Structured);
        assert_eq!(
            ListingFormat::of_version((3, 10)),
            ListingFormat::Structured
        );
        assert_eq!(ListingFormat::of_version((3, 0)), ListingFormat::Text);
        assert_eq!(ListingFormat::of_version((2, 11)), ListingFormat::Text);
        assert!(ListingFormat::Structured.names(MAILDROP));
        assert!(!ListingFormat::Text.names(MAILDROP));
        assert!(!ListingFormat::Structured.names(CORRUPT));
    }
}
