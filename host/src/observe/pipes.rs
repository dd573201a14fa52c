//! Dagster Pipes (protocol "0.1"): when Dagster launches floe-host as an
//! external process, it passes two environment variables, each base64 of
//! zlib-compressed JSON:
//!
//! - `DAGSTER_PIPES_CONTEXT`: `{"path": FILE}` (a JSON file) or `{"data": {...}}`,
//!   the context: the selected `asset_keys`, the Dagster run id, partitions;
//! - `DAGSTER_PIPES_MESSAGES`: where messages go back: `{"path": FILE}` (one
//!   JSON line appended per message, `PipesSubprocessClient`) or
//!   `{"stdio": "stderr"}` (`PipesK8sClient`, which reads the pod's log).
//!
//! floe-host runs the steps whose target `layer.name` is a selected asset key
//! `layer/name`, and sends `opened`, a few `log`s, one
//! `report_asset_materialization` per committed table and `closed` (with the
//! error as the exception when the run fails). A context's `partition_key`
//! is the run's partition, as `--partition` would be. The field names follow the
//! `dagster-pipes` Python package (`_make_message`, `PipesContextData`,
//! `report_asset_materialization`, `PipesException`).

use std::io::{Read, Write};
use std::path::PathBuf;

use arrow_schema::SchemaRef;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Observer, RunInfo};
use crate::lakehouse::Maintained;
use crate::plan::model::data_tests::Severity;
use crate::plan::select::SelectError;
use crate::plan::{Plan, Step};
use crate::run::data_tests::TestOutcome;
use crate::run::{RunError, RunReport, StepReport};

pub const PROTOCOL_VERSION: &str = "0.1";
pub const CONTEXT_ENV: &str = "DAGSTER_PIPES_CONTEXT";
pub const MESSAGES_ENV: &str = "DAGSTER_PIPES_MESSAGES";

/// Why floe-host cannot take part in a Pipes session. All are configuration
/// errors (exit 2): retrying cannot help.
#[derive(Debug, thiserror::Error)]
pub enum PipesError {
    #[error("Dagster Pipes: {0} is set but {1} is not; Dagster sets both")]
    HalfSet(&'static str, &'static str),
    #[error("Dagster Pipes: {var} is not base64 of zlib-compressed JSON: {reason}")]
    Decode { var: &'static str, reason: String },
    #[error("Dagster Pipes: {var} has params {params}, but floe-host supports {supported}")]
    Params { var: &'static str, params: String, supported: &'static str },
    #[error("Dagster Pipes: cannot read the context file {path}: {reason}")]
    ContextFile { path: String, reason: String },
    #[error("Dagster Pipes: the context is malformed: {0}")]
    Context(String),
    #[error("Dagster Pipes: the context's extras are not what floe-host takes: {0}")]
    Extras(String),
    #[error(
        "Dagster Pipes: the context asks for {0}, but floe-host runs one partition at a time; \
         launch one run per partition (for example a backfill with a single-run policy per partition)"
    )]
    PartitionRange(String),
    #[error(
        "Dagster Pipes: the context's partition_key is `{dagster}` but --partition is `{cli}`; \
         pass one of them, or the same value"
    )]
    PartitionConflict { dagster: String, cli: String },
    #[error(
        "Dagster Pipes: asset key `{0}` is not `layer/table` (a floe-host table is two parts, like `gold/customer_totals`)"
    )]
    AssetKey(String),
    #[error("Dagster Pipes: the selected assets are not all produced here: {0}")]
    Select(#[from] SelectError),
}

/// Where messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Channel {
    /// Append one JSON line per message.
    File(PathBuf),
    Stderr,
    Stdout,
}

impl Channel {
    /// Writes one message, as one line in one write, so that messages from
    /// several threads (the run's, the log forwarder's) never interleave.
    pub(super) fn send(&self, method: &str, params: Value) -> std::io::Result<()> {
        let message = json!({"__dagster_pipes_version": PROTOCOL_VERSION, "method": method, "params": params});
        let line = format!("{message}\n");
        match self {
            Channel::File(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes())),
            Channel::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
            Channel::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
        }
    }
}

