//! Steps that compute at once (`concurrent_steps`, `run::schedule`): they
//! overlap when nothing makes them wait, one by one with
//! `concurrent_steps: 1`, and a failure beside another step commits nothing
//! of the failed one. (A signal during overlapped steps: `signals.rs`.)
//!
//! Every step waits at its last safe point before its commit
//! (`FLOE_FAILPOINT=before-commit:sleep-…`), so steps that start together
//! are computing together, however fast the machine.

use std::path::{Path, PathBuf};

use crate::support::{example, floe_host_with_env, plugin, step_files, temp_dir};

/// Ingests the demo's customers (and its orders, with `orders`); then
/// `models` (name, SQL) in silver. Returns the floe.yaml and platform.yaml
/// (`concurrent_steps` as given).
fn project(dir: &Path, orders: bool, models: &[(&str, &str)], concurrent_steps: u32) -> (PathBuf, PathBuf) {
    project_with(dir, orders, models, &format!("concurrent_steps: {concurrent_steps}"))
}

/// As `project`, with `compute` the keys of the compute profile besides its type.
fn project_with(dir: &Path, orders: bool, models: &[(&str, &str)], compute: &str) -> (PathBuf, PathBuf) {
    let demo = example("customer-analytics");
    std::fs::create_dir_all(dir.join("models")).unwrap();
    for csv in ["customers.csv", "orders.csv"] {
        std::fs::copy(demo.join("data").join(csv), dir.join(csv)).unwrap();
    }
    let mut floe = format!(
        "name: overlap\nversion: \"1.0.0\"\nstorage: default\ncatalog: default\ncompute: default\n\
         plugins:\n  csv-ingest:\n    path: {plugin}\n\
         transforms:\n\
         \x20 - {{name: raw_customers, layer: bronze, kind: ingest, plugin: csv-ingest, source: customers.csv}}\n",
        plugin = plugin("csv_ingest.wasm").display(),
    );
    if orders {
        floe.push_str("  - {name: raw_orders, layer: bronze, kind: ingest, plugin: csv-ingest, source: orders.csv}\n");
    }
    for (name, sql) in models {
        std::fs::write(dir.join("models").join(format!("{name}.sql")), sql).unwrap();
        floe.push_str(&format!("  - {{name: {name}, layer: silver, kind: sql, sql: models/{name}.sql}}\n"));
    }
    std::fs::write(dir.join("floe.yaml"), floe).unwrap();
    let state = dir.join("state");
    let q = |p: &Path| serde_json::to_string(p.to_str().unwrap()).unwrap();
    std::fs::write(
        dir.join("platform.yaml"),
        format!(
            "catalogs:\n  default: {{type: sql, uri: {uri}, warehouse: {wh}}}\n\
             storage:\n  default: {{type: local, root: {wh}}}\n\
             compute:\n  default: {{type: duckdb, {compute}}}\n",
            uri = q(&PathBuf::from(format!("sqlite:{}", state.join("catalog.db").display()))),
            wh = q(&state.join("warehouse")),
        ),
    )
    .unwrap();
    (dir.join("floe.yaml"), dir.join("platform.yaml"))
}

/// Runs the project with `failpoints`; returns the run and its summary.
fn run(dir: &Path, floe: &Path, platform: &Path, failpoints: &str) -> (crate::support::Run, serde_json::Value) {
    let summary = dir.join("summary.json");
    let state = dir.join("state");
    let args = [
        "run",
        "-f",
        floe.to_str().unwrap(),
        "--platform",
        platform.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
    ];
    let run = floe_host_with_env(&args, &[("FLOE_FAILPOINT", failpoints), ("FLOE_LOG", "info")]);
    let Ok(summary) = std::fs::read(&summary) else { panic!("no summary; stderr:\n{}", run.stderr) };
    let summary = serde_json::from_slice(&summary).unwrap();
    (run, summary)
}

/// A committed step of the summary: (started_ms, duration_ms, rows_out).
fn step(summary: &serde_json::Value, name: &str) -> (u64, u64, u64) {
    let steps = summary["steps"].as_array().unwrap();
    let step = steps.iter().find(|s| s["step"] == name).unwrap_or_else(|| panic!("{name} committed: {summary}"));
    (step["started_ms"].as_u64().unwrap(), step["duration_ms"].as_u64().unwrap(), step["rows_out"].as_u64().unwrap())
}

