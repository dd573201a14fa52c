//! Write modes, exactly-once reruns and schema evolution, on tiny SQL
//! pipelines written into a temp dir, each table read back through pyiceberg
//! (tests/py/table_check.py): rows, values and the snapshot history.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use floe_host::config::{Ident, SchemaEvolution, WriteMode};
use floe_host::lakehouse::{CommitInfo, CommitTags, Lakehouse, Partitioning, WriteSpec};
use floe_host::plan::{CatalogSpec, StorageSpec, TableRef};
use serde_json::{Value, json};

use crate::support::{Run, floe_host, python_json, temp_dir};

/// A pipeline in a temp dir: floe.yaml, its SQL models and its state dir.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// `steps` are the YAML items of `transforms`, one step per line.
    fn new(steps: &[&str]) -> Self {
        let dir = temp_dir();
        std::fs::create_dir_all(dir.path().join("models")).unwrap();
        let mut yaml = String::from("name: modes\ntransforms:\n");
        for step in steps {
            yaml.push_str(&format!("  - {step}\n"));
        }
        std::fs::write(dir.path().join("floe.yaml"), yaml).unwrap();
        Project { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn state(&self) -> PathBuf {
        self.root().join("state")
    }

    /// Writes `models/<name>.sql`.
    fn sql(&self, name: &str, query: &str) -> &Self {
        std::fs::write(self.root().join("models").join(format!("{name}.sql")), query).unwrap();
        self
    }

    fn run(&self, run_id: &str) -> Run {
        let state = self.state();
        floe_host(&["run", self.root().to_str().unwrap(), "--state-dir", state.to_str().unwrap(), "--run-id", run_id])
    }

    /// `run`, also returning the `--summary-json` document.
    fn run_with_summary(&self, run_id: &str) -> (Run, Value) {
        let (state, summary) = (self.state(), self.root().join("summary.json"));
        let run = floe_host(&[
            "run",
            self.root().to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--run-id",
            run_id,
            "--summary-json",
            summary.to_str().unwrap(),
        ]);
        let document = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        (run, document)
    }

    /// The table as pyiceberg reads it, ordered by `order_by`.
    fn table(&self, name: &str, order_by: &str) -> Value {
        table_check(&self.state(), name, order_by)
    }
}

fn table_check(state: &Path, name: &str, order_by: &str) -> Value {
    python_json("table_check.py", &["--state-dir", state.to_str().unwrap(), "--table", name, "--order-by", order_by])
}

/// A summary property of every snapshot of `main`, oldest first.
fn history(table: &Value, key: &str) -> Vec<Value> {
    table["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| if key == "operation" { s["operation"].clone() } else { s["summary"][key].clone() })
        .collect()
}

fn strings(values: &[&str]) -> Vec<Value> {
    values.iter().map(|v| json!(v)).collect()
}

#[test]
fn append_rerun_with_the_same_run_id_commits_nothing_and_a_new_run_id_appends() {
    let project = Project::new(&[
        "{name: events, layer: bronze, kind: sql, sql: models/events.sql, mode: append}",
        "{name: event_count, layer: gold, kind: sql, sql: models/event_count.sql}",
    ]);
    project.sql("events", "SELECT * FROM (VALUES (1::BIGINT, 'x'), (2, 'y')) t(id, what)");
    // The second step fails at run time (on the data: 'x' is no integer), so
    // a retry may succeed; the first one has committed by then.
    project.sql("event_count", "SELECT sum(CAST(what AS INTEGER)) AS n FROM bronze.events");
    let failed = project.run("r1").expect_code(1);
    assert!(failed.stderr.contains("step `event_count`"), "{}", failed.stderr);
    let events = project.table("bronze.events", "id");
    assert_eq!((events["rows"].as_u64(), history(&events, "floe.run-id")), (Some(2), strings(&["r1"])));
    let first_snapshot = events["current_snapshot_id"].clone();

    // The orchestrator retries the run under the same id: `events` is skipped,
    // not appended again, and the failed step completes.
    project.sql("event_count", "SELECT count(*) AS n FROM bronze.events");
    let (retry, summary) = project.run_with_summary("r1");
    let retry = retry.expect_code(0);
    let events = project.table("bronze.events", "id");
    assert_eq!(events["rows"], 2, "the retry appended again");
    assert_eq!(events["current_snapshot_id"], first_snapshot);
    assert_eq!(history(&events, "operation"), strings(&["append"]));
    assert_eq!(project.table("gold.event_count", "n")["records"], json!([{"n": 2}]));
    let line = retry.stdout.lines().find(|l| l.starts_with("events ")).unwrap();
    assert!(line.ends_with("already committed by this run id"), "{}", retry.stdout);
    assert!(line.contains(&first_snapshot.to_string()), "{}", retry.stdout);
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(
        (&steps[0]["step"], &steps[0]["already_committed"], &steps[0]["snapshot_id"], &steps[0]["rows_out"]),
        (&json!("events"), &json!(true), &first_snapshot, &json!(2))
    );
    assert_eq!((&steps[1]["step"], &steps[1]["already_committed"]), (&json!("event_count"), &json!(false)));

    // A third attempt of r1 changes nothing at all.
    project.run("r1").expect_code(0);
    assert_eq!(project.table("bronze.events", "id")["snapshots"], events["snapshots"]);
    assert_eq!(project.table("gold.event_count", "n")["snapshots"].as_array().unwrap().len(), 1);

    // A new run id is a new run: it appends.
    project.run("r2").expect_code(0);
    let events = project.table("bronze.events", "id");
    assert_eq!(events["rows"], 4);
    assert_eq!(events["sums"]["id"], 6);
    assert_eq!(history(&events, "operation"), strings(&["append", "append"]));
    assert_eq!(history(&events, "floe.run-id"), strings(&["r1", "r2"]));
    assert_eq!(history(&events, "floe.mode"), strings(&["append", "append"]));
    assert_eq!(project.table("gold.event_count", "n")["records"], json!([{"n": 4}]));
}

#[test]
fn overwrite_leaves_exactly_the_new_rows() {
    // Three rows replaced by one: past the default `max_shrink`, so the step allows it.
    let project = Project::new(&["{name: totals, layer: gold, kind: sql, sql: models/totals.sql, max_shrink: 1}"]);
    project.sql("totals", "SELECT * FROM (VALUES (1::BIGINT, 10::BIGINT), (2, 20), (3, 30)) t(id, total)");
    project.run("r1").expect_code(0);
    project.sql("totals", "SELECT 7::BIGINT AS id, 70::BIGINT AS total");
    project.run("r2").expect_code(0);
    let totals = project.table("gold.totals", "id");
    assert_eq!(totals["records"], json!([{"id": 7, "total": 70}]));
    assert_eq!(history(&totals, "operation"), strings(&["overwrite", "overwrite"]));
    let last = &totals["snapshots"][1]["summary"];
    assert_eq!(
        (&last["deleted-records"], &last["added-records"], &last["total-records"]),
        (&json!("3"), &json!("1"), &json!("1"))
    );
}

const ORDERS: &str =
    "{name: orders, layer: silver, kind: sql, sql: models/orders.sql, mode: merge, merge_keys: [order_id]}";

fn orders(rows: &[(i64, &str, i64)]) -> String {
    let values: Vec<String> = rows.iter().map(|(id, status, amount)| format!("({id}, '{status}', {amount})")).collect();
    format!(
        "SELECT order_id::BIGINT AS order_id, status, amount::BIGINT AS amount \
         FROM (VALUES {}) t(order_id, status, amount)",
        values.join(", ")
    )
}

fn order_records(rows: &[(i64, &str, i64)]) -> Value {
    Value::Array(
        rows.iter().map(|(id, status, amount)| json!({"order_id": id, "status": status, "amount": amount})).collect(),
    )
}

#[test]
fn merge_updates_matching_keys_inserts_new_ones_and_keeps_the_rest() {
    let project = Project::new(&[ORDERS]);
    project.sql("orders", &orders(&[(1, "new", 10), (2, "new", 20), (3, "new", 30)]));
    project.run("r1").expect_code(0);
    // Keys the table does not hold: a second data file, nothing removed.
    project.sql("orders", &orders(&[(10, "new", 100), (11, "new", 110)]));
    project.run("r2").expect_code(0);
    let table = project.table("silver.orders", "order_id");
    assert_eq!(table["rows"], 5);
    assert_eq!(table["snapshots"][1]["summary"]["deleted-data-files"], Value::Null);

    // Order 2 is updated, order 4 inserted; 1, 3, 10 and 11 stay.
    project.sql("orders", &orders(&[(2, "shipped", 25), (4, "new", 40)]));
    project.run("r3").expect_code(0);
    let table = project.table("silver.orders", "order_id");
    assert_eq!(
        table["records"],
        order_records(&[
            (1, "new", 10),
            (2, "shipped", 25),
            (3, "new", 30),
            (4, "new", 40),
            (10, "new", 100),
            (11, "new", 110)
        ])
    );
    assert_eq!(table["sums"]["amount"], 315);
    assert_eq!(history(&table, "operation"), strings(&["overwrite", "overwrite", "overwrite"]));
    assert_eq!(history(&table, "floe.mode"), strings(&["merge", "merge", "merge"]));
    let merge = &table["snapshots"][2]["summary"];
    assert_eq!(
        (&merge["floe.merge.updated-records"], &merge["floe.merge.inserted-records"]),
        (&json!("1"), &json!("1"))
    );
    // Only the file holding order 2 was rewritten (with orders 1 and 3); the
    // file of orders 10 and 11 was kept as it is.
    assert_eq!(
        (&merge["deleted-data-files"], &merge["deleted-records"], &merge["added-records"], &merge["total-data-files"]),
        (&json!("1"), &json!("3"), &json!("4"), &json!("2"))
    );
    assert_eq!(merge["total-records"], "6");
}

#[test]
fn merge_rejects_duplicate_and_unknown_keys_and_leaves_the_table_alone() {
    let project = Project::new(&[ORDERS]);
    project.sql("orders", &orders(&[(1, "new", 10)]));
    project.run("r1").expect_code(0);

    project.sql("orders", &orders(&[(7, "a", 1), (8, "b", 2), (7, "c", 3), (9, "d", 4), (8, "e", 5), (7, "f", 6)]));
    let duplicate = project.run("r2").expect_code(1);
    assert!(
        duplicate.stderr.contains(
            "step `orders`: table `silver.orders`: the step's output has 2 merge keys (order_id) on more than one \
             row, for example order_id=7 on 3 rows; a merge needs at most one row per key"
        ),
        "{}",
        duplicate.stderr
    );

    std::fs::write(
        project.root().join("floe.yaml"),
        format!("name: modes\ntransforms:\n  - {}\n", ORDERS.replace("[order_id]", "[order_no]")),
    )
    .unwrap();
    project.sql("orders", &orders(&[(5, "new", 50)]));
    let unknown = project.run("r3").expect_code(1);
    assert!(
        unknown.stderr.contains(
            "step `orders`: table `silver.orders`: merge key `order_no` is not a column of the step's output \
             (its columns: order_id, status, amount)"
        ),
        "{}",
        unknown.stderr
    );

    let table = project.table("silver.orders", "order_id");
    assert_eq!(table["records"], order_records(&[(1, "new", 10)]));
    assert_eq!(table["snapshots"].as_array().unwrap().len(), 1);
}

#[test]
fn add_columns_evolves_the_schema_in_the_commit_and_fail_names_the_setting() {
    let step = |evolution: &str| {
        format!("{{name: people, layer: silver, kind: sql, sql: models/people.sql, mode: append{evolution}}}")
    };
    let project = Project::new(&[&step("")]);
    project.sql("people", "SELECT 1::BIGINT AS id, 'ada' AS name");
    project.run("r1").expect_code(0);

    // The default, `fail`: a new column stops the step, and the message names the setting.
    project.sql("people", "SELECT 2::BIGINT AS id, 'bob' AS name, 7::BIGINT AS score");
    let refused = project.run("r2").expect_code(1);
    assert!(
        refused.stderr.contains(
            "step `people`: table `silver.people` has columns (id long, name string) but the step produces \
             (id long, name string, score long); the step's `schema_evolution` is `fail` (the default); set \
             `schema_evolution: add_columns` to add the new columns (`score`)"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(project.table("silver.people", "id")["rows"], 1);

    std::fs::write(
        project.root().join("floe.yaml"),
        format!("name: modes\ntransforms:\n  - {}\n", step(", schema_evolution: add_columns")),
    )
    .unwrap();
    project.run("r2").expect_code(0);
    let people = project.table("silver.people", "id");
    assert_eq!(people["columns"], json!([["id", "long", false], ["name", "string", false], ["score", "long", false]]));
    assert_eq!(
        people["records"],
        json!([{"id": 1, "name": "ada", "score": null}, {"id": 2, "name": "bob", "score": 7}])
    );
    // One commit moved the schema and added the snapshot written with it.
    assert_eq!(people["current_schema_id"], 1);
    let schema_ids: Vec<&Value> = people["snapshots"].as_array().unwrap().iter().map(|s| &s["schema_id"]).collect();
    assert_eq!(schema_ids, [&json!(0), &json!(1)]);

    // A column the output lacks is written as NULL; columns match by name.
    project.sql("people", "SELECT 9::BIGINT AS score, 3::BIGINT AS id");
    project.run("r3").expect_code(0);
    let people = project.table("silver.people", "id");
    assert_eq!(people["records"][2], json!({"id": 3, "name": null, "score": 9}));
    assert_eq!(people["current_schema_id"], 1);

    // A type change fails whatever the setting.
    project.sql("people", "SELECT 'four' AS id, 'dan' AS name");
    let changed = project.run("r4").expect_code(1);
    assert!(
        changed.stderr.contains(
            "step `people`: table `silver.people`: the step changes column types (`id`: long → string); \
             floe-host does not change the type of a column"
        ),
        "{}",
        changed.stderr
    );
    assert_eq!(project.table("silver.people", "id")["rows"], 3);

    // A name that differs from a column's only in case is not a new column:
    // a table that held both could not be read by name.
    project.sql("people", "SELECT 5::BIGINT AS id, 'eve' AS NAME");
    let cased = project.run("r5").expect_code(1);
    assert!(
        cased.stderr.contains(
            "the step's column `NAME` differs from the table's `name` only in case, and a table cannot hold both \
             (readers match names ignoring case): produce `name`"
        ),
        "{}",
        cased.stderr
    );
    let people = project.table("silver.people", "id");
    assert_eq!(people["rows"], 3);
    assert_eq!(people["current_schema_id"], 1);
}

/// Schema evolution stops at 4,096 columns: a step that added columns on
/// every run would grow the table's metadata without end. Column lists in
/// the error are cut.
#[test]
fn add_columns_stops_at_the_column_limit() {
    let project = Project::new(&[
        "{name: wide, layer: silver, kind: sql, sql: models/wide.sql, mode: append, schema_evolution: add_columns}",
    ]);
    let columns = |n: usize| (0..n).map(|i| format!("1::INTEGER AS c{i}")).collect::<Vec<_>>().join(", ");
    project.sql("wide", &format!("SELECT {}", columns(4090)));
    project.run("r1").expect_code(0);
    // Each output stays within 4,096 columns; the table would not.
    let added: Vec<String> = (0..10).map(|i| format!("2::INTEGER AS d{i}")).collect();
    project.sql("wide", &format!("SELECT {}, {}", columns(4086), added.join(", ")));
    let refused = project.run("r2").expect_code(1);
    for piece in [
        "adding its 10 new columns would give the table 4100 columns, over the 4096 floe-host keeps in one table",
        "c19 int, … and 4070 more",
    ] {
        assert!(
            refused.stderr.contains(piece),
            "stderr lacks {piece:?}:\n{}",
            &refused.stderr[..refused.stderr.len().min(4000)]
        );
    }
    assert!(refused.stderr.len() < 64 << 10, "the error is {} bytes", refused.stderr.len());
    assert_eq!(project.table("silver.wide", "c0")["rows"], 1);
}

#[test]
fn merge_with_add_columns_keeps_the_old_rows_with_nulls() {
    let step = "{name: orders, layer: silver, kind: sql, sql: models/orders.sql, mode: merge, merge_keys: [order_id], \
                schema_evolution: add_columns}";
    let project = Project::new(&[step]);
    project.sql("orders", &orders(&[(1, "new", 10), (2, "new", 20)]));
    project.run("r1").expect_code(0);
    project.sql("orders", "SELECT 2::BIGINT AS order_id, 'paid' AS status, 21::BIGINT AS amount, 'EUR' AS currency");
    project.run("r2").expect_code(0);
    let table = project.table("silver.orders", "order_id");
    assert_eq!(
        table["records"],
        json!([
            {"order_id": 1, "status": "new", "amount": 10, "currency": null},
            {"order_id": 2, "status": "paid", "amount": 21, "currency": "EUR"},
        ])
    );
}

// In-process: two writers on one table at the same time, interleaved on one
// runtime, so that the one that commits second conflicts with the first.

async fn lakehouse(state: &Path) -> Lakehouse {
    let spec = CatalogSpec::Sql {
        uri: format!("sqlite:{}", state.join("catalog.db").display()),
        warehouse: state.join("warehouse").display().to_string(),
    };
    let catalogs = BTreeMap::from([("default".to_string(), spec)]);
    let storage = BTreeMap::from([("default".to_string(), StorageSpec::Local { root: state.join("warehouse") })]);
    Lakehouse::open(&catalogs, &storage, [("default".to_string(), "default".to_string())]).await.unwrap()
}

/// Runs `future` on a runtime of its own (the catalog's connection pools
/// live in it), returning its output and the host's log lines meanwhile.
fn block_on<F: std::future::Future>(future: F) -> (F::Output, String) {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt().with_writer(logs.clone()).with_ansi(false).finish();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let output = tracing::subscriber::with_default(subscriber, || runtime.block_on(future));
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    (output, text)
}

/// Log output, kept in memory.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

fn table_ref(namespace: &str, name: &str) -> TableRef {
    TableRef {
        namespace: Ident::try_from(namespace.to_string()).unwrap(),
        name: Ident::try_from(name.to_string()).unwrap(),
    }
}

fn tags(run_id: &str, step: &str) -> CommitTags {
    CommitTags {
        run_id: run_id.into(),
        pipeline: "modes".into(),
        step: step.into(),
        partition: None,
        inputs: Vec::new(),
    }
}

fn batch(rows: &[(i64, &str)]) -> (SchemaRef, Vec<RecordBatch>) {
    let schema: SchemaRef =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("v", DataType::Utf8, true)]));
    let ids = Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
    let values = StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>());
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(values)]).unwrap();
    (schema, vec![batch])
}