/// The parts of `PipesContextData` floe-host uses.
#[derive(Debug, Default, Deserialize)]
struct Context {
    #[serde(default)]
    asset_keys: Option<Vec<String>>,
    #[serde(default)]
    partition_key: Option<String>,
    #[serde(default)]
    partition_key_range: Option<Value>,
    #[serde(default)]
    partition_time_window: Option<Value>,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    extras: serde_json::Map<String, Value>,
    #[serde(default)]
    job_name: Option<String>,
}

/// The observer that reports a run to Dagster.
pub struct Pipes {
    channel: Channel,
    /// The selected asset keys; `None` when Dagster runs an op, not assets
    /// (then no materializations are reported, only logs).
    asset_keys: Option<Vec<String>>,
    dagster_run_id: Option<String>,
    /// The run id to use when none is given: `extras.floe_run_id` (the
    /// code location passes the root run of a re-execution there), else
    /// Dagster's run id, so a retried run skips what it committed.
    floe_run_id: Option<String>,
    dagster_job: Option<String>,
    /// The context's partition key, or else `--partition`.
    partition: Option<String>,
    opened: bool,
    closed: bool,
    /// Whether a write failure was already logged.
    warned: bool,
}

/// When Dagster launched this process: the observer, and `plan` narrowed to
/// the selected assets. Without the Pipes variables: `plan` as is and `None`.
/// `cli_partition` is `--partition`, which must agree with the context's
/// partition key. A context floe-host cannot honour is reported to Dagster
/// (`opened`, then `closed` with the error) as well as returned.
pub fn start(plan: Plan, cli_partition: Option<&str>) -> Result<(Plan, Option<Pipes>), PipesError> {
    let context_var = std::env::var(CONTEXT_ENV).ok();
    let messages_var = std::env::var(MESSAGES_ENV).ok();
    let (context_var, messages_var) = match (context_var, messages_var) {
        (None, None) => return Ok((plan, None)),
        (Some(_), None) => return Err(PipesError::HalfSet(CONTEXT_ENV, MESSAGES_ENV)),
        (None, Some(_)) => return Err(PipesError::HalfSet(MESSAGES_ENV, CONTEXT_ENV)),
        (Some(c), Some(m)) => (c, m),
    };
    let channel = channel(&decode_param(MESSAGES_ENV, &messages_var)?)?;
    // floe's own log lines go to Dagster's event log from here on.
    super::pipes_log::forward_to(channel.clone());
    let mut pipes = Pipes {
        channel,
        asset_keys: None,
        dagster_run_id: None,
        floe_run_id: None,
        dagster_job: None,
        partition: None,
        opened: false,
        closed: false,
        warned: false,
    };
    match context(&context_var).and_then(|context| pipes.apply(context, &plan, cli_partition)) {
        Ok(plan) => Ok((plan, Some(pipes))),
        Err(error) => {
            pipes.open();
            pipes.close(Some(&error.to_string()), "ConfigError");
            Err(error)
        }
    }
}

/// `base64(zlib(json))` → JSON, as `dagster_pipes.decode_param`.
fn decode_param(var: &'static str, text: &str) -> Result<Value, PipesError> {
    use base64::Engine;
    let fail = |reason: String| PipesError::Decode { var, reason };
    let compressed = base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| fail(e.to_string()))?;
    let mut json = String::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice()).read_to_string(&mut json).map_err(|e| fail(e.to_string()))?;
    serde_json::from_str(&json).map_err(|e| fail(e.to_string()))
}

/// The message channel from `DAGSTER_PIPES_MESSAGES` (`PipesDefaultMessageWriter`).
fn channel(params: &Value) -> Result<Channel, PipesError> {
    let unsupported = || PipesError::Params {
        var: MESSAGES_ENV,
        params: params.to_string(),
        supported: r#"{"path": FILE} or {"stdio": "stderr"|"stdout"}"#,
    };
    if let Some(path) = params.get("path") {
        return path.as_str().map(|p| Channel::File(PathBuf::from(p))).ok_or_else(unsupported);
    }
    // `buffered_stdio` only asks the writer to hold messages until the end;
    // writing them at once is equally valid for the reader.
    match params.get("stdio").or_else(|| params.get("buffered_stdio")).and_then(Value::as_str) {
        Some("stderr") => Ok(Channel::Stderr),
        Some("stdout") => Ok(Channel::Stdout),
        _ => Err(unsupported()),
    }
}

