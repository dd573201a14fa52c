//! The demo pipeline end to end on the embedded default, checked through
//! pyiceberg against values computed independently from the raw CSV.

use serde_json::Value;

use crate::support::{example, floe_host, python_json, temp_dir};

const TABLES: [&str; 9] = [
    "bronze.raw_customers",
    "bronze.raw_orders",
    "silver.stg_customers",
    "silver.stg_orders",
    "gold.customer_totals",
    "gold.daily_revenue",
    // The transform plugins: pii-mask (streaming), dedup (stateful), sql-filter (SQL mode).
    "silver.customer_contacts",
    "silver.first_orders",
    "gold.large_orders",
];

/// The column names and Iceberg types the issue specifies, in pyiceberg's spelling.
const SCHEMAS: [(&str, &[(&str, &str)]); 9] = [
    (
        "bronze.raw_customers",
        &[
            ("customer_id", "string"),
            ("customer_name", "string"),
            ("email", "string"),
            ("region", "string"),
            ("signup_date", "string"),
            ("_row", "long"),
        ],
    ),
    (
        "bronze.raw_orders",
        &[
            ("order_id", "string"),
            ("customer_id", "string"),
            ("order_date", "string"),
            ("amount", "string"),
            ("status", "string"),
            ("_row", "long"),
        ],
    ),
    (
        "silver.stg_customers",
        &[
            ("customer_id", "long"),
            ("customer_name", "string"),
            ("email", "string"),
            ("region", "string"),
            ("signup_date", "date"),
        ],
    ),
    (
        "silver.stg_orders",
        &[
            ("order_id", "long"),
            ("customer_id", "long"),
            ("order_date", "date"),
            ("amount", "decimal(12, 2)"),
            ("status", "string"),
        ],
    ),
    (
        "gold.customer_totals",
        &[
            ("customer_id", "long"),
            ("region", "string"),
            ("order_count", "long"),
            ("total_amount", "decimal(18, 2)"),
            ("first_order_date", "date"),
            ("last_order_date", "date"),
        ],
    ),
    (
        "gold.daily_revenue",
        &[("order_date", "date"), ("region", "string"), ("revenue", "decimal(18, 2)"), ("orders", "long")],
    ),
    (
        "silver.customer_contacts",
        &[
            ("customer_id", "long"),
            ("customer_name", "string"),
            ("email", "string"),
            ("region", "string"),
            ("signup_date", "date"),
        ],
    ),
    (
        "silver.first_orders",
        &[
            ("order_id", "string"),
            ("customer_id", "string"),
            ("order_date", "string"),
            ("amount", "string"),
            ("status", "string"),
            ("_row", "long"),
        ],
    ),
    (
        "gold.large_orders",
        &[
            ("order_id", "long"),
            ("customer_id", "long"),
            ("order_date", "date"),
            ("amount", "decimal(12, 2)"),
            ("status", "string"),
        ],
    ),
];

/// The per-table figures that both the reference and pyiceberg report.
fn figures(report: &Value, table: &str) -> Value {
    let mut entry = report["tables"][table].clone();
    let object = entry.as_object_mut().unwrap_or_else(|| panic!("no entry for {table} in {report}"));
    object.retain(|key, _| key == "rows" || key.starts_with("sum_"));
    entry
}

fn summary_rows(stdout: &str, table: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(table))
        .unwrap_or_else(|| panic!("no summary line for {table} in\n{stdout}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn demo_pipeline_matches_independent_reference_and_reruns_idempotently() {
    let state = temp_dir();
    let project = example("customer-analytics");
    let state_arg = state.path().to_str().unwrap();
    let expected = python_json("demo_check.py", &["expected", "--data", project.join("data").to_str().unwrap()]);
    let read_back = || {
        python_json(
            "demo_check.py",
            &[
                "actual",
                "--catalog-uri",
                &format!("sqlite:///{}", state.path().join("catalog.db").display()),
                "--warehouse",
                &format!("file://{}", state.path().join("warehouse").display()),
                "--catalog-name",
                "default",
            ],
        )
    };

    let first = floe_host(&["run", project.to_str().unwrap(), "--state-dir", state_arg]).expect_code(0);
    let after_first = read_back();
    for table in TABLES {
        assert_eq!(figures(&after_first, table), figures(&expected, table), "{table} after the first run");
        let rows = expected["tables"][table]["rows"].as_u64().unwrap();
        assert!(rows > 0, "{table} must not be empty");
        assert_eq!(summary_rows(&first.stdout, table), rows, "summary of {table}");
    }

    for (table, columns) in SCHEMAS {
        let expected: Vec<Value> = columns.iter().map(|(name, ty)| serde_json::json!([name, ty])).collect();
        assert_eq!(after_first["tables"][table]["columns"], Value::Array(expected), "schema of {table}");
    }

    // The second run replaces every table: same data, new snapshots.
    floe_host(&["run", project.to_str().unwrap(), "--state-dir", state_arg]).expect_code(0);
    let after_second = read_back();
    for table in TABLES {
        assert_eq!(figures(&after_second, table), figures(&expected, table), "{table} after the second run");
        assert_ne!(
            after_second["tables"][table]["snapshot_id"], after_first["tables"][table]["snapshot_id"],
            "{table} got a new snapshot"
        );
    }
}
