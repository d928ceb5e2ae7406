//! A Postfix queue file, read the way showq reads it (SPEC 8.1-8.4): the records as `rec_get`
//! returns them (pointer records followed, padding skipped, nothing after the end record), and
//! from them what `postqueue -j` lists for the message: its size, arrival time, whether it was
//! forced to expire, and its recipients with their delay reasons, the defer log's first and
//! then the queue file's own that the defer log did not name. Pure: the caller reads the file,
//! its defer log and its `stat`, and hands the bytes here.
//!
//! Linear in the file: every record is visited once, except after a backward pointer, and
//! pointers may visit no more than [`MAX_VISITED`] bytes in all (Postfix's own files visit
//! each byte once; showq would follow up to 10,000 backward jumps over a crafted file).

use std::collections::HashSet;

use super::defer;

/// showq stops following pointers after this many backward jumps (`rec_goto`).
const REVERSE_JUMP_LIMIT: u32 = 10_000;

/// Bytes a read may visit through pointers, beyond the file's own length: what a pointer loop
/// of a file that is not Postfix's costs at most.
pub const MAX_VISITED: u64 = 1 << 20;

/// What showq prints for an empty address (`empty_address_recipient`'s default).
const EMPTY_ADDRESS: &str = "MAILER-DAEMON";

/// Record types (`global/rec_type.h`) that the reading looks at.
pub mod rec {
    pub const SIZE: u8 = b'C';
    pub const TIME: u8 = b'T';
    pub const FROM: u8 = b'S';
    pub const RCPT: u8 = b'R';
    pub const DONE: u8 = b'D';
    pub const MESG: u8 = b'M';
    pub const END: u8 = b'E';
    pub const PTR: u8 = b'p';
    pub const DTXT: u8 = b'w';
    pub const XTRA: u8 = b'X';
}

/// The queue file's `stat`, as far as showq looks at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// `st_size`: the message size when the size record does not say.
    pub size: u64,
    /// `st_mtime`, seconds: the arrival time when no time record says.
    pub mtime: i64,
    /// `st_mode`: group execute marks a message forced to expire.
    pub mode: u32,
}

/// The Postfix settings that change what showq prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// `smtputf8_enable`: UTF-8 in addresses and reasons is printed as it is, not as `?`.
    pub utf8: bool,
    /// `duplicate_filter_limit`: defer log addresses remembered to skip the queue file's.
    pub duplicate_filter_limit: usize,
}

impl Default for Rules {
    /// Postfix 3.x's defaults.
    fn default() -> Self {
        Rules {
            utf8: true,
            duplicate_filter_limit: 1000,
        }
    }
}

/// What showq makes of one queue file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// A sender record was reached: showq lists the message. A file without one (being
    /// written, truncated, not Postfix's) is not listed at all.
    pub listed: bool,
    /// `message_size`: the size record's first field when the record holds only digits and
    /// spaces, else the file's size.
    pub message_size: u64,
    /// `arrival_time`: the seconds of the first non-zero time record, else the file's mtime.
    pub arrival: i64,
    /// `forced_expire`: the mode's group execute bit.
    pub forced_expire: bool,
    /// How the reading ended.
    pub end: End,
}

/// Why the records ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The end record: a complete file.
    Complete,
    /// The file ended without an end record (being written, or cut).
    Eof,
    /// A record showq cannot read, or one that makes it stop (a second sender, a recipient
    /// before the sender, a record of type 0): what was listed before stays.
    Malformed(&'static str),
    /// The record at this offset lies in a part of the file the caller did not give
    /// ([`Bytes::sparse`]): read the whole file and try again.
    Hole(u64),
}

/// The bytes of a queue file: all of them, or its head and its tail without the message
/// content in between (which showq skips when the size record is good).
#[derive(Debug, Clone, Copy)]
pub struct Bytes<'a> {
    head: &'a [u8],
    tail_at: u64,
    tail: &'a [u8],
    len: u64,
}

