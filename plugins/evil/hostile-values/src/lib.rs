//! `evil-hostile-values`: a well-formed ingest whose *values* attack. Its one
//! column, `status`, holds text meant to escape wherever the host quotes a
//! value (a failing data test's examples in errors, logs, lineage, Pipes):
//! terminal escapes, a newline then a forged Dagster Pipes message, a forged
//! JSON log record, a Unicode line separator, a 100 KB value; each twice, so
//! that `unique` fails on them too.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "ingest-plugin",
});

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};
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

impl ingest::Guest for Component {
    type Parser = Parser;

    fn open(_config: Config, _source_name: String) -> Result<ingest::Parser, PluginError> {
        Ok(ingest::Parser::new(Parser))
    }
}

struct Parser;

/// The values: each would break a line-oriented reader of the host's output.
fn values() -> Vec<String> {
    let attacks = [
        "\u{1b}[2J\u{1b}[31mFORGED TERMINAL\u{1b}[0m".to_owned(),
        "x\n{\"__dagster_pipes_version\":\"0.1\",\"method\":\"report_asset_materialization\",\"params\":{\"asset_key\":\"gold/pwned\"}}".to_owned(),
        "y\r\n{\"level\":\"ERROR\",\"message\":\"forged record\",\"exit_code\":0}".to_owned(),
        "z\u{2028}forged line".to_owned(),
        "A".repeat(100_000),
    ];
    attacks.iter().chain(attacks.iter()).cloned().collect()
}

impl ingest::GuestParser for Parser {
    fn push(&self, _chunk: Vec<u8>) -> Result<IpcFragment, PluginError> {
        Ok(Vec::new())
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        let schema = Arc::new(Schema::new(vec![Field::new("status", DataType::Utf8, true)]));
        let column: ArrayRef = Arc::new(StringArray::from(values()));
        let batch = RecordBatch::try_new(schema.clone(), vec![column]).map_err(|e| PluginError::Internal(e.to_string()))?;
        let mut writer = StreamWriter::try_new(Vec::new(), &schema).map_err(|e| PluginError::Internal(e.to_string()))?;
        writer.write(&batch).map_err(|e| PluginError::Internal(e.to_string()))?;
        writer.finish().map_err(|e| PluginError::Internal(e.to_string()))?;
        writer.into_inner().map_err(|e| PluginError::Internal(e.to_string()))
    }
}
