//! OpenLineage (spec 2-0-2) run events for every step, and for the pipeline
//! run as their parent.
//!
//! - Jobs: namespace = `$OPENLINEAGE_NAMESPACE` or the pipeline name; the
//!   pipeline run is job `<pipeline>`, each step is job `<pipeline>.<step>`
//!   (the `{dag_id}.{task_id}` pattern of the naming spec), with a `parent`
//!   run facet pointing at the pipeline run. When Dagster launched the run,
//!   the pipeline run's parent is Dagster's run (namespace `dagster`, its job
//!   name), which is also the `root` of every step run.
//! - Runs: every process is a new run attempt with fresh UUIDv7 run ids,
//!   whatever its floe run id; the `floe_run` run facet carries that id
//!   (and the partition), so the attempts of one floe run can be joined.
//! - Events: pipeline START at `run_started`, step START at `step_started`,
//!   COMPLETE at `step_committed`, FAIL (with `errorMessage`) at
//!   `step_failed`, and pipeline COMPLETE or FAIL at `run_finished`: one
//!   START and one terminal event per run. `maintain` is run `<pipeline>.maintain`
//!   (START, then COMPLETE or FAIL), with one COMPLETE per table as job
//!   `<pipeline>.maintain.<step>`, the table as its input and output and
//!   what was done in a `floe_maintenance` run facet. A step that wrote nothing (its
//!   result was already committed by this floe run id, or superseded) still
//!   completes, with a `floe_step` facet saying so and no `outputStatistics`.
//! - Datasets (the naming spec has no Iceberg entry, so this follows its
//!   rule "namespace = the datasource, name = the path within it", and the
//!   Trino-style `catalog.schema.table` for names):
//!   - an Iceberg table in the embedded SQL catalog: namespace = the warehouse
//!     URI (`file:///…/warehouse`, `s3://bucket/prefix`), name = `ns.table`;
//!   - an Iceberg table in a REST catalog: namespace = the catalog URI, name =
//!     `warehouse.ns.table` (`ns.table` when no warehouse is configured);
//!   - an ingest source file: namespace `file`, name = its absolute path
//!     (the spec's "local file system" row).
//!   A table is named the same whether a step writes or reads it, so the
//!   graph joins.
//! - Facets: `processing_engine`, `parent`, `floe_run`, `floe_step` (run),
//!   `jobType` and `sql` (job), `dataSource`, `catalog` (the spec's
//!   CatalogDatasetFacet: framework `iceberg`, the catalog's type and name)
//!   and `schema` (datasets; the schema of outputs, from the committed Arrow
//!   schema), `outputStatistics` (rowCount, size, fileCount),
//!   `dataQualityAssertions` (the dbt data tests checked on the output),
//!   `errorMessage` on FAIL. The `floe_*` facets are described by JSON schemas in
//!   `schemas/lineage/`.
//! - Transports: HTTP when `observability.lineage` is on (to
//!   `lineage_endpoint`), or when `OPENLINEAGE_URL` is set (to that URL plus
//!   `OPENLINEAGE_ENDPOINT`, default `api/v1/lineage`), with
//!   `Authorization: Bearer $OPENLINEAGE_API_KEY` when that is set; a file
//!   with `OPENLINEAGE__TRANSPORT__TYPE=file` and
//!   `OPENLINEAGE__TRANSPORT__LOG_FILE_PATH` (or `FLOE_LINEAGE_FILE`); none
//!   at all with `OPENLINEAGE_DISABLED=true`. These are the OpenLineage
//!   clients' own variables.
//!
//! Delivery never fails or stalls the run: events go into a bounded queue
//! (events that do not fit are dropped and counted) and one background thread
//! POSTs them, each with a 2 s connect timeout, a 5 s deadline per request and
//! up to 3 attempts. After 2 events in a row fail every attempt, the endpoint
//! is given up on for the rest of the run. At `run_finished` the host waits
//! at most 5 s for the queue to drain, then logs what was not delivered and
//! goes on. So a dead collector costs a run at most those 5 s, and a slow one
//! never delays a step. `FLOE_LINEAGE_FILE` (debugging) appends every event
//! as one JSON line to a file as well, synchronously, even when `lineage` is off.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow_schema::{DataType, Field, SchemaRef};
use serde_json::{Value, json};
use uuid::Uuid;

