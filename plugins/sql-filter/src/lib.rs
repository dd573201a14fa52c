//! `sql-filter`: a SQL-mode transform, built on the plugin SDK. It returns
//!
//! ```sql
//! SELECT <columns> FROM <input> WHERE (<where>)
//! ```
//!
//! - `where` (required): a DuckDB boolean expression over the input's
//!   columns, used as written (it comes from the pipeline, like a SQL file).
//! - `columns` (optional): comma-separated column names, each quoted as a SQL
//!   identifier; default `*`.
//! - `input` (optional): which declared input to read; required only when
//!   the step declares more than one.

use floe_plugin_sdk::prelude::*;

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "sql-filter config",
  "type": "object",
  "additionalProperties": false,
  "required": ["where"],
  "properties": {
    "where": { "description": "DuckDB boolean expression that selects the rows to keep.", "type": "string", "minLength": 1 },
    "columns": { "description": "Comma-separated columns to keep (default: all).", "type": "string" },
    "input": { "description": "The input to read (`layer.table`), when the step declares several.", "type": "string" }
  }
}"#;

struct SqlFilter;

impl SqlTransform for SqlFilter {
    const CONFIG_SCHEMA: &'static str = CONFIG_SCHEMA;

    fn sql(config: &Config, inputs: &[String]) -> Result<String, PluginError> {
        config.check_keys(&["columns", "input", "where"])?;
        let predicate = config.required_non_empty("where")?;
        let input = match (config.non_empty("input")?, inputs) {
            (Some(name), _) if inputs.iter().any(|i| i == name) => name,
            (Some(name), _) => {
                return Err(PluginError::config(format!(
                    "`input`: `{name}` is not a declared input (inputs: {})",
                    inputs.join(", ")
                )));
            }
            (None, [only]) => only.as_str(),
            (None, []) => return Err(PluginError::config("the step declares no input to filter")),
            (None, _) => {
                return Err(PluginError::config(format!(
                    "set `input`: the step declares several inputs ({})",
                    inputs.join(", ")
                )));
            }
        };
        let columns = match config.list("columns")? {
            Some(names) => names.iter().map(|n| quote_ident(n)).collect::<Vec<_>>().join(", "),
            None => "*".to_owned(),
        };
        Ok(format!("SELECT {columns} FROM {input} WHERE ({predicate})"))
    }
}

/// `name` as a double-quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

export_sql_transform!(SqlFilter);
