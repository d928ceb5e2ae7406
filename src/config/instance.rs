//! One entry of `instances:`, built from small pieces (`from_yaml`), each reading a few keys:
//! the method, the schedule, the tags, the listing series, where the queue is, discovery. The
//! method's `Reads` (collect.rs) decides which keys it takes; the others are reported.

use std::path::PathBuf;
use std::time::Duration;

use serde_yaml::Mapping;

use super::rules::degeneralise;
use super::yaml::{keys, Node, Walker};
use super::{Instance, DEFAULT_CONFIG_DIRECTORY, DEFAULT_INTERVAL, MAX_DEFAULT_TIMEOUT};
use crate::collect::{Commands, InstanceSettings, MethodConfig, MethodKind, Need, Reads};

keys! {
    /// An entry of `instances:`.
    Key {
        Directory = "directory",
        Queues = "queues",
        ConfigDirectory = "config_directory",
        Tags = "tags",
        Service = "service",
        MinCollectionInterval = "min_collection_interval",
        EmptyDefaultHostname = "empty_default_hostname",
        MetricPatterns = "metric_patterns",
        DisableGenericTags = "disable_generic_tags",
        Method = "method",
        Timeout = "timeout",
        Commands = "commands",
        AgeThresholds = "age_thresholds",
        TopDomains = "top_domains",
        QueueDirectory = "queue_directory",
        Discover = "discover",
    }
}

/// What `init_config` and the top-level `commands` give every instance.
#[derive(Debug)]
pub struct Defaults {
    pub postfix_user: String,
    /// `init_config.postfix_user` was written (else the default, noted in the log).
    pub postfix_user_given: bool,
    /// `init_config.postqueue`: the method of instances without `method:`.
    pub use_postqueue: bool,
    pub service: Option<String>,
    pub commands: Commands,
}

/// Checks one instance; `None` when it has problems (all of them reported).
pub fn instance(
    w: &mut Walker,
    m: &Mapping,
    path: &str,
    defaults: &Defaults,
    notes: &mut Vec<String>,
) -> Option<Instance> {
    let before = w.errors.len();
    let n: Node<Key> = w.root(m, path);
    let method = Method::from_yaml(w, &n, defaults)?;
    let schedule = Schedule::from_yaml(w, &n);
    let tagging = Tagging::from_yaml(w, &n, defaults);
    let patterns = w.patterns(&n, Key::MetricPatterns);
    let age_thresholds = w.age_thresholds(&n, Key::AgeThresholds);
    let top_domains = w.top_domains(&n, Key::TopDomains, super::DEFAULT_TOP_DOMAINS);
    let commands = w.commands(&n, Key::Commands, &defaults.commands);
    let discover = discover(w, &n, &method, &commands);
    let place = Place::from_yaml(w, &n, &method, defaults.use_postqueue);
    method.unread_keys(w, &n, notes);
    if w.errors.len() > before {
        return None;
    }
    let settings = InstanceSettings {
        config_directory: place.config_directory,
        queue_directory: place.queue_directory,
        queues: place.queues,
        commands,
        postfix_user: defaults.postfix_user.clone(),
        age_thresholds: age_thresholds.iter().map(|(secs, _)| *secs).collect(),
    };
    Some(Instance {
        yaml_path: path.to_owned(),
        method: MethodConfig::Run(method.kind, Box::new(settings)),
        interval: schedule.interval,
        timeout: schedule.timeout,
        tags: tagging.tags,
        instance_tag: place.instance_tag,
        service: tagging.service,
        empty_default_hostname: tagging.empty_default_hostname,
        patterns,
        age_thresholds,
        top_domains,
        discover,
    })
}

/// `method:`, or the Datadog default: postqueue under `init_config.postqueue: true`, else find.
struct Method {
    kind: MethodKind,
    reads: Reads,
    /// Written in the instance: then a key the method does not read is an error.
    explicit: bool,
}

impl Method {
    fn from_yaml(w: &mut Walker, n: &Node<Key>, defaults: &Defaults) -> Option<Method> {
        let written = w.string(n, Key::Method);
        let kind = match written.as_deref().map(str::parse::<MethodKind>) {
            Some(Ok(kind)) => kind,
            Some(Err(e)) => {
                w.error(&n.at(Key::Method), e.to_string(), Some(&e.hint));
                return None;
            }
            None if defaults.use_postqueue => MethodKind::Postqueue,
            None => MethodKind::Find,
        };
        Some(Method {
            kind,
            reads: kind.reads(),
            explicit: written.is_some(),
        })
    }

    fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Reports the keys present that the method does not read. Datadog's own default
    /// (postqueue from `init_config.postqueue`) ignores `directory` and `queues`, as the Datadog
    /// check does, with a note.
    fn unread_keys(&self, w: &mut Walker, n: &Node<Key>, notes: &mut Vec<String>) {
        let r = self.reads;
        let mut unread: Vec<Key> = Vec::new();
        if !r.lists_messages {
            unread.extend([Key::AgeThresholds, Key::TopDomains]);
        }
        if r.queue_directory == Need::No {
            unread.push(Key::QueueDirectory);
        }
        let datadog_keys = [
            (r.queue_directory == Need::No, Key::Directory),
            (!r.queues, Key::Queues),
        ];
        if self.explicit {
            unread.extend(datadog_keys.iter().filter(|(no, _)| *no).map(|(_, k)| *k));
        } else if datadog_keys.iter().any(|(no, key)| *no && n.has(*key)) {
            notes.push(format!(
                "{}: `directory` and `queues` are not used with init_config.postqueue: true (postqueue lists every queue)",
                n.path()
            ));
        }
        for key in unread.into_iter().filter(|k| n.has(*k)) {
            let (problem, hint) = self.unread(key);
            w.error(&n.at(key), problem, Some(&hint));
        }
    }

    /// The problem and hint for a key the method does not read.
    fn unread(&self, key: Key) -> (String, String) {
        let m = self.name();
        match key {
            Key::Directory | Key::QueueDirectory => (
                format!("method {m} does not read this; Postfix tells it where the queue is"),
                format!(
                    "remove it; only methods {} read the queue directory",
                    methods_that(|r| r.queue_directory != Need::No, "and")
                ),
            ),
            Key::Queues => {
                let counting = methods_that(|r| r.queues, "or");
                (
                    format!("method {m} does not read this; only method {counting} counts the files of listed queues"),
                    format!("remove it, as the other methods cover every queue of config_directory; or set `method: {counting}`"),
                )
            }
            _ => (
                format!("method {m} does not list messages, so it has no ages, reasons or domains"),
                format!(
                    "remove it, or use a method that lists messages: {}",
                    methods_that(|r| r.lists_messages, "or")
                ),
            ),
        }
    }
}

/// `postqueue, showq or auto`: the methods whose `Reads` pass `test`, for hints.
fn methods_that(test: impl Fn(Reads) -> bool, conjunction: &str) -> String {
    let names: Vec<&str> = MethodKind::ALL
        .iter()
        .filter(|k| test(k.reads()))
        .map(|k| k.name())
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            format!("{} {conjunction} {last}", rest.join(", "))
        }
        _ => names.concat(),
    }
}

struct Schedule {
    interval: Duration,
    timeout: Duration,
}

impl Schedule {
    fn from_yaml(w: &mut Walker, n: &Node<Key>) -> Schedule {
        let interval = w
            .seconds(n, Key::MinCollectionInterval)
            .unwrap_or(DEFAULT_INTERVAL);
        let timeout = w
            .seconds(n, Key::Timeout)
            .unwrap_or_else(|| interval.min(MAX_DEFAULT_TIMEOUT));
        Schedule { interval, timeout }
    }
}

struct Tagging {
    tags: Vec<String>,
    service: Option<String>,
    empty_default_hostname: bool,
}

impl Tagging {
    fn from_yaml(w: &mut Walker, n: &Node<Key>, defaults: &Defaults) -> Tagging {
        let tags = w.tags(n, Key::Tags);
        let service = w
            .tag_value(n, Key::Service)
            .or_else(|| defaults.service.clone());
        let empty_default_hostname = w.bool(n, Key::EmptyDefaultHostname).unwrap_or(false);
        let tags = if w.bool(n, Key::DisableGenericTags).unwrap_or(false) {
            tags.iter().map(|t| degeneralise(t)).collect()
        } else {
            tags
        };
        Tagging {
            tags,
            service,
            empty_default_hostname,
        }
    }
}

/// `discover: postmulti`: the postmulti program, for a method that asks Postfix.
fn discover(
    w: &mut Walker,
    n: &Node<Key>,
    method: &Method,
    commands: &Commands,
) -> Option<PathBuf> {
    match w.string(n, Key::Discover)?.as_str() {
        "postmulti" => {
            if !method.reads.config_directory {
                w.error(
                    &n.at(Key::Discover),
                    format!(
                        "method {} cannot follow discovered instances",
                        method.name()
                    ),
                    Some(&format!(
                        "set `method:` to {}",
                        methods_that(|r| r.config_directory, "or")
                    )),
                );
            }
            if n.has(Key::ConfigDirectory) {
                w.error(
                    &n.at(Key::ConfigDirectory),
                    "comes from postmulti with `discover: postmulti`",
                    Some("remove it"),
                );
            }
            Some(commands.postmulti.clone())
        }
        other => {
            w.error(
                &n.at(Key::Discover),
                format!("unknown discovery {other:?}"),
                Some("the only one is `postmulti`"),
            );
            None
        }
    }
}

