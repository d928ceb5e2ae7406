//! Splitting a stream into lines with a bound on each, and quoting a line in an error. Below
//! everything that reads a child's output line by line (postconf, postmulti, the `-p` and `-j`
//! listings).

/// Splits a byte stream into lines as it arrives, holding at most one partial line of at most
/// `max` bytes, so that a hostile or broken producer cannot make us buffer without bound. A
/// longer line is an error ([`LineSplitter::feed`]), or is handed on in pieces, its first `max`
/// bytes and then the rest as it arrives, never held ([`LineSplitter::pieces`]).
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    max: usize,
    /// Lines completed so far.
    line_no: u64,
    /// Inside a line longer than `max`: its head was handed on, the rest passes through.
    cutting: bool,
}

/// A partial-line buffer larger than this is freed after use rather than kept.
const KEEP_CAPACITY: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} is longer than {max} bytes")]
pub struct LineTooLong {
    pub line: u64,
    pub max: usize,
}

/// What [`LineSplitter::pieces`] hands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A whole line of at most `max` bytes, without its `\n`.
    Line(&'a [u8]),
    /// The first `max` bytes of a longer line.
    Head(&'a [u8]),
    /// More of that line, as it arrives (never empty).
    Tail(&'a [u8]),
    /// The end of that line (its `\n`, or the end of the stream).
    End,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        LineSplitter {
            partial: Vec::new(),
            max,
            line_no: 0,
            cutting: false,
        }
    }

    /// Calls `each(line_number, line)` for every complete line in `chunk` (without its `\n`);
    /// a line longer than the bound is an error.
    pub fn feed<E: From<LineTooLong>>(
        &mut self,
        chunk: &[u8],
        mut each: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let max = self.max;
        self.pieces(chunk, |n, piece| match piece {
            Piece::Line(line) => each(n, line),
            _ => Err(LineTooLong { line: n, max }.into()),
        })
    }

    /// Calls `each(line_number, piece)` for every line, or piece of an over-long line, in
    /// `chunk`. Memory stays at most `max` bytes whatever the line length.
    pub fn pieces<E>(
        &mut self,
        mut chunk: &[u8],
        mut each: impl FnMut(u64, Piece<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        while !chunk.is_empty() {
            let (body, complete) = match chunk.iter().position(|&b| b == b'\n') {
                Some(pos) => {
                    let body = &chunk[..pos];
                    chunk = &chunk[pos + 1..];
                    (body, true)
                }
                None => (std::mem::take(&mut chunk), false),
            };
            let current = self.line_no + 1;
            if self.cutting {
                if !body.is_empty() {
                    each(current, Piece::Tail(body))?;
                }
            } else if self.partial.len() + body.len() > self.max {
                // Past the bound: the head goes on whole (the first `max` bytes, which hold
                // what a listing puts first), the rest passes through unheld.
                let (fill, rest) = body.split_at(self.max - self.partial.len());
                let head: &[u8] = if self.partial.is_empty() {
                    fill
                } else {
                    self.extend(fill);
                    &self.partial
                };
                let result = each(current, Piece::Head(head));
                self.release();
                result?;
                self.cutting = true;
                if !rest.is_empty() {
                    each(current, Piece::Tail(rest))?;
                }
            } else if !complete {
                self.extend(body);
            } else if self.partial.is_empty() {
                self.line_no += 1;
                each(current, Piece::Line(body))?;
            } else {
                self.line_no += 1;
                self.extend(body);
                let result = each(current, Piece::Line(&self.partial));
                self.release();
                result?;
            }
            if complete && self.cutting {
                self.line_no += 1;
                self.cutting = false;
                each(current, Piece::End)?;
            }
        }
        Ok(())
    }

    /// Ends the stream: a last line without `\n` is still a line.
    pub fn finish<E>(
        &mut self,
        mut each: impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.finish_pieces(|n, piece| match piece {
            Piece::Line(line) => each(n, line),
            // `feed` never starts cutting a line.
            _ => Ok(()),
        })
    }

    /// Ends the stream of [`LineSplitter::pieces`]: a last line without `\n` is still a line,
    /// and a cut one ends.
    pub fn finish_pieces<E>(
        &mut self,
        mut each: impl FnMut(u64, Piece<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let current = self.line_no + 1;
        if self.cutting {
            self.cutting = false;
            self.line_no += 1;
            return each(current, Piece::End);
        }
        if self.partial.is_empty() {
            return Ok(());
        }
        self.line_no += 1;
        let line = std::mem::take(&mut self.partial);
        each(current, Piece::Line(&line))
    }

    /// Appends to the partial line, growing the buffer as a `Vec` does but never past `max`,
    /// so that what is held is bounded by `max` and not by twice it.
    fn extend(&mut self, bytes: &[u8]) {
        let needed = self.partial.len() + bytes.len();
        if needed > self.partial.capacity() {
            let target = (self.partial.capacity() * 2)
                .max(needed)
                .min(self.max.max(needed));
            self.partial.reserve_exact(target - self.partial.len());
        }
        self.partial.extend_from_slice(bytes);
    }

    /// Empties the partial line, keeping its buffer for the next one unless a rare long line
    /// grew it.
    fn release(&mut self) {
        if self.partial.capacity() > KEEP_CAPACITY {
            self.partial = Vec::new();
        } else {
            self.partial.clear();
        }
    }

    /// The bytes the splitter holds room for (tests of the memory bound).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.partial.capacity()
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

    /// A line past the bound comes as its first `max` bytes, then the rest as it arrives, then
    /// its end; the lines around it are whole, numbered as lines, and nothing more than `max`
    /// is ever held.
    #[test]
    fn pieces_of_a_long_line() {
        let input = b"ab\n0123456789\ncd\nefghijkl";
        for chunk in 1..=input.len() {
            let mut s = LineSplitter::new(4);
            let mut got: Vec<(u64, String)> = Vec::new();
            let mut each = |n: u64, piece: Piece<'_>| {
                let text = match piece {
                    Piece::Line(l) => format!("line {}", String::from_utf8_lossy(l)),
                    Piece::Head(h) => format!("head {}", String::from_utf8_lossy(h)),
                    Piece::Tail(t) => format!("tail {}", String::from_utf8_lossy(t)),
                    Piece::End => "end".to_owned(),
                };
                got.push((n, text));
                Ok::<_, ()>(())
            };
            for c in input.chunks(chunk) {
                s.pieces(c, &mut each).unwrap();
                assert!(s.capacity() <= 4);
            }
            s.finish_pieces(&mut each).unwrap();
            // Tails arrive as the chunks cut them: join them to compare.
            let mut joined: Vec<(u64, String)> = Vec::new();
            for (n, text) in got {
                match (joined.last_mut(), text.strip_prefix("tail ")) {
                    (Some((m, last)), Some(t)) if *m == n && last.starts_with("tail ") => {
                        last.push_str(t)
                    }
                    _ => joined.push((n, text)),
                }
            }
            let want: Vec<(u64, String)> = [
                (1, "line ab"),
                (2, "head 0123"),
                (2, "tail 456789"),
                (2, "end"),
                (3, "line cd"),
                (4, "head efgh"),
                (4, "tail ijkl"),
                (4, "end"),
            ]
            .iter()
            .map(|(n, t)| (*n, (*t).to_owned()))
            .collect();
            assert_eq!(joined, want, "chunk size {chunk}");
        }
    }
}
