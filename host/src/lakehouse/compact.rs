//! Compaction (`floe-host maintain`): the small data files of each partition
//! rewritten into files near the target size, in one `replace` snapshot that
//! changes no row.
//!
//! A partition is compacted when it has at least [`MIN_FILES`] live files
//! smaller than the policy's `small_file_size` (as Spark's
//! `rewrite_data_files` does with its `min-input-files`). The new files are
//! written with the current schema and partition spec (a file of an earlier
//! spec, which floe-host never makes but another engine may, is rewritten
//! into the current one, as Spark's rewrite does). A table with delete files
//! is left alone (floe-host writes none: another engine's deletes would have
//! to be applied and kept in step, which this does not do).
//!
//! The rewrite reads and writes as a stream, one partition at a time. The
//! commit removes exactly the files it read: if a concurrent writer removed
//! one of them meanwhile (an overwrite, a merge), committing would bring its
//! rows back, so the compaction gives up, deletes what it wrote and leaves
//! the table to the next `maintain`. Any other concurrent commit is retried
//! on the new state.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use iceberg::ErrorKind;
use iceberg::scan::FileScanTask;
use iceberg::spec::{DataFile, Struct};
use iceberg::table::Table;

use super::catalog::OpenCatalog;
use super::commit::{Change, Origin, Removed, commit_once};
use super::schema::Target;
use super::{LakehouseError, read, write};
use crate::plan::{MaintenancePolicy, TableRef};

/// A partition is compacted when it has at least this many small files.
pub const MIN_FILES: usize = 5;

/// What a compaction did (or would do, in a dry run).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Compacted {
    /// Partitions compacted.
    pub partitions: usize,
    /// Small files read and replaced, and their size.
    pub files_replaced: usize,
    pub bytes_replaced: u64,
    /// Files written in their place (not known in a dry run), and their size.
    pub files_written: usize,
    pub bytes_written: u64,
    /// Why the table was not compacted, when it qualified and was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The `replace` snapshot committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<i64>,
}

/// Compacts `table_ref` per `policy` (see the module's documentation).
pub(super) async fn compact(
    catalog: &OpenCatalog,
    table_ref: &TableRef,
    policy: &MaintenancePolicy,
    dry_run: bool,
) -> Result<Compacted, LakehouseError> {
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    let mut report = Compacted::default();
    let Some(mut table) = catalog.load_table(table_ref).await? else { return Ok(report) };
    if policy.small_file_size == 0 || table.metadata().current_snapshot().is_none() {
        return Ok(report);
    }
    let tasks = read::live_files(&table, table_ref).await?;
    if tasks.iter().any(|t| !t.deletes.is_empty()) {
        report.skipped = Some("the table has delete files, which compaction does not rewrite".into());
        return Ok(report);
    }
    let groups = small_files(tasks, policy);
    report.partitions = groups.len();
    for group in &groups {
        report.files_replaced += group.len();
        report.bytes_replaced += group.iter().map(|t| t.file_size_in_bytes).sum::<u64>();
    }
    if groups.is_empty() || dry_run {
        return Ok(report);
    }

    let schema = table.metadata().current_schema().clone();
    let replaced: HashSet<String> = groups.iter().flatten().map(|t| t.data_file_path.clone()).collect();
    let mut added: Vec<DataFile> = Vec::new();
    for bin in groups.into_iter().flat_map(|group| bins(group, policy.target_file_size)) {
        match rewrite(&table, table_ref, &schema, bin).await {
            Ok(files) => added.extend(files),
            Err(e) => {
                discard(&table, &added).await;
                return Err(e);
            }
        }
    }
    report.files_written = added.len();
    report.bytes_written = added.iter().map(|f| f.file_size_in_bytes()).sum();

    let mut attempt = 0;
    loop {
        // Compare what the table holds now with what was read.
        let live: HashSet<String> =
            read::live_files(&table, table_ref).await?.into_iter().map(|t| t.data_file_path).collect();
        let changed = if table.metadata().current_schema_id() != schema.schema_id() {
            Some("its schema changed while it was compacted")
        } else if !replaced.is_subset(&live) {
            Some("a concurrent commit replaced some of the files it compacted")
        } else {
            None
        };
        if let Some(reason) = changed {
            discard(&table, &added).await;
            tracing::info!(table = %table_ref, reason, "Not compacting: the next `maintain` will.");
            return Ok(Compacted { skipped: Some(reason.into()), files_written: 0, bytes_written: 0, ..report });
        }
        let change = Change {
            added: added.clone(),
            removed: Removed::Files(replaced.clone()),
            target: Target { schema: schema.clone(), added: Vec::new() },
            properties: Vec::new(),
            relist: false,
        };
        match commit_once(catalog, &table, change, Origin::Maintenance("compact")).await {
            Ok(info) => return Ok(Compacted { snapshot_id: Some(info.snapshot_id), ..report }),
            Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                table = match catalog.load_table(table_ref).await? {
                    Some(table) => table,
                    None => return Ok(Compacted { skipped: Some("the table was dropped".into()), ..report }),
                };
            }
            Err(e) => {
                discard(&table, &added).await;
                return Err(error("cannot commit the compaction")(e));
            }
        }
    }
}

