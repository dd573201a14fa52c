//! The plan: the pipeline's steps in dependency order, with every name
//! resolved to a catalog, namespace and file. Building it is pure (it reads
//! the files it refers to but touches no service), so `validate` and `plan`
//! find every configuration error before anything runs.

mod build;
pub mod config_schema;
mod features;
pub mod model;
mod order;
pub mod partition;
pub mod plugin_config;
mod render;
pub mod select;
pub mod source;
pub mod sql_refs;
mod write;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

pub use build::build;

use crate::config::{DuckdbProperties, Ident, Observability, PartitionField, SchemaEvolution, Secret, WriteMode};
use crate::sandbox::Limits;

/// Steps of a run that may compute at once when the compute profile does not
/// say (`concurrent_steps`): one per two cores the process may use (cgroup
/// quotas count), at most 4. A step keeps about two cores busy on its own
/// (a parse and the writer, or DuckDB's threads), so on 2 cores a second step
/// only takes cycles from the first: the demo at 10M orders took the same
/// wall time both ways, with more memory two at once (BENCHMARKS.md, "Steps
/// at once").
pub fn default_concurrent_steps() -> usize {
    (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).clamp(1, 4)
}

/// A fully resolved pipeline. Serializes (for `plan --json`) with every
/// secret shown as `***`.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub pipeline: String,
    /// Steps in an order where every input is produced before it is read.
    pub steps: Vec<Step>,
    /// The catalogs of the platform, by profile name.
    pub catalogs: BTreeMap<String, CatalogSpec>,
    /// The storage profiles of the platform, by name.
    pub storage: BTreeMap<String, StorageSpec>,
    pub compute: DuckdbProperties,
    /// Steps that may compute at once (`run::schedule`).
    pub concurrent_steps: usize,
    /// Sandbox limits for every plugin.
    #[serde(skip)]
    pub limits: Limits,
    pub observability: Observability,
    /// Where the host keeps local state: the embedded catalog and warehouse,
    /// and the compiled-plugin cache.
    pub state_dir: PathBuf,
    /// Where ingest sources may resolve to.
    pub sources: source::SourceRoots,
    /// What the plan ignores and the user should know (model config keys
    /// floe-host does not apply, say); logged by every command.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Plan {
    /// Where compiled plugins are cached: `component-cache` in the state
    /// directory (`run` and `validate` share it).
    pub fn component_cache(&self) -> PathBuf {
        self.state_dir.join("component-cache")
    }
}

/// One step of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub name: Ident,
    pub layer: Ident,
    /// The table the step writes.
    pub target: TableRef,
    /// Catalog profile of the target.
    pub catalog: String,
    /// Storage profile of the target.
    pub storage: String,
    /// Where the table is created, for a SQL catalog: the layer's storage
    /// root, then namespace and name. A REST catalog decides for itself
    /// (`None`). A table that exists keeps the location it has.
    pub location: Option<String>,
    pub mode: WriteMode,
    /// How the target table is partitioned (`partition_by`); empty for none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partition_by: Vec<PartitionField>,
    /// The partition a `partition_overwrite` step replaces in this run
    /// (`run --partition`); set by [`Plan::for_partition`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// For `mode: merge`: the columns that identify a row.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merge_keys: Vec<String>,
    /// Whether the step may add columns to its table.
    pub schema_evolution: SchemaEvolution,
    /// Guards against losing data to a bad input (`run::guard`).
    pub guard: Guard,
    pub action: Action,
    /// Tables the step reads, produced by earlier steps.
    pub inputs: Vec<Input>,
    /// The step's `tags`, for `--select tag:NAME`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// dbt data tests on the step's output (`schema.yml`), checked before it commits.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data_tests: Vec<model::data_tests::DataTest>,
    /// A plugin step's `config` as written and where, checked against the
    /// plugin's declared schema once it is loaded; `None` for a SQL model.
    #[serde(skip)]
    pub plugin_config: Option<plugin_config::ConfigSite>,
    /// How `floe-host maintain` keeps the step's table.
    pub maintenance: MaintenancePolicy,
}

/// How `floe-host maintain` keeps a table: from the platform's
/// `layers.<layer>.maintenance` and its storage profile's `retention`.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct MaintenancePolicy {
    /// Snapshots older than this are expired (all but the `keep_last` newest).
    #[serde(serialize_with = "seconds")]
    pub retention: std::time::Duration,
    pub keep_last: u32,
    /// Unreferenced files older than this are deleted.
    #[serde(serialize_with = "seconds")]
    pub orphan_age: std::time::Duration,
    /// Maintain the table at the end of each run that committed it.
    pub after_run: bool,
    /// Compaction writes files of about this size...
    pub target_file_size: u64,
    /// ...from the live files smaller than this (0: no compaction).
    pub small_file_size: u64,
    /// The current snapshot's data manifests are merged when there are more.
    pub max_manifests: u32,
}

