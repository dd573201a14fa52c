//! OpenLineage: the events of real runs, received over HTTP on 127.0.0.1
//! (or written to a file), each validated against the official 2-0-2 JSON
//! schemas (`../shared/openlineage/2-0-2`, through `tests/py/lineage_validate.py`
//! and Python `jsonschema`), facets included.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    HttpReceiver, Run, example, floe_host_with_env, openlineage_schemas, plugin, python_json, temp_dir,
};

const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

/// The demo's steps and the tables they write.
const DEMO_STEPS: [(&str, &str); 9] = [
    ("raw_customers", "bronze.raw_customers"),
    ("raw_orders", "bronze.raw_orders"),
    ("stg_customers", "silver.stg_customers"),
    ("stg_orders", "silver.stg_orders"),
    ("customer_totals", "gold.customer_totals"),
    ("daily_revenue", "gold.daily_revenue"),
    ("customer_contacts", "silver.customer_contacts"),
    ("first_orders", "silver.first_orders"),
    ("large_orders", "gold.large_orders"),
];

/// A lineage collector on 127.0.0.1.
struct Receiver(HttpReceiver);

impl Receiver {
    fn start() -> Receiver {
        Receiver(HttpReceiver::start())
    }

    fn port(&self) -> u16 {
        self.0.port
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/lineage", self.0.port)
    }

    /// Every event received, in order: JSON POSTs to `/api/v1/lineage`.
    fn events(&self) -> Vec<Value> {
        self.0
            .requests()
            .iter()
            .map(|request| {
                assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/api/v1/lineage"));
                assert_eq!(request.content_type.as_deref(), Some("application/json"));
                serde_json::from_slice(&request.body)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&request.body)))
            })
            .collect()
    }

    fn authorizations(&self) -> Vec<Option<String>> {
        self.0.requests().iter().map(|r| r.authorization.clone()).collect()
    }
}

/// A platform.yaml over `state` (the embedded-style SQL catalog) sending lineage to `endpoint`.
fn platform(dir: &Path, state: &Path, endpoint: &str) -> PathBuf {
    let q = |s: String| serde_json::to_string(&s).unwrap();
    let yaml = format!(
        "catalogs:\n  default:\n    type: sql\n    uri: {uri}\n    warehouse: {warehouse}\n\
         storage:\n  default:\n    type: local\n    root: {warehouse}\n\
         compute:\n  default:\n    type: duckdb\n\
         observability:\n  lineage: true\n  lineage_endpoint: {endpoint}\n",
        uri = q(format!("sqlite:{}", state.join("catalog.db").display())),
        warehouse = q(state.join("warehouse").display().to_string()),
        endpoint = q(endpoint.to_string()),
    );
    let file = dir.join("platform.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

/// A two-step project: csv-ingest into bronze.raw_things, then SQL `sql` into silver.things.
fn small_project(dir: &Path, sql: &str) -> PathBuf {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    std::fs::write(dir.join("things.csv"), "id,label\n1,a\n2,b\n3,c\n").unwrap();
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(dir.join("models/things.sql"), sql).unwrap();
    let yaml = format!(
        "name: lineage-small\nversion: \"1.0.0\"\nstorage: default\ncatalog: default\ncompute: default\n\
         plugins:\n  csv-ingest:\n    path: {path}\n\
         transforms:\n  - name: raw_things\n    layer: bronze\n    kind: ingest\n    plugin: csv-ingest\n    source: things.csv\n\
         \x20 - name: things\n    layer: silver\n    kind: sql\n    sql: models/things.sql\n",
        path = q(plugin("csv_ingest.wasm").to_str().unwrap()),
    );
    std::fs::write(dir.join("floe.yaml"), yaml).unwrap();
    // Share compiled components between the runs of this module.
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lineage-compile-cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::os::unix::fs::symlink(&cache, dir.join("state/component-cache")).unwrap();
    dir.to_path_buf()
}

const GOOD_SQL: &str = "SELECT CAST(id AS BIGINT) AS id, label FROM bronze.raw_things\n";
const BAD_SQL: &str = "SELECT CAST(label AS BIGINT) AS id FROM bronze.raw_things\n";

fn run(project: &Path, state: &Path, platform: &Path, env: &[(&str, &str)]) -> (Run, Duration) {
    let started = Instant::now();
    let run = floe_host_with_env(
        &[
            "run",
            project.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--platform",
            platform.to_str().unwrap(),
        ],
        env,
    );
    (run, started.elapsed())
}

/// Rows per table from the run summary table on stdout.
fn summary_rows(stdout: &str) -> BTreeMap<String, u64> {
    stdout
        .lines()
        .skip(2)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            Some((cols.get(1)?.to_string(), cols.get(2)?.parse().ok()?))
        })
        .collect()
}

