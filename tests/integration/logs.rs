//! What a log collector sees with `--log-format json`: only JSON lines on
//! stderr, every record of a run with its run id (and its step's name and
//! table inside a step), and a last ERROR record that says why the process
//! failed, with the exit code, the step and the table. Panics too.

use std::path::Path;

use serde_json::Value;

use crate::support::{floe_host, floe_host_with_env, temp_dir};

/// A fresh `floe-host init` project in `dir`, with `stg_customers.sql` broken.
fn broken_project(dir: &Path) -> String {
    let project = dir.join("demo");
    floe_host(&["init", project.to_str().unwrap()]).expect_code(0);
    let model = project.join("models/stg_customers.sql");
    let sql = std::fs::read_to_string(&model).unwrap();
    std::fs::write(&model, sql.replace("lower(trim(email))", "lower(trim(no_such_column))")).unwrap();
    project.display().to_string()
}

/// Every stderr line as a JSON object; panics on a line that is not one.
fn json_records(stderr: &str) -> Vec<serde_json::Map<String, Value>> {
    stderr
        .lines()
        .map(|line| match serde_json::from_str(line) {
            Ok(Value::Object(record)) => record,
            _ => panic!("a stderr line is not a JSON object: {line:?}\n--- stderr\n{stderr}"),
        })
        .collect()
}

#[test]
fn a_failed_run_logs_only_json_and_ends_in_an_error_record_with_its_context() {
    let dir = temp_dir();
    let project = broken_project(dir.path());
    let state = dir.path().join("state");
    let run = floe_host_with_env(
        &["run", &project, "--state-dir", state.to_str().unwrap(), "--log-format", "json", "--run-id", "nightly-7"],
        &[("FLOE_LOG", "info")],
    )
    .expect_code(2);
    let records = json_records(&run.stderr);
    assert!(records.len() > 5, "{}", run.stderr);
    for record in &records {
        for key in ["timestamp", "level", "message"] {
            assert!(record.get(key).is_some_and(Value::is_string), "no {key}: {record:?}");
        }
        // Every record of the run carries the run's id and pipeline.
        assert_eq!(record.get("run_id"), Some(&Value::from("nightly-7")), "{record:?}");
        assert_eq!(record.get("pipeline"), Some(&Value::from("demo")), "{record:?}");
        // Only floe's own records at info (dependencies stay at warn).
        if let Some(target) = record.get("target") {
            assert!(target.as_str().unwrap().starts_with("floe"), "a dependency's record at info: {record:?}");
        }
    }
    // Records inside a step carry the step and its table.
    let ingest = records.iter().find(|r| r["message"] == "The plugin ingested a source object.").unwrap();
    assert_eq!(
        (&ingest["step"], &ingest["table"]),
        (&Value::from("raw_customers"), &Value::from("bronze.raw_customers"))
    );
    assert_eq!(ingest["plugin"], "csv-ingest");
    // A plugin's own log lines show at info, tagged with the plugin and step.
    let own = records.iter().find(|r| r.get("target") == Some(&Value::from("floe::plugin"))).expect("a plugin's line");
    assert_eq!(
        (&own["level"], &own["plugin"], &own["step"]),
        (&"INFO".into(), &"csv-ingest".into(), &"raw_customers".into())
    );
    assert!(own["message"].as_str().unwrap().starts_with("parsed "), "{own:?}");
    // Its plugin compiled before the first step, in a record of the run.
    let compiled: Vec<_> = records.iter().filter(|r| r["message"] == "Compiled the plugin.").collect();
    assert_eq!(compiled.len(), 1, "csv-ingest, the project's only plugin: {}", run.stderr);
    let first_step = records.iter().position(|r| r["message"] == "Running step.").unwrap();
    assert!(records.iter().position(|r| r["message"] == "Compiled the plugin.").unwrap() < first_step);
    let last = records.last().unwrap();
    assert_eq!(last["level"], "ERROR", "{last:?}");
    assert_eq!(last["exit_code"], 2);
    assert_eq!(last["step"], "stg_customers");
    assert_eq!(last["table"], "silver.stg_customers");
    let message = last["message"].as_str().unwrap();
    assert!(message.contains("no_such_column") && message.contains("stg_customers.sql"), "{message}");
    // The text format says the same in one `error:` paragraph.
    let text =
        floe_host(&["run", &project, "--state-dir", state.to_str().unwrap(), "--log-format", "text"]).expect_code(2);
    assert!(text.stderr.contains("error: step `stg_customers`: SQL"), "{}", text.stderr);
}

#[test]
fn configuration_errors_and_panics_are_json_records_too() {
    let dir = temp_dir();
    let missing = dir.path().join("nowhere");
    let run = floe_host(&["validate", missing.to_str().unwrap(), "--log-format", "json"]).expect_code(2);
    let records = json_records(&run.stderr);
    assert_eq!(records.len(), 1, "{}", run.stderr);
    assert_eq!((&records[0]["level"], &records[0]["exit_code"]), (&Value::from("ERROR"), &Value::from(2)));
    assert!(records[0]["message"].as_str().unwrap().contains("cannot read the pipeline file"), "{:?}", records[0]);

    // A panic (injected where a new table is created) is an ERROR record, not Rust's text report.
    let project = broken_project(dir.path());
    let state = dir.path().join("state");
    let run = floe_host_with_env(
        &["run", &project, "--state-dir", state.to_str().unwrap(), "--log-format", "json"],
        &[("FLOE_FAILPOINT", "create-table:panic")],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    let records = json_records(&run.stderr);
    let panic = records.iter().find(|r| r.get("panic") == Some(&Value::Bool(true))).expect("a panic record");
    assert_eq!(panic["level"], "ERROR");
    assert!(panic["message"].as_str().unwrap().contains("failpoint create-table: injected panic"), "{panic:?}");
    assert!(panic["location"].as_str().unwrap().contains("failpoint.rs"), "{panic:?}");
}
