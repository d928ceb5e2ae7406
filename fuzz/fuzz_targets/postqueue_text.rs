//! `postqueue -p` output: fed whole and fed in fuzzed pieces, it gives the same
//! result (the parser streams: where a read ends must not matter), and never panics.
#![no_main]

#[path = "common/streaming.rs"]
mod streaming;

use libfuzzer_sys::fuzz_target;
use postfix_dogstatsd::collect::listing::text::Parser;

fuzz_target!(|data: &[u8]| {
    streaming::same_whole_and_in_pieces(|| Parser::new(), data);
});
