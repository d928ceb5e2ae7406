//! `postqueue -j` output, fed in two chunks split at a fuzzed point (the parser streams).
//! Under cargo fuzz (`cfg(fuzzing)`) `listing::MAX_MESSAGE` is 4 KiB, so inputs within
//! `-max_len` reach the truncating path of messages past the bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfix_dogstatsd::collect::listing::json::Parser;
use postfix_dogstatsd::snapshot::ListingRules;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let rules = ListingRules { now: 1_800_000_000, age_thresholds: vec![300, 3600] };
    let mut p = Parser::new(rules);
    if p.feed(&data[..split]).is_ok() && p.feed(&data[split..]).is_ok() {
        let _ = p.finish();
    }
});
