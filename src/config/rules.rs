//! The value rules of the config, on top of the YAML walker: tags DogStatsD can carry, user
//! names sudo accepts, Postfix queue names, regexes, command paths, ages and `top_domains`.

use serde_yaml::Value;

use super::yaml::{keys, Keys, Node, Walker};
use super::{MetricPatterns, DEFAULT_AGE_THRESHOLDS};
use crate::collect::Commands;
use crate::spelling::did_you_mean;

/// Postfix's queue directories (mail queues and per-message logs), the names `queues` may use.
pub const KNOWN_QUEUES: &[&str] = &[
    "incoming", "active", "deferred", "hold", "maildrop", "corrupt", "bounce", "defer", "trace",
    "flush", "saved",
];
/// The Datadog base class renames these tags to `postfix_<name>` under `disable_generic_tags`.
const GENERIC_TAGS: &[&str] = &[
    "cluster_name",
    "clustername",
    "cluster",
    "clusterid",
    "cluster_id",
    "env",
    "host_name",
    "hostname",
    "host",
    "service",
    "version",
];
/// `top_domains` at most: each is a series per queue.
const MAX_TOP_DOMAINS: u64 = 1000;

keys! {
    /// `commands:`, top level or per instance.
    CommandKey {
        Postqueue = "postqueue",
        Postconf = "postconf",
        Sudo = "sudo",
        Find = "find",
        Postmulti = "postmulti",
        Journalctl = "journalctl",
    }
}

keys! {
    /// `metric_patterns:`.
    PatternKey {
        Include = "include",
        Exclude = "exclude",
    }
}

impl Walker {
    /// A list of `key:value` or bare tags that can go on the wire as they are.
    pub fn tags<K: Keys>(&mut self, n: &Node<K>, key: K) -> Vec<String> {
        let mut out = Vec::new();
        for (item_path, tag) in self.string_list(n, key) {
            if self.wire_safe(&tag, &item_path) {
                out.push(tag);
            }
        }
        out
    }

    /// A single tag value (`service`).
    pub fn tag_value<K: Keys>(&mut self, n: &Node<K>, key: K) -> Option<String> {
        self.string(n, key)
            .filter(|s| self.wire_safe(s, &n.at(key)))
    }

    /// DogStatsD separates tags with `,` and fields with `|`, and lines with newlines.
    fn wire_safe(&mut self, s: &str, path: &str) -> bool {
        match crate::tag::problem(s) {
            None => true,
            Some(problem) => {
                let hint = if s.is_empty() {
                    "remove it"
                } else {
                    "use another separator, e.g. `_`"
                };
                self.error(path, format!("tag {s:?} {problem}"), Some(hint));
                false
            }
        }
    }

    /// A user name sudo takes as one: a leading `-` would be an option, `#` a numeric uid.
    pub fn user_name<K: Keys>(&mut self, n: &Node<K>, key: K) -> Option<String> {
        let user = self.string(n, key)?;
        if user.is_empty()
            || user.starts_with('-')
            || user.starts_with('#')
            || user.contains(|c: char| c.is_whitespace() || c == '\0')
        {
            self.error(
                &n.at(key),
                format!("{user:?} is not a user name"),
                Some("e.g. postfix"),
            );
            return None;
        }
        Some(user)
    }

    /// `commands:` over `base`: each one an absolute path.
    pub fn commands<K: Keys>(&mut self, parent: &Node<K>, key: K, base: &Commands) -> Commands {
        let n: Node<CommandKey> = self.child(parent, key);
        let mut out = base.clone();
        for (key, slot) in [
            (CommandKey::Postqueue, &mut out.postqueue),
            (CommandKey::Postconf, &mut out.postconf),
            (CommandKey::Sudo, &mut out.sudo),
            (CommandKey::Find, &mut out.find),
            (CommandKey::Postmulti, &mut out.postmulti),
            (CommandKey::Journalctl, &mut out.journalctl),
        ] {
            if let Some(abs) = self.abs_path_at(&n, key) {
                *slot = abs;
            }
        }
        out
    }

    /// `metric_patterns: {include: [...], exclude: [...]}`, compiled.
    pub fn patterns<K: Keys>(&mut self, parent: &Node<K>, key: K) -> MetricPatterns {
        let n: Node<PatternKey> = self.child(parent, key);
        MetricPatterns {
            include: self.regexes(&n, PatternKey::Include),
            exclude: self.regexes(&n, PatternKey::Exclude),
        }
    }