fn committed(summary: &serde_json::Value) -> Vec<&str> {
    summary["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect()
}

const CUSTOMERS: &str = "SELECT customer_id, region FROM bronze.raw_customers";

#[test]
fn a_model_computes_beside_an_ingest_and_one_by_one_when_told() {
    for concurrent_steps in [2, 1] {
        let dir = temp_dir();
        let (floe, platform) = project(dir.path(), true, &[("customers", CUSTOMERS)], concurrent_steps);
        let (run, summary) = run(dir.path(), &floe, &platform, "before-commit:sleep-1000");
        run.expect_code(0);
        let (customers_start, customers_took, customers_rows) = step(&summary, "raw_customers");
        let (orders_start, orders_took, orders_rows) = step(&summary, "raw_orders");
        let (model_start, _, model_rows) = step(&summary, "customers");
        assert_eq!((customers_rows, orders_rows, model_rows), (1_055, 5_099, 1_055), "{summary}");
        // Two ingests run plugins: never at once.
        assert!(orders_start >= customers_start + customers_took, "{summary}");
        if concurrent_steps == 2 {
            // The model waits for raw_customers only, and starts with raw_orders.
            assert!(model_start < orders_start + orders_took, "the model overlapped raw_orders: {summary}");
            assert!(model_start >= customers_start + customers_took, "{summary}");
        } else {
            assert!(model_start >= orders_start + orders_took, "one by one: {summary}");
        }
        assert_eq!(committed(&summary), ["raw_customers", "raw_orders", "customers"], "plan order");
    }
}

#[test]
fn two_overlapped_steps_that_fail_at_once_commit_nothing_and_both_are_reported() {
    let dir = temp_dir();
    let (floe, platform) = project(dir.path(), false, &[("left", CUSTOMERS), ("right", CUSTOMERS)], 2);
    // Both models compute (their files are written), wait together, then
    // fail at the same safe point.
    let (run, summary) =
        run(dir.path(), &floe, &platform, "before-commit:sleep-500,before-commit-left:error,before-commit-right:error");
    let run = run.expect_code(1);
    let failed_first = if run.stderr.contains("error: step `left`: failpoint") { "left" } else { "right" };
    let other = if failed_first == "left" { "right" } else { "left" };
    assert!(
        run.stderr.contains(&format!("error: step `{failed_first}`: failpoint before-commit-{failed_first}")),
        "the run's error: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Step failed beside the step that fails the run")
            && run.stderr.contains(&format!("failpoint before-commit-{other}: injected error")),
        "the other failure is logged: {}",
        run.stderr
    );
    assert_eq!(summary["status"], "failed", "{summary}");
    assert_eq!(summary["failed_step"], failed_first, "the step of the run's error: {summary}");
    assert_eq!(committed(&summary), ["raw_customers"], "{summary}");
    for table in ["left", "right"] {
        assert_eq!(
            step_files(&dir.path().join("state"), &format!("silver.{table}")),
            Vec::<PathBuf>::new(),
            "{table}: its files are deleted"
        );
    }
    let show = floe_host_with_env(
        &[
            "show",
            "silver.left",
            "-f",
            floe.to_str().unwrap(),
            "--platform",
            platform.to_str().unwrap(),
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
        ],
        &[],
    );
    assert!(show.stderr.contains("does not exist"), "silver.left: {}{}", show.stdout, show.stderr);
}

#[test]
fn a_step_that_fails_beside_another_lets_it_commit_and_starts_nothing_after() {
    let dir = temp_dir();
    let models = [("left", CUSTOMERS), ("right", CUSTOMERS), ("after", "SELECT count(*) AS n FROM silver.right")];
    let (floe, platform) = project(dir.path(), false, &models, 2);
    // `left` fails at once; `right` commits 1.5 s later, when the run is
    // already failing.
    let failpoints = "before-commit:sleep-300,before-commit-left:error,before-commit-right:sleep-1500";
    let (run, summary) = run(dir.path(), &floe, &platform, failpoints);
    let run = run.expect_code(1);
    assert!(run.stderr.contains("error: step `left`: failpoint before-commit-left: injected error"), "{}", run.stderr);
    // `right` computed beside `left` and is whole: it commits. `after`
    // would start once `right` committed, but the run is failing by then.
    assert_eq!(committed(&summary), ["raw_customers", "right"], "{summary}");
    assert_eq!(step(&summary, "right").2, 1_055);
    assert_eq!(step_files(&dir.path().join("state"), "silver.left"), Vec::<PathBuf>::new());
    assert_eq!(summary["failed_step"], "left", "{summary}");
}

#[test]
fn two_models_that_spill_at_once_each_spill_to_a_folder_of_their_own() {
    let dir = temp_dir();
    // 3.2M rows sorted by a hash: far more than each model's half of 160 MB.
    let sorted = "SELECT c.customer_id, r.i, md5(c.customer_id || '-' || r.i) AS h \
                  FROM bronze.raw_customers c, range(3000) r(i) ORDER BY h";
    let models = [("left", sorted), ("right", sorted)];
    let compute = "concurrent_steps: 2, properties: {memory_limit: 160MB, threads: 2}";
    let (floe, platform) = project_with(dir.path(), false, &models, compute);
    let (run, summary) = run(dir.path(), &floe, &platform, "before-commit:sleep-200");
    run.expect_code(0);
    let (left_start, left_took, left_rows) = step(&summary, "left");
    let (right_start, _, right_rows) = step(&summary, "right");
    assert_eq!((left_rows, right_rows), (1_055 * 3_000, 1_055 * 3_000), "{summary}");
    assert!(right_start < left_start + left_took, "they overlapped: {summary}");
}