use super::http_post::{Endpoint, PostError, Poster};
use super::{Observer, ParentRun, RunInfo};
use crate::lakehouse::Maintained;
use crate::plan::{Action, CatalogSpec, Plan, Step, TableRef};
use crate::run::{RunError, RunReport, StepReport};

/// The core schema every event claims.
pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// Environment variable: also append every event, one JSON line each, to this file.
pub const FILE_ENV: &str = "FLOE_LINEAGE_FILE";
/// Environment variable: the job namespace (the OpenLineage clients' own name for it).
pub const NAMESPACE_ENV: &str = "OPENLINEAGE_NAMESPACE";
/// The OpenLineage clients' transport variables (see the module docs).
pub const URL_ENV: &str = "OPENLINEAGE_URL";
pub const ENDPOINT_ENV: &str = "OPENLINEAGE_ENDPOINT";
pub const API_KEY_ENV: &str = "OPENLINEAGE_API_KEY";
pub const DISABLED_ENV: &str = "OPENLINEAGE_DISABLED";
const TRANSPORT_TYPE_ENV: &str = "OPENLINEAGE__TRANSPORT__TYPE";
const LOG_FILE_PATH_ENV: &str = "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH";

const FACET_SCHEMA: &str = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const FACET_DATASOURCE: &str =
    "https://openlineage.io/spec/facets/1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet";
const FACET_OUTPUT_STATISTICS: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";
const FACET_ERROR: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const FACET_PARENT: &str = "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet";
const FACET_ENGINE: &str =
    "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet";
const FACET_JOB_TYPE: &str = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
const FACET_DATA_QUALITY: &str = "https://openlineage.io/spec/facets/1-1-0/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet";
const FACET_SQL: &str = "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet";
const FACET_CATALOG: &str =
    "https://openlineage.io/spec/facets/1-1-0/CatalogDatasetFacet.json#/$defs/CatalogDatasetFacet";
/// floe-host's own facets, described in this repository's `schemas/lineage/`.
const FACET_FLOE_RUN: &str =
    concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/schemas/lineage/FloeRunFacet.json#/$defs/FloeRunFacet");
const FACET_FLOE_STEP: &str =
    concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/schemas/lineage/FloeStepFacet.json#/$defs/FloeStepFacet");
const FACET_FLOE_MAINTENANCE: &str = concat!(
    env!("CARGO_PKG_REPOSITORY"),
    "/blob/main/schemas/lineage/FloeMaintenanceFacet.json#/$defs/FloeMaintenanceFacet"
);

/// Delivery bounds (see the module docs).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPTS: u32 = 3;
const BACKOFF: [Duration; 2] = [Duration::from_millis(250), Duration::from_secs(1)];
const GIVE_UP_AFTER_FAILED_EVENTS: u32 = 2;
const FLUSH_DEADLINE: Duration = Duration::from_secs(5);
const QUEUE: usize = 1024;

/// The `producer` of every event and facet: floe-host at this version, at
/// the repository its Cargo.toml declares.
pub fn producer() -> String {
    format!("{}/tree/v{}", env!("CARGO_PKG_REPOSITORY").trim_end_matches('/'), env!("CARGO_PKG_VERSION"))
}

/// Emits OpenLineage events for a run.
pub struct LineageObserver {
    namespace: String,
    producer: String,
    catalogs: std::collections::BTreeMap<String, CatalogSpec>,
    pipeline_run: Option<Uuid>,
    /// The job of `pipeline_run` when it is not the pipeline's own: `<pipeline>.maintain`.
    parent_job: Option<String>,
    step_runs: HashMap<String, Uuid>,
    file: Option<(PathBuf, File)>,
    http: Option<HttpSender>,
}

