//! Method `postqueue`: ask Postfix for its queue listing with `postqueue -c <dir> -j` (one JSON
//! object per message, Postfix 3.1+) or, on older Postfix, `postqueue -p`, and count messages per
//! queue from it as it streams. The listings are parsed in `listing` (`json`, `text`); this file
//! runs postqueue and sorts its failures.

use std::path::PathBuf;

use super::listing::{json, text, ParseError, Parser, TruncationLog};
use super::{Collection, InstanceSettings, Reads};
use crate::exec::{self, Command, ExecError, Failure, Limits};
use crate::postconf;
use crate::queue::ListingFormat;
use crate::snapshot::{ListingRules, Snapshot};

/// The options of one postqueue instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_directory: PathBuf,
    pub postqueue: PathBuf,
    pub postconf: PathBuf,
    /// Age thresholds in seconds for `postfix.queue.older_than`.
    pub age_thresholds: Vec<u64>,
}

/// Postqueue lists every queue of the Postfix instance it asks.
pub const READS: Reads = Reads::LISTING;

impl From<&InstanceSettings> for Options {
    fn from(s: &InstanceSettings) -> Options {
        Options {
            config_directory: s.config_directory.clone(),
            postqueue: s.commands.postqueue.clone(),
            postconf: s.commands.postconf.clone(),
            age_thresholds: s.age_thresholds.clone(),
        }
    }
}

#[derive(Debug)]
pub struct Postqueue {
    options: Options,
    /// `mail_version` decides the format: `-j` from Postfix 3.1.
    postconf: postconf::Cache,
    truncations: TruncationLog,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Postfix is not running: `{command}` says: {stderr}")]
    MailSystemDown { command: String, stderr: String },
    #[error("`{command}` was refused: this user is not in Postfix's authorized_mailq_users ({stderr}); add it there, or use method: showq, which reads Postfix's showq socket with group postdrop and is not subject to it")]
    NotAuthorized { command: String, stderr: String },
    #[error("`{command}` failed with {status}: {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("cannot read the Postfix parameters")]
    Postconf(#[from] postconf::Error),
    #[error("the output of `{command}` is not understood")]
    Parse {
        command: String,
        #[source]
        source: ParseError,
    },
    #[error(transparent)]
    Exec(#[from] ExecError),
}

impl Postqueue {
    pub fn new(options: Options) -> Self {
        Postqueue {
            postconf: postconf::Cache::new(&options.postconf, &options.config_directory),
            options,
            truncations: TruncationLog::default(),
        }
    }

    pub async fn collect(&mut self, limits: &Limits) -> Collection {
        let mut collection = Collection::default();
        let result = async {
            let params = self.postconf.get(limits).await?;
            let format = ListingFormat::of_version(params.version);
            collection.postfix_version = Some(params.mail_version);
            collection.how = match format {
                ListingFormat::Structured => "postqueue -j".to_owned(),
                ListingFormat::Text => "postqueue -p".to_owned(),
            };
            self.list(format, limits).await
        }
        .await;
        match result {
            Ok(snapshot) => {
                self.truncations
                    .note(&snapshot, &self.options.config_directory);
                collection.snapshot = snapshot;
            }
            Err(e) => collection.errors.push(e.into()),
        }
        collection
    }

    async fn list(&self, format: ListingFormat, limits: &Limits) -> Result<Snapshot, Error> {
        let rules = ListingRules::now(&self.options.age_thresholds);
        let (flag, mut parser) = match format {
            ListingFormat::Structured => ("-j", Parser::Json(json::Parser::new(rules))),
            ListingFormat::Text => ("-p", Parser::Text(text::Parser::new())),
        };
        let cmd = Command::new(
            &self.options.postqueue,
            [
                "-c".into(),
                self.options.config_directory.clone().into_os_string(),
                flag.into(),
            ],
        );
        let finished = exec::run(&cmd, limits, |chunk| parser.feed(chunk))
            .await
            .map_err(|f| failure(&cmd, f))?;
        // A failed postqueue prints nothing useful on stdout: judge the exit first, so that
        // "mail system is down" is reported as that and not as an empty listing.
        check_status(&cmd, &finished)?;
        parser.finish().map_err(|source| Error::Parse {
            command: cmd.to_string(),
            source,
        })
    }
}

fn failure(cmd: &Command, f: Failure<ParseError>) -> Error {
    match f {
        Failure::Exec(e) => e.into(),
        Failure::Output(source) => Error::Parse {
            command: cmd.to_string(),
            source,
        },
    }
}

/// Sorts a non-zero exit into the causes an admin can act on.
fn check_status(cmd: &Command, finished: &exec::Finished) -> Result<(), Error> {
    if finished.status.success() {
        return Ok(());
    }
    let command = cmd.to_string();
    let stderr = finished.stderr.clone();
    // postqueue's own wording (postqueue.c); its exit codes (69, 77) are shared with other
    // failures, so the text is what tells them apart.
    if stderr.contains("mail system is down") {
        Err(Error::MailSystemDown { command, stderr })
    } else if stderr.contains("is not allowed to view the mail queue") {
        Err(Error::NotAuthorized { command, stderr })
    } else {
        Err(Error::Failed {
            command,
            status: finished.describe_status(),
            stderr,
        })
    }
}
