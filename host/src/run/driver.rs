//! Runs a plan's steps as the schedule allows (`schedule`): each step on a
//! thread of its own, driving its async work on the run's runtime, while
//! this thread starts steps, hears how each ended and tells the observers
//! (logs, progress line, lineage, Pipes) as it happens.
//!
//! A step that fails closes the schedule: no step starts after it, and the
//! steps already computing beside it finish as they would alone (commit, or
//! fail on their own). Their work is independent of the failed step's, and a
//! commit is all or nothing either way. The run then fails with the first
//! failure; every other one is logged and reported to the observers. A
//! signal closes the schedule the same way, and each running step stops at
//! its last safe point before its commit (`cancel`).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use arrow_schema::SchemaRef;
use tracing::Instrument;

use super::model_check::Checked;
use super::plugins::Plugins;
use super::schedule::Schedule;
use super::{RunError, RunOptions, StepReport};
use crate::compute::{Budget, Setup};
use crate::lakehouse::{CommitTags, Lakehouse};
use crate::observe::{Observers, RunInfo};
use crate::plan::{Action, Plan, Step};

/// What every step of the run shares.
pub(super) struct Shared<'a> {
    pub plan: &'a Plan,
    pub lakehouse: &'a Lakehouse,
    pub plugins: &'a Plugins,
    pub options: &'a RunOptions,
    pub checked: &'a Checked,
    pub compute: &'a Setup,
    pub budget: Budget,
    pub run_id: &'a str,
}

/// How a step's thread ended.
type Ended = (usize, std::thread::Result<Result<(StepReport, SchemaRef), RunError>>);

/// Runs the steps; returns the committed ones in plan order, or the run's
/// first failure (its `committed` filled in for a cancelled run).
pub(super) fn drive(
    shared: &Shared<'_>,
    run: &RunInfo,
    observers: &mut Observers,
) -> Result<Vec<StepReport>, RunError> {
    let steps = &shared.plan.steps;
    let mut schedule = Schedule::new(steps, shared.plan.concurrent_steps);
    let handle = tokio::runtime::Handle::current();
    // The subscriber of this thread (the global one, or a test's) is the
    // step threads' too.
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let run_started = Instant::now();
    let mut committed: Vec<(usize, StepReport)> = Vec::new();
    let mut failure: Option<RunError> = None;
    let mut abandoned: Vec<usize> = Vec::new();
    let mut panic = None;
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel::<Ended>();
        loop {
            // Safe point: no step starts once a signal came.
            if shared.options.cancel.requested().is_some() {
                schedule.close();
            }
            for (index, shares) in schedule.start() {
                let step = &steps[index];
                tracing::info!(step = %step.name, table = %step.target, "Running step.");
                observers.step_started(run, step);
                crate::observe::progress::step_started(step.name.as_str(), source_size(&step.action));
                let setup = step_setup(shared, step, shares, schedule.shares());
                if schedule.shares() > 1 {
                    tracing::debug!(step = %step.name, shares, of = schedule.shares(),
                        threads = setup.properties.threads, memory_limit = setup.properties.memory_limit.as_deref(),
                        "The step's share of DuckDB.");
                }
                // Created here, so that it is a child of the run's span.
                let span = step_span(step);
                let sender = sender.clone();
                let handle = handle.clone();
                let dispatch = dispatch.clone();
                let started = run_started.elapsed();
                let spawned =
                    std::thread::Builder::new().name(format!("step-{index}")).spawn_scoped(scope, move || {
                        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            tracing::dispatcher::with_default(&dispatch, || {
                                let work = execute(shared, step, &setup, started).instrument(span.clone());
                                let outcome = handle.block_on(work);
                                record_step_span(&span, &outcome);
                                // The step's own spill folder (`step_setup`), if DuckDB left it empty.
                                if setup.properties.temp_directory != shared.compute.properties.temp_directory
                                    && let Some(dir) = &setup.properties.temp_directory
                                {
                                    let _ = std::fs::remove_dir(dir);
                                }
                                outcome
                            })
                        }));
                        let _ = sender.send((index, outcome));
                    });
                if let Err(error) = spawned {
                    schedule.finished(index);
                    schedule.close();
                    crate::observe::progress::step_finished(step.name.as_str());
                    let error = RunError::Setup(format!("cannot start a thread for step `{}`: {error}", step.name));
                    observers.step_failed(run, step, &error);
                    failure.get_or_insert(error);
                }
            }
            if schedule.running() == 0 {
                break;
            }
            let (index, outcome) = receiver.recv().expect("the driver holds a sender");
            let step = &steps[index];
            schedule.finished(index);
            crate::observe::progress::step_finished(step.name.as_str());
            match outcome {
                Ok(Ok((report, schema))) => {
                    if !report.already_committed {
                        tracing::info!(step = %step.name, rows = report.rows, snapshot_id = report.snapshot_id,
                            "Committed step.");
                    }
                    observers.step_committed(run, step, &report, &schema);
                    committed.push((index, report));
                }
                Ok(Err(error)) => {
                    schedule.close();
                    observers.step_failed(run, step, &error);
                    if let RunError::Cancelled { .. } = error {
                        abandoned.push(index);
                        continue;
                    }
                    if failure.is_some() {
                        // The run fails with the first; this one still belongs in the log.
                        tracing::error!(step = %step.name, table = %step.target, error = %error,
                            "Step failed beside the step that fails the run.");
                    } else {
                        failure = Some(error);
                    }
                }
                Err(payload) => {
                    schedule.close();
                    panic.get_or_insert(payload);
                }
            }
        }
    });
    if let Some(payload) = panic {
        std::panic::resume_unwind(payload);
    }
    committed.sort_by_key(|(index, _)| *index);
    let reports: Vec<StepReport> = committed.into_iter().map(|(_, report)| report).collect();
    if let Some(error) = failure {
        return Err(error);
    }
    // A signal that came while the last steps committed stopped nothing.
    if let Some(signal) = shared.options.cancel.requested().filter(|_| reports.len() < steps.len()) {
        let committed = reports.iter().map(|r| r.step.clone()).collect();
        abandoned.sort_unstable();
        let abandoned = abandoned.into_iter().map(|i| steps[i].name.to_string()).collect();
        return Err(RunError::Cancelled { signal, abandoned, committed });
    }
    Ok(reports)
}

