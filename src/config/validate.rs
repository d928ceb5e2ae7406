//! Checks the YAML tree key by key and builds the typed `Config`, collecting every problem with
//! its path instead of stopping at the first.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::env::{self, EnvTarget};
use super::{
    Commands, Config, ConfigError, Instance, MethodConfig, MetricPatterns, DEFAULT_AGE_THRESHOLDS,
    DEFAULT_CONFIG_DIRECTORY, DEFAULT_INTERVAL, DEFAULT_POSTFIX_USER, DEFAULT_TOP_DOMAINS,
    MAX_DEFAULT_TIMEOUT,
};
use crate::collect::{auto, find, postqueue, scan, showq};

const TOP_KEYS: &[&str] = &["init_config", "instances", "logs", "dogstatsd", "commands"];
const INIT_KEYS: &[&str] = &["postfix_user", "postqueue", "service"];
const INSTANCE_KEYS: &[&str] = &[
    "directory",
    "queues",
    "config_directory",
    "tags",
    "service",
    "min_collection_interval",
    "empty_default_hostname",
    "metric_patterns",
    "disable_generic_tags",
    "method",
    "timeout",
    "commands",
    "age_thresholds",
    "top_domains",
    "queue_directory",
    "discover",
];
/// Keys only methods that list messages read.
const LISTING_KEYS: &[&str] = &["age_thresholds", "top_domains"];
/// `top_domains` at most: each is a series per queue.
const MAX_TOP_DOMAINS: u64 = 1000;
const DOGSTATSD_KEYS: &[&str] = &["url", "tags"];
const COMMAND_KEYS: &[&str] = &["postqueue", "postconf", "sudo", "find", "postmulti"];
const PATTERN_KEYS: &[&str] = &["include", "exclude"];
const METHODS: &[&str] = &["postqueue", "find", "showq", "scan", "auto"];
/// Methods that list messages and so fill the rich metrics.
const LISTING_METHODS: &[&str] = &["postqueue", "showq", "auto"];
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
/// Longest timeout or interval we accept: a day.
const MAX_SECONDS: f64 = 86_400.0;

pub fn validate(tree: &Value, env: &EnvTarget) -> Result<Config, Vec<ConfigError>> {
    let mut v = Validator::default();
    let mut notes = Vec::new();
    let top = match tree {
        Value::Mapping(m) => {
            v.keys(m, "", TOP_KEYS);
            Some(m)
        }
        Value::Null => {
            v.error(
                "(document)",
                "the file is empty",
                Some("it needs at least `instances:` with one instance"),
            );
            return Err(v.errors);
        }
        other => {
            v.error(
                "(document)",
                format!(
                    "expected a mapping with `init_config` and `instances`, found {}",
                    kind(other)
                ),
                None,
            );
            None
        }
    };
    let empty = Mapping::new();
    let top = top.unwrap_or(&empty);

    // init_config
    let init = v.mapping(top, "init_config", "init_config", INIT_KEYS);
    let postfix_user = v
        .string(init, "postfix_user", "init_config.postfix_user")
        .filter(|u| v.user_name(u, "init_config.postfix_user"))
        .unwrap_or_else(|| DEFAULT_POSTFIX_USER.to_owned());
    let use_postqueue = v
        .bool(init, "postqueue", "init_config.postqueue")
        .unwrap_or(false);
    let init_service = v.tag_value(init, "service", "init_config.service");

    if top.contains_key("logs") {
        notes.push(
            "the `logs:` section configures the Datadog Agent's log shipping; it is ignored here"
                .to_owned(),
        );
    }

    // dogstatsd
    let dsd = v.mapping(top, "dogstatsd", "dogstatsd", DOGSTATSD_KEYS);
    let file_target = v.string(dsd, "url", "dogstatsd.url").and_then(|url| {
        env::parse_url(&url)
            .map_err(|(problem, hint)| v.error("dogstatsd.url", problem, Some(&hint)))
            .ok()
    });
    let mut global_tags = v.tags(dsd, "tags", "dogstatsd.tags");

    // commands
    let defaults = Commands::default();
    let commands = v.commands(top, "commands", "commands", &defaults);

    // instances
    let mut instances = Vec::new();
    match top.get("instances") {
        None | Some(Value::Null) => v.error(
            "instances",
            "missing",
            Some("add at least one instance, e.g. `instances: [{config_directory: /etc/postfix}]`"),
        ),
        Some(Value::Sequence(list)) if list.is_empty() => v.error(
            "instances",
            "the list is empty",
            Some("add at least one instance"),
        ),
        Some(Value::Sequence(list)) => {
            for (i, item) in list.iter().enumerate() {
                let path = format!("instances[{i}]");
                let Value::Mapping(m) = item else {
                    v.error(
                        &path,
                        format!("expected a mapping, found {}", kind(item)),
                        None,
                    );
                    continue;
                };
                let ctx = InstanceContext {
                    postfix_user: &postfix_user,
                    use_postqueue,
                    init_service: init_service.as_deref(),
                    commands: &commands,
                };
                if let Some(instance) = v.instance(m, &path, &ctx, &mut notes) {
                    instances.push(instance);
                }
            }
        }
        Some(other) => v.error(
            "instances",
            format!("expected a list, found {}", kind(other)),
            Some("write each instance as a `- ` item"),
        ),
    }

    let (target, env_tags) = env::resolve(file_target, env, &mut v.errors);
    global_tags.extend(env_tags);

    if v.errors.is_empty() {
        return Ok(Config {
            source: String::new(),
            target,
            global_tags,
            instances,
            notes,
        });
    }
    // In file order as far as a path tells it: instances by number, keys by name.
    v.errors.sort_by_cached_key(|e| natural_key(&e.path));
    Err(v.errors)
}