impl<'a> Bytes<'a> {
    pub fn whole(file: &'a [u8]) -> Self {
        Bytes {
            head: file,
            tail_at: file.len() as u64,
            tail: &[],
            len: file.len() as u64,
        }
    }

    /// `head` is the file from offset 0, `tail` the file from `tail_at` to its end (`len`).
    pub fn sparse(head: &'a [u8], tail_at: u64, tail: &'a [u8]) -> Self {
        Bytes {
            head,
            tail_at,
            tail,
            len: tail_at.saturating_add(tail.len() as u64),
        }
    }

    /// `n` bytes at `at`: `Ok(None)` past the end of the file, `Err(at)` in the hole.
    fn get(&self, at: u64, n: u64) -> Result<Option<&'a [u8]>, u64> {
        let end = at.checked_add(n).ok_or(at)?;
        if end > self.len {
            return Ok(None);
        }
        if end <= self.head.len() as u64 {
            return Ok(Some(&self.head[at as usize..end as usize]));
        }
        if at >= self.tail_at {
            let from = (at - self.tail_at) as usize;
            return Ok(Some(&self.tail[from..from + n as usize]));
        }
        Err(at)
    }
}

/// One record as `rec_get` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub kind: u8,
    /// Where the record starts.
    pub offset: u64,
    pub data: &'a [u8],
}

/// The records of a queue file, as showq reads them: pointer records followed (an offset of
/// 0 is padding), padding records skipped, nothing read after the end record.
#[derive(Debug)]
pub struct Records<'a> {
    bytes: Bytes<'a>,
    pos: u64,
    saved_offset: u64,
    reverse_jumps: u32,
    visited: u64,
    done: bool,
}

impl<'a> Records<'a> {
    pub fn new(bytes: Bytes<'a>) -> Self {
        Records {
            bytes,
            pos: 0,
            saved_offset: 0,
            reverse_jumps: 0,
            visited: 0,
            done: false,
        }
    }

    /// Continues at `pos` (showq's seek over the message content).
    pub fn seek_forward(&mut self, n: u64) {
        self.pos = self.pos.saturating_add(n);
    }

    /// The next record, or how the records ended.
    pub fn next_record(&mut self) -> Result<Record<'a>, End> {
        if self.done {
            return Err(End::Eof);
        }
        let result = self.read();
        if result.is_err() {
            self.done = true;
        }
        result
    }

    fn read(&mut self) -> Result<Record<'a>, End> {
        loop {
            let offset = self.pos;
            let Some(kind) = self.bytes.get(offset, 1).map_err(End::Hole)? else {
                return Err(End::Eof);
            };
            let kind = kind[0];
            // The length: 7 bits a byte, low first, at most 5 bytes, in a C int (record.c).
            let mut len: i64 = 0;
            let mut at = offset + 1;
            let mut shift = 0u32;
            loop {
                if shift >= 32 {
                    return Err(End::Malformed("too many length bits"));
                }
                let Some(b) = self.bytes.get(at, 1).map_err(End::Hole)? else {
                    return Err(End::Malformed("unexpected end of file in a record length"));
                };
                at += 1;
                len |= i64::from(u32::from(b[0] & 0x7f).wrapping_shl(shift) as i32);
                if b[0] & 0x80 == 0 {
                    break;
                }
                shift += 7;
            }
            if len < 0 {
                return Err(End::Malformed("negative record length"));
            }
            let Some(data) = self.bytes.get(at, len as u64).map_err(End::Hole)? else {
                return Err(End::Malformed("unexpected end of file in record data"));
            };
            self.pos = at + len as u64;
            self.visited = self.visited.saturating_add(self.pos - offset);
            if self.visited > self.bytes.len.saturating_add(MAX_VISITED) {
                return Err(End::Malformed("pointer records visit too much of the file"));
            }
            match kind {
                rec::PTR => self.jump(data)?,
                rec::DTXT => {}
                rec::END => {
                    self.done = true;
                    return Ok(Record { kind, offset, data });
                }
                _ => return Ok(Record { kind, offset, data }),
            }
        }
    }

    /// `rec_goto`: a decimal offset, leading spaces allowed; 0 is padding.
    fn jump(&mut self, data: &[u8]) -> Result<(), End> {
        let text = c_str(data);
        let digits = &text[text.iter().take_while(|b| is_space(**b)).count()..];
        let mut offset: u64 = 0;
        for &b in digits {
            if !b.is_ascii_digit() {
                return Err(End::Malformed("malformed pointer record"));
            }
            offset = offset
                .checked_mul(10)
                .and_then(|o| o.checked_add(u64::from(b - b'0')))
                .filter(|o| *o <= i64::MAX as u64)
                .ok_or(End::Malformed("malformed pointer record"))?;
        }
        if offset == 0 {
            return Ok(());
        }
        if offset <= self.saved_offset {
            self.reverse_jumps += 1;
            if self.reverse_jumps > REVERSE_JUMP_LIMIT {
                return Err(End::Malformed("too many reverse jump records"));
            }
        }
        self.pos = offset;
        self.saved_offset = offset;
        Ok(())
    }
}