/// The DuckDB settings of a step with `shares` of `of` (`schedule`). One
/// step at a time: the profile's. Otherwise its share of the budget, or, for
/// a plugin step (no share), the plugin's memory budget for the SQL its
/// plugin may return; and a spill folder of its own, since databases that
/// spill to one folder at once overwrite each other's files.
fn step_setup(shared: &Shared<'_>, step: &Step, shares: usize, of: usize) -> Setup {
    if of <= 1 {
        return shared.compute.clone();
    }
    let setup = if shares > 0 {
        shared.compute.share(shared.budget, shares, of)
    } else {
        let memory_bytes = shared.budget.memory_bytes.min(shared.plan.limits.memory_bytes);
        shared.compute.limited(Budget { memory_bytes, ..shared.budget })
    };
    setup.spilling_apart(step.name.as_str())
}

/// One step: bound (if it could not be before the run), computed and
/// committed; its report.
async fn execute(
    shared: &Shared<'_>,
    step: &Step,
    compute: &Setup,
    started: Duration,
) -> Result<(StepReport, SchemaRef), RunError> {
    let clock = Instant::now();
    let tags = CommitTags {
        run_id: shared.run_id.to_string(),
        pipeline: shared.plan.pipeline.clone(),
        step: step.name.to_string(),
        partition: shared.options.partition.clone(),
        inputs: Vec::new(),
    };
    if !shared.checked.bound.contains(step.name.as_str()) {
        super::bind_before_step(shared.lakehouse, step).await?;
    }
    let (info, schema, usage) = super::run_step(
        shared.lakehouse,
        compute,
        shared.plugins,
        &shared.plan.sources,
        step,
        &tags,
        &shared.options.cancel,
    )
    .await?;
    let report = StepReport {
        step: step.name.to_string(),
        table: step.target.to_string(),
        rows: info.rows,
        files: info.files,
        bytes: info.bytes,
        rows_in: usage.rows_in,
        bytes_in: usage.bytes_in,
        plugin: usage.plugin,
        plugin_compiled: shared.plugins.compiled_for(step),
        tests: usage.tests,
        snapshot_id: info.snapshot_id,
        started,
        duration: clock.elapsed(),
        already_committed: info.already_committed,
        superseded: info.superseded,
    };
    Ok((report, schema))
}

/// The span of one step (observe/traces.rs), to be created where the run's
/// span is the current one.
fn step_span(step: &Step) -> tracing::Span {
    tracing::info_span!(
        crate::observe::traces::STEP,
        step = %step.name,
        table = %step.target,
        kind = action_kind(&step.action),
        rows = tracing::field::Empty,
        files = tracing::field::Empty,
        bytes = tracing::field::Empty,
        snapshot_id = tracing::field::Empty,
        already_committed = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    )
}

/// What a step did, on its span.
fn record_step_span(span: &tracing::Span, outcome: &Result<(StepReport, SchemaRef), RunError>) {
    match outcome {
        Ok((report, _)) => {
            span.record("rows", report.rows as i64)
                .record("files", report.files as i64)
                .record("bytes", report.bytes as i64)
                .record("snapshot_id", report.snapshot_id)
                .record("already_committed", report.already_committed);
        }
        Err(error) => {
            crate::observe::traces::fail(span, &error);
        }
    }
}

/// The size of an ingest step's source file: the total its progress bar fills.
fn source_size(action: &Action) -> Option<u64> {
    match action {
        Action::Ingest { source, .. } => std::fs::metadata(source).ok().map(|m| m.len()),
        _ => None,
    }
}

/// The step's kind, as a span attribute.
fn action_kind(action: &Action) -> &'static str {
    match action {
        Action::Ingest { .. } => "ingest",
        Action::Sql { .. } => "sql",
        Action::Wasm { .. } => "wasm",
    }
}
