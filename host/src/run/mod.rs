//! Drives a plan: each step reads its inputs, computes (plugin or DuckDB),
//! writes its table and commits one snapshot, once the steps it reads have
//! committed; independent steps compute at once (`schedule`, `driver`). A
//! failed step stops the run; steps already committed (or committing beside
//! it) stay committed, and nothing of the failed step becomes visible. SIGTERM/SIGINT stop the run the same way, at a safe point
//! (see `cancel`).

pub mod cancel;
pub mod data_tests;
mod driver;
mod guard;
pub mod input_columns;
pub mod model_check;
mod output;
mod plugins;
mod schedule;
mod singular_tests;
mod sink;
mod steps;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tracing::Instrument;

use crate::compute::{ComputeError, Setup};
use crate::exit::ExitCode;
use arrow_schema::SchemaRef;

use crate::lakehouse::{CommitInfo, CommitTags, Lakehouse, LakehouseError, Partitioning, WriteSpec};
use crate::observe::{Observers, RunInfo};
use crate::plan::model::data_tests::Severity;
use crate::plan::source::{SourceProblem, SourceRoots};
use crate::plan::{Action, Plan, Step};
use crate::sandbox::{Compiled, Compiler, PluginStats, Sandbox, SandboxError};
use cancel::{Cancel, Signal};
use output::StepOutput;
pub use plugins::PluginLoad;
use plugins::Plugins;
use sink::TableSink;

/// Per-run settings from the command line.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Recorded in every snapshot summary; generated when absent.
    pub run_id: Option<String>,
    /// Where compiled plugins are cached.
    pub component_cache: Option<PathBuf>,
    /// Where plugins are compiled: the binary compiles in a bounded child.
    pub compiler: Compiler,
    /// Checked at every safe point; `main` routes SIGTERM/SIGINT to it.
    pub cancel: Cancel,
    /// The partition of this run (`--partition`), for reporting; the plan's
    /// steps already carry it (`Plan::for_partition`).
    pub partition: Option<String>,
    /// The orchestrator's run that launched this one, for lineage.
    pub parent: Option<crate::observe::ParentRun>,
}