/// Reads a queue file the way showq does. `defer_log` is the message's defer log
/// (`defer/<hash>/<queue id>`), if it has one. `each` gets every recipient showq would list,
/// in its order, with its delay reason (`None` where showq sends an empty one): the defer
/// log's entries, then each queue file recipient not among the first
/// `duplicate_filter_limit` defer log addresses. Repeats are passed on as showq lists them.
pub fn read(
    bytes: Bytes<'_>,
    meta: Meta,
    defer_log: Option<&[u8]>,
    rules: Rules,
    mut each: impl FnMut(&str, Option<&str>),
) -> Message {
    let mut arrival: i64 = 0;
    let mut size = meta.size;
    let mut size_ok = false;
    let mut listed = false;
    let mut filter: Option<HashSet<String>> = None;
    let mut records = Records::new(bytes);
    let mut quoted = Vec::new();
    let end = loop {
        let r = match records.next_record() {
            Ok(r) => r,
            Err(end) => break end,
        };
        match r.kind {
            0 => break End::Malformed("a record of type 0"),
            rec::TIME if arrival == 0 => arrival = atol(c_str(r.data)),
            rec::SIZE if !size_ok => {
                let text = c_str(r.data);
                size_ok = text.iter().all(|b| b.is_ascii_digit() || *b == b' ');
                size = if size_ok {
                    atol(text).max(0) as u64
                } else {
                    meta.size
                };
            }
            rec::FROM => {
                if listed {
                    break End::Malformed("a second sender record");
                }
                listed = true;
                if let Some(log) = defer_log {
                    let mut seen = HashSet::new();
                    for entry in defer::entries(log, rules.utf8) {
                        if seen.len() < rules.duplicate_filter_limit {
                            seen.insert(entry.address.clone());
                        }
                        each(&entry.address, Some(&entry.reason));
                    }
                    filter = Some(seen);
                }
            }
            rec::RCPT => {
                if !listed {
                    break End::Malformed("a recipient before the sender");
                }
                let raw = c_str(r.data);
                let raw = if raw.is_empty() {
                    EMPTY_ADDRESS.as_bytes()
                } else {
                    raw
                };
                quote_822_local(raw, &mut quoted);
                printable(&mut quoted, rules.utf8);
                let address = String::from_utf8_lossy(&quoted);
                if filter
                    .as_ref()
                    .is_none_or(|f| !f.contains(address.as_ref()))
                {
                    each(&address, None);
                }
            }
            rec::MESG if size_ok => records.seek_forward(size),
            rec::END => break End::Complete,
            _ => {}
        }
    };
    Message {
        listed,
        message_size: size,
        arrival: if arrival > 0 { arrival } else { meta.mtime },
        forced_expire: meta.mode & 0o010 != 0,
        end,
    }
}

