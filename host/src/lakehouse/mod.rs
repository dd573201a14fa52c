//! The lakehouse: Iceberg tables read, written and committed through their
//! catalog. All table I/O of a run goes through [`Lakehouse`].
//!
//! iceberg 0.10.1 has no overwrite action, so commits are produced here
//! (`commit`): data files from the crate's writers, then our own manifests,
//! manifest list, snapshot and metadata file, then an atomic compare-and-swap
//! of the table's metadata pointer in the catalog (`pointer`). Partitioned
//! tables (`partition`) are written per partition and can have single
//! partitions replaced (`replace`).

mod catalog;
mod commit;
mod partition;
mod pointer;
mod read;
mod replace;
mod rest;
mod schema;
mod storage;
mod write;

use std::collections::{BTreeMap, HashMap};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use tracing::Instrument;
use tracing::field::Empty;

pub use commit::CommitInfo;
pub use partition::Partitioning;

use crate::config::{PartitionField, WriteMode};
use crate::plan::{CatalogSpec, StorageSpec, TableRef};
use catalog::OpenCatalog;

/// Why a table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LakehouseError {
    #[error("catalog `{catalog}`: {message}: {source}")]
    Catalog {
        catalog: String,
        message: String,
        #[source]
        source: iceberg::Error,
    },
    #[error("table `{table}`: {message}: {source}")]
    Table {
        table: String,
        message: &'static str,
        #[source]
        source: iceberg::Error,
    },
    /// The object store failed (unreachable, timed out, refused).
    #[error("table `{table}`: {message}: {storage} failed: {source}")]
    Storage {
        table: String,
        message: &'static str,
        storage: String,
        #[source]
        source: iceberg::Error,
    },
    #[error("table `{table}` does not exist in catalog `{catalog}`")]
    NoSuchTable { catalog: String, table: String },
    #[error(
        "table `{table}` has columns ({existing}) but the step produces ({produced}); \
         floe-host does not evolve schemas yet: drop the table or write to a new one"
    )]
    SchemaMismatch { table: String, existing: String, produced: String },
    #[error("table `{table}`: {message}")]
    Unsupported { table: String, message: String },
    #[error("catalog `{catalog}`: {what} are not supported by this version of floe-host yet")]
    NotYetSupported { catalog: String, what: String },
    /// The catalog's credentials were refused: retrying will not help.
    #[error("catalog `{catalog}`: {message}")]
    Auth { catalog: String, message: String },
    #[error("table `{table}`: commit still conflicting after {attempts} attempts (another writer keeps committing)")]
    CommitConflict { table: String, attempts: u32 },
    #[error("table `{table}`: {message}")]
    Partition { table: String, message: String },
    #[error(
        "table `{table}` {existing}, but floe.yaml declares `partition_by: {declared}`; floe-host does not change \
         the partitioning of an existing table: declare the table's partitioning, or drop the table (or write to a \
         new one) to repartition it"
    )]
    PartitionSpecMismatch { table: String, existing: String, declared: String },
    #[error("table `{table}`: --partition `{value}` does not name a partition of `{field}`: {reason}")]
    PartitionValue { table: String, value: String, field: String, reason: String },
    #[error(
        "table `{table}`: the step produced {rows} rows outside partition `{partition}` (for example in \
         `{example}`), and a `partition_overwrite` step run with --partition writes only that partition: keep the \
         step's rows to it (floe-host reads only that partition of inputs partitioned on column `{column}`; \
         other inputs are read whole)"
    )]
    OutsidePartition { table: String, partition: String, rows: u64, example: String, column: String },
}

impl LakehouseError {
    /// Whether retrying the whole step may succeed (a transient catalog or
    /// storage failure), as iceberg's own errors say.
    pub fn is_retryable(&self) -> bool {
        match self {
            LakehouseError::Catalog { source, .. } | LakehouseError::Table { source, .. } => source.retryable(),
            LakehouseError::Storage { .. } => true,
            LakehouseError::CommitConflict { .. } => true,
            _ => false,
        }
    }
}