/// What one step did.
#[derive(Clone, Debug)]
pub struct StepReport {
    pub step: String,
    pub table: String,
    pub rows: u64,
    /// Data files and their total size, as committed.
    pub files: usize,
    pub bytes: u64,
    /// Ingest: the rows the plugin parsed from the source. Otherwise: the
    /// rows of every input table read.
    pub rows_in: u64,
    /// Ingest: the size of the source file. Otherwise: the size of the data
    /// files of the input tables' snapshots read.
    pub bytes_in: u64,
    /// What the step's plugin calls cost; `None` for a SQL model.
    pub plugin: Option<PluginStats>,
    /// How the step's plugin was made ready in this run (before the first
    /// step, not counted in `duration`); `None` for a SQL model.
    pub plugin_compiled: Option<Compiled>,
    pub snapshot_id: i64,
    /// When the step started, from the start of the first step: steps that
    /// compute at once overlap (`schedule`).
    pub started: Duration,
    pub duration: Duration,
    /// The outcome of each dbt data test on the step's output.
    pub tests: Vec<data_tests::TestOutcome>,
    /// This run id had already committed the step, in an earlier attempt (the
    /// step was skipped) or in a twin attempt that committed first (the step
    /// computed but did not commit). `snapshot_id`, `rows`, `files` and
    /// `bytes` are then that snapshot's, from its summary.
    pub already_committed: bool,
    /// Nothing was committed because the table's current snapshot was
    /// computed from newer inputs than the step read (a concurrent run
    /// committed it); `already_committed` is set too, with that snapshot's
    /// figures.
    pub superseded: bool,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub run_id: String,
    pub steps: Vec<StepReport>,
    /// The run's plugins, compiled or taken from the cache before the first step.
    pub plugins: Vec<PluginLoad>,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Plugin(#[from] SandboxError),
    #[error("step `{step}`: {source}")]
    PluginLoad {
        step: String,
        #[source]
        source: SandboxError,
    },
    #[error(
        "step `{step}`: plugin `{plugin}` at {path} changed since the plan was made (its sha256 differs); \
         run again to use the new file"
    )]
    PluginChanged { step: String, plugin: String, path: String },
    #[error(
        "step `{step}`: plugin `{plugin}` streams batches, so the step needs exactly one input, not {inputs}; \
         list one table in `inputs`"
    )]
    Streaming { step: String, plugin: String, inputs: usize },
    #[error("step `{step}`: cannot read source `{path}`: {source}")]
    Source {
        step: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "step `{step}`: source `{source_path}` has no data rows, so `{table}` is left as it was; if the source may \
         be empty, set `allow_empty: true` on the step"
    )]
    EmptySource { step: String, table: String, source_path: String },
    #[error(
        "step `{step}`: the output has {rows_out} rows where {what} `{table}` has {replaced}, more than \
         `max_shrink` ({max_shrink}) allows it to lose, so nothing is committed; if the input is right, raise \
         `max_shrink` on the step (`1` turns the check off)"
    )]
    Shrink { step: String, table: String, what: String, replaced: u64, rows_out: u64, max_shrink: f64 },
    #[error(
        "step `{step}`: data tests failed on `{table}`, so nothing is committed: {failed}; fix the data or the \
         model (a test with `severity: warn` only reports)"
    )]
    DataTests { step: String, table: String, failed: String, outcomes: Vec<data_tests::TestOutcome> },
    #[error("step `{step}`: {problem}; {}", problem.help())]
    SourceRefused {
        step: String,
        #[source]
        problem: SourceProblem,
    },
    #[error("step `{step}`: {source}")]
    Lakehouse {
        step: String,
        #[source]
        source: LakehouseError,
    },
    #[error("step `{step}`: {what}: {source}")]
    Compute {
        step: String,
        /// The SQL file or plugin, or the phase that failed.
        what: String,
        #[source]
        source: ComputeError,
    },
    /// The SQL a plugin returned was refused or failed in DuckDB: the
    /// plugin's fault (exit 3). `message` is escaped: it quotes the SQL.
    #[error("step `{step}`: the SQL from plugin `{plugin}` {message}")]
    PluginSql { step: String, plugin: String, message: String },
    /// A SQL model is not one read-only query: fix the file (exit 2).
    #[error("step `{step}`: SQL `{file}` cannot run: {message}")]
    ModelRefused { step: String, file: String, message: String },
    /// A SQL model does not bind against its inputs' columns, checked just
    /// before its step reads them: fix the model (exit 2).
    #[error("step `{step}`: SQL model does not bind: {message}")]
    ModelUnbound { step: String, message: String },
    #[error("cannot start the run: {0}")]
    Setup(String),
    /// A test's failpoint (`FLOE_FAILPOINT`, debug builds) failed the step.
    #[error("step `{step}`: {source}")]
    Failpoint {
        step: String,
        #[source]
        source: std::io::Error,
    },
    /// The platform's settings cannot be used (refused credentials, an
    /// unsupported combination): fixing the configuration is the remedy.
    #[error("{0}")]
    Config(String),
    #[error("{}", cancelled_message(*signal, abandoned, committed))]
    Cancelled {
        signal: Signal,
        /// The steps that were computing and were dropped before their commit.
        abandoned: Vec<String>,
        /// The steps committed by this run, in order.
        committed: Vec<String>,
    },
}

