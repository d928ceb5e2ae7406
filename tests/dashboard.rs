//! What we ship for Datadog (the dashboard and the recommended monitors in
//! `packaging/datadog/`) asks only for what we send: every `postfix.*` name is in
//! `metrics::ALL`, used as its form allows (percentiles of a distribution, `.as_count()` of a
//! count, a service check only in a check), filtered and grouped only by tags it carries; the
//! dashboard draws every name we send and keeps the stock dashboard's query; each monitor says
//! what to check and has thresholds that agree with its query.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use postfix_dogstatsd::metrics::{Form, Sent};
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/datadog");

/// The tag the Agent puts on every series and check it receives.
const AGENT_TAGS: [&str; 1] = ["host"];

/// One name in a query or a text, with what is asked of it.
#[derive(Debug, Default)]
struct Use {
    name: String,
    /// `sum`, `p95`, ... before `:name`.
    aggregator: Option<String>,
    /// Tag keys in the `{...}` filter (or a check's `.over(...)`), without `!`.
    filter: Vec<String>,
    /// `$var` items of the filter.
    variables: Vec<String>,
    /// `by {...}` (or a check's `.by(...)`).
    groups: Vec<String>,
    /// `as_count` or `as_rate` right after it.
    rollup: Option<String>,
    /// Written as a check query: `"name".over(...)`.
    check: bool,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'_'
}

/// The text of `s` up to the `close` that ends it (after an `open`), and what follows.
fn until(s: &str, close: char) -> (&str, &str) {
    let end = s
        .find(close)
        .unwrap_or_else(|| panic!("no {close} in {s:?}"));
    (&s[..end], &s[end + close.len_utf8()..])
}

fn key(item: &str) -> String {
    let item = item.trim().trim_matches('"').trim_start_matches('!');
    item.split_once(':').map_or(item, |(k, _)| k).to_owned()
}

/// Every `postfix.*` name in `text` (a query, a title, a message) and what is asked of it.
fn uses(text: &str) -> Vec<Use> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("postfix.") {
        let start = i + at;
        i = start + 1;
        // `/etc/postfix.d`, `mypostfix.x`: not ours.
        if start > 0 && (is_name_byte(bytes[start - 1]) || b"-/".contains(&bytes[start - 1])) {
            continue;
        }
        let end = bytes[start..]
            .iter()
            .position(|b| !is_name_byte(*b))
            .map_or(bytes.len(), |p| start + p);
        let name = text[start..end].trim_end_matches('.');
        let mut u = Use {
            name: name.to_owned(),
            ..Use::default()
        };
        let before = &text[..start];
        if let Some(head) = before.strip_suffix(':') {
            let word = head
                .rsplit(|c: char| !c.is_ascii_alphanumeric())
                .next()
                .unwrap();
            u.aggregator = (!word.is_empty()).then(|| word.to_owned());
        }
        let mut rest = &text[start + name.len()..];
        if before.ends_with('"') && rest.starts_with("\".") {
            u.check = true;
            rest = &rest[1..];
            while let Some(call) = rest.strip_prefix('.') {
                let (func, after) = until(call, '(');
                let (args, after) = until(after, ')');
                let args = args.split(',').map(str::trim).filter(|a| !a.is_empty());
                match func {
                    "over" | "exclude" => u
                        .filter
                        .extend(args.filter(|a| a.trim_matches('"') != "*").map(key)),
                    "by" => u.groups.extend(args.map(key)),
                    _ => {}
                }
                rest = after;
            }
        } else if let Some(filter) = rest.strip_prefix('{') {
            let (items, after) = until(filter, '}');
            for item in items.split(',').map(str::trim) {
                if let Some(var) = item.strip_prefix('$') {
                    u.variables.push(var.to_owned());
                } else if item != "*" {
                    u.filter.push(key(item));
                }
            }
            rest = after;
            if let Some(groups) = rest.trim_start().strip_prefix("by {") {
                let (keys, after) = until(groups, '}');
                u.groups = keys.split(',').map(key).collect();
                rest = after;
            }
            if let Some(call) = rest.strip_prefix('.') {
                u.rollup = call.split('(').next().map(str::to_owned);
            }
        }
        found.push(u);
    }
    found
}

