//! Reads the Postfix parameters the methods need (`mail_version`, `queue_directory`,
//! `showq_service_name`, and for reading queue files `hash_queue_names`, `hash_queue_depth`,
//! `smtputf8_enable`) with one `postconf -c <config_directory>` run, kept for an hour (and
//! until a reload makes a new one), so that a Postfix upgrade or move shows up without a
//! restart and a collection rarely forks for it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use crate::exec::{self, Command, ExecError, Failure, Limits};
use crate::lines::{LineSplitter, LineTooLong};

const TTL: Duration = Duration::from_secs(3600);
const NAMES: [&str; 6] = [
    "mail_version",
    "queue_directory",
    "showq_service_name",
    "hash_queue_names",
    "hash_queue_depth",
    "smtputf8_enable",
];

/// The parameters of one Postfix instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub mail_version: String,
    /// (major, minor) of `mail_version`.
    pub version: (u32, u32),
    pub queue_directory: PathBuf,
    pub showq_service_name: String,
    /// Which queues are hashed into subdirectories, and how deep.
    pub hashing: crate::queue::Hashing,
    /// `smtputf8_enable`: showq keeps UTF-8 in what it prints. Its default is an expression
    /// on `compatibility_level` that postconf prints unexpanded; only `no` turns it off.
    pub utf8: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{command}` failed with {status}: {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}` printed no usable {name}: {output:?}")]
    Missing {
        command: String,
        name: &'static str,
        output: String,
    },
    #[error("the output of `{command}` is not understood")]
    Output {
        command: String,
        #[source]
        source: LineTooLong,
    },
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// `Params` of one config directory, re-read when older than an hour.
#[derive(Debug)]
pub struct Cache {
    postconf: PathBuf,
    config_directory: PathBuf,
    cached: Option<(Params, Instant)>,
}

impl Cache {
    pub fn new(postconf: &Path, config_directory: &Path) -> Self {
        Cache {
            postconf: postconf.to_owned(),
            config_directory: config_directory.to_owned(),
            cached: None,
        }
    }

    pub async fn get(&mut self, limits: &Limits) -> Result<Params, Error> {
        if let Some((params, at)) = &self.cached {
            if at.elapsed() < TTL {
                return Ok(params.clone());
            }
        }
        let params = self.read(limits).await?;
        self.cached = Some((params.clone(), Instant::now()));
        Ok(params)
    }

    async fn read(&self, limits: &Limits) -> Result<Params, Error> {
        let mut args = vec!["-c".into(), self.config_directory.clone().into_os_string()];
        args.extend(NAMES.iter().map(Into::into));
        let cmd = Command::new(&self.postconf, args);
        let mut lines = LineSplitter::new(64 * 1024);
        let mut found: Vec<(String, String)> = Vec::new();
        let finished = exec::run(&cmd, limits, |chunk| {
            lines.feed(chunk, |_, line| {
                collect_line(&mut found, line);
                Ok::<(), LineTooLong>(())
            })
        })
        .await
        .map_err(|f| match f {
            Failure::Exec(e) => Error::Exec(e),
            Failure::Output(source) => Error::Output {
                command: cmd.to_string(),
                source,
            },
        })?;
        let _ = lines.finish(|_, line| {
            collect_line(&mut found, line);
            Ok::<(), LineTooLong>(())
        });
        if !finished.status.success() {
            return Err(Error::Failed {
                command: cmd.to_string(),
                status: finished.describe_status(),
                stderr: finished.stderr,
            });
        }
        parse(&cmd.to_string(), &found)
    }
}

fn collect_line(found: &mut Vec<(String, String)>, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    if let Some((name, value)) = text.split_once(" = ").or_else(|| text.split_once('=')) {
        found.push((name.trim().to_owned(), value.trim().to_owned()));
    }
}

/// Turns `name = value` pairs into `Params`.
pub fn parse(command: &str, found: &[(String, String)]) -> Result<Params, Error> {
    let get = |name: &str| {
        found
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let missing = |name: &'static str| Error::Missing {
        command: command.to_owned(),
        name,
        output: get(name).unwrap_or("").to_owned(),
    };
    let mail_version = get("mail_version").ok_or_else(|| missing("mail_version"))?;
    let version = parse_version(mail_version).ok_or_else(|| missing("mail_version"))?;
    let queue_directory = get("queue_directory")
        .filter(|d| d.starts_with('/'))
        .ok_or_else(|| missing("queue_directory"))?;
    let service = get("showq_service_name").filter(|s| !s.is_empty() && !s.contains('/'));
    Ok(Params {
        // It becomes the `postfix_version:` tag.
        mail_version: crate::tag::from_host("Postfix mail_version", mail_version),
        version,
        queue_directory: queue_directory.into(),
        showq_service_name: service.unwrap_or("showq").to_owned(),
        hashing: hashing(get("hash_queue_names"), get("hash_queue_depth")),
        utf8: get("smtputf8_enable") != Some("no"),
    })
}

/// `hash_queue_names` and `hash_queue_depth`, Postfix's defaults for what is missing or odd.
fn hashing(names: Option<&str>, depth: Option<&str>) -> crate::queue::Hashing {
    let mut h = crate::queue::Hashing::default();
    if let Some(names) = names {
        h.queues = names
            .split([' ', ',', '\t'])
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
    }
    if let Some(depth) = depth
        .and_then(|d| d.parse().ok())
        .filter(|d| (1..=16).contains(d))
    {
        h.depth = depth;
    }
    h
}

/// `3.7.11` -> (3, 7); `2.11.3` -> (2, 11); also accepts `3.8-20220816` snapshots.
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("3.7.11"), Some((3, 7)));
        assert_eq!(parse_version("2.11.3"), Some((2, 11)));
        assert_eq!(parse_version("3.10-20240101"), Some((3, 10)));
        assert_eq!(parse_version("postfix"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn params() {
        let found = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let p = parse(
            "postconf",
            &found(&[
                ("mail_version", "3.7.11"),
                ("queue_directory", "/var/spool/postfix"),
                ("showq_service_name", "showq"),
            ]),
        )
        .unwrap();
        assert_eq!(p.version, (3, 7));
        assert_eq!(p.queue_directory, PathBuf::from("/var/spool/postfix"));
        assert!(parse("postconf", &found(&[("mail_version", "3.7.11")])).is_err());
        let old = parse(
            "postconf",
            &found(&[("mail_version", "2.11.3"), ("queue_directory", "/q")]),
        )
        .unwrap();
        assert_eq!(old.showq_service_name, "showq");
        assert_eq!(old.hashing, crate::queue::Hashing::default());
        assert!(old.utf8);
        let hashed = parse(
            "postconf",
            &found(&[
                ("mail_version", "3.7.11"),
                ("queue_directory", "/q"),
                ("hash_queue_names", "deferred, defer, hold"),
                ("hash_queue_depth", "2"),
                ("smtputf8_enable", "no"),
            ]),
        )
        .unwrap();
        assert_eq!(hashed.hashing.queues, ["deferred", "defer", "hold"]);
        assert_eq!(hashed.hashing.depth, 2);
        assert!(!hashed.utf8);
    }
}
