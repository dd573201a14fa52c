//! `floe.yaml`: what flows where, written by data engineers.
//!
//! Only logical names for storage, catalog and compute appear here; the
//! platform file maps them to real services. These structs are the user
//! documentation of the file: every field has a doc comment.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ident::Ident;
use super::partition::PartitionField;

/// The pipeline file.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FloeFile {
    /// Pipeline name, used in run ids, lineage and snapshot summaries.
    pub name: String,
    /// Free-form pipeline version, for example `"1.0.0"`.
    #[serde(default)]
    pub version: Option<String>,
    /// Logical storage profile (a key of `storage` in platform.yaml).
    #[serde(default = "default_profile")]
    pub storage: String,
    /// Logical catalog profile (a key of `catalogs` in platform.yaml).
    #[serde(default = "default_profile")]
    pub catalog: String,
    /// Logical compute profile (a key of `compute` in platform.yaml).
    #[serde(default = "default_profile")]
    pub compute: String,
    /// WebAssembly components used by the transforms, by name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginRef>,
    /// The steps of the pipeline. Their order in the file does not matter:
    /// they run in dependency order.
    pub transforms: Vec<Transform>,
    /// The dbt project folder of the SQL models, relative to floe.yaml
    /// (default: the folder of floe.yaml). A `sql` step without `sql:` runs
    /// the model named like the step from its `models/` folder (or the
    /// `model-paths` of its `dbt_project.yml`); `{{ my_macro() }}` calls the
    /// macros of its `macros/` folder. When this key is set, every model of
    /// the project that no step names is a step too (as `dbt run` runs them
    /// all), in the layer its folder's `+schema` or its `config(schema=...)` says.
    #[serde(default)]
    pub dbt_project: Option<PathBuf>,
    /// Values for `{{ var('name') }}` in SQL models. `--vars` overrides
    /// them, and they override the `vars` of `dbt_project.yml`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub vars: BTreeMap<String, serde_yaml::Value>,
}

fn default_profile() -> String {
    "default".to_string()
}

/// A plugin component.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// Path of the `.wasm` component, relative to floe.yaml.
    pub path: PathBuf,
    /// Optional hex SHA-256 of the component; the host refuses a file that differs.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// One step: it produces the table `<layer>.<name>`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = floe_platform_spellings)]
pub struct Transform {
    /// Step name and target table name, for example `stg_orders`.
    pub name: Ident,
    /// Medallion layer of the target table (`bronze`, `silver`, `gold`, or a
    /// layer defined in platform.yaml). It decides catalog, namespace and storage.
    /// `schema:` (floe-platform's spelling) means the same.
    #[serde(alias = "schema")]
    pub layer: Ident,
    /// What the step does. `type: dbt` (floe-platform's spelling) means `kind: sql`.
    #[serde(alias = "type")]
    pub kind: TransformKind,
    /// For `ingest` and `wasm`: the plugin (a key of `plugins`).
    #[serde(default)]
    pub plugin: Option<String>,
    /// For `wasm`: the tables the plugin reads, as `<layer>.<name>`. A
    /// streaming transform reads exactly one; a SQL-mode plugin may read several.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// For `ingest`: the raw source object, relative to floe.yaml. It may name
    /// the partition of the run: `data/orders_{partition}.csv` reads
    /// `data/orders_2024-01-03.csv` under `run --partition 2024-01-03` (and
    /// needs `--partition`).
    #[serde(default)]
    pub source: Option<PathBuf>,
    /// For `sql`: the model, a DuckDB SQL file relative to floe.yaml (default:
    /// the model named like the step in the dbt project's `models/` folder).
    /// It refers to other steps' tables as `<layer>.<name>`, or as dbt does:
    /// `{{ ref('name') }}`, `{{ source('layer', 'name') }}`; it may set
    /// `{{ config(materialized=..., unique_key=..., partition_by=...) }}`.
    #[serde(default)]
    pub sql: Option<PathBuf>,
    /// Labels for `run --select tag:NAME` (and `--exclude`), for example `[pii, finance]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Plugin configuration: scalar values only, handed to the plugin as strings.
    /// Never put a credential here.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub config: BTreeMap<String, serde_yaml::Value>,
    /// How the result replaces, extends or merges into the target table.
    #[serde(default)]
    pub mode: WriteMode,
    /// How the target table is partitioned: a list of fields, each a column
    /// (one partition per value) or `day(column)`, `month(column)` or
    /// `year(column)` of a date or timestamp column, for example
    /// `[order_date]` or `["day(order_ts)"]`. The table is created with this
    /// partitioning and data files are written per partition; an existing table
    /// must be partitioned the same way. `mode: partition_overwrite` needs
    /// exactly one field.
    #[serde(default)]
    pub partition_by: Vec<PartitionField>,
    /// For `mode: merge` (and only for it): the columns that identify a row,
    /// for example `[order_id]`. Each must be a column of the step's output;
    /// the output must hold at most one row per key, and no NULL key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merge_keys: Vec<String>,
    /// What happens when the step's output columns differ from those of the
    /// existing table: `fail` (the default) stops the step; `add_columns` adds
    /// the new output columns to the table as optional columns, in the same
    /// commit, and writes NULL for table columns the output lacks. A changed
    /// column type fails either way.
    #[serde(default)]
    pub schema_evolution: SchemaEvolution,
    /// For an `ingest` step: whether a source with no data rows (a header
    /// only, an empty file) may commit an empty table (whatever
    /// `max_shrink` says). Default `false`: the step fails with exit 4 and
    /// the table keeps its data.
    #[serde(default)]
    pub allow_empty: bool,
    /// The largest fraction of its rows a step may remove from what it
    /// replaces (the table for `overwrite`, the run's partition for
    /// `partition_overwrite` with `--partition`), from 0 to 1. Default `0.5`:
    /// an output with less than half the rows it replaces fails the step with
    /// exit 4 and commits nothing. `1` turns the check off.
    #[serde(default)]
    pub max_shrink: Option<f64>,
}