// ---------- structural validation (the 2-0-2 RunEvent and the facets' schemas) ----------

/// Every event and facet checked against the 2-0-2 schemas: the violations.
fn violations(events: &[Value]) -> Vec<String> {
    let dir = temp_dir();
    let file = dir.path().join("events.jsonl");
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let schemas = openlineage_schemas();
    let report = python_json("lineage_validate.py", &[schemas.to_str().unwrap(), file.to_str().unwrap()]);
    assert_eq!(report["events"].as_u64(), Some(events.len() as u64));
    report["violations"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

pub(crate) fn assert_all_valid(events: &[Value]) {
    let found = violations(events);
    assert!(found.is_empty(), "{} schema violations:\n{}", found.len(), found.join("\n"));
}

fn of<'e>(events: &'e [Value], name: &str, kind: &str) -> Vec<&'e Value> {
    events.iter().filter(|e| e["job"]["name"] == name && e["eventType"] == kind).collect()
}

fn is_uuid_v7(id: &Value) -> bool {
    let id = id.as_str().unwrap_or("");
    id.len() == 36 && id.as_bytes()[14] == b'7' && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[test]
fn lineage_demo_run_emits_valid_start_and_complete_per_step() {
    let receiver = Receiver::start();
    let dir = temp_dir();
    let state = dir.path().join("state");
    let platform = platform(dir.path(), &state, &receiver.url());
    let file = dir.path().join("events.jsonl");
    let (run, _) = run(
        &example("customer-analytics"),
        &state,
        &platform,
        &[("FLOE_LINEAGE_FILE", file.to_str().unwrap()), ("FLOE_RUN_ID", "lineage-demo")],
    );
    let run = run.expect_code(0);
    let rows = summary_rows(&run.stdout);
    assert_eq!(rows.len(), 9, "{}", run.stdout);

    let events = receiver.events();
    // 9 × (START, COMPLETE) + the pipeline run's START and COMPLETE, all delivered before exit.
    assert_eq!(events.len(), 20, "{events:#?}\n--- stderr\n{}", run.stderr);
    assert_all_valid(&events);
    // The debug file holds the same events, in order.
    let lines: Vec<Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, events);

    let pipeline_start = of(&events, "customer-analytics", "START");
    let pipeline_complete = of(&events, "customer-analytics", "COMPLETE");
    assert_eq!((pipeline_start.len(), pipeline_complete.len()), (1, 1));
    let parent_run = pipeline_start[0]["run"]["runId"].as_str().unwrap();
    assert_eq!(pipeline_complete[0]["run"]["runId"], parent_run);
    assert!(events.iter().all(|e| is_uuid_v7(&e["run"]["runId"])), "run ids are UUIDv7");
    // floe's own run id rides along, and no Dagster parent without Dagster.
    let floe_run = &pipeline_start[0]["run"]["facets"]["floe_run"];
    assert_eq!(
        (&floe_run["runId"], &floe_run["pipeline"]),
        (&Value::from("lineage-demo"), &Value::from("customer-analytics"))
    );
    assert!(pipeline_start[0]["run"]["facets"].get("parent").is_none());
    assert_eq!(events.first().unwrap()["eventType"], "START");
    assert_eq!(events.last().unwrap()["job"]["name"], "customer-analytics");

    let warehouse = format!("file://{}", state.join("warehouse").display());
    for (step, table) in DEMO_STEPS {
        let job = format!("customer-analytics.{step}");
        let starts = of(&events, &job, "START");
        let completes = of(&events, &job, "COMPLETE");
        assert_eq!((starts.len(), completes.len()), (1, 1), "{job}: {events:#?}");
        let (start, complete) = (starts[0], completes[0]);
        assert_eq!(start["job"]["namespace"], "customer-analytics");
        assert_eq!(start["run"]["runId"], complete["run"]["runId"], "{job}: one run per step");
        assert_ne!(start["run"]["runId"], parent_run);
        assert_eq!(complete["run"]["facets"]["parent"]["run"]["runId"], parent_run, "{job}");
        assert_eq!(complete["run"]["facets"]["parent"]["job"]["name"], "customer-analytics");
        assert!(start["eventTime"].as_str() <= complete["eventTime"].as_str());

        let outputs = complete["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), 1, "{job}");
        let output = &outputs[0];
        assert_eq!(output["namespace"], warehouse.as_str(), "{job}");
        assert_eq!(output["name"], table, "{job}");
        assert_eq!(output["facets"]["catalog"]["framework"], "iceberg", "{job}");
        assert_eq!(complete["run"]["facets"]["floe_step"]["outcome"], "committed", "{job}");
        let stats = &output["outputFacets"]["outputStatistics"];
        assert_eq!(stats["rowCount"].as_u64(), Some(rows[table]), "{job}: rowCount vs the run summary");
        assert!(stats["size"].as_u64().unwrap() > 0, "{job}");
        assert!(stats["fileCount"].as_u64().unwrap() >= 1, "{job}");
        let fields = output["facets"]["schema"]["fields"].as_array().unwrap();
        assert!(!fields.is_empty(), "{job}");
        assert_eq!(start["outputs"][0]["name"], table, "{job}: START names the output too");
    }

    // Inputs: source files for ingest steps, tables (named as their producers name them) for the rest.
    let inputs = |step: &str| -> Vec<(String, String)> {
        of(&events, &format!("customer-analytics.{step}"), "COMPLETE")[0]["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["namespace"].as_str().unwrap().to_string(), d["name"].as_str().unwrap().to_string()))
            .collect()
    };
    let csv = std::path::absolute(example("customer-analytics").join("data/customers.csv")).unwrap();
    assert_eq!(inputs("raw_customers"), [("file".to_string(), csv.display().to_string())]);
    assert_eq!(inputs("stg_customers"), [(warehouse.clone(), "bronze.raw_customers".to_string())]);
    assert_eq!(inputs("stg_orders"), [(warehouse.clone(), "bronze.raw_orders".to_string())]);
    let mut totals = inputs("customer_totals");
    totals.sort();
    assert!(totals.contains(&(warehouse.clone(), "silver.stg_orders".to_string())), "{totals:?}");
    assert_eq!(inputs("first_orders"), [(warehouse.clone(), "bronze.raw_orders".to_string())]);
    // SQL steps carry their query.
    let stg = of(&events, "customer-analytics.stg_customers", "COMPLETE")[0];
    assert!(stg["job"]["facets"]["sql"]["query"].as_str().unwrap().contains("bronze.raw_customers"));
}

#[test]
fn lineage_failing_step_emits_fail_with_error_message() {
    let receiver = Receiver::start();
    let dir = temp_dir();
    let project = small_project(dir.path(), BAD_SQL);
    let state = dir.path().join("state");
    let platform = platform(dir.path(), &state, &receiver.url());
    let (run, _) = run(&project, &state, &platform, &[]);
    run.expect_code(1);

    let events = receiver.events();
    assert_all_valid(&events);
    assert_eq!(of(&events, "lineage-small.raw_things", "COMPLETE").len(), 1, "{events:#?}");
    assert_eq!(of(&events, "lineage-small.things", "START").len(), 1, "{events:#?}");
    assert!(of(&events, "lineage-small.things", "COMPLETE").is_empty());
    let fails = of(&events, "lineage-small.things", "FAIL");
    assert_eq!(fails.len(), 1, "{events:#?}");
    let message = fails[0]["run"]["facets"]["errorMessage"]["message"].as_str().unwrap();
    assert!(message.contains("things"), "{message}");
    assert_eq!(fails[0]["run"]["facets"]["errorMessage"]["programmingLanguage"], "Rust");
    assert_eq!(fails[0]["outputs"][0]["name"], "silver.things");
    // The pipeline run fails too, with the same error.
    let pipeline = of(&events, "lineage-small", "FAIL");
    assert_eq!(pipeline.len(), 1, "{events:#?}");
    assert_eq!(pipeline[0]["run"]["facets"]["errorMessage"]["message"], message);
}

/// Runs the small project without lineage (the baseline, which also warms the
/// compile cache), then with lineage sent to `endpoint`.
fn dead_endpoint_run(endpoint: &str) -> (Run, Duration, Duration) {
    let dir = temp_dir();
    let project = small_project(dir.path(), GOOD_SQL);
    let state = dir.path().join("state");
    // Baseline without lineage (also warms the compile cache).
    let quiet = {
        let p = dir.path().join("quiet.yaml");
        let text = std::fs::read_to_string(platform(dir.path(), &state, endpoint)).unwrap();
        std::fs::write(&p, text.replace("lineage: true", "lineage: false")).unwrap();
        p
    };
    let (baseline, baseline_time) = run(&project, &state, &quiet, &[]);
    baseline.expect_code(0);
    let platform = platform(dir.path(), &state, endpoint);
    let (run, time) = run(&project, &state, &platform, &[]);
    (run, time, baseline_time)
}

#[test]
fn lineage_refused_endpoint_does_not_fail_the_run() {
    // A port with nothing listening.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (run, time, baseline) = dead_endpoint_run(&format!("http://127.0.0.1:{port}/api/v1/lineage"));
    let run = run.expect_code(0);
    assert!(run.stderr.contains("delivered 0 of 6 events"), "{}", run.stderr);
    // Two events fail every attempt, then the endpoint is given up on.
    assert_eq!(run.stderr.matches("not delivered").count(), 2, "{}", run.stderr);
    assert!(run.stderr.contains("after 3 attempt(s)"), "{}", run.stderr);
    assert!(run.stderr.contains("gave up on the endpoint"), "{}", run.stderr);
    assert!(time < baseline + Duration::from_secs(30), "{time:?} vs {baseline:?} without lineage");
}

#[test]
fn lineage_silent_endpoint_does_not_stall_the_run() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let (run, time, baseline) = dead_endpoint_run(&format!("http://127.0.0.1:{port}/api/v1/lineage"));
    let run = run.expect_code(0);
    // The flush deadline (5 s) ends the wait, whatever is left in the queue.
    assert!(run.stderr.contains("delivered 0 of 6 events"), "{}", run.stderr);
    assert!(run.stderr.contains("unsent at the 5s flush deadline"), "{}", run.stderr);
    assert!(!run.stderr.contains(" 0 unsent"), "events were still in flight: {}", run.stderr);
    assert!(time < baseline + Duration::from_secs(30), "{time:?} vs {baseline:?} without lineage");
}

#[test]
fn lineage_to_an_https_endpoint_is_attempted_and_a_failure_does_not_fail_the_run() {
    let dir = temp_dir();
    let project = small_project(dir.path(), GOOD_SQL);
    let state = dir.path().join("state");
    // Nothing listens there: the TLS client tries, fails, and the run goes on.
    let platform = platform(dir.path(), &state, "https://127.0.0.1:9/api/v1/lineage");
    let (run, _) = run(&project, &state, &platform, &[]);
    let run = run.expect_code(0);
    assert!(run.stderr.contains("not delivered to https://127.0.0.1:9/api/v1/lineage"), "{}", run.stderr);
}

/// A rerun of a failed run with the same floe run id is a new OpenLineage
/// run of the same jobs; the step it skips says so and reports no rows.
#[test]
fn lineage_rerun_is_a_new_run_attempt_and_skipped_steps_report_no_rows() {
    let receiver = Receiver::start();
    let dir = temp_dir();
    let project = small_project(dir.path(), BAD_SQL);
    let state = dir.path().join("state");
    let platform = platform(dir.path(), &state, &receiver.url());
    run(&project, &state, &platform, &[("FLOE_RUN_ID", "nightly-1")]).0.expect_code(1);
    let first = receiver.events();
    std::fs::write(project.join("models/things.sql"), GOOD_SQL).unwrap();
    run(&project, &state, &platform, &[("FLOE_RUN_ID", "nightly-1")]).0.expect_code(0);
    let all = receiver.events();
    let second = &all[first.len()..];
    assert_all_valid(&all);

    // One START and one terminal event per attempt; different run ids, same floe run.
    let start = |events: &[Value]| of(events, "lineage-small", "START")[0].clone();
    let (a, b) = (start(&first), start(second));
    assert_eq!(of(&first, "lineage-small", "FAIL").len(), 1);
    assert_eq!(of(second, "lineage-small", "COMPLETE").len(), 1);
    assert_eq!(of(&all, "lineage-small", "START").len(), 2);
    assert_ne!(a["run"]["runId"], b["run"]["runId"], "a rerun is a new run");
    assert_eq!(a["job"], b["job"], "of the same job");
    assert_eq!(a["run"]["facets"]["floe_run"]["runId"], "nightly-1");
    assert_eq!(b["run"]["facets"]["floe_run"]["runId"], "nightly-1");

    // raw_things was committed by the first attempt: skipped, no rows reported.
    let skipped = of(second, "lineage-small.raw_things", "COMPLETE");
    assert_eq!(skipped.len(), 1, "{second:#?}");
    assert_eq!(skipped[0]["run"]["facets"]["floe_step"]["outcome"], "already_committed");
    assert!(skipped[0]["outputs"][0].get("outputFacets").is_none(), "{:#}", skipped[0]);
    let written = of(second, "lineage-small.things", "COMPLETE");
    assert_eq!(written[0]["run"]["facets"]["floe_step"]["outcome"], "committed");
    assert_eq!(written[0]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"], 3);
    assert_eq!(written[0]["run"]["facets"]["parent"]["run"]["runId"], b["run"]["runId"]);
}

/// The OpenLineage clients' own variables: OPENLINEAGE_URL (with the API
/// key as a bearer token), the file transport, and OPENLINEAGE_DISABLED.
#[test]
fn lineage_follows_the_openlineage_client_variables() {
    let receiver = Receiver::start();
    let dir = temp_dir();
    let project = small_project(dir.path(), GOOD_SQL);
    let state = dir.path().join("state");
    // lineage is off in platform.yaml: the environment alone turns it on.
    let quiet = dir.path().join("quiet.yaml");
    let text = std::fs::read_to_string(platform(dir.path(), &state, "http://127.0.0.1:9/unused")).unwrap();
    std::fs::write(&quiet, text.replace("lineage: true", "lineage: false")).unwrap();
    let base = format!("http://127.0.0.1:{}/", receiver.port());
    let file = dir.path().join("lineage.jsonl");
    let env = [
        ("OPENLINEAGE_URL", base.as_str()),
        ("OPENLINEAGE_API_KEY", "k3y-for-lineage"),
        ("OPENLINEAGE__TRANSPORT__TYPE", "file"),
        ("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", file.to_str().unwrap()),
    ];
    let (run1, _) = run(&project, &state, &quiet, &env);
    let run1 = run1.expect_code(0);
    assert!(!run1.stderr.contains("k3y-for-lineage"), "the key is never logged: {}", run1.stderr);
    let events = receiver.events();
    assert_eq!(events.len(), 6, "{events:#?}");
    assert!(receiver.authorizations().iter().all(|a| a.as_deref() == Some("Bearer k3y-for-lineage")));
    let lines: Vec<Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, events, "the file transport holds the same events");
    assert_all_valid(&events);

    // OPENLINEAGE_DISABLED wins over everything.
    let mut disabled = env.to_vec();
    disabled.push(("OPENLINEAGE_DISABLED", "true"));
    run(&project, &state, &quiet, &disabled).0.expect_code(0);
    assert_eq!(receiver.events().len(), 6, "no event sent when disabled");
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 6, "none written either");
}

