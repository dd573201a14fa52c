//! Cutting a source object into chunks of whole records for parallel ingest,
//! by the record syntax the plugin declared (`ingest-chunks.syntax` in the
//! WIT): where records end, which lines are blank, how many header records
//! every chunk needs, and the record and line number each chunk starts at.
//!
//! The plugin SDK frames records by the same rules (`lines.rs` there); the
//! host keeps its own copy because it does not link plugin code. The host's
//! cut is the authority: a plugin that frames differently only garbles its
//! own output.

use std::io::{self, Read};

/// Most header records a plugin may ask every chunk to carry.
pub(super) const MAX_HEADER_RECORDS: u32 = 16;

/// RFC 4180 quoting: a field starting with `quote` runs to its closing quote
/// and may hold `\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Quoting {
    pub quote: u8,
    pub delimiter: u8,
}

/// What the plugin declared, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Syntax {
    pub header_records: u32,
    pub quoting: Option<Quoting>,
}

impl Syntax {
    /// Checks a declared syntax; the error says what is refused.
    pub(super) fn new(header_records: u32, quoting: Option<Quoting>) -> Result<Self, String> {
        if header_records > MAX_HEADER_RECORDS {
            return Err(format!(
                "its record syntax asks for {header_records} header records, more than the {MAX_HEADER_RECORDS} accepted"
            ));
        }
        if let Some(q) = quoting {
            let special = |b: u8| b == b'\n' || b == b'\r';
            if q.quote == q.delimiter || special(q.quote) || special(q.delimiter) {
                return Err(format!(
                    "its record syntax quotes with byte {} and delimits with byte {}: they must differ and be neither \\n nor \\r",
                    q.quote, q.delimiter
                ));
            }
        }
        Ok(Self { header_records, quoting })
    }
}

/// Where a quoting scan stands between bytes (the states of csv-core's reader
/// that decide whether a `\n` ends a record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// At the start of a record or right after a delimiter.
    Start,
    /// Inside an unquoted field.
    Plain,
    /// Inside a quoted field.
    Quoted,
    /// Right after a quote inside a quoted field: it closes the field unless
    /// another quote follows.
    QuoteInQuoted,
}

/// Finds the `\n` bytes that end records. It jumps from one `\n` or quote
/// to the next with `memchr`, so plain data costs what a newline search
/// costs; only the bytes around quotes are looked at one by one.
#[derive(Debug, Clone, Copy)]
struct RecordEnds {
    quoting: Option<Quoting>,
    state: Field,
}

impl RecordEnds {
    fn new(quoting: Option<Quoting>) -> Self {
        Self { quoting, state: Field::Start }
    }

    /// The offset of the first record-ending `\n` in `bytes`, having consumed
    /// everything up to it; without one, all of `bytes` was consumed.
    fn next_end(&mut self, bytes: &[u8]) -> Option<usize> {
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

/// One chunk: whole records, and where they start in the object.
#[derive(Debug)]
pub(super) struct Chunk {
    /// The chunk's place among the object's chunks, from 0.
    pub index: usize,
    /// Byte offset of `bytes` in the object.
    pub offset: u64,
    pub bytes: Vec<u8>,
    /// 1-based number of the first record in `bytes` (header records aside).
    pub first_record: u64,
    /// 1-based line number of the first byte of `bytes`.
    pub first_line: u64,
}

/// Reads an object and hands out its chunks in order.
pub(super) struct Splitter<'a> {
    input: &'a mut dyn Read,
    syntax: Syntax,
    /// A chunk ends at the first record end at or after this many bytes.
    target: usize,
    /// Most bytes one chunk may reach while looking for a record end.
    cap: usize,
    buf: Vec<u8>,
    eof: bool,
    next: usize,
    offset: u64,
    next_record: u64,
    next_line: u64,
    /// The header records, with everything before them, once the first
    /// chunk is cut.
    header: Vec<u8>,
}

impl<'a> Splitter<'a> {
    pub(super) fn new(input: &'a mut dyn Read, syntax: Syntax, target: usize, cap: usize) -> Self {
        let target = target.max(1);
        Self {
            input,
            syntax,
            target,
            cap: cap.max(target),
            buf: Vec::new(),
            eof: false,
            next: 0,
            offset: 0,
            next_record: 1,
            next_line: 1,
            header: Vec::new(),
        }
    }

    /// The bytes every chunk after the first is parsed after.
    pub(super) fn header(&self) -> &[u8] {
        &self.header
    }

