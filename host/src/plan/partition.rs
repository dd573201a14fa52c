//! Partitions in the plan: the checks of `partition_by` and `{partition}`
//! sources at plan time, and binding a plan to the partition of one run
//! (`run --partition VALUE`, or a Dagster partition key) before anything runs.
//!
//! The rules, in one place:
//! - `--partition` applies to every `partition_overwrite` step of the run
//!   (each replaces that partition of its table) and fills `{partition}` in
//!   ingest sources. Other steps run as in a full run.
//! - `--partition` with no step that uses it is a usage error; so is a
//!   `{partition}` source without `--partition`.
//! - A value is checked against the temporal transforms before the run
//!   (`day` takes `YYYY-MM-DD`); identity values are checked against the
//!   column type when the step writes.

use std::path::{Path, PathBuf};

use super::{Action, Plan};
use crate::config::{PartitionTransform, Transform, WriteMode};

/// The placeholder an ingest `source` may hold.
pub const PLACEHOLDER: &str = "{partition}";

/// Why a plan cannot run with (or without) the given partition. A usage
/// error: nothing runs.
#[derive(Debug, thiserror::Error)]
pub enum PartitionUsageError {
    #[error(
        "--partition `{value}`: no step of pipeline `{pipeline}` uses a partition (none has \
         `mode: partition_overwrite` or a `{PLACEHOLDER}` in its `source`); run without --partition"
    )]
    NotUsed { pipeline: String, value: String },
    #[error(
        "step `{step}` reads `{source_path}`, which names the partition: pass --partition VALUE \
         (for example --partition 2024-01-03)"
    )]
    Needed { step: String, source_path: String },
    #[error(
        "--partition `{value}`: {reason}; a partition value may name a file, so it cannot be empty, \
         contain `/`, `\\` or `..`, or control characters"
    )]
    Unsafe { value: String, reason: &'static str },
    #[error("--partition `{value}`: step `{step}` partitions by `{field}`, which takes {format}")]
    Format { value: String, step: String, field: String, format: &'static str },
}

/// A problem with one transform's partitioning, found at plan time: the key
/// under `transforms[i]`, the message and the help.
pub(super) struct Problem {
    pub key: String,
    pub message: String,
    pub help: String,
}

/// Checks `partition_by` and `mode: partition_overwrite` of one transform.
pub(super) fn check_transform(transform: &Transform) -> Vec<Problem> {
    let mut problems = Vec::new();
    let fields = &transform.partition_by;
    for (j, field) in fields.iter().enumerate() {
        if let Some(first) = fields[..j].iter().position(|f| f.column == field.column) {
            problems.push(Problem {
                key: format!("partition_by[{j}]"),
                message: format!(
                    "column `{}` is already partitioned by `partition_by[{first}]` (`{}`)",
                    field.column, fields[first]
                ),
                help: "partition by each column once".into(),
            });
        }
    }
    if transform.mode == WriteMode::PartitionOverwrite {
        match fields.len() {
            0 => problems.push(Problem {
                key: "mode".into(),
                message: "`mode: partition_overwrite` needs `partition_by`".into(),
                help: "add the field whose partitions the step replaces, for example `partition_by: [order_date]` \
                       or `partition_by: [\"day(order_ts)\"]`"
                    .into(),
            }),
            1 => {}
            n => problems.push(Problem {
                key: "partition_by".into(),
                message: format!(
                    "`mode: partition_overwrite` replaces the partitions of one field, but `partition_by` has {n} ({})",
                    fields.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
                help: "keep one field, or use `mode: overwrite` to replace the whole table".into(),
            }),
        }
    }
    problems
}

/// Checks a source path that holds placeholders: only `{partition}`, and the
/// folder before it exists. `Ok(false)` when it holds none.
pub(super) fn check_source_template(root: &Path, source: &Path) -> Result<bool, (String, String)> {
    let text = source.to_string_lossy();
    let mut rest = text.replace(PLACEHOLDER, "");
    if let Some(start) = rest.find('{') {
        rest.drain(..start);
        let unknown: String = rest.chars().take_while(|&c| c != '}').chain(Some('}')).collect();
        return Err((
            format!("`{unknown}` in the source path is not a placeholder floe-host knows"),
            format!("the only placeholder is `{PLACEHOLDER}`, filled by `run --partition VALUE`"),
        ));
    }
    if !text.contains(PLACEHOLDER) {
        return Ok(false);
    }
    // The folders before the first placeholder must exist now; the file is
    // looked for when a run names its partition.
    let before = &text[..text.find(PLACEHOLDER).expect("checked")];
    let folder = root.join(before);
    let folder = if before.ends_with('/') { folder.as_path() } else { folder.parent().unwrap_or(root) };
    if folder.is_dir() {
        Ok(true)
    } else {
        Err((
            format!("folder `{}` of the partitioned source does not exist", folder.display()),
            "paths are relative to the directory of floe.yaml".into(),
        ))
    }
}

/// Whether a partition value is safe to put into a path.
fn check_safe(value: &str) -> Result<(), PartitionUsageError> {
    let unsafe_because = |reason| Err(PartitionUsageError::Unsafe { value: value.to_string(), reason });
    if value.is_empty() {
        return unsafe_because("it is empty");
    }
    if value.contains(['/', '\\']) {
        return unsafe_because("it contains a path separator");
    }
    if value.contains("..") {
        return unsafe_because("it contains `..`");
    }
    if value.chars().any(char::is_control) {
        return unsafe_because("it contains a control character");
    }
    Ok(())
}

impl Plan {
    /// The plan for a run of `partition` (or of no partition): `{partition}`
    /// filled in, and the partition set on every `partition_overwrite` step.
    pub fn for_partition(&self, partition: Option<&str>) -> Result<Plan, PartitionUsageError> {
        let mut plan = self.clone();
        let mut used = false;
        for step in &mut plan.steps {
            if step.mode == WriteMode::PartitionOverwrite {
                used = true;
                if let Some(value) = partition {
                    for field in step.partition_by.iter().filter(|f| f.transform != PartitionTransform::Identity) {
                        field.transform.parse_period(value).map_err(|_| PartitionUsageError::Format {
                            value: value.to_string(),
                            step: step.name.to_string(),
                            field: field.to_string(),
                            format: field.transform.value_format(),
                        })?;
                    }
                    step.partition = Some(value.to_string());
                }
            }
            if let Action::Ingest { source, source_display, .. } = &mut step.action
                && source_display.contains(PLACEHOLDER)
            {
                used = true;
                let Some(value) = partition else {
                    return Err(PartitionUsageError::Needed {
                        step: step.name.to_string(),
                        source_path: source_display.clone(),
                    });
                };
                check_safe(value)?;
                *source_display = source_display.replace(PLACEHOLDER, value);
                *source = PathBuf::from(source.to_string_lossy().replace(PLACEHOLDER, value));
            }
        }
        match partition {
            Some(value) if !used => {
                Err(PartitionUsageError::NotUsed { pipeline: plan.pipeline.clone(), value: value.to_string() })
            }
            _ => Ok(plan),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_that_could_escape_a_folder_are_refused() {
        for bad in ["", "a/b", "..", "a\\b", "x\n"] {
            assert!(matches!(check_safe(bad), Err(PartitionUsageError::Unsafe { .. })), "{bad:?}");
        }
        for good in ["2024-01-03", "eu-west", "2024-01-03T00", "a.b"] {
            assert!(check_safe(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn source_templates_know_one_placeholder() {
        let root = std::env::temp_dir();
        assert_eq!(check_source_template(&root, Path::new("data.csv")), Ok(false));
        assert_eq!(check_source_template(&root, Path::new("orders_{partition}.csv")), Ok(true));
        let (message, _) = check_source_template(&root, Path::new("orders_{date}.csv")).unwrap_err();
        assert!(message.contains("`{date}`"), "{message}");
        let (message, _) = check_source_template(&root, Path::new("no-such-folder-x/{partition}.csv")).unwrap_err();
        assert!(message.contains("no-such-folder-x"), "{message}");
    }
}
