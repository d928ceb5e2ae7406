//! The showq attribute stream: fed whole and fed in fuzzed pieces, it gives the same
//! result (the parser streams: where a read ends must not matter), and never panics.
//! Under cargo fuzz (`cfg(fuzzing)`) `listing::MAX_MESSAGE` is 4 KiB, so inputs within
//! `-max_len` reach the truncating path of messages past the bound.
#![no_main]

#[path = "common/streaming.rs"]
mod streaming;

use libfuzzer_sys::fuzz_target;
use postfix_dogstatsd::collect::listing::attr::Parser;

fuzz_target!(|data: &[u8]| {
    streaming::same_whole_and_in_pieces(|| Parser::new(streaming::rules()), data);
});
