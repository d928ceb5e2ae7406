//! The log wing: the mail flow read from Postfix's log, beside the queue wing's snapshots.
//! Lines come from a source (a file or the journal), are taken apart (`line`), and each family
//! of parsers turns them into events that are counted. The parsers are pure; only `source`
//! does I/O.

pub mod counters;
pub mod delivery;
pub mod fields;
pub mod line;
pub mod smtpd;
pub mod source;
