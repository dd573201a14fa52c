//! Replacing some data files of the parent snapshot: every live file of the
//! replaced partitions (`partition_overwrite`, as Iceberg's
//! `ReplacePartitions` does) or the files a merge rewrote, marked DELETED. A
//! manifest that holds none of them is reused as it is; one that does is
//! rewritten, its other live files kept as EXISTING (with their snapshot and
//! sequence numbers). Delete-file manifests are carried over.
//!
//! The files to delete are read from the snapshot the commit builds on, so a
//! commit rebuilt after a conflict deletes what is live in the new state.

use iceberg::spec::{DataFile, ManifestContentType, ManifestFile, ManifestWriterBuilder, SchemaRef};
use iceberg::table::Table;
use iceberg::{Error, ErrorKind};

/// The parent's manifests without the replaced partitions.
pub(super) struct Kept {
    pub manifests: Vec<ManifestFile>,
    /// The data files marked DELETED.
    pub removed: Vec<DataFile>,
}

/// `parent` (the parent snapshot's manifests) with the live data files that
/// `removes` picks deleted; rewritten manifests, written with `schema`, go
/// to `path(n)`. `by_partition`: `removes` compares partition values, which
/// only mean the same under the current partition spec.
pub(super) async fn without(
    table: &Table,
    parent: Vec<ManifestFile>,
    schema: &SchemaRef,
    removes: impl Fn(&DataFile) -> bool,
    by_partition: bool,
    snapshot_id: i64,
    path: impl Fn(usize) -> String,
) -> iceberg::Result<Kept> {
    let metadata = table.metadata();
    let spec = metadata.default_partition_spec();
    let mut kept = Kept { manifests: Vec::new(), removed: Vec::new() };
    for manifest_file in parent {
        if manifest_file.content == ManifestContentType::Deletes {
            kept.manifests.push(manifest_file);
            continue;
        }
        // A manifest of deletions only (an earlier replacement's) lists no
        // live file: it need not be carried any further.
        if manifest_file.added_files_count == Some(0) && manifest_file.existing_files_count == Some(0) {
            continue;
        }
        let manifest = manifest_file.load_manifest(table.file_io()).await?;
        let live: Vec<_> = manifest.entries().iter().filter(|e| e.is_alive()).collect();
        if by_partition && manifest_file.partition_spec_id != spec.spec_id() && !live.is_empty() {
            return Err(Error::new(
                ErrorKind::FeatureUnsupported,
                format!(
                    "the table has data files of partition spec {} (an earlier partitioning); floe-host replaces \
                     partitions only when every data file uses the current spec ({})",
                    manifest_file.partition_spec_id,
                    spec.spec_id()
                ),
            ));
        }
        if !live.iter().any(|e| removes(e.data_file())) {
            kept.manifests.push(manifest_file);
            continue;
        }
        let output = table.file_io().new_output(path(kept.manifests.len()))?;
        let mut writer = ManifestWriterBuilder::new(output, Some(snapshot_id), schema.clone(), spec.as_ref().clone())
            .build_v2_data();
        for entry in live {
            let data_sequence = entry.sequence_number().unwrap_or(manifest_file.sequence_number);
            let file_sequence = entry.file_sequence_number.or(Some(manifest_file.sequence_number));
            let file = entry.data_file().clone();
            if removes(&file) {
                writer.add_delete_file(file.clone(), data_sequence, file_sequence)?;
                kept.removed.push(file);
            } else {
                let added_by = entry.snapshot_id().unwrap_or(manifest_file.added_snapshot_id);
                writer.add_existing_file(file, added_by, data_sequence, file_sequence)?;
            }
        }
        kept.manifests.push(writer.write_manifest_file().await?);
    }
    Ok(kept)
}
