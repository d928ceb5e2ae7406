//! A line of `journalctl --output=json`, whatever its bytes: an entry or refused, never a
//! panic; an entry's fields go through the log line path the daemon feeds them to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfix_dogstatsd::log::source::journal;
use postfix_dogstatsd::log::{delivery, line};

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = journal::entry(data) {
        if let (Some(ident), Some(text)) = (&e.identifier, &e.message) {
            if let Ok(l) = line::from_parts(ident, text) {
                let _ = delivery::parse(l.text);
            }
        }
    }
});
