//! `run --summary-json PATH`: a JSON file describing the run, written once at
//! the end (atomically: a temporary file in the same directory, then a rename),
//! whether the run succeeded or failed.
//!
//! ```json
//! {"run_id": "...", "pipeline": "customer-analytics", "partition": null, "status": "succeeded",
//!  "exit_code": 0, "error": null, "failed_step": null,
//!  "started_at_unix_ms": 1700000000000, "duration_ms": 4210,
//!  "steps": [{"step": "raw_customers", "table": "bronze.raw_customers",
//!             "rows_in": 1055, "bytes_in": 98304,
//!             "rows_out": 1055, "files": 1, "bytes": 40321,
//!             "started_ms": 12, "duration_ms": 310, "snapshot_id": 123, "already_committed": false, "superseded": false,
//!             "plugin_cpu_ms": 41.7, "plugin_peak_memory_bytes": 2228224,
//!             "plugin_calls": 4, "plugin_compile_ms": 2410, "plugin_from_cache": false,
//!             "tests": [{"test": "unique(order_id)", "severity": "error", "failures": 0, "examples": []}]}],
//!  "plugins": [{"plugin": "csv-ingest", "sha256": "...", "compile_ms": 2410, "from_cache": false}]}
//! ```
//!
//! `steps` lists the committed steps, in plan order; on failure those
//! committed before it or beside it (they stay committed). `started_ms` is
//! when a step started, counted from the start of the first step: steps that
//! compute at once (`concurrent_steps`) overlap. `partition` is the run's
//! `--partition` (or Dagster partition key), null without one.
//! `already_committed` marks a step that this run id had committed before (a
//! rerun skips it): its `snapshot_id`, `rows_out`, `files` and `bytes` are
//! that snapshot's. `superseded` marks a whole-table step that did not
//! commit because the table already held a result from newer inputs
//! (`already_committed` is then true too, with that snapshot's figures).
//!
//! `rows_in`/`bytes_in`: for an ingest, the rows the plugin parsed and the
//! source file's size; otherwise the rows of the input tables read and the
//! size of their snapshots' data files. `plugin_*` are null for SQL models:
//! `plugin_cpu_ms` is the CPU time the host thread spent in plugin code
//! (milliseconds, to the microsecond), `plugin_peak_memory_bytes` the largest total
//! linear memory of any one plugin instance, `plugin_calls` the calls into
//! the plugin (each instantiation and each export called).
//!
//! Plugins are compiled (or taken from the compile cache) before the first
//! step, so no `duration_ms` of a step includes compiling: `plugins` lists
//! each plugin of the run with its `compile_ms` (wall time, from the cache or
//! not), and a plugin step repeats its plugin's as `plugin_compile_ms` and
//! `plugin_from_cache` (null for SQL models). On a failed run, `plugins` is
//! empty.
//!
//! `maintain --summary-json PATH` writes the same way, with `"command":
//! "maintain"`, `dry_run`, `failed_table` and `tables` (the objects of
//! `maintain --json`) instead of `steps` and `plugins`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow_schema::SchemaRef;
use serde_json::{Value, json};

use super::{Observer, RunInfo};
use crate::lakehouse::Maintained;
use crate::plan::Step;
use crate::run::{RunError, RunReport, StepReport};

/// Writes the summary file at the end of the run.
pub struct SummaryJson {
    path: PathBuf,
    /// The plan's steps, in order: committed steps are listed in this order,
    /// whatever order steps that computed at once ended in.
    order: Vec<String>,
    steps: Vec<StepReport>,
    failed_step: Option<String>,
    dry_run: bool,
}

impl SummaryJson {
    pub fn new(path: PathBuf) -> Self {
        SummaryJson { path, order: Vec::new(), steps: Vec::new(), failed_step: None, dry_run: false }
    }

    fn write(&self, document: &Value) {
        let text = serde_json::to_string_pretty(document).expect("a summary serializes") + "\n";
        if let Err(error) = write_atomically(&self.path, &text) {
            // An observer never fails the run; say it loudly instead.
            tracing::error!(%error, path = %self.path.display(), "Cannot write the run summary.");
            eprintln!("warning: cannot write the run summary {}: {error}", self.path.display());
        }
    }
}