/// The context from `DAGSTER_PIPES_CONTEXT` (`PipesDefaultContextLoader`).
fn context(var: &str) -> Result<Context, PipesError> {
    let params = decode_param(CONTEXT_ENV, var)?;
    let data = if let Some(path) = params.get("path") {
        let path = path.as_str().ok_or_else(|| PipesError::Params {
            var: CONTEXT_ENV,
            params: params.to_string(),
            supported: r#"{"path": FILE} or {"data": {...}}"#,
        })?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| PipesError::ContextFile { path: path.to_string(), reason: e.to_string() })?;
        serde_json::from_str(&text)
            .map_err(|e| PipesError::ContextFile { path: path.to_string(), reason: format!("not JSON: {e}") })?
    } else if let Some(data) = params.get("data") {
        data.clone()
    } else {
        return Err(PipesError::Params {
            var: CONTEXT_ENV,
            params: params.to_string(),
            supported: r#"{"path": FILE} or {"data": {...}}"#,
        });
    };
    if !data.is_object() {
        return Err(PipesError::Context(format!("expected a JSON object, got {data}")));
    }
    serde_json::from_value(data).map_err(|e| PipesError::Context(e.to_string()))
}

/// `gold/customer_totals` → `gold.customer_totals`.
fn table_of(asset_key: &str) -> Result<String, PipesError> {
    match asset_key.split('/').collect::<Vec<_>>().as_slice() {
        [layer, name] if !layer.is_empty() && !name.is_empty() && !asset_key.contains('\\') => {
            Ok(format!("{layer}.{name}"))
        }
        _ => Err(PipesError::AssetKey(asset_key.to_string())),
    }
}

/// `gold.customer_totals` → `gold/customer_totals`.
fn asset_key_of(step: &Step) -> String {
    format!("{}/{}", step.target.namespace, step.target.name)
}

impl Pipes {
    /// The partition of the run: the context's partition key, or else `--partition`.
    pub fn partition(&self) -> Option<&str> {
        self.partition.as_deref()
    }

    /// Tells Dagster that the run cannot start (a configuration or usage
    /// error found after the context was read).
    /// The run id Dagster asks for (see the field); `--run-id` wins over it.
    pub fn floe_run_id(&self) -> Option<&str> {
        self.floe_run_id.as_deref()
    }

    /// Dagster's run, as the parent of this one in lineage (namespace `dagster`).
    pub fn parent_run(&self) -> Option<super::ParentRun> {
        Some(super::ParentRun {
            namespace: "dagster".to_string(),
            job: self.dagster_job.clone().unwrap_or_else(|| "__ASSET_JOB".to_string()),
            run_id: self.dagster_run_id.clone()?,
        })
    }

    pub fn refuse(mut self, message: &str) {
        self.open();
        self.close(Some(message), "ConfigError");
    }

    /// Checks the context and narrows the plan to the selected assets.
    fn apply(&mut self, context: Context, plan: &Plan, cli_partition: Option<&str>) -> Result<Plan, PipesError> {
        self.dagster_run_id = context.run_id.clone();
        self.dagster_job = context.job_name.clone();
        self.floe_run_id = match context.extras.get("floe_run_id") {
            Some(Value::String(id)) if !id.trim().is_empty() => Some(id.clone()),
            Some(other) => {
                return Err(PipesError::Extras(format!("`floe_run_id` must be a non-empty string, not {other}")));
            }
            None => context.run_id.clone(),
        };
        // A single-partition run also carries a range (that one key) and, for
        // time partitions, a window: the key says it all.
        let partition = match (&context.partition_key, &context.partition_key_range, &context.partition_time_window) {
            (Some(key), _, _) => Some(key.clone()),
            (None, Some(range), _) => return Err(PipesError::PartitionRange(format!("partition range {range}"))),
            (None, None, Some(window)) => return Err(PipesError::PartitionRange(format!("time window {window}"))),
            (None, None, None) => None,
        };
        if let (Some(dagster), Some(cli)) = (&partition, cli_partition)
            && dagster != cli
        {
            return Err(PipesError::PartitionConflict { dagster: dagster.clone(), cli: cli.to_string() });
        }
        self.partition = partition.or_else(|| cli_partition.map(str::to_string));
        let Some(keys) = context.asset_keys else {
            return Ok(plan.clone());
        };
        let tables = keys.iter().map(|k| table_of(k)).collect::<Result<Vec<_>, _>>()?;
        let selected = plan.select(&tables)?;
        self.asset_keys = Some(keys);
        Ok(selected)
    }

