//! The lakehouse: Iceberg tables read, written and committed through their
//! catalog. All table I/O of a run goes through [`Lakehouse`].
//!
//! iceberg 0.10.1 has no overwrite action, so commits are produced here
//! (`commit`): data files from the crate's writers, then our own manifests,
//! manifest list, snapshot and metadata file, then an atomic compare-and-swap
//! of the table's metadata pointer in the catalog (`pointer`). Partitioned
//! tables (`partition`) are written per partition and can have single
//! partitions replaced (`replace`).

mod adopt;
mod catalog;
mod commit;
mod compact;
mod fanout;
mod history;
mod listing;
mod maintain;
mod manifests;
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
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tracing::Instrument;
use tracing::field::Empty;

pub use adopt::{LocalFile, fits as duckdb_can_write};
pub use catalog::catalog_exists;
pub use commit::CommitInfo;
pub use fanout::batch_bytes;
pub use maintain::Maintained;
pub use partition::Partitioning;
pub use read::corrupt_local_file;
pub use read::{Input, Take};

use crate::config::{PartitionField, SchemaEvolution, WriteMode};
use crate::plan::{CatalogSpec, Step, StorageSpec, TableRef};
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
    /// Writing the step's data files failed (a full disk, a refused write):
    /// `files` names them (their folder and the write's unique prefix).
    #[error("table `{table}`: {message} {files}: {source}")]
    WriteFiles {
        table: String,
        message: &'static str,
        files: String,
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
    /// The step's output columns cannot become a table's (`check_names`).
    #[error("table `{table}`: the step's output cannot be stored: {message}; name the columns in the step")]
    OutputColumns { table: String, message: String },
    /// A file of the table cannot be read as what it should be: no retry
    /// fixes that (exit 4).
    #[error(
        "table `{table}`: {what} `{file}` is corrupt ({message}); no retry can fix it: restore the file, or roll \
         the table back to a snapshot that does not use it"
    )]
    Corrupt { table: String, what: &'static str, file: String, message: String },
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
    #[error(
        "table `{table}`: another writer changed the table's schema while this step wrote its data files; \
         run the step again"
    )]
    SchemaChangedMeanwhile { table: String },
    /// The data file DuckDB wrote for a SQL model cannot become the table's.
    #[error("table `{table}`: cannot take the data file that DuckDB wrote ({file}): {message}")]
    Adopt { table: String, file: String, message: String },
    #[error("table `{table}`: the data file writer stopped: {message}")]
    WriterStopped { table: String, message: String },
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
    #[error(
        "table `{table}`: the step's rows fall in no order over more partitions than the {open} it may write at \
         once, and it made {files} data files before floe-host stopped it (a table of that many small files is \
         slow for every reader): order the step's output by the partition columns (`ORDER BY` in a model), \
         partition the table more coarsely, or write one partition per run with --partition"
    )]
    ScatteredPartitions { table: String, files: usize, open: usize },
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
            LakehouseError::CommitConflict { .. } | LakehouseError::SchemaChangedMeanwhile { .. } => true,
            _ => false,
        }
    }
}

impl LakehouseError {
    /// Names the storage in a table error that is a failed file read or write.
    fn on_storage(self, catalog: &OpenCatalog) -> Self {
        self.on_storage_named(&catalog.storage)
    }