/// The summary document of a maintenance.
pub fn maintenance_summary(run: &RunInfo, dry_run: bool, result: Result<&[Maintained], &RunError>) -> Value {
    let (status, exit_code, error, failed) = match result {
        Ok(_) => ("succeeded", 0, None, None),
        Err(error) => ("failed", error.exit_code().code(), Some(error.to_string()), error.step()),
    };
    let duration_ms = SystemTime::now().duration_since(run.started_at).map(|d| d.as_millis() as u64).unwrap_or(0);
    json!({
        "command": "maintain",
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "dry_run": dry_run,
        "status": status,
        "exit_code": exit_code,
        "error": error,
        "failed_table": failed,
        "started_at_unix_ms": run.started_at.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
        "duration_ms": duration_ms,
        "tables": result.unwrap_or_default(),
    })
}

/// The summary document.
pub fn summary(
    run: &RunInfo,
    steps: &[StepReport],
    failed_step: Option<&str>,
    result: Result<&RunReport, &RunError>,
) -> Value {
    let (status, exit_code, error) = match result {
        Ok(_) => ("succeeded", 0, None),
        Err(error) => ("failed", error.exit_code().code(), Some(error.to_string())),
    };
    let unix_ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let duration_ms = SystemTime::now().duration_since(run.started_at).map(|d| d.as_millis() as u64).unwrap_or(0);
    let steps: Vec<Value> = steps
        .iter()
        .map(|s| {
            json!({
                "step": s.step,
                "table": s.table,
                "rows_in": s.rows_in,
                "bytes_in": s.bytes_in,
                "rows_out": s.rows,
                "files": s.files,
                "bytes": s.bytes,
                "started_ms": s.started.as_millis() as u64,
                "duration_ms": s.duration.as_millis() as u64,
                "snapshot_id": s.snapshot_id,
                "already_committed": s.already_committed,
                "superseded": s.superseded,
                "plugin_cpu_ms": s.plugin.map(|p| p.cpu_time.as_micros() as f64 / 1000.0),
                "plugin_peak_memory_bytes": s.plugin.map(|p| p.peak_memory_bytes),
                "plugin_calls": s.plugin.map(|p| p.calls),
                "plugin_compile_ms": s.plugin_compiled.map(|c| c.elapsed.as_millis() as u64),
                "plugin_from_cache": s.plugin_compiled.map(|c| c.from_cache),
                "tests": s.tests,
            })
        })
        .collect();
    let plugins: Vec<Value> = result
        .map(|report| {
            report
                .plugins
                .iter()
                .map(|load| {
                    json!({
                        "plugin": load.plugin,
                        "sha256": load.sha256,
                        "compile_ms": load.compiled.elapsed.as_millis() as u64,
                        "from_cache": load.compiled.from_cache,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "partition": run.partition,
        "status": status,
        "exit_code": exit_code,
        "error": error,
        "failed_step": failed_step,
        "started_at_unix_ms": unix_ms(run.started_at),
        "duration_ms": duration_ms,
        "steps": steps,
        "plugins": plugins,
    })
}

/// Writes `text` to `path` through a temporary file in the same directory, so
/// that readers see the old file or the whole new one.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| std::io::Error::other("the path has no file name"))?;
    let temp = path.with_file_name(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let written = std::fs::write(&temp, text).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

impl Observer for SummaryJson {
    fn run_started(&mut self, _run: &RunInfo, plan: &crate::plan::Plan) {
        self.order = plan.steps.iter().map(|s| s.name.to_string()).collect();
    }

    fn step_committed(&mut self, _run: &RunInfo, _step: &Step, report: &StepReport, _schema: &SchemaRef) {
        self.steps.push(report.clone());
    }

    fn step_failed(&mut self, _run: &RunInfo, step: &Step, _error: &RunError) {
        self.failed_step.get_or_insert_with(|| step.name.to_string());
    }

    fn run_finished(&mut self, run: &RunInfo, result: Result<&RunReport, &RunError>) {
        let position = |name: &str| self.order.iter().position(|s| s == name).unwrap_or(usize::MAX);
        self.steps.sort_by_key(|s| position(&s.step));
        // The step of the run's error, when several failed beside each other.
        let failed = result.err().and_then(RunError::step).or(self.failed_step.as_deref());
        self.write(&summary(run, &self.steps, failed, result));
    }

    fn maintenance_started(&mut self, _run: &RunInfo, _steps: &[&Step], dry_run: bool) {
        self.dry_run = dry_run;
    }

    fn maintenance_finished(&mut self, run: &RunInfo, result: Result<&[Maintained], &RunError>) {
        self.write(&maintenance_summary(run, self.dry_run, result));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, "{\"new\": true}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"new\": true}\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file is left");
        assert!(write_atomically(&dir.path().join("missing/summary.json"), "x").is_err());
    }
}
