//! `platform.yaml`: where and how a pipeline runs, written by platform engineers.
//!
//! Credentials appear only as `secret_ref`s; a literal where a secret belongs
//! is a parse error. When no platform file is given,
//! [`PlatformFile::embedded_default`] spells out the zero-setup default: a
//! SQLite Iceberg catalog over a local warehouse folder and an in-memory DuckDB.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::ident::Ident;
use super::secret::SecretRef;
use super::units::{ByteSize, HumanDuration};

/// The platform file.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
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
    /// Traces and lineage.
    #[serde(default)]
    pub observability: Observability,
    /// Limits applied to every plugin instance and call.
    #[serde(default)]
    pub plugins: PluginLimits,
    /// Where ingest steps may read their `source` files.
    #[serde(default)]
    pub sources: SourcePolicy,
    /// What SQL models may read from the environment.
    #[serde(default)]
    pub models: ModelPolicy,
}

/// What SQL models may read from the environment when they are rendered.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPolicy {
    /// Environment variables that `{{ env_var('NAME') }}` may read, for
    /// example `[REPORTING_CURRENCY]`. Default: none. A variable a
    /// `secret_ref` resolves from, or whose name says it holds a secret
    /// (`*SECRET*`, `*PASSWORD*`, `*TOKEN*`, `*CREDENTIAL*`, `*_KEY`), is refused:
    /// rendered SQL is logged, traced and sent as lineage.
    #[serde(default)]
    pub env_vars: Vec<String>,
}

/// Where ingest steps may read their `source` files: inside the project
/// directory (the directory of floe.yaml), and inside these roots. A source
/// is checked after every symlink is resolved; the secrets and state
/// directories are never readable.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourcePolicy {
    /// Absolute directories whose files ingest steps may read besides the
    /// project directory, for example a mounted landing volume
    /// `[/data/landing]`. Default: none.
    #[serde(default)]
    pub allowed_roots: Vec<PathBuf>,
}

/// A compute profile.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ComputeProfile {
    /// An ephemeral DuckDB, created per run.
    Duckdb {
        #[serde(default)]
        properties: DuckdbProperties,
        /// Steps of a run that may compute at once, when no step between
        /// them makes them wait (one reads what the other writes). They share
        /// `threads` and `memory_limit`, and at most one of them runs a plugin.
        /// Default: one per two cores the process may use (1 on 2 cores, where
        /// overlapping was no faster at 10M orders); 1 runs the steps one by one.
        #[serde(default)]
        concurrent_steps: Option<Instances>,
    },
}

/// DuckDB settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
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
    /// Where DuckDB spills when a step needs more than `memory_limit`;
    /// defaults to `duckdb-tmp` in the state directory (`--state-dir`,
    /// `FLOE_STATE_DIR`), which is writable wherever floe-host runs.
    #[serde(default)]
    pub temp_directory: Option<String>,
    /// Directories whose files SQL models may read themselves (`read_csv`,
    /// `read_parquet`, …), for example `[/data/reference]`. Default: none;
    /// a model reads its declared inputs only. SQL returned by a plugin never
    /// gets these. The state directory and the secrets directory cannot be
    /// allowed.
    #[serde(default)]
    pub allowed_directories: Vec<String>,
}

/// An Iceberg catalog.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CatalogProfile {
    /// The embedded SQL catalog: Iceberg metadata pointers in a SQLite file.
    Sql(SqlCatalog),
    /// An Iceberg REST catalog.
    Rest(RestCatalog),
    /// Apache Polaris (an Iceberg REST catalog): its token endpoint
    /// `<uri>/v1/oauth/tokens` is the OAuth2 default.
    Polaris(RestCatalog),
}

/// The embedded SQL catalog.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlCatalog {
    /// sqlx URI of the database, for example `sqlite:/data/catalog.db`.
    pub uri: String,
    /// Warehouse root where tables are created: a path or `file://` URI.
    pub warehouse: String,
}

