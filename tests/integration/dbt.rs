//! dbt projects run unchanged: floe-platform's `type: dbt` pipeline and an
//! incremental project, each checked against the demo's tables and against
//! real dbt-core + dbt-duckdb running the same models (tests/py/dbt_compare.py).

use std::path::Path;

use serde_json::Value;

use crate::support::{floe_host, floe_host_with_env, openlineage_schemas, parquet_files, python_json, repo, temp_dir};

const DEMO_TABLES: [&str; 4] =
    ["silver.stg_customers", "silver.stg_orders", "gold.customer_totals", "gold.daily_revenue"];

fn table(state: &Path, name: &str, order_by: &str) -> Value {
    python_json("table_check.py", &["--state-dir", state.to_str().unwrap(), "--table", name, "--order-by", order_by])
}

/// Runs dbt over the bronze tables in `state` and returns each model's
/// comparison; then `dbt test` with `with_tests` (its results under `dbt_tests`).
fn dbt_compare(
    project: &Path,
    state: &Path,
    db: &Path,
    sources: &[&str],
    models: &[&str],
    vars: Option<&str>,
    with_tests: bool,
) -> Value {
    let mut args = vec![
        "--project".to_string(),
        project.display().to_string(),
        "--state-dir".into(),
        state.display().to_string(),
        "--db".into(),
        db.display().to_string(),
    ];
    for source in sources {
        args.extend(["--source".to_string(), source.to_string()]);
    }
    for model in models {
        args.extend(["--model".to_string(), model.to_string()]);
    }
    if let Some(vars) = vars {
        args.extend(["--vars".to_string(), vars.to_string()]);
    }
    if with_tests {
        args.push("--with-tests".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python_json("dbt_compare.py", &args)
}

fn assert_equal_to_dbt(compared: &Value, models: &[&str]) {
    for model in models {
        let result = &compared["models"][model];
        assert_eq!(result["equal"], true, "{model}: floe-host and dbt differ: {result}");
        assert!(result["floe_rows"].as_u64().unwrap() > 0, "{model}: {result}");
    }
}

/// floe-platform's own layout: `type: dbt`, `schema: silver`, models with
/// config/source/ref and a macro in a dbt project folder. Its tables equal
/// the demo's (whose models are plain SQL), and those dbt builds.
#[test]
fn floe_platform_project_runs_unchanged() {
    let (ours, demo, dbt) = (temp_dir(), temp_dir(), temp_dir());
    let example = repo().join("examples/from-floe-platform");
    let summary = ours.path().join("summary.json");
    let args = ["run", example.to_str().unwrap(), "--state-dir", ours.path().to_str().unwrap(), "--summary-json"];
    let run = floe_host(&[&args[..], &[summary.to_str().unwrap()]].concat()).expect_code(0);
    assert!(run.stdout.contains("gold.daily_revenue"), "{}", run.stdout);
    // The data tests of dbt/models/schema.yml and the two singular tests of
    // dbt/tests, checked on each output. The demo data has 39 orders of
    // customers the customer file lacks: the `warn` relationships test
    // reports them; the other nine pass.
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let mut tests: Vec<(String, u64)> = Vec::new();
    for step in summary["steps"].as_array().unwrap() {
        for test in step["tests"].as_array().unwrap() {
            tests.push((test["test"].as_str().unwrap().to_string(), test["failures"].as_u64().unwrap()));
        }
    }
    assert_eq!(tests.len(), 10, "{tests:?}");
    let failing: Vec<&(String, u64)> = tests.iter().filter(|(_, failures)| *failures > 0).collect();
    assert_eq!(failing, [&("relationships(customer_id)".to_string(), 39)], "{tests:?}");
    let demo_project = repo().join("examples/customer-analytics");
    let mut args = vec!["run", demo_project.to_str().unwrap(), "--state-dir", demo.path().to_str().unwrap()];
    args.extend(["--select", "+customer_totals", "--select", "+daily_revenue"]);
    floe_host(&args).expect_code(0);
    for name in DEMO_TABLES {
        // Each table's key (the silver tables are not sorted; pyarrow's sort is stable).
        let order_by = match name {
            n if n.ends_with("daily_revenue") => "order_date",
            n if n.ends_with("stg_orders") => "order_id",
            _ => "customer_id",
        };
        let (a, b) = (table(ours.path(), name, order_by), table(demo.path(), name, order_by));
        assert!(a["rows"].as_u64().unwrap() > 400, "{name}: {}", a["rows"]);
        assert_eq!(a["records"], b["records"], "{name}: the dbt project's table differs from the demo's");
    }

    let compared = dbt_compare(
        &example.join("dbt"),
        ours.path(),
        &dbt.path().join("dbt.duckdb"),
        &["bronze.raw_customers", "bronze.raw_orders"],
        &DEMO_TABLES,
        None,
        true,
    );
    assert_equal_to_dbt(&compared, &DEMO_TABLES);
    // dbt runs the same ten tests (two of them singular) with the same
    // results: nine pass, and the relationships test warns about the same 39 rows.
    assert_eq!(compared["dbt_tests"], serde_json::json!({"pass": 9, "warn": 1}), "{compared}");
    let failures = compared["dbt_test_failures"].as_object().unwrap();
    assert_eq!(failures.values().collect::<Vec<_>>(), [&Value::from(39)], "{compared}");

    // The tags of the models' config select steps.
    let plan = floe_host(&["plan", example.to_str().unwrap(), "--select", "tag:finance"]).expect_code(0);
    assert!(plan.stdout.starts_with("pipeline customer-analytics (2 steps)"), "{}", plan.stdout);
}

/// Incremental models, run twice as orders arrive: one appends what is new
/// (reading its own table as `{{ this }}`), one merges by day. After each run
/// floe-host's tables equal dbt's.
#[test]
fn incremental_models_append_and_merge() {
    let (state, dbt) = (temp_dir(), temp_dir());
    let project = repo().join("tests/dbt/incremental");
    let project_arg = project.to_str().unwrap();
    let state_arg = state.path().to_str().unwrap();
    let db = dbt.path().join("dbt.duckdb");
    let models = ["silver.orders_log", "gold.daily_totals"];

    let plan = floe_host(&["plan", project_arg, "--vars", "{last_order: 5}"]).expect_code(0);
    assert!(plan.stdout.contains("orders_log.sql (incremental once the table exists)"), "{}", plan.stdout);
    let missing = floe_host(&["validate", project_arg]).expect_code(2);
    assert!(
        missing.stderr.contains("orders_log.sql:5:38: model `orders_log`: var('last_order') is not defined"),
        "{}",
        missing.stderr
    );

    for (last_order, vars) in [(5, "{last_order: 5}"), (10, "{last_order: 10}")] {
        floe_host(&["run", project_arg, "--state-dir", state_arg, "--vars", vars]).expect_code(0);
        let compared = dbt_compare(&project, state.path(), &db, &["bronze.raw_orders"], &models, Some(vars), false);
        assert_equal_to_dbt(&compared, &models);
        let log = table(state.path(), "silver.orders_log", "order_id");
        assert_eq!(log["rows"], last_order, "{log}");
        assert_eq!(log["sums"]["order_id"], (1..=last_order).sum::<u64>(), "each order once: {log}");
    }
    let log = table(state.path(), "silver.orders_log", "order_id");
    let operations: Vec<&str> =
        log["snapshots"].as_array().unwrap().iter().map(|s| s["operation"].as_str().unwrap()).collect();
    assert_eq!(operations, ["append", "append"], "{log}");
    // Day 3 had one order at the first run and two at the second: merged, not added.
    let totals = table(state.path(), "gold.daily_totals", "order_date");
    assert_eq!(totals["rows"], 6, "{totals}");
    let day3 = totals["records"].as_array().unwrap().iter().find(|r| r["order_date"] == "2024-01-03").unwrap();
    assert_eq!((&day3["orders"], &day3["revenue"]), (&Value::from(2), &Value::from("101.00")), "{totals}");
}

/// A model DuckDB cannot bind fails the run before anything is read, with
/// the model's file, line and column, exit 2 and no new snapshot. Its
/// inputs are tables this run does not write, so their columns come from
/// the catalog.
#[test]
fn a_broken_model_fails_before_any_data_is_read() {
    let (work, state) = (temp_dir(), temp_dir());
    let project = floe_platform_copy(work.path());
    let (project_arg, state_arg) = (project.to_str().unwrap(), state.path().to_str().unwrap());
    floe_host(&["run", project_arg, "--state-dir", state_arg]).expect_code(0);
    let before = table(state.path(), "gold.customer_totals", "customer_id")["current_snapshot_id"].clone();

    let model = project.join("dbt/models/gold/customer_totals.sql");
    let broken = std::fs::read_to_string(&model).unwrap().replace("min(o.order_date)", "min(o.order_day)");
    std::fs::write(&model, broken).unwrap();
    let run = floe_host(&["run", project_arg, "--state-dir", state_arg, "--select", "customer_totals"]).expect_code(2);
    let expected = format!(
        "{}:8:9: model `customer_totals`: Binder Error: Table \"o\" does not have a column named \"order_day\"",
        model.display()
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(!run.stderr.contains("Starting step"), "no step may start: {}", run.stderr);
    let after = table(state.path(), "gold.customer_totals", "customer_id")["current_snapshot_id"].clone();
    assert_eq!(before, after, "nothing may be committed");

    // validate binds against the catalog's tables too (metadata only), and
    // finds the same error; `--offline` opens no catalog, and binds none of
    // these models, whose inputs the ingest steps write.
    let validate = floe_host(&["validate", project_arg, "--state-dir", state_arg]).expect_code(2);
    assert!(validate.stderr.contains(&expected), "{}", validate.stderr);
    let offline = floe_host(&["validate", project_arg, "--state-dir", state_arg, "--offline"]).expect_code(0);
    assert_eq!(offline.stdout, "ok: 6 steps; 4 SQL models parsed, 0 bound against their inputs\n");
    let fresh = temp_dir();
    let no_tables = floe_host(&["validate", project_arg, "--state-dir", fresh.path().to_str().unwrap()]);
    assert_eq!(no_tables.expect_code(0).stdout, "ok: 6 steps; 4 SQL models parsed, 0 bound against their inputs\n");
    assert!(!fresh.path().join("catalog.db").exists(), "validate creates no catalog");

    // A model that reads a table the same run ingests is bound once that
    // table is committed, before the model's step reads it.
    let model = project.join("dbt/models/silver/stg_customers.sql");
    let broken = std::fs::read_to_string(&model).unwrap().replace("    region,", "    regoin,");
    std::fs::write(&model, broken).unwrap();
    let state = temp_dir();
    let state_arg = state.path().to_str().unwrap();
    let run = floe_host(&["run", project_arg, "--state-dir", state_arg]).expect_code(2);
    let expected = format!(
        "{}:8:5: model `stg_customers`: Binder Error: Referenced column \"regoin\" not found in FROM clause!",
        model.display()
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    let bronze = table(state.path(), "bronze.raw_customers", "customer_id");
    assert_eq!(bronze["rows"], 1055, "the ingest before it committed: {bronze}");
    let show = floe_host(&["show", "silver.stg_customers", project_arg, "--state-dir", state_arg]);
    assert!(show.stderr.contains("table `silver.stg_customers` does not exist"), "nothing committed: {}", show.stderr);
}

/// A copy of examples/from-floe-platform in `dir`, to break: its plugin
/// path made absolute.
fn floe_platform_copy(dir: &Path) -> std::path::PathBuf {
    let project = dir.join("project");
    copy_dir(&repo().join("examples/from-floe-platform"), &project);
    let floe_yaml = project.join("floe.yaml");
    let text =
        std::fs::read_to_string(&floe_yaml).unwrap().replace("../../plugins", repo().join("plugins").to_str().unwrap());
    std::fs::write(&floe_yaml, text).unwrap();
    project
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            copy_dir(&path, &to.join(name))
        } else {
            std::fs::copy(&path, to.join(name)).map(|_| ()).unwrap()
        }
    }
}

/// A failed data test with `severity: error` fails its step with exit 4 and
/// commits nothing; with `severity: warn` the step commits and the summary
/// counts the failures.
#[test]
fn data_tests_fail_a_step_or_warn() {
    let (work, state) = (temp_dir(), temp_dir());
    let project = floe_platform_copy(work.path());
    let schema = project.join("dbt/models/schema.yml");
    let strict =
        std::fs::read_to_string(&schema).unwrap().replace("[completed, pending, shipped]", "[completed, pending]");
    std::fs::write(&schema, &strict).unwrap();
    let (project_arg, state_arg) = (project.to_str().unwrap(), state.path().to_str().unwrap());

    let run = floe_host(&["run", project_arg, "--state-dir", state_arg]).expect_code(4);
    let expected = "step `stg_orders`: data tests failed on `silver.stg_orders`, so nothing is committed: \
                    accepted_values(status): 1093 failing rows (e.g. shipped)";
    assert!(run.stderr.contains(expected), "{}", run.stderr);
    let show = floe_host(&["show", "silver.stg_orders", project_arg, "--state-dir", state_arg]);
    assert_ne!(show.code, 0, "stg_orders must not exist: {}", show.stdout);
    // The failed step deleted the data files it had written.
    assert_eq!(parquet_files(&state.path().join("warehouse/silver/stg_orders")), 0, "no orphan is left");

    let warn = strict.replace(
        "values: [completed, pending]",
        "values: [completed, pending]\n              config: {severity: warn}",
    );
    std::fs::write(&schema, warn).unwrap();
    // A singular test that warns: it counts the customers with over five orders.
    let tests = project.join("dbt/tests");
    let loyal =
        "{{ config(severity='warn') }}\nSELECT customer_id FROM {{ ref('customer_totals') }} WHERE order_count > 5\n";
    std::fs::write(tests.join("few_loyal_customers.sql"), loyal).unwrap();
    let summary = work.path().join("summary.json");
    let lineage = work.path().join("lineage.jsonl");
    let env = [
        ("OPENLINEAGE__TRANSPORT__TYPE", "file"),
        ("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", lineage.to_str().unwrap()),
    ];
    let args = ["run", project_arg, "--state-dir", state_arg, "--summary-json", summary.to_str().unwrap()];
    floe_host_with_env(&args, &env).expect_code(0);
    // Lineage carries the outcomes as the spec's data quality assertions, and validates.
    let schemas = openlineage_schemas();
    let report = python_json("lineage_validate.py", &[schemas.to_str().unwrap(), lineage.to_str().unwrap()]);
    assert_eq!(report["violations"], serde_json::json!([]), "{report}");
    let events: Vec<Value> =
        std::fs::read_to_string(&lineage).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let complete = events
        .iter()
        .find(|e| {
            e["eventType"] == "COMPLETE" && e["outputs"][0]["name"].as_str().is_some_and(|n| n.ends_with("stg_orders"))
        })
        .expect("a COMPLETE event for stg_orders");
    let assertions = complete["outputs"][0]["facets"]["dataQualityAssertions"]["assertions"].as_array().unwrap();
    let accepted = assertions.iter().find(|a| a["assertion"] == "accepted_values").unwrap();
    assert_eq!(
        (&accepted["success"], &accepted["column"], &accepted["severity"]),
        (&Value::from(false), &Value::from("status"), &Value::from("warn"))
    );
    assert_eq!(assertions.iter().filter(|a| a["success"] == true).count(), 2, "{assertions:?}");
    let references = assertions.iter().find(|a| a["assertion"] == "relationships").unwrap();
    assert_eq!((&references["success"], &references["actual"]), (&Value::from(false), &Value::from("39 failing rows")));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let stg_orders = summary["steps"].as_array().unwrap().iter().find(|s| s["step"] == "stg_orders").unwrap();
    let test = stg_orders["tests"].as_array().unwrap().iter().find(|t| t["test"] == "accepted_values(status)").unwrap();
    assert_eq!((&test["failures"], &test["severity"]), (&Value::from(1093), &Value::from("warn")), "{test}");
    // As pyiceberg counts them in the committed table.
    let committed = table(state.path(), "silver.stg_orders", "order_id");
    assert_eq!(committed["rows"], 4367);
    let shipped = committed["records"].as_array().unwrap().iter().filter(|r| r["status"] == "shipped").count();
    assert_eq!(shipped, 1093);
    let totals = table(state.path(), "gold.customer_totals", "customer_id");
    let loyal = totals["records"].as_array().unwrap().iter().filter(|r| r["order_count"].as_u64() > Some(5)).count();
    assert!(loyal > 0, "the fixture must have loyal customers: {totals}");
    let steps = summary["steps"].as_array().unwrap();
    let customer_totals = steps.iter().find(|s| s["step"] == "customer_totals").unwrap();
    let singular = customer_totals["tests"].as_array().unwrap();
    let few = singular.iter().find(|t| t["test"] == "few_loyal_customers").unwrap();
    assert_eq!((&few["failures"], &few["severity"]), (&Value::from(loyal), &Value::from("warn")), "{few}");
    let matching = singular.iter().find(|t| t["test"] == "assert_totals_match_orders").unwrap();
    assert_eq!(matching["failures"], 0, "{matching}");

    // A failing singular test with severity error: exit 4, nothing committed.
    let before = table(state.path(), "gold.daily_revenue", "order_date")["current_snapshot_id"].clone();
    let negative = "SELECT * FROM {{ ref('daily_revenue') }} WHERE revenue > 0\n";
    std::fs::write(tests.join("assert_revenue_is_not_negative.sql"), negative).unwrap();
    let run = floe_host(&["run", project_arg, "--state-dir", state_arg, "--select", "daily_revenue"]).expect_code(4);
    let expected = "step `daily_revenue`: data tests failed on `gold.daily_revenue`, so nothing is committed: \
                    assert_revenue_is_not_negative: 455 failing rows";
    assert!(run.stderr.contains(expected), "{}", run.stderr);
    let after = table(state.path(), "gold.daily_revenue", "order_date")["current_snapshot_id"].clone();
    assert_eq!(before, after, "nothing may be committed");
    assert_eq!(parquet_files(&state.path().join("warehouse/gold/daily_revenue")), 1, "no orphan is left");
}

/// With `dbt_project:`, the models floe.yaml does not list are steps too, as
/// `dbt run` runs them all; their layer comes from `+schema` for their folder
/// in dbt_project.yml, or from their `config(schema=...)`.
#[test]
fn a_dbt_project_runs_without_listing_its_models() {
    let (work, state) = (temp_dir(), temp_dir());
    let project = work.path().join("project");
    let example = repo().join("examples/from-floe-platform");
    copy_dir(&example.join("dbt"), &project.join("dbt"));
    copy_dir(&example.join("data"), &project.join("data"));
    // The gold folder's schema from dbt_project.yml, not from the models.
    for model in ["customer_totals", "daily_revenue"] {
        let path = project.join(format!("dbt/models/gold/{model}.sql"));
        let text = std::fs::read_to_string(&path).unwrap().replace("schema='gold', ", "");
        std::fs::write(path, text).unwrap();
    }
    let dbt_project = project.join("dbt/dbt_project.yml");
    let text = std::fs::read_to_string(&dbt_project).unwrap()
        + "models:\n  customer_analytics:\n    gold:\n      +schema: gold\n";
    std::fs::write(&dbt_project, text).unwrap();
    let csv_ingest = repo().join("plugins/dist/csv_ingest.wasm");
    let floe = format!(
        "name: listed-nowhere\ndbt_project: dbt\nplugins:\n  csv-ingest:\n    path: {}\ntransforms:\n\
         \x20 - {{name: raw_customers, layer: bronze, kind: ingest, plugin: csv-ingest, source: data/customers.csv}}\n\
         \x20 - {{name: raw_orders, layer: bronze, kind: ingest, plugin: csv-ingest, source: data/orders.csv}}\n",
        csv_ingest.display()
    );
    std::fs::write(project.join("floe.yaml"), floe).unwrap();
    let (project_arg, state_arg) = (project.to_str().unwrap(), state.path().to_str().unwrap());
    let plan = floe_host(&["plan", project_arg]).expect_code(0);
    assert!(plan.stdout.starts_with("pipeline listed-nowhere (6 steps)"), "{}", plan.stdout);
    assert!(plan.stdout.contains("daily_revenue -> gold.daily_revenue"), "{}", plan.stdout);
    floe_host(&["run", project_arg, "--state-dir", state_arg]).expect_code(0);
    assert_eq!(table(state.path(), "gold.customer_totals", "customer_id")["rows"], 989);
    assert_eq!(table(state.path(), "gold.daily_revenue", "order_date")["rows"], 455);
}

/// Under Dagster, each data test is an asset check of its table: a passing
/// one is reported with the materialization, a failing `error` one fails the
/// step and is reported as a failed check, with nothing of the table committed.
#[test]
fn dagster_shows_data_tests_as_asset_checks() {
    let (work, state) = (temp_dir(), temp_dir());
    let project = floe_platform_copy(work.path());
    let schema = project.join("dbt/models/schema.yml");
    let strict =
        std::fs::read_to_string(&schema).unwrap().replace("[completed, pending, shipped]", "[completed, pending]");
    std::fs::write(&schema, strict).unwrap();
    let args =
        [env!("CARGO_BIN_EXE_floe-host"), project.to_str().unwrap(), "--state-dir", state.path().to_str().unwrap()];
    let result = python_json("dagster_demo.py", &args);
    assert_eq!(result["success"], false, "{result}");
    let materialized: Vec<&str> = result["materialized"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(materialized, ["bronze/raw_customers", "bronze/raw_orders", "silver/stg_customers"], "{result}");
    let checks = &result["checks"];
    assert_eq!(checks["silver/stg_customers:unique_customer_id"]["passed"], true, "{checks}");
    assert_eq!(checks["silver/stg_customers:not_null_email"]["severity"], "WARN", "{checks}");
    let failed = &checks["silver/stg_orders:accepted_values_status"];
    assert_eq!((&failed["passed"], &failed["failing_rows"]), (&Value::from(false), &Value::from(1093)), "{checks}");
    assert!(checks.get("gold/customer_totals:unique_customer_id").is_none(), "a step that did not run checks nothing");
}