fn cancelled_message(signal: Signal, abandoned: &[String], committed: &[String]) -> String {
    let name = signal.name();
    let mut text = match committed.last() {
        Some(last) => format!("stopped by {name} after step `{last}`"),
        None => format!("stopped by {name} before any step committed"),
    };
    match abandoned {
        [] => {}
        [step] => text.push_str(&format!(" (step `{step}` was abandoned before its commit: nothing of it is visible)")),
        steps => text.push_str(&format!(
            " (steps `{}` were abandoned before their commit: nothing of them is visible)",
            steps.join("`, `")
        )),
    }
    let list = if committed.is_empty() { "none".to_string() } else { committed.join(", ") };
    text.push_str(&format!("; steps committed: {list}; rerun to finish"));
    text
}

impl RunError {
    /// Why the catalogs could not be opened: the configuration (refused
    /// credentials or warehouse, an unsupported setup: exit 2), or anything
    /// else (exit 1).
    pub fn opening(error: LakehouseError) -> RunError {
        match error {
            LakehouseError::NotYetSupported { .. } | LakehouseError::Refused { .. } => {
                RunError::Config(error.to_string())
            }
            error => RunError::Setup(error.to_string()),
        }
    }

    /// The step that failed, when the error belongs to one.
    pub fn step(&self) -> Option<&str> {
        match self {
            RunError::Plugin(error) => error.step(),
            RunError::PluginLoad { step, .. }
            | RunError::PluginChanged { step, .. }
            | RunError::Streaming { step, .. }
            | RunError::Source { step, .. }
            | RunError::EmptySource { step, .. }
            | RunError::Shrink { step, .. }
            | RunError::DataTests { step, .. }
            | RunError::SourceRefused { step, .. }
            | RunError::Lakehouse { step, .. }
            | RunError::Compute { step, .. }
            | RunError::PluginSql { step, .. }
            | RunError::ModelRefused { step, .. }
            | RunError::ModelUnbound { step, .. }
            | RunError::Failpoint { step, .. } => Some(step),
            RunError::Cancelled { abandoned, .. } => abandoned.first().map(String::as_str),
            RunError::Setup(_) | RunError::Config(_) => None,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunError::Plugin(e) | RunError::PluginLoad { source: e, .. } if e.is_contract_violation() => {
                ExitCode::PluginViolation
            }
            RunError::PluginSql { .. } => ExitCode::PluginViolation,
            RunError::PluginChanged { .. } | RunError::ModelRefused { .. } | RunError::ModelUnbound { .. } => {
                ExitCode::Config
            }
            // `--partition` names no partition of the table: a usage error.
            RunError::Lakehouse { source: LakehouseError::PartitionValue { .. }, .. } => ExitCode::Config,
            // Column names the step must change.
            RunError::Lakehouse { source: LakehouseError::OutputColumns { .. }, .. } => ExitCode::Config,
            // A corrupt file fails the same way on every attempt.
            RunError::Lakehouse { source: LakehouseError::Corrupt { .. }, .. } => ExitCode::DataRefused,
            // So do rows scattered over too many partitions.
            RunError::Lakehouse { source: LakehouseError::ScatteredPartitions { .. }, .. } => ExitCode::DataRefused,
            RunError::Config(_) => ExitCode::Config,
            RunError::EmptySource { .. } | RunError::Shrink { .. } | RunError::DataTests { .. } => {
                ExitCode::DataRefused
            }
            // The plugin says the data or its config is wrong: the same input
            // fails the same way on every attempt.
            RunError::Plugin(SandboxError::InvalidInput { .. }) => ExitCode::DataRefused,
            RunError::Plugin(SandboxError::InvalidConfig { .. }) => ExitCode::Config,
            // Outside the allowed roots, a secret, not a file: no retry helps.
            RunError::SourceRefused { problem, .. } if !problem.is_transient() => ExitCode::Config,
            RunError::Cancelled { signal, .. } => signal.exit_code(),
            _ => ExitCode::StepFailed,
        }
    }
}

/// Loads every plugin of `plan` (compiled, or from `options.component_cache`)
/// and checks each step's config against the schema its plugin declares:
/// what `validate` checks beyond the files. Reads no data, opens no catalog.
pub fn check_plugins(plan: &Plan, options: &RunOptions) -> Result<Vec<PluginLoad>, RunError> {
    prepare_plugins(plan, options).map(|(_, loads)| loads)
}