/// A REST (or Polaris) catalog.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestCatalog {
    /// Base URI, for example `http://polaris:8181/api/catalog`.
    pub uri: String,
    /// Warehouse (catalog) name on the server.
    #[serde(default)]
    pub warehouse: Option<String>,
    /// How floe-host authenticates. Without it, requests are anonymous.
    #[serde(default)]
    pub credentials: Option<CatalogCredentials>,
    /// OAuth2 token endpoint; defaults to the catalog's own `/v1/oauth/tokens`.
    #[serde(default)]
    pub oauth2_server_uri: Option<String>,
}

/// Catalog authentication.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum CatalogCredentials {
    /// OAuth2 client-credentials flow.
    Oauth2 {
        /// Client id: a plain string or `{secret_ref: …}`.
        client_id: ClientId,
        /// Client secret: `{secret_ref: …}` only.
        client_secret: SecretField,
        /// Requested scope, for example `PRINCIPAL_ROLE:ALL`.
        #[serde(default)]
        scope: Option<String>,
    },
    /// A static bearer token.
    Bearer {
        /// The token: `{secret_ref: …}` only.
        token: SecretField,
    },
}

/// A field that must hold a `secret_ref`, never a literal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct SecretField(pub SecretRef);

impl<'de> Deserialize<'de> for SecretField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor { literal_allowed: false }).map(|v| match v {
            ClientId::Secret(reference) => SecretField(reference),
            ClientId::Literal(_) => unreachable!("literals are rejected"),
        })
    }
}

/// A value that may be a plain string or a `secret_ref` (OAuth2 client ids are
/// not secret in every organisation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ClientId {
    Literal(String),
    Secret(SecretRef),
}

impl<'de> Deserialize<'de> for ClientId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor { literal_allowed: true })
    }
}

struct SecretVisitor {
    literal_allowed: bool,
}

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = ClientId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.literal_allowed { "a string or `{secret_ref: <name>}`" } else { "`{secret_ref: <name>}`" })
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ClientId, E> {
        if self.literal_allowed {
            Ok(ClientId::Literal(v.to_string()))
        } else {
            Err(E::custom(
                "a literal credential is not allowed here; put the value in a Kubernetes Secret \
                 or an environment variable and write `{secret_ref: <name>}`",
            ))
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<ClientId, A::Error> {
        SecretRef::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(ClientId::Secret)
    }
}

/// Object storage.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageProfile {
    /// The local filesystem (or a mounted volume).
    Local {
        /// Root folder of the warehouse.
        root: PathBuf,
        /// How long the snapshots of tables stored here are kept
        /// (`floe-host maintain`; a layer's `maintenance.retention` wins).
        #[serde(default)]
        retention: Option<HumanDuration>,
    },
    /// Amazon S3 or an S3-compatible service.
    S3 {
        /// Endpoint URL for S3-compatible services; AWS when absent.
        #[serde(default)]
        endpoint: Option<String>,
        /// Bucket name.
        bucket: String,
        /// Region, for example `eu-west-1`.
        #[serde(default)]
        region: Option<String>,
        /// Path-style requests (`endpoint/bucket/key`), which most
        /// S3-compatible services need.
        #[serde(default)]
        path_style_access: bool,
        /// Keys; ambient credentials (IAM role, instance profile) when absent.
        #[serde(default)]
        credentials: Option<StorageCredentials>,
        /// How long the snapshots of tables stored here are kept
        /// (`floe-host maintain`; a layer's `maintenance.retention` wins).
        #[serde(default)]
        retention: Option<HumanDuration>,
    },
}

impl StorageProfile {
    /// The profile's snapshot retention, floe-platform's `retention: 7 years`.
    pub fn retention(&self) -> Option<HumanDuration> {
        match self {
            StorageProfile::Local { retention, .. } | StorageProfile::S3 { retention, .. } => *retention,
        }
    }
}

/// S3 credentials.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageCredentials {
    /// Static keys from one Secret with the entries `access_key_id` and
    /// `secret_access_key` (env `<REF>_ACCESS_KEY_ID`/`<REF>_SECRET_ACCESS_KEY`,
    /// or files `<secrets-dir>/<ref>/access_key_id` and `…/secret_access_key`,
    /// which is how Kubernetes mounts such a Secret).
    Static { secret_ref: String },
    /// The environment's own credentials (IAM role, instance profile).
    Ambient,
}

