//! A defer log, whatever its bytes, read the way showq reads it: never a panic, every entry
//! with an address and a reason (placeholders when the log gives none), no more entries than
//! blank-line-separated blocks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfix_dogstatsd::collect::listing::defer::entries;

fuzz_target!(|data: &[u8]| {
    for utf8 in [true, false] {
        let mut n = 0;
        for e in entries(data, utf8) {
            assert!(!e.address.is_empty() && !e.reason.is_empty());
            assert!(!e.address.contains('\n') && !e.reason.contains('\n'));
            n += 1;
        }
        assert!(n <= data.iter().filter(|b| **b == b'\n').count());
    }
});
