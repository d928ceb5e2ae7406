//! `postqueue -p` output, fed in two chunks split at a fuzzed point (the parser streams).
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfix_dogstatsd::collect::listing::text::Parser;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| *b as usize % (data.len() + 1));
    let mut p = Parser::new();
    if p.feed(&data[..split]).is_ok() && p.feed(&data[split..]).is_ok() {
        let _ = p.finish();
    }
});
