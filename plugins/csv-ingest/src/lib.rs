//! `csv-ingest`: the floe ingest plugin that turns CSV bytes into Arrow.
//! This file is the component glue (WIT bindings, exports, host logging);
//! the parsing rules live in `parser.rs`.

mod parser;

use std::cell::RefCell;

use exports::floe::plugin::ingest::{self, Config, IpcFragment};
use exports::floe::plugin::meta;
use floe::plugin::log::{Level, log};
use floe::plugin::types::{PluginError, PluginInfo, PluginKind};

wit_bindgen::generate!({
    path: "../../wit",
    world: "ingest-plugin",
});

/// JSON Schema of the `config` map. Values arrive as strings (the host
/// flattens the YAML map), so `batch_rows` accepts both forms.
const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "csv-ingest config",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "batch_rows": {
      "description": "Maximum number of rows per output batch.",
      "type": ["integer", "string"],
      "minimum": 1,
      "pattern": "^[1-9][0-9]*$",
      "default": 65536
    },
    "row_number_column": {
      "description": "Name of the Int64 column that holds the 1-based record number (the first record after the header is 1).",
      "type": "string",
      "minLength": 1,
      "default": "_row"
    }
  }
}"#;

struct Component;

export!(Component);

impl meta::Guest for Component {
    fn info() -> PluginInfo {
        PluginInfo {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Ingest,
            config_schema: CONFIG_SCHEMA.to_owned(),
        }
    }
}

impl ingest::Guest for Component {
    type Parser = CsvParser;

    fn open(config: Config, source_name: String) -> Result<ingest::Parser, PluginError> {
        let config = parser::Config::parse(&config).map_err(to_wit)?;
        Ok(ingest::Parser::new(CsvParser(RefCell::new(parser::Parser::new(config, source_name)))))
    }
}

/// The `parser` resource. WIT methods take `&self`; calls never overlap.
struct CsvParser(RefCell<parser::Parser>);

impl ingest::GuestParser for CsvParser {
    fn push(&self, chunk: Vec<u8>) -> Result<IpcFragment, PluginError> {
        self.0.borrow_mut().push(&chunk).map_err(to_wit)
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        let mut parser = self.0.borrow_mut();
        let out = parser.finish().map_err(to_wit)?;
        log(
            Level::Info,
            &format!(
                "parsed {} records from `{}` into {} batches",
                parser.records(),
                parser.source(),
                parser.batches()
            ),
        );
        Ok(out)
    }
}

fn to_wit(err: parser::Error) -> PluginError {
    match err {
        parser::Error::InvalidConfig(m) => PluginError::InvalidConfig(m),
        parser::Error::InvalidInput(m) => PluginError::InvalidInput(m),
        parser::Error::Internal(m) => PluginError::Internal(m),
    }
}
