//! Manifest merging (`floe-host maintain`): every append adds a manifest to
//! the table's current snapshot, and a scan plan reads them all. Merging
//! lists the same live data files in one manifest per partition spec (split
//! every [`ENTRIES_PER_MANIFEST`] files), each file EXISTING with the
//! snapshot and sequence numbers it was added with, as Spark's
//! `rewrite_manifests` does. Delete-file manifests are carried over as they
//! are, and entries of files an earlier snapshot deleted are dropped.

use std::collections::BTreeMap;
use std::time::Duration;

use iceberg::spec::{ManifestContentType, ManifestFile, ManifestWriterBuilder, SchemaRef};
use iceberg::table::Table;
use iceberg::{Error, ErrorKind};

use super::LakehouseError;
use super::catalog::OpenCatalog;
use super::commit::{Change, Origin, Removed, commit_once};
use super::schema::Target;
use crate::plan::{MaintenancePolicy, TableRef};

/// About 8 MiB of manifest (Iceberg's `commit.manifest.target-size-bytes`)
/// for files with column statistics on some twenty columns.
pub const ENTRIES_PER_MANIFEST: usize = 20_000;

/// A snapshot's manifests after merging.
pub(super) struct Merged {
    pub manifests: Vec<ManifestFile>,
    /// Manifests written, carried over as they were, and merged away.
    created: usize,
    kept: usize,
    replaced: usize,
    /// Live data file entries written anew.
    entries: usize,
}

impl Merged {
    /// The snapshot summary properties Iceberg's `RewriteManifests` records.
    pub fn summary(&self) -> Vec<(String, String)> {
        [
            ("manifests-created", self.created),
            ("manifests-kept", self.kept),
            ("manifests-replaced", self.replaced),
            ("entries-processed", self.entries),
        ]
        .into_iter()
        .map(|(key, n)| (key.to_string(), n.to_string()))
        .collect()
    }
}

/// The data manifests of `parent` (a snapshot's manifest list) merged; the
/// new ones, written with `schema` for `snapshot_id`, go to `path(n)`.
pub(super) async fn merged(
    table: &Table,
    parent: impl IntoIterator<Item = ManifestFile>,
    schema: &SchemaRef,
    snapshot_id: i64,
    path: impl Fn(usize) -> String,
) -> iceberg::Result<Merged> {
    let metadata = table.metadata();
    let mut merged = Merged { manifests: Vec::new(), created: 0, kept: 0, replaced: 0, entries: 0 };
    let mut by_spec: BTreeMap<i32, Vec<ManifestFile>> = BTreeMap::new();
    for manifest_file in parent {
        if manifest_file.content == ManifestContentType::Deletes {
            merged.kept += 1;
            merged.manifests.push(manifest_file);
        } else {
            by_spec.entry(manifest_file.partition_spec_id).or_default().push(manifest_file);
        }
    }
    for (spec_id, manifest_files) in by_spec {
        if manifest_files.len() == 1 {
            merged.kept += 1;
            merged.manifests.extend(manifest_files);
            continue;
        }
        let spec = metadata.partition_spec_by_id(spec_id).ok_or_else(|| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("a manifest names partition spec {spec_id}, which the table lacks"),
            )
        })?;
        merged.replaced += manifest_files.len();
        let mut writer = None;
        let mut in_writer = 0;
        for manifest_file in manifest_files {
            let manifest = manifest_file.load_manifest(table.file_io()).await?;
            for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                if in_writer == ENTRIES_PER_MANIFEST
                    && let Some(full) = writer.take()
                {
                    merged.manifests.push(finish(full).await?);
                    merged.created += 1;
                }
                let writer = match &mut writer {
                    Some(writer) => writer,
                    None => {
                        in_writer = 0;
                        let output = table.file_io().new_output(path(merged.created))?;
                        let builder = ManifestWriterBuilder::new(
                            output,
                            Some(snapshot_id),
                            schema.clone(),
                            spec.as_ref().clone(),
                        );
                        writer.insert(builder.build_v2_data())
                    }
                };
                let data_sequence = entry.sequence_number().unwrap_or(manifest_file.sequence_number);
                let file_sequence = entry.file_sequence_number.or(Some(manifest_file.sequence_number));
                let added_by = entry.snapshot_id().unwrap_or(manifest_file.added_snapshot_id);
                writer.add_existing_file(entry.data_file().clone(), added_by, data_sequence, file_sequence)?;
                in_writer += 1;
                merged.entries += 1;
            }
        }
        if let Some(writer) = writer {
            merged.manifests.push(finish(writer).await?);
            merged.created += 1;
        }
    }
    Ok(merged)
}

async fn finish(writer: iceberg::spec::ManifestWriter) -> iceberg::Result<ManifestFile> {
    writer.write_manifest_file().await
}

/// The data manifests of a table's current snapshot.
async fn count(table: &Table) -> iceberg::Result<usize> {
    let Some(snapshot) = table.metadata().current_snapshot() else { return Ok(0) };
    let list = table.manifest_list_reader(snapshot).load().await?;
    Ok(list.entries().iter().filter(|m| m.content == ManifestContentType::Data).count())
}

/// Merges the table's data manifests when its current snapshot has more
/// than `policy.max_manifests`, in one `replace` commit, planned again on a
/// concurrent commit. Returns the count before and after (in a dry run, the
/// count it would have at most: one per partition spec).
pub(super) async fn merge(
    catalog: &OpenCatalog,
    table_ref: &TableRef,
    policy: &MaintenancePolicy,
    dry_run: bool,
) -> Result<(usize, usize), LakehouseError> {
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    let mut attempt = 0;
    loop {
        let Some(table) = catalog.load_table(table_ref).await? else { return Ok((0, 0)) };
        let before = count(&table).await.map_err(error("cannot read its manifest list"))?;
        if before <= policy.max_manifests as usize {
            return Ok((before, before));
        }
        if dry_run {
            return Ok((before, table.metadata().partition_specs_iter().count().min(before)));
        }
        let change = Change {
            added: Vec::new(),
            removed: Removed::Nothing,
            target: Target { schema: table.metadata().current_schema().clone(), added: Vec::new() },
            properties: Vec::new(),
            relist: true,
        };
        match commit_once(catalog, &table, change, Origin::Maintenance("rewrite-manifests")).await {
            Ok(_) => {
                let after = match catalog.load_table(table_ref).await? {
                    Some(table) => count(&table).await.map_err(error("cannot read its manifest list"))?,
                    None => 0,
                };
                return Ok((before, after));
            }
            Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Err(e) => return Err(error("cannot commit its merged manifests")(e)),
        }
    }
}
