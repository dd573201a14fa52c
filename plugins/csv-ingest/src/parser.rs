//! The CSV state machine behind one `parser` resource: frames lines across
//! arbitrary chunk boundaries, splits fields (RFC 4180 quotes), builds Arrow
//! string columns plus the record-number column, and writes IPC stream bytes.
//!
//! Exact semantics (the host and an independent implementation check these):
//! - The first line is the header. A UTF-8 byte-order mark before it is dropped.
//! - A record is one `\n`-terminated line; one `\r` right before the `\n` is
//!   stripped, so CRLF files parse like LF files. A `\r` anywhere else is data.
//!   Quoted fields may not span lines (a quote left open at the end of the line
//!   is an error), because embedded newlines are not part of the contract.
//! - Completely empty lines (nothing, or only that `\r`) are skipped; they do
//!   count for line numbers in error messages, but not for the record number.
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

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

/// Cut a batch early once its string payload reaches this size (bytes).
const MAX_BATCH_STRING_BYTES: usize = 64 << 20;

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

/// A failure, classified the way the WIT `plugin-error` variant wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    InvalidConfig(String),
    InvalidInput(String),
    Internal(String),
}

impl Config {
    /// Parses the flattened `config` map; unknown keys are rejected by name.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, Error> {
        let mut config = Config::default();
        for (key, value) in pairs {
            match key.as_str() {
                "batch_rows" => {
                    config.batch_rows = match value.trim().parse::<usize>() {
                        Ok(n) if n > 0 => n,
                        _ => {
                            return Err(Error::InvalidConfig(format!(
                                "`batch_rows` must be a positive integer, got `{value}`"
                            )));
                        }
                    }
                }
                "row_number_column" => {
                    if value.is_empty() {
                        return Err(Error::InvalidConfig(
                            "`row_number_column` must not be empty".to_owned(),
                        ));
                    }
                    config.row_number_column = value.clone();
                }
                other => {
                    return Err(Error::InvalidConfig(format!(
                        "unknown config key `{other}` (accepted: `batch_rows`, `row_number_column`)"
                    )));
                }
            }
        }
        Ok(config)
    }
}

/// Output state that exists once the header has been read.
struct Body {
    schema: SchemaRef,
    columns: Vec<StringBuilder>,
    rows: Vec<i64>,
    string_bytes: usize,
    writer: StreamWriter<Vec<u8>>,
}

pub struct Parser {
    config: Config,
    source: String,
    /// Bytes of the line that is not complete yet.
    pending: Vec<u8>,
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
    /// Set after the first error: the stream is broken, every later call fails.
    failed: Option<Error>,
    finished: bool,
}