/// Where the instance's Postfix and queue are, and the `instance:` tag that names them.
struct Place {
    config_directory: PathBuf,
    queue_directory: Option<PathBuf>,
    queues: Vec<String>,
    instance_tag: String,
}

impl Place {
    fn from_yaml(w: &mut Walker, n: &Node<Key>, method: &Method, use_postqueue: bool) -> Place {
        let r = method.reads;
        let written = w.string(n, Key::ConfigDirectory);
        let queue_directory = match r.queue_directory {
            Need::No => None,
            need => queue_directory(w, n, method, need, use_postqueue),
        };
        let queues = if r.queues {
            queues(w, n, method)
        } else {
            Vec::new()
        };
        if !r.config_directory {
            if method.explicit && written.is_some() {
                w.error(
                    &n.at(Key::ConfigDirectory),
                    format!("method {} does not read config_directory; it counts the files under `directory`", method.name()),
                    Some(&format!("remove it, or use a method that asks Postfix: {}", methods_that(|r| r.config_directory, "or"))),
                );
            }
            // The Datadog check tags the queue directory's basename.
            let instance_tag = queue_directory
                .as_ref()
                .and_then(|d| d.file_name())
                .map(|b| b.to_string_lossy().into_owned())
                .unwrap_or_default();
            let key = if n.has(Key::QueueDirectory) && !n.has(Key::Directory) {
                Key::QueueDirectory
            } else {
                Key::Directory
            };
            carried_as_instance_tag(w, n, key, &instance_tag);
            return Place {
                config_directory: DEFAULT_CONFIG_DIRECTORY.into(),
                queue_directory,
                queues,
                instance_tag,
            };
        }
        let written = written.unwrap_or_else(|| DEFAULT_CONFIG_DIRECTORY.to_owned());
        carried_as_instance_tag(w, n, Key::ConfigDirectory, &written);
        Place {
            config_directory: w
                .abs_path(&written, &n.at(Key::ConfigDirectory))
                .unwrap_or_default(),
            queue_directory,
            queues,
            // The Datadog check tags the config directory exactly as written.
            instance_tag: written,
        }
    }
}

/// The `instance:` tag is made of this key's value: it must be one DogStatsD can carry.
fn carried_as_instance_tag(w: &mut Walker, n: &Node<Key>, key: Key, value: &str) {
    if value.is_empty() {
        return; // a missing or root directory has its own error
    }
    if let Some(problem) = crate::tag::problem(value) {
        w.error(
            &n.at(key),
            format!("{value:?} becomes the `instance:` tag, and it {problem}"),
            Some("use a directory whose name has none of them"),
        );
    }
}

/// `directory`, or its other name `queue_directory`: the queue directory.
fn queue_directory(
    w: &mut Walker,
    n: &Node<Key>,
    method: &Method,
    need: Need,
    use_postqueue: bool,
) -> Option<PathBuf> {
    let directory = w.abs_path_at(n, Key::Directory);
    let alias = w.abs_path_at(n, Key::QueueDirectory);
    let dir = match (directory, alias) {
        (Some(d), Some(a)) if d != a => {
            w.error(
                &n.at(Key::QueueDirectory),
                format!(
                    "`directory` already says the queue directory is {}",
                    d.display()
                ),
                Some("give it once: `queue_directory` is another name for `directory`"),
            );
            return None;
        }
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => {
            if need == Need::Required && !n.has(Key::Directory) && !n.has(Key::QueueDirectory) {
                let hint = if use_postqueue {
                    "e.g. `directory: /var/spool/postfix`"
                } else {
                    "e.g. `directory: /var/spool/postfix`; or read the queue with postqueue: `method: postqueue` or `init_config.postqueue: true`"
                };
                w.error(
                    &n.at(Key::Directory),
                    format!(
                        "missing: method {} needs the Postfix queue directory",
                        method.name()
                    ),
                    Some(hint),
                );
            }
            return None;
        }
    };
    if dir.file_name().is_none() {
        let key = if n.has(Key::Directory) {
            Key::Directory
        } else {
            Key::QueueDirectory
        };
        w.error(
            &n.at(key),
            "the root directory is not a queue directory",
            Some("e.g. /var/spool/postfix"),
        );
        return None;
    }
    Some(dir)
}

/// `queues`, required by a method that counts only the queues listed.
fn queues(w: &mut Walker, n: &Node<Key>, method: &Method) -> Vec<String> {
    let before = w.errors.len();
    let queues = w.queues(n, Key::Queues);
    if !n.has(Key::Queues) {
        w.error(
            &n.at(Key::Queues),
            format!(
                "missing: method {} counts the queues listed here",
                method.name()
            ),
            Some("e.g. `queues: [incoming, active, deferred, hold, maildrop]`"),
        );
    } else if queues.is_empty() && w.errors.len() == before {
        w.error(
            &n.at(Key::Queues),
            "the list is empty",
            Some("list the queues to count"),
        );
    }
    queues
}
