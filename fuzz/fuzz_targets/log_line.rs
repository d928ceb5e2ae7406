//! A log line, whatever its bytes: taken apart or refused, and its delivery event (if any)
//! read, never a panic. Parsing the same text through the journal's path agrees.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfix_dogstatsd::log::{delivery, line};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(l) = line::parse(&text) {
        let _ = delivery::parse(l.text);
        let ident = format!("{}/{}", l.syslog_name, l.program);
        let again = line::from_parts(&ident, l.text).expect("a parsed identifier parses again");
        assert_eq!((again.syslog_name, again.program), (l.syslog_name, l.program));
    }
    let _ = delivery::parse(&text);
});
