//! Dagster Pipes and `--summary-json`: the demo materialized by real Dagster
//! (`dagster.materialize` with `PipesSubprocessClient`, tests/py/dagster_demo.py
//! on examples/dagster/definitions.py), the stderr channel `PipesK8sClient`
//! reads, contexts floe-host refuses, and the summary file.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::partitions;
use crate::support::{example, floe_host, floe_host_with_env, plugin, python_json, temp_dir};

/// The demo's tables as Dagster asset keys, with their row counts.
const DEMO_ROWS: [(&str, u64); 9] = [
    ("bronze/raw_customers", 1055),
    ("bronze/raw_orders", 5099),
    ("silver/stg_customers", 1000),
    ("silver/stg_orders", 4367),
    ("gold/customer_totals", 989),
    ("gold/daily_revenue", 455),
    ("silver/customer_contacts", 1000),
    ("silver/first_orders", 5000),
    ("gold/large_orders", 366),
];

const BROKEN_SQL_ERROR: &str = "floe-test: revenue is broken";

/// `base64(zlib(json))`, as `dagster_pipes.encode_param`.
pub(crate) fn encode_param(value: &Value) -> String {
    use base64::Engine;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(value.to_string().as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(z.finish().unwrap())
}

/// A two-step project whose silver SQL fails at run time (DuckDB `error()`),
/// after bronze committed 3 rows.
fn broken_project(dir: &Path) {
    fs::create_dir_all(dir.join("data")).unwrap();
    fs::create_dir_all(dir.join("models")).unwrap();
    fs::write(dir.join("data/customers.csv"), "customer_id,name\n1,a\n2,b\n3,c\n").unwrap();
    fs::write(
        dir.join("models/broken.sql"),
        format!("SELECT customer_id, error('{BROKEN_SQL_ERROR}') AS boom\nFROM bronze.raw_customers\n"),
    )
    .unwrap();
    let yaml = format!(
        "name: broken\nplugins:\n  csv-ingest:\n    path: {}\ntransforms:\n\
         \x20 - name: raw_customers\n    layer: bronze\n    kind: ingest\n    plugin: csv-ingest\n    source: data/customers.csv\n\
         \x20 - name: broken\n    layer: silver\n    kind: sql\n    sql: models/broken.sql\n",
        plugin("csv_ingest.wasm").display()
    );
    fs::write(dir.join("floe.yaml"), yaml).unwrap();
}

fn dagster(project: &Path, state: &Path, select: &[&str]) -> Value {
    dagster_with(project, state, select, &[])
}

fn dagster_with(project: &Path, state: &Path, select: &[&str], extra: &[&str]) -> Value {
    let mut args =
        vec![env!("CARGO_BIN_EXE_floe-host"), project.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
    for key in select {
        args.extend(["--select", key]);
    }
    args.extend_from_slice(extra);
    python_json("dagster_demo.py", &args)
}

fn row_counts(result: &Value) -> BTreeMap<String, u64> {
    result["materialized"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["row_count"].as_u64().unwrap()))
        .collect()
}

#[test]
fn dagster_materializes_the_demo_and_a_selection() {
    let dir = temp_dir();
    let state = dir.path().join("state");
    let result = dagster(&example("customer-analytics"), &state, &[]);
    assert_eq!(result["success"], true, "{result:#}");
    let expected: BTreeMap<String, u64> = DEMO_ROWS.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    assert_eq!(row_counts(&result), expected);
    for (key, meta) in result["materialized"].as_object().unwrap() {
        assert_eq!(meta["table"], key.replace('/', "."));
        assert!(meta["snapshot_id"].as_i64().is_some(), "{meta}");
        assert!(meta["files"].as_u64().unwrap() >= 1 && meta["bytes"].as_u64().unwrap() > 0, "{meta}");
    }
    assert_eq!(result["errors"], json!([]));
    let logs = result["logs"].to_string();
    assert!(logs.contains("floe-host run") && logs.contains("committed 9 tables"), "{logs}");
    // floe's own log lines reach the event log at their levels.
    assert!(logs.contains("INFO Committed step. step=stg_orders"), "{logs}");
    assert!(logs.contains("INFO Running step. step=large_orders table=gold.large_orders"), "{logs}");
    // Column schema and table name metadata, as Dagster's UI shows them.
    let totals = &result["materialized"]["gold/customer_totals"];
    assert_eq!(totals["dagster/table_name"], "default.gold.customer_totals");
    let columns: Vec<(&str, &str)> = totals["dagster/column_schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    assert_eq!(&columns[..3], [("customer_id", "long"), ("region", "string"), ("order_count", "long")]);

    // A selection runs only its steps, on the tables already committed.
    let result = dagster(&example("customer-analytics"), &state, &["gold/customer_totals", "gold/large_orders"]);
    assert_eq!(result["success"], true, "{result:#}");
    let expected = BTreeMap::from([("gold/customer_totals".to_string(), 989), ("gold/large_orders".to_string(), 366)]);
    assert_eq!(row_counts(&result), expected);
}

#[test]
fn dagster_partition_keys_replace_their_partition() {
    let dir = temp_dir();
    let (project, state) = (dir.path().join("project"), dir.path().join("state"));
    partitions::project(&project, &["raw_orders", "orders"]);
    let days = [("2024-01-01", 3), ("2024-01-02", 4), ("2024-01-03", 5)];
    for (day, rows) in days {
        partitions::write_day(&project, day, rows, "10.00");
    }
    let keys = days.map(|(day, _)| day).join(",");
    for (day, rows) in [days[1], days[0]] {
        let result = dagster_with(&project, &state, &[], &["--partitions", &keys, "--partition", day]);
        assert_eq!(result["success"], true, "{result:#}");
        let materialized = result["materialized"].as_object().unwrap();
        assert_eq!(materialized.keys().collect::<Vec<_>>(), ["bronze/raw_orders", "silver/orders"]);
        for (key, meta) in materialized {
            assert_eq!(meta["partition"], day, "Dagster records the run's partition: {meta}");
            assert_eq!(meta["meta_partition"], day, "floe-host says which partition it replaced: {meta}");
            assert_eq!(meta["row_count"], rows, "{key}: the partition's rows, not the table's: {meta}");
            assert_eq!(meta["table"], key.replace('/', "."));
        }
        let logs = result["logs"].to_string();
        assert!(logs.contains(&format!(", partition `{day}`: 2 steps")), "{logs}");
    }
    let tables = partitions::read_back(&state, &["silver.orders"]);
    let snapshots = tables["silver.orders"]["snapshots"].as_array().unwrap();
    let replaced: Vec<&Value> = snapshots.iter().map(|s| &s["summary"]["floe.partition"]).collect();
    assert_eq!(replaced, [&json!("2024-01-02"), &json!("2024-01-01")]);

    // The context's key and --partition must agree.
    let context = json!({"data": {"asset_keys": ["bronze/raw_orders"], "partition_key": "2024-01-02",
        "run_id": "r", "extras": {}, "retry_number": 0}});
    let messages = dir.path().join("messages.jsonl");
    let run = floe_host_with_env(
        &["run", project.to_str().unwrap(), "--state-dir", state.to_str().unwrap(), "--partition", "2024-01-03"],
        &[
            ("DAGSTER_PIPES_CONTEXT", &encode_param(&context)),
            ("DAGSTER_PIPES_MESSAGES", &encode_param(&json!({"path": messages}))),
        ],
    )
    .expect_code(2);
    let needle = "Dagster Pipes: the context's partition_key is `2024-01-02` but --partition is `2024-01-03`";
    assert!(run.stderr.contains(needle), "{}", run.stderr);
    assert!(fs::read_to_string(&messages).unwrap().contains(needle));
}

#[test]
fn a_failing_step_fails_the_dagster_run_with_its_error() {
    let dir = temp_dir();
    broken_project(&dir.path().join("project"));
    let result = dagster(&dir.path().join("project"), &dir.path().join("state"), &[]);
    assert_eq!(result["success"], false, "{result:#}");
    // bronze.raw_customers committed before the failure: it is materialized.
    assert_eq!(row_counts(&result), BTreeMap::from([("bronze/raw_customers".to_string(), 3)]));
    let errors = result["errors"].to_string();
    // floe-host's exception (the `closed` message) and the exit code.
    let closed = "pipes closed with exception: StepFailed: step `broken`: SQL `";
    assert!(errors.contains(closed) && errors.contains(BROKEN_SQL_ERROR), "{errors}");
    assert!(errors.contains("floe-host exited with code 1: a step failed at run time"), "{errors}");
    let logs = result["logs"].to_string();
    assert!(logs.contains("step `broken` (silver.broken) failed") && logs.contains(BROKEN_SQL_ERROR), "{logs}");
}

/// A Dagster run that fails at step 5 materializes steps 1-4; its
/// re-execution (tagged with the failed run as its root, as Dagster tags
/// one) runs as the same floe run, so it skips steps 1-4 and runs the rest.
#[test]
fn a_reexecuted_dagster_run_skips_the_steps_its_failed_run_committed() {
    let dir = temp_dir();
    let project = dir.path().join("project");
    copy_tree(&example("customer-analytics"), &project);
    // The plugins are found relative to the example; point at them.
    let yaml = fs::read_to_string(project.join("floe.yaml")).unwrap();
    let dist = plugin("csv_ingest.wasm").parent().unwrap().display().to_string();
    fs::write(project.join("floe.yaml"), yaml.replace("../../plugins/dist", &dist)).unwrap();
    let model = project.join("models/customer_totals.sql");
    let good = fs::read_to_string(&model).unwrap();
    fs::write(&model, good.replace("count(*)", &format!("count(*) + CAST(error('{BROKEN_SQL_ERROR}') AS BIGINT)")))
        .unwrap();
    let state = dir.path().join("state");

    let failed = dagster(&project, &state, &[]);
    assert_eq!(failed["success"], false, "{failed:#}");
    // The four steps customer_totals reads committed before it; steps that
    // computed beside it (`concurrent_steps`: which ones depends on timing)
    // committed too, and are materialized as well.
    let committed = row_counts(&failed);
    for (key, rows) in &DEMO_ROWS[..4] {
        assert_eq!(committed.get(*key), Some(rows), "{key} is materialized: {committed:?}");
    }
    assert!(!committed.contains_key("gold/customer_totals"), "{committed:?}");

    fs::write(&model, good).unwrap();
    let run_id = failed["run_id"].as_str().unwrap();
    let retried = dagster_with(&project, &state, &[], &["--reexecute", run_id]);
    assert_eq!(retried["success"], true, "{retried:#}");
    let expected: BTreeMap<String, u64> = DEMO_ROWS.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    assert_eq!(row_counts(&retried), expected);
    for (key, meta) in retried["materialized"].as_object().unwrap() {
        let skipped = committed.contains_key(key);
        assert_eq!(meta["floe_already_committed"], skipped, "{key}: {meta}");
        // One floe run across both Dagster runs: the failed run's id.
        assert_eq!(meta["floe_run_id"], run_id, "{key}");
        if skipped {
            let before = &failed["materialized"][key]["snapshot_id"];
            assert_eq!(&meta["snapshot_id"], before, "{key} was not recomputed");
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".floe" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// The Pipes messages among a process's stderr lines.
fn messages(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m.get("__dagster_pipes_version").is_some())
        .collect()
}

#[test]
fn stderr_channel_for_k8s_sends_messages_in_order() {
    let dir = temp_dir();
    let state = dir.path().join("state");
    let context = json!({"data": {
        "asset_keys": ["bronze/raw_customers", "silver/stg_customers"],
        "code_version_by_asset_key": null, "provenance_by_asset_key": null,
        "partition_key": null, "partition_key_range": null, "partition_time_window": null,
        "run_id": "dagster-run-1", "job_name": "__ASSET_JOB", "retry_number": 0, "extras": {}
    }});
    let env = [
        ("DAGSTER_PIPES_CONTEXT", encode_param(&context)),
        ("DAGSTER_PIPES_MESSAGES", encode_param(&json!({"stdio": "stderr"}))),
        ("FLOE_LOG", "info".to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let project = example("customer-analytics");
    let run = floe_host_with_env(&["run", project.to_str().unwrap(), "--state-dir", state.to_str().unwrap()], &env)
        .expect_code(0);
    let all = messages(&run.stderr);
    // floe's own log lines go to Dagster too, at their levels.
    let logged: Vec<&str> = all
        .iter()
        .filter(|m| m["method"] == "log" && m["params"]["level"] == "INFO")
        .map(|m| m["params"]["message"].as_str().unwrap())
        .collect();
    assert!(logged.contains(&"Running step. step=stg_customers table=silver.stg_customers"), "{logged:#?}");
    assert!(logged.iter().any(|m| m.starts_with("Committed step. step=raw_customers rows=1055")), "{logged:#?}");
    // The rest, in order: the session, the run's own summary lines and the materializations.
    let messages: Vec<Value> = all
        .into_iter()
        .filter(|m| m["method"] != "log" || m["params"]["message"].as_str().unwrap().starts_with("floe-host run"))
        .collect();
    let methods: Vec<&str> = messages.iter().map(|m| m["method"].as_str().unwrap()).collect();
    assert_eq!(
        methods,
        ["opened", "log", "report_asset_materialization", "report_asset_materialization", "log", "closed"],
        "{}",
        run.stderr
    );
    for m in &messages {
        assert_eq!(m["__dagster_pipes_version"], "0.1");
    }
    assert_eq!(messages[0]["params"], json!({"extras": {}}));
    assert_eq!(messages[1]["params"]["level"], "INFO");
    assert!(messages[1]["params"]["message"].as_str().unwrap().contains("(Dagster run dagster-run-1): 2 steps"));
    for (message, (key, rows)) in
        messages[2..4].iter().zip([("bronze/raw_customers", 1055), ("silver/stg_customers", 1000)])
    {
        let params = &message["params"];
        assert_eq!(params["asset_key"], key);
        assert_eq!(params["data_version"], Value::Null);
        let metadata = &params["metadata"];
        assert_eq!(metadata["dagster/row_count"], json!({"raw_value": rows, "type": "int"}));
        assert_eq!(metadata["table"], json!({"raw_value": key.replace('/', "."), "type": "text"}));
        assert_eq!(metadata["snapshot_id"]["type"], "int");
        assert_eq!(metadata["rows_in"]["type"], "int");
        let names: Vec<&String> = metadata.as_object().unwrap().keys().collect();
        let mut want = vec![
            "bytes",
            "bytes_in",
            "dagster/column_schema",
            "dagster/row_count",
            "dagster/table_name",
            "duration_ms",
            "files",
            "floe_already_committed",
            "floe_run_id",
            "floe_superseded",
        ];
        if key.starts_with("bronze/") {
            // The ingest plugin's cost; a SQL model has none (and no nulls are sent).
            want.extend([
                "plugin_calls",
                "plugin_compile_ms",
                "plugin_cpu_ms",
                "plugin_from_cache",
                "plugin_peak_memory_bytes",
            ]);
            assert_eq!(metadata["plugin_cpu_ms"]["type"], "float");
            // Compiled before the first step, apart from `duration_ms`.
            assert_eq!(metadata["plugin_compile_ms"]["type"], "int");
            assert_eq!(metadata["plugin_from_cache"]["type"], "bool");
            assert!(metadata["plugin_peak_memory_bytes"]["raw_value"].as_u64().unwrap() > 0);
        }
        want.extend(["rows_in", "snapshot_id", "table"]);
        assert_eq!(names, want);
        for value in metadata.as_object().unwrap().values() {
            assert_eq!(value.as_object().unwrap().len(), 2, "{{raw_value, type}} only: {value}");
        }
    }
    assert_eq!(messages[5]["params"], json!({}));
    // Only the selected steps ran.
    assert!(run.stdout.contains("raw_customers") && run.stdout.contains("stg_customers"), "{}", run.stdout);
    assert!(!run.stdout.contains("raw_orders") && !run.stdout.contains("customer_totals"), "{}", run.stdout);
}

#[test]
fn contexts_floe_host_cannot_honour_fail_before_anything_runs() {
    let dir = temp_dir();
    let state = dir.path().join("state");
    let project = example("customer-analytics");
    let data = |extra: Value| {
        let mut context =
            json!({"asset_keys": ["gold/customer_totals"], "run_id": "r", "extras": {}, "retry_number": 0});
        context.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        encode_param(&json!({"data": context}))
    };
    let cases = [
        (
            data(json!({"partition_key": "2024-01-01"})),
            "--partition `2024-01-01`: no step of pipeline `customer-analytics` uses a partition",
        ),
        (
            data(json!({"partition_key_range": {"start": "2024-01-01", "end": "2024-01-03"}})),
            "the context asks for partition range {\"end\":\"2024-01-03\",\"start\":\"2024-01-01\"}, but \
             floe-host runs one partition at a time",
        ),
        (
            data(json!({"asset_keys": ["gold/nope"]})),
            "no step or table named `gold.nope`; its tables are: bronze.raw_customers",
        ),
        (data(json!({"asset_keys": ["customer_totals"]})), "asset key `customer_totals` is not `layer/table`"),
        ("bm90IHpsaWI=".to_string(), "DAGSTER_PIPES_CONTEXT is not base64 of zlib-compressed JSON"),
        (encode_param(&json!({"path": "/no/such/context.json"})), "cannot read the context file /no/such/context.json"),
    ];
    for (i, (context, needle)) in cases.iter().enumerate() {
        let messages_file = dir.path().join(format!("messages-{i}.jsonl"));
        let params = encode_param(&json!({"path": messages_file}));
        let run = floe_host_with_env(
            &["run", project.to_str().unwrap(), "--state-dir", state.to_str().unwrap()],
            &[("DAGSTER_PIPES_CONTEXT", context), ("DAGSTER_PIPES_MESSAGES", &params)],
        )
        .expect_code(2);
        assert!(run.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", run.stderr);
        // Dagster hears it too: opened, then closed with the error.
        let sent = messages(&fs::read_to_string(&messages_file).unwrap());
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(sent[0]["method"], "opened");
        assert_eq!(sent[1]["method"], "closed");
        let exception = &sent[1]["params"]["exception"];
        assert!(exception["message"].as_str().unwrap().contains(needle), "{exception}");
        assert_eq!(exception["name"], "ConfigError");
        assert_eq!(
            (&exception["stack"], &exception["cause"], &exception["context"]),
            (&json!([]), &Value::Null, &Value::Null)
        );
    }
    assert!(!state.exists(), "nothing may run: {} exists", state.display());

    // Only one of the two variables, or messages floe-host cannot write.
    let run = floe_host_with_env(&["run", project.to_str().unwrap()], &[("DAGSTER_PIPES_CONTEXT", &data(json!({})))]);
    let run = run.expect_code(2);
    assert!(run.stderr.contains("DAGSTER_PIPES_CONTEXT is set but DAGSTER_PIPES_MESSAGES is not"), "{}", run.stderr);
    let s3 = encode_param(&json!({"bucket": "b", "key_prefix": "p"}));
    let run = floe_host_with_env(
        &["run", project.to_str().unwrap()],
        &[("DAGSTER_PIPES_CONTEXT", &data(json!({}))), ("DAGSTER_PIPES_MESSAGES", &s3)],
    )
    .expect_code(2);
    assert!(run.stderr.contains(r#"but floe-host supports {"path": FILE} or {"stdio""#), "{}", run.stderr);
}

/// `(snapshot id)` per table from the summary table on stdout.
fn stdout_snapshots(stdout: &str) -> BTreeMap<String, i64> {
    stdout
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.len() == 5).then(|| Some((cols[1].to_string(), cols[3].parse().ok()?))).flatten()
        })
        .collect()
}

#[test]
fn summary_json_describes_the_run() {
    let dir = temp_dir();
    let state = dir.path().join("state");
    let summary_path = dir.path().join("summary.json");
    let project = example("customer-analytics");
    let run = floe_host(&[
        "run",
        project.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--run-id",
        "summary-test-1",
        "--summary-json",
        summary_path.to_str().unwrap(),
    ])
    .expect_code(0);
    let summary: Value = serde_json::from_str(&fs::read_to_string(&summary_path).unwrap()).unwrap();
    let keys: Vec<&String> = summary.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "duration_ms",
            "error",
            "exit_code",
            "failed_step",
            "partition",
            "pipeline",
            "plugins",
            "run_id",
            "started_at_unix_ms",
            "status",
            "steps"
        ]
    );
    assert_eq!(summary["run_id"], "summary-test-1");
    assert_eq!(summary["partition"], Value::Null, "no --partition");
    assert_eq!(summary["pipeline"], "customer-analytics");
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["error"], Value::Null);
    assert_eq!(summary["failed_step"], Value::Null);
    let snapshots = stdout_snapshots(&run.stdout);
    let steps = summary["steps"].as_array().unwrap();
    let got: Vec<(String, String, u64)> = steps
        .iter()
        .map(|s| {
            (s["step"].as_str().unwrap().into(), s["table"].as_str().unwrap().into(), s["rows_out"].as_u64().unwrap())
        })
        .collect();
    let want: Vec<(String, String, u64)> = DEMO_ROWS
        .iter()
        .map(|(key, rows)| (key.split('/').nth(1).unwrap().to_string(), key.replace('/', "."), *rows))
        .collect();
    assert_eq!(got, want);
    for step in steps {
        let table = step["table"].as_str().unwrap();
        assert_eq!(step["snapshot_id"].as_i64(), snapshots.get(table).copied(), "{table}: stdout\n{}", run.stdout);
        assert_eq!(step["files"], 1, "{step}");
        assert!(step["bytes"].as_u64().unwrap() > 0 && step["duration_ms"].as_u64().is_some(), "{step}");
    }
    let names: Vec<&String> = steps[0].as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "already_committed",
            "bytes",
            "bytes_in",
            "duration_ms",
            "files",
            "plugin_calls",
            "plugin_compile_ms",
            "plugin_cpu_ms",
            "plugin_from_cache",
            "plugin_peak_memory_bytes",
            "rows_in",
            "rows_out",
            "snapshot_id",
            "started_ms",
            "step",
            "superseded",
            "table",
            "tests"
        ]
    );

    // Rows and bytes read: an ingest reads its CSV (rows: what the plugin
    // parsed); other steps read their input tables, as this run committed them.
    let by_step: BTreeMap<&str, &Value> = steps.iter().map(|s| (s["step"].as_str().unwrap(), s)).collect();
    let committed = |step: &str, field: &str| by_step[step][field].as_u64().unwrap();
    let data = project.join("data");
    let inputs: [(&str, &[&str]); 7] = [
        ("stg_customers", &["raw_customers"]),
        ("stg_orders", &["raw_orders"]),
        ("customer_totals", &["stg_orders", "stg_customers"]),
        ("daily_revenue", &["stg_orders", "stg_customers"]),
        ("customer_contacts", &["stg_customers"]),
        ("first_orders", &["raw_orders"]),
        ("large_orders", &["stg_orders"]),
    ];
    let mut want: BTreeMap<&str, (u64, u64)> = inputs
        .iter()
        .map(|(step, from)| {
            let rows = from.iter().map(|t| committed(t, "rows_out")).sum();
            let bytes = from.iter().map(|t| committed(t, "bytes")).sum();
            (*step, (rows, bytes))
        })
        .collect();
    want.insert("raw_customers", (1055, fs::metadata(data.join("customers.csv")).unwrap().len()));
    want.insert("raw_orders", (5099, fs::metadata(data.join("orders.csv")).unwrap().len()));
    let got: BTreeMap<&str, (u64, u64)> = by_step
        .iter()
        .map(|(step, s)| (*step, (s["rows_in"].as_u64().unwrap(), s["bytes_in"].as_u64().unwrap())))
        .collect();
    assert_eq!(got, want);
    // Steps may overlap, but none starts before the steps it reads ended.
    for (step, from) in &inputs {
        for input in *from {
            let ended = committed(input, "started_ms") + committed(input, "duration_ms");
            assert!(committed(step, "started_ms") >= ended, "{step} started before {input} ended: {summary}");
        }
    }
    assert_eq!(got["stg_orders"].0, 5099);
    assert_eq!(got["customer_totals"].0, 4367 + 1000);
    assert_eq!(got["raw_customers"].1, 64703);

    // What plugins cost: only plugin steps report it, and within bounds.
    const MEMORY_LIMIT: u64 = 1 << 30; // the default `plugins.memory_limit`
    for step in steps {
        let name = step["step"].as_str().unwrap();
        let fields = [&step["plugin_cpu_ms"], &step["plugin_peak_memory_bytes"], &step["plugin_calls"]];
        if name.starts_with("stg_") || name == "customer_totals" || name == "daily_revenue" {
            assert!(fields.iter().all(|v| v.is_null()), "a SQL model runs no plugin: {step}");
            continue;
        }
        let cpu_ms = step["plugin_cpu_ms"].as_f64().unwrap();
        // One thread runs the plugin: its CPU time fits in the step's wall time.
        assert!(cpu_ms >= 0.0 && cpu_ms <= step["duration_ms"].as_f64().unwrap() + 1.0, "{step}");
        let peak = step["plugin_peak_memory_bytes"].as_u64().unwrap();
        assert!(peak >= 64 << 10 && peak <= MEMORY_LIMIT, "at least one wasm page, at most the limit: {step}");
        let calls = step["plugin_calls"].as_u64().unwrap();
        match name {
            // Instantiate, open, one push (the CSV is smaller than a chunk), finish, drop.
            "raw_customers" | "raw_orders" => assert_eq!(calls, 5, "{step}"),
            // SQL mode: instantiate and `sql`.
            "large_orders" => assert_eq!(calls, 2, "{step}"),
            // Streaming: `sql`, then instantiate, output-schema, open, 1+ pushes, finish, drop.
            _ => assert!(calls >= 2 + 6, "{step}"),
        }
    }
    assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));

    // Plugins compiled before the first step, in order of first use, each
    // once (csv-ingest serves two steps); a fresh state directory has an
    // empty compile cache. A plugin step repeats its plugin's figures.
    let plugins = summary["plugins"].as_array().unwrap();
    let loads: Vec<(&str, bool)> =
        plugins.iter().map(|p| (p["plugin"].as_str().unwrap(), p["from_cache"].as_bool().unwrap())).collect();
    assert_eq!(loads, [("csv-ingest", false), ("pii-mask", false), ("dedup", false), ("sql-filter", false)]);
    let compile_ms = |plugin: &str| plugins.iter().find(|p| p["plugin"] == plugin).unwrap()["compile_ms"].clone();
    for (step, plugin) in [("raw_orders", "csv-ingest"), ("first_orders", "dedup"), ("large_orders", "sql-filter")] {
        assert_eq!(by_step[step]["plugin_compile_ms"], compile_ms(plugin), "{step}");
        assert_eq!(by_step[step]["plugin_from_cache"], false, "{step}");
    }
    assert_eq!(by_step["stg_orders"]["plugin_compile_ms"], Value::Null, "a SQL model");
    assert!(plugins.iter().all(|p| p["sha256"].as_str().unwrap().len() == 64), "{plugins:?}");
    let line = run.stdout.lines().find(|l| l.starts_with("plugins: ")).expect("a plugins line in the summary");
    assert!(
        line.starts_with("plugins: csv-ingest compiled in ") && line.contains(", sql-filter compiled in "),
        "{line}"
    );
    // Again in the same state directory: every plugin from the cache.
    let rerun = floe_host(&[
        "run",
        project.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--summary-json",
        summary_path.to_str().unwrap(),
    ])
    .expect_code(0);
    let again: Value = serde_json::from_str(&fs::read_to_string(&summary_path).unwrap()).unwrap();
    let cached: Vec<bool> =
        again["plugins"].as_array().unwrap().iter().map(|p| p["from_cache"].as_bool().unwrap()).collect();
    assert_eq!(cached, [true; 4], "{}", again["plugins"]);
    assert!(rerun.stdout.contains("plugins: csv-ingest from the cache in "), "{}", rerun.stdout);

    // A failed run: the committed steps, the failing one and the error.
    broken_project(&dir.path().join("broken"));
    let run = floe_host(&[
        "run",
        dir.path().join("broken").to_str().unwrap(),
        "--run-id",
        "summary-test-2",
        "--summary-json",
        summary_path.to_str().unwrap(),
    ])
    .expect_code(1);
    let summary: Value = serde_json::from_str(&fs::read_to_string(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["run_id"], "summary-test-2");
    assert_eq!(summary["pipeline"], "broken");
    assert_eq!(summary["status"], "failed");
    assert_eq!(summary["exit_code"], 1);
    assert_eq!(summary["failed_step"], "broken");
    assert_eq!(summary["plugins"], json!([]), "a failed run lists no plugins");
    let error = summary["error"].as_str().unwrap();
    assert!(error.starts_with("step `broken`") && error.contains(BROKEN_SQL_ERROR), "{error}");
    assert!(run.stderr.contains(error), "the same text as on stderr:\n{}", run.stderr);
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(
        (&steps[0]["step"], &steps[0]["table"], &steps[0]["rows_out"]),
        (&json!("raw_customers"), &json!("bronze.raw_customers"), &json!(3))
    );
}