/// Where a layer's tables live.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LayerProfile {
    /// Storage profile (a key of `storage`).
    pub storage_ref: String,
    /// Catalog profile (a key of `catalogs`).
    pub catalog_ref: String,
    /// Iceberg namespace of the layer's tables; defaults to the layer name.
    #[serde(default)]
    pub namespace: Option<Ident>,
    /// How `floe-host maintain` keeps the layer's tables (see `Maintenance`).
    #[serde(default)]
    pub maintenance: Maintenance,
}

/// How `floe-host maintain` keeps a layer's tables. Each key falls back to
/// the `retention` of the layer's storage profile (for `retention`), then to
/// the default.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// Snapshots older than this are expired, and the files only they
    /// reference deleted: `90 days`, `2 years`. Default: 7 days.
    #[serde(default)]
    pub retention: Option<HumanDuration>,
    /// The newest snapshots kept whatever their age. Default 1 (the
    /// current one, which is never expired).
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// Files in a table's folder that no snapshot references (a crashed
    /// write's) are deleted once they are older than this: a writer that is
    /// still running may yet commit younger ones. Default 3 days; at least 1h.
    #[serde(default)]
    pub orphan_age: Option<HumanDuration>,
    /// Maintain each of the layer's tables right after a run commits it
    /// (as `floe-host maintain --table` would). Default false.
    #[serde(default)]
    pub after_run: bool,
    /// Compaction rewrites a partition's small files into files of about
    /// this size. Default `512MiB` (Iceberg's `write.target-file-size-bytes`).
    #[serde(default)]
    pub target_file_size: Option<ByteSize>,
    /// Files smaller than this are small: a partition with 5 or more is
    /// compacted. Default 3/4 of `target_file_size`; `0` turns compaction off.
    #[serde(default)]
    pub small_file_size: Option<ByteSize>,
    /// A table's data manifests are merged (one per partition spec) when its
    /// current snapshot has more than this many. Default 100 (Iceberg's
    /// `commit.manifest.min-count-to-merge`).
    #[serde(default)]
    pub max_manifests: Option<u32>,
}

/// Traces and lineage.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Observability {
    /// Export OpenTelemetry traces.
    #[serde(default)]
    pub traces: bool,
    /// OTLP endpoint; the standard `OTEL_EXPORTER_OTLP_ENDPOINT` applies when absent.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// Send OpenLineage events.
    #[serde(default)]
    pub lineage: bool,
    /// OpenLineage HTTP endpoint, for example Marquez's `http://marquez:5000/api/v1/lineage`.
    #[serde(default)]
    pub lineage_endpoint: Option<String>,
}

/// Plugin sandbox limits. Each has a safe default.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    /// Memory cap per plugin instance: all its linear memories and tables
    /// together (default `1GiB`).
    #[serde(default)]
    pub memory_limit: Option<ByteSize>,
    /// Wall-clock deadline per plugin call (default `60s`).
    #[serde(default)]
    pub call_timeout: Option<HumanDuration>,
    /// Wall-clock budget of all the calls of one plugin run in a step: an
    /// ingest, a streaming transform, or the query a SQL-mode plugin returned
    /// (default `1h`).
    #[serde(default)]
    pub step_timeout: Option<HumanDuration>,
    /// Wall-clock budget of every plugin call of a run, counted from its
    /// start (default `6h`).
    #[serde(default)]
    pub run_timeout: Option<HumanDuration>,
    /// Largest output of one plugin call (default `256MiB`).
    #[serde(default)]
    pub max_output_bytes: Option<ByteSize>,
    /// Disk that the SQL a plugin returns (SQL mode) may spill to, in its
    /// own folder under the compute profile's `temp_directory`, removed when
    /// the query ends, however it ends (default `4GiB`; `0` never spills).
    /// DuckDB's own default is 90% of the free disk.
    #[serde(default)]
    pub spill_limit: Option<ByteSize>,
    /// Largest plugin component accepted (default `128MiB`).
    #[serde(default)]
    pub max_component_size: Option<ByteSize>,
    /// Memory the compiler may use for one plugin, in its own process
    /// (default `2GiB`).
    #[serde(default)]
    pub compile_memory_limit: Option<ByteSize>,
    /// Wall-clock limit for compiling one plugin (default `120s`).
    #[serde(default)]
    pub compile_timeout: Option<HumanDuration>,
    /// Plugin instances that parse one source at once, for ingest plugins
    /// that declare where their records end (the bundled `csv-ingest` does).
    /// They share `memory_limit` and `max_output_bytes`. Default: the cores
    /// the pod may use but one (the table writer's), at most 8; `1` parses
    /// every source in one piece.
    #[serde(default)]
    pub ingest_parallelism: Option<Instances>,
    /// Size that parallel ingest cuts a source into; a chunk ends at the first
    /// record end after it (default `8MiB`).
    #[serde(default)]
    pub ingest_chunk_size: Option<ByteSize>,
}

