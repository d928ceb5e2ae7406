//! A log line, whatever its bytes, through the syslog prefix and every family parser: each
//! returns an event or nothing, never a panic. The text alone is also tried under every
//! program name, so a family sees texts that no real prefix would carry to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfix_dogstatsd::log::{cleanup, delivery, line, postscreen, queue, severity, smtpd, tls};

const PROGRAMS: [&str; 9] = [
    "smtpd",
    "postscreen",
    "smtp",
    "lmtp",
    "tlsproxy",
    "cleanup",
    "pickup",
    "qmgr",
    "bounce",
];

fn families(program: &str, text: &str) {
    let _ = smtpd::parse(program, text);
    let _ = postscreen::parse(program, text);
    let _ = tls::parse(program, text);
    let _ = cleanup::parse(program, text);
    let _ = queue::parse(program, text);
    let _ = severity::parse(text);
    let _ = smtpd::classify(text);
    if let Some(delivery::Event::Delivery(d)) = delivery::parse(text) {
        if let Some(delays) = d.delays {
            assert!(delays.iter().all(|s| s.is_finite() && *s >= 0.0));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(l) = line::parse(&text) {
        families(l.program, l.text);
    }
    for program in PROGRAMS {
        families(program, &text);
    }
});
