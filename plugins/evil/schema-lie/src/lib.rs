//! `evil-schema-lie`: returns output that contradicts its own schema.
//! - `mode: schema-change` (default): `push` opens the stream with schema
//!   `(id: Int64)` and one batch; `finish` sends a second schema message,
//!   `(id: Utf8)`, a batch of it and the end-of-stream marker.
//! - `mode: batch-mismatch`: one stream whose schema message says
//!   `(id: Int64, name: Utf8)` but whose batch holds one Int64 column only.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "ingest-plugin",
});

use exports::floe::plugin::ingest::{self, Config, IpcFragment};
use exports::floe::plugin::meta;
use floe::plugin::types::{PluginError, PluginInfo, PluginKind};

struct Component;

export!(Component);

impl meta::Guest for Component {
    fn info() -> PluginInfo {
        PluginInfo {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Ingest,
            config_schema: "{}".to_owned(),
        }
    }
}

/// The value of `key` in the step's config map.
#[allow(dead_code)]
fn config_value<'a>(config: &'a Config, key: &str) -> Option<&'a str> {
    config.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

use std::cell::Cell;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};

impl ingest::Guest for Component {
    type Parser = Parser;

    fn open(config: Config, _source_name: String) -> Result<ingest::Parser, PluginError> {
        let batch_mismatch = config_value(&config, "mode") == Some("batch-mismatch");
        Ok(ingest::Parser::new(Parser { batch_mismatch, pushed: Cell::new(false) }))
    }
}

struct Parser {
    batch_mismatch: bool,
    pushed: Cell<bool>,
}

/// An IPC stream of `batch`, split into (schema message, batch messages, end marker).
fn messages(batch: &RecordBatch) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema()).expect("writer");
    let schema_len = writer.get_ref().len();
    writer.write(batch).expect("write");
    let batch_end = writer.get_ref().len();
    writer.finish().expect("finish");
    let bytes = writer.into_inner().expect("bytes");
    (bytes[..schema_len].to_vec(), bytes[schema_len..batch_end].to_vec(), bytes[batch_end..].to_vec())
}

fn ints() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
    RecordBatch::try_new(schema, vec![ids]).expect("batch")
}

fn strings() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
    let ids: ArrayRef = Arc::new(StringArray::from(vec!["one", "two"]));
    RecordBatch::try_new(schema, vec![ids]).expect("batch")
}

fn ints_and_names() -> RecordBatch {
    let schema =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("name", DataType::Utf8, true)]));
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![1]));
    let names: ArrayRef = Arc::new(StringArray::from(vec![Some("a")]));
    RecordBatch::try_new(schema, vec![ids, names]).expect("batch")
}

impl ingest::GuestParser for Parser {
    fn push(&self, _chunk: Vec<u8>) -> Result<IpcFragment, PluginError> {
        if self.batch_mismatch || self.pushed.replace(true) {
            return Ok(Vec::new());
        }
        let (schema, batch, _) = messages(&ints());
        Ok([schema, batch].concat())
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        if self.batch_mismatch {
            let (schema, _, _) = messages(&ints_and_names());
            let (_, batch, end) = messages(&ints());
            return Ok([schema, batch, end].concat());
        }
        let (schema, batch, end) = messages(&strings());
        if self.pushed.get() {
            Ok([schema, batch, end].concat())
        } else {
            // Empty input: still lie, with two schemas in one fragment.
            let (first, first_batch, _) = messages(&ints());
            Ok([first, first_batch, schema, batch, end].concat())
        }
    }
}
