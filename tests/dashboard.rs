//! The Datadog dashboard we ship draws only series we send, and keeps the stock dashboard's
//! query working.
#![allow(clippy::unwrap_used)]

use postfix_dogstatsd::metrics;

/// The log families counted since issue #13 whose widgets are still to be drawn (the
/// dashboard part of that issue); each must leave this list when the dashboard shows it.
const NOT_YET_DRAWN: [&str; 13] = [
    metrics::DELIVERY_DELAY_STAGE,
    metrics::MESSAGES_RECEIVED,
    metrics::MESSAGES_SIZE,
    metrics::SMTPD_CONNECTIONS,
    metrics::SMTPD_LOST_CONNECTIONS,
    metrics::SMTPD_TIMEOUTS,
    metrics::SMTPD_REJECTS,
    metrics::SMTPD_AUTH_FAILURES,
    metrics::CLEANUP_ACTIONS,
    metrics::BOUNCE_NOTIFICATIONS,
    metrics::TLS_CONNECTIONS,
    metrics::POSTSCREEN_EVENTS,
    metrics::LOG_WARNINGS,
];

#[test]
fn dashboard_uses_only_metrics_we_emit() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/packaging/datadog/postfix-dogstatsd-dashboard.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(json["widgets"].as_array().is_some_and(|w| !w.is_empty()));
    // Every `postfix.<...>` name anywhere in the file.
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("postfix.") {
        let start = i + at;
        let end = bytes[start..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'.' || *b == b'_'))
            .map_or(bytes.len(), |p| start + p);
        names.push(text[start..end].trim_end_matches('.').to_owned());
        i = end;
    }
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        assert!(
            metrics::Sent::named(name).is_some(),
            "the dashboard uses {name}, which we never send"
        );
    }
    for name in metrics::ALL.map(|s| s.name) {
        if NOT_YET_DRAWN.contains(&name) {
            assert!(
                !names.iter().any(|n| n == name),
                "the dashboard shows {name} now: take it off NOT_YET_DRAWN"
            );
            continue;
        }
        assert!(
            names.iter().any(|n| n == name),
            "the dashboard does not show {name}"
        );
    }
    assert!(
        text.contains("sum:postfix.queue.size{$scope}"),
        "the stock query must keep working"
    );
}