impl Parser {
    pub fn new(config: Config, source: String) -> Self {
        Self {
            config,
            source,
            pending: Vec::new(),
            line: 1,
            records: 0,
            batches: 0,
            body: None,
            csv: csv_core::ReaderBuilder::new()
                .terminator(csv_core::Terminator::Any(b'\n'))
                .build(),
            fields: Vec::new(),
            ends: Vec::new(),
            failed: None,
            finished: false,
        }
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn batches(&self) -> u64 {
        self.batches
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Feeds one chunk and returns the IPC bytes completed so far.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<u8>, Error> {
        self.guard(|p| {
            if p.finished {
                return Err(Error::Internal("push after finish".to_owned()));
            }
            let mut rest = chunk;
            while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                let (line, tail) = rest.split_at(nl);
                rest = &tail[1..];
                if p.pending.is_empty() {
                    p.line_done(line)?;
                } else {
                    let mut whole = std::mem::take(&mut p.pending);
                    whole.extend_from_slice(line);
                    let result = p.line_done(&whole);
                    whole.clear();
                    p.pending = whole; // keep the allocation
                    result?;
                }
            }
            p.pending.extend_from_slice(rest);
            Ok(p.take_output())
        })
    }

    /// Ends the input: parses a last unterminated line, flushes the remaining
    /// rows and closes the IPC stream.
    pub fn finish(&mut self) -> Result<Vec<u8>, Error> {
        self.guard(|p| {
            if p.finished {
                return Err(Error::Internal("finish called twice".to_owned()));
            }
            p.finished = true;
            if !p.pending.is_empty() {
                let last = std::mem::take(&mut p.pending);
                p.line_done(&last)?;
            }
            if p.body.is_none() {
                return Err(Error::InvalidInput(format!(
                    "`{}`: the file is empty; the first line must be a header",
                    p.source
                )));
            }
            p.flush_batch()?;
            let body = p.body.as_mut().expect("header was read");
            body.writer.finish().map_err(|e| Error::Internal(format!("IPC writer: {e}")))?;
            Ok(p.take_output())
        })
    }

    /// Runs `f`, remembering the first error so that a broken stream stays broken.
    fn guard(&mut self, f: impl FnOnce(&mut Self) -> Result<Vec<u8>, Error>) -> Result<Vec<u8>, Error> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = f(self);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    fn take_output(&mut self) -> Vec<u8> {
        match &mut self.body {
            Some(body) => std::mem::take(body.writer.get_mut()),
            None => Vec::new(),
        }
    }

    /// Handles one complete line (without its `\n`).
    fn line_done(&mut self, line: &[u8]) -> Result<(), Error> {
        let line_no = self.line;
        self.line += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Ok(());
        }
        let count = self.split_fields(line, line_no)?;
        let text = std::str::from_utf8(&self.fields[..self.ends.get(count.wrapping_sub(1)).copied().unwrap_or(0)])
            .map_err(|e| {
                let at = e.valid_up_to();
                let field = self.ends[..count].iter().position(|&end| end > at).unwrap_or(0) + 1;
                Error::InvalidInput(format!(
                    "`{}`: line {line_no}, field {field}: invalid UTF-8",
                    self.source
                ))
            })?;
        let field = |i: usize| -> &str {
            let start = if i == 0 { 0 } else { self.ends[i - 1] };
            // Quotes and delimiters are ASCII, so field ends are char boundaries.
            text.get(start..self.ends[i]).unwrap_or_default()
        };

        let Some(body) = &mut self.body else {
            let names: Vec<&str> = (0..count).map(field).collect();
            let schema = header_schema(&names, &self.config.row_number_column, &self.source)?;
            let writer = StreamWriter::try_new(Vec::new(), &schema)
                .map_err(|e| Error::Internal(format!("IPC writer: {e}")))?;
            let columns = (0..names.len()).map(|_| StringBuilder::new()).collect();
            self.body = Some(Body { schema, columns, rows: Vec::new(), string_bytes: 0, writer });
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
        // The line goes in without its terminator, then a lone `\n` ends the
        // record: a quote still open at that point would swallow it as data.
        let (res, _, nout, nend) = self.csv.read_record(line, &mut self.fields, &mut self.ends);
        let res = match res {
            csv_core::ReadRecordResult::InputEmpty => {
                let (res, _, _, more) =
                    self.csv.read_record(b"\n", &mut self.fields[nout..], &mut self.ends[nend..]);
                (res, nend + more)
            }
            other => (other, nend),
        };
        match res {
            (csv_core::ReadRecordResult::Record, count) => Ok(count),
            (csv_core::ReadRecordResult::InputEmpty, _) => Err(Error::InvalidInput(format!(
                "`{}`: line {line_no}: a quoted field is not closed before the end of the line",
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
        let mut arrays: Vec<ArrayRef> = body
            .columns
            .iter_mut()
            .map(|c| Arc::new(c.finish()) as ArrayRef)
            .collect();
        arrays.push(Arc::new(Int64Array::from(std::mem::take(&mut body.rows))));
        body.string_bytes = 0;
        let batch = RecordBatch::try_new(body.schema.clone(), arrays)
            .map_err(|e| Error::Internal(format!("building a batch: {e}")))?;
        body.writer.write(&batch).map_err(|e| Error::Internal(format!("IPC writer: {e}")))?;
        self.batches += 1;
        Ok(())
    }
}

fn header_schema(names: &[&str], row_column: &str, source: &str) -> Result<SchemaRef, Error> {
    let mut fields = Vec::with_capacity(names.len() + 1);
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(Error::InvalidInput(format!(
                "`{source}`: line 1: header column {} has no name",
                i + 1
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
