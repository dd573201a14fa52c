//! Bad input fails before anything runs: exit code 2, a message that names
//! the file and the key, and nothing written.

use std::fs;
use std::path::Path;

use crate::support::{floe_host, floe_host_command, plugin, temp_dir};

/// Writes a one-step-per-layer project whose floe.yaml is `floe_yaml` with
/// `PLUGIN` replaced by the built csv-ingest component.
fn project(dir: &Path, floe_yaml: &str) {
    fs::create_dir_all(dir.join("data")).unwrap();
    fs::create_dir_all(dir.join("models")).unwrap();
    fs::write(dir.join("data/customers.csv"), "customer_id,name\n1,a\n").unwrap();
    fs::write(dir.join("models/clean.sql"), "SELECT * FROM bronze.raw_customers\n").unwrap();
    fs::write(dir.join("models/typo.sql"), "SELECT *\nFROM silver.clean_customerz\n").unwrap();
    let yaml = floe_yaml.replace("PLUGIN", plugin("csv_ingest.wasm").to_str().unwrap());
    fs::write(dir.join("floe.yaml"), yaml).unwrap();
}

const HEADER: &str = "name: broken\nplugins:\n  csv-ingest:\n    path: PLUGIN\ntransforms:\n";

const INGEST: &str = "  - name: raw_customers\n    layer: bronze\n    kind: ingest\n    plugin: csv-ingest\n    source: data/customers.csv\n";

/// Runs `floe-host run` on the project and checks the failure is a config
/// error that mentions every `needle`, and that no state was created.
fn assert_config_error(floe_yaml: &str, needles: &[&str]) {
    let dir = temp_dir();
    project(dir.path(), floe_yaml);
    let state = dir.path().join("state");
    let run = floe_host(&["run", dir.path().to_str().unwrap(), "--state-dir", state.to_str().unwrap()]).expect_code(2);
    for needle in needles {
        assert!(run.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", run.stderr);
    }
    assert!(!state.exists(), "a failed validation must write nothing, but {} exists", state.display());
    // validate agrees with run.
    floe_host(&["validate", dir.path().to_str().unwrap()]).expect_code(2);
}

#[test]
fn missing_data_file_names_file_and_key() {
    let yaml = format!("{HEADER}{}", INGEST.replace("data/customers.csv", "data/nope.csv"));
    assert_config_error(&yaml, &["floe.yaml:10:5: `transforms[0].source`", "data/nope.csv", "does not exist"]);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let yaml = format!("{HEADER}{INGEST}    sorce: x\n");
    assert_config_error(&yaml, &["floe.yaml:11:5: `transforms[0].sorce`", "unknown field `sorce`"]);
}

#[test]
fn sql_reading_a_table_no_step_produces_names_the_sql_file_and_key() {
    let yaml = format!(
        "{HEADER}{INGEST}  - name: clean_customers\n    layer: silver\n    kind: sql\n    sql: models/clean.sql\n  \
         - name: totals\n    layer: gold\n    kind: sql\n    sql: models/typo.sql\n"
    );
    assert_config_error(
        &yaml,
        &[
            "typo.sql:2:6: references `silver.clean_customerz`, which no step produces",
            "`transforms[2].sql`",
            "tables in layer `silver`: silver.clean_customers",
        ],
    );
}

/// `floe-host plan --json | head -1`: the reader closes the pipe after one
/// line; floe-host stops writing quietly instead of panicking.
#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let dir = temp_dir();
    project(dir.path(), &format!("{HEADER}{INGEST}"));
    let mut child = floe_host_command(&["plan", "--json", dir.path().to_str().unwrap()], &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before floe-host writes: its first write fails with EPIPE.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "stderr:\n{stderr}");
}

