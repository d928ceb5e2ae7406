//! Method scan on spools made here: the layout Postfix makes, queue files written the way
//! cleanup writes them, and what a cycle reads when files are moved, changed or removed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

/// A queue file: size record, arrival, sender, recipients, a little content, end.
fn queue_file(spool: &Path, rel: &str, mode: u32, recipients: &[&str]) {
    fn record(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
        out.push(kind);
        out.push(data.len() as u8);
        out.extend_from_slice(data);
    }
    let mut f = Vec::new();
    record(&mut f, b'C', &[b' '; 95]);
    record(&mut f, b'T', b"1700000000 0");
    record(&mut f, b'S', b"s@example.com");
    for r in recipients {
        record(&mut f, b'R', r.as_bytes());
    }
    record(&mut f, b'M', b"");
    let at = f.len();
    record(&mut f, b'N', b"body");
    let content = f.len() - at;
    record(&mut f, b'X', b"");
    record(&mut f, b'E', b"");
    let c = format!(
        "{content:>15} {at:>15} {:>15} {:>15} {content:>15} {:>15}",
        1, 0, 0
    );
    f[2..97].copy_from_slice(c.as_bytes());
    let p = spool.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, f).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

struct Spool {
    dir: tempfile::TempDir,
    cache: Cache,
}

