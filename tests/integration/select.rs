//! `run --select/--exclude` (and `plan`'s): dbt's and Dagster's selector
//! forms over the demo's graph, and a selection whose inputs do not exist.

use serde_json::Value;

use crate::support::{example, floe_host, temp_dir};

/// The steps `plan --json` keeps for `args`, in order.
fn planned(args: &[&str]) -> Vec<String> {
    let demo = example("customer-analytics");
    let out = floe_host(&[&["plan", demo.to_str().unwrap(), "--json"][..], args].concat()).expect_code(0);
    let plan: Value = serde_json::from_str(&out.stdout).unwrap();
    plan["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn selectors_take_names_tables_tags_layers_and_graph_operators() {
    assert_eq!(
        planned(&["--select", "+customer_totals"]),
        ["raw_customers", "raw_orders", "stg_customers", "stg_orders", "customer_totals"]
    );
    assert_eq!(
        planned(&["--select", "stg_orders+"]),
        ["stg_orders", "customer_totals", "daily_revenue", "large_orders"]
    );
    assert_eq!(planned(&["--select", "silver/stg_orders bronze.raw_orders"]), ["raw_orders", "stg_orders"]);
    assert_eq!(
        planned(&["-s", "tag:finance", "-s", "tag:pii"]),
        ["customer_totals", "daily_revenue", "customer_contacts"]
    );
    assert_eq!(planned(&["--select", "layer:gold", "--exclude", "large_orders"]), ["customer_totals", "daily_revenue"]);
    assert_eq!(planned(&["--exclude", "raw_customers+"]), ["raw_orders", "stg_orders", "first_orders", "large_orders"]);
    assert_eq!(planned(&["--select", "+stg_customers+"]).len(), 5);

    let demo = example("customer-analytics");
    let plan = |args: &[&str]| floe_host(&[&["plan", demo.to_str().unwrap()][..], args].concat());
    let out = plan(&["--select", "customer_total"]).expect_code(2);
    assert!(
        out.stderr.contains("--select `customer_total` matches no step of pipeline `customer-analytics`; its tables are: bronze.raw_customers,"),
        "{}",
        out.stderr
    );
    let out = plan(&["--select", "tag:nope"]).expect_code(2);
    assert!(out.stderr.contains("its tags are: finance, pii"), "{}", out.stderr);
    let out = plan(&["--select", "2+stg_orders"]).expect_code(2);
    assert!(out.stderr.contains("`2+stg_orders` is not a selector floe-host understands"), "{}", out.stderr);
    let out = plan(&["--select", "layer:gold", "--exclude", "layer:gold"]).expect_code(2);
    assert!(out.stderr.contains("leave no step of pipeline `customer-analytics` to run"), "{}", out.stderr);
}

#[test]
fn a_selection_runs_only_its_steps_and_needs_its_inputs() {
    let state = temp_dir();
    let demo = example("customer-analytics");
    let run = |args: &[&str]| {
        let base = ["run", demo.to_str().unwrap(), "--state-dir", state.path().to_str().unwrap()];
        floe_host(&[&base[..], args].concat())
    };
    // Its inputs are neither selected nor there: nothing runs.
    let out = run(&["--select", "customer_totals"]).expect_code(2);
    assert!(
        out.stderr.contains("this run does not write `silver.stg_orders` (read by `customer_totals`), `silver.stg_customers` (read by `customer_totals`)"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("`--select +STEP`"), "{}", out.stderr);
    assert!(!out.stderr.contains("Running step."), "{}", out.stderr);

    // With its upstream steps it runs them, and only them.
    let out = run(&["--select", "+customer_totals"]).expect_code(0);
    let steps: Vec<&str> = out
        .stdout
        .lines()
        .skip(2)
        .filter(|l| !l.starts_with("plugins:"))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(steps, ["raw_customers", "raw_orders", "stg_customers", "stg_orders", "customer_totals"]);
    assert!(
        out.stdout.contains("customer_totals          gold.customer_totals                    989 "),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("pii-mask"), "only the selected steps' plugins compile: {}", out.stdout);

    // Now its inputs exist: a lone downstream step runs.
    let out = run(&["--select", "daily_revenue"]).expect_code(0);
    assert!(
        out.stdout.contains("daily_revenue            gold.daily_revenue                      455 "),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().count(), 3, "the header and one step: {}", out.stdout);
}

/// Each selector form resolves to the assets that Dagster's own selection
/// syntax resolves to, over the assets examples/dagster makes of the demo
/// (tests/py/dagster_select.py): what a Dagster user selects is what runs.
#[test]
fn selections_resolve_as_dagster_resolves_them() {
    let pairs = [
        ("stg_orders", "key:\"silver/stg_orders\""),
        ("silver.stg_customers", "key:\"silver/stg_customers\""),
        ("+customer_totals", "+key:\"gold/customer_totals\""),
        ("stg_orders+", "key:\"silver/stg_orders\"+"),
        ("raw_orders+", "key:\"bronze/raw_orders\"+"),
        ("tag:finance", "tag:finance"),
        ("tag:pii", "tag:pii"),
        ("layer:silver", "key:\"silver/*\""),
    ];
    let demo = example("customer-analytics");
    let mut args = vec![env!("CARGO_BIN_EXE_floe-host"), demo.to_str().unwrap()];
    args.extend(pairs.iter().map(|(_, dagster)| *dagster));
    let resolved = crate::support::python_json("dagster_select.py", &args);
    for (floe, dagster) in pairs {
        let demo = example("customer-analytics");
        let out = floe_host(&["plan", demo.to_str().unwrap(), "--json", "--select", floe]).expect_code(0);
        let plan: Value = serde_json::from_str(&out.stdout).unwrap();
        let mut ours: Vec<String> =
            plan["steps"].as_array().unwrap().iter().map(|s| s["target"].as_str().unwrap().replace('.', "/")).collect();
        ours.sort();
        let theirs: Vec<String> =
            resolved[dagster].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
        assert!(!ours.is_empty(), "{floe} selects nothing");
        assert_eq!(ours, theirs, "floe-host `--select {floe}` and Dagster `{dagster}`");
    }
}
