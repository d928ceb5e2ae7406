//! The command line (the man page is generated from these definitions).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Reports Postfix mail queues to Datadog through DogStatsD.
///
/// Reads a Datadog Agent `postfix` check config (conf.d/postfix.d/conf.yaml) unchanged, reads
/// each instance's queues on its interval (method showq, postqueue, scan, find or auto), and
/// sends `postfix.queue.*` gauges (size, bytes, ages, reasons, domains) and a
/// `postfix.can_collect` service check to DogStatsD. With a `log:` section it also reads
/// Postfix's log (the journal or a file) and sends the mail flow: `postfix.delivery.*` by
/// outcome, messages received, SMTP sessions and rejects, TLS, postscreen, warnings.
#[derive(Debug, Parser)]
#[command(name = "postfix-dogstatsd", version, about, long_about)]
pub struct Cli {
    /// The config file. Without it, /etc/postfix-dogstatsd/config.yaml is read if it exists,
    /// else a built-in default (method postqueue on /etc/postfix every 15 s, 3 domains and 2
    /// ages per queue, and the mail log from wherever this host keeps it) is used.
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Log line format: text, or json (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level or tracing filter (e.g. debug, or postfix_dogstatsd=debug). [default: info, or
    /// RUST_LOG when set]
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (the default): collect every instance on its interval until stopped.
    /// SIGHUP re-reads the config; SIGTERM or SIGINT stops.
    Run,
    /// Collect every instance once, print a table and the exact DogStatsD lines, and exit 1 if
    /// any instance failed or the mail log could not be read. Sends nothing unless --send is
    /// given.
    ///
    /// With a `log:` section, also counts what the mail log holds from --log-since ago until
    /// now, as `run` would, and prints the counts per family after the queues (printed only,
    /// never sent); the saved log position and journal cursor are neither used nor changed.
    Check {
        /// Also send the lines to DogStatsD.
        #[arg(long)]
        send: bool,
        /// How far back the mail log is counted: seconds, or a number with s, m, h, d or w
        /// (30s, 10m, 2h). A file is read from its first line stamped within it (and its
        /// rotated .1 when the window starts there), at most its last 64 MiB; the journal
        /// with journalctl --since.
        #[arg(long, value_name = "AGE", default_value = "10m", value_parser = log_since)]
        log_since: Duration,
    },
    /// Check the config and exit: 0 when it is valid, 78 with every problem listed when not.
    Validate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `--log-since`: an age as the config writes them (`age_thresholds`), more than 0.
fn log_since(text: &str) -> Result<Duration, String> {
    match crate::config::parse_age(text) {
        Some(0) => Err("the window must be longer than 0 s".to_owned()),
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Err(format!(
            "{text:?} is not an age: a number of seconds, or a number with s, m, h, d or w (30s, 10m, 2h)"
        )),
    }
}
