//! Method `showq`: read the queue listing straight from Postfix's showq service, the socket
//! `postqueue` itself reads (`<queue_directory>/public/<showq_service_name>`). No fork and no
//! setgid program: the daemon's user needs only group `postdrop` (the `public` directory is
//! postfix:postdrop 0710). Connecting directly also skips `authorized_mailq_users`.
//!
//! Postfix 3.1 and later speak an attribute stream, older Postfix the `postqueue -p` text; both
//! are parsed in `listing` (`attr`, `text`), this file only connects and reads.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::UnixStream;

use super::listing::{attr, text, ParseError, Parser, TruncationLog};
use super::{Collection, InstanceSettings, Reads};
use crate::exec::{Limits, Stopped};
use crate::queue::ListingFormat;
use crate::snapshot::{ListingRules, Snapshot};
use crate::{paced, postconf};

/// Sets the flag when dropped: tells a reader thread that nobody waits for it any more.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub config_directory: PathBuf,
    pub postconf: PathBuf,
    pub age_thresholds: Vec<u64>,
}

/// Showq lists every queue; the socket's place comes from postconf.
pub const READS: Reads = Reads::LISTING;

impl From<&InstanceSettings> for Options {
    fn from(s: &InstanceSettings) -> Options {
        Options {
            config_directory: s.config_directory.clone(),
            postconf: s.commands.postconf.clone(),
            age_thresholds: s.age_thresholds.clone(),
        }
    }
}

#[derive(Debug)]
pub struct Showq {
    options: Options,
    postconf: postconf::Cache,
    truncations: TruncationLog,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Postfix is not running: nothing listens on {}", socket.display())]
    NotRunning { socket: PathBuf },
    #[error("no showq socket at {}: is Postfix installed, and is queue_directory right?", socket.display())]
    NoSocket { socket: PathBuf },
    #[error("permission denied on {}: add this user to group postdrop (`usermod -aG postdrop <user>`)", socket.display())]
    Denied { socket: PathBuf },
    #[error("cannot read {}", socket.display())]
    Io {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading {} {stopped}", socket.display())]
    Stopped { socket: PathBuf, stopped: Stopped },
    #[error("the stream from {} is not understood", socket.display())]
    Parse {
        socket: PathBuf,
        #[source]
        source: ParseError,
    },
    #[error("cannot read the Postfix parameters")]
    Postconf(#[from] postconf::Error),
}

impl Showq {
    pub fn new(options: Options) -> Self {
        Showq {
            postconf: postconf::Cache::new(&options.postconf, &options.config_directory),
            options,
            truncations: TruncationLog::default(),
        }
    }

    pub async fn collect(&mut self, limits: &Limits) -> Collection {
        let mut collection = Collection {
            how: "showq socket".to_owned(),
            ..Collection::default()
        };
        let result = async {
            let params = self.postconf.get(limits).await?;
            collection.postfix_version = Some(params.mail_version.clone());
            let socket = params
                .queue_directory
                .join("public")
                .join(&params.showq_service_name);
            let rules = ListingRules::now(&self.options.age_thresholds);
            let parser = match ListingFormat::of_version(params.version) {
                ListingFormat::Structured => Parser::Attributes(attr::Parser::new(rules)),
                ListingFormat::Text => Parser::Text(text::Parser::new()),
            };
            read(&socket, parser, limits).await
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
}

async fn read(socket: &PathBuf, mut parser: Parser, limits: &Limits) -> Result<Snapshot, Error> {
    let fail = |e: io::Error| match e.kind() {
        io::ErrorKind::ConnectionRefused => Error::NotRunning {
            socket: socket.clone(),
        },
        io::ErrorKind::NotFound => Error::NoSocket {
            socket: socket.clone(),
        },
        io::ErrorKind::PermissionDenied => Error::Denied {
            socket: socket.clone(),
        },
        _ => Error::Io {
            socket: socket.clone(),
            source: e,
        },
    };
    let parse = |source: ParseError| Error::Parse {
        socket: socket.clone(),
        source,
    };
    let started = tokio::time::Instant::now();
    let work = async {
        let mut stream = UnixStream::connect(socket)
            .await
            .and_then(UnixStream::into_std)
            .map_err(fail)?;
        // showq writes every message on its own into about 20 KB of socket room: read it in
        // batches, on a thread with a sub-millisecond clock (see `paced`). A thread of its own,
        // not one of tokio's blocking pool, where directory walks that outlived their deadline
        // could keep it waiting. Leaving this future (deadline, shutdown) stops the thread
        // within one pause.
        let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = Arc::clone(&stop.0);
        let (done, result) = tokio::sync::oneshot::channel();
        let held = limits
            .live
            .hold(format!("a reader of {}", socket.display()));
        std::thread::Builder::new()
            .name("showq-reader".to_owned())
            .spawn(move || {
                let _held = held;
                let outcome =
                    paced::read_blocking(&mut stream, &flag, &mut |chunk| parser.feed(chunk));
                let _ = done.send((parser, outcome));
            })
            .map_err(fail)?;
        let (parser, outcome) = result
            .await
            .map_err(|_| fail(io::Error::other("the reader thread ended without a result")))?;
        outcome.map_err(fail)?.map_err(parse)?;
        parser.finish().map_err(parse)
    };
    crate::exec::within(limits, started, work)
        .await
        .unwrap_or_else(|stopped| {
            Err(Error::Stopped {
                socket: socket.clone(),
                stopped,
            })
        })
}