/// The run's sandbox with every plugin of `plan` loaded and its steps'
/// configs checked ([`Plugins::prepare`]).
fn prepare_plugins(plan: &Plan, options: &RunOptions) -> Result<(Plugins, Vec<PluginLoad>), RunError> {
    let sandbox =
        Sandbox::with_compiler(plan.limits.clone(), options.component_cache.clone(), options.compiler.clone())
            .map_err(|e| RunError::Setup(e.to_string()))?;
    let mut plugins = Plugins::new(sandbox);
    let loads = plugins.prepare(&plan.steps)?;
    Ok((plugins, loads))
}

/// A fresh run id, for a run that was given none (`run-` and 32 hex digits).
pub fn new_run_id() -> String {
    format!("run-{}", uuid::Uuid::new_v4().simple())
}

/// Runs every step of `plan` in order.
pub fn run(plan: &Plan, options: &RunOptions, observers: &mut Observers) -> Result<RunReport, RunError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Setup(format!("cannot start the async runtime: {e}")))?;
    let run = RunInfo {
        run_id: options.run_id.clone().unwrap_or_else(new_run_id),
        pipeline: plan.pipeline.clone(),
        started_at: std::time::SystemTime::now(),
        partition: options.partition.clone(),
        parent: options.parent.clone(),
    };
    // The root span of the run's trace (observe/traces.rs); every step, read,
    // plugin call and commit is a descendant.
    let span = tracing::info_span!(
        crate::observe::traces::RUN,
        run_id = %run.run_id,
        pipeline = %run.pipeline,
        steps = plan.steps.len() as i64,
        committed = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    observers.run_started(&run, plan);
    let result = runtime.block_on(run_async(plan, options, &run, observers).instrument(span.clone()));
    match &result {
        Ok(report) => span.record("committed", report.steps.len() as i64),
        Err(error) => crate::observe::traces::fail(&span, &error),
    };
    observers.run_finished(&run, result.as_ref());
    result
}

async fn run_async(
    plan: &Plan,
    options: &RunOptions,
    run: &RunInfo,
    observers: &mut Observers,
) -> Result<RunReport, RunError> {
    let run_id = run.run_id.clone();
    tracing::info!(run_id = %run_id, pipeline = %plan.pipeline, steps = plan.steps.len(), "Starting the run.");
    // Plugins first: one that does not load, or a config it would refuse,
    // fails the run before a catalog is opened or anything is read.
    let (plugins, loads) = prepare_plugins(plan, options)?;
    let used: BTreeSet<(String, String)> = plan.steps.iter().map(|s| (s.catalog.clone(), s.storage.clone())).collect();
    let lakehouse = Lakehouse::open(&plan.catalogs, &plan.storage, used).await.map_err(RunError::opening)?;
    let external = input_columns::external_inputs(&lakehouse, plan).await?;
    let checked = check_models(plan, &external)?;
    // DuckDB spills under the state directory unless told otherwise: its own
    // default (`.tmp` in the working directory) is read-only in most pods.
    let mut compute = Setup {
        properties: plan.compute.clone(),
        variables: Vec::new(),
        scratch: Some(plan.state_dir.join("duckdb-out")),
    };
    compute.properties.temp_directory.get_or_insert_with(|| plan.state_dir.join("duckdb-tmp").display().to_string());
    // SQL can narrow inputs that are not partitioned like its table itself:
    // `WHERE CAST(order_ts AS DATE) = getvariable('partition')::DATE`.
    if let Some(partition) = &options.partition {
        compute.variables.push(("partition", partition.clone()));
    }
    // Each step that computes in DuckDB gets a database of its own; this one
    // proves the settings before the first step, and says what budget the
    // steps that compute at once share (`schedule`).
    let budget = compute.budget().map_err(|e| RunError::Setup(e.to_string()))?;
    let shared = driver::Shared {
        plan,
        lakehouse: &lakehouse,
        plugins: &plugins,
        options,
        checked: &checked,
        compute: &compute,
        budget,
        run_id: &run_id,
    };
    // The steps run on threads of their own (`driver`); this worker of the
    // runtime waits for them meanwhile.
    let reports = tokio::task::block_in_place(|| driver::drive(&shared, run, observers))?;
    maintain_after_run(&lakehouse, plan, &reports).await;
    Ok(RunReport { run_id, steps: reports, plugins: loads })
}