/// `instances[10].tags[2]` sorts after `instances[9]`: numbers compare as numbers.
fn natural_key(path: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut n = u64::from(c as u8 - b'0');
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(u64::from(d));
                chars.next();
            }
            key.push((std::mem::take(&mut text), n));
        } else {
            text.push(c);
        }
    }
    key.push((text, 0));
    key
}

struct InstanceContext<'a> {
    postfix_user: &'a str,
    use_postqueue: bool,
    init_service: Option<&'a str>,
    commands: &'a Commands,
}

#[derive(Default)]
struct Validator {
    errors: Vec<ConfigError>,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Validator {
    fn error(&mut self, path: &str, problem: impl Into<String>, hint: Option<&str>) {
        self.errors.push(ConfigError {
            path: path.to_owned(),
            problem: problem.into(),
            hint: hint.map(str::to_owned),
        });
    }

    /// Reports keys of `m` not in `known`; true when there were none.
    fn keys(&mut self, m: &Mapping, path: &str, known: &[&str]) -> bool {
        let mut ok = true;
        for key in m.keys() {
            match key {
                Value::String(k) if known.contains(&k.as_str()) => {}
                Value::String(k) => {
                    ok = false;
                    let hint = match did_you_mean(k, known) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("known keys: {}", known.join(", ")),
                    };
                    self.error(&join(path, k), "unknown key", Some(&hint));
                }
                other => {
                    ok = false;
                    self.error(
                        path,
                        format!("a key must be a string, found {}", kind(other)),
                        None,
                    );
                }
            }
        }
        ok
    }

