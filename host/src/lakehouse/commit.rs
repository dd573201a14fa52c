//! Producing and committing a snapshot, per the Iceberg spec, on the crate's
//! public building blocks (manifest and manifest-list writers, the metadata
//! builder) because iceberg 0.10.1 has no overwrite action.
//!
//! - `append`: the new manifest plus every manifest of the current snapshot.
//! - `overwrite`: the new manifest plus one that marks every live file of the
//!   current snapshot DELETED, so readers and incremental consumers see the
//!   replacement as one `overwrite` snapshot.
//! - `merge`: an `overwrite` snapshot that marks DELETED only the files the
//!   merge rewrote; the manifests holding them are rewritten with their other
//!   files as EXISTING, and the other manifests are carried over (`replace`).
//! - `partition_overwrite`: likewise, with every live file of the replaced
//!   partitions marked DELETED, as one `overwrite` snapshot.
//!
//! A schema evolution (`add_columns`) adds the new schema and makes it current
//! in the same commit.
//!
//! The commit is a compare-and-swap of the metadata pointer. If another writer
//! won the race, the change is prepared again on the new state and retried
//! with backoff, up to `commit.retry.num-retries`: append and overwrite reuse
//! their data files (unless the schema to write with changed), a merge is
//! computed again. Before each attempt the table's history is searched for
//! this run's commit of the step (`history`): if a twin attempt made it, the
//! step is not committed again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use iceberg::spec::{
    DataFile, FormatVersion, MAIN_BRANCH, ManifestContentType, ManifestListWriter, ManifestWriterBuilder, Operation,
    Snapshot, SnapshotReference, SnapshotRetention, SnapshotSummaryCollector, Struct, Summary,
};
use iceberg::table::Table;
use iceberg::{ErrorKind, TableRequirement, TableUpdate};

use super::catalog::OpenCatalog;
use super::schema::Target;
use super::{CommitTags, LakehouseError, history, manifests, replace};
use crate::config::WriteMode;
use crate::plan::TableRef;

/// What a commit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    pub snapshot_id: i64,
    pub rows: u64,
    pub files: usize,
    pub bytes: u64,
    /// The run had already committed this step (an earlier attempt with the
    /// same run id, or a twin that won the race): nothing was committed now,
    /// and the figures are those of that snapshot.
    pub already_committed: bool,
    /// Not committed because the table's current snapshot was computed from
    /// newer inputs (`history::superseded_by`); the figures are that
    /// snapshot's, and `already_committed` is set too: nothing was written.
    pub superseded: bool,
}

/// What one snapshot changes, prepared on one table state.
pub(super) struct Change {
    /// Data files to add, written with `target.schema`.
    pub added: Vec<DataFile>,
    /// The live files of the current snapshot that the snapshot removes.
    pub removed: Removed,
    /// The schema the files were written with; a new one is added and made current.
    pub target: Target,
    /// Extra snapshot summary properties.
    pub properties: Vec<(String, String)>,
    /// With `Removed::Nothing`: the parent's data manifests merged into few
    /// (`manifests::merged`), instead of carried over as they are.
    pub relist: bool,
}

/// Which live files of the current snapshot a commit removes.
pub(super) enum Removed {
    Nothing,
    Everything,
    /// The data files with these paths.
    Files(HashSet<String>),
    /// Every data file of these partitions (of the current spec).
    Partitions(Vec<Struct>),
}

// Iceberg's Java default is 4. floe-host runs one process per partition, and
// N processes that start together need up to N - 1 retries to all land.
const DEFAULT_RETRIES: u32 = 10;
const DEFAULT_MIN_WAIT_MS: u64 = 100;
const DEFAULT_MAX_WAIT_MS: u64 = 60_000;