#[test]
fn lineage_validation_rejects_broken_events() {
    let facet = |schema: &str, version: &str| {
        serde_json::json!({
            "_producer": "https://example.com/p",
            "_schemaURL": format!("https://openlineage.io/spec/facets/{version}/{schema}.json#/$defs/{schema}"),
        })
    };
    let mut stats = facet("OutputStatisticsOutputDatasetFacet", "1-0-2");
    stats["rowCount"] = 3.into();
    let valid = serde_json::json!({
        "eventType": "COMPLETE",
        "eventTime": "2026-11-26T15:42:34.123Z",
        "producer": "https://example.com/p",
        "schemaURL": SCHEMA_URL,
        "run": { "runId": "019ad8a2-5c1e-7b3a-9f00-3c2d1e0f4a5b", "facets": {} },
        "job": { "namespace": "n", "name": "n.s" },
        "inputs": [],
        "outputs": [{ "namespace": "file", "name": "/x", "outputFacets": { "outputStatistics": stats } }],
    });
    assert_eq!(violations(std::slice::from_ref(&valid)), Vec::<String>::new());
    let broken: [(&str, Value); 7] = [
        ("/eventType", "DONE".into()),
        ("/eventTime", "yesterday".into()),
        ("/run/runId", "run-1".into()),
        // A UUID, but version 4.
        ("/run/runId", "a1b89c32-efcb-4810-a5af-102eb31aed7d".into()),
        ("/outputs/0/outputFacets/outputStatistics/rowCount", "3".into()),
        ("/outputs/0/outputFacets/outputStatistics/_producer", Value::Null),
        // A facet whose schema is not known.
        ("/outputs/0/outputFacets/outputStatistics/_schemaURL", "https://example.com/Nope.json#/$defs/Nope".into()),
    ];
    for (pointer, value) in broken {
        let mut event = valid.clone();
        *event.pointer_mut(pointer).unwrap() = value.clone();
        assert!(!violations(&[event]).is_empty(), "{pointer} = {value} accepted");
    }
    let mut event = valid.clone();
    event.as_object_mut().unwrap().remove("job");
    assert!(!violations(&[event]).is_empty(), "missing job accepted");
}

