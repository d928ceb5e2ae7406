//! `discover: postmulti`: an instance that stands for every enabled Postfix instance on the
//! host. `postmulti -l` is read when the schedules start and again at each reload; each
//! enabled Postfix instance becomes an instance of ours with its `config_directory`, tagged
//! `postfix_instance:<name>` (`default` for the primary instance, which postmulti calls `-`).
//! When postmulti fails, the template stays as one instance whose every run reports the
//! failure, so it is as loud as any other collection error and the other instances go on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Config, Instance, MethodConfig};
use crate::exec::{self, Cancel, Command, ExecError, Failure};
use crate::lines::{LineSplitter, LineTooLong};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Why discovery found no instance to collect.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("`{command}`: {source}")]
    Output {
        command: String,
        #[source]
        source: LineTooLong,
    },
    #[error("`{command}` failed with {status}: {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}`: {source}")]
    Line {
        command: String,
        #[source]
        source: BadLine,
    },
    #[error("`{command}` listed no Postfix instance")]
    NoInstance { command: String },
}

/// A line of `postmulti -l` that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a postmulti -l line: {line:?}")]
pub struct BadLine {
    pub line: String,
}

/// One line of `postmulti -l`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostfixInstance {
    pub name: String,
    pub group: String,
    pub enabled: bool,
    pub config_directory: PathBuf,
}

/// Expands every `discover: postmulti` instance of `config`.
pub async fn expand(mut config: Config, cancel: &Cancel) -> Config {
    let mut out = Vec::with_capacity(config.instances.len());
    for instance in std::mem::take(&mut config.instances) {
        let Some(postmulti) = instance.discover.clone() else {
            out.push(instance);
            continue;
        };
        match list(&postmulti, cancel).await {
            Ok(found) => {
                let enabled: Vec<&PostfixInstance> = found.iter().filter(|p| p.enabled).collect();
                tracing::info!(
                    instance = %instance.yaml_path,
                    found = found.len(),
                    enabled = enabled.len(),
                    "postmulti: Postfix instances discovered"
                );
                out.extend(enabled.into_iter().map(|p| derive(&instance, p)));
            }
            Err(e) => {
                let message = crate::error_chain(&e);
                tracing::error!(instance = %instance.yaml_path, "postmulti discovery failed: {message}");
                out.push(Instance {
                    method: MethodConfig::Unavailable(format!(
                        "discovery with postmulti failed: {message}"
                    )),
                    discover: None,
                    ..instance
                });
            }
        }
    }
    config.instances = out;
    config
}

fn derive(template: &Instance, p: &PostfixInstance) -> Instance {
    let name = if p.name == "-" {
        "default".to_owned()
    } else {
        crate::tag::from_host("postmulti instance name", &p.name)
    };
    let mut tags = template.tags.clone();
    tags.push(format!("postfix_instance:{name}"));
    Instance {
        yaml_path: format!("{} postfix_instance {name}", template.yaml_path),
        method: template.method.with_config_directory(&p.config_directory),
        instance_tag: crate::tag::from_host(
            "postmulti config_directory",
            &p.config_directory.display().to_string(),
        ),
        tags,
        discover: None,
        ..template.clone()
    }
}

async fn list(postmulti: &Path, cancel: &Cancel) -> Result<Vec<PostfixInstance>, Error> {
    let cmd = Command::new(postmulti, ["-l"]);
    let mut lines = LineSplitter::new(64 * 1024);
    let mut found = Vec::new();
    let mut bad = None;
    let mut each = |_: u64, line: &[u8]| {
        match parse_line(&String::from_utf8_lossy(line)) {
            Ok(Some(p)) => found.push(p),
            Ok(None) => {}
            Err(e) => {
                bad.get_or_insert(e);
            }
        }
        Ok::<(), LineTooLong>(())
    };
    let limits = exec::Limits {
        deadline: Instant::now() + TIMEOUT,
        cancel: cancel.clone(),
        live: crate::live::Live::default(),
    };
    let finished = exec::run(&cmd, &limits, |chunk| lines.feed(chunk, &mut each))
        .await
        .map_err(|f| match f {
            Failure::Exec(e) => Error::Exec(e),
            Failure::Output(source) => Error::Output {
                command: cmd.to_string(),
                source,
            },
        })?;
    let _ = lines.finish(&mut each);
    if !finished.status.success() {
        return Err(Error::Failed {
            command: cmd.to_string(),
            status: finished.describe_status(),
            stderr: finished.stderr,
        });
    }
    if let Some(source) = bad {
        return Err(Error::Line {
            command: cmd.to_string(),
            source,
        });
    }
    if found.is_empty() {
        return Err(Error::NoInstance {
            command: cmd.to_string(),
        });
    }
    Ok(found)
}

/// `name group enabled config_directory`, e.g. `postfix-out  mta  y  /etc/postfix-out`.
pub fn parse_line(line: &str) -> Result<Option<PostfixInstance>, BadLine> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        [] => Ok(None),
        [name, group, enabled, dir] if dir.starts_with('/') && !dir.contains("..") => {
            Ok(Some(PostfixInstance {
                name: (*name).to_owned(),
                group: (*group).to_owned(),
                enabled: *enabled == "y",
                config_directory: PathBuf::from(dir),
            }))
        }
        _ => Err(BadLine {
            line: line.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_postmulti_l() {
        let text = include_str!("../tests/fixtures/postmulti/postmulti-l.txt");
        let found: Vec<PostfixInstance> = text
            .lines()
            .filter_map(|l| parse_line(l).unwrap())
            .collect();
        assert_eq!(
            found,
            vec![
                PostfixInstance {
                    name: "-".into(),
                    group: "-".into(),
                    enabled: true,
                    config_directory: "/etc/postfix".into()
                },
                PostfixInstance {
                    name: "postfix-out".into(),
                    group: "mta".into(),
                    enabled: true,
                    config_directory: "/etc/postfix-out".into()
                },
            ]
        );
        assert!(parse_line("garbage").is_err());
        assert!(parse_line("x - y relative/dir").is_err());
        assert_eq!(
            parse_line("x - n /etc/x").unwrap().map(|p| p.enabled),
            Some(false)
        );
    }
}
