//! What each kind of step computes: the Arrow batches to write, handed to a
//! sink as they are produced. Reading inputs goes through the lakehouse;
//! nothing here writes.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use futures::{StreamExt, TryStreamExt};

use super::RunError;
use super::plugins::Plugins;
use crate::compute::{ComputeError, Reads, Session, Setup, Worker};
use crate::lakehouse::{Input, Lakehouse, Take};
use crate::observe::progress;
use crate::plan::source::SourceRoots;
use crate::plan::{PluginSpec, Step};

/// The span of one plugin invocation (observe/traces.rs): the plugin's name
/// and sha256, and counters the call fills in (the sandbox's call loops
/// record theirs into the current span).
fn plugin_span(step: &Step, spec: &PluginSpec, call: &'static str) -> tracing::Span {
    use tracing::field::Empty;
    tracing::info_span!(crate::observe::traces::PLUGIN, step = %step.name, plugin = %spec.name,
        plugin_digest = %spec.sha256, call, rows_in = Empty, rows_out = Empty, batches_out = Empty,
        bytes_in = Empty, bytes_out = Empty, pushes = Empty,
        otel.status_code = Empty, otel.status_description = Empty)
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
        crate::observe::traces::fail(&span, &error);
    }
    result
}
use crate::sandbox::PluginStats;

/// Takes each batch of a step's output as it is produced; an error stops the step.
pub(super) type Sink<'a> = dyn FnMut(RecordBatch) -> Result<(), String> + 'a;

/// A step's output schema, and what the step read and cost.
pub(super) type Output = (SchemaRef, Usage);

/// What a step read, and what its plugin's calls cost.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    /// Ingest: the rows the plugin parsed from the source. Otherwise: the
    /// rows of every input table read.
    pub rows_in: u64,
    /// Ingest: the size of the source file. Otherwise: the size of the data
    /// files of the input tables' snapshots read.
    pub bytes_in: u64,
    /// Every plugin call of the step; `None` for a SQL model.
    pub plugin: Option<PluginStats>,
    /// The dbt data tests' outcomes, set once the output is complete.
    pub tests: Vec<super::data_tests::TestOutcome>,
}

