//! The generic YAML walker under validation: typed reads of mapping keys that record every
//! problem with its YAML path (wrong type, unknown key with a did-you-mean hint) and go on, and
//! the natural order the problems are reported in. It knows nothing of Postfix or Datadog.

use std::marker::PhantomData;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::ConfigError;
use crate::spelling::did_you_mean;

/// Shortest timeout or interval we accept: 100 ms.
const MIN_SECONDS: f64 = 0.1;
/// Longest timeout or interval we accept: a day.
const MAX_SECONDS: f64 = 86_400.0;

/// The keys a mapping may have. Each is named once, in a `keys!` table: the unknown-key check
/// reads `NAMES`, the getters take a variant.
pub trait Keys: Copy {
    const NAMES: &'static [&'static str];
    fn name(self) -> &'static str;
}

/// `keys! { Name { Variant = "yaml_key", ... } }`: an enum of a mapping's keys.
macro_rules! keys {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(super) enum $name {
            $($variant,)*
        }

        impl $crate::config::yaml::Keys for $name {
            const NAMES: &'static [&'static str] = &[$($text,)*];

            fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }
    };
}
pub(super) use keys;

/// A mapping of the tree (or its absence) at a YAML path, with keys `K`.
#[derive(Debug)]
pub struct Node<'a, K> {
    map: Option<&'a Mapping>,
    path: String,
    keys: PhantomData<K>,
}

impl<'a, K: Keys> Node<'a, K> {
    /// The YAML path of the mapping itself.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The YAML path of `key`.
    pub fn at(&self, key: K) -> String {
        join(&self.path, key.name())
    }

    /// The value of `key`; an explicit `null` is no value.
    pub fn get(&self, key: K) -> Option<&'a Value> {
        self.map?.get(key.name()).filter(|v| !v.is_null())
    }

    pub fn has(&self, key: K) -> bool {
        self.get(key).is_some()
    }

    /// Whether `key` is written at all, even as `null`.
    pub fn contains(&self, key: K) -> bool {
        self.map.is_some_and(|m| m.contains_key(key.name()))
    }
}

/// Every problem found so far.
#[derive(Debug, Default)]
pub struct Walker {
    pub errors: Vec<ConfigError>,
}

impl Walker {
    pub fn error(&mut self, path: &str, problem: impl Into<String>, hint: Option<&str>) {
        self.errors.push(ConfigError {
            path: path.to_owned(),
            problem: problem.into(),
            hint: hint.map(str::to_owned),
        });
    }

    /// The errors in file order as far as a path tells it: instances by number, keys by name.
    pub fn finish(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_cached_key(|e| natural_key(&e.path));
        self.errors
    }

    /// `m`, at `path`, checked for unknown keys.
    pub fn root<'a, K: Keys>(&mut self, m: &'a Mapping, path: &str) -> Node<'a, K> {
        self.known_keys(m, path, K::NAMES);
        Node {
            map: Some(m),
            path: path.to_owned(),
            keys: PhantomData,
        }
    }

    /// The mapping at `parent[key]`, checked for unknown keys; absent or not a mapping, an
    /// empty node (the latter reported).
    pub fn child<'a, P: Keys, K: Keys>(&mut self, parent: &Node<'a, P>, key: P) -> Node<'a, K> {
        let path = parent.at(key);
        let map = match parent.get(key) {
            None => None,
            Some(Value::Mapping(inner)) => {
                self.known_keys(inner, &path, K::NAMES);
                Some(inner)
            }
            Some(other) => {
                self.error(
                    &path,
                    format!("expected a mapping, found {}", kind(other)),
                    None,
                );
                None
            }
        };
        Node {
            map,
            path,
            keys: PhantomData,
        }
    }

    fn known_keys(&mut self, m: &Mapping, path: &str, known: &[&str]) {
        for key in m.keys() {
            match key {
                Value::String(k) if known.contains(&k.as_str()) => {}
                Value::String(k) => {
                    let hint = match did_you_mean(k, known) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("known keys: {}", known.join(", ")),
                    };
                    self.error(&join(path, k), "unknown key", Some(&hint));
                }
                other => self.error(
                    path,
                    format!("a key must be a string, found {}", kind(other)),
                    None,
                ),
            }
        }
    }

    fn expect<T>(&mut self, path: &str, what: &str, found: &Value) -> Option<T> {
        self.error(
            path,
            format!("expected {what}, found {}", kind(found)),
            None,
        );
        None
    }

    pub fn string<K: Keys>(&mut self, n: &Node<K>, key: K) -> Option<String> {
        match n.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => self.expect(&n.at(key), "a string", other),
        }
    }

    pub fn bool<K: Keys>(&mut self, n: &Node<K>, key: K) -> Option<bool> {
        match n.get(key)? {
            Value::Bool(b) => Some(*b),
            other => self.expect(&n.at(key), "true or false", other),
        }
    }

    /// A positive number of seconds (integer or fraction).
    pub fn seconds<K: Keys>(&mut self, n: &Node<K>, key: K) -> Option<Duration> {
        let secs = match n.get(key)? {
            Value::Number(secs) => secs.as_f64(),
            other => return self.expect(&n.at(key), "a number of seconds", other),
        };
        match secs {
            // Checked as the number it is, before it becomes a Duration: a tiny fraction would
            // pass a "more than 0" test and then make a zero interval.
            Some(s) if (MIN_SECONDS..=MAX_SECONDS).contains(&s) => Some(Duration::from_secs_f64(s)),
            _ => {
                self.error(
                    &n.at(key),
                    format!("must be at least {MIN_SECONDS} and at most {MAX_SECONDS} seconds"),
                    Some("e.g. 15"),
                );
                None
            }
        }
    }

    pub fn list<'a, K: Keys>(&mut self, n: &Node<'a, K>, key: K) -> Option<&'a [Value]> {
        match n.get(key)? {
            Value::Sequence(s) => Some(s),
            other => {
                self.error(
                    &n.at(key),
                    format!("expected a list, found {}", kind(other)),
                    Some("write each entry as a `- ` item"),
                );
                None
            }
        }
    }

    /// The strings of a list, each with its YAML path.
    pub fn string_list<K: Keys>(&mut self, n: &Node<K>, key: K) -> Vec<(String, String)> {
        let path = n.at(key);
        let mut out = Vec::new();
        for (i, item) in self.list(n, key).unwrap_or_default().iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match item {
                Value::String(s) => out.push((item_path, s.clone())),
                other => self
                    .expect::<()>(&item_path, "a string", other)
                    .unwrap_or(()),
            }
        }
        out
    }

    /// An absolute path without `..`, normalised (no trailing slash, no `.` parts).
    pub fn abs_path(&mut self, s: &str, path: &str) -> Option<PathBuf> {
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

    /// `abs_path` of the string at `n[key]`.
    pub fn abs_path_at<K: Keys>(&mut self, n: &Node<K>, key: K) -> Option<PathBuf> {
        let s = self.string(n, key)?;
        self.abs_path(&s, &n.at(key))
    }
}

/// What a value is, in words.
pub fn kind(v: &Value) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_sort_naturally() {
        let mut paths = vec!["instances[10].tags", "instances[9].tags[2]", "extra"];
        paths.sort_by_cached_key(|p| natural_key(p));
        assert_eq!(
            paths,
            ["extra", "instances[9].tags[2]", "instances[10].tags"]
        );
    }
}