impl MaintenancePolicy {
    pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);
    pub const DEFAULT_ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(3 * 86_400);
    /// A writer may still commit files younger than this: never deleted.
    pub const MIN_ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);
    /// Iceberg's `write.target-file-size-bytes` default, which runs write with too.
    pub const DEFAULT_TARGET_FILE_SIZE: u64 = 512 * 1024 * 1024;
    /// Iceberg's `commit.manifest.min-count-to-merge` default.
    pub const DEFAULT_MAX_MANIFESTS: u32 = 100;

    /// Files under 3/4 of the target are small, as Spark's
    /// `rewrite_data_files` counts them by default.
    pub fn default_small_file_size(target_file_size: u64) -> u64 {
        target_file_size / 4 * 3
    }
}

fn seconds<S: serde::Serializer>(duration: &std::time::Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("{}s", duration.as_secs()))
}

/// What a step may do to the rows it replaces.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Guard {
    /// An ingest may commit zero rows.
    pub allow_empty: bool,
    /// The largest fraction of the replaced rows the output may lack.
    pub max_shrink: f64,
}

impl Guard {
    pub const DEFAULT_MAX_SHRINK: f64 = 0.5;
}

impl Default for Guard {
    fn default() -> Self {
        Guard { allow_empty: false, max_shrink: Self::DEFAULT_MAX_SHRINK }
    }
}

impl Step {
    /// The target's partition field and the value this run replaces: what
    /// narrows the step's inputs to one partition.
    pub fn replaced_partition(&self) -> Option<(&PartitionField, &str)> {
        match (self.partition_by.as_slice(), &self.partition) {
            ([field], Some(value)) if self.mode == WriteMode::PartitionOverwrite => Some((field, value.as_str())),
            _ => None,
        }
    }
}

/// A table a step reads: how the SQL names it and where it lives.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Input {
    /// The layer it is referred to by in SQL (`silver` in `silver.stg_orders`).
    pub layer: Ident,
    pub table: TableRef,
    pub catalog: String,
}

/// What a step computes.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// The host reads `source` and the plugin parses it.
    Ingest {
        plugin: PluginSpec,
        source: PathBuf,
        /// The path as written in floe.yaml, for messages.
        source_display: String,
        config: BTreeMap<String, String>,
    },
    /// A transform plugin over the inputs: streaming, or SQL it returns.
    Wasm { plugin: PluginSpec, config: BTreeMap<String, String> },
    /// DuckDB runs `query` over the inputs.
    Sql {
        file: PathBuf,
        /// The rendered model, for a run that creates or replaces the table.
        #[serde(skip)]
        query: String,
        /// An incremental model's SQL for a run whose table exists
        /// (`is_incremental()` true); it may read the table itself.
        #[serde(skip)]
        incremental: Option<String>,
        /// Places in `query` back to lines of `file`, for DuckDB's errors.
        #[serde(skip)]
        source_map: std::sync::Arc<model::SourceMap>,
    },
}

/// A plugin component, verified to exist.
#[derive(Clone, Debug, Serialize)]
pub struct PluginSpec {
    pub name: String,
    pub path: PathBuf,
    /// Hex SHA-256 of the component as read at plan time.
    pub sha256: String,
}

/// An Iceberg table identifier.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableRef {
    pub namespace: Ident,
    pub name: Ident,
}

impl Serialize for TableRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.name)
    }
}

/// A catalog as the lakehouse layer opens it, secrets resolved.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CatalogSpec {
    /// Embedded SQL catalog.
    Sql { uri: String, warehouse: String },
    /// Iceberg REST catalog (Polaris included).
    Rest(RestSpec),
}

/// A REST catalog with its credentials.
#[derive(Clone, Debug, Serialize)]
pub struct RestSpec {
    pub uri: String,
    pub warehouse: Option<String>,
    pub auth: RestAuth,
    /// The token endpoint (for Polaris, defaulted to its own).
    pub oauth2_server_uri: Option<String>,
}

/// How the host authenticates to a REST catalog.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum RestAuth {
    None,
    Oauth2 { client_id: Secret, client_secret: Secret, scope: Option<String> },
    Bearer { token: Secret },
}

/// Object storage with its credentials.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StorageSpec {
    Local {
        root: PathBuf,
    },
    S3 {
        endpoint: Option<String>,
        bucket: String,
        region: Option<String>,
        path_style_access: bool,
        /// `None`: ambient credentials.
        keys: Option<S3Keys>,
    },
}

/// Static S3 keys.
#[derive(Clone, Debug, Serialize)]
pub struct S3Keys {
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
}