/// A number of plugin instances: 1 to 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Instances(#[schemars(range(min = 1, max = 64))] pub u32);

impl<'de> Deserialize<'de> for Instances {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(deserializer)?;
        if !(1..=64).contains(&n) {
            return Err(serde::de::Error::custom(format!("{n} instances: write a number from 1 to 64")));
        }
        Ok(Instances(n))
    }
}

impl PlatformFile {
    /// The zero-setup default: everything under `state_dir` (normally
    /// `<project>/.floe`): `catalog.db` (SQLite) and `warehouse/`.
    pub fn embedded_default(state_dir: &Path) -> Self {
        let warehouse = state_dir.join("warehouse");
        let mut platform = PlatformFile::default();
        platform.compute.insert(
            "default".into(),
            ComputeProfile::Duckdb { properties: DuckdbProperties::default(), concurrent_steps: None },
        );
        platform.catalogs.insert(
            "default".into(),
            CatalogProfile::Sql(SqlCatalog {
                uri: format!("sqlite:{}", state_dir.join("catalog.db").display()),
                warehouse: warehouse.display().to_string(),
            }),
        );
        platform.storage.insert("default".into(), StorageProfile::Local { root: warehouse, retention: None });
        platform
    }

    /// Makes relative paths in the file relative to the file's directory
    /// (`base`) instead of the working directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        let absolute = |path: &str| -> String {
            if path.contains("://") || Path::new(path).is_absolute() || path == ":memory:" {
                path.to_string()
            } else {
                base.join(path).display().to_string()
            }
        };
        for catalog in self.catalogs.values_mut() {
            if let CatalogProfile::Sql(sql) = catalog {
                if let Some(rest) = sql.uri.strip_prefix("sqlite:")
                    && !rest.starts_with("//")
                {
                    sql.uri = format!("sqlite:{}", absolute(rest));
                }
                sql.warehouse = absolute(&sql.warehouse);
            }
        }
        for storage in self.storage.values_mut() {
            if let StorageProfile::Local { root, .. } = storage
                && root.is_relative()
            {
                *root = base.join(&*root);
            }
        }
    }

    /// Every `secret_ref` in the file with its key path, in file order.
    pub fn secret_refs(&self) -> Vec<(String, SecretRef)> {
        let mut refs = Vec::new();
        for (name, catalog) in &self.catalogs {
            let (CatalogProfile::Rest(rest) | CatalogProfile::Polaris(rest)) = catalog else { continue };
            let base = format!("catalogs.{name}.credentials");
            match &rest.credentials {
                Some(CatalogCredentials::Oauth2 { client_id, client_secret, .. }) => {
                    if let ClientId::Secret(reference) = client_id {
                        refs.push((format!("{base}.client_id"), reference.clone()));
                    }
                    refs.push((format!("{base}.client_secret"), client_secret.0.clone()));
                }
                Some(CatalogCredentials::Bearer { token }) => refs.push((format!("{base}.token"), token.0.clone())),
                None => {}
            }
        }
        for (name, storage) in &self.storage {
            if let StorageProfile::S3 { credentials: Some(StorageCredentials::Static { secret_ref }), .. } = storage {
                for key in ["access_key_id", "secret_access_key"] {
                    refs.push((
                        format!("storage.{name}.credentials.secret_ref"),
                        SecretRef { secret_ref: format!("{secret_ref}/{key}") },
                    ));
                }
            }
        }
        refs
    }
}