impl LakehouseError {
    /// Names the storage in a table error that is a failed file read or write.
    fn on_storage(self, catalog: &OpenCatalog) -> Self {
        match self {
            LakehouseError::Table { table, message, source } if storage::is_io_failure(&source) => {
                LakehouseError::Storage { table, message, storage: catalog.storage.clone(), source }
            }
            other => other,
        }
    }
}

/// Properties recorded in every snapshot summary this host commits.
#[derive(Clone, Debug)]
pub struct CommitTags {
    pub run_id: String,
    pub pipeline: String,
    pub step: String,
    /// The partition a `partition_overwrite` step replaces (`run --partition`).
    pub partition: Option<String>,
}

/// The catalogs of one run, opened once.
pub struct Lakehouse {
    catalogs: HashMap<String, OpenCatalog>,
}

impl Lakehouse {
    /// Opens every catalog the plan uses, each with the storage profile its
    /// tables live on (`used`: catalog and storage profile pairs), creating
    /// the embedded default's files on first use.
    pub async fn open(
        catalogs: &BTreeMap<String, CatalogSpec>,
        storage: &BTreeMap<String, StorageSpec>,
        used: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, LakehouseError> {
        let mut storage_of: BTreeMap<String, String> = BTreeMap::new();
        for (catalog, profile) in used {
            match storage_of.get(&catalog) {
                Some(existing) if *existing != profile => {
                    return Err(LakehouseError::NotYetSupported {
                        catalog: catalog.clone(),
                        what: format!(
                            "layers on one catalog with different storage profiles (`{existing}` and `{profile}`)"
                        ),
                    });
                }
                _ => {
                    storage_of.insert(catalog, profile);
                }
            }
        }
        let mut open = HashMap::new();
        for (name, profile) in storage_of {
            let spec = catalogs.get(&name).expect("the plan only uses defined catalogs");
            let storage = storage.get(&profile).expect("the plan only uses defined storage profiles");
            open.insert(name.clone(), OpenCatalog::open(&name, spec, storage).await?);
        }
        Ok(Lakehouse { catalogs: open })
    }

    fn catalog(&self, name: &str) -> &OpenCatalog {
        self.catalogs.get(name).expect("every catalog of the plan is opened")
    }

    /// The current snapshot id of a table, `None` if it has none or does not exist.
    pub async fn current_snapshot(&self, catalog: &str, table: &TableRef) -> Result<Option<i64>, LakehouseError> {
        let catalog = self.catalog(catalog);
        Ok(catalog.load_table(table).await?.and_then(|t| t.metadata().current_snapshot_id()))
    }

    /// Reads a table's current snapshot as Arrow.
    pub async fn read(&self, catalog: &str, table: &TableRef) -> Result<(SchemaRef, Vec<RecordBatch>), LakehouseError> {
        self.read_with_bytes(catalog, table).await.map(|(schema, batches, _)| (schema, batches))
    }

    /// `read`, also returning the size in bytes of the snapshot's data files
    /// (its summary's `total-files-size`; 0 for a table without snapshots or
    /// a summary without it).
    pub async fn read_with_bytes(
        &self,
        catalog: &str,
        table: &TableRef,
    ) -> Result<(SchemaRef, Vec<RecordBatch>, u64), LakehouseError> {
        self.read_input(catalog, table, None).await
    }

    /// `read_with_bytes` for a step that replaces one partition (`partition`:
    /// its field and the value): an input partitioned on the same column is
    /// scanned for that partition's rows only, which prunes its other data
    /// files, and the bytes are those of the files scanned. Other inputs are
    /// read whole.
    pub async fn read_input(
        &self,
        catalog: &str,
        table: &TableRef,
        partition: Option<(&PartitionField, &str)>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>, u64), LakehouseError> {
        // Traced as a `read` span (observe/traces.rs): table, snapshot id, rows, bytes.
        let span = tracing::info_span!(crate::observe::traces::READ, %catalog, %table,
            snapshot_id = Empty, rows = Empty, bytes = Empty, otel.status_code = Empty, otel.status_message = Empty);
        let result: Result<(SchemaRef, Vec<RecordBatch>, u64), LakehouseError> = async {
            let open = self.catalog(catalog);
            let loaded = open.load_table(table).await?.ok_or_else(|| LakehouseError::NoSuchTable {
                catalog: catalog.to_string(),
                table: table.to_string(),
            })?;
            if let Some(id) = loaded.metadata().current_snapshot_id() {
                tracing::Span::current().record("snapshot_id", id);
            }
            let filter = partition.and_then(|(field, value)| partition::input_filter(&loaded, field, value));
            if let Some(filter) = filter {
                tracing::info!(%table, %filter, "Reading only the partition's rows.");
                return read::scan_filtered(&loaded, table, filter).await;
            }
            let bytes = loaded
                .metadata()
                .current_snapshot()
                .and_then(|s| s.summary().additional_properties.get("total-files-size")?.parse().ok())
                .unwrap_or(0);
            let (schema, batches) = read::scan(&loaded, table).await?;
            Ok((schema, batches, bytes))
        }
        .instrument(span.clone())
        .await
        .map_err(|e: LakehouseError| e.on_storage(self.catalog(catalog)));
        match &result {
            Ok((_, batches, bytes)) => span
                .record("rows", batches.iter().map(|b| b.num_rows() as i64).sum::<i64>())
                .record("bytes", *bytes as i64),
            Err(error) => span.record("otel.status_code", "ERROR").record("otel.status_message", error.to_string()),
        };
        result
    }

    /// Writes `batches` to `table` (created on first write, at `location`
    /// if given, partitioned as `partitioning` declares) and commits one
    /// snapshot: the whole table replaced (`overwrite`), extended (`append`),
    /// or some partitions replaced (`partition_overwrite`: the one
    /// `partitioning.value` names, or else every partition the batches hold).
    #[allow(clippy::too_many_arguments)]
    pub async fn write(
        &self,
        catalog: &str,
        table: &TableRef,
        location: Option<&str>,
        schema: &SchemaRef,
        batches: Vec<RecordBatch>,
        mode: WriteMode,
        partitioning: Partitioning<'_>,
        tags: &CommitTags,
    ) -> Result<CommitInfo, LakehouseError> {
        // Traced as a `commit` span (data files and the snapshot): table,
        // mode, rows, files, bytes and the new snapshot id.
        let span = tracing::info_span!(crate::observe::traces::COMMIT, %catalog, %table, mode = ?mode,
            snapshot_id = Empty, rows = Empty, files = Empty, bytes = Empty,
            otel.status_code = Empty, otel.status_message = Empty);
        let result = async {
            let open = self.catalog(catalog);
            let loaded = open.load_or_create_table(table, schema, partitioning.fields, location).await?;
            let only = match (mode, partitioning.value) {
                (WriteMode::PartitionOverwrite, Some(value)) => {
                    Some(partition::partition_value(&loaded, table, value)?)
                }
                _ => None,
            };
            let data_files = write::data_files(&loaded, table, batches, tags, only.as_ref()).await?;
            let replaced = match mode {
                WriteMode::PartitionOverwrite => partition::replaced(only, &data_files),
                _ => Vec::new(),
            };
            commit::commit_with_retry(open, table, loaded, data_files, mode, &replaced, tags).await
        }
        .instrument(span.clone())
        .await
        .map_err(|e: LakehouseError| e.on_storage(self.catalog(catalog)));
        match &result {
            Ok(info) => span
                .record("snapshot_id", info.snapshot_id)
                .record("rows", info.rows as i64)
                .record("files", info.files as i64)
                .record("bytes", info.bytes as i64),
            Err(error) => span.record("otel.status_code", "ERROR").record("otel.status_message", error.to_string()),
        };
        result
    }
}
