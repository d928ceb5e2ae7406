//! What method scan remembers of each queue file between cycles, so that a cycle reads only
//! the files that changed (SPEC 8.7): per file a fixed, small entry keyed by device and inode,
//! with its recipients as counts per (interned domain, reason class). No I/O: the walk tells
//! what it saw ([`Cache::observe`]), the reader what a file said ([`Cache::store`]), and
//! [`Cache::snapshot`] adds it all up.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::queue::CORRUPT;
use crate::reason::Reason;
use crate::snapshot::{ListingRules, Snapshot};

/// Distinct domains held at once; recipients of domains past it count as `other`.
pub const MAX_DOMAINS: usize = 100_000;

/// A queue file's `stat`, as the walk saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime: i64,
    pub ctime: i64,
    pub mode: u32,
}

/// What one queue file said, as the reader hands it over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// showq lists it (a sender record was reached).
    pub listed: bool,
    pub message_size: u64,
    /// Unix seconds.
    pub arrival: i64,
    /// Distinct recipients, per (domain tag value, reason class), each pair once.
    pub recipients: Vec<(String, Reason, u32)>,
}

/// One remembered queue file: 96 bytes, plus at most 8 a recipient when it has more than one
/// (domain, reason) pair.
#[derive(Debug)]
struct Entry {
    ino: u64,
    /// A hash of the file's path: a new one with the same content is a rename.
    path: u64,
    /// A hash of the size and mtime: the content may have changed when it does.
    content: u64,
    ctime: i64,
    /// The defer log's ctime when the file was read, 0 without one.
    defer_ctime: i64,
    message_size: u64,
    arrival: i64,
    recipients: u32,
    dev: u32,
    queue: u8,
    flags: u8,
    /// The directory it was seen in ([`Cache::listed`]).
    dir: u32,
    pairs: Pairs,
}

const LISTED: u8 = 1;
const SEEN: u8 = 2;

/// Recipients by key (domain id << 4 | reason index): inline for the usual single key; else
/// each recipient's key (4 bytes a recipient) or each key with its count (8 bytes a distinct
/// key), whichever is smaller, so never more than 8 bytes a recipient.
#[derive(Debug)]
enum Pairs {
    None,
    One((u32, u32)),
    Keys(Box<[u32]>),
    Counted(Box<[(u32, u32)]>),
}

impl Pairs {
    fn new(mut pairs: Vec<(u32, u32)>) -> Pairs {
        pairs.sort_unstable();
        let recipients: u64 = pairs.iter().map(|p| u64::from(p.1)).sum();
        match pairs.len() {
            0 => Pairs::None,
            1 => Pairs::One(pairs[0]),
            n if recipients <= 2 * n as u64 => Pairs::Keys(
                pairs
                    .iter()
                    .flat_map(|&(k, c)| std::iter::repeat_n(k, c as usize))
                    .collect(),
            ),
            _ => Pairs::Counted(pairs.into_boxed_slice()),
        }
    }

    /// Each key with its count (a key of `Keys` may come more than once).
    fn each(&self, mut f: impl FnMut(u32, u32)) {
        match self {
            Pairs::None => {}
            Pairs::One((k, n)) => f(*k, *n),
            Pairs::Keys(keys) => keys.iter().for_each(|k| f(*k, 1)),
            Pairs::Counted(all) => all.iter().for_each(|(k, n)| f(*k, *n)),
        }
    }
}

/// Whether the walk's file must be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Known, and nothing says its content changed: counted as it was.
    Known,
    /// New, or changed: read it.
    Read,
}

/// The domains of the remembered recipients, each with an id and a count of the entries that
/// hold it, so that a domain no queued message holds any more is forgotten.
#[derive(Debug, Default)]
struct Domains {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Option<Box<str>>>,
    holders: Vec<u32>,
    free: Vec<u32>,
}

/// The id of every domain past `MAX_DOMAINS`.
const OVERFLOW: u32 = (1 << 28) - 1;

impl Domains {
    fn hold(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            self.holders[id as usize] += 1;
            return id;
        }
        if self.ids.len() >= MAX_DOMAINS {
            return OVERFLOW;
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.names.push(None);
                self.holders.push(0);
                (self.names.len() - 1) as u32
            }
        };
        self.ids.insert(name.into(), id);
        self.names[id as usize] = Some(name.into());
        self.holders[id as usize] = 1;
        id
    }

    fn release(&mut self, id: u32) {
        if id == OVERFLOW {
            return;
        }
        let h = &mut self.holders[id as usize];
        *h -= 1;
        if *h == 0 {
            if let Some(name) = self.names[id as usize].take() {
                self.ids.remove(&name);
            }
            self.free.push(id);
        }
    }

    fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize)?.as_deref()
    }
}