    fn send(&mut self, method: &str, params: Value) {
        if let Err(error) = self.channel.send(method, params) {
            if !self.warned {
                self.warned = true;
                tracing::warn!(%error, channel = ?self.channel, "Cannot send Dagster Pipes messages; the run goes on.");
            }
        }
    }

    fn open(&mut self) {
        if !self.opened {
            self.opened = true;
            // `PipesDefaultMessageWriter.get_opened_payload()`: no extras.
            self.send("opened", json!({"extras": {}}));
        }
    }

    /// The dbt data tests checked on a step's output, as Dagster asset
    /// checks (examples/dagster declares them from `plan --json`).
    fn report_checks(&mut self, key: &str, outcomes: &[TestOutcome]) {
        for outcome in outcomes {
            let severity = match outcome.severity {
                Severity::Error => "ERROR",
                Severity::Warn => "WARN",
            };
            let metadata = json!({
                "failing_rows": {"raw_value": outcome.failures, "type": "int"},
                "examples": {"raw_value": outcome.examples.join(", "), "type": "text"},
            });
            self.send(
                "report_asset_check",
                json!({"asset_key": key, "check_name": check_name(&outcome.test), "passed": outcome.passed(),
                       "severity": severity, "metadata": metadata}),
            );
        }
    }

    fn log(&mut self, level: &str, message: String) {
        self.send("log", json!({"message": message, "level": level}));
    }

    /// `closed`, with `PipesException` fields when `error` is given.
    fn close(&mut self, error: Option<&str>, name: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        let params = match error {
            None => json!({}),
            Some(message) => json!({"exception": {
                "message": message,
                "stack": [],
                "name": name,
                "cause": null,
                "context": null,
            }}),
        };
        self.send("closed", params);
    }
}

impl Observer for Pipes {
    fn run_started(&mut self, run: &RunInfo, plan: &Plan) {
        self.open();
        let steps: Vec<String> = plan.steps.iter().map(|s| s.target.to_string()).collect();
        let mut dagster = self.dagster_run_id.as_deref().map(|id| format!(" (Dagster run {id})")).unwrap_or_default();
        if let Some(partition) = &run.partition {
            dagster.push_str(&format!(", partition `{partition}`"));
        }
        self.log(
            "INFO",
            format!(
                "floe-host run {} of pipeline `{}`{dagster}: {} steps: {}",
                run.run_id,
                run.pipeline,
                steps.len(),
                steps.join(", ")
            ),
        );
    }