    fn regexes(&mut self, n: &Node<PatternKey>, key: PatternKey) -> Vec<regex::Regex> {
        let mut out = Vec::new();
        for (item_path, pattern) in self.string_list(n, key) {
            match regex::Regex::new(&pattern) {
                Ok(r) => out.push(r),
                Err(e) => {
                    // regex's syntax errors draw a caret over several lines; the last says why.
                    let text = e.to_string();
                    let why = text
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("");
                    let why = why.trim().trim_start_matches("error: ");
                    self.error(
                        &item_path,
                        format!("{pattern:?} is not a valid regular expression: {why}"),
                        None,
                    );
                }
            }
        }
        out
    }

    /// Postfix queue names, each once.
    pub fn queues<K: Keys>(&mut self, n: &Node<K>, key: K) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (item_path, q) in self.string_list(n, key) {
            if q.is_empty()
                || !q
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                self.error(
                    &item_path,
                    format!("{q:?} is not a queue name"),
                    Some("a queue is one directory name of letters, digits, `_` and `-`, e.g. deferred"),
                );
            } else if !KNOWN_QUEUES.contains(&q.as_str()) {
                let hint = match did_you_mean(&q, KNOWN_QUEUES) {
                    Some(s) => format!("did you mean {s:?}?"),
                    None => format!("Postfix's queues are {}", KNOWN_QUEUES.join(", ")),
                };
                self.error(&item_path, format!("unknown queue {q:?}"), Some(&hint));
            } else if out.contains(&q) {
                self.error(
                    &item_path,
                    format!("queue {q:?} is listed twice"),
                    Some("remove one"),
                );
            } else {
                out.push(q);
            }
        }
        out
    }

    /// `age_thresholds: [5m, 1h, 90s, 3600]`: sorted, each with its canonical label.
    pub fn age_thresholds<K: Keys>(&mut self, n: &Node<K>, key: K) -> Vec<(u64, String)> {
        let Some(list) = self.list(n, key) else {
            return DEFAULT_AGE_THRESHOLDS
                .iter()
                .map(|s| (*s, age_label(*s)))
                .collect();
        };
        let mut out: Vec<(u64, String)> = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let item_path = format!("{}[{i}]", n.at(key));
            let secs = match item {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => parse_age(s),
                _ => None,
            };
            match secs {
                Some(secs) if secs > 0 => {
                    if out.iter().any(|(s, _)| *s == secs) {
                        self.error(
                            &item_path,
                            format!("{} is listed twice", age_label(secs)),
                            Some("remove one"),
                        );
                    } else {
                        out.push((secs, age_label(secs)));
                    }
                }
                _ => self.error(
                    &item_path,
                    "not an age",
                    Some(
                        "write a number with a unit: s, m, h, d or w, e.g. 5m, 1h, 3d; or seconds",
                    ),
                ),
            }
        }
        out.sort_unstable();
        out
    }

    /// A number of top domains, `default` when absent.
    pub fn top_domains<K: Keys>(&mut self, n: &Node<K>, key: K, default: usize) -> usize {
        match n.get(key) {
            None => default,
            Some(Value::Number(v)) if v.as_u64().is_some_and(|v| v <= MAX_TOP_DOMAINS) => {
                v.as_u64().map_or(default, |v| v as usize)
            }
            Some(_) => {
                self.error(
                    &n.at(key),
                    format!("must be a whole number from 0 to {MAX_TOP_DOMAINS}"),
                    Some(&format!("0 turns the domain series off; default {default}")),
                );
                default
            }
        }
    }
}

/// `90s`, `5m`, `1h`, `3d`, `2w` -> seconds.
pub fn parse_age(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The largest whole unit: 300 -> `5m`, 5400 -> `90m`, 86400 -> `1d`.
pub fn age_label(secs: u64) -> String {
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs % size == 0 {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// `env:prod` -> `postfix_env:prod` for the tag names the Datadog base class calls generic.
pub fn degeneralise(tag: &str) -> String {
    let name = tag.split_once(':').map_or(tag, |(n, _)| n);
    if GENERIC_TAGS.contains(&name) {
        format!("postfix_{tag}")
    } else {
        tag.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("5m"), Some(300));
        assert_eq!(parse_age("90"), Some(90));
        assert_eq!(parse_age("1d"), Some(86_400));
        assert_eq!(parse_age("1x"), None);
        assert_eq!(parse_age("h"), None);
        assert_eq!(age_label(300), "5m");
        assert_eq!(age_label(5400), "90m");
        assert_eq!(age_label(90), "90s");
        assert_eq!(age_label(604_800), "1w");
    }

    #[test]
    fn generic_tags_are_renamed() {
        assert_eq!(degeneralise("env:prod"), "postfix_env:prod");
        assert_eq!(degeneralise("host"), "postfix_host");
        assert_eq!(degeneralise("team:mail"), "team:mail");
    }
}
