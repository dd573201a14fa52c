//! The CSV state machine behind one `parser` resource: frames lines across
//! arbitrary chunk boundaries, splits fields (RFC 4180 quotes), and builds
//! Arrow string columns plus the record-number column. The SDK writes the IPC
//! stream bytes.
//!
//! Exact semantics (the host and an independent implementation check these):
//! - The first line is the header. A UTF-8 byte-order mark before it is dropped;
//!   one alone on its line is an input error.
//! - A record ends at a `\n` outside quotes (RFC 4180): a quoted field may
//!   hold `\n`, `\r\n`, delimiters and doubled quotes, and a record then
//!   spans several lines. A quote is special only at the start of a field;
//!   anywhere else it is data. One `\r` right before the record's `\n` is
//!   stripped, so CRLF files parse like LF files; a `\r` anywhere else is data.
//!   A quote still open at the end of the file is an error.
//! - Completely empty lines (nothing, or only that `\r`) are skipped; they do
//!   count for line numbers in error messages, but not for the record number.
//!   A record's line number is the line it starts on.
//! - These are also the rules the host cuts an object by for parallel ingest
//!   (`record_syntax`): every chunk after the first is parsed after the header
//!   line, from the record and line numbers the host passes to `resume_at`.
//! - Every column is a nullable Utf8 string. A field that is empty after quote
//!   removal (`a,,b` or `a,"",b`) is NULL; everything else is kept byte for
//!   byte: no trimming, no `N/A` handling.
//! - The last column (default `_row`, Int64, non-null) is the 1-based record
//!   number: the first record after the header is 1.
//! - Full batches of `batch_rows` rows go out from `push`, so the batch layout
//!   does not depend on how the host chunks the input; the rest goes out from
//!   `finish`. A batch is also cut early once its string data passes
//!   `MAX_BATCH_STRING_BYTES`, to bound a single call's output.

use std::sync::Arc;

use floe_plugin_sdk::PluginError as Error;
use floe_plugin_sdk::arrow_array::builder::StringBuilder;
use floe_plugin_sdk::arrow_array::{ArrayRef, Int64Array, RecordBatch};
use floe_plugin_sdk::arrow_schema::{DataType, Field, Schema, SchemaRef};
use floe_plugin_sdk::lines::{Lines, Quoting, RecordSyntax};

/// How the host may cut a CSV object (see the module docs).
pub const SYNTAX: RecordSyntax = RecordSyntax { header_records: 1, quoting: Some(Quoting::CSV) };

/// Cut a batch early once its string payload reaches this size (bytes).
const MAX_BATCH_STRING_BYTES: usize = 64 << 20;

/// The longest header line, the most columns and the longest column name
/// accepted: what the host accepts from a plugin (4,096 columns, names of at
/// most 1 KiB), refused here as bad input with a short message, before a
/// huge header is buffered whole.
const MAX_HEADER_BYTES: usize = 1 << 20;
const MAX_COLUMNS: usize = 4096;
const MAX_NAME_BYTES: usize = 1024;

/// Validated plugin configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub batch_rows: usize,
    pub row_number_column: String,
}

impl Default for Config {
    fn default() -> Self {
        Self { batch_rows: 65_536, row_number_column: "_row".to_owned() }
    }
}

impl Config {
    /// Parses the flattened `config` map; unknown keys are rejected by name.
    pub fn parse(config: &floe_plugin_sdk::Config) -> Result<Self, Error> {
        config.check_keys(&["batch_rows", "row_number_column"])?;
        let mut parsed = Config::default();
        if let Some(n) = config.positive_usize("batch_rows")? {
            parsed.batch_rows = n;
        }
        if let Some(name) = config.non_empty("row_number_column")? {
            parsed.row_number_column = name.to_owned();
        }
        Ok(parsed)
    }
}

/// Output state that exists once the header has been read.
struct Body {
    schema: SchemaRef,
    columns: Vec<StringBuilder>,
    rows: Vec<i64>,
    string_bytes: usize,
}

