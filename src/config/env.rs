//! The `DD_*` environment, as the official DogStatsD clients read it: `DD_DOGSTATSD_URL` wins
//! over `DD_AGENT_HOST` + `DD_DOGSTATSD_PORT`; a `dogstatsd.url` in the config file wins over
//! both; `DD_ENV`, `DD_SERVICE`, `DD_VERSION` and `DD_ENTITY_ID` become global tags.

use super::{ConfigError, Target, DEFAULT_UDP};

/// The `DD_*` variables we read (where to send, and the unified service tags), captured once so that tests can set them without touching the
/// process environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatadogEnv {
    pub dogstatsd_url: Option<String>,
    pub agent_host: Option<String>,
    pub dogstatsd_port: Option<String>,
    pub env: Option<String>,
    pub service: Option<String>,
    pub version: Option<String>,
    pub entity_id: Option<String>,
}

impl DatadogEnv {
    pub fn from_process() -> Self {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        }
        // These become tags: mended where they enter, like every value from the host.
        let tag_var = |name: &str| var(name).map(|v| crate::tag::from_host(name, &v));
        DatadogEnv {
            dogstatsd_url: var("DD_DOGSTATSD_URL"),
            agent_host: var("DD_AGENT_HOST"),
            dogstatsd_port: var("DD_DOGSTATSD_PORT"),
            env: tag_var("DD_ENV"),
            service: tag_var("DD_SERVICE"),
            version: tag_var("DD_VERSION"),
            entity_id: tag_var("DD_ENTITY_ID"),
        }
    }
}

/// Decides the target from the config file's `dogstatsd.url` (already parsed) and the
/// environment, and returns the tags the environment adds.
pub fn resolve(
    from_file: Option<Target>,
    env: &DatadogEnv,
    errors: &mut Vec<ConfigError>,
) -> (Target, Vec<String>) {
    let target = from_file.unwrap_or_else(|| {
        if let Some(url) = &env.dogstatsd_url {
            return parse_url(url).unwrap_or_else(|e| {
                errors.push(ConfigError {
                    path: "environment DD_DOGSTATSD_URL".to_owned(),
                    problem: e.to_string(),
                    hint: Some(UrlError::HINT.to_owned()),
                });
                Target::Udp(DEFAULT_UDP.to_owned())
            });
        }
        if env.agent_host.is_none() && env.dogstatsd_port.is_none() {
            return Target::Udp(DEFAULT_UDP.to_owned());
        }
        let host = env.agent_host.as_deref().unwrap_or("127.0.0.1");
        let port = match env.dogstatsd_port.as_deref().map(str::parse::<u16>) {
            None => 8125,
            Some(Ok(port)) if port > 0 => port,
            Some(_) => {
                errors.push(ConfigError {
                    path: "environment DD_DOGSTATSD_PORT".to_owned(),
                    problem: format!(
                        "{:?} is not a port number",
                        env.dogstatsd_port.as_deref().unwrap_or("")
                    ),
                    hint: Some("use a number from 1 to 65535, e.g. 8125".to_owned()),
                });
                8125
            }
        };
        Target::Udp(join_host_port(host, port))
    });
    let tags = [
        ("env", &env.env),
        ("service", &env.service),
        ("version", &env.version),
        ("dd.internal.entity_id", &env.entity_id),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}:{v}")))
    .collect();
    (target, tags)
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Why a `dogstatsd.url` or `DD_DOGSTATSD_URL` is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{url:?}: the socket path must be absolute")]
    RelativeSocket { url: String },
    #[error("{url:?} is not a udp:// or unix:// URL")]
    Scheme { url: String },
    #[error("{url:?}: unclosed [ in the host")]
    UnclosedBracket { url: String },
    #[error("{url:?}: unexpected {after:?} after the host")]
    AfterHost { url: String, after: String },
    #[error("{url:?}: {host:?} is not a host name or address")]
    Host { url: String, host: String },
    #[error("{url:?}: {port:?} is not a port number")]
    Port { url: String, port: String },
}

impl UrlError {
    /// How to write one, for every kind of mistake.
    pub const HINT: &'static str = "use udp://HOST:PORT such as udp://127.0.0.1:8125, or unix:///PATH such as unix:///var/run/datadog/dsd.socket";
}

/// `udp://host[:port]` or `unix:///absolute/path`.
pub fn parse_url(url: &str) -> Result<Target, UrlError> {
    let url_owned = || url.to_owned();
    if let Some(path) = url.strip_prefix("unix://") {
        if !path.starts_with('/') {
            return Err(UrlError::RelativeSocket { url: url_owned() });
        }
        return Ok(Target::Unix(path.into()));
    }
    let Some(rest) = url.strip_prefix("udp://") else {
        return Err(UrlError::Scheme { url: url_owned() });
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err(UrlError::UnclosedBracket { url: url_owned() });
        };
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => {
                return Err(UrlError::AfterHost {
                    url: url_owned(),
                    after: after.to_owned(),
                })
            }
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
        return Err(UrlError::Host {
            url: url_owned(),
            host: host.to_owned(),
        });
    }
    let port = match port {
        None => 8125,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => {
                return Err(UrlError::Port {
                    url: url_owned(),
                    port: p.to_owned(),
                })
            }
        },
    };
    Ok(Target::Udp(join_host_port(host, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("udp://127.0.0.1:9125"),
            Ok(Target::Udp("127.0.0.1:9125".into()))
        );
        assert_eq!(
            parse_url("udp://localhost"),
            Ok(Target::Udp("localhost:8125".into()))
        );
        assert_eq!(
            parse_url("udp://[::1]:8125"),
            Ok(Target::Udp("[::1]:8125".into()))
        );
        assert_eq!(
            parse_url("unix:///var/run/datadog/dsd.socket"),
            Ok(Target::Unix("/var/run/datadog/dsd.socket".into()))
        );
        assert!(parse_url("unix://relative.sock").is_err());
        assert!(parse_url("tcp://1.2.3.4:8125").is_err());
        assert!(parse_url("udp://host:0").is_err());
        assert!(parse_url("udp://host:99999").is_err());
        assert!(parse_url("udp://:8125").is_err());
    }

    #[test]
    fn precedence() {
        let mut errors = Vec::new();
        let env = DatadogEnv {
            dogstatsd_url: Some("udp://10.0.0.1:1".into()),
            agent_host: Some("agent".into()),
            dogstatsd_port: Some("9999".into()),
            env: Some("prod".into()),
            version: Some("1.2".into()),
            ..DatadogEnv::default()
        };
        let (t, tags) = resolve(None, &env, &mut errors);
        assert_eq!(t, Target::Udp("10.0.0.1:1".into()));
        assert_eq!(tags, vec!["env:prod", "version:1.2"]);
        let file = Some(Target::Unix("/x.sock".into()));
        assert_eq!(
            resolve(file, &env, &mut errors).0,
            Target::Unix("/x.sock".into())
        );
        let env = DatadogEnv {
            agent_host: Some("agent".into()),
            dogstatsd_port: Some("9999".into()),
            ..DatadogEnv::default()
        };
        assert_eq!(
            resolve(None, &env, &mut errors).0,
            Target::Udp("agent:9999".into())
        );
        assert_eq!(
            resolve(None, &DatadogEnv::default(), &mut errors).0,
            Target::Udp(DEFAULT_UDP.into())
        );
        assert!(errors.is_empty());
        let env = DatadogEnv {
            dogstatsd_port: Some("eighty".into()),
            ..DatadogEnv::default()
        };
        resolve(None, &env, &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "environment DD_DOGSTATSD_PORT");
    }
}
