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
mod history;
mod merge;
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

use crate::config::{PartitionField, SchemaEvolution, WriteMode};
use crate::plan::{CatalogSpec, StorageSpec, TableRef};
use catalog::OpenCatalog;
use commit::{Change, Removed};

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
    #[error("table `{table}` has columns ({existing}) but the step produces ({produced}); {advice}")]
    SchemaMismatch { table: String, existing: String, produced: String, advice: String },
    #[error(
        "table `{table}`: the step changes column types ({changes}); floe-host does not change the type of a \
         column, whatever `schema_evolution` says: cast in the step, or write to a new table"
    )]
    ColumnTypeChanged { table: String, changes: String },
    #[error("table `{table}`: merge key `{key}` is not a column of the step's output (its columns: {columns})")]
    MergeKeyNotInOutput { table: String, key: String, columns: String },
    #[error(
        "table `{table}`: merge key `{key}` is NULL on {rows} {} of the step's output; a merge needs a key on every row",
        plural(*rows, "row", "rows")
    )]
    MergeKeyNull { table: String, key: String, rows: usize },
    #[error(
        "table `{table}`: the step's output has {duplicated} merge {} ({keys}) on more than one row, for example \
         {example} on {times} rows; a merge needs at most one row per key",
        plural(*duplicated, "key", "keys")
    )]
    DuplicateMergeKeys { table: String, keys: String, duplicated: usize, example: String, times: u64 },
    #[error("table `{table}`: {message}")]
    Unsupported { table: String, message: String },
    #[error("catalog `{catalog}`: {what} are not supported by this version of floe-host yet")]
    NotYetSupported { catalog: String, what: String },
    /// The catalog refused the platform's settings (credentials, warehouse):
    /// retrying will not help.
    #[error("catalog `{catalog}`: {message}")]
    Refused { catalog: String, message: String },
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

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
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

/// How a step writes its table.
#[derive(Clone, Copy, Debug)]
pub struct WriteSpec<'a> {
    pub mode: WriteMode,
    /// For `merge`: the columns that identify a row.
    pub merge_keys: &'a [String],
    pub schema_evolution: SchemaEvolution,
    /// How the table is partitioned, and the partition this run replaces.
    pub partitioning: Partitioning<'a>,
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
            if let Some(filter) = &filter {
                tracing::info!(%table, %filter, "Reading only the partition's rows.");
            }
            read::scan(&loaded, table, filter).await
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

    /// The snapshot in which this run (`tags`) already committed its step to
    /// `table`, with what it wrote and the schema it wrote with; `None` if it
    /// has not (see `history`).
    pub async fn committed_step(
        &self,
        catalog: &str,
        table: &TableRef,
        tags: &CommitTags,
    ) -> Result<Option<(CommitInfo, SchemaRef)>, LakehouseError> {
        let Some(loaded) = self.catalog(catalog).load_table(table).await? else {
            return Ok(None);
        };
        let Some(snapshot) = history::committed_by(&loaded, tags) else {
            return Ok(None);
        };
        let schema = snapshot.schema(loaded.metadata()).and_then(|s| schema::arrow_schema(&s)).map_err(|source| {
            LakehouseError::Table {
                table: table.to_string(),
                message: "cannot read the schema of an earlier snapshot",
                source,
            }
        })?;
        Ok(Some((history::commit_info(snapshot), schema)))
    }

    /// Writes `batches` to `table` (created on first write, at `location`
    /// if given, partitioned as `spec.partitioning` declares) and commits one
    /// snapshot: the whole table replaced (`overwrite`), extended (`append`),
    /// upserted by key (`merge`), or some partitions replaced
    /// (`partition_overwrite`: the one `partitioning.value` names, or else
    /// every partition the batches hold), unless this run already committed
    /// the step (then the result says `already_committed`).
    #[allow(clippy::too_many_arguments)]
    pub async fn write(
        &self,
        catalog: &str,
        table: &TableRef,
        location: Option<&str>,
        schema: &SchemaRef,
        batches: Vec<RecordBatch>,
        spec: WriteSpec<'_>,
        tags: &CommitTags,
    ) -> Result<CommitInfo, LakehouseError> {
        // Traced as a `commit` span (data files and the snapshot): table,
        // mode, rows, files, bytes and the new snapshot id.
        let span = tracing::info_span!(crate::observe::traces::COMMIT, %catalog, %table, mode = spec.mode.as_str(),
            snapshot_id = Empty, rows = Empty, files = Empty, bytes = Empty,
            otel.status_code = Empty, otel.status_message = Empty);
        let result = async {
            let open = self.catalog(catalog);
            if spec.mode == WriteMode::Merge {
                merge::check_output(table, schema, &batches, spec.merge_keys)?;
            }
            let partitioning = spec.partitioning;
            let loaded = open.load_or_create_table(table, schema, partitioning.fields, location).await?;
            let only = match (spec.mode, partitioning.value) {
                (WriteMode::PartitionOverwrite, Some(value)) => {
                    Some(partition::partition_value(&loaded, table, value)?)
                }
                _ => None,
            };
            // Append, overwrite and partition-overwrite files hold the step's
            // output only, so they are reused on every attempt written with
            // the same schema.
            let mut written: Option<(schema::Target, Vec<iceberg::spec::DataFile>)> = None;
            let prepare = async |state: &iceberg::table::Table| -> Result<Change, LakehouseError> {
                let target = schema::target(state, table, schema, spec.schema_evolution)?;
                if !target.added.is_empty() {
                    tracing::info!(%table, columns = %target.added.join(", "),
                        "Adding the step's new columns to the table (schema_evolution: add_columns).");
                }
                if spec.mode == WriteMode::Merge {
                    let merged = merge::merge(state, table, &batches, spec.merge_keys).await?;
                    tracing::info!(%table, updated = merged.updated, inserted = merged.inserted,
                        rewritten = merged.rewritten, files_replaced = merged.replaced_files.len(),
                        "Merged the step's output into the table.");
                    let added = write::data_files(state, table, &target.schema, merged.batches, tags, None).await?;
                    let properties = vec![
                        ("floe.merge.updated-records".to_string(), merged.updated.to_string()),
                        ("floe.merge.inserted-records".to_string(), merged.inserted.to_string()),
                    ];
                    return Ok(Change { added, removed: Removed::Files(merged.replaced_files), target, properties });
                }
                let added = match &written {
                    Some((used, files)) if used.schema.as_struct() == target.schema.as_struct() => files.clone(),
                    _ => {
                        let files =
                            write::data_files(state, table, &target.schema, batches.clone(), tags, only.as_ref())
                                .await?;
                        written = Some((target.clone(), files.clone()));
                        files
                    }
                };
                let removed = match spec.mode {
                    WriteMode::Append => Removed::Nothing,
                    WriteMode::PartitionOverwrite => Removed::Partitions(partition::replaced(only.clone(), &added)),
                    WriteMode::Overwrite | WriteMode::Merge => Removed::Everything,
                };
                Ok(Change { added, removed, target, properties: Vec::new() })
            };
            commit::commit_with_retry(open, table, loaded, spec.mode, tags, prepare).await
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