impl LineageObserver {
    /// The observer the plan and environment ask for, if any (see the
    /// module docs for the variables).
    pub fn from_plan(plan: &Plan) -> Option<LineageObserver> {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if var(DISABLED_ENV).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return None;
        }
        let from_env = var(URL_ENV).map(|base| {
            let path = var(ENDPOINT_ENV).unwrap_or_else(|| "api/v1/lineage".to_string());
            format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
        });
        let http = match (plan.observability.lineage, plan.observability.lineage_endpoint.as_deref(), from_env) {
            (true, Some(endpoint), _) => Some(endpoint.to_string()),
            (_, _, Some(url)) => Some(url),
            (true, None, None) => {
                tracing::warn!(
                    "OpenLineage: `observability.lineage` is on but neither `lineage_endpoint` nor {URL_ENV} is set; \
                     no events are sent"
                );
                None
            }
            (false, _, None) => None,
        };
        let file = var(FILE_ENV).or_else(|| {
            var(TRANSPORT_TYPE_ENV).filter(|t| t.eq_ignore_ascii_case("file")).and_then(|_| {
                let path = var(LOG_FILE_PATH_ENV);
                if path.is_none() {
                    tracing::warn!(
                        "OpenLineage: {TRANSPORT_TYPE_ENV}=file needs {LOG_FILE_PATH_ENV}; no file is written"
                    );
                }
                path
            })
        });
        LineageObserver::new(plan, http.as_deref(), var(API_KEY_ENV), file.map(PathBuf::from), var(NAMESPACE_ENV))
    }

    /// An observer sending to `endpoint` (with `api_key` as a bearer token)
    /// and appending to `file`; `None` when it has neither.
    pub fn new(
        plan: &Plan,
        endpoint: Option<&str>,
        api_key: Option<String>,
        file: Option<PathBuf>,
        namespace: Option<String>,
    ) -> Option<LineageObserver> {
        let http = endpoint.and_then(|url| match Endpoint::parse(url) {
            Ok(endpoint) => Some(HttpSender::start(endpoint, api_key)),
            Err(error) => {
                tracing::error!("OpenLineage: lineage endpoint {error}; no events are sent");
                None
            }
        });
        let file = file.and_then(|path| match File::options().create(true).append(true).open(&path) {
            Ok(f) => Some((path, f)),
            Err(error) => {
                tracing::warn!("OpenLineage: cannot open {}: {error}", path.display());
                None
            }
        });
        if http.is_none() && file.is_none() {
            return None;
        }
        Some(LineageObserver {
            namespace: namespace.unwrap_or_else(|| plan.pipeline.clone()),
            producer: producer(),
            catalogs: plan.catalogs.clone(),
            pipeline_run: None,
            parent_job: None,
            step_runs: HashMap::new(),
            file,
            http,
        })
    }

    fn emit(&mut self, event: Value) {
        let line = event.to_string();
        if let Some((path, file)) = &mut self.file {
            if let Err(error) = writeln!(file, "{line}") {
                tracing::warn!("OpenLineage: cannot write to {}: {error}", path.display());
            }
        }
        if let Some(http) = &mut self.http {
            http.send(line);
        }
    }

    fn facet(&self, schema_url: &str, fields: Value) -> Value {
        let mut facet = json!({ "_producer": self.producer, "_schemaURL": schema_url });
        if let (Value::Object(facet), Value::Object(fields)) = (&mut facet, fields) {
            facet.extend(fields);
        }
        facet
    }

    fn event(
        &self,
        kind: &str,
        run_id: Uuid,
        run_facets: Value,
        job: Value,
        inputs: Vec<Value>,
        outputs: Vec<Value>,
    ) -> Value {
        json!({
            "eventType": kind,
            "eventTime": rfc3339(SystemTime::now()),
            "producer": self.producer,
            "schemaURL": SCHEMA_URL,
            "run": { "runId": run_id.to_string(), "facets": run_facets },
            "job": job,
            "inputs": inputs,
            "outputs": outputs,
        })
    }

    fn job(&self, name: String, job_type: &str, sql: Option<&str>) -> Value {
        let mut facets = serde_json::Map::new();
        facets.insert(
            "jobType".into(),
            self.facet(
                FACET_JOB_TYPE,
                json!({ "processingType": "BATCH", "integration": "FLOE", "jobType": job_type }),
            ),
        );
        if let Some(query) = sql {
            facets.insert("sql".into(), self.facet(FACET_SQL, json!({ "query": query, "dialect": "duckdb" })));
        }
        json!({ "namespace": self.namespace, "name": name, "facets": facets })
    }

    fn engine_facet(&self) -> Value {
        self.facet(FACET_ENGINE, json!({ "name": "floe-host", "version": env!("CARGO_PKG_VERSION") }))
    }

    fn step_run_facets(&self, run: &RunInfo) -> serde_json::Map<String, Value> {
        let mut facets = serde_json::Map::new();
        facets.insert("processing_engine".into(), self.engine_facet());
        if let Some(parent) = self.pipeline_run {
            let mut fields = json!({
                "run": { "runId": parent.to_string() },
                "job": { "namespace": self.namespace, "name": self.parent_job.as_deref().unwrap_or(&run.pipeline) },
            });
            // The root of the hierarchy: Dagster's run when it launched this one.
            if let Some(root) = dagster_parent(run) {
                fields["root"] = json!({
                    "run": { "runId": root.run_id },
                    "job": { "namespace": root.namespace, "name": root.job },
                });
            }
            facets.insert("parent".into(), self.facet(FACET_PARENT, fields));
        }
        facets
    }

    /// The pipeline run's facets: the engine, floe's run id, Dagster's run as the parent.
    fn pipeline_run_facets(&self, run: &RunInfo) -> serde_json::Map<String, Value> {
        let mut facets = serde_json::Map::new();
        facets.insert("processing_engine".into(), self.engine_facet());
        let mut floe = json!({ "runId": run.run_id, "pipeline": run.pipeline });
        if let Some(partition) = &run.partition {
            floe["partition"] = partition.as_str().into();
        }
        facets.insert("floe_run".into(), self.facet(FACET_FLOE_RUN, floe));
        if let Some(parent) = dagster_parent(run) {
            facets.insert(
                "parent".into(),
                self.facet(
                    FACET_PARENT,
                    json!({
                        "run": { "runId": parent.run_id },
                        "job": { "namespace": parent.namespace, "name": parent.job },
                    }),
                ),
            );
        }
        facets
    }

    /// A dataset by (namespace, name), with its `dataSource` facet.
    fn dataset(
        &self,
        (namespace, name, source_name): (String, String, String),
        mut facets: serde_json::Map<String, Value>,
    ) -> Value {
        let uri = if namespace == "file" { "file:///".to_string() } else { namespace.clone() };
        facets.insert("dataSource".into(), self.facet(FACET_DATASOURCE, json!({ "name": source_name, "uri": uri })));
        json!({ "namespace": namespace, "name": name, "facets": facets })
    }

    fn table_name(&self, catalog: &str, table: &TableRef) -> (String, String, String) {
        let (namespace, name) = table_dataset_name(self.catalogs.get(catalog), table);
        (namespace, name, catalog.to_string())
    }

    /// An Iceberg table as a dataset: its name, `dataSource` and `catalog` facets, plus `facets`.
    fn table(&self, catalog: &str, table: &TableRef, mut facets: serde_json::Map<String, Value>) -> Value {
        let fields = match self.catalogs.get(catalog) {
            Some(CatalogSpec::Sql { warehouse, .. }) => {
                json!({ "framework": "iceberg", "type": "sql", "name": catalog, "warehouseUri": location_uri(warehouse), "source": "floe-host" })
            }
            Some(CatalogSpec::Rest(rest)) => {
                let mut fields = json!({ "framework": "iceberg", "type": "rest", "name": catalog, "metadataUri": rest.uri, "source": "floe-host" });
                if let Some(warehouse) = rest.warehouse.as_deref().filter(|w| !w.is_empty()) {
                    fields["warehouseUri"] = warehouse.into();
                }
                fields
            }
            None => json!({ "framework": "iceberg", "type": "unknown", "name": catalog, "source": "floe-host" }),
        };
        facets.insert("catalog".into(), self.facet(FACET_CATALOG, fields));
        self.dataset(self.table_name(catalog, table), facets)
    }

    fn inputs(&self, step: &Step) -> Vec<Value> {
        let mut inputs: Vec<Value> = Vec::new();
        if let Action::Ingest { source, .. } = &step.action {
            inputs.push(self.dataset(("file".into(), file_dataset_name(source), "file".into()), Default::default()));
        }
        for input in &step.inputs {
            inputs.push(self.table(&input.catalog, &input.table, Default::default()));
        }
        inputs
    }

    fn step_job(&self, run: &RunInfo, step: &Step) -> Value {
        let sql = match &step.action {
            Action::Sql { query, .. } => Some(query.as_str()),
            _ => None,
        };
        self.job(format!("{}.{}", run.pipeline, step.name), "TASK", sql)
    }

    fn step_run(&mut self, step: &Step) -> Uuid {
        *self.step_runs.entry(step.name.to_string()).or_insert_with(Uuid::now_v7)
    }
}