/// Every queue file of one Postfix instance that the last cycles saw.
#[derive(Debug)]
pub struct Cache {
    entries: Vec<Entry>,
    /// Indexes into `entries`, by (device, inode).
    index: HashTable<u32>,
    /// Seeds the hashes of keys, paths and contents (random per cache).
    seed: u64,
    devs: Vec<u64>,
    domains: Domains,
    /// The `SEEN` flag of entries seen in this cycle.
    cycle: u8,
    /// Directories listed, by path: their id, and the times that say when their entries change.
    dirs: HashMap<std::path::PathBuf, Dir>,
    /// Whether each directory id was left unlisted this cycle (unchanged: its files count as
    /// seen).
    kept: Vec<bool>,
    /// The queues, in the order their index is kept in an entry.
    queues: Vec<String>,
}

impl Cache {
    pub fn new(queues: &[&str]) -> Self {
        Cache {
            entries: Vec::new(),
            index: HashTable::new(),
            seed: RandomState::new().hash_one(0u8),
            devs: Vec::new(),
            domains: Domains::default(),
            cycle: 0,
            dirs: HashMap::new(),
            kept: Vec::new(),
            queues: queues.iter().map(|q| q.to_string()).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything: the next cycle reads every file.
    pub fn clear(&mut self) {
        *self = Cache::new(&self.queues.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// Starts a cycle: what is not observed or stored before [`Cache::sweep`] is dropped.
    pub fn start_cycle(&mut self) {
        self.cycle ^= SEEN;
        self.kept.iter_mut().for_each(|k| *k = false);
        self.dirs.values_mut().for_each(|d| d.seen = false);
    }

    /// The directories whose entries did not change since they were listed, with the times
    /// that say so: the walk may leave them unlisted if those times are still the same.
    pub fn settled_dirs(&self) -> HashMap<std::path::PathBuf, (i64, i64)> {
        self.dirs
            .iter()
            .filter(|(_, d)| d.settled)
            .map(|(p, d)| (p.clone(), (d.mtime, d.ctime)))
            .collect()
    }

    /// A directory the walk lists, with its mtime and ctime from before the listing: its id
    /// for the files found in it. Not settled until [`Cache::settle`] says so.
    pub fn listed(&mut self, dir: &std::path::Path, mtime: i64, ctime: i64) -> u32 {
        let next = self.kept.len() as u32;
        let d = self.dirs.entry(dir.to_owned()).or_insert(Dir {
            id: next,
            mtime,
            ctime,
            settled: false,
            seen: false,
        });
        if d.id == next {
            self.kept.push(false);
        }
        d.mtime = mtime;
        d.ctime = ctime;
        d.settled = false;
        d.seen = true;
        d.id
    }

    /// Whether a directory just listed last changed before `before` (nanoseconds since the
    /// epoch): late enough changes may share a clock tick with one still to come.
    pub fn dir_settles(&self, dir: &std::path::Path, before: i64) -> bool {
        self.dirs
            .get(dir)
            .is_some_and(|d| d.mtime < before && d.ctime < before)
    }

    /// The id of a directory [`Cache::listed`] in this cycle.
    pub fn dir_id(&self, dir: &std::path::Path) -> Option<u32> {
        self.dirs.get(dir).map(|d| d.id)
    }

    /// A directory listed whole, without subdirectories, whose entries can be trusted to stay as
    /// listed while its times do (see [`Cache::listed`]).
    pub fn settle(&mut self, dir: &std::path::Path) {
        if let Some(d) = self.dirs.get_mut(dir) {
            d.settled = true;
        }
    }

    /// A settled directory the walk left unlisted, its times unchanged: its files count as
    /// seen, as they were.
    pub fn kept(&mut self, dir: &std::path::Path) {
        if let Some(d) = self.dirs.get_mut(dir) {
            d.seen = true;
            self.kept[d.id as usize] = true;
        }
    }

    /// Directories left unlisted this cycle.
    pub fn kept_dirs(&self) -> usize {
        self.kept.iter().filter(|k| **k).count()
    }

    /// A file of this directory could not be read this time: list the directory next time.
    pub fn unsettle(&mut self, dir: u32) {
        if let Some(d) = self.dirs.values_mut().find(|d| d.id == dir) {
            d.settled = false;
        }
    }

    /// A hash of a file's path (its directory and name), for [`Cache::observe`] and
    /// [`Cache::store`].
    pub fn path_hash(&self, dir: &[u8], name: &[u8]) -> u64 {
        hash_bytes(hash_bytes(self.seed, dir), name)
    }

    fn content_hash(&self, stat: &Stat) -> u64 {
        mix(mix(self.seed ^ stat.size) ^ stat.mtime as u64)
    }

    fn dev_index(&mut self, dev: u64) -> u32 {
        match self.devs.iter().position(|d| *d == dev) {
            Some(i) => i as u32,
            None => {
                self.devs.push(dev);
                (self.devs.len() - 1) as u32
            }
        }
    }

    fn key_hash(&self, dev: u32, ino: u64) -> u64 {
        key_hash(self.seed, dev, ino)
    }

    fn find(&mut self, stat: &Stat) -> Option<usize> {
        let dev = self.dev_index(stat.dev);
        let entries = &self.entries;
        self.index
            .find(self.key_hash(dev, stat.ino), |&i| {
                let e = &entries[i as usize];
                e.ino == stat.ino && e.dev == dev
            })
            .map(|&i| i as usize)
    }

    /// A file the walk found in `queue` at `path` (a [`Cache::path_hash`]): `Known` when its
    /// inode is remembered with the same size and mtime, and its ctime is the same or its path
    /// is new (a rename: postsuper -h and -H, qmgr's moves change the ctime and nothing
    /// inside). A known file is marked seen, in its new queue.
    pub fn observe(&mut self, queue: usize, dir: u32, path: u64, stat: &Stat) -> Verdict {
        let Some(i) = self.find(stat) else {
            return Verdict::Read;
        };
        let content = self.content_hash(stat);
        let e = &mut self.entries[i];
        if e.content != content || (e.path == path && e.ctime != stat.ctime) {
            return Verdict::Read;
        }
        e.path = path;
        e.ctime = stat.ctime;
        e.queue = queue as u8;
        e.dir = dir;
        e.flags = (e.flags & !SEEN) | self.cycle;
        Verdict::Known
    }

    /// Whether a known file's defer log is no longer what it was when the file was read
    /// (`ctime` 0: it has none now).
    pub fn defer_changed(&mut self, stat: &Stat, ctime: i64) -> bool {
        self.find(stat)
            .is_none_or(|i| self.entries[i].defer_ctime != ctime)
    }

    /// What a file said when it was read, remembered and marked seen.
    pub fn store(
        &mut self,
        queue: usize,
        dir: u32,
        path: u64,
        stat: &Stat,
        defer_ctime: i64,
        summary: Summary,
    ) {
        let pairs = Pairs::new(
            summary
                .recipients
                .iter()
                .map(|(domain, reason, n)| {
                    let id = self.domains.hold(domain);
                    (id << 4 | reason.index() as u32, *n)
                })
                .collect(),
        );
        let entry = Entry {
            ino: stat.ino,
            path,
            content: self.content_hash(stat),
            ctime: stat.ctime,
            defer_ctime,
            message_size: summary.message_size,
            arrival: summary.arrival,
            recipients: summary.recipients.iter().map(|r| r.2).sum(),
            dev: self.dev_index(stat.dev),
            queue: queue as u8,
            flags: self.cycle | if summary.listed { LISTED } else { 0 },
            dir,
            pairs,
        };
        match self.find(stat) {
            Some(i) => {
                let old = std::mem::replace(&mut self.entries[i], entry);
                self.release(&old);
            }
            None => {
                let i = self.entries.len() as u32;
                let hash = self.key_hash(entry.dev, entry.ino);
                self.entries.push(entry);
                let (entries, seed) = (&self.entries, self.seed);
                self.index.insert_unique(hash, i, |&j| {
                    let e = &entries[j as usize];
                    key_hash(seed, e.dev, e.ino)
                });
            }
        }
    }

    fn release(&mut self, e: &Entry) {
        let mut keys = Vec::new();
        e.pairs.each(|key, _| keys.push(key));
        // A key of `Keys` comes once a recipient, but was held once.
        keys.dedup();
        for key in keys {
            self.domains.release(key >> 4);
        }
    }

    /// Forgets the files not seen since [`Cache::start_cycle`] (delivered, deleted, or in a
    /// queue that could not be read this time).
    pub fn sweep(&mut self) {
        let mut i = 0;
        self.dirs.retain(|_, d| d.seen);
        while i < self.entries.len() {
            let e = &self.entries[i];
            if e.flags & SEEN == self.cycle || self.kept.get(e.dir as usize) == Some(&true) {
                i += 1;
                continue;
            }
            let gone_hash = self.key_hash(self.entries[i].dev, self.entries[i].ino);
            let gone = i as u32;
            if let Ok(found) = self.index.find_entry(gone_hash, |&j| j == gone) {
                found.remove();
            }
            let last = (self.entries.len() - 1) as u32;
            if last != gone {
                let moved_hash = self.key_hash(
                    self.entries[last as usize].dev,
                    self.entries[last as usize].ino,
                );
                if let Some(slot) = self.index.find_mut(moved_hash, |&j| j == last) {
                    *slot = gone;
                }
            }
            let e = self.entries.swap_remove(i);
            self.release(&e);
        }
    }

    /// Every remembered file in `queues` (names as given to [`Cache::new`]), counted as the
    /// listing methods count: in the five message queues the files showq lists, in `corrupt`
    /// every file.
    pub fn snapshot(&self, queues: &[&str], rules: &ListingRules) -> Snapshot {
        let mut counts: Vec<Counts> = self
            .queues
            .iter()
            .map(|q| Counts {
                wanted: queues.contains(&q.as_str()),
                every_file: q == CORRUPT,
                older_than: vec![0; rules.age_thresholds.len()],
                ..Counts::default()
            })
            .collect();
        for e in &self.entries {
            let c = &mut counts[e.queue as usize];
            if !c.wanted || (e.flags & LISTED == 0 && !c.every_file) {
                continue;
            }
            c.messages += 1;
            c.bytes += e.message_size;
            let age = rules.now.saturating_sub(e.arrival).max(0) as u64;
            c.oldest_age = c.oldest_age.max(age);
            for (n, threshold) in c.older_than.iter_mut().zip(&rules.age_thresholds) {
                *n += u64::from(age > *threshold);
            }
            c.recipients += u64::from(e.recipients);
            let (reasons, domains, overflow) = (&mut c.reasons, &mut c.domains, &mut c.overflow);
            e.pairs.each(|key, n| {
                reasons[(key & 0xf) as usize] += u64::from(n);
                let id = key >> 4;
                if id == OVERFLOW {
                    *overflow += u64::from(n);
                    return;
                }
                let id = id as usize;
                if id >= domains.len() {
                    domains.resize(id + 1, 0);
                }
                domains[id] += u64::from(n);
            });
        }
        let mut snapshot = Snapshot::listed(queues, rules);
        for (queue, c) in self.queues.iter().zip(counts) {
            if !c.wanted {
                continue;
            }
            snapshot.add(queue, c.messages);
            let l = snapshot.listing_mut(queue, rules);
            l.bytes = c.bytes;
            l.oldest_age = c.oldest_age;
            l.older_than = c.older_than;
            l.recipients = c.recipients;
            l.reasons = c.reasons;
            l.domains.overflow += c.overflow;
            // Most recipients first: if a queue holds more domains than a listing keeps, the
            // ones kept are the largest.
            let mut domains: Vec<(u32, u64)> = c
                .domains
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(id, n)| (id as u32, *n))
                .collect();
            domains.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            for (id, n) in domains {
                match self.domains.name(id) {
                    Some(name) => l.domains.add(name, n),
                    None => l.domains.overflow += n,
                }
            }
        }
        snapshot
    }
}

/// splitmix64's finalizer: every input bit reaches every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn key_hash(seed: u64, dev: u32, ino: u64) -> u64 {
    mix(mix(seed ^ u64::from(dev)) ^ ino)
}

/// A seeded hash of bytes, eight at a time. Paths and inodes are not chosen by whoever sends
/// mail, so a fast hash will do where SipHash cost a third of a steady cycle.
fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = mix(seed ^ bytes.len() as u64);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = mix(h ^ u64::from_le_bytes(word));
    }
    h
}

