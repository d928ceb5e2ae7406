//! The showq attribute stream: fed whole and fed in fuzzed pieces, it gives the same
//! result (the parser streams: where a read ends must not matter), and never panics.
//! Under cargo fuzz (`cfg(fuzzing)`) `listing::MAX_MESSAGE` is 4 KiB, so inputs within
//! `-max_len` reach the truncating path of messages past the bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfix_dogstatsd::collect::listing::attr::Parser;
use postfix_dogstatsd::collect::listing::ParseError;
use postfix_dogstatsd::snapshot::{ListingRules, Snapshot};

#[allow(dead_code)]
fn rules() -> ListingRules {
    ListingRules { now: 1_800_000_000, age_thresholds: vec![300, 3600] }
}

/// Feeds `input` in pieces of the given sizes (the rest in one piece), then finishes.
fn parse(input: &[u8], sizes: &[u8]) -> Result<Snapshot, ParseError> {
    let mut p = Parser::new(rules());
    let mut rest = input;
    for &n in sizes {
        let n = (n as usize).min(rest.len());
        p.feed(&rest[..n])?;
        rest = &rest[n..];
    }
    p.feed(rest)?;
    p.finish()
}

fuzz_target!(|data: &[u8]| {
    // The first byte says how many of the next bytes are piece sizes.
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (n as usize % 16).min(rest.len());
    let (sizes, input) = rest.split_at(n);
    assert_eq!(parse(input, &[]), parse(input, sizes));
});