/// Checks one use against what we send; `where_` says where it was found. The known
/// template variables are the file's (`$scope`); a monitor has none.
fn check_use(u: &Use, variables: &[String], where_: &str) -> &'static Sent {
    let sent = Sent::named(&u.name)
        .unwrap_or_else(|| panic!("{where_}: uses {}, which we never send", u.name));
    let is_check = sent.form == Form::ServiceCheck;
    if u.check || !u.filter.is_empty() || !u.variables.is_empty() || u.aggregator.is_some() {
        assert_eq!(
            u.check,
            is_check,
            "{where_}: {} is a {:?}, queried as {}",
            u.name,
            sent.form,
            if u.check { "a check" } else { "a metric" }
        );
    }
    if let Some(a) = &u.aggregator {
        let percentile = a.len() > 1 && a.starts_with('p') && a[1..].parse::<u8>().is_ok();
        assert!(
            !percentile || sent.form == Form::Distribution,
            "{where_}: {a}:{} asks a percentile of a {:?}",
            u.name,
            sent.form
        );
    }
    if let Some(r) = &u.rollup {
        assert!(
            r != "as_count" || sent.form == Form::Count,
            "{where_}: {}.{r}() of a {:?}",
            u.name,
            sent.form
        );
    }
    for k in u.filter.iter().chain(&u.groups) {
        assert!(
            sent.tags.contains(&k.as_str()) || AGENT_TAGS.contains(&k.as_str()),
            "{where_}: {} has no tag {k}: (it carries {:?} and {AGENT_TAGS:?})",
            u.name,
            sent.tags
        );
    }
    for v in &u.variables {
        assert!(
            variables.contains(v),
            "{where_}: ${v} is not a template variable here ({variables:?})"
        );
    }
    sent
}