    /// The mapping at `m[key]`, checked against `known`; an absent or empty one is `None`.
    fn mapping<'a>(
        &mut self,
        m: &'a Mapping,
        key: &str,
        path: &str,
        known: &[&str],
    ) -> Option<&'a Mapping> {
        match m.get(key)? {
            Value::Null => None,
            Value::Mapping(inner) => {
                self.keys(inner, path, known);
                Some(inner)
            }
            other => {
                self.error(
                    path,
                    format!("expected a mapping, found {}", kind(other)),
                    None,
                );
                None
            }
        }
    }

    fn string(&mut self, m: Option<&Mapping>, key: &str, path: &str) -> Option<String> {
        match m?.get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => {
                self.error(
                    path,
                    format!("expected a string, found {}", kind(other)),
                    None,
                );
                None
            }
        }
    }

    fn bool(&mut self, m: Option<&Mapping>, key: &str, path: &str) -> Option<bool> {
        match m?.get(key)? {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            other => {
                self.error(
                    path,
                    format!("expected true or false, found {}", kind(other)),
                    None,
                );
                None
            }
        }
    }

    /// A positive number of seconds (integer or fraction).
    fn seconds(&mut self, m: &Mapping, key: &str, path: &str) -> Option<Duration> {
        let n = match m.get(key)? {
            Value::Null => return None,
            Value::Number(n) => n.as_f64(),
            other => {
                self.error(
                    path,
                    format!("expected a number of seconds, found {}", kind(other)),
                    None,
                );
                return None;
            }
        };
        match n {
            Some(s) if s > 0.0 && s <= MAX_SECONDS => Some(Duration::from_secs_f64(s)),
            _ => {
                self.error(
                    path,
                    format!("must be more than 0 and at most {MAX_SECONDS} seconds"),
                    Some("e.g. 15"),
                );
                None
            }
        }
    }

    fn list<'a>(&mut self, m: Option<&'a Mapping>, key: &str, path: &str) -> Option<&'a [Value]> {
        match m?.get(key)? {
            Value::Null => None,
            Value::Sequence(s) => Some(s),
            other => {
                self.error(
                    path,
                    format!("expected a list, found {}", kind(other)),
                    Some("write each entry as a `- ` item"),
                );
                None
            }
        }
    }

    fn string_list(&mut self, m: Option<&Mapping>, key: &str, path: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, item) in self
            .list(m, key, path)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let item_path = format!("{path}[{i}]");
            match item {
                Value::String(s) => out.push((item_path, s.clone())),
                other => self.error(
                    &item_path,
                    format!("expected a string, found {}", kind(other)),
                    None,
                ),
            }
        }
        out
    }

    /// A list of `key:value` or bare tags that can go on the wire as they are.
    fn tags(&mut self, m: Option<&Mapping>, key: &str, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (item_path, tag) in self.string_list(m, key, path) {
            if self.wire_safe(&tag, &item_path) {
                out.push(tag);
            }
        }
        out
    }

    /// A single tag value (`service`).
    fn tag_value(&mut self, m: Option<&Mapping>, key: &str, path: &str) -> Option<String> {
        self.string(m, key, path)
            .filter(|s| self.wire_safe(s, path))
    }

    /// DogStatsD separates tags with `,` and fields with `|`, and lines with newlines.
    fn wire_safe(&mut self, s: &str, path: &str) -> bool {
        if s.is_empty() {
            self.error(path, "empty tag", Some("remove it"));
            false
        } else if s.contains([',', '|', '\n', '\r', '\0']) {
            self.error(
                path,
                format!("{s:?} contains `,`, `|` or a line break, which DogStatsD cannot carry"),
                Some("use another separator, e.g. `_`"),
            );
            false
        } else {
            true
        }
    }

    fn user_name(&mut self, user: &str, path: &str) -> bool {
        // sudo reads a leading `-` as an option and `#` as a numeric uid.
        if user.is_empty()
            || user.starts_with('-')
            || user.contains(|c: char| c.is_whitespace() || c == '\0')
        {
            self.error(
                path,
                format!("{user:?} is not a user name"),
                Some("e.g. postfix"),
            );
            false
        } else {
            true
        }
    }

    /// An absolute path without `..`, normalised (no trailing slash, no `.` parts).
    fn abs_path(&mut self, s: &str, path: &str) -> Option<PathBuf> {
        let p = Path::new(s);
        if !p.is_absolute() {
            self.error(
                path,
                format!("{s:?} is not an absolute path"),
                Some("write the full path, starting with `/`"),
            );
            return None;
        }
        if s.contains('\0') || p.components().any(|c| c == Component::ParentDir) {
            self.error(
                path,
                format!("{s:?} may not contain `..`"),
                Some("write the path out in full"),
            );
            return None;
        }
        Some(p.components().collect())
    }

    fn commands(&mut self, m: &Mapping, key: &str, path: &str, base: &Commands) -> Commands {
        let inner = self.mapping(m, key, path, COMMAND_KEYS);
        let mut out = base.clone();
        for (name, slot) in [
            ("postqueue", &mut out.postqueue),
            ("postconf", &mut out.postconf),
            ("sudo", &mut out.sudo),
            ("find", &mut out.find),
            ("postmulti", &mut out.postmulti),
        ] {
            let p = join(path, name);
            if let Some(s) = self.string(inner, name, &p) {
                if let Some(abs) = self.abs_path(&s, &p) {
                    *slot = abs;
                }
            }
        }
        out
    }

    fn patterns(&mut self, m: &Mapping, path: &str) -> MetricPatterns {
        let inner = self.mapping(
            m,
            "metric_patterns",
            &join(path, "metric_patterns"),
            PATTERN_KEYS,
        );
        let compile = |v: &mut Self, key: &str| {
            let mut out = Vec::new();
            for (item_path, pattern) in
                v.string_list(inner, key, &join(&join(path, "metric_patterns"), key))
            {
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
                        v.error(
                            &item_path,
                            format!("{pattern:?} is not a valid regular expression: {why}"),
                            None,
                        );
                    }
                }
            }
            out
        };
        MetricPatterns {
            include: compile(self, "include"),
            exclude: compile(self, "exclude"),
        }
    }

    fn queues(&mut self, m: &Mapping, path: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (item_path, q) in self.string_list(Some(m), "queues", &join(path, "queues")) {
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

    fn instance(
        &mut self,
        m: &Mapping,
        path: &str,
        ctx: &InstanceContext,
        notes: &mut Vec<String>,
    ) -> Option<Instance> {
        let before = self.errors.len();
        self.keys(m, path, INSTANCE_KEYS);
        let p = |key: &str| join(path, key);

        let explicit = self.string(Some(m), "method", &p("method"));
        let method = match explicit.as_deref() {
            Some(name) if METHODS.contains(&name) => name.to_owned(),
            Some(name) => {
                let hint = match did_you_mean(name, METHODS) {
                    Some(s) => format!("did you mean {s:?}?"),
                    None => format!("methods are {}", METHODS.join(", ")),
                };
                self.error(
                    &p("method"),
                    format!("unknown method {name:?}"),
                    Some(&hint),
                );
                return None;
            }
            None if ctx.use_postqueue => "postqueue".to_owned(),
            None => "find".to_owned(),
        };

        let interval = self
            .seconds(m, "min_collection_interval", &p("min_collection_interval"))
            .unwrap_or(DEFAULT_INTERVAL);
        let timeout = self
            .seconds(m, "timeout", &p("timeout"))
            .unwrap_or_else(|| interval.min(MAX_DEFAULT_TIMEOUT));
        let tags_raw = self.tags(Some(m), "tags", &p("tags"));
        let service = self
            .tag_value(Some(m), "service", &p("service"))
            .or_else(|| ctx.init_service.map(str::to_owned));
        let empty_default_hostname = self
            .bool(
                Some(m),
                "empty_default_hostname",
                &p("empty_default_hostname"),
            )
            .unwrap_or(false);
        let disable_generic_tags = self
            .bool(Some(m), "disable_generic_tags", &p("disable_generic_tags"))
            .unwrap_or(false);
        let patterns = self.patterns(m, path);
        let age_thresholds = self.age_thresholds(m, &p("age_thresholds"));
        let top_domains = self.top_domains(m, &p("top_domains"));
        let commands = self.commands(m, "commands", &p("commands"), ctx.commands);

        let discover = match self.string(Some(m), "discover", &p("discover")).as_deref() {
            None => None,
            Some("postmulti") => {
                if method == "find" {
                    self.error(
                        &p("discover"),
                        "method find cannot follow discovered instances",
                        Some("set `method:` to postqueue, showq, scan or auto"),
                    );
                }
                if m.get("config_directory").is_some_and(|v| !v.is_null()) {
                    self.error(
                        &p("config_directory"),
                        "comes from postmulti with `discover: postmulti`",
                        Some("remove it"),
                    );
                }
                Some(commands.postmulti.clone())
            }
            Some(other) => {
                self.error(
                    &p("discover"),
                    format!("unknown discovery {other:?}"),
                    Some("the only one is `postmulti`"),
                );
                None
            }
        };
        let directory = self.string(Some(m), "directory", &p("directory"));
        let has_queues = m.get("queues").is_some_and(|v| !v.is_null());
        let config_directory = self.string(Some(m), "config_directory", &p("config_directory"));

        let (method, instance_tag) = if method == "find" {
            if explicit.is_some() && config_directory.is_some() {
                self.error(
                    &p("config_directory"),
                    "method find does not read config_directory; it counts the files under `directory`",
                    Some("remove it, or use a method that asks Postfix: postqueue, showq, scan or auto"),
                );
            }
            self.not_for(m, path, "find", &["queue_directory"]);
            self.not_for(m, path, "find", LISTING_KEYS);
            let queues = self.queues(m, path);
            if !has_queues {
                self.error(
                    &p("queues"),
                    "missing: method find counts the queues listed here",
                    Some("e.g. `queues: [incoming, active, deferred, hold, maildrop]`"),
                );
            } else if queues.is_empty() && self.errors.len() == before {
                self.error(
                    &p("queues"),
                    "the list is empty",
                    Some("list the queues to count"),
                );
            }
            let dir = match directory {
                Some(d) => self.abs_path(&d, &p("directory")),
                None => {
                    let hint = if ctx.use_postqueue {
                        "e.g. `directory: /var/spool/postfix`"
                    } else {
                        "e.g. `directory: /var/spool/postfix`; or read the queue with postqueue: `method: postqueue` or `init_config.postqueue: true`"
                    };
                    self.error(
                        &p("directory"),
                        "missing: method find needs the Postfix queue directory",
                        Some(hint),
                    );
                    None
                }
            };
            let dir = dir.filter(|d| {
                d.file_name().is_some() || {
                    self.error(
                        &p("directory"),
                        "the root directory is not a queue directory",
                        Some("e.g. /var/spool/postfix"),
                    );
                    false
                }
            });
            let dir = dir?;
            let tag = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                MethodConfig::Find(find::Options {
                    directory: dir,
                    queues,
                    user: ctx.postfix_user.to_owned(),
                    sudo: commands.sudo.clone(),
                    find: commands.find.clone(),
                }),
                tag,
            )
        } else {
            if explicit.is_some() {
                self.not_for(m, path, &method, &["directory", "queues"]);
            } else if directory.is_some() || has_queues {
                notes.push(format!(
                    "{path}: `directory` and `queues` are not used with init_config.postqueue: true (postqueue lists every queue)"
                ));
            }
            if !LISTING_METHODS.contains(&method.as_str()) {
                self.not_for(m, path, &method, LISTING_KEYS);
            }
            if method == "postqueue" || method == "showq" {
                self.not_for(m, path, &method, &["queue_directory"]);
            }
            let queue_directory = self
                .string(Some(m), "queue_directory", &p("queue_directory"))
                .and_then(|d| self.abs_path(&d, &p("queue_directory")));
            let written = config_directory.unwrap_or_else(|| DEFAULT_CONFIG_DIRECTORY.to_owned());
            let dir = self.abs_path(&written, &p("config_directory"))?;
            let ages: Vec<u64> = age_thresholds.iter().map(|(secs, _)| *secs).collect();
            let method = match method.as_str() {
                "showq" => MethodConfig::Showq(showq::Options {
                    config_directory: dir,
                    postconf: commands.postconf.clone(),
                    age_thresholds: ages,
                }),
                "scan" => MethodConfig::Scan(scan::Options {
                    config_directory: dir,
                    postconf: commands.postconf.clone(),
                    queue_directory,
                }),
                "auto" => MethodConfig::Auto(auto::Options {
                    config_directory: dir,
                    postqueue: commands.postqueue.clone(),
                    postconf: commands.postconf.clone(),
                    sudo: commands.sudo.clone(),
                    find: commands.find.clone(),
                    postfix_user: ctx.postfix_user.to_owned(),
                    queue_directory,
                    age_thresholds: ages,
                }),
                _ => MethodConfig::Postqueue(postqueue::Options {
                    config_directory: dir,
                    postqueue: commands.postqueue.clone(),
                    postconf: commands.postconf.clone(),
                    age_thresholds: ages,
                }),
            };
            // The Datadog check tags the directory exactly as written.
            (method, written)
        };

        let tags = if disable_generic_tags {
            tags_raw.into_iter().map(|t| degeneralise(&t)).collect()
        } else {
            tags_raw
        };
        let service = service.map(|s| s.to_owned());
        if self.errors.len() > before {
            return None;
        }
        Some(Instance {
            path: path.to_owned(),
            method,
            interval,
            timeout,
            tags,
            instance_tag,
            service,
            empty_default_hostname,
            patterns,
            age_thresholds,
            top_domains,
            discover,
        })
    }

    /// Reports each of `keys` present in `m` as not read by `method`.
    fn not_for(&mut self, m: &Mapping, path: &str, method: &str, keys: &[&str]) {
        for key in keys {
            if m.get(*key).is_none_or(Value::is_null) {
                continue;
            }
            let (problem, hint) = match *key {
                "directory" | "queues" => (
                    format!("method {method} does not read this; only method find counts the files of listed queues"),
                    "remove it, as the other methods cover every queue of config_directory; or set `method: find`",
                ),
                "queue_directory" => (
                    format!("method {method} does not read this"),
                    "remove it: Postfix tells where its queue is; only methods scan and auto take it",
                ),
                _ => (
                    format!("method {method} does not list messages, so it has no ages, reasons or domains"),
                    "remove it, or use a method that lists messages: postqueue, showq or auto",
                ),
            };
            self.error(&join(path, key), problem, Some(hint));
        }
    }

    /// `age_thresholds: [5m, 1h, 90s, 3600]`: sorted, each with its canonical label.
    fn age_thresholds(&mut self, m: &Mapping, path: &str) -> Vec<(u64, String)> {
        let Some(list) = self.list(Some(m), "age_thresholds", path) else {
            return DEFAULT_AGE_THRESHOLDS
                .iter()
                .map(|s| (*s, age_label(*s)))
                .collect();
        };
        let mut out: Vec<(u64, String)> = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
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

    fn top_domains(&mut self, m: &Mapping, path: &str) -> usize {
        match m.get("top_domains") {
            None | Some(Value::Null) => DEFAULT_TOP_DOMAINS,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= MAX_TOP_DOMAINS) => {
                n.as_u64().map_or(DEFAULT_TOP_DOMAINS, |n| n as usize)
            }
            Some(_) => {
                self.error(
                    path,
                    format!("must be a whole number from 0 to {MAX_TOP_DOMAINS}"),
                    Some("0 turns the domain series off; default 10"),
                );
                DEFAULT_TOP_DOMAINS
            }
        }
    }
}

/// `90s`, `5m`, `1h`, `3d`, `2w` -> seconds.
fn parse_age(s: &str) -> Option<u64> {
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
fn degeneralise(tag: &str) -> String {
    let name = tag.split_once(':').map_or(tag, |(n, _)| n);
    if GENERIC_TAGS.contains(&name) {
        format!("postfix_{tag}")
    } else {
        tag.to_owned()
    }
}

/// The known word closest to `word`, if it is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("defered", KNOWN_QUEUES), Some("deferred"));
        assert_eq!(did_you_mean("queue", INSTANCE_KEYS), Some("queues"));
        assert_eq!(did_you_mean("zzzzzzzz", KNOWN_QUEUES), None);
    }

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
