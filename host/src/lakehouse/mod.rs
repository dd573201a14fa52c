//! The lakehouse: Iceberg tables read, written and committed through their
//! catalog. All table I/O of a run goes through [`Lakehouse`].
//!
//! iceberg 0.10.1 has no overwrite action, so commits are produced here
//! (`commit`): data files from the crate's writers, then our own manifests,
//! manifest list, snapshot and metadata file, then an atomic compare-and-swap
//! of the table's metadata pointer in the catalog (`pointer`).

mod catalog;
mod commit;
mod history;
mod merge;
mod pointer;
mod read;
mod schema;
mod write;

use std::collections::{BTreeMap, HashMap};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use tracing::Instrument;
use tracing::field::Empty;

pub use commit::CommitInfo;

use crate::config::{SchemaEvolution, WriteMode};
use crate::plan::{CatalogSpec, TableRef};
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
    #[error("catalog `{catalog}`: {what} are not supported by this version of floe-host yet; use a `sql` catalog")]
    NotYetSupported { catalog: String, what: String },
    #[error("table `{table}`: commit still conflicting after {attempts} attempts (another writer keeps committing)")]
    CommitConflict { table: String, attempts: u32 },
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
            LakehouseError::CommitConflict { .. } => true,
            _ => false,
        }
    }
}

/// Properties recorded in every snapshot summary this host commits.
#[derive(Clone, Debug)]
pub struct CommitTags {
    pub run_id: String,
    pub pipeline: String,
    pub step: String,
}

/// How a step writes its table.
#[derive(Clone, Copy, Debug)]
pub struct WriteSpec<'a> {
    pub mode: WriteMode,
    /// For `merge`: the columns that identify a row.
    pub merge_keys: &'a [String],
    pub schema_evolution: SchemaEvolution,
}

/// The catalogs of one run, opened once.
pub struct Lakehouse {
    catalogs: HashMap<String, OpenCatalog>,
}

impl Lakehouse {
    /// Opens every catalog the plan uses (creating the embedded default's
    /// files on first use).
    pub async fn open(
        catalogs: &BTreeMap<String, CatalogSpec>,
        used: impl IntoIterator<Item = String>,
    ) -> Result<Self, LakehouseError> {
        let mut open = HashMap::new();
        for name in used {
            if open.contains_key(&name) {
                continue;
            }
            let spec = catalogs.get(&name).expect("the plan only uses defined catalogs");
            open.insert(name.clone(), OpenCatalog::open(&name, spec).await?);
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
            let bytes = loaded
                .metadata()
                .current_snapshot()
                .and_then(|s| s.summary().additional_properties.get("total-files-size")?.parse().ok())
                .unwrap_or(0);
            let (schema, batches) = read::scan(&loaded, table).await?;
            Ok((schema, batches, bytes))
        }
        .instrument(span.clone())
        .await;
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

    /// Writes `batches` to `table` (created on first write) and commits one
    /// snapshot: the whole table replaced (`overwrite`), extended (`append`)
    /// or upserted by key (`merge`), unless this run already committed the
    /// step (then the result says `already_committed`).
    pub async fn write(
        &self,
        catalog: &str,
        table: &TableRef,
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
            let loaded = open.load_or_create_table(table, schema).await?;
            // Append and overwrite files hold the step's output only, so they
            // are reused on every attempt written with the same schema.
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
                    let added = write::data_files(state, table, &target.schema, merged.batches, tags).await?;
                    let properties = vec![
                        ("floe.merge.updated-records".to_string(), merged.updated.to_string()),
                        ("floe.merge.inserted-records".to_string(), merged.inserted.to_string()),
                    ];
                    return Ok(Change { added, removed: Removed::Files(merged.replaced_files), target, properties });
                }
                let added = match &written {
                    Some((used, files)) if used.schema.as_struct() == target.schema.as_struct() => files.clone(),
                    _ => {
                        let files = write::data_files(state, table, &target.schema, batches.clone(), tags).await?;
                        written = Some((target.clone(), files.clone()));
                        files
                    }
                };
                let removed = if spec.mode == WriteMode::Append { Removed::Nothing } else { Removed::Everything };
                Ok(Change { added, removed, target, properties: Vec::new() })
            };
            commit::commit_with_retry(open, table, loaded, spec.mode, tags, prepare).await
        }
        .instrument(span.clone())
        .await;
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
