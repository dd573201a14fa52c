//! `dedup`: a stateful transform, built on the plugin SDK.
//!
//! Keeps the first row for each distinct value of the `key` columns, across
//! the whole input (batch boundaries do not matter), and drops the later
//! ones. Rows keep their input order. NULL keys are equal to each other, as in
//! SQL's `DISTINCT`. The output schema is the input schema.
//!
//! State: the row encoding of every distinct key seen so far, in the SDK's
//! compact [`KeySet`] (about 17 bytes per `Int64` key: 50M keys in the
//! default 1 GiB of plugin memory). The plugin's memory limit bounds it.

use arrow_row::{RowConverter, SortField};
use floe_plugin_sdk::KeySet;
use floe_plugin_sdk::arrow_array::BooleanArray;
use floe_plugin_sdk::prelude::*;

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "dedup config",
  "type": "object",
  "additionalProperties": false,
  "required": ["key"],
  "properties": {
    "key": { "description": "Comma-separated key columns.", "type": "string", "minLength": 1 }
  }
}"#;

struct Dedup {
    /// Positions of the key columns in the input.
    keys: Vec<usize>,
    converter: RowConverter,
    seen: KeySet,
}

fn key_columns(config: &Config, input: &SchemaRef) -> Result<Vec<usize>, PluginError> {
    config.check_keys(&["key"])?;
    let names = config.list("key")?.ok_or_else(|| PluginError::config("missing config key `key` (the key columns)"))?;
    names
        .iter()
        .map(|name| {
            input.index_of(name).map_err(|_| {
                let have: Vec<&str> = input.fields().iter().map(|f| f.name().as_str()).collect();
                PluginError::config(format!(
                    "`key`: column `{name}` is not in the input (columns: {})",
                    have.join(", ")
                ))
            })
        })
        .collect()
}

impl Transform for Dedup {
    const CONFIG_SCHEMA: &'static str = CONFIG_SCHEMA;

    fn output_schema(config: &Config, input: &SchemaRef) -> Result<SchemaRef, PluginError> {
        key_columns(config, input)?;
        Ok(input.clone())
    }

    fn open(config: &Config, input: &SchemaRef) -> Result<Self, PluginError> {
        let keys = key_columns(config, input)?;
        let fields = keys.iter().map(|&i| SortField::new(input.field(i).data_type().clone())).collect();
        let converter = RowConverter::new(fields)
            .map_err(|e| PluginError::config(format!("`key`: these columns cannot be compared: {e}")))?;
        Ok(Self { keys, converter, seen: KeySet::new() })
    }

    fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, PluginError> {
        let columns: Vec<ArrayRef> = self.keys.iter().map(|&i| batch.column(i).clone()).collect();
        let rows = self.converter.convert_columns(&columns)?;
        let keep =
            rows.iter().map(|row| self.seen.insert(row.as_ref()).map(Some)).collect::<Result<BooleanArray, _>>()?;
        if keep.true_count() == 0 {
            return Ok(Vec::new());
        }
        Ok(vec![arrow_select::filter::filter_record_batch(&batch, &keep)?])
    }
}

export_transform!(Dedup);
