//! Collection: one file per collecting method, one enum arm each (and `Unavailable`, for an
//! instance whose method could not be set up). Every method fills the same
//! [`Snapshot`]; how it gets there (fork, socket, directory walk) is its own business.

pub mod auto;
pub mod find;
pub mod listing;
pub mod postqueue;
pub mod scan;
pub mod showq;

use crate::exec::Limits;
use crate::snapshot::Snapshot;

/// A configured collection method with the state it keeps between cycles.
#[derive(Debug)]
pub enum Method {
    Find(find::Find),
    Postqueue(postqueue::Postqueue),
    Showq(showq::Showq),
    Scan(scan::Scan),
    Auto(auto::Auto),
    /// Cannot run; every collection reports this.
    Unavailable(String),
}

/// What one cycle of one instance produced. A method that reads several queues separately
/// (find) can succeed for some and fail for others: the snapshot then holds the queues that
/// were read, and `errors` says what was not.
#[derive(Debug, Default)]
pub struct Collection {
    pub snapshot: Snapshot,
    pub errors: Vec<CollectError>,
    /// How the method went about it this time ("sudo find", "postqueue -j", ...), for logs and
    /// the `check` table.
    pub how: String,
    /// The Postfix `mail_version`, when the method learned it.
    pub postfix_version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Find(#[from] find::Error),
    #[error(transparent)]
    Postqueue(#[from] postqueue::Error),
    #[error(transparent)]
    Showq(#[from] showq::Error),
    #[error(transparent)]
    Scan(#[from] scan::Error),
    #[error("{0}")]
    Unavailable(String),
    /// A run that overstayed even the kill of its children.
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
}

impl Collection {
    /// Every error with its causes, one after the other, for messages and logs.
    pub fn error_text(&self) -> String {
        self.errors
            .iter()
            .map(|e| crate::error_chain(e))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Method {
    /// The name used in the config (`method:`), logs and the `check` table.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Find(_) => "find",
            Method::Postqueue(_) => "postqueue",
            Method::Showq(_) => "showq",
            Method::Scan(_) => "scan",
            Method::Auto(_) => "auto",
            Method::Unavailable(_) => "unavailable",
        }
    }

    pub async fn collect(&mut self, limits: &Limits) -> Collection {
        match self {
            Method::Find(m) => m.collect(limits).await,
            Method::Postqueue(m) => m.collect(limits).await,
            Method::Showq(m) => m.collect(limits).await,
            Method::Scan(m) => m.collect(limits).await,
            Method::Auto(m) => m.collect(limits).await,
            Method::Unavailable(why) => Collection {
                errors: vec![CollectError::Unavailable(why.clone())],
                ..Collection::default()
            },
        }
    }
}