/// The size record's first two fields, when the record is the file's first and well formed:
/// (content size, content offset), so that a caller may read the file without its content.
pub fn content_span(head: &[u8]) -> Option<(u64, u64)> {
    let r = Records::new(Bytes::whole(head)).next_record().ok()?;
    if r.kind != rec::SIZE || r.offset != 0 {
        return None;
    }
    let text = std::str::from_utf8(c_str(r.data)).ok()?;
    let mut fields = text.split_ascii_whitespace().map(|f| f.parse::<u64>().ok());
    Some((fields.next()??, fields.next()??))
}

/// The data of a record as the C string showq sees: up to its first NUL.
fn c_str(data: &[u8]) -> &[u8] {
    match data.iter().position(|b| *b == 0) {
        Some(n) => &data[..n],
        None => data,
    }
}

/// C's `isspace` in the C locale.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// C's `atol` (glibc: saturating): leading white space, a sign, digits, then anything.
pub(crate) fn atol(text: &[u8]) -> i64 {
    let mut rest = &text[text.iter().take_while(|b| is_space(**b)).count()..];
    let negative = rest.first() == Some(&b'-');
    if matches!(rest.first(), Some(b'-' | b'+')) {
        rest = &rest[1..];
    }
    let mut n: i64 = 0;
    for &b in rest.iter().take_while(|b| b.is_ascii_digit()) {
        let d = i64::from(b - b'0');
        n = if negative {
            n.saturating_mul(10).saturating_sub(d)
        } else {
            n.saturating_mul(10).saturating_add(d)
        };
    }
    n
}

/// Postfix's `printable` (`util/printable.c`): bytes that are neither printable ASCII nor,
/// with UTF-8 on, a multi-byte sequence's lead and continuation bytes, become `?`.
pub(crate) fn printable(text: &mut [u8], utf8: bool) {
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        let continuation = |b: Option<&u8>| b.is_some_and(|b| (0x80..0xc0).contains(b));
        if (0x20..0x7f).contains(&c) {
        } else if utf8 && (194..=254).contains(&c) && continuation(text.get(i + 1)) {
            while continuation(text.get(i + 1)) {
                i += 1;
            }
        } else {
            text[i] = b'?';
        }
        i += 1;
    }
}