    /// Whether every chunk has been handed out (reading ahead to know).
    pub(super) fn done(&mut self) -> io::Result<bool> {
        if self.buf.is_empty() && !self.eof && (&mut *self.input).take(1).read_to_end(&mut self.buf)? == 0 {
            self.eof = true;
        }
        Ok(self.next > 0 && self.eof && self.buf.is_empty())
    }

    /// The next chunk, or `None` after the last. The first chunk comes even
    /// for an empty object (the plugin decides what that means), and it holds
    /// the header records.
    /// The first chunk also ends only once the header records are complete.
    pub(super) fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        let first = self.next == 0;
        if !first && self.eof && self.buf.is_empty() {
            return Ok(None);
        }
        let mut ends = RecordEnds::new(self.syntax.quoting);
        let mut header_left = if first { self.syntax.header_records } else { 0 };
        let (mut pos, mut record_start, mut records) = (0usize, 0usize, 0u64);
        let mut header_end = 0;
        let cut = loop {
            if pos == self.buf.len() {
                if self.eof {
                    // The last record has no `\n`.
                    if !is_blank(&self.buf[record_start..]) {
                        if header_left > 0 {
                            header_end = self.buf.len();
                        } else {
                            records += 1;
                        }
                    }
                    break self.buf.len();
                }
                if self.buf.len() >= self.cap {
                    return Err(io::Error::other(format!(
                        "no record ends within {} bytes from byte {} (line {}): a quoted field may be open. \
                         Parallel ingest cuts a source at record ends; set `plugins.ingest_parallelism: 1` in \
                         platform.yaml to parse it in one piece",
                        self.cap, self.offset, self.next_line
                    )));
                }
                let want = self.target.min(self.cap - self.buf.len()).max(64 << 10) as u64;
                if (&mut *self.input).take(want).read_to_end(&mut self.buf)? == 0 {
                    self.eof = true;
                }
                continue;
            }
            match ends.next_end(&self.buf[pos..]) {
                None => pos = self.buf.len(),
                Some(i) => {
                    let end = pos + i;
                    if !is_blank(&self.buf[record_start..end]) {
                        if header_left > 0 {
                            header_left -= 1;
                            header_end = end + 1;
                        } else {
                            records += 1;
                        }
                    }
                    pos = end + 1;
                    record_start = pos;
                    if header_left == 0 && pos >= self.target {
                        break pos;
                    }
                }
            }
        };
        if !first && cut == 0 {
            return Ok(None); // the object ended right after the last chunk
        }
        let rest = self.buf.split_off(cut);
        let bytes = std::mem::replace(&mut self.buf, rest);
        if first {
            self.header = bytes[..header_end].to_vec();
        }
        let chunk = Chunk {
            index: self.next,
            offset: self.offset,
            first_record: self.next_record,
            first_line: self.next_line,
            bytes,
        };
        self.next += 1;
        self.offset += chunk.bytes.len() as u64;
        self.next_record += records;
        self.next_line += memchr::memchr_iter(b'\n', &chunk.bytes).count() as u64;
        Ok(Some(chunk))
    }
}