/// Every string in `v`, with its JSON path.
fn strings<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((path, s)),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                strings(x, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                strings(x, format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every name in every string of the file is one we send, used as it may be.
fn check_every_string(file: &str, json: &Value, variables: &[String]) {
    let mut all = Vec::new();
    strings(json, String::new(), &mut all);
    for (path, s) in all {
        for u in uses(s) {
            check_use(&u, variables, &format!("{file}{path}"));
        }
    }
}

fn dashboard_path() -> PathBuf {
    Path::new(DIR).join("postfix-dogstatsd-dashboard.json")
}

fn monitor_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(Path::new(DIR).join("monitors"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
}

/// The names of the queries a formula may use, and the identifiers it uses.
fn check_formulas(request: &Value, where_: &str) {
    let names: Vec<&str> = request["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    let mut used = Vec::new();
    for f in request["formulas"].as_array().unwrap() {
        let formula = f["formula"].as_str().unwrap();
        for ident in formula
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic()))
        {
            assert!(
                names.contains(&ident),
                "{where_}: formula {formula:?} uses {ident}, no query of that name ({names:?})"
            );
            used.push(ident);
        }
    }
    for n in names {
        assert!(used.contains(&n), "{where_}: query {n} is in no formula");
    }
}

/// Walks the widgets, groups included, adding the names they draw to `drawn_names`.
fn drawn(widgets: &[Value], variables: &[String], drawn_names: &mut Vec<&'static str>) {
    for w in widgets {
        let d = &w["definition"];
        let title = d["title"].as_str().unwrap_or("");
        assert!(!title.is_empty(), "a widget without a title: {d}");
        let where_ = format!("widget {title:?}");
        match d["type"].as_str().unwrap() {
            "group" => drawn(d["widgets"].as_array().unwrap(), variables, drawn_names),
            "check_status" => {
                let mut u = Use {
                    name: d["check"].as_str().unwrap().to_owned(),
                    check: true,
                    groups: d["group_by"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|g| g.as_str().unwrap().to_owned())
                        .collect(),
                    ..Use::default()
                };
                for t in d["tags"].as_array().unwrap() {
                    let t = t.as_str().unwrap();
                    match t.strip_prefix('$') {
                        Some(v) => u.variables.push(v.to_owned()),
                        None => u.filter.push(key(t)),
                    }
                }
                drawn_names.push(check_use(&u, variables, &where_).name);
            }
            _ => {
                let requests = d["requests"].as_array().unwrap();
                assert!(!requests.is_empty(), "{where_}: no request");
                for r in requests {
                    let mut queries: Vec<&str> = r["q"].as_str().into_iter().collect();
                    if r.get("queries").is_some() {
                        check_formulas(r, &where_);
                        queries.extend(
                            r["queries"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|q| q["query"].as_str().unwrap()),
                        );
                    }
                    assert!(!queries.is_empty(), "{where_}: a request without a query");
                    for q in queries {
                        let found = uses(q);
                        assert!(!found.is_empty(), "{where_}: {q} draws nothing of ours");
                        for u in &found {
                            assert!(!u.check, "{where_}: a check query in a graph: {q}");
                            drawn_names.push(check_use(u, variables, &where_).name);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn dashboard_draws_every_metric_we_send_and_only_those() {
    let json = read_json(&dashboard_path());
    let variables: Vec<String> = json["template_variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    check_every_string("dashboard", &json, &variables);
    let mut names = Vec::new();
    drawn(json["widgets"].as_array().unwrap(), &variables, &mut names);
    for sent in postfix_dogstatsd::metrics::ALL {
        assert!(
            names.contains(&sent.name),
            "the dashboard does not show {}",
            sent.name
        );
    }
    let text = std::fs::read_to_string(dashboard_path()).unwrap();
    assert!(
        text.contains("\"q\": \"sum:postfix.queue.size{$scope}\""),
        "the stock query must keep working"
    );
}

/// A monitor's comparison: `... > 500`.
fn comparison(query: &str) -> (&str, f64) {
    let mut words = query.rsplitn(3, ' ');
    let value = words.next().unwrap().parse().unwrap();
    let op = words.next().unwrap();
    assert!(
        [">", ">=", "<", "<="].contains(&op),
        "{query}: no comparison at the end"
    );
    (op, value)
}

fn number(options: &Value, name: &str) -> Option<f64> {
    options["thresholds"].get(name).map(|v| v.as_f64().unwrap())
}

/// `{{key.name}}` in a monitor's name and message: each must be a key it groups by.
fn tag_variables(text: &str) -> Vec<&str> {
    text.split("{{")
        .skip(1)
        .filter_map(|s| s.split_once("}}"))
        .filter_map(|(v, _)| v.trim().strip_suffix(".name"))
        .collect()
}

#[test]
fn monitors_query_what_we_send_and_say_what_to_check() {
    let paths = monitor_paths();
    assert!(paths.len() >= 10, "{paths:?}");
    for path in paths {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(file.ends_with(".json"), "{file}: not a monitor");
        let m = read_json(&path);
        check_every_string(&file, &m, &[]);
        let field = |k: &str| {
            m[k].as_str()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| panic!("{file}: no {k}"))
        };
        let (name, kind, query, message) = (
            field("name"),
            field("type"),
            field("query"),
            field("message"),
        );
        assert!(
            message.matches('`').count() >= 2,
            "{file}: the message names no command or query to check"
        );
        let options = &m["options"];
        let critical =
            number(options, "critical").unwrap_or_else(|| panic!("{file}: no critical threshold"));
        let found = uses(query);
        assert!(!found.is_empty(), "{file}: {query} asks nothing of ours");
        let groups = &found[0].groups;
        for u in &found {
            check_use(u, &[], &file);
            assert_eq!(&u.groups, groups, "{file}: every part must group alike");
        }
        match kind {
            "service check" => {
                assert!(found.iter().all(|u| u.check), "{file}: {query}");
                let last: f64 = query
                    .split(".last(")
                    .nth(1)
                    .and_then(|s| s.split(')').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{file}: no .last(N) in {query}"));
                for status in ["ok", "warning", "critical", "unknown"] {
                    if let Some(n) = number(options, status) {
                        assert!(
                            n >= 1.0 && n <= last,
                            "{file}: {status} {n} must be within .last({last})"
                        );
                    }
                }
            }
            "query alert" | "metric alert" => {
                assert!(found.iter().all(|u| !u.check), "{file}: {query}");
                let (op, value) = comparison(query);
                assert_eq!(
                    critical, value,
                    "{file}: critical is not the query's {value}"
                );
                let above = op.starts_with('>');
                // The warning comes before the alert, each recovery before its level.
                let before = |a: f64, b: f64| if above { a < b } else { a > b };
                for (lower, upper) in [
                    ("warning", "critical"),
                    ("critical_recovery", "critical"),
                    ("warning_recovery", "warning"),
                ] {
                    if let (Some(l), Some(u)) = (number(options, lower), number(options, upper)) {
                        assert!(
                            before(l, u),
                            "{file}: {lower} {l} must come before {upper} {u} ({op})"
                        );
                    }
                }
            }
            other => panic!("{file}: type {other:?} is not a metric or service check monitor"),
        }
        for v in tag_variables(name)
            .into_iter()
            .chain(tag_variables(message))
        {
            assert!(
                groups.iter().any(|g| g == v),
                "{file}: {{{{{v}.name}}}} is not a key it groups by ({groups:?})"
            );
        }
    }
}

/// The parser sees what it must, so that the tests above can fail.
#[test]
fn the_query_reader_reads_queries() {
    let u = uses("p95:postfix.delivery.delay_stage{$scope,!queue:x} by {stage,host}.as_count()");
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].aggregator.as_deref(), Some("p95"));
    assert_eq!(
        (u[0].filter.clone(), u[0].variables.clone()),
        (vec!["queue".to_owned()], vec!["scope".to_owned()])
    );
    assert_eq!(u[0].groups, ["stage", "host"]);
    assert_eq!(u[0].rollup.as_deref(), Some("as_count"));
    let c = uses("\"postfix.can_collect\".over(\"env:x\").by(\"host\",\"instance\").last(3).count_by_status()");
    assert!(c[0].check);
    assert_eq!(
        (c[0].filter.clone(), c[0].groups.clone()),
        (
            vec!["env".to_owned()],
            vec!["host".to_owned(), "instance".to_owned()]
        )
    );
    let text =
        uses("see `postfix.queue.size{queue:deferred}`, not /etc/postfix.d or postfix-dogstatsd.");
    assert_eq!(text.len(), 1);
    let bad = |q: &str| {
        let u = uses(q);
        std::panic::catch_unwind(|| check_use(&u[0], &[], "t")).is_err()
    };
    assert!(bad("sum:postfix.queue.sizes{*}"));
    assert!(bad("sum:postfix.log.lag{*} by {instance}"));
    assert!(bad("p95:postfix.queue.size{*}"));
    assert!(bad("sum:postfix.queue.size{*}.as_count()"));
    assert!(bad("sum:postfix.queue.size{$nope}"));
    assert!(bad("avg:postfix.can_collect{*}"));
    assert!(bad(
        "\"postfix.queue.size\".over(\"*\").last(1).count_by_status()"
    ));
    assert!(!bad(
        "sum:postfix.smtpd.rejects{reason:rbl} by {host,stage}.as_count()"
    ));
}
