//! The queue listings Postfix writes, parsed: pure streaming parsers, fed bytes as they arrive,
//! giving a [`Snapshot`]; no process, no socket, no file. The methods that read a listing
//! (postqueue, showq) do the I/O and hand each chunk here.
//!
//! - [`json`]: `postqueue -j`, one JSON object per message (Postfix 3.1+);
//! - [`attr`]: showq's attribute stream, what `postqueue -j` itself reads (Postfix 3.1+);
//! - [`text`]: the `postqueue -p` text, which older Postfix's showq also sends.
//!
//! Which Postfix writes which, and which queues each can name, is `crate::queue`'s.

pub mod attr;
pub mod json;
pub mod text;

use crate::lines::LineTooLong;
use crate::snapshot::Snapshot;

/// One message with all its recipients (a `-j` line, an attribute-stream group): Postfix bounds
/// neither, we must. 4 MiB is some 25,000 recipients; a longer one fails the collection with a
/// message saying so.
pub const MAX_MESSAGE: usize = 4 << 20;

/// Why a listing was not understood, whichever its format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(transparent)]
    TooLong(#[from] LineTooLong),
    #[error("line {line}: not a JSON queue entry ({reason}): {excerpt}")]
    Json {
        line: u64,
        reason: String,
        excerpt: String,
    },
    #[error("line {line}: not a queue listing line: {excerpt}")]
    Text { line: u64, excerpt: String },
    #[error("the listing ends without its `-- N Kbytes in M Requests.` summary (truncated?)")]
    NoSummary,
    #[error("the listing holds {counted} messages but its summary says {summary}")]
    SummaryMismatch { counted: u64, summary: u64 },
    #[error("empty output (postqueue -p always prints at least `Mail queue is empty`)")]
    Empty,
    #[error("an attribute is longer than {} bytes", attr::MAX_TOKEN)]
    AttributeTooLong,
    #[error("message {message}: its recipients exceed {MAX_MESSAGE} bytes")]
    MessageTooLarge { message: u64 },
    #[error("message {message}: {name} is not a number: {value:?}")]
    Number {
        message: u64,
        name: &'static str,
        value: String,
    },
    #[error("the stream ends before its end marker (truncated)")]
    Truncated,
    #[error("data after the end marker")]
    TrailingData,
}

/// A parser for the format a method chose at run time, from the Postfix version.
#[derive(Debug)]
pub enum Parser {
    Json(json::Parser),
    Attributes(attr::Parser),
    Text(text::Parser),
}

impl Parser {
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), ParseError> {
        match self {
            Parser::Json(p) => p.feed(chunk),
            Parser::Attributes(p) => p.feed(chunk),
            Parser::Text(p) => p.feed(chunk),
        }
    }

    pub fn finish(self) -> Result<Snapshot, ParseError> {
        match self {
            Parser::Json(p) => p.finish(),
            Parser::Attributes(p) => p.finish(),
            Parser::Text(p) => p.finish(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::snapshot::Snapshot;

    /// Each queue's message count, in the snapshot's order, for comparing with a literal.
    pub fn counts(s: &Snapshot) -> Vec<(&str, u64)> {
        s.queues
            .iter()
            .map(|q| (q.queue.as_str(), q.messages))
            .collect()
    }
}