/// A blank line: empty, or a lone `\r`. Not a record.
fn is_blank(record: &[u8]) -> bool {
    record.is_empty() || record == b"\r"
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: Option<Quoting> = Some(Quoting { quote: b'"', delimiter: b',' });

    fn cut(data: &[u8], header_records: u32, quoting: Option<Quoting>, target: usize) -> (Vec<u8>, Vec<Chunk>) {
        let mut input = data;
        let mut splitter = Splitter::new(&mut input, Syntax::new(header_records, quoting).unwrap(), target, 1 << 20);
        let mut chunks = Vec::new();
        while let Some(chunk) = splitter.next_chunk().unwrap() {
            chunks.push(chunk);
        }
        (splitter.header().to_vec(), chunks)
    }

    /// Chunks start at record ends (never inside quotes), count records and
    /// lines as the CSV plugin does, and join back into the object.
    #[test]
    fn cuts_at_record_ends_and_numbers_records_and_lines() {
        let data = b"\r\nid,n\r\n1,\"a\nb\"\n\n2,x\"y\n3,\"\"\"\n,\"\r\n4,z";
        for target in 1..data.len() + 2 {
            let (header, chunks) = cut(data, 1, CSV, target);
            assert_eq!(header, b"\r\nid,n\r\n");
            assert_eq!(chunks.iter().flat_map(|c| c.bytes.clone()).collect::<Vec<u8>>(), data);
            assert_eq!(chunks[0].first_record, 1);
            for chunk in &chunks[1..] {
                let at = chunk.offset as usize;
                assert_eq!(data[at - 1], b'\n', "target {target}: chunk at {at}");
                let before = &data[..at];
                let lines = 1 + before.iter().filter(|&&b| b == b'\n').count() as u64;
                assert_eq!(chunk.first_line, lines, "target {target}");
                let record = match &data[at..] {
                    [b'1', ..] => 1,
                    [b'\n', ..] | [b'2', ..] => 2,
                    [b'3', ..] => 3,
                    [b'4', ..] => 4,
                    other => panic!("target {target}: a chunk starts inside a record: {other:?}"),
                };
                assert_eq!(chunk.first_record, record, "target {target} at {at}");
            }
        }
        // Without quoting, every `\n` ends a record.
        let (header, chunks) = cut(b"a\"\nb\nc", 0, None, 1);
        assert!(header.is_empty());
        let starts: Vec<_> = chunks.iter().map(|c| (c.first_record, c.first_line)).collect();
        assert_eq!(starts, [(1, 1), (2, 2), (3, 3)]);
    }

    /// The byte-at-a-time state machine the jumps must agree with.
    fn reference_ends(data: &[u8], q: Quoting) -> Vec<usize> {
        let mut state = Field::Start;
        let mut ends = Vec::new();
        for (i, &byte) in data.iter().enumerate() {
            if byte == b'\n' && state != Field::Quoted {
                ends.push(i);
                state = Field::Start;
                continue;
            }
            state = match state {
                Field::Start | Field::Plain if byte == q.delimiter => Field::Start,
                Field::Start if byte == q.quote => Field::Quoted,
                Field::Start | Field::Plain => Field::Plain,
                Field::Quoted if byte == q.quote => Field::QuoteInQuoted,
                Field::Quoted => Field::Quoted,
                Field::QuoteInQuoted if byte == q.quote => Field::Quoted,
                Field::QuoteInQuoted if byte == q.delimiter => Field::Start,
                Field::QuoteInQuoted => Field::Plain,
            };
        }
        ends
    }

    /// Every string of up to 7 bytes over `"`, `,`, `\n`, `x`, fed in two
    /// pieces cut anywhere, ends records where the byte-wise machine does.
    #[test]
    fn jumping_finds_the_ends_the_state_machine_finds() {
        let q = Quoting { quote: b'"', delimiter: b',' };
        let alphabet = [b'"', b',', b'\n', b'x'];
        for len in 0..=7u32 {
            for code in 0..4usize.pow(len) {
                let data: Vec<u8> = (0..len).map(|k| alphabet[code / 4usize.pow(k) % 4]).collect();
                let want = reference_ends(&data, q);
                for cut in 0..=data.len() {
                    let mut ends = RecordEnds::new(Some(q));
                    let mut got = Vec::new();
                    for (base, piece) in [(0, &data[..cut]), (cut, &data[cut..])] {
                        let mut at = 0;
                        while let Some(end) = ends.next_end(&piece[at..]) {
                            got.push(base + at + end);
                            at += end + 1;
                        }
                    }
                    assert_eq!(got, want, "{:?} cut at {cut}", String::from_utf8_lossy(&data));
                }
            }
        }
    }

    #[test]
    fn an_empty_object_is_one_empty_chunk() {
        let (header, chunks) = cut(b"", 1, CSV, 8);
        assert!(header.is_empty());
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].bytes.is_empty());
    }

    /// An open quote cannot make the host buffer a whole object.
    #[test]
    fn a_record_longer_than_the_cap_is_an_error() {
        let data = format!("a\n\"{}", "x".repeat(300 << 10));
        let mut input = data.as_bytes();
        let mut splitter = Splitter::new(&mut input, Syntax::new(1, CSV).unwrap(), 16, 100 << 10);
        let err = splitter.next_chunk().unwrap_err().to_string();
        assert!(err.contains("no record ends within 102400 bytes from byte 0 (line 1)"), "{err}");
        assert!(err.contains("plugins.ingest_parallelism: 1"), "{err}");
    }

    #[test]
    fn refuses_odd_syntaxes() {
        assert!(Syntax::new(17, None).unwrap_err().contains("17 header records"));
        let same = Some(Quoting { quote: b',', delimiter: b',' });
        assert!(Syntax::new(1, same).unwrap_err().contains("must differ"));
        let newline = Some(Quoting { quote: b'\n', delimiter: b',' });
        assert!(Syntax::new(1, newline).is_err());
    }
}