#[test]
fn valid_project_validates_and_plans_in_dependency_order() {
    let dir = temp_dir();
    // The SQL step comes first in the file but runs after the ingest it reads.
    let yaml = format!(
        "{HEADER}  - name: clean_customers\n    layer: silver\n    kind: sql\n    sql: models/clean.sql\n{INGEST}"
    );
    project(dir.path(), &yaml);
    let validate = floe_host(&["validate", dir.path().to_str().unwrap()]).expect_code(0);
    assert_eq!(validate.stdout.trim(), "ok: 2 steps; 1 SQL models parsed, 0 bound against their inputs");
    let plan = floe_host(&["plan", dir.path().to_str().unwrap()]).expect_code(0);
    let order: Vec<&str> = plan.stdout.lines().filter(|l| l.starts_with(char::is_numeric)).collect();
    assert_eq!(order.len(), 2, "{}", plan.stdout);
    assert!(order[0].starts_with("1. raw_customers -> bronze.raw_customers"), "{}", plan.stdout);
    assert!(order[1].starts_with("2. clean_customers -> silver.clean_customers"), "{}", plan.stdout);
    assert!(plan.stdout.contains("reads bronze.raw_customers = bronze.raw_customers"), "{}", plan.stdout);
}

/// A plugin step's `config` is checked against the schema its plugin
/// declares, by `validate` and by `run` before it opens a catalog or reads
/// anything: every problem at once, each at its file:line:col, exit 2.
#[test]
fn plugin_config_is_checked_against_the_plugin_schema_before_anything_is_read() {
    let dir = temp_dir();
    let yaml = "name: broken\nplugins:\n  csv-ingest:\n    path: PLUGIN\n  dedup:\n    path: DEDUP\ntransforms:\n\
                \x20 - name: raw_customers\n    layer: bronze\n    kind: ingest\n    plugin: csv-ingest\n    \
                source: data/customers.csv\n    config:\n      batch_rows: 0\n      row_numbr_column: n\n\
                \x20 - name: unique_customers\n    layer: silver\n    kind: wasm\n    plugin: dedup\n    \
                inputs: [bronze.raw_customers]\n    config:\n      keys: customer_id\n";
    project(dir.path(), &yaml.replace("DEDUP", plugin("dedup.wasm").to_str().unwrap()));
    let expected = [
        "floe.yaml:14:7: `transforms[0].config.batch_rows`: 0 is less than 1 (plugin `csv-ingest`'s config schema)\n  \
         help: `batch_rows`: Maximum number of rows per output batch.",
        "floe.yaml:15:7: `transforms[0].config.row_numbr_column`: unknown key `row_numbr_column`",
        "help: the plugin accepts: batch_rows, row_number_column",
        "floe.yaml:21:5: `transforms[1].config`: missing `key`, which the plugin requires",
        "floe.yaml:22:7: `transforms[1].config.keys`: unknown key `keys`",
        "4 configuration errors",
    ];
    let state = dir.path().join("state");
    let project = dir.path().to_str().unwrap();
    let validate = floe_host(&["validate", project, "--state-dir", state.to_str().unwrap()]).expect_code(2);
    let run = floe_host(&["run", project, "--state-dir", state.to_str().unwrap()]).expect_code(2);
    for out in [&validate, &run] {
        for needle in expected {
            assert!(out.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", out.stderr);
        }
    }
    // Only the compiled plugins were kept: no catalog, no warehouse, no table.
    let kept: Vec<String> =
        fs::read_dir(&state).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(kept, ["component-cache"]);

    // Fixed, both pass.
    let fixed = fs::read_to_string(dir.path().join("floe.yaml"))
        .unwrap()
        .replace("batch_rows: 0", "batch_rows: 500")
        .replace("row_numbr_column", "row_number_column")
        .replace("keys: customer_id", "key: customer_id");
    fs::write(dir.path().join("floe.yaml"), fixed).unwrap();
    let out = floe_host(&["validate", project, "--state-dir", state.to_str().unwrap()]).expect_code(0);
    assert_eq!(out.stdout, "ok: 2 steps\n");
    floe_host(&["run", project, "--state-dir", state.to_str().unwrap()]).expect_code(0);
}