/// Every SQL model parsed, and bound where its inputs' columns are known
/// (`model_check`), before the first step reads anything: a broken model
/// fails the run with exit 2 and nothing committed. Returns which bound.
fn check_models(plan: &Plan, external: &input_columns::Columns) -> Result<model_check::Checked, RunError> {
    if !plan.steps.iter().any(|s| matches!(s.action, Action::Sql { .. })) {
        return Ok(Default::default());
    }
    let checked = tokio::task::block_in_place(|| model_check::check(plan, external))
        .map_err(|problems| RunError::Config(problems.join("\n")))?;
    tracing::debug!(parsed = checked.parsed, bound = checked.bound.len(), "Checked the SQL models.");
    Ok(checked)
}

/// A model that was not bound at the start, because it reads a table that
/// an earlier step of this run writes with a plugin, is bound now against
/// the columns that step committed: a wrong column fails the step here
/// (exit 2), before it reads any data.
async fn bind_before_step(lakehouse: &Lakehouse, step: &Step) -> Result<(), RunError> {
    let Action::Sql { query, incremental, .. } = &step.action else { return Ok(()) };
    let lakehouse_error = |source| RunError::Lakehouse { step: step.name.to_string(), source };
    let read = steps::incremental_read(lakehouse, step, incremental.as_deref()).await.map_err(lakehouse_error)?;
    let (reading, query) = match &read {
        Some((reading_itself, incremental)) => (reading_itself, *incremental),
        None => (step, query.as_str()),
    };
    let mut inputs = Vec::with_capacity(reading.inputs.len());
    for input in &reading.inputs {
        // A table with no snapshot fails the step's own read, with its own error.
        let Some(schema) = lakehouse.current_schema(&input.catalog, &input.table).await.map_err(lakehouse_error)?
        else {
            return Ok(());
        };
        inputs.push((input.layer.as_str(), input.table.name.as_str(), schema));
    }
    tokio::task::block_in_place(|| model_check::bind_step(step, query, &inputs))
        .map_err(|message| RunError::ModelUnbound { step: step.name.to_string(), message })
}

/// The tables this run committed whose layer asks for it (`maintenance:
/// {after_run: true}`) are maintained now, one by one. The run's data is
/// committed: a maintenance that fails is a warning, and `floe-host
/// maintain` can do it later.
async fn maintain_after_run(lakehouse: &Lakehouse, plan: &Plan, reports: &[StepReport]) {
    for step in plan.steps.iter().filter(|s| s.maintenance.after_run) {
        if !reports.iter().any(|r| r.step == step.name.as_str() && !r.already_committed) {
            continue;
        }
        match lakehouse.maintain(&step.catalog, &step.target, &step.maintenance, false).await {
            Ok(Some(done)) => tracing::info!(step = %step.name, table = %step.target, expired = done.expired.len(),
                files_deleted = done.files_deleted, bytes_deleted = done.bytes_deleted,
                orphans_deleted = done.orphans_deleted, files_compacted = done.compaction.files_replaced,
                manifests = done.manifests_after, "Maintained the table after the run."),
            Ok(None) => {}
            Err(error) => tracing::warn!(step = %step.name, table = %step.target, %error,
                "Cannot maintain the table after the run; its data is committed, and `floe-host maintain` can \
                 do it later."),
        }
    }
}

