//! The one queue snapshot every collection method fills, so that one place (`metrics`) turns
//! any method's result into the same series. Methods that only count files fill `messages`;
//! methods that list messages (postqueue -j) also fill a [`Listing`], and memory stays bounded
//! by the number of series whatever the queue holds.

use std::collections::HashMap;

use crate::reason::{self, Reason};

/// Distinct recipient domains remembered per queue; later new domains are counted as `other`.
pub const MAX_DOMAINS: usize = 10_000;

/// What one collection of one instance found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Per queue, in the order the method reports them (the order the gauges are sent in).
    /// A queue the method could not read is absent, never present with 0.
    pub queues: Vec<QueueStats>,
    /// Listed messages too large to examine whole.
    pub truncated: Truncated,
}

/// Messages whose listing passed the parser's bound (a `-j` line, an attribute-stream message
/// of more than `listing::MAX_MESSAGE` bytes): each counts in its queue's messages, bytes and
/// ages, none of its recipients do (see [`Snapshot::record_truncated`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truncated {
    pub messages: u64,
    /// Their queue IDs, the first `MAX_TRUNCATED_IDS`, for the log.
    pub ids: Vec<String>,
}

/// Queue IDs of truncated messages kept per snapshot. Each such message took more than 4 MiB
/// of listing, so this many is gigabytes per run: a bound never reached in practice, but a
/// bound (a fuzzer lowers the message bound).
pub const MAX_TRUNCATED_IDS: usize = 1000;

/// Counts for one queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue's name, as it appears in the `queue:` tag.
    pub queue: String,
    /// Messages in the queue.
    pub messages: u64,
    /// Bytes in the queue, when the method knows them without a listing (scan: file sizes).
    pub bytes: Option<u64>,
    /// What a listing of the messages tells beyond their number; `None` for counting methods.
    pub listing: Option<Listing>,
}

/// Per-queue figures from a message listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Sum of message sizes.
    pub bytes: u64,
    /// Recipients still to deliver, each counted once per message.
    pub recipients: u64,
    /// Seconds since the arrival of the oldest message (Postfix's arrival time, never a file
    /// time: qmgr sets deferred files' mtime into the future); 0 for an empty queue.
    pub oldest_age: u64,
    /// Messages older than each of the instance's age thresholds, in the same order.
    pub older_than: Vec<u64>,
    /// Recipients by delay reason class, indexed by `Reason::index`.
    pub reasons: [u64; Reason::ALL.len()],
    /// Recipients by destination domain.
    pub domains: Domains,
}

/// Recipients per domain, at most `MAX_DOMAINS` distinct ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Domains {
    counts: HashMap<String, u64>,
    /// Recipients whose domain was new after the limit.
    pub overflow: u64,
}

impl Domains {
    pub fn add(&mut self, domain: &str, n: u64) {
        if let Some(c) = self.counts.get_mut(domain) {
            *c += n;
        } else if self.counts.len() < MAX_DOMAINS {
            self.counts.insert(domain.to_owned(), n);
        } else {
            self.overflow += n;
        }
    }

    /// The `n` domains with most recipients (ties by name), and the sum of all the others.
    pub fn top(&self, n: usize) -> (Vec<(&str, u64)>, u64) {
        let mut all: Vec<(&str, u64)> = self.counts.iter().map(|(d, c)| (d.as_str(), *c)).collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let rest = all.iter().skip(n).map(|(_, c)| c).sum::<u64>() + self.overflow;
        all.truncate(n);
        (all, rest)
    }

    pub fn distinct(&self) -> usize {
        self.counts.len()
    }
}

/// What a listing parser needs to know to fill a `Listing`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListingRules {
    /// "Now" for ages, unix seconds, taken once per collection.
    pub now: i64,
    /// Age thresholds in seconds, in the order of `Listing::older_than`.
    pub age_thresholds: Vec<u64>,
}

