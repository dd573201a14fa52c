//! Observers of a run: everything that reports what the host does (Dagster
//! Pipes messages, OpenLineage events, traces, run summaries) hooks in here
//! instead of into the driver. The driver calls every observer at each event,
//! in order; an observer must never fail or stall the run, so the hooks
//! return nothing and implementations handle their own errors (log and go on).

mod http_post;
pub mod lineage;
pub mod pipes;
pub mod progress;
pub mod summary;
pub mod traces;

/// RFC 3339 UTC timestamps with milliseconds, as lineage events and JSON logs write them.
pub use lineage::rfc3339;

use std::time::SystemTime;

use arrow_schema::SchemaRef;

use crate::plan::{Plan, Step};
use crate::run::{RunError, RunReport, StepReport};

/// The run as observers see it.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub run_id: String,
    pub pipeline: String,
    pub started_at: SystemTime,
    /// The partition the run replaces (`--partition`), if any.
    pub partition: Option<String>,
    /// The orchestrator's run that launched this one (Dagster's), if known.
    pub parent: Option<ParentRun>,
}

/// A run of another system that this run belongs to, as OpenLineage's
/// parent run facet names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentRun {
    pub namespace: String,
    pub job: String,
    /// A UUID (Dagster's run ids are).
    pub run_id: String,
}

/// Receives the events of a run. Every method has an empty default.
pub trait Observer: Send {
    /// Before the first step.
    fn run_started(&mut self, _run: &RunInfo, _plan: &Plan) {}
    /// A step starts computing.
    fn step_started(&mut self, _run: &RunInfo, _step: &Step) {}
    /// A step's snapshot is committed; `schema` is what it wrote.
    fn step_committed(&mut self, _run: &RunInfo, _step: &Step, _report: &StepReport, _schema: &SchemaRef) {}
    /// A step failed; nothing of it was committed.
    fn step_failed(&mut self, _run: &RunInfo, _step: &Step, _error: &RunError) {}
    /// The run ended, either way. Flush here.
    fn run_finished(&mut self, _run: &RunInfo, _result: Result<&RunReport, &RunError>) {}
}

/// Calls every observer in turn.
#[derive(Default)]
pub struct Observers(pub Vec<Box<dyn Observer>>);

impl Observers {
    pub fn run_started(&mut self, run: &RunInfo, plan: &Plan) {
        self.0.iter_mut().for_each(|o| o.run_started(run, plan));
    }

    pub fn step_started(&mut self, run: &RunInfo, step: &Step) {
        self.0.iter_mut().for_each(|o| o.step_started(run, step));
    }

    pub fn step_committed(&mut self, run: &RunInfo, step: &Step, report: &StepReport, schema: &SchemaRef) {
        self.0.iter_mut().for_each(|o| o.step_committed(run, step, report, schema));
    }

    pub fn step_failed(&mut self, run: &RunInfo, step: &Step, error: &RunError) {
        self.0.iter_mut().for_each(|o| o.step_failed(run, step, error));
    }

    pub fn run_finished(&mut self, run: &RunInfo, result: Result<&RunReport, &RunError>) {
        self.0.iter_mut().for_each(|o| o.run_finished(run, result));
    }
}