/// Bronze ingest: the host reads the file, the plugin parses it.
#[allow(clippy::too_many_arguments)]
pub fn ingest(
    plugins: &Plugins,
    sources: &SourceRoots,
    step: &Step,
    spec: &PluginSpec,
    source: &Path,
    source_display: &str,
    config: &BTreeMap<String, String>,
    sink: &mut Sink<'_>,
) -> Result<Output, RunError> {
    let plugin = plugins.ingest(step, spec)?;
    let file =
        sources.open(source).map_err(|problem| RunError::SourceRefused { step: step.name.to_string(), problem })?;
    let mut reader = CountingReader { inner: BufReader::with_capacity(1 << 20, file), bytes: 0 };
    let mut rows_in = 0u64;
    // Plugin calls block; block_in_place keeps the async runtime's other
    // workers available meanwhile (the writer runs on one).
    let (schema, stats) = tokio::task::block_in_place(|| {
        in_plugin_span(step, spec, "ingest", || {
            plugin.ingest_with_stats(step.name.as_str(), config, source_display, &mut reader, &mut |batch| {
                progress::add_rows(batch.num_rows() as u64);
                rows_in += batch.num_rows() as u64;
                sink(batch)
            })
        })
    })?;
    let usage = Usage { rows_in, bytes_in: reader.bytes, plugin: Some(stats), tests: Vec::new() };
    Ok((schema, usage))
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

/// Where a step's inputs are loaded: its own database, or the database of
/// the SQL worker that runs a plugin's query.
pub enum Target<'a> {
    Session(&'a Session),
    Worker(&'a mut Worker),
}

/// Makes every input of the step a DuckDB view or table under the names the
/// SQL uses, in `target`: a view over its Parquet files where DuckDB can read
/// them itself, else a table filled from iceberg's reader batch by batch.
/// `session` decides which (it reads the files' field ids). Returns the rows
/// and data-file bytes read, and the files the views read (which the
/// locked-down database must still allow).
pub async fn load_inputs(
    lakehouse: &Lakehouse,
    session: &Session,
    step: &Step,
    mut target: Target<'_>,
) -> Result<(Usage, Vec<String>), RunError> {
    let lakehouse_error = |source| RunError::Lakehouse { step: step.name.to_string(), source };
    let compute_error =
        |source| RunError::Compute { step: step.name.to_string(), what: "loading inputs".into(), source };
    let mut usage = Usage::default();
    let mut files = Vec::new();
    for input in &step.inputs {
        let (layer, name) = (input.layer.as_str(), input.table.name.as_str());
        let mut take = Take::FilesOrBatches;
        let rows = loop {
            let opened = lakehouse
                .read_input(&input.catalog, &input.table, step.replaced_partition(), take)
                .await
                .map_err(lakehouse_error)?;
            let bytes = opened.bytes();
            match opened {
                Input::Files { schema, paths, rows, .. } => {
                    // DuckDB reads every footer here: a broken file fails now,
                    // and is named as corrupt rather than as a DuckDB error.
                    let layout =
                        session.parquet_layout(&schema, &paths).map_err(
                            |e| match crate::lakehouse::corrupt_local_file(&paths) {
                                Some((file, message)) => RunError::Lakehouse {
                                    step: step.name.to_string(),
                                    source: crate::lakehouse::LakehouseError::Corrupt {
                                        table: input.table.to_string(),
                                        what: "its data file",
                                        file,
                                        message,
                                    },
                                },
                                None => compute_error(e),
                            },
                        )?;
                    let Some(layout) = layout else {
                        // Columns must then be resolved as iceberg does.
                        tracing::debug!(step = %step.name, table = %input.table,
                            "Some data files lack field ids; reading them through iceberg.");
                        take = Take::Batches;
                        continue;
                    };
                    usage.bytes_in += bytes;
                    progress::add_bytes(bytes);
                    match &mut target {
                        Target::Session(session) => session.register_parquet(layer, name, &schema, &paths, layout),
                        Target::Worker(worker) => worker.register_parquet(layer, name, &schema, &paths, layout),
                    }
                    .map_err(compute_error)?;
                    files.extend(paths);
                    break rows;
                }
                Input::Batches { schema, mut batches, .. } => {
                    usage.bytes_in += bytes;
                    progress::add_bytes(bytes);
                    let mut loader = match &mut target {
                        Target::Session(session) => Some(session.loader(layer, name, &schema).map_err(compute_error)?),
                        Target::Worker(worker) => {
                            worker.begin_table(layer, name, &schema).map_err(compute_error)?;
                            None
                        }
                    };
                    let mut rows = 0;
                    while let Some(batch) = batches.try_next().await.map_err(lakehouse_error)? {
                        rows += batch.num_rows() as u64;
                        match (&mut loader, &mut target) {
                            (Some(loader), _) => loader.append(batch),
                            (None, Target::Worker(worker)) => worker.append(&batch),
                            (None, Target::Session(_)) => unreachable!("a session always has a loader"),
                        }
                        .map_err(compute_error)?;
                    }
                    match (loader, &mut target) {
                        (Some(loader), _) => loader.finish(),
                        (None, Target::Worker(worker)) => worker.end_table(),
                        (None, Target::Session(_)) => unreachable!("a session always has a loader"),
                    }
                    .map_err(compute_error)?;
                    break rows;
                }
            }
        };
        usage.rows_in += rows;
    }
    Ok((usage, files))
}

/// Who wrote the SQL a step runs, which decides what it may read and whose
/// fault a refusal is.
pub enum SqlAuthor<'a> {
    /// A data engineer's model: its inputs and the platform's
    /// `allowed_directories`.
    Model { file: &'a Path },
    /// A plugin (SQL mode): its inputs only, within the rest of its budget.
    Plugin {
        name: &'a str,
        /// What is left of its budget when the query starts.
        timeout: std::time::Duration,
        /// The budget that ends first, and the sandbox that reports it.
        budget: crate::sandbox::Budget,
        sandbox: &'a crate::sandbox::Sandbox,
    },
}

/// A SQL model, or the SQL a plugin returned, over the step's inputs, in a
/// database of the step's own that is locked down before the query runs;
/// the result streams into `sink`.
pub async fn sql(
    lakehouse: &Lakehouse,
    compute: &Setup,
    step: &Step,
    author: &SqlAuthor<'_>,
    query: &str,
    sink: &mut Sink<'_>,
) -> Result<Output, RunError> {
    let setup_error = |source| RunError::Compute { step: step.name.to_string(), what: "opening DuckDB".into(), source };
    let session = compute.open().map_err(setup_error)?;
    if let SqlAuthor::Plugin { sandbox, timeout, .. } = author
        && let Some(exe) = sandbox.child_executable()
    {
        // A plugin's SQL runs in a worker process, bounded in memory and time.
        let mut worker = Worker::start(exe, compute, sandbox.worker_limits()).map_err(setup_error)?;
        let (usage, files) = load_inputs(lakehouse, &session, step, Target::Worker(&mut worker)).await?;
        drop(session);
        let result = tokio::task::block_in_place(|| {
            worker.select(query, &files, *timeout, &mut |batch| {
                progress::add_rows(batch.num_rows() as u64);
                sink(batch)
            })
        });
        let schema = result.map_err(|source| sql_error(step, author, source))?;
        return Ok((schema, usage));
    }
    if let SqlAuthor::Plugin { sandbox, .. } = author {
        // In process (a library's sandbox with no worker): the spill cap still holds.
        session.limit_spill(sandbox.worker_limits().spill_bytes).map_err(setup_error)?;
    }
    let usage = load_and_lock(lakehouse, compute, &session, step, author, None).await?;
    stream(&session, step, author, query, usage, sink)
}

/// A SQL model: DuckDB writes its result as the table's data file itself
/// where the table can take one (`lakehouse::adopt`) and no test needs to
/// see the batches; otherwise, and when the query cannot run inside
/// `COPY`, the result streams into `output` as any SQL step's does.
pub(super) async fn model(
    lakehouse: &Lakehouse,
    compute: &Setup,
    step: &Step,
    file: &Path,
    query: &str,
    tags: &crate::lakehouse::CommitTags,
    output: &mut super::output::StepOutput<'_>,
) -> Result<Output, RunError> {
    let author = SqlAuthor::Model { file };
    let setup_error = |source| RunError::Compute { step: step.name.to_string(), what: "opening DuckDB".into(), source };
    let session = compute.open().map_err(setup_error)?;
    let scratch = match (&compute.scratch, output.unobserved()) {
        (Some(dir), Some(_)) if lakehouse.local_storage(&step.catalog) => scratch_file(dir, step, tags),
        _ => None,
    };
    let usage = load_and_lock(lakehouse, compute, &session, step, &author, scratch.as_deref()).await?;
    if let (Some(scratch), Some(sink)) = (scratch, output.unobserved()) {
        let lakehouse_error = |source| RunError::Lakehouse { step: step.name.to_string(), source };
        let schema = tokio::task::block_in_place(|| session.output_schema(query, Reads::Files))
            .map_err(|source| sql_error(step, &author, source))?;
        if let Some(local) = sink.begin_direct(&schema, &scratch).await.map_err(lakehouse_error)? {
            let copied = tokio::task::block_in_place(|| {
                session.copy_select(query, Reads::Files, &local.scratch, &local.field_ids)
            });
            match copied.map_err(|source| sql_error(step, &author, source))? {
                Some(rows) => {
                    sink.adopt().map_err(lakehouse_error)?;
                    output.rows += rows;
                    progress::add_rows(rows);
                    tracing::debug!(step = %step.name, rows, "DuckDB wrote the model's data file.");
                    return Ok((schema, usage));
                }
                None => sink.decline_direct(),
            }
        }
    }
    stream(&session, step, &author, query, usage, &mut |batch| output.push(batch))
}

/// A fresh path under `dir` for DuckDB to write one step's data file at,
/// its folder created; `None` (the output then streams) when the folder
/// cannot be made.
fn scratch_file(dir: &Path, step: &Step, tags: &crate::lakehouse::CommitTags) -> Option<std::path::PathBuf> {
    let made = std::fs::create_dir_all(dir).and_then(|()| dir.canonicalize());
    match made {
        Ok(dir) => Some(dir.join(tags.data_file_name())),
        Err(error) => {
            tracing::debug!(step = %step.name, dir = %dir.display(), %error,
                "Cannot make the folder DuckDB writes models' data files in; the output streams instead.");
            None
        }
    }
}

/// Loads the step's inputs into `session` and locks it down: it may then
/// read the inputs' files, a model's `allowed_directories`, and write
/// `scratch` and nothing else.
async fn load_and_lock(
    lakehouse: &Lakehouse,
    compute: &Setup,
    session: &Session,
    step: &Step,
    author: &SqlAuthor<'_>,
    scratch: Option<&Path>,
) -> Result<Usage, RunError> {
    let (usage, mut files) = load_inputs(lakehouse, session, step, Target::Session(session)).await?;
    let directories = match author {
        SqlAuthor::Model { .. } => compute.properties.allowed_directories.as_slice(),
        SqlAuthor::Plugin { .. } => &[][..],
    };
    files.extend(scratch.map(|path| path.display().to_string()));
    session.lock_down(&files, directories).map_err(|source| RunError::Compute {
        step: step.name.to_string(),
        what: "opening DuckDB".into(),
        source,
    })?;
    Ok(usage)
}

/// Runs the query in the locked-down `session` and streams its result into `sink`.
fn stream(
    session: &Session,
    step: &Step,
    author: &SqlAuthor<'_>,
    query: &str,
    usage: Usage,
    sink: &mut Sink<'_>,
) -> Result<Output, RunError> {
    let (reads, timeout) = match author {
        SqlAuthor::Model { .. } => (Reads::Files, None),
        SqlAuthor::Plugin { timeout, .. } => (Reads::InputsOnly, Some(*timeout)),
    };
    let result = tokio::task::block_in_place(|| {
        session.stream_select(query, reads, timeout, &mut |batch| {
            progress::add_rows(batch.num_rows() as u64);
            sink(batch)
        })
    });
    let schema = result.map_err(|source| sql_error(step, author, source))?;
    Ok((schema, usage))
}

/// For an incremental model whose table exists: the step reading its own
/// table too (`{{ this }}`), and the model's incremental SQL. `None`: run
/// the SQL that creates or replaces the table.
pub async fn incremental_read<'q>(
    lakehouse: &Lakehouse,
    step: &Step,
    incremental: Option<&'q str>,
) -> Result<Option<(Step, &'q str)>, crate::lakehouse::LakehouseError> {
    let Some(query) = incremental else { return Ok(None) };
    if lakehouse.current_snapshot(&step.catalog, &step.target).await?.is_none() {
        return Ok(None);
    }
    let mut reading_itself = step.clone();
    reading_itself.inputs.push(crate::plan::Input {
        layer: step.layer.clone(),
        table: step.target.clone(),
        catalog: step.catalog.clone(),
    });
    Ok(Some((reading_itself, query)))
}

/// Whose fault a failed query is: a plugin's SQL is always the plugin's
/// (exit 3, its text escaped, since it quotes the SQL); a model that is not
/// one SELECT needs fixing (exit 2); other model failures are step failures.
fn sql_error(step: &Step, author: &SqlAuthor<'_>, source: ComputeError) -> RunError {
    let step_name = step.name.to_string();
    match (author, source) {
        (_, source @ ComputeError::Sink(_)) => {
            RunError::Compute { step: step_name, what: "writing the result".into(), source }
        }
        (SqlAuthor::Plugin { name, budget, sandbox, .. }, ComputeError::TimedOut(_)) => {
            RunError::Plugin(sandbox.out_of_budget(&step_name, name, *budget))
        }
        (SqlAuthor::Plugin { name, sandbox, .. }, source) => {
            let what = match &source {
                ComputeError::Refused(_) => "was refused",
                _ => "failed in DuckDB",
            };
            let text = crate::sandbox::text::escape(&source.to_string()).into_owned();
            // DuckDB's own advice (`SET max_temp_directory_size`) is not the user's fix.
            let hint = match text.contains("max_temp_directory_size") {
                true => format!(
                    " (a plugin's SQL may spill {} MiB to disk, `plugins.spill_limit` in platform.yaml; raise it \
                     only for a plugin you trust to need more)",
                    sandbox.worker_limits().spill_bytes >> 20
                ),
                false => String::new(),
            };
            RunError::PluginSql { step: step_name, plugin: name.to_string(), message: format!("{what}: {text}{hint}") }
        }
        (SqlAuthor::Model { file }, ComputeError::Refused(message)) => {
            RunError::ModelRefused { step: step_name, file: file.display().to_string(), message }
        }
        (SqlAuthor::Model { file }, source) => {
            RunError::Compute { step: step_name, what: format!("SQL `{}`", file.display()), source }
        }
    }
}

/// A transform plugin: SQL mode if it returns a query, else streaming over
/// its single input, which a task reads ahead while the plugin runs.
pub async fn wasm(
    lakehouse: &Lakehouse,
    compute: &Setup,
    plugins: &Plugins,
    step: &Step,
    spec: &PluginSpec,
    config: &BTreeMap<String, String>,
    sink: &mut Sink<'_>,
) -> Result<Output, RunError> {
    let plugin = plugins.transform(step, spec)?.clone();
    let started = std::time::Instant::now();
    let names: Vec<String> = step.inputs.iter().map(|i| format!("{}.{}", i.layer, i.table.name)).collect();
    let (query, mut stats) = tokio::task::block_in_place(|| {
        in_plugin_span(step, spec, "sql", || plugin.sql_with_stats(step.name.as_str(), config, &names))
    })?;
    if let Some(query) = query {
        // `?` quotes and escapes it: the text is the plugin's.
        tracing::debug!(step = %step.name, plugin = %spec.name, query = ?query, "Plugin returned SQL.");
        // The query runs on what is left of the plugin's budgets.
        let (ends, budget) = plugins.sandbox().budget_ends(started);
        let timeout = ends.saturating_duration_since(std::time::Instant::now());
        let author = SqlAuthor::Plugin { name: &spec.name, timeout, budget, sandbox: plugins.sandbox() };
        let (schema, usage) = sql(lakehouse, compute, step, &author, &query, sink).await?;
        return Ok((schema, Usage { plugin: Some(stats), ..usage }));
    }
    let [input] = step.inputs.as_slice() else {
        return Err(RunError::Streaming {
            step: step.name.to_string(),
            plugin: spec.name.clone(),
            inputs: names.len(),
        });
    };
    let lakehouse_error = |source| RunError::Lakehouse { step: step.name.to_string(), source };
    let Input::Batches { schema, mut batches, bytes: bytes_in } = lakehouse
        .read_input(&input.catalog, &input.table, step.replaced_partition(), Take::InOrder)
        .await
        .map_err(lakehouse_error)?
    else {
        unreachable!("opened without files allowed");
    };
    // Read ahead on a task of its own, a few batches at most.
    let (sender, mut receiver) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        while let Some(item) = batches.next().await {
            let failed = item.is_err();
            if sender.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    // The plugin is told the schema of the batches it will get.
    let first = receiver.recv().await.transpose().map_err(lakehouse_error)?;
    let input_schema = first.as_ref().map_or(schema, |b| b.schema());
    let mut failed = None;
    let mut rows_in = 0u64;
    let (declared, streamed) = {
        let mut rest = std::iter::from_fn(|| match receiver.blocking_recv()? {
            Ok(batch) => Some(batch),
            Err(error) => {
                failed = Some(error);
                None
            }
        });
        let mut input = first.into_iter().chain(&mut rest).inspect(|b| rows_in += b.num_rows() as u64);
        tokio::task::block_in_place(|| {
            in_plugin_span(step, spec, "transform", || {
                plugin.transform_with_stats(step.name.as_str(), config, &input_schema, &mut input, &mut |batch| {
                    progress::add_rows(batch.num_rows() as u64);
                    sink(batch)
                })
            })
        })?
    };
    // A read that failed ended the plugin's input early: nothing is committed.
    if let Some(error) = failed {
        return Err(lakehouse_error(error));
    }
    stats.merge(streamed);
    Ok((declared, Usage { rows_in, bytes_in, plugin: Some(stats), tests: Vec::new() }))
}
