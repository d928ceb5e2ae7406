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

/// Where Postfix keeps per-message logs of deferred recipients (SPEC 8.5).
pub const DEFER: &str = "defer";

/// How a Postfix instance hashes its queues into subdirectories (`hash_queue_names`,
/// `hash_queue_depth`): Postfix's defaults unless postconf says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashing {
    pub queues: Vec<String>,
    pub depth: usize,
}

impl Default for Hashing {
    fn default() -> Self {
        Hashing {
            queues: vec![DEFERRED.to_owned(), DEFER.to_owned()],
            depth: 1,
        }
    }
}

impl Hashing {
    /// The path of `id` in `queue`, relative to the queue directory (`mail_queue_path`):
    /// `defer/A/A07A81514` when `defer` is hashed. The subdirectories are the ID's first
    /// characters, or for a long ID the first of its microseconds in hex (`%05X`), each level
    /// one character (`_` past the end), as `dir_forest` makes them (SPEC 8.6).
    pub fn path(&self, queue: &str, id: &str) -> String {
        let mut path = format!("{queue}/");
        if self.queues.iter().any(|q| q.eq_ignore_ascii_case(queue)) {
            let source = long_id_usec(id).map_or_else(|| id.to_owned(), |us| format!("{us:05X}"));
            let mut chars = source.chars();
            for _ in 0..self.depth {
                path.push(chars.next().unwrap_or('_'));
                path.push('/');
            }
        }
        path.push_str(id);
        path
    }
}

/// The microseconds of a long queue ID (SPEC 8.6): the four base-52 characters before the
/// last `z`, when that `z` follows at least ten characters.
fn long_id_usec(id: &str) -> Option<u64> {
    const ALPHABET: &[u8] = b"0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
    let z = id.rfind('z').filter(|z| *z >= 10)?;
    let usec = id.get(z - 4..z)?;
    usec.bytes().try_fold(0u64, |n, c| {
        let d = ALPHABET.iter().position(|a| *a == c)?;
        Some(n * 52 + d as u64)
    })
}

/// Whether `name` can be a queue file's name: what `mail_queue_id_ok` accepts (letters, digits
/// and `_`, at most 255), longer than one character (showq takes those for subdirectories).
pub fn is_queue_id(name: &[u8]) -> bool {
    (2..=255).contains(&name.len()) && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_file_paths() {
        let h = Hashing::default();
        assert_eq!(h.path(DEFER, "3271BC4913"), "defer/3/3271BC4913");
        assert_eq!(h.path(DEFERRED, "3271BC4913"), "deferred/3/3271BC4913");
        assert_eq!(h.path(ACTIVE, "3271BC4913"), "active/3271BC4913");
        // A long ID: hashed by its microseconds (here 4t6Q = 4*52^3+... = 0x94E2E), not its
        // first character.
        let us = long_id_usec("4dCVxk4t6Qz6Yx").unwrap();
        assert_eq!(
            h.path(DEFER, "4dCVxk4t6Qz6Yx"),
            format!("defer/{}/4dCVxk4t6Qz6Yx", &format!("{us:05X}")[..1])
        );
        assert_eq!(long_id_usec("3271BC4913"), None);
        let deep = Hashing {
            queues: vec!["Defer".into()],
            depth: 2,
        };
        assert_eq!(deep.path(DEFER, "AB12"), "defer/A/B/AB12");
        // Every captured file of a hashed queue is where `path` says, long IDs included.
        for set in ["mixed", "long-ids"] {
            let stat = std::fs::read_to_string(format!(
                "{}/tests/fixtures/qfiles/{set}/stat.tsv",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            for path in stat.lines().map(|l| l.split('\t').next().unwrap()) {
                let (queue, id) = (
                    path.split('/').next().unwrap(),
                    path.rsplit('/').next().unwrap(),
                );
                assert_eq!(h.path(queue, id), path, "{set}");
            }
        }
        assert!(is_queue_id(b"3271BC4913"));
        assert!(!is_queue_id(b"12345.6789"));
        assert!(!is_queue_id(b"A"));
    }

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