impl Observer for LineageObserver {
    fn run_started(&mut self, run: &RunInfo, _plan: &Plan) {
        // A new attempt, a new run: a retry with the same floe run id is
        // joined to this one through the `floe_run` facet, not the runId.
        let run_id = Uuid::now_v7();
        self.pipeline_run = Some(run_id);
        let facets = Value::Object(self.pipeline_run_facets(run));
        let job = self.job(run.pipeline.clone(), "JOB", None);
        let event = self.event("START", run_id, facets, job, vec![], vec![]);
        self.emit(event);
    }

    fn step_started(&mut self, run: &RunInfo, step: &Step) {
        let run_id = self.step_run(step);
        let output = self.table(&step.catalog, &step.target, Default::default());
        let event = self.event(
            "START",
            run_id,
            Value::Object(self.step_run_facets(run)),
            self.step_job(run, step),
            self.inputs(step),
            vec![output],
        );
        self.emit(event);
    }

    fn step_committed(&mut self, run: &RunInfo, step: &Step, report: &StepReport, schema: &SchemaRef) {
        let run_id = self.step_run(step);
        let mut facets = serde_json::Map::new();
        facets.insert("schema".into(), self.facet(FACET_SCHEMA, json!({ "fields": schema_fields(schema.fields()) })));
        // The dbt data tests this run checked on the output (none when the
        // step was skipped): `success` says whether the test found failing
        // rows, whatever its severity.
        if !report.tests.is_empty() {
            let assertions: Vec<Value> = report
                .tests
                .iter()
                .map(|outcome| {
                    // `unique(order_id)`; a singular test is its name alone, on no column.
                    let (kind, column) = outcome.test.split_once('(').unwrap_or((outcome.test.as_str(), ""));
                    let mut assertion = json!({
                        "assertion": kind,
                        "success": outcome.passed(),
                        "severity": outcome.severity,
                        "name": outcome.test,
                        "actual": format!("{} failing rows", outcome.failures),
                        "expected": "0 failing rows",
                    });
                    if !column.is_empty() {
                        assertion["column"] = Value::from(column.trim_end_matches(')'));
                    }
                    assertion
                })
                .collect();
            facets.insert(
                "dataQualityAssertions".into(),
                self.facet(FACET_DATA_QUALITY, json!({ "assertions": assertions })),
            );
        }
        let mut output = self.table(&step.catalog, &step.target, facets);
        // Rows are reported only when this run wrote them.
        let outcome = match (report.superseded, report.already_committed) {
            (true, _) => "superseded",
            (false, true) => "already_committed",
            (false, false) => {
                output["outputFacets"] = json!({
                    "outputStatistics": self.facet(
                        FACET_OUTPUT_STATISTICS,
                        json!({ "rowCount": report.rows, "size": report.bytes, "fileCount": report.files }),
                    ),
                });
                "committed"
            }
        };
        let mut run_facets = self.step_run_facets(run);
        run_facets.insert(
            "floe_step".into(),
            self.facet(FACET_FLOE_STEP, json!({ "outcome": outcome, "snapshotId": report.snapshot_id.to_string() })),
        );
        let event = self.event(
            "COMPLETE",
            run_id,
            Value::Object(run_facets),
            self.step_job(run, step),
            self.inputs(step),
            vec![output],
        );
        self.emit(event);
    }