    fn step_committed(&mut self, run: &RunInfo, step: &Step, report: &StepReport, schema: &SchemaRef) {
        let key = asset_key_of(step);
        if !self.asset_keys.as_ref().is_some_and(|keys| keys.contains(&key)) {
            // Dagster runs an op, not these assets: a log line is all it can take.
            let verb = match (report.superseded, report.already_committed) {
                (true, _) => "superseded by a result from newer inputs:",
                (false, true) => "already committed by this run id",
                (false, false) => "committed",
            };
            self.log("INFO", format!("{verb} {}: {} rows, snapshot {}", report.table, report.rows, report.snapshot_id));
            return;
        }
        let mut metadata = json!({
            "dagster/row_count": {"raw_value": report.rows, "type": "int"},
            "table": {"raw_value": report.table, "type": "text"},
            "snapshot_id": {"raw_value": report.snapshot_id, "type": "int"},
            "files": {"raw_value": report.files, "type": "int"},
            "bytes": {"raw_value": report.bytes, "type": "int"},
            "rows_in": {"raw_value": report.rows_in, "type": "int"},
            "bytes_in": {"raw_value": report.bytes_in, "type": "int"},
            "duration_ms": {"raw_value": report.duration.as_millis() as u64, "type": "int"},
            "floe_run_id": {"raw_value": run.run_id, "type": "text"},
            "floe_already_committed": {"raw_value": report.already_committed, "type": "bool"},
            "floe_superseded": {"raw_value": report.superseded, "type": "bool"},
            "dagster/table_name": {"raw_value": format!("{}.{}", step.catalog, report.table), "type": "text"},
            "dagster/column_schema": {"raw_value": column_schema(schema), "type": "table_schema"},
        });
        // Dagster records the run's partition with the materialization; the
        // metadata says which partition of the table was replaced.
        if let (Some(partition), Some(fields)) = (step.replaced_partition().map(|(_, v)| v), metadata.as_object_mut()) {
            fields.insert("partition".into(), json!({"raw_value": partition, "type": "text"}));
        }
        // Plugin steps only: Dagster metadata values cannot be null.
        if let (Some(plugin), Some(fields)) = (report.plugin, metadata.as_object_mut()) {
            let cpu_ms = plugin.cpu_time.as_micros() as f64 / 1000.0;
            fields.insert("plugin_cpu_ms".into(), json!({"raw_value": cpu_ms, "type": "float"}));
            let peak = plugin.peak_memory_bytes;
            fields.insert("plugin_peak_memory_bytes".into(), json!({"raw_value": peak, "type": "int"}));
            fields.insert("plugin_calls".into(), json!({"raw_value": plugin.calls, "type": "int"}));
        }
        // Compiled before the first step, not part of `duration_ms`.
        if let (Some(compiled), Some(fields)) = (report.plugin_compiled, metadata.as_object_mut()) {
            let ms = compiled.elapsed.as_millis() as u64;
            fields.insert("plugin_compile_ms".into(), json!({"raw_value": ms, "type": "int"}));
            fields.insert("plugin_from_cache".into(), json!({"raw_value": compiled.from_cache, "type": "bool"}));
        }
        self.send(
            "report_asset_materialization",
            json!({"asset_key": key, "metadata": metadata, "data_version": null}),
        );
        self.report_checks(&key, &report.tests);
    }

    fn step_failed(&mut self, _run: &RunInfo, step: &Step, error: &RunError) {
        // A failed data test failed the step: Dagster shows which, on the asset.
        let key = asset_key_of(step);
        if let RunError::DataTests { outcomes, .. } = error
            && self.asset_keys.as_ref().is_some_and(|keys| keys.contains(&key))
        {
            self.report_checks(&key, outcomes);
        }
        self.log(
            "ERROR",
            format!("step `{}` ({}) failed, nothing of it was committed: {error}", step.name, step.target),
        );
    }

    fn maintenance_started(&mut self, run: &RunInfo, steps: &[&Step], dry_run: bool) {
        self.open();
        let tables: Vec<String> = steps.iter().map(|s| s.target.to_string()).collect();
        let dry = if dry_run { " (dry run: nothing is changed)" } else { "" };
        self.log(
            "INFO",
            format!(
                "floe-host maintain {} of pipeline `{}`{dry}: {} tables: {}",
                run.run_id,
                run.pipeline,
                tables.len(),
                tables.join(", ")
            ),
        );
    }

    /// A log line for people, and the figures as a custom message
    /// (`PipesSession.get_custom_messages()` in Dagster): maintenance changes
    /// no row, so it is no materialization.
    fn table_maintained(&mut self, run: &RunInfo, step: &Step, m: &Maintained) {
        self.log(
            "INFO",
            format!(
                "maintained {}: {} snapshots expired, {} files deleted ({} bytes), {} small files compacted into {}, \
                 {} manifests (from {}), {} orphans deleted",
                step.target,
                m.expired.len(),
                m.files_deleted,
                m.bytes_deleted,
                m.compaction.files_replaced,
                m.compaction.files_written,
                m.manifests_after,
                m.manifests_before,
                m.orphans_deleted
            ),
        );
        let payload = json!({
            "floe_maintenance": m,
            "asset_key": asset_key_of(step),
            "floe_run_id": run.run_id,
        });
        self.send("report_custom_message", json!({ "payload": payload }));
    }