/// Commits the change `prepare` makes on the table's current state, preparing
/// it again on the new state after each conflict.
pub(super) async fn commit_with_retry(
    catalog: &OpenCatalog,
    table_ref: &TableRef,
    mut table: Table,
    mode: WriteMode,
    tags: &CommitTags,
    mut prepare: impl AsyncFnMut(&Table) -> Result<Change, LakehouseError>,
) -> Result<CommitInfo, LakehouseError> {
    let properties = table.metadata().properties();
    let retries = property(properties, "commit.retry.num-retries", DEFAULT_RETRIES as u64) as u32;
    let mut wait = property(properties, "commit.retry.min-wait-ms", DEFAULT_MIN_WAIT_MS);
    let max_wait = property(properties, "commit.retry.max-wait-ms", DEFAULT_MAX_WAIT_MS);
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    // The data files carry partition values of this spec.
    let spec_id = table.metadata().default_partition_spec_id();
    let mut attempt = 0;
    loop {
        // A twin attempt of this run (a double start, or a retry racing a
        // slow first attempt) may have committed the step meanwhile.
        if let Some(snapshot) = history::committed_by(&table, tags) {
            tracing::info!(table = %table_ref, step = %tags.step, run_id = %tags.run_id,
                snapshot_id = snapshot.snapshot_id(),
                "Not committing: another attempt of this run committed the step meanwhile.");
            return Ok(history::commit_info(snapshot));
        }
        if mode == WriteMode::Overwrite
            && let Some(snapshot) = history::superseded_by(&table, tags)
        {
            tracing::info!(table = %table_ref, step = %tags.step, snapshot_id = snapshot.snapshot_id(),
                "Not committing: the table's current snapshot was computed from newer inputs than this step read.");
            return Ok(CommitInfo { superseded: true, ..history::commit_info(snapshot) });
        }
        let change = prepare(&table).await?;
        match commit_once(catalog, &table, change, Origin::Step { mode, tags }).await {
            Ok(info) => return Ok(info),
            Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts && attempt < retries => {
                attempt += 1;
                tracing::info!(table = %table_ref, attempt, "Commit conflicted with another writer; retrying on the new table state.");
                tokio::time::sleep(jittered(wait)).await;
                wait = (wait * 2).min(max_wait);
                table = catalog
                    .load(&OpenCatalog::ident(table_ref))
                    .await
                    .map_err(error("cannot reload the table after a commit conflict"))?;
                if table.metadata().default_partition_spec_id() != spec_id {
                    return Err(LakehouseError::Partition {
                        table: table_ref.to_string(),
                        message: "another writer changed the table's partitioning while this step wrote; run again"
                            .into(),
                    });
                }
            }
            Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts => {
                return Err(LakehouseError::CommitConflict { table: table_ref.to_string(), attempts: attempt + 1 });
            }
            Err(e) => return Err(error("commit failed")(e)),
        }
    }
}

/// `wait` ± 50%: writers that conflicted together must not retry together.
fn jittered(wait_ms: u64) -> Duration {
    let random = uuid::Uuid::new_v4().as_u64_pair().0;
    Duration::from_millis(wait_ms / 2 + random % (wait_ms + 1))
}