    fn step_failed(&mut self, run: &RunInfo, step: &Step, error: &RunError) {
        let run_id = self.step_run(step);
        let mut facets = self.step_run_facets(run);
        facets.insert("errorMessage".into(), self.error_facet(&error.to_string()));
        let output = self.table(&step.catalog, &step.target, Default::default());
        let event = self.event(
            "FAIL",
            run_id,
            Value::Object(facets),
            self.step_job(run, step),
            self.inputs(step),
            vec![output],
        );
        self.emit(event);
    }

    fn run_finished(&mut self, run: &RunInfo, result: Result<&RunReport, &RunError>) {
        self.finish(run, run.pipeline.clone(), result.err());
    }

    fn maintenance_started(&mut self, run: &RunInfo, _steps: &[&Step], _dry_run: bool) {
        let run_id = Uuid::now_v7();
        self.pipeline_run = Some(run_id);
        let name = format!("{}.maintain", run.pipeline);
        self.parent_job = Some(name.clone());
        let facets = Value::Object(self.pipeline_run_facets(run));
        let event = self.event("START", run_id, facets, self.job(name, "JOB", None), vec![], vec![]);
        self.emit(event);
    }

    /// One terminal event per table: job `<pipeline>.maintain.<step>`, its
    /// table as input and output, the figures in `floe_maintenance`.
    fn table_maintained(&mut self, run: &RunInfo, step: &Step, m: &Maintained) {
        let mut facets = self.step_run_facets(run);
        let figures = json!({
            "dryRun": m.dry_run,
            "snapshots": m.snapshots,
            "snapshotsExpired": m.expired.len(),
            "filesDeleted": m.files_deleted,
            "bytesDeleted": m.bytes_deleted,
            "orphansDeleted": m.orphans_deleted,
            "orphanBytesDeleted": m.orphan_bytes,
            "filesCompacted": m.compaction.files_replaced,
            "filesWritten": m.compaction.files_written,
            "manifestsBefore": m.manifests_before,
            "manifestsAfter": m.manifests_after,
        });
        facets.insert("floe_maintenance".into(), self.facet(FACET_FLOE_MAINTENANCE, figures));
        let job = self.job(format!("{}.maintain.{}", run.pipeline, step.name), "TASK", None);
        let table = self.table(&step.catalog, &step.target, Default::default());
        let event =
            self.event("COMPLETE", Uuid::now_v7(), Value::Object(facets), job, vec![table.clone()], vec![table]);
        self.emit(event);
    }

