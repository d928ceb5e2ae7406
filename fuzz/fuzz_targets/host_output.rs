//! What the host's programs print, and what goes on the wire from it: `postconf` output,
//! `postmulti -l` lines, and a service check with any message and tags. Never a panic, and a
//! service check is always one line within a UDP datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postfix_dogstatsd::dogstatsd::{service_check_line, UDP_PAYLOAD};
use postfix_dogstatsd::metrics::{ServiceCheck, Status};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = postfix_dogstatsd::discover::parse_line(line);
    }
    let found: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let _ = postfix_dogstatsd::postconf::parse("postconf", &found);
    let tag = postfix_dogstatsd::tag::sanitize(&text).into_owned();
    let check = ServiceCheck {
        name: "postfix.can_collect",
        status: Status::Critical,
        tags: vec![format!("instance:{tag}")],
        message: Some(text.into_owned()),
    };
    let line = service_check_line(&check);
    assert!(!line.contains('\n'), "{line:?}");
    // The message is cut to fit; the tag is not, so only a short one is held to the limit.
    if tag.len() < 200 {
        assert!(line.len() <= UDP_PAYLOAD, "{}", line.len());
    }
});