fn property(properties: &HashMap<String, String>, key: &str, default: u64) -> u64 {
    properties.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Who commits a snapshot, which its operation and summary say.
pub(super) enum Origin<'a> {
    /// A step of a run, with its write mode and tags.
    Step { mode: WriteMode, tags: &'a CommitTags },
    /// `floe-host maintain` (`compact`, `rewrite-manifests`): a `replace`
    /// snapshot that changes no row. It carries over the parent's record of
    /// the inputs it was computed from (`history::superseded_by`).
    Maintenance(&'static str),
}

/// Commits `change` on `table`'s current state, once; a conflict is the
/// caller's to retry.
pub(super) async fn commit_once(
    catalog: &OpenCatalog,
    table: &Table,
    change: Change,
    origin: Origin<'_>,
) -> iceberg::Result<CommitInfo> {
    let metadata = table.metadata();
    if metadata.format_version() != FormatVersion::V2 {
        return Err(iceberg::Error::new(
            ErrorKind::FeatureUnsupported,
            format!("floe-host writes Iceberg format v2 tables; this table is {}", metadata.format_version()),
        ));
    }
    let Change { added, removed, target, properties: extra_properties, relist } = change;
    let file_io = table.file_io();
    let schema = target.schema.clone();
    let evolves = !target.added.is_empty();
    let spec = metadata.default_partition_spec().clone();
    let snapshot_id = unique_snapshot_id(table);
    let commit_uuid = uuid::Uuid::new_v4();
    let sequence_number = metadata.next_sequence_number();
    let parent = metadata.current_snapshot();
    let meta_dir = format!("{}/metadata", metadata.location());

    let mut summary = SnapshotSummaryCollector::default();
    let mut extra = extra_properties;
    let mut manifests = Vec::new();
    let info = CommitInfo {
        snapshot_id,
        rows: added.iter().map(|f| f.record_count()).sum(),
        files: added.len(),
        bytes: added.iter().map(|f| f.file_size_in_bytes()).sum(),
        already_committed: false,
        superseded: false,
    };

    if !added.is_empty() {
        let output = file_io.new_output(format!("{meta_dir}/{commit_uuid}-m0.avro"))?;
        let mut writer = ManifestWriterBuilder::new(output, Some(snapshot_id), schema.clone(), spec.as_ref().clone())
            .build_v2_data();
        for file in added {
            summary.add_file(&file, schema.clone(), spec.clone());
            writer.add_file(file, sequence_number)?;
        }
        manifests.push(writer.write_manifest_file().await?);
    }

    let mut previous_totals = Totals::default();
    if let Some(parent) = parent {
        let list = table.manifest_list_reader(parent).load().await?;
        match &removed {
            Removed::Nothing => {
                previous_totals = Totals::from_summary(parent.summary());
                if relist {
                    let path = |n: usize| format!("{meta_dir}/{commit_uuid}-g{n}.avro");
                    let merged = manifests::merged(table, list.consume_entries(), &schema, snapshot_id, path).await?;
                    extra.extend(merged.summary());
                    manifests.extend(merged.manifests);
                } else {
                    manifests.extend(list.consume_entries());
                }
            }
            Removed::Everything => {
                let output = file_io.new_output(format!("{meta_dir}/{commit_uuid}-m1.avro"))?;
                let mut writer =
                    ManifestWriterBuilder::new(output, Some(snapshot_id), schema.clone(), spec.as_ref().clone())
                        .build_v2_data();
                let mut deleted = 0usize;
                for manifest_file in list.consume_entries() {
                    // An overwrite drops delete files with the data they apply to.
                    if manifest_file.content == ManifestContentType::Deletes {
                        continue;
                    }
                    let manifest = manifest_file.load_manifest(file_io).await?;
                    for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                        let data_sequence = entry.sequence_number().unwrap_or(manifest_file.sequence_number);
                        let file_sequence = entry.file_sequence_number.or(Some(manifest_file.sequence_number));
                        summary.remove_file(entry.data_file(), schema.clone(), spec.clone());
                        writer.add_delete_file(entry.data_file().clone(), data_sequence, file_sequence)?;
                        deleted += 1;
                    }
                }
                if deleted > 0 {
                    manifests.push(writer.write_manifest_file().await?);
                }
            }
            Removed::Files(_) | Removed::Partitions(_) => {
                previous_totals = Totals::from_summary(parent.summary());
                let removes = |file: &DataFile| match &removed {
                    Removed::Files(paths) => paths.contains(file.file_path()),
                    Removed::Partitions(partitions) => partitions.contains(file.partition()),
                    _ => unreachable!("handled above"),
                };
                let by_partition = matches!(removed, Removed::Partitions(_));
                let path = |n: usize| format!("{meta_dir}/{commit_uuid}-r{n}.avro");
                let parent_manifests: Vec<_> = list.consume_entries().into_iter().collect();
                let kept = replace::without(table, parent_manifests, &schema, removes, by_partition, snapshot_id, path)
                    .await?;
                for file in &kept.removed {
                    summary.remove_file(file, schema.clone(), spec.clone());
                    previous_totals.remove(file);
                }
                manifests.extend(kept.manifests);
            }
        }
    }

    let list_path = format!("{meta_dir}/snap-{snapshot_id}-0-{commit_uuid}.avro");
    let mut list_writer = ManifestListWriter::v2(
        file_io.new_output(&list_path)?.writer().await?,
        snapshot_id,
        metadata.current_snapshot_id(),
        sequence_number,
    );
    list_writer.add_manifests(manifests.into_iter())?;
    list_writer.close().await?;

    let mut properties: HashMap<String, String> = summary.build();
    previous_totals.add_to(&mut properties, &info);
    let operation = match origin {
        Origin::Step { mode, tags } => {
            properties.insert("floe.run-id".into(), tags.run_id.clone());
            properties.insert("floe.pipeline".into(), tags.pipeline.clone());
            properties.insert("floe.step".into(), tags.step.clone());
            properties.insert("floe.mode".into(), mode.as_str().to_string());
            if matches!(removed, Removed::Partitions(_)) {
                // As Iceberg's ReplacePartitions marks its snapshots.
                properties.insert("replace-partitions".into(), "true".into());
            }
            if let Some(partition) = &tags.partition {
                properties.insert("floe.partition".into(), partition.clone());
            }
            for (key, sequence) in &tags.inputs {
                properties.insert(key.clone(), sequence.to_string());
            }
            match &removed {
                Removed::Nothing if mode == WriteMode::Append => Operation::Append,
                _ => Operation::Overwrite,
            }
        }
        Origin::Maintenance(action) => {
            properties.insert("floe.maintenance".into(), action.into());
            let inputs = parent.map(|p| &p.summary().additional_properties).into_iter().flatten();
            properties.extend(
                inputs.filter(|(key, _)| key.starts_with(history::INPUT_PREFIX)).map(|(k, v)| (k.clone(), v.clone())),
            );
            Operation::Replace
        }
    };
    properties.extend(extra);

    let snapshot = Snapshot::builder()
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(metadata.current_snapshot_id())
        .with_sequence_number(sequence_number)
        .with_timestamp_ms(chrono_now_ms())
        .with_manifest_list(list_path)
        .with_summary(Summary { operation, additional_properties: properties })
        .with_schema_id(schema.schema_id())
        .build();

    // The commit as the Iceberg REST protocol states it: the snapshot and the
    // branch move, on condition that `main` still points at our parent and
    // the schema is still the one the data files were written against.
    let mut requirements = vec![
        TableRequirement::UuidMatch { uuid: metadata.uuid() },
        TableRequirement::RefSnapshotIdMatch {
            r#ref: MAIN_BRANCH.to_string(),
            snapshot_id: metadata.current_snapshot_id(),
        },
        TableRequirement::CurrentSchemaIdMatch { current_schema_id: metadata.current_schema_id() },
    ];
    let mut updates = Vec::new();
    if evolves {
        // The new columns' ids follow the table's last assigned one.
        requirements
            .push(TableRequirement::LastAssignedFieldIdMatch { last_assigned_field_id: metadata.last_column_id() });
        updates.push(TableUpdate::AddSchema { schema: schema.as_ref().clone() });
        updates.push(TableUpdate::SetCurrentSchema { schema_id: schema.schema_id() });
    }
    updates.push(TableUpdate::AddSnapshot { snapshot });
    updates.push(TableUpdate::SetSnapshotRef {
        ref_name: MAIN_BRANCH.to_string(),
        reference: SnapshotReference::new(snapshot_id, SnapshotRetention::branch(None, None, None)),
    });
    catalog.commit(table, requirements, updates).await?;
    Ok(info)
}

/// The `total-*` summary fields: carried over from the parent on append and
/// merge (less the files a merge removes), restarted on overwrite (which
/// removes every file, delete files included).
#[derive(Default)]
struct Totals(HashMap<&'static str, u64>);

const TOTAL_KEYS: [&str; 6] = [
    "total-records",
    "total-files-size",
    "total-data-files",
    "total-delete-files",
    "total-position-deletes",
    "total-equality-deletes",
];

impl Totals {
    fn from_summary(summary: &Summary) -> Self {
        let get = |key: &str| summary.additional_properties.get(key).and_then(|v| v.parse().ok()).unwrap_or(0);
        Totals(TOTAL_KEYS.iter().map(|&key| (key, get(key))).collect())
    }

    fn remove(&mut self, file: &DataFile) {
        for (key, value) in [
            ("total-records", file.record_count()),
            ("total-files-size", file.file_size_in_bytes()),
            ("total-data-files", 1),
        ] {
            if let Some(total) = self.0.get_mut(key) {
                *total = total.saturating_sub(value);
            }
        }
    }

    fn add_to(&self, properties: &mut HashMap<String, String>, added: &CommitInfo) {
        let added_for = |key: &str| match key {
            "total-records" => added.rows,
            "total-files-size" => added.bytes,
            "total-data-files" => added.files as u64,
            _ => 0,
        };
        for key in TOTAL_KEYS {
            let total = self.0.get(key).copied().unwrap_or(0) + added_for(key);
            properties.insert(key.to_string(), total.to_string());
        }
    }
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A positive snapshot id not used by the table, as iceberg's own producer makes them.
fn unique_snapshot_id(table: &Table) -> i64 {
    loop {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        let id = ((high ^ low) as i64).wrapping_abs();
        if id > 0 && !table.metadata().snapshots().any(|s| s.snapshot_id() == id) {
            return id;
        }
    }
}
