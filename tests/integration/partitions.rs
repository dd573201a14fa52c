//! Partitioned tables and `partition_overwrite`: `run --partition` replaces
//! one partition and reads only that partition of its inputs, rows outside
//! it fail the step, concurrent runs of different partitions all land, and a
//! run without `--partition` replaces the partitions its output holds. Every
//! table is read back through pyiceberg (tests/py/partitions_check.py).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{example, floe_host, plugin, python_json, temp_dir};

/// The steps a test project may have, by name.
fn step_yaml(name: &str) -> &'static str {
    match name {
        // Bronze: one CSV per day, a table partitioned by its (string) day.
        "raw_orders" => {
            "  - name: raw_orders\n    layer: bronze\n    kind: ingest\n    plugin: csv-ingest\n    \
             source: data/orders_{partition}.csv\n    partition_by: [order_date]\n    mode: partition_overwrite\n"
        }
        // Bronze from one file holding every day, replaced whole (by a file
        // of fewer days too: no `max_shrink` guard).
        "raw_orders_all" => {
            "  - name: raw_orders\n    layer: bronze\n    kind: ingest\n    plugin: csv-ingest\n    \
             source: data/orders_all.csv\n    max_shrink: 1\n"
        }
        // Silver by the same column: its bronze input is read for the partition only.
        "orders" => {
            "  - name: orders\n    layer: silver\n    kind: sql\n    sql: models/orders.sql\n    \
             partition_by: [order_date]\n    mode: partition_overwrite\n"
        }
        // Silver by day of another column: its SQL narrows bronze with getvariable('partition').
        "order_events" => {
            "  - name: order_events\n    layer: silver\n    kind: sql\n    sql: models/order_events.sql\n    \
             partition_by: [\"day(order_ts)\"]\n    mode: partition_overwrite\n"
        }
        // Gold, partitioned by month and replaced whole on every run.
        "monthly_revenue" => {
            "  - name: monthly_revenue\n    layer: gold\n    kind: sql\n    sql: models/monthly_revenue.sql\n    \
             partition_by: [\"month(order_date)\"]\n"
        }
        other => panic!("no step {other}"),
    }
}

/// A project with `steps`, its SQL models and no data yet.
pub fn project(dir: &Path, steps: &[&str]) {
    fs::create_dir_all(dir.join("data")).unwrap();
    fs::create_dir_all(dir.join("models")).unwrap();
    fs::write(
        dir.join("models/orders.sql"),
        "SELECT CAST(order_id AS BIGINT) AS order_id, CAST(order_date AS DATE) AS order_date,\n\
         CAST(amount AS DECIMAL(12, 2)) AS amount\nFROM bronze.raw_orders\n",
    )
    .unwrap();
    fs::write(
        dir.join("models/order_events.sql"),
        "SELECT CAST(order_id AS BIGINT) AS order_id, CAST(order_date || ' ' || order_time AS TIMESTAMP) AS order_ts\n\
         FROM bronze.raw_orders\nWHERE CAST(order_date AS DATE) = CAST(getvariable('partition') AS DATE)\n",
    )
    .unwrap();
    fs::write(
        dir.join("models/monthly_revenue.sql"),
        "SELECT order_date, count(*) AS orders, sum(amount) AS revenue\nFROM silver.orders\nGROUP BY order_date\n",
    )
    .unwrap();
    let mut yaml = format!(
        "name: partitioned\nplugins:\n  csv-ingest:\n    path: {}\ntransforms:\n",
        plugin("csv_ingest.wasm").display()
    );
    for step in steps {
        yaml.push_str(step_yaml(step));
    }
    fs::write(dir.join("floe.yaml"), yaml).unwrap();
}

/// `rows` orders of `day` (`2024-01-02`), amounts `amount` each.
fn day_rows(day: &str, rows: usize, amount: &str) -> String {
    let mut csv = String::new();
    for i in 0..rows {
        let id = format!("{}{i:03}", day.replace('-', ""));
        csv.push_str(&format!("{id},{day},{:02}:30:00,{amount}\n", 8 + i % 12));
    }
    csv
}

const HEADER: &str = "order_id,order_date,order_time,amount\n";

/// `data/orders_<day>.csv`.
pub fn write_day(dir: &Path, day: &str, rows: usize, amount: &str) {
    fs::write(dir.join(format!("data/orders_{day}.csv")), format!("{HEADER}{}", day_rows(day, rows, amount))).unwrap();
}