impl ListingRules {
    /// The rules for a collection starting now.
    pub fn now(age_thresholds: &[u64]) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        ListingRules {
            now,
            age_thresholds: age_thresholds.to_vec(),
        }
    }
}

/// The longest queue ID kept for the log, in characters.
const MAX_QUEUE_ID: usize = 64;

/// Up to this many recipients, duplicates are found by looking back; beyond, with a set.
const LOOK_BACK: usize = 16;

/// One recipient of a listed message.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub address: &'a str,
    pub delay_reason: Option<&'a str>,
}

impl Snapshot {
    /// `queues`, in that order, at 0: what a listing starts from, so that a queue it names but
    /// finds empty is sent as 0 rather than left out.
    pub fn empty(queues: &[&str]) -> Self {
        let mut snapshot = Snapshot::default();
        for queue in queues {
            snapshot.add(queue, 0);
        }
        snapshot
    }

    /// `queues`, in that order, at 0 with an all-zero listing: what a listing that gives each
    /// message's figures starts from.
    pub fn listed(queues: &[&str], rules: &ListingRules) -> Self {
        let mut snapshot = Snapshot::default();
        for queue in queues {
            snapshot.add_listed(queue, rules);
        }
        snapshot
    }

    /// Adds `n` messages to `queue`, creating it at the end when it is new.
    pub fn add(&mut self, queue: &str, n: u64) {
        self.entry(queue).messages += n;
    }

    /// Adds counted files and their bytes (a directory scan knows sizes but not recipients).
    pub fn add_counted(&mut self, queue: &str, files: u64, bytes: u64) {
        let q = self.entry(queue);
        q.messages += files;
        q.bytes = Some(q.bytes.unwrap_or(0) + bytes);
    }

    /// Creates `queue` with a listing (all zero) if it does not exist yet.
    pub fn add_listed(&mut self, queue: &str, rules: &ListingRules) {
        let q = self.entry(queue);
        q.listing.get_or_insert_with(|| Listing {
            older_than: vec![0; rules.age_thresholds.len()],
            ..Listing::default()
        });
    }