/// A directory as last listed.
#[derive(Debug)]
struct Dir {
    id: u32,
    mtime: i64,
    ctime: i64,
    settled: bool,
    seen: bool,
}

/// One queue's files, added up.
#[derive(Debug, Default)]
struct Counts {
    wanted: bool,
    every_file: bool,
    messages: u64,
    bytes: u64,
    oldest_age: u64,
    older_than: Vec<u64>,
    recipients: u64,
    reasons: [u64; Reason::ALL.len()],
    /// Recipients by domain id, and of the domains past `MAX_DOMAINS`.
    domains: Vec<u64>,
    overflow: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(ino: u64, size: u64, mtime: i64, ctime: i64) -> Stat {
        Stat {
            dev: 7,
            ino,
            size,
            mtime,
            ctime,
            mode: 0o100700,
        }
    }

    fn summary(domains: &[&str]) -> Summary {
        Summary {
            listed: true,
            message_size: 100,
            arrival: 1000,
            recipients: domains
                .iter()
                .map(|d| (d.to_string(), Reason::NoReason, 1))
                .collect(),
        }
    }

    /// What is kept per message and per recipient is small and fixed: BENCHMARKS.md states
    /// these figures.
    #[test]
    fn an_entry_is_small() {
        assert_eq!(std::mem::size_of::<Entry>(), 96);
        assert_eq!(std::mem::size_of::<Pairs>(), 24);
        assert_eq!(std::mem::size_of::<(u32, u32)>(), 8);
    }

