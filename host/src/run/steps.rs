//! What each kind of step computes: the Arrow batches to write. Reading
//! inputs goes through the lakehouse; nothing here writes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::RunError;
use super::plugins::Plugins;
use crate::compute::Session;
use crate::lakehouse::Lakehouse;
use crate::plan::{PluginSpec, Step};

/// A step's output, before it is written.
pub(super) type Output = (SchemaRef, Vec<RecordBatch>);

/// Bronze ingest: the host reads the file, the plugin parses it.
pub fn ingest(
    plugins: &mut Plugins,
    step: &Step,
    spec: &PluginSpec,
    source: &Path,
    source_display: &str,
    config: &BTreeMap<String, String>,
) -> Result<Output, RunError> {
    let plugin = plugins.ingest(step, spec)?;
    let file = File::open(source).map_err(|e| RunError::Source {
        step: step.name.to_string(),
        path: source.display().to_string(),
        source: e,
    })?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut batches = Vec::new();
    // Plugin calls block; block_in_place keeps the async runtime's other
    // workers available meanwhile.
    let schema = tokio::task::block_in_place(|| {
        plugin.ingest(step.name.as_str(), config, source_display, &mut reader, &mut |batch| {
            batches.push(batch);
            Ok(())
        })
    })?;
    Ok((schema, batches))
}

/// Loads every input of the step into DuckDB under the names the SQL uses.
pub async fn load_inputs(lakehouse: &Lakehouse, session: &Session, step: &Step) -> Result<(), RunError> {
    for input in &step.inputs {
        let (schema, batches) = lakehouse
            .read(&input.catalog, &input.table)
            .await
            .map_err(|source| RunError::Lakehouse { step: step.name.to_string(), source })?;
        session
            .load_table(input.layer.as_str(), input.table.name.as_str(), &schema, batches)
            .map_err(|source| RunError::Compute { step: step.name.to_string(), what: "loading inputs".into(), source })?;
    }
    Ok(())
}

/// A SQL model, or the SQL a plugin returned, over the step's inputs.
pub async fn sql(lakehouse: &Lakehouse, session: &Session, step: &Step, what: &str, query: &str) -> Result<Output, RunError> {
    load_inputs(lakehouse, session, step).await?;
    session
        .query(query)
        .map_err(|source| RunError::Compute { step: step.name.to_string(), what: what.to_string(), source })
}

/// A transform plugin: SQL mode if it returns a query, else streaming over
/// its single input.
pub async fn wasm(
    lakehouse: &Lakehouse,
    session: &Session,
    plugins: &mut Plugins,
    step: &Step,
    spec: &PluginSpec,
    config: &BTreeMap<String, String>,
) -> Result<Output, RunError> {
    let plugin = plugins.transform(step, spec)?.clone();
    let names: Vec<String> = step.inputs.iter().map(|i| format!("{}.{}", i.layer, i.table.name)).collect();
    let query = tokio::task::block_in_place(|| plugin.sql(step.name.as_str(), config, &names))?;
    if let Some(query) = query {
        tracing::debug!(step = %step.name, plugin = %spec.name, query = %query, "Plugin returned SQL.");
        return sql(lakehouse, session, step, &format!("SQL from plugin `{}`", spec.name), &query).await;
    }
    let [input] = step.inputs.as_slice() else {
        return Err(RunError::Streaming { step: step.name.to_string(), plugin: spec.name.clone(), inputs: names.len() });
    };
    let (schema, batches) = lakehouse
        .read(&input.catalog, &input.table)
        .await
        .map_err(|source| RunError::Lakehouse { step: step.name.to_string(), source })?;
    let mut output = Vec::new();
    let declared = tokio::task::block_in_place(|| {
        plugin.transform(step.name.as_str(), config, &schema, &mut batches.into_iter(), &mut |batch| {
            output.push(batch);
            Ok(())
        })
    })?;
    Ok((declared, output))
}
