//! The config loader: any text gives a config or a list of problems, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfix_dogstatsd::config::{parse, DatadogEnv};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse("fuzz.yaml", text, &DatadogEnv::default());
    }
});