    /// Records one listed message. Recipients repeated within the message count once.
    pub fn record(
        &mut self,
        queue: &str,
        rules: &ListingRules,
        arrival: Option<i64>,
        size: Option<u64>,
        recipients: &[Recipient<'_>],
    ) {
        let l = self.record_message(queue, rules, arrival, size);
        distinct(recipients, |r| {
            l.recipients += 1;
            l.reasons[reason::classify(r.delay_reason).index()] += 1;
            l.domains.add(&domain_of(r.address), 1);
        });
    }

    /// Counts one message in `queue`: its size and age. Its recipients are the caller's to add
    /// to the listing returned (`record` lists them; a directory scan has them counted already).
    pub fn record_message(
        &mut self,
        queue: &str,
        rules: &ListingRules,
        arrival: Option<i64>,
        size: Option<u64>,
    ) -> &mut Listing {
        self.entry(queue).messages += 1;
        let l = self.listing_mut(queue, rules);
        l.bytes += size.unwrap_or(0);
        if let Some(arrival) = arrival {
            let age = rules.now.saturating_sub(arrival).max(0) as u64;
            l.oldest_age = l.oldest_age.max(age);
            for (count, threshold) in l.older_than.iter_mut().zip(&rules.age_thresholds) {
                if age > *threshold {
                    *count += 1;
                }
            }
        }
        l
    }

    /// The listing of `queue`, created (all zero) if it does not exist yet.
    pub fn listing_mut(&mut self, queue: &str, rules: &ListingRules) -> &mut Listing {
        self.entry(queue).listing.get_or_insert_with(|| Listing {
            older_than: vec![0; rules.age_thresholds.len()],
            ..Listing::default()
        })
    }

    /// Records a message too large to examine whole: its queue, arrival and size count, its
    /// recipients do not, not even those read before the bound. Counting them without holding
    /// them would count a recipient that showq repeats (past `duplicate_filter_limit`, which is
    /// what a message of 100,000 recipients meets) once per repeat; none is a figure that can
    /// be stated, part of them is not.
    pub fn record_truncated(
        &mut self,
        queue: &str,
        rules: &ListingRules,
        arrival: Option<i64>,
        size: Option<u64>,
        queue_id: &str,
    ) {
        self.record(queue, rules, arrival, size, &[]);
        self.truncated.messages += 1;
        if self.truncated.ids.len() < MAX_TRUNCATED_IDS {
            // Postfix makes queue IDs (at most 20-odd characters); the cap is for a stream
            // that is not Postfix's.
            self.truncated
                .ids
                .push(queue_id.chars().take(MAX_QUEUE_ID).collect());
        }
    }

    /// The count for `queue`, if the snapshot has it.
    pub fn messages(&self, queue: &str) -> Option<u64> {
        self.get(queue).map(|q| q.messages)
    }

    pub fn get(&self, queue: &str) -> Option<&QueueStats> {
        self.queues.iter().find(|q| q.queue == queue)
    }

    fn entry(&mut self, queue: &str) -> &mut QueueStats {
        let i = match self.queues.iter().position(|q| q.queue == queue) {
            Some(i) => i,
            None => {
                self.queues.push(QueueStats {
                    queue: queue.to_owned(),
                    ..QueueStats::default()
                });
                self.queues.len() - 1
            }
        };
        &mut self.queues[i]
    }
}

/// The `domain:` tag value of an address: the part after the last `@`, lower case, reduced to
/// the characters a tag keeps, without a trailing dot; `local` for an address without a domain.
/// The values we make up (`local`, and `other` for the domains past the top N) never end in a
/// dot, so a real domain of that name is written with its dot (`other.`), as DNS writes it, and
/// an empty one (`a@.`) is the root, `.`.
pub fn domain_of(address: &str) -> String {
    let domain = match address.rsplit_once('@') {
        Some((_, d)) if !d.is_empty() => d,
        _ => return LOCAL_DOMAIN.to_owned(),
    };
    let mut out: String = domain
        .trim_end_matches('.')
        .chars()
        .take(253)
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '-' | '_') => c,
            _ => '_',
        })
        .collect();
    if out.is_empty() || out == LOCAL_DOMAIN || out == OTHER_DOMAINS {
        out.push('.');
    }
    out
}

/// Calls `each` with the first of each address among `recipients`, in order: showq repeats
/// recipients (past `duplicate_filter_limit`, or when a defer log and the queue file both name
/// them), and a recipient counts once per message. Linear whatever a sender puts in one
/// message: looking back is cheaper than a set for the usual handful, a set takes over beyond
/// that (a look-back over 140,000 recipients took 55 s of CPU).
pub fn distinct<'a>(recipients: &[Recipient<'a>], each: impl FnMut(&Recipient<'a>)) {
    distinct_by(recipients, |r| r.address, each);
}

/// [`distinct`] for any list of recipients, `address` telling each one's address.
pub fn distinct_by<T>(items: &[T], address: impl Fn(&T) -> &str, mut each: impl FnMut(&T)) {
    let mut seen = std::collections::HashSet::new();
    for (i, r) in items.iter().enumerate() {
        let repeated = if items.len() <= LOOK_BACK {
            items[..i].iter().any(|p| address(p) == address(r))
        } else {
            !seen.insert(address(r))
        };
        if !repeated {
            each(r);
        }
    }
}