async fn write(
    lakehouse: &Lakehouse,
    table: &TableRef,
    rows: &[(i64, &str)],
    mode: WriteMode,
    keys: &[String],
    tags: &CommitTags,
) -> CommitInfo {
    let (schema, batches) = batch(rows);
    let spec = WriteSpec {
        mode,
        merge_keys: keys,
        schema_evolution: SchemaEvolution::Fail,
        partitioning: Partitioning::default(),
    };
    lakehouse.write("default", table, None, &schema, batches, spec, tags).await.unwrap()
}

/// An `overwrite` computed from older inputs than the table's current
/// snapshot is not committed over it (what a slow gold step of one partition
/// run would do after a faster run committed gold from newer silver); one
/// from the same or newer inputs is. Appends are not held back.
#[test]
fn an_overwrite_from_older_inputs_does_not_replace_one_from_newer_inputs() {
    let state = temp_dir();
    let table = table_ref("gold", "totals");
    let read = |run: &str, silver: i64| CommitTags {
        inputs: vec![
            ("floe.input.default.silver.orders".into(), silver),
            ("floe.input.default.silver.other".into(), 1),
        ],
        ..tags(run, "totals")
    };
    let ((fresh, stale, again, newer, appended), logs) = block_on(async {
        let lakehouse = lakehouse(state.path()).await;
        let fresh = write(&lakehouse, &table, &[(1, "from silver 5")], WriteMode::Overwrite, &[], &read("a", 5)).await;
        let stale = write(&lakehouse, &table, &[(1, "from silver 4")], WriteMode::Overwrite, &[], &read("b", 4)).await;
        let again =
            write(&lakehouse, &table, &[(1, "from silver 5 again")], WriteMode::Overwrite, &[], &read("c", 5)).await;
        let newer = write(&lakehouse, &table, &[(1, "from silver 6")], WriteMode::Overwrite, &[], &read("d", 6)).await;
        let appended =
            write(&lakehouse, &table, &[(2, "appended from silver 3")], WriteMode::Append, &[], &read("e", 3)).await;
        (fresh, stale, again, newer, appended)
    });
    assert!(!fresh.superseded && !fresh.already_committed, "{fresh:?}");
    // Nothing written: the figures are those of the snapshot that stands.
    assert!(stale.superseded && stale.already_committed, "{stale:?}");
    assert_eq!((stale.snapshot_id, stale.rows), (fresh.snapshot_id, 1));
    assert!(logs.contains("computed from newer inputs than this step read"), "{logs}");
    assert!(!again.superseded && again.snapshot_id != fresh.snapshot_id, "the same inputs commit: {again:?}");
    assert!(!newer.superseded, "{newer:?}");
    assert!(!appended.superseded, "{appended:?}");
    let totals = table_check(state.path(), "gold.totals", "id");
    assert_eq!(history(&totals, "floe.run-id"), strings(&["a", "c", "d", "e"]));
    assert_eq!(history(&totals, "floe.input.default.silver.orders"), strings(&["5", "5", "6", "3"]));
    assert_eq!(totals["rows"], 2);
}

