//! `evil-chunks`: abuses the `ingest-chunks` export (parallel ingest).
//! - `mode: header-records`: declares 1,000,000 header records per chunk.
//! - `mode: newline-quote`: declares `\n` as its quote byte.
//! - `mode: schema-flip`: the first chunk's stream is `(id: Int64)`, every
//!   other chunk's `(id: Utf8)`.
//! - `mode: alloc`: every chunk allocates until its instance runs out of
//!   memory.
//!
//! In one piece (`ingest`), it returns `(id: Int64)` with one row.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "ingest-chunks-plugin",
});

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};
use exports::floe::plugin::ingest::{self, Config, IpcFragment};
use exports::floe::plugin::ingest_chunks::{self, Chunk, Quoting, RecordSyntax};
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

fn mode(config: &Config) -> &str {
    config.iter().find(|(k, _)| k == "mode").map_or("", |(_, v)| v.as_str())
}

/// One whole IPC stream of `batch`.
fn stream(batch: &RecordBatch) -> Vec<u8> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema()).expect("writer");
    writer.write(batch).expect("write");
    writer.finish().expect("finish");
    writer.into_inner().expect("bytes")
}

fn ints() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![1]));
    RecordBatch::try_new(schema, vec![ids]).expect("batch")
}

fn strings() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
    let ids: ArrayRef = Arc::new(StringArray::from(vec!["one"]));
    RecordBatch::try_new(schema, vec![ids]).expect("batch")
}

impl ingest_chunks::Guest for Component {
    fn syntax(config: Config) -> Result<Option<RecordSyntax>, PluginError> {
        let csv = Some(Quoting { quote: b'"', delimiter: b',' });
        Ok(Some(match mode(&config) {
            "header-records" => RecordSyntax { header_records: 1_000_000, quoting: csv },
            "newline-quote" => {
                RecordSyntax { header_records: 1, quoting: Some(Quoting { quote: b'\n', delimiter: b',' }) }
            }
            _ => RecordSyntax { header_records: 1, quoting: csv },
        }))
    }

    fn parse_chunk(config: Config, _source_name: String, chunk: Chunk) -> Result<IpcFragment, PluginError> {
        match mode(&config) {
            "schema-flip" if !chunk.header.is_empty() => Ok(stream(&strings())),
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 8 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            _ => Ok(stream(&ints())),
        }
    }
}

impl ingest::Guest for Component {
    type Parser = Parser;

    fn open(_config: Config, _source_name: String) -> Result<ingest::Parser, PluginError> {
        Ok(ingest::Parser::new(Parser))
    }
}

struct Parser;

impl ingest::GuestParser for Parser {
    fn push(&self, _chunk: Vec<u8>) -> Result<IpcFragment, PluginError> {
        Ok(Vec::new())
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        Ok(stream(&ints()))
    }
}
