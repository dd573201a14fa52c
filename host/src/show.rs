//! `floe-host show`: the first rows of a pipeline table, read through its
//! catalog like any other engine would, so users can look at results without
//! a second tool.

use arrow_array::RecordBatch;

use crate::lakehouse::Lakehouse;
use crate::plan::Plan;
use crate::run::RunError;

/// Why a table cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error("no step of this pipeline produces `{table}`; tables: {available}")]
    UnknownTable { table: String, available: String },
    #[error(transparent)]
    Run(#[from] RunError),
}

/// Renders up to `limit` rows of `layer.table` with its row count and snapshot.
pub fn show(plan: &Plan, table: &str, limit: usize) -> Result<String, ShowError> {
    let step = plan.steps.iter().find(|s| format!("{}.{}", s.layer, s.name) == table).ok_or_else(|| {
        let available: Vec<String> = plan.steps.iter().map(|s| format!("{}.{}", s.layer, s.name)).collect();
        ShowError::UnknownTable { table: table.to_string(), available: available.join(", ") }
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Setup(format!("cannot start the async runtime: {e}")))?;
    let lakehouse_error = |source| RunError::Lakehouse { step: step.name.to_string(), source };
    runtime.block_on(async {
        let lakehouse = Lakehouse::open(&plan.catalogs, &plan.storage, [(step.catalog.clone(), step.storage.clone())])
            .await
            .map_err(RunError::opening)?;
        let snapshot = lakehouse.current_snapshot(&step.catalog, &step.target).await.map_err(lakehouse_error)?;
        let (_, batches) = lakehouse.read(&step.catalog, &step.target).await.map_err(lakehouse_error)?;
        let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
        // Cells hold whatever a plugin wrote: cut and escaped, so that no
        // value can move the terminal's cursor, forge a line or blow up the layout.
        let table_text = crate::preview::preview(&batches, limit);
        let snapshot = snapshot.map_or("none".to_string(), |s| s.to_string());
        Ok(format!("{} ({total} rows, snapshot {snapshot})\n{table_text}\n", step.target))
    })
}
