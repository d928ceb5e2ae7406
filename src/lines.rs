//! Splitting a stream into lines with a bound on each, and quoting a line in an error. Below
//! everything that reads a child's output line by line (postconf, postmulti, the `-p` and `-j`
//! listings).

/// Splits a byte stream into lines as it arrives, holding at most one partial line of at most
/// `max` bytes: a longer line is an error, so a hostile or broken producer cannot make us
/// buffer without bound.
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    max: usize,
    line_no: u64,
}

/// A partial-line buffer larger than this is freed after use rather than kept.
const KEEP_CAPACITY: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} is longer than {max} bytes")]
pub struct LineTooLong {
    pub line: u64,
    pub max: usize,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        LineSplitter {
            partial: Vec::new(),
            max,
            line_no: 0,
        }
    }

    /// Calls `each(line_number, line)` for every complete line in `chunk` (without its `\n`).
    pub fn feed<E: From<LineTooLong>>(
        &mut self,
        mut chunk: &[u8],
        mut each: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            let (head, rest) = chunk.split_at(pos);
            chunk = &rest[1..];
            self.line_no += 1;
            if self.partial.is_empty() {
                self.check_len(head.len())?;
                each(self.line_no, head)?;
            } else {
                self.check_len(self.partial.len() + head.len())?;
                self.partial.extend_from_slice(head);
                let line = std::mem::take(&mut self.partial);
                each(self.line_no, &line)?;
                // Keep the buffer for the next partial line, unless a rare long line grew it.
                if line.capacity() <= KEEP_CAPACITY {
                    self.partial = line;
                    self.partial.clear();
                }
            }
        }
        if !chunk.is_empty() {
            self.check_len(self.partial.len() + chunk.len())
                .map_err(|mut e| {
                    e.line += 1;
                    e
                })?;
            self.partial.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// Ends the stream: a last line without `\n` is still a line.
    pub fn finish<E>(
        &mut self,
        mut each: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.partial.is_empty() {
            return Ok(());
        }
        self.line_no += 1;
        let line = std::mem::take(&mut self.partial);
        each(self.line_no, &line)
    }

    fn check_len(&self, len: usize) -> Result<(), LineTooLong> {
        if len > self.max {
            Err(LineTooLong {
                line: self.line_no,
                max: self.max,
            })
        } else {
            Ok(())
        }
    }
}

/// The first `max` characters of a line, for error messages.
pub fn excerpt(line: &[u8]) -> String {
    const MAX: usize = 80;
    let text = String::from_utf8_lossy(line);
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]], max: usize) -> Result<Vec<(u64, String)>, LineTooLong> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |n, l| {
                out.push((n, String::from_utf8_lossy(l).into_owned()));
                Ok::<_, LineTooLong>(())
            })?;
        }
        s.finish(|n, l| {
            out.push((n, String::from_utf8_lossy(l).into_owned()));
            Ok::<_, LineTooLong>(())
        })?;
        Ok(out)
    }

    #[test]
    fn lines_across_chunks() {
        let got = lines(&[b"ab", b"c\nde\n\nf", b"g"], 10).unwrap();
        let want: Vec<(u64, String)> = vec![
            (1, "abc".into()),
            (2, "de".into()),
            (3, "".into()),
            (4, "fg".into()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn long_line_is_an_error_even_when_split() {
        assert_eq!(
            lines(&[b"12345", b"678\n"], 6),
            Err(LineTooLong { line: 1, max: 6 })
        );
        assert_eq!(
            lines(&[b"ok\n1234567"], 6),
            Err(LineTooLong { line: 2, max: 6 })
        );
        assert!(lines(&[b"123456\n"], 6).is_ok());
    }
}
