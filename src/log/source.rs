//! Where log lines come from: a followed file (`file`); the journal will sit beside it. Each
//! source hands out whole lines and a position the caller saves once the counts those lines
//! produced are flushed.

pub mod file;