    fn maintenance_finished(&mut self, run: &RunInfo, result: Result<&[Maintained], &RunError>) {
        self.open();
        match result {
            Ok(done) => {
                self.log("INFO", format!("floe-host maintain {} maintained {} tables", run.run_id, done.len()));
                self.close(None, "");
            }
            Err(error) => self.close(Some(&error.to_string()), &format!("{:?}", error.exit_code())),
        }
    }

    fn run_finished(&mut self, run: &RunInfo, result: Result<&RunReport, &RunError>) {
        self.open();
        match result {
            Ok(report) => {
                let rows: u64 = report.steps.iter().map(|s| s.rows).sum();
                self.log(
                    "INFO",
                    format!("floe-host run {} committed {} tables ({rows} rows)", run.run_id, report.steps.len()),
                );
                self.close(None, "");
            }
            Err(error) => self.close(Some(&error.to_string()), &format!("{:?}", error.exit_code())),
        }
    }
}

/// A table's columns as Dagster's `TableSchema` (Pipes' `table_schema`
/// metadata), with Iceberg type names.
/// A data test's name as a Dagster check name (letters, digits and `_`):
/// `unique(order_id)` is `unique_order_id`, as examples/dagster names it.
pub fn check_name(test: &str) -> String {
    let name: String = test.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    name.trim_end_matches('_').to_string()
}

fn column_schema(schema: &SchemaRef) -> Value {
    let columns: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| {
            json!({
                "name": f.name(),
                "type": super::iceberg_type_name(f.data_type()),
                "constraints": {"nullable": f.is_nullable(), "unique": false, "other": []},
            })
        })
        .collect();
    json!({ "columns": columns })
}

impl Drop for Pipes {
    /// A run that never reached `run_finished` (a panic) still closes the
    /// session, so that Dagster does not wait for messages that never come.
    fn drop(&mut self) {
        if self.opened && !self.closed {
            self.close(Some("floe-host stopped before the run finished"), "Aborted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &Value) -> String {
        use base64::Engine;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(value.to_string().as_bytes()).unwrap();
        base64::engine::general_purpose::STANDARD.encode(z.finish().unwrap())
    }

    #[test]
    fn decodes_params_like_dagster_pipes() {
        let value = json!({"path": "/tmp/x"});
        assert_eq!(decode_param(MESSAGES_ENV, &encode(&value)).unwrap(), value);
        assert!(matches!(decode_param(MESSAGES_ENV, "not base64!"), Err(PipesError::Decode { .. })));
    }

    #[test]
    fn picks_the_channel() {
        assert_eq!(channel(&json!({"path": "/m"})).unwrap(), Channel::File("/m".into()));
        assert_eq!(channel(&json!({"stdio": "stderr"})).unwrap(), Channel::Stderr);
        assert_eq!(channel(&json!({"buffered_stdio": "stdout"})).unwrap(), Channel::Stdout);
        assert!(channel(&json!({"bucket": "b", "key_prefix": "p"})).is_err());
        assert!(channel(&json!({"stdio": "stdin"})).is_err());
    }

    #[test]
    fn reads_an_inline_context() {
        let context = context(&encode(&json!({"data": {
            "asset_keys": ["gold/customer_totals"], "partition_key": null, "run_id": "r1",
            "extras": {}, "retry_number": 0, "job_name": "j"
        }})))
        .unwrap();
        assert_eq!(context.asset_keys, Some(vec!["gold/customer_totals".to_string()]));
        assert_eq!(context.run_id.as_deref(), Some("r1"));
        assert!(matches!(super::context(&encode(&json!({"data": {"asset_keys": "x"}}))), Err(PipesError::Context(_))));
        assert!(matches!(
            super::context(&encode(&json!({"path": "/no/such/file"}))),
            Err(PipesError::ContextFile { .. })
        ));
    }

    #[test]
    fn maps_asset_keys_to_tables() {
        assert_eq!(table_of("gold/customer_totals").unwrap(), "gold.customer_totals");
        assert!(table_of("customer_totals").is_err());
        assert!(table_of("lake/gold/customer_totals").is_err());
    }
}