    fn maintenance_finished(&mut self, run: &RunInfo, result: Result<&[Maintained], &RunError>) {
        self.finish(run, format!("{}.maintain", run.pipeline), result.err());
    }
}

impl LineageObserver {
    /// The terminal event of the parent run (`job`), then the delivery's end.
    fn finish(&mut self, run: &RunInfo, job: String, error: Option<&RunError>) {
        let run_id = *self.pipeline_run.get_or_insert_with(Uuid::now_v7);
        let mut facets = self.pipeline_run_facets(run);
        let kind = match error {
            None => "COMPLETE",
            Some(error) => {
                facets.insert("errorMessage".into(), self.error_facet(&error.to_string()));
                "FAIL"
            }
        };
        let event = self.event(kind, run_id, Value::Object(facets), self.job(job, "JOB", None), vec![], vec![]);
        self.emit(event);
        if let Some(http) = self.http.take() {
            http.finish();
        }
    }

    fn error_facet(&self, message: &str) -> Value {
        self.facet(FACET_ERROR, json!({ "message": message, "programmingLanguage": "Rust" }))
    }
}

/// The OpenLineage (namespace, name) of an Iceberg table (see the module docs).
pub fn table_dataset_name(catalog: Option<&CatalogSpec>, table: &TableRef) -> (String, String) {
    match catalog {
        Some(CatalogSpec::Sql { warehouse, .. }) => (location_uri(warehouse), table.to_string()),
        Some(CatalogSpec::Rest(rest)) => {
            let name = match rest.warehouse.as_deref().filter(|w| !w.is_empty()) {
                Some(warehouse) => format!("{warehouse}.{table}"),
                None => table.to_string(),
            };
            (rest.uri.trim_end_matches('/').to_string(), name)
        }
        None => ("iceberg".to_string(), table.to_string()),
    }
}