impl Spool {
    fn new() -> Spool {
        let dir = tempfile::tempdir().unwrap();
        for q in SCANNED.iter().chain(&[DEFER]) {
            std::fs::create_dir_all(dir.path().join(q)).unwrap();
        }
        Spool {
            dir,
            cache: Cache::new(&SCANNED),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn scan(&mut self) -> Scanned {
        let layout = Layout {
            dir: self.dir.path().to_owned(),
            hashing: Hashing::default(),
            rules: Rules::default(),
        };
        let rules = ListingRules {
            now: 1_700_003_600,
            age_thresholds: vec![60],
        };
        let later = Instant::now() + std::time::Duration::from_secs(60);
        scan(&mut self.cache, &layout, &rules, later)
    }
}

fn size(s: &Scanned, q: &str) -> (u64, u64) {
    let q = s.snapshot.get(q).unwrap();
    (q.messages, q.listing.as_ref().unwrap().recipients)
}

#[test]
fn reads_every_queue_file_and_defer_log() {
    let mut s = Spool::new();
    queue_file(
        s.dir.path(),
        "deferred/A/A1",
        0o700,
        &["a@x.example", "b@y.example"],
    );
    queue_file(s.dir.path(), "active/C1", 0o700, &["d@x.example"]);
    queue_file(s.dir.path(), "incoming/D1", 0o600, &["e@x.example"]); // being written
    std::fs::create_dir_all(s.path("defer/A")).unwrap();
    std::fs::write(
        s.path("defer/A/A1"),
        "recipient=a@x.example\nreason=Connection refused\n\n",
    )
    .unwrap();
    let got = s.scan();
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    assert_eq!(got.files_read, 3);
    assert_eq!(size(&got, "deferred"), (1, 2));
    assert_eq!(size(&got, "active"), (1, 1));
    assert_eq!(size(&got, "incoming"), (0, 0));
    let l = got
        .snapshot
        .get("deferred")
        .unwrap()
        .listing
        .as_ref()
        .unwrap();
    assert_eq!(
        l.reasons[crate::reason::Reason::ConnectionRefused.index()],
        1
    );
    assert_eq!(l.oldest_age, 3600);
}

#[test]
fn reads_only_what_changed() {
    let mut s = Spool::new();
    queue_file(
        s.dir.path(),
        "deferred/A/A1",
        0o700,
        &["a@x.example", "b@y.example"],
    );
    queue_file(s.dir.path(), "deferred/B/B1", 0o700, &["c@x.example"]);
    queue_file(s.dir.path(), "active/C1", 0o700, &["d@x.example"]);
    queue_file(s.dir.path(), "incoming/D1", 0o600, &["e@x.example"]); // being written
    std::fs::create_dir_all(s.path("defer/A")).unwrap();
    std::fs::write(
        s.path("defer/A/A1"),
        "recipient=a@x.example\nreason=Connection refused\n\n",
    )
    .unwrap();
    let first = s.scan();
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert_eq!(first.files_read, 4, "three queue files and a defer log");
    assert_eq!(size(&first, "deferred"), (2, 3));
    assert_eq!(size(&first, "active"), (1, 1));
    assert_eq!(size(&first, "incoming"), (0, 0));
    let l = first
        .snapshot
        .get("deferred")
        .unwrap()
        .listing
        .as_ref()
        .unwrap();
    assert_eq!(
        l.reasons[crate::reason::Reason::ConnectionRefused.index()],
        1
    );
    assert_eq!(l.oldest_age, 3600);
    assert_eq!(l.older_than, vec![2]);

    // Nothing changed: nothing read, the same figures.
    let again = s.scan();
    assert_eq!(again.files_read, 0);
    assert_eq!(again.snapshot, first.snapshot);

    // postsuper -h: a rename, known by its inode, not read again.
    std::fs::rename(s.path("deferred/B/B1"), s.path("hold/B1")).unwrap();
    let held = s.scan();
    assert_eq!(held.files_read, 0);
    assert_eq!(size(&held, "deferred"), (1, 2));
    assert_eq!(size(&held, "hold"), (1, 1));

    // A recipient delivered (R becomes D in place): the mtime changes, the file is read.
    let p = s.path("deferred/A/A1");
    let mut bytes = std::fs::read(&p).unwrap();
    let at = bytes
        .windows(13)
        .position(|w| w == b"R\x0bb@y.example")
        .unwrap();
    bytes[at] = b'D';
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&p, &bytes).unwrap();
    let done = s.scan();
    assert_eq!(done.files_read, 2, "the queue file and its defer log");
    assert_eq!(size(&done, "deferred"), (1, 1));

    // The active message's defer log appears (a delivery agent deferred it): read again.
    std::fs::create_dir_all(s.path("defer/C")).unwrap();
    std::fs::write(
        s.path("defer/C/C1"),
        "recipient=d@x.example\nreason=Connection timed out\n\n",
    )
    .unwrap();
    let deferred = s.scan();
    assert_eq!(deferred.files_read, 2);
    let l = deferred
        .snapshot
        .get("active")
        .unwrap()
        .listing
        .as_ref()
        .unwrap();
    assert_eq!(
        l.reasons[crate::reason::Reason::ConnectionTimeout.index()],
        1
    );

    // Finished writing (0600 -> 0700), a new message, one delivered (unlinked).
    std::fs::set_permissions(
        s.path("incoming/D1"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    queue_file(s.dir.path(), "maildrop/E1", 0o744, &["f@x.example"]);
    std::fs::remove_file(s.path("hold/B1")).unwrap();
    let moved = s.scan();
    assert_eq!(moved.files_read, 2);
    assert_eq!(size(&moved, "incoming"), (1, 1));
    assert_eq!(size(&moved, "maildrop"), (1, 1));
    assert_eq!(size(&moved, "hold"), (0, 0));
    assert_eq!(s.cache.len(), 4);
}

/// A hashed directory of deferred that has not changed for a while is not listed again: its
/// files count as they were. Any change to it (a file renamed in or out, created, removed)
/// changes its times and has it listed.
#[test]
fn a_settled_deferred_directory_is_not_listed() {
    let mut s = Spool::new();
    queue_file(s.dir.path(), "deferred/A/A1", 0o700, &["a@x.example"]);
    queue_file(s.dir.path(), "deferred/B/B1", 0o700, &["b@x.example"]);
    assert_eq!(s.scan().files_read, 2);
    assert_eq!(s.cache.kept_dirs(), 0);
    // Listed again: now older than the two seconds a change may hide in.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(s.scan().files_read, 0);
    assert_eq!(s.cache.kept_dirs(), 0);
    let kept = s.scan();
    assert_eq!(
        s.cache.kept_dirs(),
        2,
        "deferred/A and deferred/B left unlisted"
    );
    assert_eq!(kept.files_read, 0);
    assert_eq!(size(&kept, "deferred"), (2, 2));
    // A new file in A: A is listed (and B still kept).
    queue_file(s.dir.path(), "deferred/A/A2", 0o700, &["c@x.example"]);
    let changed = s.scan();
    assert_eq!(changed.files_read, 1);
    assert_eq!(s.cache.kept_dirs(), 1);
    assert_eq!(size(&changed, "deferred"), (3, 3));
    // One leaves B (delivered): counted out.
    std::fs::remove_file(s.path("deferred/B/B1")).unwrap();
    let gone = s.scan();
    assert_eq!(size(&gone, "deferred"), (2, 2));
    assert_eq!(s.cache.len(), 2);
}

#[test]
fn corrupt_counts_every_file_and_foreign_files_are_not_messages() {
    let mut s = Spool::new();
    std::fs::write(s.path("corrupt/junk"), "not a queue file").unwrap();
    std::fs::write(s.path("deferred/NOTAQUEUEFILE"), "not a queue file").unwrap();
    std::fs::set_permissions(
        s.path("deferred/NOTAQUEUEFILE"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::write(s.path("active/12345.678"), "a temporary name").unwrap();
    let got = s.scan();
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    assert_eq!(size(&got, "corrupt"), (1, 0));
    let corrupt = got
        .snapshot
        .get("corrupt")
        .unwrap()
        .listing
        .as_ref()
        .unwrap();
    assert_eq!(corrupt.bytes, 16, "the file's size");
    assert_eq!(
        size(&got, "deferred"),
        (0, 0),
        "no sender record: showq lists nothing"
    );
    assert_eq!(size(&got, "active"), (0, 0));
}

#[test]
fn a_missing_queue_is_an_error_for_it_alone() {
    let mut s = Spool::new();
    std::fs::remove_dir(s.path("hold")).unwrap();
    let got = s.scan();
    assert_eq!(got.errors.len(), 1);
    assert!(matches!(&got.errors[0], Error::Walk { queue, .. } if queue == "hold"));
    assert!(got.snapshot.get("hold").is_none());
    assert!(got.snapshot.get("deferred").is_some());
}

/// What one local user can queue: a message of 140,000 recipients, each deferred with its
/// reason in the defer log. Read whole, once, in linear time: every recipient counted once
/// (showq lists those past its duplicate filter twice), by domain and reason.
#[test]
fn a_message_of_140000_recipients() {
    fn record(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
        out.push(kind);
        let mut n = data.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { b } else { b | 0x80 });
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(data);
    }
    let n = 140_000;
    let mut file = Vec::new();
    record(&mut file, b'T', b"1700000000 0");
    record(&mut file, b'S', b"news@example.com");
    let mut log = Vec::new();
    for i in 0..n {
        // Half in 50 domains, half each in a domain of its own.
        let address = if i % 2 == 0 {
            format!("user{i}@d{}.example", i % 50)
        } else {
            format!("user{i}@own{i}.example")
        };
        record(&mut file, b'O', address.as_bytes());
        record(&mut file, b'R', address.as_bytes());
        log.extend_from_slice(
            format!(
                "\nrecipient={address}\nreason=connect to mx[192.0.2.1]:25: Connection refused\n\n"
            )
            .as_bytes(),
        );
    }
    record(&mut file, b'E', b"");
    let meta = Meta {
        size: file.len() as u64,
        mtime: 0,
        mode: 0o100700,
    };
    let started = Instant::now();
    let (summary, end) = summarize(Bytes::whole(&file), meta, Some(&log), Rules::default());
    let took = started.elapsed();
    assert_eq!(end, End::Complete);
    let total: u32 = summary.recipients.iter().map(|r| r.2).sum();
    assert_eq!(total, n);
    assert_eq!(
        summary.recipients.len(),
        25 + n as usize / 2,
        "domains, one reason"
    );
    assert!(
        summary
            .recipients
            .iter()
            .all(|r| r.1 == crate::reason::Reason::ConnectionRefused),
        "{:?}",
        &summary.recipients[..3]
    );
    assert!(took.as_secs() < 20, "{took:?}");
}
