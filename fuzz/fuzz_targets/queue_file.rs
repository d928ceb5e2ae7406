//! A queue file, whatever its bytes, read the way showq reads it: never a panic, never more
//! listed recipients than the file and its defer log can hold, and the same message whether
//! the content is read or skipped by the size record (unless skipping meets a hole). The
//! first byte picks the mode bits and UTF-8; the second splits the rest into the queue file
//! and a defer log.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfix_dogstatsd::collect::listing::qfile::{content_span, read, Bytes, End, Meta, Rules};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Some((&split, rest)) = rest.split_first() else { return };
    let at = (split as usize * rest.len()) / 255;
    let (file, log) = rest.split_at(at);
    let log = (flags & 1 == 1).then_some(log);
    let meta = Meta {
        size: file.len() as u64,
        mtime: 1_800_000_000,
        mode: if flags & 2 == 2 { 0o100710 } else { 0o100700 },
    };
    let rules = Rules { utf8: flags & 4 == 4, duplicate_filter_limit: (flags >> 3) as usize };
    let mut listed = 0usize;
    let whole = read(Bytes::whole(file), meta, log, rules, |a, _| {
        assert!(!a.is_empty());
        listed += 1;
    });
    assert!(!matches!(whole.end, End::Hole(_)));
    // Each record listed is at least two bytes, or one pass of a pointer loop (bounded), and
    // each defer log entry at least one line.
    let bound = 2 * (file.len() + log.map_or(0, <[u8]>::len)) * 10_001 + 1;
    assert!(listed <= bound, "{listed} recipients from {} bytes", data.len());
    if let Some((span, at)) = content_span(file) {
        let tail_at = at.saturating_add(span);
        if at <= file.len() as u64 && tail_at <= file.len() as u64 {
            let sparse =
                Bytes::sparse(&file[..at as usize], tail_at, &file[tail_at as usize..]);
            let again = read(sparse, meta, log, rules, |_, _| {});
            if !matches!(again.end, End::Hole(_)) {
                assert_eq!(again, whole);
            }
        }
    }
});
