//! The plan: the pipeline's steps in dependency order, with every name
//! resolved to a catalog, namespace and file. Building it is pure (it reads
//! the files it refers to but touches no service), so `validate` and `plan`
//! find every configuration error before anything runs.

mod build;
mod order;
mod render;
pub mod sql_refs;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use build::build;

use crate::config::{DuckdbProperties, Ident, WriteMode};

/// A fully resolved pipeline.
#[derive(Clone, Debug)]
pub struct Plan {
    pub pipeline: String,
    /// Steps in an order where every input is produced before it is read.
    pub steps: Vec<Step>,
    /// The catalogs the steps write to, by profile name.
    pub catalogs: BTreeMap<String, CatalogSpec>,
    pub compute: DuckdbProperties,
    /// Where the host keeps local state: the embedded catalog and warehouse,
    /// and the compiled-plugin cache.
    pub state_dir: PathBuf,
}

/// One step of the plan.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: Ident,
    pub layer: Ident,
    /// The table the step writes.
    pub target: TableRef,
    /// Catalog profile of the target.
    pub catalog: String,
    pub mode: WriteMode,
    pub action: Action,
    /// Tables the step reads, produced by earlier steps.
    pub inputs: Vec<Input>,
}

/// A table a step reads: how the SQL names it and where it lives.
#[derive(Clone, Debug)]
pub struct Input {
    /// The layer it is referred to by in SQL (`silver` in `silver.stg_orders`).
    pub layer: Ident,
    pub table: TableRef,
    pub catalog: String,
}

/// What a step computes.
#[derive(Clone, Debug)]
pub enum Action {
    /// The host reads `source` and the plugin parses it.
    Ingest {
        plugin: PluginSpec,
        source: PathBuf,
        /// The path as written in floe.yaml, for messages.
        source_display: String,
        config: BTreeMap<String, String>,
    },
    /// DuckDB runs `query` over the inputs.
    Sql { file: PathBuf, query: String },
}

/// A plugin component, verified to exist.
#[derive(Clone, Debug)]
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

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.name)
    }
}

/// A catalog as the lakehouse layer opens it.
#[derive(Clone, Debug)]
pub enum CatalogSpec {
    /// Embedded SQL catalog.
    Sql { uri: String, warehouse: String },
}
