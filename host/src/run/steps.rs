//! What each kind of step computes: the Arrow batches to write. Reading
//! inputs goes through the lakehouse; nothing here writes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::RunError;
use super::plugins::Plugins;
use crate::compute::Session;
use crate::lakehouse::Lakehouse;
use crate::observe::progress;
use crate::plan::{PluginSpec, Step};

/// The span of one plugin invocation (observe/traces.rs): the plugin's name
/// and sha256, and counters the call fills in (the sandbox's call loops
/// record theirs into the current span).
fn plugin_span(step: &Step, spec: &PluginSpec, call: &'static str) -> tracing::Span {
    use tracing::field::Empty;
    tracing::info_span!(crate::observe::traces::PLUGIN, step = %step.name, plugin = %spec.name,
        plugin_digest = %spec.sha256, call, rows_in = Empty, rows_out = Empty, batches_out = Empty,
        bytes_in = Empty, bytes_out = Empty, pushes = Empty,
        otel.status_code = Empty, otel.status_message = Empty)
}

/// Runs one plugin invocation `call` inside its span, marked failed on error.
fn in_plugin_span<T, E: std::fmt::Display>(
    step: &Step,
    spec: &PluginSpec,
    call: &'static str,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let span = plugin_span(step, spec, call);
    let result = span.in_scope(f);
    if let Err(error) = &result {
        span.record("otel.status_code", "ERROR").record("otel.status_message", error.to_string());
    }
    result
}
use crate::sandbox::PluginStats;

/// A step's output, before it is written, and what the step read and cost.
pub(super) type Output = (SchemaRef, Vec<RecordBatch>, Usage);

/// What a step read, and what its plugin's calls cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Ingest: the rows the plugin parsed from the source. Otherwise: the
    /// rows of every input table read.
    pub rows_in: u64,
    /// Ingest: the size of the source file. Otherwise: the size of the data
    /// files of the input tables' snapshots read.
    pub bytes_in: u64,
    /// Every plugin call of the step; `None` for a SQL model.
    pub plugin: Option<PluginStats>,
}

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
    let mut reader = CountingReader { inner: BufReader::with_capacity(1 << 20, file), bytes: 0 };
    let mut batches = Vec::new();
    // Plugin calls block; block_in_place keeps the async runtime's other
    // workers available meanwhile.
    let (schema, stats) = tokio::task::block_in_place(|| {
        in_plugin_span(step, spec, "ingest", || {
            plugin.ingest_with_stats(step.name.as_str(), config, source_display, &mut reader, &mut |batch| {
                progress::add_rows(batch.num_rows() as u64);
                batches.push(batch);
                Ok(())
            })
        })
    })?;
    let rows_in = batches.iter().map(|b| b.num_rows() as u64).sum();
    let usage = Usage { rows_in, bytes_in: reader.bytes, plugin: Some(stats) };
    Ok((schema, batches, usage))
}

/// Counts the bytes read through it.
struct CountingReader<R> {
    inner: R,
    bytes: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        progress::add_bytes(n as u64);
        Ok(n)
    }
}

/// Loads every input of the step into DuckDB under the names the SQL uses;
/// returns the rows and data-file bytes read.
pub async fn load_inputs(lakehouse: &Lakehouse, session: &Session, step: &Step) -> Result<Usage, RunError> {
    let mut usage = Usage::default();
    for input in &step.inputs {
        let (schema, batches, bytes) = lakehouse
            .read_input(&input.catalog, &input.table, step.replaced_partition())
            .await
            .map_err(|source| RunError::Lakehouse { step: step.name.to_string(), source })?;
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        progress::add_rows(rows);
        progress::add_bytes(bytes);
        usage.rows_in += rows;
        usage.bytes_in += bytes;
        session.load_table(input.layer.as_str(), input.table.name.as_str(), &schema, batches).map_err(|source| {
            RunError::Compute { step: step.name.to_string(), what: "loading inputs".into(), source }
        })?;
    }
    Ok(usage)
}

/// A SQL model, or the SQL a plugin returned, over the step's inputs.
pub async fn sql(
    lakehouse: &Lakehouse,
    session: &Session,
    step: &Step,
    what: &str,
    query: &str,
) -> Result<Output, RunError> {
    let usage = load_inputs(lakehouse, session, step).await?;
    let (schema, batches) = session.query(query).map_err(|source| RunError::Compute {
        step: step.name.to_string(),
        what: what.to_string(),
        source,
    })?;
    Ok((schema, batches, usage))
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
    let (query, mut stats) = tokio::task::block_in_place(|| {
        in_plugin_span(step, spec, "sql", || plugin.sql_with_stats(step.name.as_str(), config, &names))
    })?;
    if let Some(query) = query {
        tracing::debug!(step = %step.name, plugin = %spec.name, query = %query, "Plugin returned SQL.");
        let (schema, batches, usage) =
            sql(lakehouse, session, step, &format!("SQL from plugin `{}`", spec.name), &query).await?;
        return Ok((schema, batches, Usage { plugin: Some(stats), ..usage }));
    }
    let [input] = step.inputs.as_slice() else {
        return Err(RunError::Streaming {
            step: step.name.to_string(),
            plugin: spec.name.clone(),
            inputs: names.len(),
        });
    };
    let (schema, batches, bytes_in) = lakehouse
        .read_input(&input.catalog, &input.table, step.replaced_partition())
        .await
        .map_err(|source| RunError::Lakehouse { step: step.name.to_string(), source })?;
    let rows_in = batches.iter().map(|b| b.num_rows() as u64).sum();
    let mut output = Vec::new();
    let (declared, streamed) = tokio::task::block_in_place(|| {
        in_plugin_span(step, spec, "transform", || {
            plugin.transform_with_stats(step.name.as_str(), config, &schema, &mut batches.into_iter(), &mut |batch| {
                progress::add_rows(batch.num_rows() as u64);
                output.push(batch);
                Ok(())
            })
        })
    })?;
    stats.merge(streamed);
    Ok((declared, output, Usage { rows_in, bytes_in, plugin: Some(stats) }))
}