pub struct Parser {
    config: Config,
    source: String,
    /// The input split into lines across chunk boundaries.
    lines: Lines,
    /// Physical line number of the next line to be completed (1-based).
    line: u64,
    /// Record number of the last data record (0 before the first).
    records: u64,
    batches: u64,
    body: Option<Body>,
    /// One csv-core reader for the whole object. It returns to its start state
    /// after every record, and drops a UTF-8 BOM only on its first read, which
    /// is the header line (blank lines never reach it).
    csv: csv_core::Reader,
    /// Scratch space for csv-core: unquoted field bytes and field end offsets.
    fields: Vec<u8>,
    ends: Vec<usize>,
    /// Batches completed since the last `push` or `finish` returned.
    done: Vec<RecordBatch>,
}

impl Parser {
    pub fn new(config: Config, source: String) -> Self {
        Self {
            config,
            source,
            lines: Lines::new(SYNTAX.quoting),
            line: 1,
            records: 0,
            batches: 0,
            body: None,
            csv: csv_core::ReaderBuilder::new().terminator(csv_core::Terminator::Any(b'\n')).build(),
            fields: Vec::new(),
            ends: Vec::new(),
            done: Vec::new(),
        }
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// Continues after the header at record `first_record` on line
    /// `first_line`: the host cut the object there (parallel ingest).
    pub fn resume_at(&mut self, first_record: u64, first_line: u64) -> Result<(), Error> {
        let start_of_object = self.line == 1 && (first_record, first_line) == (1, 1);
        if start_of_object && self.body.is_none() && self.lines.pending() == 0 {
            return Ok(()); // the first chunk: it starts with the header
        }
        if self.body.is_none() || self.lines.pending() != 0 || first_record == 0 || first_line == 0 {
            return Err(Error::Internal(format!(
                "`{}`: cannot resume at record {first_record}, line {first_line}: the header line was not complete",
                self.source
            )));
        }
        self.records = first_record - 1;
        self.line = first_line;
        Ok(())
    }

    pub fn batches(&self) -> u64 {
        self.batches
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The output schema, once the header has been read.
    pub fn schema(&self) -> Option<SchemaRef> {
        self.body.as_ref().map(|body| body.schema.clone())
    }

    /// Feeds one chunk and returns the batches completed so far. (The SDK
    /// rejects calls after an error or after `finish`.)
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>, Error> {
        // Taken out while it calls back into `self`.
        let mut lines = std::mem::take(&mut self.lines);
        let fed = lines.feed(chunk, |line| self.line_done(line));
        let pending = lines.pending();
        self.lines = lines;
        fed?;
        if self.body.is_none() && pending > MAX_HEADER_BYTES {
            return Err(header_too_long(&self.source));
        }
        Ok(std::mem::take(&mut self.done))
    }

    /// Ends the input: parses a last unterminated line and flushes the
    /// remaining rows.
    pub fn finish(&mut self) -> Result<Vec<RecordBatch>, Error> {
        let mut lines = std::mem::take(&mut self.lines);
        lines.finish(|line| self.line_done(line))?;
        if self.body.is_none() {
            return Err(Error::InvalidInput(format!(
                "`{}`: the file is empty; the first line must be a header",
                self.source
            )));
        }
        self.flush_batch()?;
        Ok(std::mem::take(&mut self.done))
    }

    /// Handles one complete record (without its `\n`; it spans several lines
    /// if a quoted field holds a `\n`).
    fn line_done(&mut self, line: &[u8]) -> Result<(), Error> {
        let line_no = self.line;
        self.line += 1 + memchr::memchr_iter(b'\n', line).count() as u64;
        if self.body.is_none() && line.len() > MAX_HEADER_BYTES {
            return Err(header_too_long(&self.source));
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Ok(());
        }
        if self.body.is_none() && line == b"\xef\xbb\xbf" {
            // Not a blank line: the host counts it as the header when it
            // cuts the file, so it is refused the same way in both paths.
            return Err(Error::InvalidInput(format!(
                "`{}`: line {line_no}: a UTF-8 byte-order mark alone on a line; the header must follow it on the \
                 same line",
                self.source
            )));
        }
        let count = self.split_fields(line, line_no)?;
        let text = std::str::from_utf8(&self.fields[..self.ends.get(count.wrapping_sub(1)).copied().unwrap_or(0)])
            .map_err(|e| {
                let at = e.valid_up_to();
                let field = self.ends[..count].iter().position(|&end| end > at).unwrap_or(0) + 1;
                Error::InvalidInput(format!("`{}`: line {line_no}, field {field}: invalid UTF-8", self.source))
            })?;
        let field = |i: usize| -> &str {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            // Quotes and delimiters are ASCII, so field ends are char boundaries.
            text.get(start..self.ends[i]).unwrap_or_default()
        };

        let Some(body) = &mut self.body else {
            if count > MAX_COLUMNS {
                return Err(Error::InvalidInput(format!(
                    "`{}`: line {line_no}: the header has {count} columns, more than the {MAX_COLUMNS} accepted",
                    self.source
                )));
            }
            let names: Vec<&str> = (0..count).map(field).collect();
            let schema = header_schema(&names, &self.config.row_number_column, &self.source)?;
            let columns = (0..names.len()).map(|_| StringBuilder::new()).collect();
            self.body = Some(Body { schema, columns, rows: Vec::new(), string_bytes: 0 });
            return Ok(());
        };

        if count != body.columns.len() {
            return Err(Error::InvalidInput(format!(
                "`{}`: line {line_no} has {count} fields, but the header has {}",
                self.source,
                body.columns.len()
            )));
        }
        for (i, column) in body.columns.iter_mut().enumerate() {
            let value = field(i);
            if value.is_empty() {
                column.append_null();
            } else {
                column.append_value(value);
                body.string_bytes += value.len();
            }
        }
        self.records += 1;
        body.rows.push(self.records as i64);
        if body.rows.len() >= self.config.batch_rows || body.string_bytes >= MAX_BATCH_STRING_BYTES {
            self.flush_batch()?;
        }
        Ok(())
    }

    /// Splits `line` into `self.fields`/`self.ends`; returns the field count.
    fn split_fields(&mut self, line: &[u8], line_no: u64) -> Result<usize, Error> {
        // Unquoting only shrinks, and a line of n bytes has at most n + 1 fields.
        if self.fields.len() < line.len() + 1 {
            self.fields.resize(line.len() + 1, 0);
        }
        if self.ends.len() < line.len() + 2 {
            self.ends.resize(line.len() + 2, 0);
        }
        // The record goes in without its terminator, then a lone `\n` ends
        // it: a quote still open at that point (only possible at the end of
        // the file) would swallow it as data.
        let (res, _, nout, nend) = self.csv.read_record(line, &mut self.fields, &mut self.ends);
        let res = match res {
            csv_core::ReadRecordResult::InputEmpty => {
                let (res, _, _, more) = self.csv.read_record(b"\n", &mut self.fields[nout..], &mut self.ends[nend..]);
                (res, nend + more)
            }
            other => (other, nend),
        };
        match res {
            (csv_core::ReadRecordResult::Record, count) => Ok(count),
            (csv_core::ReadRecordResult::InputEmpty, _) => Err(Error::InvalidInput(format!(
                "`{}`: line {line_no}: a quoted field is not closed before the end of the file",
                self.source
            ))),
            (other, _) => Err(Error::Internal(format!("line {line_no}: CSV reader stopped with {other:?}"))),
        }
    }

    fn flush_batch(&mut self) -> Result<(), Error> {
        let Some(body) = &mut self.body else { return Ok(()) };
        if body.rows.is_empty() {
            return Ok(());
        }
        let mut arrays: Vec<ArrayRef> = body.columns.iter_mut().map(|c| Arc::new(c.finish()) as ArrayRef).collect();
        arrays.push(Arc::new(Int64Array::from(std::mem::take(&mut body.rows))));
        body.string_bytes = 0;
        let batch = RecordBatch::try_new(body.schema.clone(), arrays)
            .map_err(|e| Error::Internal(format!("building a batch: {e}")))?;
        self.done.push(batch);
        self.batches += 1;
        Ok(())
    }
}

fn header_too_long(source: &str) -> Error {
    Error::InvalidInput(format!("`{source}`: the header line is longer than the {MAX_HEADER_BYTES} bytes accepted"))
}

fn header_schema(names: &[&str], row_column: &str, source: &str) -> Result<SchemaRef, Error> {
    let mut fields = Vec::with_capacity(names.len() + 1);
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(Error::InvalidInput(format!("`{source}`: line 1: header column {} has no name", i + 1)));
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(Error::InvalidInput(format!(
                "`{source}`: line 1: header column {} has a name of {} bytes, more than the {MAX_NAME_BYTES} accepted",
                i + 1,
                name.len()
            )));
        }
        if *name == row_column || names[..i].contains(name) {
            return Err(Error::InvalidInput(format!(
                "`{source}`: line 1: column name `{name}` appears twice (the record-number column is `{row_column}`)"
            )));
        }
        fields.push(Field::new(*name, DataType::Utf8, true));
    }
    fields.push(Field::new(row_column, DataType::Int64, false));
    Ok(Arc::new(Schema::new(fields)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(data: &[u8], chunk: usize, batch_rows: usize) -> Result<Vec<RecordBatch>, String> {
        let mut parser = Parser::new(Config { batch_rows, ..Config::default() }, "t.csv".to_owned());
        let mut batches = Vec::new();
        for piece in data.chunks(chunk.max(1)) {
            batches.extend(parser.push(piece).map_err(|e| format!("{e:?}"))?);
        }
        batches.extend(parser.finish().map_err(|e| format!("{e:?}"))?);
        Ok(batches)
    }

    /// A quoted field may hold newlines, CRLFs, delimiters and doubled
    /// quotes; the record keeps the number of the line it starts on.
    #[test]
    fn quoted_fields_span_lines() {
        let data = b"id,note\r\n1,\"a\nb\"\r\n\n2,\"x\r\n\"\"y\"\",z\"\n3,\"open\n";
        let whole = parse(data, data.len(), 10).unwrap_err();
        assert!(whole.contains("line 7: a quoted field is not closed before the end of the file"), "{whole}");
        let data = &data[..data.len() - 9];
        for chunk in [1, 2, 5, data.len()] {
            let batches = parse(data, chunk, 10).unwrap();
            let batch = &batches[0];
            let notes = batch.column(1).as_any().downcast_ref::<floe_plugin_sdk::arrow_array::StringArray>().unwrap();
            assert_eq!(notes.value(0), "a\nb");
            assert_eq!(notes.value(1), "x\r\n\"y\",z");
            assert_eq!(batch.num_rows(), 2);
        }
    }

    /// A chunk parsed after the header from a record and line number numbers
    /// its rows and its errors from there.
    #[test]
    fn resumes_after_the_header() {
        let mut parser = Parser::new(Config::default(), "t.csv".to_owned());
        assert!(parser.push(b"a,b\n").unwrap().is_empty());
        parser.resume_at(41, 100).unwrap();
        parser.push(b"1,\"x\ny\"\n\n2,3\n").unwrap();
        let batch = parser.finish().unwrap().remove(0);
        let rows = batch.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(rows.values().to_vec(), [41, 42]);
        let mut parser = Parser::new(Config::default(), "t.csv".to_owned());
        parser.push(b"a,b\n").unwrap();
        parser.resume_at(7, 100).unwrap();
        let err = parser.push(b"1,2\n\"x\ny\"\n").unwrap_err();
        assert!(format!("{err:?}").contains("line 101 has 1 fields, but the header has 2"), "{err:?}");
        let mut fresh = Parser::new(Config::default(), "t.csv".to_owned());
        assert!(fresh.resume_at(1, 2).is_err(), "no header yet");
        let mut first = Parser::new(Config::default(), "t.csv".to_owned());
        first.resume_at(1, 1).unwrap(); // the first chunk starts with the header
        first.push(b"a,b\n1,2\n").unwrap();
        assert_eq!(first.finish().unwrap()[0].num_rows(), 1);
    }

    /// A byte-order mark alone on a line before the header is bad input,
    /// not a reader failure.
    #[test]
    fn a_lone_byte_order_mark_is_bad_input() {
        for data in [&b"\xef\xbb\xbf\nid\n1\n"[..], b"\n\xef\xbb\xbf\r\nid\n1\n"] {
            let err = parse(data, 2, 10).unwrap_err();
            assert!(err.starts_with("InvalidInput("), "{err}");
            assert!(err.contains("a UTF-8 byte-order mark alone on a line"), "{err}");
        }
        assert_eq!(parse(b"\xef\xbb\xbfid\n1\n", 2, 10).unwrap()[0].num_rows(), 1);
    }

    /// A huge header is refused with a short message, whatever the chunking,
    /// before it is buffered whole; so are too many or too long names.
    #[test]
    fn headers_are_bounded() {
        let huge = format!("{}\n1\n", "h".repeat(MAX_HEADER_BYTES + 1));
        for chunk in [64 << 10, huge.len()] {
            let err = parse(huge.as_bytes(), chunk, 10).unwrap_err();
            assert!(err.contains("the header line is longer than the 1048576 bytes accepted"), "{chunk}: {err}");
            assert!(err.len() < 200, "{err}");
        }
        let many = format!("{}\n", (0..=MAX_COLUMNS).map(|i| format!("c{i}")).collect::<Vec<_>>().join(","));
        assert!(parse(many.as_bytes(), 1 << 20, 10).unwrap_err().contains("4097 columns, more than the 4096 accepted"));
        let long = format!("id,{}\n1,2\n", "n".repeat(MAX_NAME_BYTES + 1));
        let err = parse(long.as_bytes(), 1 << 20, 10).unwrap_err();
        assert!(err.contains("header column 2 has a name of 1025 bytes, more than the 1024 accepted"), "{err}");
        // At the limits, a header is fine.
        let wide = format!("{}\n", (0..MAX_COLUMNS).map(|i| format!("c{i}")).collect::<Vec<_>>().join(","));
        assert!(parse(wide.as_bytes(), 1 << 20, 10).is_ok());
    }

    /// Every input the fuzzer saved (`fuzz/corpus/csv_parser`, and crashes it
    /// once found under `fuzz/regressions/csv_parser`) parses or fails without
    /// a panic, the same way whatever the chunking: what the `csv_parser` fuzz
    /// target checks, replayed on every test run.
    #[test]
    fn replays_the_fuzz_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut replayed = 0;
        for dir in ["seeds/csv_parser", "corpus/csv_parser", "regressions/csv_parser"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
            for entry in entries {
                // A fuzzer at work may replace files meanwhile.
                let Ok(data) = std::fs::read(entry.unwrap().path()) else { continue };
                let Some((&knobs, input)) = data.split_first() else { continue };
                let (chunk, rows) = (usize::from(knobs & 0x0f) + 1, usize::from(knobs >> 4) + 1);
                let (cut, whole) = (parse(input, chunk, rows), parse(input, input.len(), rows));
                assert_eq!(cut.is_ok(), whole.is_ok(), "{cut:?} vs {whole:?}");
                if let (Ok(cut), Ok(whole)) = (cut, whole) {
                    assert_eq!(cut, whole);
                }
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no fuzz corpus under {}", root.display());
        let batches = parse(b"\xef\xbb\xbfa,b\r\n1,\"x,y\"\n\n2,\n", 3, 1).unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    }
}
