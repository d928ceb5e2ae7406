//! Shared by the streaming parsers' fuzz targets: the property streaming is for. Fed whole and
//! fed in fuzzed pieces, a parser gives the same result (where a read ends must not matter).

use postfix_dogstatsd::collect::listing::{attr, json, text, ParseError};
use postfix_dogstatsd::snapshot::{ListingRules, Snapshot};

pub trait Streaming {
    fn feed(&mut self, chunk: &[u8]) -> Result<(), ParseError>;
    fn finish(self) -> Result<Snapshot, ParseError>;
}

macro_rules! streaming {
    ($($t:ty),*) => {$(
        impl Streaming for $t {
            fn feed(&mut self, chunk: &[u8]) -> Result<(), ParseError> {
                <$t>::feed(self, chunk)
            }
            fn finish(self) -> Result<Snapshot, ParseError> {
                <$t>::finish(self)
            }
        }
    )*};
}
streaming!(json::Parser, attr::Parser, text::Parser);

#[allow(dead_code)] // the text parser needs no rules
pub fn rules() -> ListingRules {
    ListingRules { now: 1_800_000_000, age_thresholds: vec![300, 3600] }
}

/// Feeds `input` in pieces of the given sizes (the rest in one piece), then finishes.
fn parse<P: Streaming>(mut p: P, input: &[u8], sizes: &[u8]) -> Result<Snapshot, ParseError> {
    let mut rest = input;
    for &n in sizes {
        let n = (n as usize).min(rest.len());
        p.feed(&rest[..n])?;
        rest = &rest[n..];
    }
    p.feed(rest)?;
    p.finish()
}

/// The first byte of `data` says how many of the next bytes are piece sizes; the rest is the
/// input. Panics when whole and pieces disagree.
pub fn same_whole_and_in_pieces<P: Streaming>(new: impl Fn() -> P, data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (n as usize % 16).min(rest.len());
    let (sizes, input) = rest.split_at(n);
    assert_eq!(parse(new(), input, &[]), parse(new(), input, sizes));
}
