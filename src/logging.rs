//! Logs go to stderr, as text or JSON lines; under systemd (JOURNAL_STREAM set) without
//! timestamps, since journald adds its own.

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--log-level {level:?}")]
    Level {
        level: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("cannot start logging")]
    Init(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), Error> {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).map_err(|source| Error::Level {
            level: l.to_owned(),
            source,
        })?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = match (format, journald) {
        (LogFormat::Json, _) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Text, true) => builder.without_time().with_ansi(false).try_init(),
        (LogFormat::Text, false) => builder.with_ansi(false).try_init(),
    };
    result.map_err(Error::Init)
}
