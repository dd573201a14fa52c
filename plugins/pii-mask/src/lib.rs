//! `pii-mask`: a batch-by-batch transform, built on the plugin SDK.
//!
//! - Every column in `email` is normalised: `lower(trim(value))`, with
//!   Unicode lower-casing and trimming of Unicode white space.
//! - Every column in `hash` is replaced by the salted SHA-256 of its value:
//!   the lower-case hex digest of the salt's UTF-8 bytes followed by the
//!   value's UTF-8 bytes, i.e. `sha256(salt || value)`.
//! - NULL stays NULL; other columns pass through unchanged. The output schema
//!   is the input schema.
//! - The named columns must exist and be Utf8; a column may not be in both
//!   lists; at least one list must be set; `salt` must be set (and not empty)
//!   when `hash` is.

use std::sync::Arc;

use floe_plugin_sdk::arrow_array::StringArray;
use floe_plugin_sdk::arrow_array::cast::AsArray;
use floe_plugin_sdk::prelude::*;
use sha2::{Digest, Sha256};

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "pii-mask config",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "email": { "description": "Comma-separated Utf8 columns to normalise with lower(trim()).", "type": "string" },
    "hash": { "description": "Comma-separated Utf8 columns to replace with hex(sha256(salt || value)).", "type": "string" },
    "salt": { "description": "The salt for `hash`. Keep it stable to keep hashes joinable across runs.", "type": "string", "minLength": 1 }
  }
}"#;

#[derive(Clone, Copy)]
enum Action {
    Keep,
    Email,
    Hash,
}

struct PiiMask {
    /// One action per input column, by position.
    actions: Vec<Action>,
    salt: String,
}

impl PiiMask {
    fn plan(config: &Config, input: &SchemaRef) -> Result<Self, PluginError> {
        config.check_keys(&["email", "hash", "salt"])?;
        let email = config.list("email")?.unwrap_or_default();
        let hash = config.list("hash")?.unwrap_or_default();
        if email.is_empty() && hash.is_empty() {
            return Err(PluginError::config("set `email`, `hash` or both: there is nothing to mask"));
        }
        let salt = if hash.is_empty() {
            config.non_empty("salt")?.unwrap_or_default().to_owned()
        } else {
            config.required_non_empty("salt")?.to_owned()
        };
        let mut actions = vec![Action::Keep; input.fields().len()];
        for (key, names, action) in [("email", &email, Action::Email), ("hash", &hash, Action::Hash)] {
            for name in names {
                let Ok(i) = input.index_of(name) else {
                    let have: Vec<&str> = input.fields().iter().map(|f| f.name().as_str()).collect();
                    return Err(PluginError::config(format!(
                        "`{key}`: column `{name}` is not in the input (columns: {})",
                        have.join(", ")
                    )));
                };
                if input.field(i).data_type() != &DataType::Utf8 {
                    return Err(PluginError::config(format!(
                        "`{key}`: column `{name}` is {}, not Utf8",
                        input.field(i).data_type()
                    )));
                }
                if !matches!(actions[i], Action::Keep) {
                    return Err(PluginError::config(format!("column `{name}` is named twice in `email`/`hash`")));
                }
                actions[i] = action;
            }
        }
        Ok(Self { actions, salt })
    }
}

impl Transform for PiiMask {
    const CONFIG_SCHEMA: &'static str = CONFIG_SCHEMA;

    fn output_schema(config: &Config, input: &SchemaRef) -> Result<SchemaRef, PluginError> {
        Self::plan(config, input)?;
        Ok(input.clone())
    }

    fn open(config: &Config, input: &SchemaRef) -> Result<Self, PluginError> {
        Self::plan(config, input)
    }

    fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, PluginError> {
        let mut columns = batch.columns().to_vec();
        for (column, action) in columns.iter_mut().zip(&self.actions) {
            let masked: StringArray = match action {
                Action::Keep => continue,
                Action::Email => column.as_string::<i32>().iter().map(|v| v.map(|s| s.trim().to_lowercase())).collect(),
                Action::Hash => {
                    column.as_string::<i32>().iter().map(|v| v.map(|s| salted_sha256(&self.salt, s))).collect()
                }
            };
            *column = Arc::new(masked) as ArrayRef;
        }
        Ok(vec![RecordBatch::try_new(batch.schema(), columns)?])
    }
}

/// Lower-case hex of `sha256(salt || value)`.
fn salted_sha256(salt: &str, value: &str) -> String {
    let digest = Sha256::new().chain_update(salt).chain_update(value).finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from_digit(u32::from(byte >> 4), 16).expect("a nibble"));
        hex.push(char::from_digit(u32::from(byte & 15), 16).expect("a nibble"));
    }
    hex
}

export_transform!(PiiMask);
