//! Exactly-once steps: whether a run already committed a step, found in the
//! table's own history. Every snapshot this host commits records
//! `floe.run-id`, `floe.pipeline` and `floe.step` in its summary (and
//! `floe.partition` in a `--partition` run), so a rerun of the same run id
//! (after a crash, a retry or a double start) can tell a step it must not
//! commit again, with no state outside the catalog. A run of another
//! partition under the same run id is another commit.
//!
//! Snapshots also record the version (sequence number) of each input the
//! step read, so that a table replaced whole never goes back to a result
//! computed from older inputs than its current one (`superseded_by`).

use iceberg::spec::{MAIN_BRANCH, SnapshotRef};
use iceberg::table::Table;

use super::{CommitInfo, CommitTags};
use crate::plan::TableRef;

/// The snapshot of `main`'s history (the current snapshot and its
/// ancestors) that `tags` committed, if any. Snapshots that are not ancestors
/// of `main` (rolled back, or on other branches) do not count: their data is
/// not in the table.
pub(super) fn committed_by<'a>(table: &'a Table, tags: &CommitTags) -> Option<&'a SnapshotRef> {
    let metadata = table.metadata();
    let mut next = metadata.snapshot_for_ref(MAIN_BRANCH);
    // Bounded, in case a corrupt history loops.
    for _ in 0..metadata.snapshots().len() {
        let snapshot = next?;
        let properties = &snapshot.summary().additional_properties;
        let tagged = |key: &str, value: &str| properties.get(key).is_some_and(|v| v == value);
        if tagged("floe.run-id", &tags.run_id)
            && tagged("floe.step", &tags.step)
            && tagged("floe.pipeline", &tags.pipeline)
            && properties.get("floe.partition") == tags.partition.as_ref()
        {
            return Some(snapshot);
        }
        next = snapshot.parent_snapshot_id().and_then(|id| metadata.snapshot_by_id(id));
    }
    None
}

/// The summary key under which a snapshot records the version of an input.
pub(super) fn input_key(catalog: &str, table: &TableRef) -> String {
    format!("{INPUT_PREFIX}{catalog}.{table}")
}

/// The start of every `input_key`.
pub(super) const INPUT_PREFIX: &str = "floe.input.";

/// The table's current snapshot, if it was computed from a newer version of
/// one of `tags.inputs` than this step read. Such a snapshot supersedes the
/// step's result: for a table that is replaced whole, committing over it
/// would put older data back. (Concurrent `--partition` runs each recompute
/// a gold table from silver; the last to commit may have read silver before
/// another run's partition landed in it.)
pub(super) fn superseded_by<'a>(table: &'a Table, tags: &CommitTags) -> Option<&'a SnapshotRef> {
    let current = table.metadata().current_snapshot()?;
    let properties = &current.summary().additional_properties;
    let newer = |(key, read): &(String, i64)| {
        properties.get(key).and_then(|v| v.parse::<i64>().ok()).is_some_and(|recorded| recorded > *read)
    };
    tags.inputs.iter().any(newer).then_some(current)
}

/// What an earlier commit did, from its snapshot summary (`added-records`,
/// `added-data-files`, `added-files-size`).
pub(super) fn commit_info(snapshot: &SnapshotRef) -> CommitInfo {
    let properties = &snapshot.summary().additional_properties;
    let number = |key: &str| properties.get(key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    CommitInfo {
        snapshot_id: snapshot.snapshot_id(),
        rows: number("added-records"),
        files: number("added-data-files") as usize,
        bytes: number("added-files-size"),
        already_committed: true,
        superseded: false,
    }
}
