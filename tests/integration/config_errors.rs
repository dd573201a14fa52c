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
    assert_eq!(validate.stdout.trim(), "ok: 2 steps");
    let plan = floe_host(&["plan", dir.path().to_str().unwrap()]).expect_code(0);
    let order: Vec<&str> = plan.stdout.lines().filter(|l| l.starts_with(char::is_numeric)).collect();
    assert_eq!(order.len(), 2, "{}", plan.stdout);
    assert!(order[0].starts_with("1. raw_customers -> bronze.raw_customers"), "{}", plan.stdout);
    assert!(order[1].starts_with("2. clean_customers -> silver.clean_customers"), "{}", plan.stdout);
    assert!(plan.stdout.contains("reads bronze.raw_customers = bronze.raw_customers"), "{}", plan.stdout);
}