/// The small files of each partition that has at least `MIN_FILES` of
/// them. (Scan tasks carry a file's partition values but not its spec:
/// values of two specs that happen to be equal share a group, which only
/// decides which files are read together; the writer splits rows by the
/// current spec whatever their group.)
fn small_files(tasks: Vec<FileScanTask>, policy: &MaintenancePolicy) -> Vec<Vec<FileScanTask>> {
    let mut by_partition: HashMap<Option<Struct>, Vec<FileScanTask>> = HashMap::new();
    let mut seen = HashSet::new();
    for task in tasks {
        // A file is scanned whole here, but a task per split would list it twice.
        if task.file_size_in_bytes < policy.small_file_size && seen.insert(task.data_file_path.clone()) {
            by_partition.entry(task.partition.clone()).or_default().push(task);
        }
    }
    let mut groups: Vec<Vec<FileScanTask>> = by_partition.into_values().filter(|g| g.len() >= MIN_FILES).collect();
    for group in &mut groups {
        group.sort_by(|a, b| a.data_file_path.cmp(&b.data_file_path));
    }
    groups.sort_by(|a, b| a[0].data_file_path.cmp(&b[0].data_file_path));
    groups
}

/// `group` (one partition's small files) split into the fewest bins of at
/// most about `target_size` bytes, evenly: each is written as one file, and
/// rewritten data takes about the room it took before (the same codec, on
/// larger pages). The writer's own rolling goes by its uncompressed
/// estimate, which makes files several times smaller than the target.
fn bins(group: Vec<FileScanTask>, target_size: u64) -> Vec<Vec<FileScanTask>> {
    let total: u64 = group.iter().map(|t| t.file_size_in_bytes).sum();
    let count = total.div_ceil(target_size.max(1)).max(1);
    let each = total.div_ceil(count);
    let mut bins: Vec<Vec<FileScanTask>> = vec![Vec::new()];
    let mut filled = 0;
    for task in group {
        if filled >= each && bins.len() < count as usize {
            bins.push(Vec::new());
            filled = 0;
        }
        filled += task.file_size_in_bytes;
        bins.last_mut().expect("one at least").push(task);
    }
    bins
}

/// Reads `bin`'s files and writes their rows as one new file, streaming.
async fn rewrite(
    table: &Table,
    table_ref: &TableRef,
    schema: &iceberg::spec::SchemaRef,
    bin: Vec<FileScanTask>,
) -> Result<Vec<DataFile>, LakehouseError> {
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    let tasks = Box::pin(futures::stream::iter(bin.into_iter().map(Ok)));
    let stream = table.reader_builder().build().read(tasks).map_err(error("cannot read data files"))?.stream();
    // The writer takes batches; a read error ends them and is reported after.
    let failed: Arc<Mutex<Option<iceberg::Error>>> = Arc::default();
    let slot = failed.clone();
    let batches = stream.scan((), move |_, batch| {
        futures::future::ready(match batch {
            Ok(batch) => Some(batch),
            Err(e) => {
                *slot.lock().expect("not poisoned") = Some(e);
                None
            }
        })
    });
    let written =
        write::data_files(table, table_ref, schema, Box::pin(batches), write::Layout::compaction(), None).await;
    let failure = failed.lock().expect("not poisoned").take();
    match (written, failure) {
        (Ok(files), None) => Ok(files),
        (Ok(files), Some(e)) => {
            discard(table, &files).await;
            Err(error("cannot read data files")(e))
        }
        (Err(e), _) => Err(e),
    }
}

/// Deletes files written for a compaction that will not be committed.
async fn discard(table: &Table, files: &[DataFile]) {
    for file in files {
        if let Err(e) = table.file_io().delete(file.file_path()).await {
            tracing::warn!(file = %file.file_path(), error = %e, "Cannot delete a file of an abandoned compaction; \
                orphan cleanup will.");
        }
    }
}