/// pyiceberg's view of `tables` in the state directory `state`.
pub fn read_back(state: &Path, tables: &[&str]) -> Value {
    let mut args = vec![
        "--catalog-uri".to_string(),
        format!("sqlite:///{}", state.join("catalog.db").display()),
        "--warehouse".to_string(),
        format!("file://{}", state.join("warehouse").display()),
    ];
    for table in tables {
        args.extend(["--table".to_string(), table.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python_json("partitions_check.py", &args)["tables"].clone()
}

/// `partition → rows` from the data files, checked against the rows' own
/// partitions (as pyiceberg computes them).
fn partition_rows(table: &Value) -> BTreeMap<String, u64> {
    let from_files: BTreeMap<String, u64> = table["partitions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["rows"].as_u64().unwrap()))
        .collect();
    let from_rows: BTreeMap<String, u64> =
        table["rows_by_partition"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
    assert_eq!(from_files, from_rows, "every data file holds the rows of its partition: {table}");
    from_files
}

fn files(table: &Value, partition: &str) -> Value {
    table["partitions"][partition]["files"].clone()
}

fn expect_rows(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn run(dir: &Path, state: &Path, extra: &[&str]) -> crate::support::Run {
    let mut args = vec!["run", dir.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
    args.extend_from_slice(extra);
    floe_host(&args)
}

fn summary_step<'a>(summary: &'a Value, step: &str) -> &'a Value {
    summary["steps"].as_array().unwrap().iter().find(|s| s["step"] == step).unwrap_or_else(|| panic!("{summary}"))
}

#[test]
fn partition_overwrite_replaces_only_its_partition_and_reads_only_it() {
    let dir = temp_dir();
    let (project_dir, state) = (dir.path().join("project"), dir.path().join("state"));
    project(&project_dir, &["raw_orders", "orders", "order_events", "monthly_revenue"]);
    let days = [("2024-01-01", 3), ("2024-01-02", 4), ("2024-01-03", 5)];
    let mut summaries = BTreeMap::new();
    for (day, rows) in days {
        write_day(&project_dir, day, rows, "10.00");
        let summary = dir.path().join(format!("summary-{day}.json"));
        let run_id = format!("run-{day}");
        run(
            &project_dir,
            &state,
            &["--partition", day, "--run-id", &run_id, "--summary-json", summary.to_str().unwrap()],
        )
        .expect_code(0);
        summaries.insert(day, serde_json::from_str::<Value>(&fs::read_to_string(summary).unwrap()).unwrap());
    }
    let tables = ["bronze.raw_orders", "silver.orders", "silver.order_events", "gold.monthly_revenue"];
    let first = read_back(&state, &tables);

    // The tables carry the declared partitioning, and every file its partition.
    let specs: Vec<&Value> = tables.iter().map(|t| &first[t]["spec"]).collect();
    assert_eq!(
        specs,
        [
            &json!([["order_date", "identity", "order_date"]]),
            &json!([["order_date", "identity", "order_date"]]),
            &json!([["order_ts_day", "day", "order_ts"]]),
            &json!([["order_date_month", "month", "order_date"]]),
        ]
    );
    let by_day =
        expect_rows(&[("order_date=2024-01-01", 3), ("order_date=2024-01-02", 4), ("order_date=2024-01-03", 5)]);
    assert_eq!(partition_rows(&first["bronze.raw_orders"]), by_day);
    assert_eq!(partition_rows(&first["silver.orders"]), by_day);
    assert_eq!(
        partition_rows(&first["silver.order_events"]),
        expect_rows(&[("order_ts_day=2024-01-01", 3), ("order_ts_day=2024-01-02", 4), ("order_ts_day=2024-01-03", 5)])
    );
    // Gold is replaced whole each run: one row per day, in one month.
    assert_eq!(partition_rows(&first["gold.monthly_revenue"]), expect_rows(&[("order_date_month=2024-01", 3)]));
    let path = &first["silver.orders"]["partitions"]["order_date=2024-01-02"]["files"][0];
    assert!(path.as_str().unwrap().starts_with("order_date=2024-01-02/orders-run-2024-01-02-"), "{path}");

    // One `overwrite` snapshot per partition run, recording the partition.
    for table in ["bronze.raw_orders", "silver.orders", "silver.order_events"] {
        let snapshots = first[table]["snapshots"].as_array().unwrap();
        assert_eq!(snapshots.len(), 3, "{table}: {snapshots:?}");
        for ((day, rows), snapshot) in days.iter().zip(snapshots) {
            let summary = &snapshot["summary"];
            assert_eq!(snapshot["operation"], "overwrite", "{table}: {snapshot}");
            assert_eq!(summary["floe.partition"], *day, "{table}: {snapshot}");
            assert_eq!(summary["floe.mode"], "partition_overwrite");
            assert_eq!(summary["floe.run-id"], format!("run-{day}"));
            assert_eq!(summary["floe.step"], table.split('.').nth(1).unwrap());
            assert_eq!(summary["replace-partitions"], "true");
            assert_eq!(summary["added-records"], rows.to_string());
            assert_eq!(summary.get("deleted-data-files"), None, "a new partition deletes nothing: {snapshot}");
        }
    }
    let gold = first["gold.monthly_revenue"]["snapshots"].as_array().unwrap();
    assert_eq!(gold.iter().map(|s| s["summary"]["floe.mode"].as_str().unwrap()).collect::<Vec<_>>(), ["overwrite"; 3]);
    // Replaced whole, but the run's partition is part of its exactly-once key.
    assert_eq!(gold[2]["summary"]["floe.partition"], "2024-01-03");

    // The silver step read its partition of bronze only (pruned files), the
    // day-of-timestamp step all of bronze (partitioned on another column),
    // and gold all of silver.
    let second = &summaries["2024-01-02"];
    assert_eq!(second["partition"], "2024-01-02");
    let bronze_day2 = &first["bronze.raw_orders"]["snapshots"][1]["summary"];
    assert_eq!(summary_step(second, "orders")["rows_in"], 4);
    assert_eq!(
        summary_step(second, "orders")["bytes_in"].to_string(),
        bronze_day2["added-files-size"].as_str().unwrap()
    );
    assert_eq!(summary_step(second, "order_events")["rows_in"], 3 + 4);
    assert_eq!(
        summary_step(second, "order_events")["bytes_in"].to_string(),
        bronze_day2["total-files-size"].as_str().unwrap()
    );
    assert_eq!(summary_step(second, "monthly_revenue")["rows_in"], 3 + 4);
    assert_eq!(summary_step(&summaries["2024-01-03"], "orders")["rows_in"], 5);

    // A rerun of 2024-01-02 with new data replaces that partition alone.
    write_day(&project_dir, "2024-01-02", 6, "25.00");
    run(&project_dir, &state, &["--partition", "2024-01-02", "--run-id", "rerun"]).expect_code(0);
    let after = read_back(&state, &tables);
    let by_day =
        expect_rows(&[("order_date=2024-01-01", 3), ("order_date=2024-01-02", 6), ("order_date=2024-01-03", 5)]);
    assert_eq!(partition_rows(&after["bronze.raw_orders"]), by_day);
    assert_eq!(partition_rows(&after["silver.orders"]), by_day);
    assert_eq!(partition_rows(&after["silver.order_events"])["order_ts_day=2024-01-02"], 6);
    for table in ["bronze.raw_orders", "silver.orders"] {
        for day in ["order_date=2024-01-01", "order_date=2024-01-03"] {
            assert_eq!(
                files(&after[table], day),
                files(&first[table], day),
                "{table} {day}: its data files are untouched"
            );
        }
        assert_ne!(files(&after[table], "order_date=2024-01-02"), files(&first[table], "order_date=2024-01-02"));
        let last = after[table]["snapshots"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["operation"], "overwrite");
        let summary = &last["summary"];
        assert_eq!(
            (&summary["floe.partition"], &summary["floe.run-id"], &summary["deleted-data-files"]),
            (&json!("2024-01-02"), &json!("rerun"), &json!("1")),
            "{table}: {last}"
        );
        assert_eq!((&summary["deleted-records"], &summary["added-records"]), (&json!("4"), &json!("6")));
        assert_eq!((&summary["total-records"], &summary["total-data-files"]), (&json!("14"), &json!("3")));
        assert_eq!(summary["changed-partition-count"], "1");
    }
    assert_eq!(partition_rows(&after["gold.monthly_revenue"]), expect_rows(&[("order_date_month=2024-01", 3)]));
}

#[test]
fn partition_errors_say_what_to_do() {
    let dir = temp_dir();
    let (project_dir, state) = (dir.path().join("project"), dir.path().join("state"));
    project(&project_dir, &["raw_orders", "orders", "order_events"]);
    write_day(&project_dir, "2024-01-01", 3, "10.00");
    write_day(&project_dir, "2024-01-02", 4, "10.00");

    // Usage errors: exit 2 before anything runs.
    let needle_cases: [(&[&str], &str); 3] = [
        (
            &[],
            "error: step `raw_orders` reads `data/orders_{partition}.csv`, which names the partition: pass \
             --partition VALUE",
        ),
        (
            &["--partition", "2024-01"],
            "error: --partition `2024-01`: step `order_events` partitions by `day(order_ts)`, which takes a day as \
             `YYYY-MM-DD`, for example `2024-01-03`",
        ),
        (&["--partition", "../2024-01-01"], "error: --partition `../2024-01-01`: it contains a path separator"),
    ];
    for (args, needle) in needle_cases {
        let failed = run(&project_dir, &state, args).expect_code(2);
        assert!(failed.stderr.contains(needle), "{args:?}: stderr lacks {needle:?}:\n{}", failed.stderr);
    }
    assert!(!state.exists(), "a usage error writes nothing");
    let demo = example("customer-analytics");
    let failed = run(&demo, &state, &["--partition", "2024-01-01"]).expect_code(2);
    assert!(
        failed.stderr.contains(
            "error: --partition `2024-01-01`: no step of pipeline `customer-analytics` uses a partition (none has \
             `mode: partition_overwrite` or a `{partition}` in its `source`); run without --partition"
        ),
        "{}",
        failed.stderr
    );

    run(&project_dir, &state, &["--partition", "2024-01-01"]).expect_code(0);

    // A step whose rows stray from the partition fails before its commit.
    fs::write(
        project_dir.join("models/order_events.sql"),
        "SELECT CAST(order_id AS BIGINT) AS order_id, CAST(order_date || ' ' || order_time AS TIMESTAMP) AS order_ts\n\
         FROM bronze.raw_orders\n",
    )
    .unwrap();
    let failed = run(&project_dir, &state, &["--partition", "2024-01-02"]).expect_code(1);
    let needle = "error: step `order_events`: table `silver.order_events`: the step produced 3 rows outside partition \
                  `order_ts_day=2024-01-02` (for example in `order_ts_day=2024-01-01`), and a `partition_overwrite` \
                  step run with --partition writes only that partition: keep the step's rows to it (floe-host reads \
                  only that partition of inputs partitioned on column `order_ts`; other inputs are read whole)";
    assert!(failed.stderr.contains(needle), "{}", failed.stderr);
    let tables = read_back(&state, &["silver.orders", "silver.order_events"]);
    assert_eq!(tables["silver.orders"]["snapshots"].as_array().unwrap().len(), 2, "the steps before it committed");
    assert_eq!(tables["silver.order_events"]["snapshots"].as_array().unwrap().len(), 1, "no commit of the failed step");
    assert_eq!(partition_rows(&tables["silver.order_events"]), expect_rows(&[("order_ts_day=2024-01-01", 3)]));
    // Nor any file of it left behind: what it wrote is deleted.
    let strays =
        crate::support::parquet_paths(&state.join("warehouse/silver/order_events/data/order_ts_day=2024-01-02"));
    assert!(strays.is_empty(), "the failed step left {strays:?}");

    // A table that exists with another partitioning is not repartitioned.
    let yaml = fs::read_to_string(project_dir.join("floe.yaml")).unwrap();
    let unpartitioned = yaml.replace(
        "sql: models/orders.sql\n    partition_by: [order_date]\n    mode: partition_overwrite\n",
        "sql: models/orders.sql\n",
    );
    fs::write(project_dir.join("floe.yaml"), unpartitioned).unwrap();
    let failed = run(&project_dir, &state, &["--partition", "2024-01-02"]).expect_code(1);
    let needle = "error: step `orders`: table `silver.orders` is partitioned by [order_date], but floe.yaml declares \
                  `partition_by: []`; floe-host does not change the partitioning of an existing table";
    assert!(failed.stderr.contains(needle), "{}", failed.stderr);

    // A partition column the step does not produce.
    let misnamed = yaml.replace(
        "partition_by: [order_date]\n    mode: partition_overwrite\n  - name: order_events",
        "partition_by: [order_day]\n    mode: partition_overwrite\n  - name: order_events",
    );
    fs::write(project_dir.join("floe.yaml"), misnamed).unwrap();
    let failed = run(&project_dir, &dir.path().join("state2"), &["--partition", "2024-01-02"]).expect_code(1);
    let needle = "error: step `orders`: table `silver.orders`: `partition_by: order_day` names column `order_day`, \
                  which the step does not produce (its columns: order_id, order_date, amount)";
    assert!(failed.stderr.contains(needle), "{}", failed.stderr);
}

#[test]
fn without_partition_partition_overwrite_replaces_the_partitions_it_writes() {
    let dir = temp_dir();
    let (project_dir, state) = (dir.path().join("project"), dir.path().join("state"));
    project(&project_dir, &["raw_orders_all", "orders"]);
    let all = format!(
        "{HEADER}{}{}{}",
        day_rows("2024-01-01", 3, "1"),
        day_rows("2024-01-02", 4, "1"),
        day_rows("2024-01-03", 5, "1")
    );
    fs::write(project_dir.join("data/orders_all.csv"), all).unwrap();
    run(&project_dir, &state, &[]).expect_code(0);
    let first = read_back(&state, &["silver.orders"]);
    let by_day =
        expect_rows(&[("order_date=2024-01-01", 3), ("order_date=2024-01-02", 4), ("order_date=2024-01-03", 5)]);
    assert_eq!(partition_rows(&first["silver.orders"]), by_day);

    // The new extract holds 2024-01-02 only: that partition is replaced, the others stay.
    fs::write(project_dir.join("data/orders_all.csv"), format!("{HEADER}{}", day_rows("2024-01-02", 2, "7"))).unwrap();
    run(&project_dir, &state, &[]).expect_code(0);
    let after = read_back(&state, &["silver.orders"]);
    let by_day =
        expect_rows(&[("order_date=2024-01-01", 3), ("order_date=2024-01-02", 2), ("order_date=2024-01-03", 5)]);
    assert_eq!(partition_rows(&after["silver.orders"]), by_day);
    for day in ["order_date=2024-01-01", "order_date=2024-01-03"] {
        assert_eq!(files(&after["silver.orders"], day), files(&first["silver.orders"], day));
    }
    let last = after["silver.orders"]["snapshots"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["operation"], "overwrite");
    assert_eq!(last["summary"]["floe.mode"], "partition_overwrite");
    assert_eq!(last["summary"].get("floe.partition"), None, "{last}");
    assert_eq!((&last["summary"]["deleted-records"], &last["summary"]["added-records"]), (&json!("4"), &json!("2")));
}

#[test]
fn concurrent_runs_of_different_partitions_all_land() {
    let dir = temp_dir();
    let state = dir.path().join("state");
    concurrent_partition_runs(dir.path(), &[], &[], |tables| read_back(&state, tables));
}

/// Starts one `run --partition DAY` process per day of `days`, all at once,
/// with the run id `run_id(day)` and `args`/`env` added; waits for them and
/// returns each day's stderr. Every run must exit 0.
fn run_partitions_at_once(
    project_dir: &Path,
    state: &Path,
    days: &[(String, usize)],
    run_id: impl Fn(&str) -> String,
    args: &[&str],
    env: &[(&str, &str)],
) -> Vec<(String, String)> {
    let children: Vec<_> = days
        .iter()
        .map(|(day, _)| {
            let run_id = run_id(day);
            let mut all = vec!["run", project_dir.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
            all.extend(["--partition", day, "--run-id", &run_id, "--log-format", "text"]);
            all.extend_from_slice(args);
            let child = crate::support::floe_host_command(&all, env)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (day.clone(), child)
        })
        .collect();
    children
        .into_iter()
        .map(|(day, child)| {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert_eq!(output.status.code(), Some(0), "{day}:\n{stderr}");
            (day, stderr)
        })
        .collect()
}

/// Eight concurrent `run --partition` processes under one run id (as a
/// Kubernetes Job with a fixed `FLOE_RUN_ID` starts them): the exactly-once
/// key includes the partition for every step, so no run skips a step because
/// another partition's run committed it, and the gold table, replaced whole
/// by every run, ends with all eight days: a run that read silver before
/// another's partition landed does not commit over a result from newer
/// silver.
#[test]
fn partition_runs_sharing_one_run_id_all_land_gold_included() {
    let dir = temp_dir();
    let (project_dir, state) = (dir.path().join("project"), dir.path().join("state"));
    project(&project_dir, &["raw_orders", "orders", "monthly_revenue"]);
    let days: Vec<(String, usize)> = (1..=8).map(|d| (format!("2024-01-{d:02}"), d + 1)).collect();
    for (day, rows) in &days {
        write_day(&project_dir, day, *rows, "3.00");
    }
    // Compile the plugin first, so that the eight runs overlap.
    run(&project_dir, &state, &["--partition", &days[0].0, "--run-id", "warm-up"]).expect_code(0);
    let mut superseded = 0;
    for (day, stderr) in run_partitions_at_once(&project_dir, &state, &days, |_| "shared".into(), &[], &[]) {
        assert!(!stderr.contains("already committed it"), "{day} skipped a step:\n{stderr}");
        superseded += stderr.matches("computed from newer inputs").count();
    }
    eprintln!("8 runs under one run id: {superseded} gold results were superseded");

    let tables = read_back(&state, &["bronze.raw_orders", "silver.orders", "gold.monthly_revenue"]);
    let expected: BTreeMap<String, u64> =
        days.iter().map(|(day, rows)| (format!("order_date={day}"), *rows as u64)).collect();
    for table in ["bronze.raw_orders", "silver.orders"] {
        assert_eq!(partition_rows(&tables[table]), expected, "{table}");
    }
    // One row per day: all eight days, whatever order the runs committed in.
    assert_eq!(partition_rows(&tables["gold.monthly_revenue"]), expect_rows(&[("order_date_month=2024-01", 8)]));
    // Gold's current snapshot says which silver it was computed from: the
    // last of silver's nine snapshots (the warm-up's, then eight).
    let gold = tables["gold.monthly_revenue"]["snapshots"].as_array().unwrap();
    let last = &gold.last().unwrap()["summary"];
    assert_eq!(last["floe.input.default.silver.orders"], "9", "{last}");
    assert_eq!(last["floe.run-id"], "shared", "{last}");
}

/// Eight `run --partition` processes of a two-step project (in `dir`), with
/// `args` and `env` added, on one state directory: every partition lands in
/// both tables, read back by `read_back`, with a linear history of eight
/// overwrite snapshots.
pub fn concurrent_partition_runs(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    read_back: impl Fn(&[&str]) -> Value,
) {
    let (project_dir, state) = (dir.join("project"), dir.join("state"));
    let with = |mut base: Vec<String>| {
        base.extend(args.iter().map(|a| a.to_string()));
        base
    };
    project(&project_dir, &["raw_orders", "orders"]);
    let days: Vec<(String, usize)> = (1..=8).map(|d| (format!("2024-01-{d:02}"), d + 1)).collect();
    for (day, rows) in &days {
        write_day(&project_dir, day, *rows, "3.00");
    }
    // Compile the plugin into the state's cache first (another project, another
    // table), so that the eight runs reach their commits together.
    let warm_up = dir.join("warm-up");
    project(&warm_up, &["raw_orders_all"]);
    fs::write(warm_up.join("data/orders_all.csv"), format!("{HEADER}{}", day_rows("2024-01-01", 1, "1"))).unwrap();
    fs::write(
        warm_up.join("floe.yaml"),
        fs::read_to_string(warm_up.join("floe.yaml")).unwrap().replace("raw_orders", "warm_up"),
    )
    .unwrap();
    let warm_args =
        with(vec!["run".into(), warm_up.display().to_string(), "--state-dir".into(), state.display().to_string()]);
    let warm_args: Vec<&str> = warm_args.iter().map(String::as_str).collect();
    crate::support::floe_host_with_env(&warm_args, env).expect_code(0);

    let mut conflicts = 0;
    for (_, stderr) in run_partitions_at_once(&project_dir, &state, &days, |day| format!("run-{day}"), args, env) {
        conflicts += stderr.matches("Commit conflicted with another writer").count();
    }
    eprintln!("8 concurrent runs: {conflicts} commits were rebuilt after a conflict");

    let tables = read_back(&["bronze.raw_orders", "silver.orders"]);
    let expected: BTreeMap<String, u64> =
        days.iter().map(|(day, rows)| (format!("order_date={day}"), *rows as u64)).collect();
    for table in ["bronze.raw_orders", "silver.orders"] {
        assert_eq!(partition_rows(&tables[table]), expected, "{table}");
        let snapshots = tables[table]["snapshots"].as_array().unwrap();
        assert_eq!(snapshots.len(), 8, "{table}: one snapshot per run");
        let mut seen: Vec<&str> = Vec::new();
        let mut parent = Value::Null;
        let mut total = 0;
        for snapshot in snapshots {
            assert_eq!(snapshot["operation"], "overwrite", "{table}: {snapshot}");
            // Each commit built on the one before: a conflict rebuilt it on the new state.
            assert_eq!(snapshot["parent_id"], parent, "{table}: {snapshots:?}");
            parent = snapshot["snapshot_id"].clone();
            let summary = &snapshot["summary"];
            let day = summary["floe.partition"].as_str().unwrap();
            assert_eq!(summary["floe.run-id"], format!("run-{day}"));
            total += expected[&format!("order_date={day}")];
            assert_eq!(summary["total-records"], total.to_string(), "{table}: {snapshot}");
            seen.push(day);
        }
        seen.sort();
        assert_eq!(seen, days.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>());
    }
}

/// A project whose one step, `parted`, writes `sql` into a table
/// partitioned by its column `k`; the run's peak memory and the table's
/// data files.
fn fanout_run(sql: &str) -> (crate::support::Run, u64, usize) {
    let dir = temp_dir();
    fs::create_dir_all(dir.path().join("models")).unwrap();
    fs::write(
        dir.path().join("floe.yaml"),
        "name: fanout\ntransforms:\n  - {name: parted, layer: silver, kind: sql, sql: models/parted.sql, partition_by: [k]}\n",
    )
    .unwrap();
    fs::write(dir.path().join("models/parted.sql"), sql).unwrap();
    let state = dir.path().join("state");
    let (run, peak) = crate::support::floe_host_measured(
        &["run", dir.path().to_str().unwrap(), "--state-dir", state.to_str().unwrap()],
        &[],
    );
    let files = crate::support::parquet_paths(&state.join("warehouse/silver/parted/data")).len();
    (run, peak, files)
}

/// Every open partition writer costs about 100 KiB per column: 8,000 open
/// at once took 1.3 GB. Output in partition order keeps only a bounded
/// number open (682 for these three columns), so three times as many
/// partitions take no more memory, and each is still one file.
#[test]
fn partitions_in_order_are_written_one_file_each_within_bounded_memory() {
    let sql = |n: u32| format!("SELECT i % {n} AS k, i AS v, repeat('x', 20) AS s FROM range(100000) t(i) ORDER BY k");
    let (run, few, files) = fanout_run(&sql(682));
    run.expect_code(0);
    assert_eq!(files, 682);
    let (run, many, files) = fanout_run(&sql(3 * 682));
    run.expect_code(0);
    assert_eq!(files, 3 * 682, "one file per partition");
    assert!(
        many < few + (150 << 20),
        "memory grew with the partitions: {} MiB for 682, {} MiB for 2,046",
        few >> 20,
        many >> 20
    );
}

/// Rows in no order over more partitions than stay open would make a file
/// per few rows: at 20,000 files the step fails (exit 4, the same data fails
/// every time), says what to do, deletes those files and commits nothing.
#[test]
fn rows_scattered_over_too_many_partitions_fail_the_step_and_commit_nothing() {
    let (run, _, files) = fanout_run("SELECT i % 1000 AS k, i AS v, repeat('x', 20) AS s FROM range(100000) t(i)");
    let run = run.expect_code(4);
    for piece in [
        "table `silver.parted`: the step's rows fall in no order over more partitions than the 682 it may write at once",
        "it made 20000 data files",
        "`ORDER BY` in a model",
    ] {
        assert!(run.stderr.contains(piece), "stderr lacks {piece:?}:\n{}", run.stderr);
    }
    // Every file it wrote is deleted, those it had open too.
    assert_eq!(files, 0, "data files left");
}
