//! Table maintenance (`floe-host maintain`), per the table's policy:
//! expiring snapshots and deleting the files only they referenced,
//! compacting small files, merging manifests, and deleting orphans.
//!
//! - **Expiry.** Every snapshot older than the retention is expired, except
//!   the `keep_last` newest, the current one and any a ref names. One
//!   commit removes them from the metadata (`remove-snapshots`), on the
//!   condition that the table's current snapshot is still the one planned
//!   on; a concurrent commit makes it plan again. Only then are the files
//!   deleted that an expired snapshot referenced and no kept one does:
//!   manifest lists, manifests and data files. A concurrent writer builds on
//!   the current snapshot, which is kept, so nothing it uses is deleted.
//! - **Orphans** (local and S3 storage): files under the table's `data/` and
//!   `metadata/` folders that no kept snapshot references (Parquet data
//!   files, Avro manifests and manifest lists), and metadata JSON files that
//!   are neither current nor in the metadata log (Iceberg keeps the last
//!   `write.metadata.previous-versions-max`, 100 by default), older than the
//!   orphan age. A write still running has written files no snapshot or
//!   pointer references yet; the age (at least 1 hour) keeps them.
//!
//! - **Compaction** (`compact`) and **manifest merging** (`manifests`), each
//!   a `replace` commit that changes no row, come first. The snapshots before
//!   them keep the replaced files until the expiry finds them due.
//!
//! So the order is compaction, merging, expiry, orphans.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use iceberg::spec::{MAIN_BRANCH, SnapshotRef};
use iceberg::table::Table;
use iceberg::{ErrorKind, TableRequirement, TableUpdate};

use super::catalog::OpenCatalog;
use super::compact::{self, Compacted};
use super::{LakehouseError, manifests};
use crate::plan::{MaintenancePolicy, TableRef};

/// What maintenance did to one table (or would do, in a dry run).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Maintained {
    pub table: String,
    /// Nothing was changed: the figures are what `maintain` would do.
    pub dry_run: bool,
    /// Snapshots before, and the ids expired.
    pub snapshots: usize,
    pub expired: Vec<i64>,
    /// Files that only expired snapshots referenced, deleted, and their size.
    pub files_deleted: usize,
    pub bytes_deleted: u64,
    /// Orphan files deleted, and their size.
    pub orphans_deleted: usize,
    pub orphan_bytes: u64,
    /// Orphan files kept because they are younger than the orphan age.
    pub orphans_young: usize,
    /// Small files rewritten into larger ones.
    pub compaction: Compacted,
    /// The current snapshot's data manifests before and after merging.
    pub manifests_before: usize,
    pub manifests_after: usize,
}

/// The files snapshots reference, with their sizes where known. Manifests
/// are immutable and shared by many snapshots (an append carries its
/// parent's over), so each is read once per `maintain`, whatever the
/// number of snapshots that list it.
#[derive(Default)]
struct Reader {
    /// A manifest's path, its length, and the data files alive in it.
    manifests: HashMap<String, (u64, Vec<(String, u64)>)>,
}

impl Reader {
    async fn files(&mut self, table: &Table, snapshot: &SnapshotRef) -> iceberg::Result<BTreeMap<String, u64>> {
        let mut files = BTreeMap::new();
        files.insert(snapshot.manifest_list().to_string(), 0);
        let list = table.manifest_list_reader(snapshot).load().await?;
        for manifest_file in list.entries() {
            let path = &manifest_file.manifest_path;
            if !self.manifests.contains_key(path) {
                let manifest = manifest_file.load_manifest(table.file_io()).await?;
                let alive = manifest.entries().iter().filter(|e| e.is_alive());
                let data = alive.map(|e| (e.file_path().to_string(), e.data_file().file_size_in_bytes())).collect();
                self.manifests.insert(path.clone(), (manifest_file.manifest_length.max(0) as u64, data));
            }
            let (length, data) = &self.manifests[path];
            files.insert(path.clone(), *length);
            files.extend(data.iter().cloned());
        }
        Ok(files)
    }
}

/// The snapshots that a branch or a tag names (`main` among them). The
/// crate does not list a table's refs, so they are read from the metadata
/// as it serializes; expiring a snapshot would drop the refs to it.
fn named_snapshots(table: &Table) -> HashSet<i64> {
    let metadata = serde_json::to_value(table.metadata()).unwrap_or_default();
    let refs = metadata.get("refs").and_then(|r| r.as_object());
    let named = refs.into_iter().flatten().filter_map(|(_, r)| r.get("snapshot-id")?.as_i64());
    named.chain(table.metadata().current_snapshot_id()).collect()
}

/// Which snapshots the policy expires now: older than the retention, not
/// among the `keep_last` newest, not current and not named by a ref.
fn to_expire(table: &Table, policy: &MaintenancePolicy, now_ms: i64) -> Vec<i64> {
    let metadata = table.metadata();
    let mut snapshots: Vec<&SnapshotRef> = metadata.snapshots().collect();
    snapshots.sort_by_key(|s| std::cmp::Reverse((s.timestamp_ms(), s.sequence_number())));
    let cutoff = now_ms - policy.retention.as_millis().min(i64::MAX as u128) as i64;
    let named = named_snapshots(table);
    snapshots
        .iter()
        .skip(policy.keep_last as usize)
        .filter(|s| s.timestamp_ms() < cutoff && !named.contains(&s.snapshot_id()))
        .map(|s| s.snapshot_id())
        .collect()
}