/// A warehouse location as a URI: URLs as they are, local paths as `file://`.
fn location_uri(location: &str) -> String {
    let location = location.trim_end_matches('/');
    if location.contains("://") {
        location.to_string()
    } else {
        let path = location.strip_prefix("file:").unwrap_or(location);
        format!("file://{}", absolute(Path::new(path)).display())
    }
}

/// The name of a local source file: its absolute path.
pub fn file_dataset_name(path: &Path) -> String {
    absolute(path).display().to_string()
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Dagster's run, when it launched this one and its id is a UUID (the
/// parent facet requires one).
fn dagster_parent(run: &RunInfo) -> Option<&ParentRun> {
    run.parent.as_ref().filter(|p| Uuid::parse_str(&p.run_id).is_ok())
}

/// Arrow fields as schema-facet fields, with Iceberg-style type names.
fn schema_fields(fields: &arrow_schema::Fields) -> Vec<Value> {
    fields.iter().map(|f| schema_field(f)).collect()
}

fn schema_field(field: &Field) -> Value {
    let mut out = json!({ "name": field.name(), "type": super::iceberg_type_name(field.data_type()) });
    if let DataType::Struct(children) = field.data_type() {
        out["fields"] = Value::Array(schema_fields(children));
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Delivery counts, shared with the sender thread.
#[derive(Default, Debug)]
struct Stats {
    queued: u64,
    sent: u64,
    failed: u64,
    dropped: u64,
    gave_up: bool,
}

/// A background thread POSTing queued events (see the module docs).
struct HttpSender {
    endpoint: Endpoint,
    queue: Option<SyncSender<String>>,
    done: Receiver<()>,
    stats: Arc<Mutex<Stats>>,
}

impl HttpSender {
    fn start(endpoint: Endpoint, api_key: Option<String>) -> HttpSender {
        let (queue, events) = mpsc::sync_channel::<String>(QUEUE);
        let (done_tx, done) = mpsc::channel();
        let stats = Arc::new(Mutex::new(Stats::default()));
        let shared = stats.clone();
        let target = endpoint.clone();
        let spawned = std::thread::Builder::new().name("openlineage".into()).spawn(move || {
            match Poster::new(CONNECT_TIMEOUT, IO_TIMEOUT, api_key) {
                Ok(poster) => deliver(&poster, &target, &events, &shared),
                Err(error) => tracing::warn!("OpenLineage: {error}; no events are sent"),
            }
            let _ = done_tx.send(());
        });
        if let Err(error) = spawned {
            tracing::warn!("OpenLineage: cannot start the sender thread: {error}");
        }
        HttpSender { endpoint, queue: Some(queue), done, stats }
    }

    fn send(&mut self, event: String) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.queued += 1;
        let Some(queue) = &self.queue else { return };
        match queue.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => stats.dropped += 1,
        }
    }

    /// Closes the queue and waits at most [`FLUSH_DEADLINE`] for it to drain.
    fn finish(mut self) {
        self.queue = None;
        let started = Instant::now();
        let drained = match self.done.recv_timeout(FLUSH_DEADLINE) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) => false,
        };
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let unsent = stats.queued - stats.sent - stats.failed - stats.dropped;
        let line = format!(
            "OpenLineage: delivered {} of {} events to {}; {} failed, {} dropped, {} unsent at the {}s flush deadline{}",
            stats.sent,
            stats.queued,
            self.endpoint,
            stats.failed,
            stats.dropped,
            if drained { 0 } else { unsent },
            FLUSH_DEADLINE.as_secs(),
            if stats.gave_up { " (gave up on the endpoint)" } else { "" }
        );
        if stats.sent == stats.queued {
            tracing::info!("{line} (flushed in {:?})", started.elapsed());
        } else {
            tracing::warn!("{line}");
        }
    }
}