    /// `on_storage`, with the storage as messages name it.
    fn on_storage_named(self, storage: &str) -> Self {
        match self {
            LakehouseError::Table { table, message, source } if storage::is_io_failure(&source) => {
                LakehouseError::Storage { table, message, storage: storage.to_string(), source }
            }
            // An unreachable store, not one file, is what to report.
            LakehouseError::WriteFiles { table, message, source, .. } if storage::is_io_failure(&source) => {
                LakehouseError::Storage { table, message, storage: storage.to_string(), source }
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
    /// The run's partition (`run --partition`): the step it replaces in a
    /// `partition_overwrite` step, and part of the exactly-once key of every step.
    pub partition: Option<String>,
    /// The sequence number of each input's current snapshot when the step
    /// started, under its summary key (`floe.input.<catalog>.<table>`): an
    /// `overwrite` computed from older inputs than the table's current
    /// snapshot was is not committed over it (`history::superseded_by`).
    pub inputs: Vec<(String, i64)>,
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

    /// Whether the tables of `catalog` keep their files on local storage.
    pub fn local_storage(&self, catalog: &str) -> bool {
        matches!(self.catalog(catalog).lister, listing::Lister::Local)
    }

    fn catalog(&self, name: &str) -> &OpenCatalog {
        self.catalogs.get(name).expect("every catalog of the plan is opened")
    }

    /// The current snapshot id of a table, `None` if it has none or does not exist.
    pub async fn current_snapshot(&self, catalog: &str, table: &TableRef) -> Result<Option<i64>, LakehouseError> {
        let open = self.catalog(catalog);
        let loaded = open.load_table(table).await.map_err(|e| e.on_storage(open))?;
        Ok(loaded.and_then(|t| t.metadata().current_snapshot_id()))
    }

    /// The current columns of a table with data, as Arrow; `None` if it does
    /// not exist or has no snapshot yet.
    pub async fn current_schema(&self, catalog: &str, table: &TableRef) -> Result<Option<SchemaRef>, LakehouseError> {
        let open = self.catalog(catalog);
        let loaded = open.load_table(table).await.map_err(|e| e.on_storage(open))?;
        let Some(loaded) = loaded.filter(|t| t.metadata().current_snapshot_id().is_some()) else { return Ok(None) };
        let schema = schema::arrow_schema(loaded.metadata().current_schema()).map_err(|source| {
            LakehouseError::Table { table: table.to_string(), message: "its schema has types Arrow lacks", source }
        })?;
        Ok(Some(schema))
    }

    /// Reads a table's current snapshot as Arrow, in the table's order.
    pub async fn read(&self, catalog: &str, table: &TableRef) -> Result<(SchemaRef, Vec<RecordBatch>), LakehouseError> {
        let input = self.read_input(catalog, table, None, Take::InOrder).await?;
        let (schema, batches, _) = input.collect().await.map_err(|e| e.on_storage(self.catalog(catalog)))?;
        Ok((schema, batches))
    }

    /// Applies a maintenance policy to a table (see `maintain`); `None` when
    /// the table does not exist.
    pub async fn maintain(
        &self,
        catalog: &str,
        table: &TableRef,
        policy: &crate::plan::MaintenancePolicy,
        dry_run: bool,
    ) -> Result<Option<Maintained>, LakehouseError> {
        let open = self.catalog(catalog);
        maintain::maintain(open, table, policy, dry_run).await.map_err(|e| e.on_storage(open))
    }

    /// One column of a table's current snapshot, streamed; `None` when the
    /// table has no such column.
    pub async fn read_column(
        &self,
        catalog: &str,
        table: &TableRef,
        column: &str,
    ) -> Result<Option<BoxStream<'static, Result<RecordBatch, LakehouseError>>>, LakehouseError> {
        let open = self.catalog(catalog);
        let loaded = open
            .load_table(table)
            .await?
            .ok_or_else(|| LakehouseError::NoSuchTable { catalog: catalog.to_string(), table: table.to_string() })?;
        let storage = open.storage.clone();
        let stream = read::column(&loaded, table, column).await.map_err(|e| e.on_storage(open))?;
        Ok(stream.map(|batches| batches.map_err(move |e| e.on_storage_named(&storage)).boxed()))
    }

    /// Opens a step's input table for reading. For a step that replaces one
    /// partition (`partition`: its field and the value), an input partitioned
    /// on the same column is scanned for that partition's rows only, which
    /// prunes its other data files; other inputs are read whole. `take`
    /// says whether an input DuckDB can read itself comes back as its list
    /// of local Parquet files, and whether batches come in the table's order.
    pub async fn read_input(
        &self,
        catalog: &str,
        table: &TableRef,
        partition: Option<(&PartitionField, &str)>,
        take: Take,
    ) -> Result<Input, LakehouseError> {
        // Traced as a `read` span (observe/traces.rs): table, snapshot id,
        // rows (counted as the batches are pulled), bytes.
        let span = tracing::info_span!(crate::observe::traces::READ, %catalog, %table,
            snapshot_id = Empty, rows = Empty, bytes = Empty, otel.status_code = Empty, otel.status_description = Empty);
        let result: Result<Input, LakehouseError> = async {
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
            read::open(&loaded, table, filter, take).await
        }
        .instrument(span.clone())
        .await
        .map_err(|e: LakehouseError| e.on_storage(self.catalog(catalog)));
        match result {
            Ok(Input::Files { schema, paths, rows, bytes }) => {
                span.record("rows", rows as i64).record("bytes", bytes as i64);
                Ok(Input::Files { schema, paths, rows, bytes })
            }
            Ok(Input::Batches { schema, batches, bytes }) => {
                span.record("bytes", bytes as i64);
                let storage = self.catalog(catalog).storage.clone();
                let mut read = RowsRead { span, rows: 0 };
                let batches = batches
                    .inspect_ok(move |batch| read.add(batch.num_rows()))
                    .map_err(move |e| e.on_storage_named(&storage))
                    .boxed();
                Ok(Input::Batches { schema, batches, bytes })
            }
            Err(error) => {
                crate::observe::traces::fail(&span, &error);
                Err(error)
            }
        }
    }

    /// The rows a step would replace in `table`: all of them (the snapshot's
    /// `total-records`), or with `partition` those of that partition (from
    /// the data files' record counts, after partition pruning). `None` for a table that does not
    /// exist or has no snapshot yet.
    pub async fn current_rows(
        &self,
        catalog: &str,
        table: &TableRef,
        partition: Option<(&PartitionField, &str)>,
    ) -> Result<Option<u64>, LakehouseError> {
        let Some(loaded) = self.catalog(catalog).load_table(table).await? else { return Ok(None) };
        let Some(current) = loaded.metadata().current_snapshot() else { return Ok(None) };
        // The whole table: its snapshot summary says, with no manifest read.
        let total = current.summary().additional_properties.get("total-records").and_then(|v| v.parse().ok());
        if let (None, Some(total)) = (partition, total) {
            return Ok(Some(total));
        }
        let error =
            |source| LakehouseError::Table { table: table.to_string(), message: "cannot plan the scan", source };
        let mut builder = loaded.scan().select_all();
        if let Some(filter) = partition.and_then(|(field, value)| partition::input_filter(&loaded, field, value)) {
            builder = builder.with_filter(filter);
        }
        let tasks = read::plan_files(&builder.build().map_err(error)?, table).await?;
        Ok(Some(tasks.iter().filter_map(|t| t.record_count).sum()))
    }

    /// Plans a scan of the table's current snapshot as a reader would (the
    /// metadata loaded, the manifest list and every manifest read): the data
    /// files it lists. `None` when the table does not exist.
    pub async fn plan_scan(&self, catalog: &str, table: &TableRef) -> Result<Option<usize>, LakehouseError> {
        let Some(loaded) = self.catalog(catalog).load_table(table).await? else { return Ok(None) };
        Ok(Some(read::live_files(&loaded, table).await?.len()))
    }

    /// The sequence number of the current snapshot of each of the step's
    /// inputs (0 for one without snapshots), under its summary key; see
    /// [`CommitTags::inputs`].
    pub async fn input_versions(&self, step: &Step) -> Result<Vec<(String, i64)>, LakehouseError> {
        let mut versions = Vec::with_capacity(step.inputs.len());
        for input in &step.inputs {
            let Some(table) = self.catalog(&input.catalog).load_table(&input.table).await? else { continue };
            let sequence = table.metadata().current_snapshot().map_or(0, |s| s.sequence_number());
            versions.push((history::input_key(&input.catalog, &input.table), sequence));
        }
        Ok(versions)
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

    /// Begins a write of the step's output (`schema`) to `table`, created on
    /// first write (at `location` if given, partitioned as
    /// `spec.partitioning` declares): the data files are then written as the
    /// step produces its batches (`PendingWrite::write_files`) and committed
    /// once it is done (`commit_write`). Not for `merge`, which needs the
    /// whole output first (`write`).
    pub async fn begin_write(
        &self,
        catalog: &str,
        table: &TableRef,
        location: Option<&str>,
        schema: &SchemaRef,
        spec: WriteSpec<'_>,
    ) -> Result<PendingWrite, LakehouseError> {
        debug_assert!(spec.mode != WriteMode::Merge, "a merge is written by `write`");
        let open = self.catalog(catalog);
        async {
            let (loaded, staged) = open.load_or_stage_table(table, schema, spec.partitioning.fields, location).await?;
            let only = match (spec.mode, spec.partitioning.value) {
                (WriteMode::PartitionOverwrite, Some(value)) => {
                    Some(partition::partition_value(&loaded, table, value)?)
                }
                _ => None,
            };
            let target = schema::target(&loaded, table, schema, spec.schema_evolution)?;
            log_added_columns(table, &target);
            Ok(PendingWrite {
                catalog: catalog.to_string(),
                storage: open.storage.clone(),
                table_ref: table.clone(),
                table: loaded,
                staged,
                output: schema.clone(),
                target,
                only,
            })
        }
        .await
        .map_err(|e: LakehouseError| e.on_storage(open))
    }

    /// Commits the data files of a begun write as one snapshot: the whole
    /// table replaced (`overwrite`), extended (`append`), or some partitions
    /// replaced (`partition_overwrite`: the one `partitioning.value` names,
    /// or else every partition the files hold), unless this run already
    /// committed the step (then the result says `already_committed`).
    pub async fn commit_write(
        &self,
        pending: PendingWrite,
        files: WrittenFiles,
        spec: WriteSpec<'_>,
        tags: &CommitTags,
    ) -> Result<CommitInfo, LakehouseError> {
        let PendingWrite { catalog, table_ref, table: loaded, staged, output, target: written, only, .. } = pending;
        let open = self.catalog(&catalog);
        let table = &table_ref;
        self.traced_commit(&catalog, table, spec.mode, async {
            // A staged table is created by its first commit, with its first
            // snapshot (`OpenCatalog::commit`); its namespace must exist first.
            // If another writer creates the table meanwhile, the commit
            // conflicts and the retry builds on theirs.
            if staged {
                open.ensure_namespace(table).await?;
            }
            let prepare = async |state: &iceberg::table::Table| -> Result<Change, LakehouseError> {
                let target = schema::target(state, table, &output, spec.schema_evolution)?;
                if target.schema.as_struct() != written.schema.as_struct() {
                    return Err(LakehouseError::SchemaChangedMeanwhile { table: table.to_string() });
                }
                let removed = match spec.mode {
                    WriteMode::Append => Removed::Nothing,
                    WriteMode::PartitionOverwrite => Removed::Partitions(partition::replaced(only.clone(), &files.0)),
                    WriteMode::Overwrite | WriteMode::Merge => Removed::Everything,
                };
                Ok(Change { added: files.0.clone(), removed, target, properties: Vec::new(), relist: false })
            };
            commit::commit_with_retry(open, table, loaded, spec.mode, tags, prepare).await
        })
        .await
    }

    /// Writes `batches` to `table` and commits one snapshot, as
    /// `begin_write` and `commit_write` do, or upserts them by key
    /// (`merge`: the files holding a matched key are rewritten).
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
        if spec.mode != WriteMode::Merge {
            let pending = self.begin_write(catalog, table, location, schema, spec).await?;
            let files = pending.write_files(futures::stream::iter(batches), tags).await?;
            return self.commit_write(pending, files, spec, tags).await;
        }
        let open = self.catalog(catalog);
        self.traced_commit(catalog, table, spec.mode, async {
            merge::check_output(table, schema, &batches, spec.merge_keys)?;
            let loaded = open.load_or_create_table(table, schema, spec.partitioning.fields, location).await?;
            // The merge depends on the table's rows, so every attempt merges again.
            let prepare = async |state: &iceberg::table::Table| -> Result<Change, LakehouseError> {
                let target = schema::target(state, table, schema, spec.schema_evolution)?;
                log_added_columns(table, &target);
                let merged = merge::merge(state, table, &batches, spec.merge_keys).await?;
                tracing::info!(%table, updated = merged.updated, inserted = merged.inserted,
                    rewritten = merged.rewritten, files_replaced = merged.replaced_files.len(),
                    "Merged the step's output into the table.");
                let rows = futures::stream::iter(merged.batches);
                let added =
                    write::data_files(state, table, &target.schema, rows, write::Layout::step(tags), None).await?;
                let properties = vec![
                    ("floe.merge.updated-records".to_string(), merged.updated.to_string()),
                    ("floe.merge.inserted-records".to_string(), merged.inserted.to_string()),
                ];
                Ok(Change { added, removed: Removed::Files(merged.replaced_files), target, properties, relist: false })
            };
            commit::commit_with_retry(open, table, loaded, spec.mode, tags, prepare).await
        })
        .await
    }

    /// Runs `commit` inside a `commit` span (observe/traces.rs: table, mode,
    /// rows, files, bytes and the new snapshot id), names the storage in a
    /// failed file read or write, and records the outcome on the span.
    async fn traced_commit(
        &self,
        catalog: &str,
        table: &TableRef,
        mode: WriteMode,
        commit: impl Future<Output = Result<CommitInfo, LakehouseError>>,
    ) -> Result<CommitInfo, LakehouseError> {
        let span = tracing::info_span!(crate::observe::traces::COMMIT, %catalog, %table, mode = mode.as_str(),
            snapshot_id = Empty, rows = Empty, files = Empty, bytes = Empty,
            otel.status_code = Empty, otel.status_description = Empty);
        let result = commit.instrument(span.clone()).await.map_err(|e| e.on_storage(self.catalog(catalog)));
        match &result {
            Ok(info) => span
                .record("snapshot_id", info.snapshot_id)
                .record("rows", info.rows as i64)
                .record("files", info.files as i64)
                .record("bytes", info.bytes as i64),
            Err(error) => crate::observe::traces::fail(&span, &error),
        };
        result
    }
}

/// Logs the columns a schema evolution (`add_columns`) adds to the table.
fn log_added_columns(table: &TableRef, target: &schema::Target) {
    if !target.added.is_empty() {
        tracing::info!(%table, columns = %target.added.join(", "),
            "Adding the step's new columns to the table (schema_evolution: add_columns).");
    }
}

/// Counts the rows of a streamed input, and records them on its `read` span
/// once the stream is dropped (read through, or abandoned): a span field is
/// recorded once, since exporters keep every value recorded.
struct RowsRead {
    span: tracing::Span,
    rows: i64,
}

impl RowsRead {
    fn add(&mut self, rows: usize) {
        self.rows += rows as i64;
    }
}

impl Drop for RowsRead {
    fn drop(&mut self) {
        self.span.record("rows", self.rows);
    }
}

/// A write begun on a table (`Lakehouse::begin_write`), not committed yet.
pub struct PendingWrite {
    catalog: String,
    /// The storage, as messages name it.
    storage: String,
    table_ref: TableRef,
    /// The table's state when the write began.
    table: iceberg::table::Table,
    /// The table does not exist yet: the commit creates it.
    staged: bool,
    /// The step's output schema.
    output: SchemaRef,
    /// The schema the data files are written with.
    target: schema::Target,
    /// The partition a `partition_overwrite` with `--partition` replaces.
    only: Option<iceberg::spec::Struct>,
}

/// Data files written for a pending write, not referenced by any snapshot yet.
pub struct WrittenFiles(Vec<iceberg::spec::DataFile>);

impl PendingWrite {
    /// Writes `batches` as data files of the table as they arrive. The future
    /// owns what it needs, so it can run as a task of its own while the step
    /// still computes.
    pub fn write_files(
        &self,
        batches: impl futures::Stream<Item = RecordBatch> + Unpin + Send + 'static,
        tags: &CommitTags,
    ) -> impl Future<Output = Result<WrittenFiles, LakehouseError>> + Send + 'static {
        let (table, table_ref, schema) = (self.table.clone(), self.table_ref.clone(), self.target.schema.clone());
        let (tags, only, storage) = (tags.clone(), self.only.clone(), self.storage.clone());
        async move {
            write::data_files(&table, &table_ref, &schema, batches, write::Layout::step(&tags), only.as_ref())
                .await
                .map(WrittenFiles)
                .map_err(|e| e.on_storage_named(&storage))
        }
    }

    /// Deletes the data files of a write that will not be committed: its step
    /// failed before the commit, so no snapshot can reference them. Best
    /// effort: a file that cannot be deleted is logged and left as an orphan.
    pub async fn discard(self, files: WrittenFiles) {
        let io = self.table.file_io();
        let mut left = Vec::new();
        for file in &files.0 {
            if let Err(error) = io.delete(file.file_path()).await {
                left.push(format!("{} ({error})", file.file_path()));
            }
        }
        let table = &self.table_ref;
        match left.len() {
            0 => tracing::debug!(%table, files = files.0.len(), "Deleted the data files of the failed step."),
            n => tracing::warn!(%table, files = n, "Cannot delete some data files of the failed step; they stay \
                as orphans: {}", left.join(", ")),
        }
    }
}
