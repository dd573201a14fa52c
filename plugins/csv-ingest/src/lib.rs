//! `csv-ingest`: the floe ingest plugin that turns CSV bytes into Arrow.
//! This file is the glue to the plugin SDK (which does the WIT bindings and
//! the IPC framing); the parsing rules live in `parser.rs`.

mod parser;

use floe_plugin_sdk::lines::RecordSyntax;
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

/// One CSV object being parsed, or one chunk of it (`resumed`).
struct CsvIngest {
    parser: parser::Parser,
    resumed: bool,
}

impl Ingest for CsvIngest {
    const CONFIG_SCHEMA: &'static str = CONFIG_SCHEMA;

    fn open(config: &Config, source: &str) -> Result<Self, PluginError> {
        let config = parser::Config::parse(config)?;
        Ok(CsvIngest { parser: parser::Parser::new(config, source.to_owned()), resumed: false })
    }

    fn push(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>, PluginError> {
        self.parser.push(chunk)
    }

    fn finish(&mut self) -> Result<Vec<RecordBatch>, PluginError> {
        let batches = self.parser.finish()?;
        // A chunk's count is not the object's: the host logs the total.
        if !self.resumed {
            log::info(&format!(
                "parsed {} records from `{}` into {} batches",
                self.parser.records(),
                self.parser.source(),
                self.parser.batches()
            ));
        }
        Ok(batches)
    }

    fn schema(&self) -> Option<SchemaRef> {
        self.parser.schema()
    }

    fn record_syntax(config: &Config) -> Result<Option<RecordSyntax>, PluginError> {
        parser::Config::parse(config)?;
        Ok(Some(parser::SYNTAX))
    }

    fn resume_at(&mut self, first_record: u64, first_line: u64) -> Result<(), PluginError> {
        self.resumed = true;
        self.parser.resume_at(first_record, first_line)
    }
}

export_ingest!(CsvIngest);