/// `domain:` for an address without a domain.
pub const LOCAL_DOMAIN: &str = "local";
/// `domain:` for the sum of the domains past the top N.
pub const OTHER_DOMAINS: &str = "other";

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpt(address: &'static str, reason: Option<&'static str>) -> Recipient<'static> {
        Recipient {
            address,
            delay_reason: reason,
        }
    }

    #[test]
    fn record_fills_every_figure() {
        let rules = ListingRules {
            now: 10_000,
            age_thresholds: vec![300, 3600],
        };
        let mut s = Snapshot::default();
        s.add_listed("deferred", &rules);
        s.record(
            "deferred",
            &rules,
            Some(10_000 - 4000),
            Some(1000),
            &[
                rcpt("a@Example.COM", Some("connect to x: Connection refused")),
                rcpt("a@Example.COM", Some("connect to x: Connection refused")),
                rcpt("b@example.net", None),
            ],
        );
        s.record(
            "deferred",
            &rules,
            Some(10_000 - 100),
            Some(24),
            &[rcpt("root", None)],
        );
        let q = s.get("deferred").unwrap();
        assert_eq!(q.messages, 2);
        let l = q.listing.as_ref().unwrap();
        assert_eq!(l.bytes, 1024);
        assert_eq!(l.recipients, 3);
        assert_eq!(l.oldest_age, 4000);
        assert_eq!(l.older_than, vec![1, 1]);
        assert_eq!(l.reasons[Reason::ConnectionRefused.index()], 1);
        assert_eq!(l.reasons[Reason::NoReason.index()], 2);
        let (top, rest) = l.domains.top(1);
        assert_eq!(top, vec![("example.com", 1)]);
        assert_eq!(rest, 2);
    }

    #[test]
    fn repeated_recipients_count_once_in_a_huge_message() {
        let rules = ListingRules {
            now: 0,
            age_thresholds: vec![],
        };
        // What one local user can queue with sendmail: 140,000 recipients, with repeats
        // (showq lists a recipient again past duplicate_filter_limit).
        let addresses: Vec<String> = (0..140_000)
            .map(|i| format!("u{i}@d{}.example", i % 50))
            .collect();
        let mut recipients: Vec<Recipient<'_>> = addresses
            .iter()
            .map(|a| Recipient {
                address: a,
                delay_reason: None,
            })
            .collect();
        recipients.extend(addresses[..10_000].iter().map(|a| Recipient {
            address: a,
            delay_reason: None,
        }));
        let mut s = Snapshot::default();
        s.record("deferred", &rules, None, None, &recipients);
        let l = s.get("deferred").unwrap().listing.as_ref().unwrap();
        assert_eq!(l.recipients, 140_000);
        assert_eq!(l.domains.distinct(), 50);
        // The short path finds repeats too.
        let mut s = Snapshot::default();
        s.record(
            "deferred",
            &rules,
            None,
            None,
            &[rcpt("a@x", None), rcpt("a@x", None), rcpt("b@x", None)],
        );
        assert_eq!(
            s.get("deferred")
                .unwrap()
                .listing
                .as_ref()
                .unwrap()
                .recipients,
            2
        );
    }

    #[test]
    fn domains_are_bounded() {
        let mut d = Domains::default();
        for i in 0..MAX_DOMAINS + 5 {
            d.add(&format!("d{i}.example"), 1);
        }
        d.add("d0.example", 10);
        assert_eq!(d.distinct(), MAX_DOMAINS);
        assert_eq!(d.overflow, 5);
        let (top, rest) = d.top(1);
        assert_eq!(top, vec![("d0.example", 11)]);
        assert_eq!(rest, (MAX_DOMAINS as u64 - 1) + 5);
    }

    #[test]
    fn domain_tag_values() {
        assert_eq!(domain_of("x!y*z@Example.ORG"), "example.org");
        assert_eq!(domain_of("weird@ex|am,ple.com."), "ex_am_ple.com");
        assert_eq!(domain_of("root"), "local");
        assert_eq!(domain_of("a@"), "local");
        // Never the same as a value we make up, never empty.
        assert_eq!(domain_of("a@other"), "other.");
        assert_eq!(domain_of("a@LOCAL."), "local.");
        assert_eq!(domain_of("a@."), ".");
        assert_eq!(domain_of("a@other.example"), "other.example");
    }
}