/// Computes one step and commits its table, unless this run id already
/// committed it (exactly once: see `lakehouse::history`).
async fn run_step(
    lakehouse: &Lakehouse,
    compute: &Setup,
    plugins: &Plugins,
    sources: &SourceRoots,
    step: &Step,
    tags: &CommitTags,
    cancel: &Cancel,
) -> Result<(CommitInfo, SchemaRef, steps::Usage), RunError> {
    let lakehouse_error = |source| RunError::Lakehouse { step: step.name.to_string(), source };
    if let Some((info, schema)) =
        lakehouse.committed_step(&step.catalog, &step.target, tags).await.map_err(lakehouse_error)?
    {
        tracing::info!(step = %step.name, table = %step.target, run_id = %tags.run_id, snapshot_id = info.snapshot_id,
            rows = info.rows, "Skipping the step: this run id already committed it, in an earlier attempt.");
        return Ok((info, schema, steps::Usage::default()));
    }
    // Before any input is read: what the step reads is at least this new.
    let tags = &CommitTags { inputs: lakehouse.input_versions(step).await.map_err(lakehouse_error)?, ..tags.clone() };
    let spec = WriteSpec {
        mode: step.mode,
        merge_keys: &step.merge_keys,
        schema_evolution: step.schema_evolution,
        partitioning: Partitioning {
            fields: &step.partition_by,
            value: step.replaced_partition().map(|(_, value)| value),
        },
    };
    // The output streams into data files as it is produced (see `sink`);
    // dbt's data tests see every batch on its way there.
    let singular_db = singular_tests::database(compute, step)?;
    let singular = singular_db.as_ref().map(|db| singular_tests::Collector::new(db, step));
    let mut output = StepOutput::new(
        TableSink::new(lakehouse, step, spec, tags),
        data_tests::Checks::new(&step.data_tests),
        singular,
    );
    let produced = match &step.action {
        Action::Ingest { plugin, source, source_display, config } => {
            steps::ingest(plugins, sources, step, plugin, source, source_display, config, &mut |b| output.push(b))
        }
        Action::Sql { file, query, incremental, .. } => {
            match steps::incremental_read(lakehouse, step, incremental.as_deref()).await {
                Ok(Some((reading_itself, query))) => {
                    steps::model(lakehouse, compute, &reading_itself, file, query, tags, &mut output).await
                }
                Ok(None) => steps::model(lakehouse, compute, step, file, query, tags, &mut output).await,
                Err(error) => Err(lakehouse_error(error)),
            }
        }
        Action::Wasm { plugin, config } => {
            steps::wasm(lakehouse, compute, plugins, step, plugin, config, &mut |b| output.push(b)).await
        }
    };
    let StepOutput { sink, mut checks, singular, rows: rows_out, test_problem } = output;
    // A step that fails before its commit deletes the data files it wrote
    // (best effort: `sink.failure`, `Written::discard`).
    if let Some(problem) = test_problem {
        sink.failure().await;
        return Err(RunError::Config(format!("step `{}`: {problem}", step.name)));
    }
    let (schema, mut usage) = match produced {
        Ok(output) => output,
        // A step stopped by a refused batch failed because the write did.
        Err(error) => return Err(sink.failure().await.map_or(error, lakehouse_error)),
    };
    let written = sink.finish().await.map_err(lakehouse_error)?;
    let verdict = async {
        // The sink checked the columns of the first batch; an output with no
        // batch is checked here.
        crate::sandbox::check_names(&schema).map_err(|message| {
            lakehouse_error(LakehouseError::OutputColumns { table: step.target.to_string(), message })
        })?;
        checks
            .check_references(lakehouse)
            .await
            .map_err(|problem| RunError::Config(format!("step `{}`: {problem}", step.name)))?;
        let mut tests = checks.finish();
        if let Some(singular) = singular {
            tests.extend(singular.judge(lakehouse, &schema).await?);
        }
        let tests = judge(step, tests)?;
        guard::check(lakehouse, step, rows_out).await?;
        // Safe point: the step computed and its data files are written, but
        // nothing is committed. Past this point a signal waits for the commit
        // (see `cancel`).
        // Tests hold every step here (`before-commit:sleep-<ms>`), to overlap
        // steps, or fail one (`before-commit-<step>:error`).
        crate::failpoint::hit("before-commit")
            .and_then(|()| crate::failpoint::hit(&format!("before-commit-{}", step.name)))
            .map_err(|source| RunError::Failpoint { step: step.name.to_string(), source })?;
        let committing = cancel.begin_commit().map_err(|signal| {
            tracing::info!(step = %step.name, signal = signal.name(), "Abandoned the step before its commit.");
            RunError::Cancelled { signal, abandoned: vec![step.name.to_string()], committed: Vec::new() }
        })?;
        Ok((tests, committing))
    }
    .await;
    let (tests, _committing) = match verdict {
        Ok(verdict) => verdict,
        Err(error) => {
            written.discard().await;
            return Err(error);
        }
    };
    usage.tests = tests;
    let info = written.commit(lakehouse, step, &schema, spec, tags).await.map_err(lakehouse_error)?;
    Ok((info, schema, usage))
}