/// Postfix's `quote_822_local` as showq calls it (8-bit clean): a local part that is not an
/// RFC 822 dot-string is put in quotes, `"`, `\` and CR escaped inside them.
pub(crate) fn quote_822_local(mbox: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let start = match mbox.iter().position(|b| *b == b':') {
        Some(colon) if mbox.first() == Some(&b'@') => colon + 1,
        _ => 0,
    };
    let end = match mbox[start..].iter().rposition(|b| *b == b'@') {
        Some(at) => start + at,
        None => mbox.len(),
    };
    let local = &mbox[start..end];
    if is_dot_string(local) {
        out.extend_from_slice(mbox);
        return;
    }
    out.extend_from_slice(&mbox[..start]);
    out.push(b'"');
    for &b in local {
        if matches!(b, b'"' | b'\\' | b'\r') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    out.extend_from_slice(&mbox[end..]);
}

fn is_dot_string(local: &[u8]) -> bool {
    if local.first().is_none_or(|b| *b == b'.') || local.last() == Some(&b'.') {
        return false;
    }
    !local.windows(2).any(|w| w == b"..")
        && local
            .iter()
            .all(|&b| !(b <= b' ' || b == 0x7f || b"()<>@,;:\\\"[]".contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record: type, length (base 128, low first), data.
    pub fn record(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
        out.push(kind);
        let mut n = data.len();
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(data);
    }

    const META: Meta = Meta {
        size: 999,
        mtime: 1_700_000_000,
        mode: 0o100700,
    };

    fn listed(file: &[u8], defer_log: Option<&[u8]>) -> (Message, Vec<(String, Option<String>)>) {
        let mut got = Vec::new();
        let m = read(
            Bytes::whole(file),
            META,
            defer_log,
            Rules::default(),
            |a, r| got.push((a.to_owned(), r.map(str::to_owned))),
        );
        (m, got)
    }

    /// A file laid out as cleanup writes it: size record patched to the content's size and
    /// offset, time, sender, recipients, content, extracted recipients, end.
    fn message(recipients: &[&[u8]], extracted: &[&[u8]]) -> Vec<u8> {
        let mut f = Vec::new();
        record(&mut f, rec::SIZE, &[b' '; 95]);
        record(&mut f, rec::TIME, b"1796151718 205011");
        record(&mut f, rec::FROM, b"alice@example.com");
        for r in recipients {
            record(&mut f, b'O', r);
            record(&mut f, rec::RCPT, r);
        }
        record(&mut f, rec::MESG, b"");
        let data_offset = f.len();
        record(&mut f, b'N', b"Subject: x");
        record(&mut f, b'N', b"");
        record(&mut f, b'N', b"body");
        let content = f.len() - data_offset;
        record(&mut f, rec::XTRA, b"");
        for r in extracted {
            record(&mut f, rec::RCPT, r);
        }
        record(&mut f, rec::END, b"");
        let c = format!(
            "{content:>15} {data_offset:>15} {:>15} {:>15} {content:>15} {:>15}",
            recipients.len(),
            0,
            0
        );
        f[2..97].copy_from_slice(c.as_bytes());
        f
    }

    #[test]
    fn lengths_are_base_128_low_group_first() {
        let mut f = Vec::new();
        record(&mut f, b'N', &[b'x'; 300]);
        assert_eq!(&f[..3], &[b'N', 0xac, 0x02]);
        let mut r = Records::new(Bytes::whole(&f));
        assert_eq!(r.next_record().unwrap().data.len(), 300);
        assert_eq!(r.next_record(), Err(End::Eof));
        // Five length bytes at most.
        let f = [b'N', 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert_eq!(
            Records::new(Bytes::whole(&f)).next_record(),
            Err(End::Malformed("too many length bits"))
        );
        // A fifth byte that overflows the C int is a negative length.
        let f = [b'N', 0x80, 0x80, 0x80, 0x80, 0x08];
        assert_eq!(
            Records::new(Bytes::whole(&f)).next_record(),
            Err(End::Malformed("negative record length"))
        );
    }

    #[test]
    fn a_complete_message() {
        let f = message(
            &[b"carol@example.com", b"dave@example.net"],
            &[b"bcc@example.org"],
        );
        let (m, got) = listed(&f, None);
        assert_eq!(m.end, End::Complete);
        assert!(m.listed);
        assert_eq!(m.arrival, 1_796_151_718);
        assert_eq!(m.message_size, 20);
        assert!(!m.forced_expire);
        let names: Vec<&str> = got.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            names,
            ["carol@example.com", "dave@example.net", "bcc@example.org"]
        );
        let m_at = f.windows(2).position(|w| w == [rec::MESG, 0]).unwrap() as u64;
        assert_eq!(content_span(&f), Some((20, m_at + 2)));
    }

    #[test]
    fn the_content_is_skipped_by_the_size_record() {
        let f = message(&[b"carol@example.com"], &[b"x@example.org"]);
        let (span, at) = content_span(&f).unwrap();
        let head = &f[..at as usize];
        let tail_at = at + span;
        let sparse = Bytes::sparse(head, tail_at, &f[tail_at as usize..]);
        let mut got = Vec::new();
        let m = read(sparse, META, None, Rules::default(), |a, _| {
            got.push(a.to_owned())
        });
        assert_eq!(m.end, End::Complete);
        assert_eq!(got, ["carol@example.com", "x@example.org"]);
        // Without a good size record showq reads the content record by record: a hole.
        let mut bad = f.clone();
        bad[10] = b'x';
        let sparse = Bytes::sparse(&bad[..at as usize], tail_at, &bad[tail_at as usize..]);
        let m = read(sparse, META, None, Rules::default(), |_, _| {});
        assert!(matches!(m.end, End::Hole(_)), "{m:?}");
        let (m, _) = listed(&bad, None);
        assert_eq!(m.message_size, 999, "the file's size");
        assert_eq!(m.end, End::Complete);
    }

    #[test]
    fn done_and_cancelled_recipients_are_not_listed() {
        let mut f = message(&[b"a@x.example", b"b@x.example"], &[]);
        let at = f
            .windows(13)
            .position(|w| w == b"R\x0ba@x.example")
            .unwrap();
        assert_eq!(f[at], rec::RCPT);
        f[at] = rec::DONE;
        let (_, got) = listed(&f, None);
        assert_eq!(got, [("b@x.example".to_owned(), None)]);
    }

    #[test]
    fn pointers_are_followed_and_loops_bounded() {
        // S, a pointer to a recipient after the end record (a Milter's heap), back, end.
        let mut f = Vec::new();
        record(&mut f, rec::FROM, b"");
        let ptr_at = f.len();
        record(&mut f, rec::PTR, b"              0");
        let back = f.len();
        record(&mut f, rec::END, b"");
        let heap = f.len();
        record(&mut f, rec::RCPT, b"heap@example.com");
        record(&mut f, rec::PTR, format!("{back:>15}").as_bytes());
        let mut p = Vec::new();
        record(&mut p, rec::PTR, format!("{heap:>15}").as_bytes());
        f[ptr_at..ptr_at + p.len()].copy_from_slice(&p);
        let (m, got) = listed(&f, None);
        assert_eq!(m.end, End::Complete);
        assert_eq!(got, [("heap@example.com".to_owned(), None)]);
        assert_eq!(m.arrival, META.mtime, "no time record: the file's mtime");
        // A pointer to itself: a loop, stopped.
        let mut f = Vec::new();
        record(&mut f, rec::FROM, b"x");
        record(&mut f, rec::RCPT, b"r@example.com");
        record(&mut f, rec::PTR, format!("{:>15}", 3).as_bytes());
        let (m, got) = listed(&f, None);
        assert!(matches!(m.end, End::Malformed(_)), "{m:?}");
        assert!(
            got.len() > 1000,
            "showq lists the loop's recipients: {}",
            got.len()
        );
        // Not a number.
        let mut f = Vec::new();
        record(&mut f, rec::PTR, b"12x");
        assert_eq!(
            listed(&f, None).0.end,
            End::Malformed("malformed pointer record")
        );
    }

    #[test]
    fn what_stops_showq() {
        let mut f = Vec::new();
        record(&mut f, rec::RCPT, b"early@example.com");
        record(&mut f, rec::FROM, b"x");
        let (m, got) = listed(&f, None);
        assert!(!m.listed);
        assert!(got.is_empty());
        let mut f = Vec::new();
        record(&mut f, rec::FROM, b"x");
        record(&mut f, rec::RCPT, b"one@example.com");
        record(&mut f, rec::FROM, b"y");
        record(&mut f, rec::RCPT, b"two@example.com");
        let (m, got) = listed(&f, None);
        assert_eq!(m.end, End::Malformed("a second sender record"));
        assert_eq!(got.len(), 1);
        // Cut inside a record: what came before stays.
        let f = message(&[b"a@x.example"], &[]);
        let (m, got) = listed(&f[..140], None);
        assert!(m.listed);
        assert_eq!(got.len(), 0);
        assert!(matches!(m.end, End::Malformed(_)));
        assert_eq!(listed(&[], None).0.end, End::Eof);
    }

    #[test]
    fn sizes_and_times_as_showq_reads_them() {
        let mut f = Vec::new();
        record(&mut f, rec::SIZE, b"  -5 1");
        record(&mut f, rec::SIZE, b"  77 1");
        record(&mut f, rec::TIME, b"0");
        record(&mut f, rec::TIME, b"123 456");
        record(&mut f, rec::TIME, b"999");
        record(&mut f, rec::FROM, b"");
        let m = listed(&f, None).0;
        assert_eq!(m.message_size, 77, "a bad size record is passed over");
        assert_eq!(m.arrival, 123);
        let m = read(
            Bytes::whole(&f),
            Meta {
                mode: 0o100710,
                ..META
            },
            None,
            Rules::default(),
            |_, _| {},
        );
        assert!(m.forced_expire);
        assert_eq!(atol(b" -12x"), -12);
        assert_eq!(atol(b"99999999999999999999999"), i64::MAX);
    }

    #[test]
    fn defer_log_first_then_the_rest() {
        let f = message(
            &[b"a@x.example", b"odd name@x.example", b"c@x.example"],
            &[],
        );
        let log = b"\n<a@x.example>: refused\nrecipient=a@x.example\nreason=refused\n\n\nrecipient=\"odd name\"@x.example\nreason=timed out\n\n";
        let (_, got) = listed(&f, Some(log));
        let want = [
            ("a@x.example", Some("refused")),
            ("\"odd name\"@x.example", Some("timed out")),
            ("c@x.example", None),
        ];
        let want: Vec<(String, Option<String>)> = want
            .iter()
            .map(|(a, r)| (a.to_string(), r.map(str::to_owned)))
            .collect();
        assert_eq!(got, want);
        // Past duplicate_filter_limit, the queue file's recipients are listed again.
        let rules = Rules {
            duplicate_filter_limit: 1,
            ..Rules::default()
        };
        let mut got = Vec::new();
        read(Bytes::whole(&f), META, Some(log), rules, |a, r| {
            got.push((a.to_owned(), r.is_some()))
        });
        assert_eq!(got.len(), 4);
        assert_eq!(got[2], ("\"odd name\"@x.example".to_owned(), false));
    }

    /// One captured set (tests/e2e/capture-queue-files.sh): each file's stat, and its bytes.
    struct Captured {
        dir: std::path::PathBuf,
        /// `<queue>/<path>` -> (mode, mtime, size)
        stat: std::collections::BTreeMap<String, (u32, i64, u64)>,
    }

    impl Captured {
        fn load(set: &str) -> Captured {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/qfiles")
                .join(set);
            let text = std::fs::read_to_string(dir.join("stat.tsv")).unwrap();
            let stat = text
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.split('\t').collect();
                    let mode = u32::from_str_radix(f[1], 8).unwrap();
                    (
                        f[0].to_owned(),
                        (mode, f[2].parse().unwrap(), f[3].parse().unwrap()),
                    )
                })
                .collect();
            Captured { dir, stat }
        }

        /// The one path of `id` under `queue` (hashed or not).
        fn path(&self, queue: &str, id: &str) -> Option<&str> {
            let found: Vec<&str> = self
                .stat
                .keys()
                .filter(|p| p.starts_with(&format!("{queue}/")) && p.ends_with(&format!("/{id}")))
                .map(String::as_str)
                .collect();
            assert!(found.len() <= 1, "{found:?}");
            found.first().copied()
        }

        fn bytes(&self, path: &str) -> Vec<u8> {
            std::fs::read(self.dir.join("files").join(path)).unwrap()
        }
    }

    /// Every message `postqueue -j` listed of a still queue, read from its captured queue
    /// file and defer log: the same size, arrival, forced expiry and recipients with their
    /// reasons, in the same order; the same whether the content is read or skipped; and no
    /// file of the five queues that postqueue did not list.
    #[test]
    fn captured_queue_files_read_as_postqueue_listed_them() {
        for set in ["mixed", "long-ids"] {
            let c = Captured::load(set);
            let listing = std::fs::read_to_string(c.dir.join("postqueue.jsonl")).unwrap();
            let mut seen = std::collections::BTreeSet::new();
            let mut recipients = 0;
            for line in listing.lines() {
                let m: serde_json::Value = serde_json::from_str(line).unwrap();
                let (queue, id) = (
                    m["queue_name"].as_str().unwrap(),
                    m["queue_id"].as_str().unwrap(),
                );
                let path = c
                    .path(queue, id)
                    .unwrap_or_else(|| panic!("{set}: no file for {queue}/{id}"));
                seen.insert(path.to_owned());
                let (mode, mtime, size) = c.stat[path];
                let file = c.bytes(path);
                assert_eq!(file.len() as u64, size, "{path}");
                let log = c.path("defer", id).map(|p| c.bytes(p));
                let meta = Meta { size, mtime, mode };
                let mut got: Vec<serde_json::Value> = Vec::new();
                let message = read(
                    Bytes::whole(&file),
                    meta,
                    log.as_deref(),
                    Rules::default(),
                    |a, r| {
                        got.push(match r {
                            Some(r) => serde_json::json!({"address": a, "delay_reason": r}),
                            None => serde_json::json!({"address": a}),
                        })
                    },
                );
                let what = format!("{set} {queue}/{id}");
                assert!(message.listed, "{what}");
                assert_eq!(message.end, End::Complete, "{what}");
                assert_eq!(
                    serde_json::json!(message.message_size),
                    m["message_size"],
                    "{what}"
                );
                assert_eq!(
                    serde_json::json!(message.arrival),
                    m["arrival_time"],
                    "{what}"
                );
                assert_eq!(
                    serde_json::json!(message.forced_expire),
                    m["forced_expire"],
                    "{what}"
                );
                assert_eq!(serde_json::Value::Array(got), m["recipients"], "{what}");
                recipients += m["recipients"].as_array().unwrap().len();
                // The same with the content left out, as the scan reads large files.
                if let Some((span, at)) = content_span(&file) {
                    let tail_at = (at + span) as usize;
                    let sparse =
                        Bytes::sparse(&file[..at as usize], tail_at as u64, &file[tail_at..]);
                    let again = read(sparse, meta, log.as_deref(), Rules::default(), |_, _| {});
                    assert_eq!(again, message, "{what}, content skipped");
                }
            }
            for path in c.stat.keys() {
                let queue = path.split('/').next().unwrap();
                if crate::queue::LISTED.contains(&queue) {
                    assert!(
                        seen.contains(path),
                        "{set}: {path} is not listed by postqueue"
                    );
                }
            }
            assert!(seen.len() >= 6, "{set}: {} messages", seen.len());
            assert!(recipients >= seen.len(), "{set}");
        }
    }

    #[test]
    fn quoting_and_printable() {
        let q = |s: &[u8]| {
            let mut out = Vec::new();
            quote_822_local(s, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(q(b"a.b@x"), "a.b@x");
        assert_eq!(q(b"odd name@x"), "\"odd name\"@x");
        assert_eq!(q(b"a@b@x"), "\"a@b\"@x");
        assert_eq!(q(b"x!y*z@example.org"), "x!y*z@example.org");
        assert_eq!(q(b".a@x"), "\".a\"@x");
        assert_eq!(q(b"a..b@x"), "\"a..b\"@x");
        assert_eq!(q(b"say\"hi@x"), "\"say\\\"hi\"@x");
        assert_eq!(q(b"@route:a b@x"), "@route:\"a b\"@x");
        assert_eq!(q(b"root"), "root");
        assert_eq!(q("jörg@x".as_bytes()), "jörg@x");
        let p = |s: &[u8], utf8| {
            let mut v = s.to_vec();
            printable(&mut v, utf8);
            v
        };
        assert_eq!(p("jörg\t".as_bytes(), true), "jörg?".as_bytes());
        assert_eq!(p("jörg".as_bytes(), false), b"j??rg");
        assert_eq!(p(b"\xff\xc3", true), b"??");
    }
}