/// Rounds of a race until one had the commits conflict: the two writers'
/// interleaving is up to the runtime, and most rounds conflict.
const ROUNDS: usize = 10;

#[test]
fn twin_attempts_of_one_run_commit_a_step_once() {
    let state = temp_dir();
    let mut conflicted = false;
    for round in 0..ROUNDS {
        let name = format!("events_{round}");
        let table = table_ref("bronze", &name);
        let twin = tags("r1", &name);
        let ((a, b), logs) = block_on(async {
            let lakehouse = lakehouse(state.path()).await;
            write(&lakehouse, &table, &[(0, "seed")], WriteMode::Append, &[], &tags("seed", &name)).await;
            futures::join!(
                write(&lakehouse, &table, &[(1, "a"), (2, "a")], WriteMode::Append, &[], &twin),
                write(&lakehouse, &table, &[(1, "b"), (2, "b")], WriteMode::Append, &[], &twin),
            )
        });
        assert_eq!(a.snapshot_id, b.snapshot_id, "both attempts name the one commit");
        assert!(a.already_committed != b.already_committed, "exactly one attempt committed: {a:?} {b:?}");
        assert_eq!((a.rows, a.files, b.rows, b.files), (2, 1, 2, 1), "the twin reports the figures of that commit");
        assert!(logs.contains("Not committing: another attempt of this run committed the step meanwhile."), "{logs}");
        let events = table_check(state.path(), &format!("bronze.{name}"), "id");
        assert_eq!(events["rows"], 3);
        assert_eq!(history(&events, "floe.run-id"), strings(&["seed", "r1"]));
        // Both loaded the table before either committed: the second one's
        // commit conflicted, and the table it reloaded had the step committed.
        if logs.contains("Commit conflicted with another writer") {
            conflicted = true;
            break;
        }
    }
    assert!(conflicted, "no round of {ROUNDS} had the twins' commits conflict");
}