/// The data tests' verdict: a failed `severity: error` test fails the step
/// (exit 4, nothing committed); a failed `warn` test is logged. Returns every
/// outcome, for the summary.
fn judge(step: &Step, outcomes: Vec<data_tests::TestOutcome>) -> Result<Vec<data_tests::TestOutcome>, RunError> {
    let describe = |o: &data_tests::TestOutcome| {
        let examples = if o.examples.is_empty() { String::new() } else { format!(" (e.g. {})", o.examples.join(", ")) };
        format!("{}: {} failing rows{examples}", o.test, o.failures)
    };
    let mut failed = Vec::new();
    for outcome in outcomes.iter().filter(|o| !o.passed()) {
        match outcome.severity {
            Severity::Error => failed.push(describe(outcome)),
            Severity::Warn => tracing::warn!(step = %step.name, table = %step.target, test = %outcome.test,
                failures = outcome.failures, "A data test with severity warn failed: {}.", describe(outcome)),
        }
    }
    if failed.is_empty() {
        return Ok(outcomes);
    }
    Err(RunError::DataTests {
        step: step.name.to_string(),
        table: step.target.to_string(),
        failed: failed.join("; "),
        outcomes,
    })
}

/// The end-of-run table: step, table, rows, snapshot id, duration, and a
/// note on steps this run id had already committed; then the plugins'
/// compile times, which no step's duration includes.
pub fn summary_table(report: &RunReport) -> String {
    let mut out = format!("run {}\n", report.run_id);
    out.push_str(&format!("{:<24} {:<32} {:>10} {:>20} {:>10}\n", "step", "table", "rows", "snapshot", "duration"));
    for step in &report.steps {
        let note = match (step.superseded, step.already_committed) {
            (true, _) => "  superseded: the table holds a result from newer inputs",
            (false, true) => "  already committed by this run id",
            (false, false) => "",
        };
        out.push_str(&format!(
            "{:<24} {:<32} {:>10} {:>20} {:>9.2}s{note}\n",
            step.step,
            step.table,
            step.rows,
            step.snapshot_id,
            step.duration.as_secs_f64()
        ));
    }
    if !report.plugins.is_empty() {
        let loads: Vec<String> = report
            .plugins
            .iter()
            .map(|load| {
                let how = if load.compiled.from_cache { "from the cache in" } else { "compiled in" };
                format!("{} {how} {:.2}s", load.plugin, load.compiled.elapsed.as_secs_f64())
            })
            .collect();
        out.push_str(&format!("plugins: {}\n", loads.join(", ")));
    }
    out
}
