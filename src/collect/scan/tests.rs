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
