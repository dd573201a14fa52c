//! What `plugin new` writes into a new plugin crate: its manifest, a README
//! with the commands to build and try it, and a `src/lib.rs` that works as
//! it is, one per kind of plugin.

/// The kind of plugin a new crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bronze: the raw bytes of a source object → Arrow.
    Ingest,
    /// Silver/gold, streaming: Arrow batches → Arrow batches.
    Transform,
    /// Silver/gold, SQL mode: config → a DuckDB query over the inputs.
    Sql,
}

/// The crate's `Cargo.toml`. `sdk` is the path the SDK dependency names
/// (relative for the vendored copy).
pub fn cargo_toml(name: &str, sdk: &str) -> String {
    let lib = lib_name(name);
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

# A plugin is a WebAssembly component: build it with
#   cargo build --release --target wasm32-wasip2
# and find it in target/wasm32-wasip2/release/{lib}.wasm
[lib]
crate-type = ["cdylib"]

[dependencies]
# The floe plugin SDK. `floe-host plugin new` wrote a copy of it (and of the
# WIT contract it binds, in wit/) next to this crate, so the crate builds
# anywhere; `floe-host plugin new --sdk PATH` depends on a checkout instead.
floe-plugin-sdk = {{ path = "{sdk}" }}

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
strip = "debuginfo"

# A standalone crate, not a member of an enclosing workspace.
[workspace]
"#
    )
}

/// The crate's README: what it does, the two commands to build and try it,
/// and how a pipeline uses it.
/// The sample a README makes for a plugin of `kind`, and the `plugin test`
/// arguments that try the plugin on it (every language's scaffold does the
/// same per kind).
pub fn sample(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Ingest => ("printf 'first\\nsecond\\n' > sample.txt", "--input sample.txt"),
        Kind::Transform => ("printf 'id,name\\n1,Zoe\\n' > sample.csv", "--input sample.csv --config column=name"),
        Kind::Sql => {
            ("printf 'id,amount\\n1,5\\n2,50\\n' > sample.csv", "--input sample.csv --config 'where=amount > 10'")
        }
    }
}

pub fn readme(name: &str, kind: Kind) -> String {
    let lib = lib_name(name);
    let (sample, try_it) = sample(kind);
    let (what, step) = match kind {
        Kind::Ingest => (
            "A floe ingest plugin: each line of a source object becomes a row (a `line` column, \
             renamed by the `column` config, and `_row`, the line number).",
            "  - name: raw_lines\n    layer: bronze\n    kind: ingest\n    plugin: {name}\n    \
             source: data/notes.txt\n    config: {column: note}",
        ),
        Kind::Transform => (
            "A floe transform plugin: it upper-cases the column named by its `column` config, batch by batch.",
            "  - name: shouted\n    layer: silver\n    kind: wasm\n    plugin: {name}\n    \
             inputs: [bronze.raw_customers]\n    config: {column: customer_name}",
        ),
        Kind::Sql => (
            "A floe SQL-mode transform plugin: it returns a DuckDB query that keeps the rows of its \
             input matching the `where` config. No data passes through the plugin.",
            "  - name: large_orders\n    layer: gold\n    kind: wasm\n    plugin: {name}\n    \
             inputs: [silver.stg_orders]\n    config: {where: \"amount > 100\"}",
        ),
    };
    let step = step.replace("{name}", name);
    format!(
        "# {name}\n\n{what}\n\n\
         Build it, then try it on a sample in the same sandbox a pipeline uses:\n\n\
         ```sh\ncargo build --release --target wasm32-wasip2\n\
         {sample}\n\
         floe-host plugin test target/wasm32-wasip2/release/{lib}.wasm {try_it}\n```\n\n\
         (`rustup target add wasm32-wasip2` once, if the target is missing.) \
         `floe-host plugin inspect target/wasm32-wasip2/release/{lib}.wasm` shows what the host sees: \
         the world, the name and version, and the config schema that `floe-host validate` checks \
         each step's `config` against.\n\n\
         In floe.yaml:\n\n```yaml\nplugins:\n  {name}:\n    path: path/to/{lib}.wasm\ntransforms:\n{step}\n```\n\n\
         `vendor/floe-plugin-sdk` is the plugin SDK and `wit/` the contract it binds, copied by \
         `floe-host plugin new`: the crate needs nothing else but crates.io.\n"
    )
}

/// `src/lib.rs` for a plugin of `kind`.
pub fn lib_rs(kind: Kind) -> &'static str {
    match kind {
        Kind::Ingest => INGEST_RS,
        Kind::Transform => TRANSFORM_RS,
        Kind::Sql => SQL_RS,
    }
}

fn lib_name(name: &str) -> String {
    name.replace('-', "_")
}

const TRANSFORM_RS: &str = r##"//! A floe transform plugin: upper-cases one string column, batch by batch.
//! Replace the logic in `push`; the SDK handles Arrow IPC, config and the
//! component bindings.

use std::sync::Arc;

use floe_plugin_sdk::arrow_array::StringArray;
use floe_plugin_sdk::arrow_array::cast::AsArray;
use floe_plugin_sdk::prelude::*;

/// What `floe-host validate` checks each step's `config` against.
const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["column"],
  "properties": { "column": { "type": "string", "minLength": 1, "description": "The Utf8 column to upper-case." } }
}"#;

struct Upper {
    column: usize,
}

impl Upper {
    fn column(config: &Config, input: &SchemaRef) -> Result<usize, PluginError> {
        config.check_keys(&["column"])?;
        let name = config.required_non_empty("column")?;
        let index = input
            .index_of(name)
            .map_err(|_| PluginError::config(format!("`column`: `{name}` is not in the input")))?;
        if input.field(index).data_type() != &DataType::Utf8 {
            return Err(PluginError::config(format!("`column`: `{name}` is not a string column")));
        }
        Ok(index)
    }
}

