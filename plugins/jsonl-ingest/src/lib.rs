//! `jsonl-ingest`: the floe ingest plugin that turns JSON Lines into Arrow,
//! built on the plugin SDK.
//!
//! Exact semantics:
//! - A record is one `\n`-terminated line holding one JSON object. Lines that
//!   are empty or only whitespace (including a `\r` before the `\n`) are
//!   skipped; they count for line numbers in error messages only. Anything
//!   else that is not a JSON object is an error that names the line.
//! - The columns are the `columns` config list if set; otherwise the keys of
//!   the first object, in the order they appear there. With `columns` set,
//!   other keys are ignored; without it, a later object with a key the first
//!   one did not have is an error (nothing is dropped silently).
//! - Every column is a nullable Utf8 string. A JSON string gives its text; a
//!   number or a boolean gives its JSON text (`42`, `1.5e3`, `true`); an object
//!   or an array gives its compact JSON text; `null` and a missing key give
//!   NULL.
//! - The last column (default `_row`, Int64, non-null) is the 1-based record
//!   number: the first object is 1.
//! - Full batches of `batch_rows` rows go out as soon as they are complete,
//!   so the batch layout does not depend on how the host chunks the input.
//! - A source with no records and no `columns` is an error: there is nothing
//!   to take the columns from.

use std::sync::Arc;

use floe_plugin_sdk::arrow_array::Int64Array;
use floe_plugin_sdk::arrow_array::builder::StringBuilder;
use floe_plugin_sdk::lines::Lines;
use floe_plugin_sdk::log;
use floe_plugin_sdk::prelude::*;
use serde_json::{Map, Value};

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "jsonl-ingest config",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "columns": {
      "description": "Comma-separated column names, in output order. Default: the keys of the first object.",
      "type": "string"
    },
    "batch_rows": {
      "description": "Maximum number of rows per output batch.",
      "type": ["integer", "string"],
      "pattern": "^[1-9][0-9]*$",
      "default": 65536
    },
    "row_number_column": {
      "description": "Name of the Int64 column that holds the 1-based record number.",
      "type": "string",
      "minLength": 1,
      "default": "_row"
    }
  }
}"#;

/// One JSON Lines object being parsed.
struct JsonlIngest {
    source: String,
    batch_rows: usize,
    row_column: String,
    /// Whether the columns came from config (then other keys are ignored).
    fixed_columns: bool,
    /// Set from config at open, or from the first object.
    columns: Option<Columns>,
    /// The input split into lines across chunk boundaries.
    lines: Lines,
    /// Physical line number of the next line to be completed (1-based).
    line: u64,
    records: u64,
    done: Vec<RecordBatch>,
}

struct Columns {
    names: Vec<String>,
    schema: SchemaRef,
    builders: Vec<StringBuilder>,
    rows: Vec<i64>,
}

impl Columns {
    fn new(names: Vec<String>, row_column: &str, source: &str) -> Result<Self, PluginError> {
        let mut fields = Vec::with_capacity(names.len() + 1);
        for (i, name) in names.iter().enumerate() {
            if name == row_column || names[..i].contains(name) {
                return Err(PluginError::input(format!(
                    "`{source}`: column name `{name}` appears twice (the record-number column is `{row_column}`)"
                )));
            }
            fields.push(Field::new(name, DataType::Utf8, true));
        }
        fields.push(Field::new(row_column, DataType::Int64, false));
        let builders = names.iter().map(|_| StringBuilder::new()).collect();
        Ok(Self { names, schema: Arc::new(Schema::new(fields)), builders, rows: Vec::new() })
    }
}

impl JsonlIngest {
    fn line_done(&mut self, line: &[u8]) -> Result<(), PluginError> {
        let line_no = self.line;
        self.line += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let source = &self.source;
        let object: Map<String, Value> = match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(object)) => object,
            Ok(_) => {
                return Err(PluginError::input(format!("`{source}`: line {line_no} is not a JSON object")));
            }
            Err(e) => {
                return Err(PluginError::input(format!("`{source}`: line {line_no}: invalid JSON: {e}")));
            }
        };
        if self.columns.is_none() {
            let names = object.keys().cloned().collect();
            self.columns = Some(Columns::new(names, &self.row_column, source)?);
        }
        let columns = self.columns.as_mut().expect("set above");
        if !self.fixed_columns
            && let Some(key) = object.keys().find(|k| !columns.names.contains(k))
        {
            return Err(PluginError::input(format!(
                "`{source}`: line {line_no}: key `{key}` is not a column (the columns are the keys \
                 of the first object; set `columns` to choose them and ignore the others)"
            )));
        }
        for (name, builder) in columns.names.iter().zip(&mut columns.builders) {
            match object.get(name) {
                None | Some(Value::Null) => builder.append_null(),
                Some(Value::String(s)) => builder.append_value(s),
                Some(other) => builder.append_value(other.to_string()),
            }
        }
        self.records += 1;
        columns.rows.push(self.records as i64);
        if columns.rows.len() >= self.batch_rows {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        let Some(columns) = &mut self.columns else {
            return Ok(());
        };
        if columns.rows.is_empty() {
            return Ok(());
        }
        let mut arrays: Vec<ArrayRef> = columns.builders.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        arrays.push(Arc::new(Int64Array::from(std::mem::take(&mut columns.rows))));
        self.done.push(RecordBatch::try_new(columns.schema.clone(), arrays)?);
        Ok(())
    }
}

impl Ingest for JsonlIngest {
    const CONFIG_SCHEMA: &'static str = CONFIG_SCHEMA;

    fn open(config: &Config, source: &str) -> Result<Self, PluginError> {
        config.check_keys(&["batch_rows", "columns", "row_number_column"])?;
        let row_column = config.non_empty("row_number_column")?.unwrap_or("_row").to_owned();
        let columns = match config.list("columns")? {
            Some(names) => Some(
                Columns::new(names, &row_column, source)
                    .map_err(|e| PluginError::config(format!("`columns`: {}", e.message())))?,
            ),
            None => None,
        };
        Ok(Self {
            source: source.to_owned(),
            batch_rows: config.positive_usize("batch_rows")?.unwrap_or(65_536),
            row_column,
            fixed_columns: columns.is_some(),
            columns,
            lines: Lines::default(),
            line: 1,
            records: 0,
            done: Vec::new(),
        })
    }

    fn push(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>, PluginError> {
        // Taken out while it calls back into `self`.
        let mut lines = std::mem::take(&mut self.lines);
        let fed = lines.feed(chunk, |line| self.line_done(line));
        self.lines = lines;
        fed?;
        Ok(std::mem::take(&mut self.done))
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>, PluginError> {
        let mut lines = std::mem::take(&mut self.lines);
        lines.finish(|line| self.line_done(line))?;
        if self.columns.is_none() {
            return Err(PluginError::input(format!(
                "`{}`: the file has no JSON object to take the columns from; set `columns`",
                self.source
            )));
        }
        self.flush()?;
        log::info(&format!("parsed {} records from `{}`", self.records, self.source));
        Ok(std::mem::take(&mut self.done))
    }

    fn schema(&self) -> Option<SchemaRef> {
        self.columns.as_ref().map(|c| c.schema.clone())
    }
}

export_ingest!(JsonlIngest);