/// Launched by Dagster (real Dagster, through Pipes), the pipeline run's
/// parent is Dagster's run, which is also the root of every step run; the
/// events validate like any others.
#[test]
fn lineage_of_a_dagster_launched_run_has_dagster_s_run_as_parent() {
    let dir = temp_dir();
    let project = small_project(dir.path(), GOOD_SQL);
    let state = dir.path().join("state");
    let file = dir.path().join("lineage.jsonl");
    let bin = env!("CARGO_BIN_EXE_floe-host");
    let args = [
        bin,
        project.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--lineage-file",
        file.to_str().unwrap(),
    ];
    let result = python_json("dagster_demo.py", &args);
    assert_eq!(result["success"], true, "{result:#}");
    let dagster_run = result["run_id"].as_str().unwrap();
    let events: Vec<Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 6, "{events:#?}");
    assert_all_valid(&events);
    let start = of(&events, "lineage-small", "START")[0];
    let parent = &start["run"]["facets"]["parent"];
    assert_eq!(parent["run"]["runId"], dagster_run);
    assert_eq!(parent["job"]["namespace"], "dagster");
    assert!(parent["job"]["name"].as_str().is_some_and(|n| !n.is_empty()), "{parent}");
    // floe's run id is Dagster's too.
    assert_eq!(start["run"]["facets"]["floe_run"]["runId"], dagster_run);
    for event in of(&events, "lineage-small.things", "COMPLETE") {
        let facet = &event["run"]["facets"]["parent"];
        assert_eq!(facet["run"]["runId"], start["run"]["runId"], "a step's parent is the pipeline run");
        assert_eq!(facet["root"]["run"]["runId"], dagster_run, "and its root is Dagster's run");
    }
}