/// The sender thread: POSTs each event with retries until the queue closes.
fn deliver(poster: &Poster, endpoint: &Endpoint, events: &Receiver<String>, stats: &Mutex<Stats>) {
    let mut failed_in_a_row = 0;
    let mut event_no = 0u64;
    for body in events {
        event_no += 1;
        if failed_in_a_row >= GIVE_UP_AFTER_FAILED_EVENTS {
            stats.lock().unwrap_or_else(|e| e.into_inner()).dropped += 1;
            continue;
        }
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match poster.post_json(endpoint, &body) {
                Ok(_) => break Ok(()),
                Err(error) if error.retryable() && attempt < ATTEMPTS => {
                    tracing::debug!("OpenLineage: attempt {attempt}/{ATTEMPTS} to {endpoint} failed: {error}");
                    std::thread::sleep(BACKOFF[(attempt as usize - 1).min(BACKOFF.len() - 1)]);
                }
                Err(error) => break Err(error),
            }
        };
        let mut stats = stats.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(()) => {
                stats.sent += 1;
                failed_in_a_row = 0;
            }
            Err(error) => {
                stats.failed += 1;
                tracing::warn!(
                    "OpenLineage: event {event_no} not delivered to {endpoint} after {attempt} attempt(s): {error}"
                );
                if let PostError::Status(..) = error {
                    if !error.retryable() {
                        // The collector refused this event; the next may be fine.
                        continue;
                    }
                }
                failed_in_a_row += 1;
                if failed_in_a_row == GIVE_UP_AFTER_FAILED_EVENTS {
                    stats.gave_up = true;
                    tracing::warn!(
                        "OpenLineage: {endpoint} failed {failed_in_a_row} events in a row; dropping the rest of this run's events"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ident;

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_707_754_123);
        assert_eq!(rfc3339(t), "2026-11-26T15:42:34.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn names_tables_by_catalog() {
        let table = TableRef {
            namespace: Ident::try_from("gold".to_string()).unwrap(),
            name: Ident::try_from("totals".to_string()).unwrap(),
        };
        let sql = CatalogSpec::Sql { uri: "sqlite:/x/catalog.db".into(), warehouse: "/x/warehouse/".into() };
        assert_eq!(table_dataset_name(Some(&sql), &table), ("file:///x/warehouse".into(), "gold.totals".into()));
        let s3 = CatalogSpec::Sql { uri: "sqlite:/x/catalog.db".into(), warehouse: "s3://bucket/wh".into() };
        assert_eq!(table_dataset_name(Some(&s3), &table).0, "s3://bucket/wh");
    }
}