/// The schema of a step also takes floe-platform's spellings, as the parser
/// does (serde aliases, which schemars does not show): `type: dbt` for
/// `kind`, `schema:` for `layer`; each step needs one of each pair.
fn floe_platform_spellings(schema: &mut schemars::Schema) {
    if let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
        properties.insert(
            "type".into(),
            serde_json::json!({
                "description": "floe-platform's spelling of `kind`: `type: dbt` is `kind: sql`.",
                "enum": ["dbt", "sql", "ingest", "wasm"],
            }),
        );
        properties.insert(
            "schema".into(),
            serde_json::json!({
                "description": "floe-platform's spelling of `layer`.",
                "type": "string",
            }),
        );
    }
    if let Some(required) = schema.get_mut("required").and_then(|r| r.as_array_mut()) {
        required.retain(|key| key != "kind" && key != "layer");
    }
    schema.insert(
        "allOf".into(),
        serde_json::json!([
            {"oneOf": [{"required": ["kind"]}, {"required": ["type"]}]},
            {"oneOf": [{"required": ["layer"]}, {"required": ["schema"]}]},
        ]),
    );
}

impl Transform {
    /// A `sql` step running the model `file` (a model of the dbt project
    /// that floe.yaml does not list), with every other key at its default.
    pub fn model(name: Ident, layer: Ident, file: PathBuf) -> Self {
        Transform {
            name,
            layer,
            kind: TransformKind::Sql,
            plugin: None,
            inputs: Vec::new(),
            source: None,
            sql: Some(file),
            tags: Vec::new(),
            config: BTreeMap::new(),
            mode: WriteMode::default(),
            partition_by: Vec::new(),
            merge_keys: Vec::new(),
            schema_evolution: SchemaEvolution::default(),
            allow_empty: false,
            max_shrink: None,
        }
    }
}

/// The kinds of step.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransformKind {
    /// Bronze ingest: the host reads `source` and a plugin turns its bytes into Arrow.
    Ingest,
    /// DuckDB runs the `sql` model over the tables it references.
    /// `dbt` (floe-platform's `type: dbt`) means the same.
    #[serde(alias = "dbt")]
    Sql,
    /// A transform plugin: it streams the input's batches (row and batch
    /// logic, stateful or not), or returns SQL that DuckDB runs over `inputs`.
    Wasm,
}

/// How a step's output is written to its table.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Replace the whole table in one atomic snapshot (the default: reruns are idempotent).
    #[default]
    Overwrite,
    /// Add the rows in a new snapshot, keeping what is there.
    Append,
    /// Replace only partitions, in one atomic snapshot. With `run --partition
    /// VALUE`: that one partition; the step reads only that partition of its
    /// inputs partitioned on the same column, and fails if it produces rows
    /// outside it. Without `--partition`: every partition the output holds.
    /// Needs `partition_by` with one field.
    PartitionOverwrite,
    /// Upsert by `merge_keys`: an output row replaces the table's row with the
    /// same key, or is inserted; table rows whose key is not in the output stay.
    /// Committed as one `overwrite` snapshot that rewrites the data files
    /// holding a replaced row.
    Merge,
}

impl WriteMode {
    /// The name floe.yaml uses, also recorded as `floe.mode` in snapshot summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::Overwrite => "overwrite",
            WriteMode::Append => "append",
            WriteMode::PartitionOverwrite => "partition_overwrite",
            WriteMode::Merge => "merge",
        }
    }
}

/// How a step's output may change the schema of its existing table.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SchemaEvolution {
    /// The output must have the table's columns, with the same names, types
    /// and order; anything else fails the step.
    #[default]
    Fail,
    /// Output columns the table lacks are added as optional columns; table
    /// columns the output lacks are written as NULL. Columns are matched by
    /// name. A column whose type differs still fails the step.
    AddColumns,
}