    #[test]
    fn renames_are_known_edits_are_read() {
        let mut c = Cache::new(&SCANNED_FOR_TESTS);
        let a = c.path_hash(b"deferred/A", b"A1");
        let b = c.path_hash(b"hold", b"A1");
        c.start_cycle();
        assert_eq!(c.observe(0, 0, a, &stat(1, 10, 5, 5)), Verdict::Read);
        c.store(0, 0, a, &stat(1, 10, 5, 5), 0, summary(&["x.example"]));
        c.sweep();
        c.start_cycle();
        // Moved: same content, another path, a new ctime.
        assert_eq!(c.observe(1, 0, b, &stat(1, 10, 5, 9)), Verdict::Known);
        // Changed in place: same path, new ctime.
        assert_eq!(c.observe(1, 0, b, &stat(1, 10, 5, 11)), Verdict::Read);
        // Written: new mtime.
        assert_eq!(c.observe(1, 0, b, &stat(1, 10, 6, 9)), Verdict::Read);
        assert_eq!(c.observe(1, 0, b, &stat(1, 11, 5, 9)), Verdict::Read);
        c.sweep();
        assert_eq!(c.len(), 1);
        let rules = ListingRules::default();
        let s = c.snapshot(&["deferred", "hold"], &rules);
        assert_eq!(s.messages("hold"), Some(1));
        assert_eq!(s.messages("deferred"), Some(0));
    }