/// Applies `policy` to `table`; with `dry_run`, changes nothing and reports
/// what it would do. `None` when the table does not exist.
pub(super) async fn maintain(
    catalog: &OpenCatalog,
    table_ref: &TableRef,
    policy: &MaintenancePolicy,
    dry_run: bool,
) -> Result<Option<Maintained>, LakehouseError> {
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    // Compaction and merging first: the snapshots they replace are then due
    // for expiry like any other.
    let compaction = compact::compact(catalog, table_ref, policy, dry_run).await?;
    let (manifests_before, manifests_after) = manifests::merge(catalog, table_ref, policy, dry_run).await?;
    let now = SystemTime::now();
    let now_ms = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
    let mut attempt = 0;
    let mut reader = Reader::default();
    let (table, report, doomed) = loop {
        let Some(table) = catalog.load_table(table_ref).await? else { return Ok(None) };
        let expired = to_expire(&table, policy, now_ms);
        let mut report = Maintained {
            table: table_ref.to_string(),
            dry_run,
            snapshots: table.metadata().snapshots().len(),
            expired: expired.clone(),
            compaction: compaction.clone(),
            manifests_before,
            manifests_after,
            ..Default::default()
        };
        if expired.is_empty() {
            break (table, report, BTreeMap::new());
        }
        // What the kept snapshots need, and what only the expired ones did.
        let mut kept = HashSet::new();
        let mut doomed = BTreeMap::new();
        for snapshot in table.metadata().snapshots() {
            let files = reader.files(&table, snapshot).await.map_err(error("cannot read its manifests"))?;
            if expired.contains(&snapshot.snapshot_id()) {
                doomed.extend(files);
            } else {
                kept.extend(files.into_keys());
            }
        }
        doomed.retain(|path, _| !kept.contains(path));
        report.files_deleted = doomed.len();
        report.bytes_deleted = doomed.values().sum();
        if dry_run {
            break (table, report, BTreeMap::new());
        }
        let requirements = match table.metadata().current_snapshot_id() {
            Some(id) => vec![TableRequirement::RefSnapshotIdMatch { r#ref: MAIN_BRANCH.into(), snapshot_id: Some(id) }],
            None => Vec::new(),
        };
        let updates = vec![TableUpdate::RemoveSnapshots { snapshot_ids: expired }];
        match catalog.commit(&table, requirements, updates).await {
            Ok(()) => break (table, report, doomed),
            // Another writer committed meanwhile: plan again on its state.
            Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts && attempt < 3 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Err(e) => return Err(error("cannot commit the expiry of its snapshots")(e)),
        }
    };
    // The expiry is committed: no snapshot references these any more.
    let mut left = Vec::new();
    for path in doomed.keys() {
        if let Err(e) = table.file_io().delete(path).await {
            left.push(format!("{path} ({e})"));
        }
    }
    if !left.is_empty() {
        tracing::warn!(table = %table_ref, files = left.len(),
            "Cannot delete some files of expired snapshots; orphan cleanup will find them: {}", left.join(", "));
    }
    drop(table);
    let mut report = report;
    // Orphans against the table as it is now: a commit since counts.
    if let Some(table) = catalog.load_table(table_ref).await? {
        orphans(catalog, &table, &mut reader, policy, dry_run, now, &mut report)
            .await
            .map_err(error("cannot look for orphan files"))?;
    }
    Ok(Some(report))
}

/// Deletes (or counts, in a dry run) the orphan files of a table: see the
/// module's documentation. Storage this build cannot list is skipped.
async fn orphans(
    catalog: &OpenCatalog,
    table: &Table,
    reader: &mut Reader,
    policy: &MaintenancePolicy,
    dry_run: bool,
    now: SystemTime,
    report: &mut Maintained,
) -> iceberg::Result<()> {
    let location = table.metadata().location().trim_end_matches('/');
    // In a dry run the snapshots to expire are still here: their files are
    // counted as theirs, not as orphans.
    let mut referenced = BTreeSet::new();
    for snapshot in table.metadata().snapshots() {
        referenced.extend(reader.files(table, snapshot).await?.into_keys().map(|p| strip_scheme(&p).to_string()));
    }
    // The metadata files a reader can still reach: the current one and the
    // log of previous ones (`write.metadata.previous-versions-max`, 100).
    let log = table.metadata().metadata_log().iter().map(|entry| entry.metadata_file.as_str());
    referenced.extend(table.metadata_location().into_iter().chain(log).map(|p| strip_scheme(p).to_string()));
    for folder in ["data", "metadata"] {
        let Some(files) = catalog.lister.list(&format!("{location}/{folder}")).await? else {
            tracing::debug!(table = %report.table, "Orphan files are not looked for on this storage.");
            return Ok(());
        };
        for file in files {
            // Anything not Iceberg's stays.
            let orphan_kind = [".parquet", ".avro", ".metadata.json", ".metadata.json.gz"]
                .iter()
                .any(|kind| file.path.ends_with(kind));
            if !orphan_kind || referenced.contains(strip_scheme(&file.path)) {
                continue;
            }
            let age = file.modified.and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
            if age < policy.orphan_age {
                report.orphans_young += 1;
                continue;
            }
            if !dry_run && let Err(e) = table.file_io().delete(&file.path).await {
                tracing::warn!(file = %file.path, error = %e, "Cannot delete an orphan file.");
                continue;
            }
            report.orphans_deleted += 1;
            report.orphan_bytes += file.size;
        }
    }
    Ok(())
}

fn strip_scheme(path: &str) -> &str {
    path.strip_prefix("file://").unwrap_or(path)
}