#[test]
fn a_merge_that_lost_a_commit_race_is_computed_again_on_the_new_state() {
    let state = temp_dir();
    let keys = ["id".to_string()];
    let mut conflicted = false;
    for round in 0..ROUNDS {
        let name = format!("orders_{round}");
        let table = table_ref("silver", &name);
        let ((a, b), logs) = block_on(async {
            let lakehouse = lakehouse(state.path()).await;
            let seed = [(1, "seed"), (2, "seed"), (3, "seed")];
            write(&lakehouse, &table, &seed, WriteMode::Merge, &keys, &tags("seed", &name)).await;
            // Both merges start from the seed; whichever commits second must
            // merge into the first one's result, not into the seed.
            let (ra, rb) = (tags("ra", &name), tags("rb", &name));
            futures::join!(
                write(&lakehouse, &table, &[(2, "a"), (4, "a")], WriteMode::Merge, &keys, &ra),
                write(&lakehouse, &table, &[(2, "b"), (5, "b")], WriteMode::Merge, &keys, &rb),
            )
        });
        assert!(!a.already_committed && !b.already_committed);
        let orders = table_check(state.path(), &format!("silver.{name}"), "id");
        let runs = history(&orders, "floe.run-id");
        assert_eq!(runs.len(), 3, "{runs:?}");
        let winner = if runs[2] == "rb" { "b" } else { "a" };
        assert_eq!(
            orders["records"],
            json!([
                {"id": 1, "v": "seed"},
                {"id": 2, "v": winner},
                {"id": 3, "v": "seed"},
                {"id": 4, "v": "a"},
                {"id": 5, "v": "b"},
            ])
        );
        if logs.contains("Commit conflicted with another writer") {
            let merges = logs.matches("Merged the step's output into the table.").count();
            assert_eq!(merges, 4, "seed, a, b, and b or a again on the new state: {logs}");
            conflicted = true;
            break;
        }
    }
    assert!(conflicted, "no round of {ROUNDS} had the merges' commits conflict");
}
