//! Guards against losing data to a bad input, checked after a step has
//! computed and before it commits: a truncated upstream export (a header and
//! no rows) must not replace yesterday's tables with empty ones, downstream
//! included. An ingest that read no data rows fails unless the step says
//! `allow_empty: true`; a step that replaces its table (or the run's
//! partition of it) fails if its output lacks more than `max_shrink` of the
//! rows it replaces. Both fail with exit 4 and commit nothing.

use super::RunError;
use crate::config::WriteMode;
use crate::lakehouse::Lakehouse;
use crate::plan::{Action, Step};

/// Checks `rows_out`, what the step produced, against its guard.
pub(super) async fn check(lakehouse: &Lakehouse, step: &Step, rows_out: u64) -> Result<(), RunError> {
    let guard = step.guard;
    if let Action::Ingest { source_display, .. } = &step.action
        && rows_out == 0
        && !guard.allow_empty
    {
        return Err(RunError::EmptySource {
            step: step.name.to_string(),
            table: step.target.to_string(),
            source_path: source_display.clone(),
        });
    }
    // An ingest allowed to be empty may empty its table: that is what
    // `allow_empty` says.
    if guard.max_shrink >= 1.0 || (rows_out == 0 && guard.allow_empty) {
        return Ok(());
    }
    let (partition, what) = match (step.mode, step.replaced_partition()) {
        (WriteMode::Overwrite, _) => (None, "the table".to_owned()),
        (WriteMode::PartitionOverwrite, Some((field, value))) => {
            (Some((field, value)), format!("partition `{value}` of the table"))
        }
        // Appends and merges remove nothing; a partition replacement without
        // `--partition` replaces the partitions the output holds, whatever
        // their number.
        _ => return Ok(()),
    };
    let lakehouse_error = |source| RunError::Lakehouse { step: step.name.to_string(), source };
    let Some(replaced) =
        lakehouse.current_rows(&step.catalog, &step.target, partition).await.map_err(lakehouse_error)?
    else {
        return Ok(());
    };
    if (rows_out as f64) < replaced as f64 * (1.0 - guard.max_shrink) {
        return Err(RunError::Shrink {
            step: step.name.to_string(),
            table: step.target.to_string(),
            what,
            replaced,
            rows_out,
            max_shrink: guard.max_shrink,
        });
    }
    Ok(())
}
