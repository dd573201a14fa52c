//! Lines from a byte stream that arrives in chunks of any size: what line-based
//! ingest plugins (CSV, JSON Lines) need, since a chunk boundary may fall in
//! the middle of a line or of a UTF-8 sequence. With [`Quoting`], a `\n`
//! inside a quoted CSV field does not end the line, so a "line" is a whole
//! record even when a field spans several physical lines.
//!
//! The same rules tell the host where it may cut an object for parallel
//! ingest ([`RecordSyntax`]); a plugin that declares a syntax frames its input
//! with `Lines::new(syntax.quoting)` so that both agree byte for byte.

/// RFC 4180 quoting, as the host and [`Lines`] apply it: a field that starts
/// with `quote` (at the start of a record or right after `delimiter`) runs to
/// its closing quote, a doubled quote inside it is data, and a `\n` inside it
/// does not end the record. A quote anywhere else is data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoting {
    pub quote: u8,
    pub delimiter: u8,
}

impl Quoting {
    /// `"` and `,`.
    pub const CSV: Quoting = Quoting { quote: b'"', delimiter: b',' };
}

/// How records are delimited in an object's bytes, declared by
/// [`Ingest::record_syntax`](crate::Ingest::record_syntax) so that the host
/// can cut the object into chunks at record boundaries and parse them in
/// parallel. A record ends at a `\n` (outside quotes, with `quoting`); one
/// that is empty or a lone `\r` is a blank line, which is not a record and
/// does not count for record numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSyntax {
    /// Leading records every chunk needs (a CSV header: 1), at most 16.
    pub header_records: u32,
    pub quoting: Option<Quoting>,
}

/// Where a quoting scan stands between bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Field {
    /// At the start of a record or right after a delimiter.
    #[default]
    Start,
    /// Inside an unquoted field.
    Plain,
    /// Inside a quoted field.
    Quoted,
    /// Right after a quote inside a quoted field: it closes the field unless
    /// another quote follows.
    QuoteInQuoted,
}

/// Finds the `\n` bytes that end records. It jumps from one `\n` or quote to
/// the next with `memchr`, so plain data costs what a newline search costs;
/// only the bytes around quotes are looked at one by one. The host's
/// splitter is the same machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordEnds {
    quoting: Option<Quoting>,
    state: Field,
}

impl RecordEnds {
    pub fn new(quoting: Option<Quoting>) -> Self {
        Self { quoting, state: Field::Start }
    }

    /// The offset of the first record-ending `\n` in `bytes`, having consumed
    /// everything up to it; without one, all of `bytes` was consumed.
    pub fn next_end(&mut self, bytes: &[u8]) -> Option<usize> {
        let Some(q) = self.quoting else {
            return memchr::memchr(b'\n', bytes);
        };
        let mut i = 0;
        loop {
            match self.state {
                Field::Start | Field::Plain => {
                    let Some(found) = memchr::memchr2(b'\n', q.quote, &bytes[i..]) else {
                        // No quote or newline in the rest: only a trailing
                        // delimiter leaves the scan at the start of a field.
                        if let Some(&last) = bytes[i..].last() {
                            self.state = if last == q.delimiter { Field::Start } else { Field::Plain };
                        }
                        return None;
                    };
                    let at = i + found;
                    if bytes[at] == b'\n' {
                        self.state = Field::Start;
                        return Some(at);
                    }
                    // A quote opens a field only at its start.
                    let field_start = if at == i { self.state == Field::Start } else { bytes[at - 1] == q.delimiter };
                    self.state = if field_start { Field::Quoted } else { Field::Plain };
                    i = at + 1;
                }
                Field::Quoted => {
                    let found = memchr::memchr(q.quote, &bytes[i..])?;
                    self.state = Field::QuoteInQuoted;
                    i += found + 1;
                }
                Field::QuoteInQuoted => {
                    let &byte = bytes.get(i)?;
                    if byte == b'\n' {
                        self.state = Field::Start;
                        return Some(i);
                    }
                    self.state = if byte == q.quote {
                        Field::Quoted
                    } else if byte == q.delimiter {
                        Field::Start
                    } else {
                        Field::Plain
                    };
                    i += 1;
                }
            }
        }
    }
}

/// Buffers the unfinished tail of the input between chunks.
#[derive(Debug, Default)]
pub struct Lines {
    ends: RecordEnds,
    pending: Vec<u8>,
}

impl Lines {
    /// Lines that end at every `\n` (`None`), or at a `\n` outside a quoted
    /// field.
    pub fn new(quoting: Option<Quoting>) -> Self {
        Self { ends: RecordEnds::new(quoting), pending: Vec::new() }
    }

    /// Calls `on_line` for every line that `chunk` completes, in order,
    /// without its `\n`, and keeps the unfinished rest for the next call.
    pub fn feed<E>(&mut self, chunk: &[u8], mut on_line: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let mut rest = chunk;
        while let Some(nl) = self.ends.next_end(rest) {
            let (line, tail) = rest.split_at(nl);
            rest = &tail[1..];
            if self.pending.is_empty() {
                on_line(line)?;
            } else {
                self.pending.extend_from_slice(line);
                let result = on_line(&self.pending);
                self.pending.clear(); // keeps the allocation
                result?;
            }
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// Bytes of the line not finished yet: what a caller bounds to refuse a
    /// line that is too long before all of it has arrived.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Ends the input: calls `on_line` for a last line that had no `\n`.
    pub fn finish<E>(&mut self, mut on_line: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let last = std::mem::take(&mut self.pending);
        on_line(&last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(quoting: Option<Quoting>, chunks: &[&[u8]]) -> Vec<String> {
        let mut lines = Lines::new(quoting);
        let mut out = Vec::new();
        let mut push = |l: &[u8]| -> Result<(), ()> {
            out.push(String::from_utf8(l.to_vec()).unwrap());
            Ok(())
        };
        for chunk in chunks {
            lines.feed(chunk, &mut push).unwrap();
        }
        lines.finish(&mut push).unwrap();
        out
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let whole = split(None, &[b"a,b\nccc\n\ndd"]);
        assert_eq!(whole, ["a,b", "ccc", "", "dd"]);
        assert_eq!(split(None, &[b"a,", b"b\ncc", b"c\n", b"\nd", b"d"]), whole);
        assert_eq!(split(None, &[b"x\n"]), ["x"]);
    }

    #[test]
    fn a_quoted_field_keeps_its_newlines() {
        let data: &[u8] = b"a,\"b\nc\"\nx\"y,\"\"\n\"q\"\"\n\"\"\",z\n\"open\nend";
        let want = ["a,\"b\nc\"", "x\"y,\"\"", "\"q\"\"\n\"\"\",z", "\"open\nend"];
        assert_eq!(split(Some(Quoting::CSV), &[data]), want);
        for cut in 1..data.len() {
            let (a, b) = data.split_at(cut);
            assert_eq!(split(Some(Quoting::CSV), &[a, b]), want, "cut at {cut}");
        }
        // A quote after the start of a field is data: the line ends.
        assert_eq!(split(Some(Quoting::CSV), &[b"ab\"c\nd"]), ["ab\"c", "d"]);
    }
}
