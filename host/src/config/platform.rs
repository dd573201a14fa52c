//! `platform.yaml`: where and how a pipeline runs, written by platform engineers.
//!
//! Credentials appear only as `secret_ref`s. When no platform file is given,
//! [`PlatformFile::embedded_default`] spells out the zero-setup default: a SQLite
//! Iceberg catalog over a local warehouse folder and an in-memory DuckDB.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ident::Ident;

/// The platform file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformFile {
    /// Schema version of this file, for example `"1.1.0"`.
    #[serde(default)]
    pub version: Option<String>,
    /// Compute profiles by logical name.
    #[serde(default)]
    pub compute: BTreeMap<String, ComputeProfile>,
    /// Iceberg catalogs by logical name.
    #[serde(default)]
    pub catalogs: BTreeMap<String, CatalogProfile>,
    /// Object storage by logical name.
    #[serde(default)]
    pub storage: BTreeMap<String, StorageProfile>,
    /// Medallion layers: where each layer's tables live. A layer that is not
    /// listed uses the pipeline's catalog and storage and a namespace named after it.
    #[serde(default)]
    pub layers: BTreeMap<Ident, LayerProfile>,
}

/// A compute profile.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ComputeProfile {
    /// An ephemeral DuckDB, created per run.
    Duckdb {
        #[serde(default)]
        properties: DuckdbProperties,
    },
}

/// DuckDB settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DuckdbProperties {
    /// Database file; `:memory:` or absent for an in-memory database.
    #[serde(default)]
    pub path: Option<String>,
    /// Worker threads; defaults to the number of CPUs.
    #[serde(default)]
    pub threads: Option<u32>,
    /// DuckDB memory limit such as `2GB`; defaults to about 67% of the
    /// container memory limit (cgroup v2 `memory.max`), else of physical RAM.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// Where DuckDB spills; defaults to DuckDB's own choice.
    #[serde(default)]
    pub temp_directory: Option<String>,
}

/// An Iceberg catalog.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CatalogProfile {
    /// The embedded SQL catalog: Iceberg metadata pointers in a SQLite file.
    Sql {
        /// sqlx URI of the database, for example `sqlite:/data/catalog.db`.
        uri: String,
        /// Warehouse root where tables are created, a path or `file://` URI.
        warehouse: String,
    },
}

/// Object storage.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageProfile {
    /// The local filesystem (or a mounted volume).
    Local {
        /// Root folder.
        root: PathBuf,
    },
}

/// Where a layer's tables live.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayerProfile {
    /// Storage profile (a key of `storage`).
    pub storage_ref: String,
    /// Catalog profile (a key of `catalogs`).
    pub catalog_ref: String,
    /// Iceberg namespace of the layer's tables; defaults to the layer name.
    #[serde(default)]
    pub namespace: Option<Ident>,
}

impl PlatformFile {
    /// The zero-setup default: everything under `state_dir` (normally
    /// `<project>/.floe`): `catalog.db` (SQLite) and `warehouse/`.
    pub fn embedded_default(state_dir: &Path) -> Self {
        let warehouse = state_dir.join("warehouse");
        let mut platform = PlatformFile {
            version: None,
            compute: BTreeMap::new(),
            catalogs: BTreeMap::new(),
            storage: BTreeMap::new(),
            layers: BTreeMap::new(),
        };
        platform.compute.insert(
            "default".into(),
            ComputeProfile::Duckdb { properties: DuckdbProperties::default() },
        );
        platform.catalogs.insert(
            "default".into(),
            CatalogProfile::Sql {
                uri: format!("sqlite:{}", state_dir.join("catalog.db").display()),
                warehouse: warehouse.display().to_string(),
            },
        );
        platform.storage.insert("default".into(), StorageProfile::Local { root: warehouse });
        platform
    }
}