/// The example's `floe_maintenance_job`, executed by real Dagster: one
/// `AssetObservation` per table with floe-host's figures, and the per-table
/// log lines in the event log.
#[test]
fn dagster_runs_the_maintenance_job_and_observes_each_table() {
    let dir = temp_dir();
    let project = dir.path().join("project");
    broken_project(&project);
    fs::write(project.join("models/broken.sql"), "SELECT customer_id, name FROM bronze.raw_customers\n").unwrap();
    let state = dir.path().join("state");
    for _ in 0..2 {
        floe_host(&["run", project.to_str().unwrap(), "--state-dir", state.to_str().unwrap()]).expect_code(0);
    }
    let args = [env!("CARGO_BIN_EXE_floe-host"), project.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
    let result = python_json("dagster_demo.py", &[&args[..], &["--maintain"]].concat());
    assert_eq!(result["success"], true, "{result:#}");
    let observed = result["observations"].as_object().unwrap();
    let keys: Vec<&String> = observed.keys().collect();
    assert_eq!(keys, ["bronze/raw_customers", "silver/broken"], "{result:#}");
    for figures in observed.values() {
        // Two runs, and the default retention (7 days) expires nothing.
        assert_eq!((&figures["snapshots"], &figures["snapshots_expired"]), (&json!(2), &json!(0)), "{figures}");
        assert!(figures["floe_run_id"].as_str().unwrap().starts_with("maintain-"), "{figures}");
    }
    let logs = result["logs"].to_string();
    assert!(logs.contains("maintained bronze.raw_customers: 0 snapshots expired"), "{logs}");
}