impl Transform for Upper {
    const CONFIG_SCHEMA: &'static str = CONFIG_SCHEMA;

    fn output_schema(config: &Config, input: &SchemaRef) -> Result<SchemaRef, PluginError> {
        Self::column(config, input)?;
        Ok(input.clone())
    }

    fn open(config: &Config, input: &SchemaRef) -> Result<Self, PluginError> {
        Ok(Upper { column: Self::column(config, input)? })
    }

    fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, PluginError> {
        let mut columns = batch.columns().to_vec();
        let upper: StringArray =
            columns[self.column].as_string::<i32>().iter().map(|v| v.map(str::to_uppercase)).collect();
        columns[self.column] = Arc::new(upper) as ArrayRef;
        Ok(vec![RecordBatch::try_new(batch.schema(), columns)?])
    }
}

export_transform!(Upper);
"##;

const INGEST_RS: &str = r##"//! A floe ingest plugin: each line of the source object becomes one row,
//! with its 1-based line number in `_row`. The host streams the object in
//! chunks that may end anywhere (inside a line, inside a UTF-8 sequence);
//! `Lines` puts the lines back together. Replace `row` with your parser.

use std::sync::Arc;

use floe_plugin_sdk::arrow_array::{Int64Array, StringArray};
use floe_plugin_sdk::lines::Lines;
use floe_plugin_sdk::prelude::*;

/// What `floe-host validate` checks each step's `config` against.
const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": { "column": { "type": "string", "minLength": 1, "description": "Name of the text column (default `line`)." } }
}"#;

/// Rows per output batch: batches are cut by row count, never at chunk ends,
/// so the output does not depend on how the host chunks the object.
const BATCH_ROWS: usize = 8192;

struct LineIngest {
    schema: SchemaRef,
    lines: Lines,
    /// Lines read and not yet returned.
    pending: Vec<String>,
    /// The line number of the first pending line.
    next_row: i64,
}

impl LineIngest {
    /// Takes one line: the place to parse a record.
    fn row(pending: &mut Vec<String>, line_number: i64, line: &[u8]) -> Result<(), PluginError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line)
            .map_err(|_| PluginError::input(format!("line {line_number} is not valid UTF-8")))?;
        pending.push(text.to_owned());
        Ok(())
    }

    /// Every full batch of pending lines (and the rest too when `all`).
    fn batches(&mut self, all: bool) -> Result<Vec<RecordBatch>, PluginError> {
        let mut out = Vec::new();
        while self.pending.len() >= BATCH_ROWS || (all && !self.pending.is_empty()) {
            let take = self.pending.len().min(BATCH_ROWS);
            let lines: Vec<String> = self.pending.drain(..take).collect();
            let rows = Int64Array::from_iter_values(self.next_row..self.next_row + take as i64);
            self.next_row += take as i64;
            let text = StringArray::from_iter_values(lines);
            out.push(RecordBatch::try_new(self.schema.clone(), vec![Arc::new(text) as ArrayRef, Arc::new(rows)])?);
        }
        Ok(out)
    }

    fn feed(&mut self, chunk: Option<&[u8]>) -> Result<(), PluginError> {
        let (pending, first) = (&mut self.pending, self.next_row);
        let mut on_line = |line: &[u8]| Self::row(pending, first + pending.len() as i64, line);
        match chunk {
            Some(chunk) => self.lines.feed(chunk, &mut on_line),
            None => self.lines.finish(&mut on_line),
        }
    }
}

impl Ingest for LineIngest {
    const CONFIG_SCHEMA: &'static str = CONFIG_SCHEMA;

    fn open(config: &Config, _source: &str) -> Result<Self, PluginError> {
        config.check_keys(&["column"])?;
        let column = config.non_empty("column")?.unwrap_or("line");
        let schema = Schema::new(vec![Field::new(column, DataType::Utf8, true), Field::new("_row", DataType::Int64, false)]);
        Ok(LineIngest { schema: Arc::new(schema), lines: Lines::default(), pending: Vec::new(), next_row: 1 })
    }

    fn push(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>, PluginError> {
        self.feed(Some(chunk))?;
        self.batches(false)
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>, PluginError> {
        self.feed(None)?;
        floe_plugin_sdk::log::info(&format!("read {} lines", self.next_row - 1 + self.pending.len() as i64));
        self.batches(true)
    }

    fn schema(&self) -> Option<SchemaRef> {
        Some(self.schema.clone())
    }
}

export_ingest!(LineIngest);
"##;

const SQL_RS: &str = r##"//! A floe SQL-mode transform plugin: returns a DuckDB query over the step's
//! input; the host runs it in a locked-down database. No data passes
//! through the plugin. Replace the query in `sql`.

use floe_plugin_sdk::prelude::*;

/// What `floe-host validate` checks each step's `config` against.
const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["where"],
  "properties": { "where": { "type": "string", "minLength": 1, "description": "A DuckDB condition on the input's columns." } }
}"#;

struct Filter;

impl SqlTransform for Filter {
    const CONFIG_SCHEMA: &'static str = CONFIG_SCHEMA;

    fn sql(config: &Config, inputs: &[String]) -> Result<String, PluginError> {
        config.check_keys(&["where"])?;
        let condition = config.required_non_empty("where")?;
        let [input] = inputs else {
            return Err(PluginError::config(format!("the step must declare one input, not {}", inputs.len())));
        };
        Ok(format!("SELECT * FROM {input} WHERE ({condition})"))
    }
}

export_sql_transform!(Filter);
"##;
