//! What a model's `{{ config(...) }}` means to floe-host: dbt's
//! materializations mapped to write modes (`table` → overwrite,
//! `incremental` → append, or merge with `unique_key`), its partitioning,
//! tags and schema; what floe-host cannot honour is an error, what does not
//! matter to it a warning.

use std::collections::BTreeMap;

use minijinja::Value;

use crate::config::{SchemaEvolution, WriteMode};

/// The settings a model's config gives its step; `None` where it says nothing.
#[derive(Debug, Default, PartialEq)]
pub struct ModelSettings {
    pub mode: Option<WriteMode>,
    pub merge_keys: Option<Vec<String>>,
    pub partition_by: Option<Vec<String>>,
    pub schema: Option<String>,
    pub tags: Vec<String>,
    pub schema_evolution: Option<SchemaEvolution>,
    /// Whether `materialized='incremental'`: `is_incremental()` may be true.
    pub incremental: bool,
    /// Keys floe-host ignores.
    pub ignored: Vec<String>,
}

/// Keys dbt uses for documentation, grants and the like, which change
/// nothing in the table floe-host writes: ignored with a warning.
const IGNORED: &[&str] = &[
    "docs",
    "meta",
    "persist_docs",
    "contract",
    "grants",
    "group",
    "access",
    "description",
    "full_refresh",
    "database",
];

/// Reads the config; errors are messages to show against the model file.
pub fn interpret(config: &BTreeMap<String, Value>, step: &str) -> Result<ModelSettings, Vec<String>> {
    let mut settings = ModelSettings::default();
    let mut errors = Vec::new();
    let mut strategy = None;
    for (key, value) in config {
        match key.as_str() {
            "materialized" => match value.as_str() {
                Some("table") => settings.mode = Some(WriteMode::Overwrite),
                Some("incremental") => settings.incremental = true,
                Some(other) => errors.push(format!(
                    "config(materialized='{other}') is not supported: floe-host writes every model to an Iceberg \
                     table; use materialized='table' (replaced on each run) or 'incremental'"
                )),
                None => errors.push(format!("config(materialized=...) must be a string, not {value}")),
            },
            "incremental_strategy" => strategy = Some(value.to_string()),
            "unique_key" => match strings(value) {
                Some(keys) => settings.merge_keys = Some(keys),
                None => {
                    errors.push(format!("config(unique_key=...) must be a column name or a list of them, not {value}"))
                }
            },
            "partition_by" => match strings(value) {
                Some(fields) => settings.partition_by = Some(fields),
                None => errors.push(format!(
                    "config(partition_by=...) must be a field or a list of them, such as 'order_date' or \
                     ['day(order_ts)'], not {value}"
                )),
            },
            "schema" => match value.as_str() {
                Some(schema) => settings.schema = Some(schema.to_string()),
                None => errors.push(format!("config(schema=...) must be a layer name, not {value}")),
            },
            "tags" | "tag" => match strings(value) {
                Some(tags) => settings.tags = tags,
                None => errors.push(format!("config(tags=...) must be a tag or a list of them, not {value}")),
            },
            "on_schema_change" => match value.as_str() {
                Some("ignore" | "fail") => settings.schema_evolution = Some(SchemaEvolution::Fail),
                Some("append_new_columns") => settings.schema_evolution = Some(SchemaEvolution::AddColumns),
                _ => errors.push(format!(
                    "config(on_schema_change={value}) is not supported: use 'fail' or 'append_new_columns'"
                )),
            },
            "alias" | "identifier" if value.as_str() == Some(step) => {}
            "alias" | "identifier" => errors.push(format!(
                "config({key}={value}): a model's table is named after its step (`{step}`); rename the step instead"
            )),
            "enabled" if value.is_true() => {}
            "enabled" => errors.push(
                "config(enabled=false): remove the step from floe.yaml, or leave it out of a run with \
                 `--exclude`"
                    .into(),
            ),
            "pre_hook" | "post_hook" | "pre-hook" | "post-hook" | "sql_header" => errors.push(format!(
                "config({key}=...) is not supported: floe-host runs a model as one SELECT; put the SQL in the model \
                 or in a step of its own"
            )),
            key if IGNORED.contains(&key) => settings.ignored.push(key.to_string()),
            key => settings.ignored.push(key.to_string()),
        }
    }
    if settings.incremental {
        let has_key = settings.merge_keys.as_ref().is_some_and(|k| !k.is_empty());
        settings.mode = Some(match (strategy.as_deref().map(|s| s.trim_matches(['"', '\''])), has_key) {
            (None | Some("append"), false) => WriteMode::Append,
            (None | Some("merge" | "delete+insert"), true) => WriteMode::Merge,
            (Some("append"), true) => WriteMode::Append,
            (Some("insert_overwrite"), _) => WriteMode::PartitionOverwrite,
            (Some("merge" | "delete+insert"), false) => {
                errors.push(format!(
                    "config(incremental_strategy={}) needs unique_key: the columns that identify a row",
                    strategy.as_deref().unwrap_or_default()
                ));
                WriteMode::Append
            }
            (Some(other), _) => {
                errors.push(format!(
                    "config(incremental_strategy={other}) is not supported: use 'append', 'merge' (with unique_key) \
                     or 'insert_overwrite' (with partition_by)"
                ));
                WriteMode::Append
            }
        });
        if settings.mode != Some(WriteMode::Merge) {
            settings.merge_keys = None;
        }
    } else if settings.merge_keys.is_some() {
        // dbt ignores unique_key on a table; so does floe-host.
        settings.merge_keys = None;
        settings.ignored.push("unique_key".into());
    }
    if errors.is_empty() { Ok(settings) } else { Err(errors) }
}

/// A string, or a list of strings.
fn strings(value: &Value) -> Option<Vec<String>> {
    if let Some(one) = value.as_str() {
        return Some(vec![one.to_string()]);
    }
    value.try_iter().ok()?.map(|item| item.as_str().map(str::to_string)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn maps_materializations_to_write_modes() {
        let table = interpret(&config(&[("materialized", Value::from("table"))]), "m").unwrap();
        assert_eq!(table.mode, Some(WriteMode::Overwrite));
        let append = interpret(&config(&[("materialized", Value::from("incremental"))]), "m").unwrap();
        assert_eq!((append.mode, append.incremental), (Some(WriteMode::Append), true));
        let merge = interpret(
            &config(&[("materialized", Value::from("incremental")), ("unique_key", Value::from(vec!["a", "b"]))]),
            "m",
        )
        .unwrap();
        assert_eq!((merge.mode, merge.merge_keys), (Some(WriteMode::Merge), Some(vec!["a".into(), "b".into()])));
        let ignored =
            interpret(&config(&[("persist_docs", Value::from(true)), ("materialized", Value::from("table"))]), "m")
                .unwrap();
        assert_eq!(ignored.ignored, vec!["persist_docs"]);
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let errors = interpret(
            &config(&[
                ("materialized", Value::from("view")),
                ("post_hook", Value::from("grant select on {{ this }} to x")),
                ("alias", Value::from("other")),
            ]),
            "m",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("materialized='view') is not supported")));
    }
}