    /// A domain no remembered message holds is forgotten, and its id used again.
    #[test]
    fn domains_are_released() {
        let mut c = Cache::new(&SCANNED_FOR_TESTS);
        c.start_cycle();
        for i in 0..100u64 {
            let s = stat(i, 1, 1, 1);
            c.store(
                0,
                0,
                i,
                &s,
                0,
                summary(&[&format!("d{i}.example"), "common.example"]),
            );
        }
        c.sweep();
        assert_eq!(c.domains.ids.len(), 101);
        c.start_cycle();
        let keep = stat(5, 1, 1, 1);
        assert_eq!(c.observe(0, 0, 5, &keep), Verdict::Known);
        c.sweep();
        assert_eq!(c.len(), 1);
        assert_eq!(c.domains.ids.len(), 2);
        let s = c.snapshot(&["deferred"], &ListingRules::default());
        let (top, other) = s
            .get("deferred")
            .unwrap()
            .listing
            .as_ref()
            .unwrap()
            .domains
            .top(5);
        assert_eq!(top, vec![("common.example", 1), ("d5.example", 1)]);
        assert_eq!(other, 0);
        // The freed ids come back.
        c.start_cycle();
        c.store(0, 0, 500, &stat(500, 1, 1, 1), 0, summary(&["new.example"]));
        assert!(c.domains.names.len() <= 101);
    }

    /// Domains past the bound are counted, as `other`, not held.
    #[test]
    fn domains_past_the_bound_count_as_other() {
        let mut c = Cache::new(&SCANNED_FOR_TESTS);
        c.start_cycle();
        for i in 0..(MAX_DOMAINS as u64 + 3) {
            c.store(
                0,
                0,
                i,
                &stat(i, 1, 1, 1),
                0,
                summary(&[&format!("d{i}.example")]),
            );
        }
        let s = c.snapshot(&["deferred"], &ListingRules::default());
        let l = s.get("deferred").unwrap().listing.as_ref().unwrap();
        assert_eq!(l.recipients, MAX_DOMAINS as u64 + 3);
        let (top, other) = l.domains.top(1);
        assert_eq!(top.len(), 1);
        assert_eq!(other, MAX_DOMAINS as u64 + 2);
        assert!(l.domains.overflow >= 3);
    }

    const SCANNED_FOR_TESTS: [&str; 2] = ["deferred", "hold"];
}
