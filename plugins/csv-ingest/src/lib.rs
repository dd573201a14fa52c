//! `csv-ingest`: the floe ingest plugin that turns CSV bytes into Arrow.
//! This file is the glue to the plugin SDK (which does the WIT bindings and
//! the IPC framing); the parsing rules live in `parser.rs`.

mod parser;

use floe_plugin_sdk::log;
use floe_plugin_sdk::prelude::*;

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

/// One CSV object being parsed.
struct CsvIngest(parser::Parser);

impl Ingest for CsvIngest {
    const CONFIG_SCHEMA: &'static str = CONFIG_SCHEMA;

    fn open(config: &Config, source: &str) -> Result<Self, PluginError> {
        let config = parser::Config::parse(config)?;
        Ok(CsvIngest(parser::Parser::new(config, source.to_owned())))
    }

    fn push(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>, PluginError> {
        self.0.push(chunk)
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>, PluginError> {
        let batches = self.0.finish()?;
        log::info(&format!(
            "parsed {} records from `{}` into {} batches",
            self.0.records(),
            self.0.source(),
            self.0.batches()
        ));
        Ok(batches)
    }

    fn schema(&self) -> Option<SchemaRef> {
        self.0.schema()
    }
}

export_ingest!(CsvIngest);
