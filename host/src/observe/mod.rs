//! Observers of a run (and of a `maintain`): everything that reports what
//! the host does (Dagster Pipes messages, OpenLineage events, traces, run
//! summaries) hooks in here instead of into the driver. The driver calls
//! every observer at each event, in order; an observer must never fail or
//! stall the run, so the hooks return nothing and implementations handle
//! their own errors (log and go on).

mod http_post;
pub mod lineage;
pub mod pipes;
pub mod pipes_log;
pub mod progress;
pub mod summary;
pub mod traces;

/// RFC 3339 UTC timestamps with milliseconds, as lineage events and JSON logs write them.
pub use lineage::rfc3339;

use std::time::SystemTime;

use arrow_schema::{DataType, SchemaRef};

use crate::lakehouse::Maintained;
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

    /// `floe-host maintain` starts on `steps`' tables (`run` is its own run
    /// id and pipeline). A maintenance sends these three, never the above.
    fn maintenance_started(&mut self, _run: &RunInfo, _steps: &[&Step], _dry_run: bool) {}
    /// One table is maintained (or, in a dry run, measured).
    fn table_maintained(&mut self, _run: &RunInfo, _step: &Step, _report: &Maintained) {}
    /// The maintenance ended, either way. Flush here.
    fn maintenance_finished(&mut self, _run: &RunInfo, _result: Result<&[Maintained], &RunError>) {}
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

    pub fn maintenance_started(&mut self, run: &RunInfo, steps: &[&Step], dry_run: bool) {
        self.0.iter_mut().for_each(|o| o.maintenance_started(run, steps, dry_run));
    }

    pub fn table_maintained(&mut self, run: &RunInfo, step: &Step, report: &Maintained) {
        self.0.iter_mut().for_each(|o| o.table_maintained(run, step, report));
    }

    pub fn maintenance_finished(&mut self, run: &RunInfo, result: Result<&[Maintained], &RunError>) {
        self.0.iter_mut().for_each(|o| o.maintenance_finished(run, result));
    }
}

/// An Arrow type by its Iceberg name (`long`, `decimal(12,2)`,
/// `timestamptz`), as lineage facets and Dagster column schemas show it.
pub(crate) fn iceberg_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => "int".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "long".into(),
        DataType::Float16 | DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".into(),
        DataType::FixedSizeBinary(n) => format!("fixed[{n}]"),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("list<{}>", iceberg_type_name(f.data_type()))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("map<{},{}>", iceberg_type_name(kv[0].data_type()), iceberg_type_name(kv[1].data_type()))
            }
            other => format!("map<{other}>"),
        },
        DataType::Struct(_) => "struct".into(),
        other => other.to_string().to_lowercase(),
    }
}
