//! SQL models whose table is on local storage: DuckDB writes the data file
//! itself (`COPY … TO` with Iceberg field ids), and the host describes it
//! from its footer (`lakehouse/adopt.rs`). pyiceberg reads the tables back:
//! rows, values, and the file's column metrics. Outputs that the host must
//! see or that DuckDB cannot write as Iceberg reads them stream through the
//! host's writer as before.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{Run, floe_host, python_json, temp_dir};

/// A pipeline of SQL models in a temp dir, with its state dir.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// `steps` are YAML items of `transforms`; `models` their SQL files.
    fn new(steps: &[&str], models: &[(&str, &str)]) -> Self {
        let dir = temp_dir();
        std::fs::create_dir_all(dir.path().join("models")).unwrap();
        let mut yaml = String::from("name: writes\ntransforms:\n");
        for step in steps {
            yaml.push_str(&format!("  - {step}\n"));
        }
        std::fs::write(dir.path().join("floe.yaml"), yaml).unwrap();
        for (name, sql) in models {
            std::fs::write(dir.path().join("models").join(format!("{name}.sql")), sql).unwrap();
        }
        Project { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn run(&self) -> Run {
        let state = self.state();
        floe_host(&["run", self.dir.path().to_str().unwrap(), "--state-dir", state.to_str().unwrap()])
    }

    /// The table through pyiceberg, with each data file's metrics.
    fn table(&self, name: &str, order_by: &str) -> Value {
        let state = self.state();
        python_json(
            "table_check.py",
            &["--state-dir", state.to_str().unwrap(), "--table", name, "--order-by", order_by, "--metrics"],
        )
    }

    /// Who wrote each data file of `<layer>/<table>`, from its footer.
    fn writers(&self, layer: &str, table: &str) -> Vec<String> {
        let data = self.state().join("warehouse").join(layer).join(table).join("data");
        let mut writers = Vec::new();
        for entry in std::fs::read_dir(&data).unwrap() {
            let path = entry.unwrap().path();
            writers.push(created_by(&path));
        }
        writers.sort();
        writers
    }

    /// What DuckDB left in its scratch folder.
    fn scratch(&self) -> Vec<String> {
        match std::fs::read_dir(self.state().join("duckdb-out")) {
            Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// The writer a Parquet file names (`DuckDB version …`, `parquet-rs version …`).
fn created_by(path: &Path) -> String {
    let file = std::fs::File::open(path).unwrap();
    let footer = parquet::file::metadata::ParquetMetaDataReader::new().parse_and_finish(&file).unwrap();
    let writer = footer.file_metadata().created_by().unwrap_or("").to_string();
    writer.split(" version").next().unwrap().to_string()
}

const TYPED: &str = "SELECT i::BIGINT AS id, (i % 7)::INTEGER AS k, (i / 4)::DECIMAL(12, 2) AS amount,
       DATE '2024-01-01' + (i % 31)::INTEGER AS day,
       TIMESTAMP '2024-01-01 00:00:00' + to_seconds(i) AS at,
       TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds(i) AS at_utc,
       CASE WHEN i % 10 = 0 THEN NULL ELSE 'n' || i END AS note,
       i / 8 AS ratio, i % 2 = 0 AS even
FROM range(1000) t(i)
-- a trailing comment, as models often end";

#[test]
fn duckdb_writes_a_models_file_that_pyiceberg_reads_with_its_metrics() {
    let project = Project::new(
        &[
            "{name: typed, layer: silver, kind: sql, sql: models/typed.sql}",
            "{name: totals, layer: gold, kind: sql, sql: models/totals.sql}",
        ],
        &[
            ("typed", TYPED),
            ("totals", "SELECT count(*) AS n, sum(id)::BIGINT AS ids, count(note) AS notes FROM silver.typed\n"),
        ],
    );
    project.run().expect_code(0);
    assert_eq!(project.writers("silver", "typed"), ["DuckDB"]);
    assert_eq!(project.writers("gold", "totals"), ["DuckDB"]);
    assert_eq!(project.scratch(), Vec::<String>::new(), "the scratch file moved into the table");

    let typed = project.table("silver.typed", "id");
    assert_eq!(typed["rows"], 1000);
    assert_eq!(typed["sums"]["id"], 499_500);
    assert_eq!(typed["sums"]["k"], (0..1000).map(|i| i % 7).sum::<i64>());
    let columns: Vec<String> = typed["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c[0].as_str().unwrap(), c[1].as_str().unwrap()))
        .collect();
    assert_eq!(
        columns,
        [
            "id long",
            "k int",
            "amount decimal(12, 2)",
            "day date",
            "at timestamp",
            "at_utc timestamptz",
            "note string",
            "ratio double",
            "even boolean"
        ]
    );
    let row = &typed["records"][9];
    assert_eq!(
        (&row["amount"], &row["day"], &row["at"], &row["note"], &row["even"]),
        (&json!("2.25"), &json!("2024-01-10"), &json!("2024-01-01 00:00:09"), &json!("n9"), &json!(false))
    );
    assert_eq!(typed["records"][10]["note"], Value::Null);

    // The file's entry, built from its footer.
    let files = typed["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["records"], 1000);
    let metrics = &files[0]["metrics"];
    assert_eq!((&metrics["id"]["lower"], &metrics["id"]["upper"]), (&json!(0), &json!(999)));
    assert_eq!((&metrics["k"]["lower"], &metrics["k"]["upper"]), (&json!(0), &json!(6)));
    assert_eq!((&metrics["day"]["lower"], &metrics["day"]["upper"]), (&json!(19723), &json!(19753)));
    assert_eq!((&metrics["even"]["lower"], &metrics["even"]["upper"]), (&json!(false), &json!(true)));
    assert_eq!((&metrics["note"]["nulls"], &metrics["note"]["values"]), (&json!(100), &json!(1000)));
    assert_eq!(metrics["id"]["nulls"], 0);
    // Strings, decimals and floats carry no bounds (DuckDB may truncate
    // string statistics; floats may hold NaN).
    for column in ["note", "amount", "ratio"] {
        assert!(metrics[column].get("lower").is_none(), "{column}: {metrics}");
    }

    let totals = project.table("gold.totals", "n");
    assert_eq!(totals["records"], json!([{"n": 1000, "ids": 499500, "notes": 900}]));
}

#[test]
fn outputs_duckdb_cannot_write_as_iceberg_reads_them_stream_through_the_host() {
    let project = Project::new(
        &[
            "{name: listed, layer: silver, kind: sql, sql: models/listed.sql}",
            "{name: parted, layer: silver, kind: sql, sql: models/parted.sql, partition_by: [day]}",
            "{name: timed, layer: silver, kind: sql, sql: models/timed.sql}",
            "{name: huge, layer: silver, kind: sql, sql: models/huge.sql}",
        ],
        &[
            ("listed", "SELECT i AS id, [i, i + 1] AS pair FROM range(5) t(i)"),
            ("parted", "SELECT i AS id, DATE '2024-01-01' + (i % 2)::INTEGER AS day FROM range(6) t(i)"),
            ("timed", "SELECT 42 AS answer, TIME '12:30:00' AS at"),
            ("huge", "SELECT 1::DECIMAL(30, 2) AS big"),
        ],
    );
    project.run().expect_code(0);
    for table in ["listed", "timed", "huge"] {
        assert_eq!(project.writers("silver", table), ["parquet-rs"], "{table}");
    }
    assert_eq!(project.table("silver.listed", "id")["records"][4]["pair"], json!([4, 5]));
    assert_eq!(project.table("silver.timed", "answer")["records"], json!([{"answer": 42, "at": "12:30:00"}]));
    let parted = project.table("silver.parted", "id");
    assert_eq!((parted["rows"].clone(), parted["files"].as_array().unwrap().len()), (json!(6), 2));
    assert_eq!(project.scratch(), Vec::<String>::new());
}

#[test]
fn a_model_that_fails_inside_duckdb_leaves_no_file_and_the_table_as_it_was() {
    let project = Project::new(
        &["{name: numbers, layer: silver, kind: sql, sql: models/numbers.sql}"],
        &[("numbers", "SELECT i AS id FROM range(3) t(i)")],
    );
    project.run().expect_code(0);
    let before = project.table("silver.numbers", "id");
    // Fails on row 50,000, after DuckDB has begun to write.
    std::fs::write(
        project.dir.path().join("models/numbers.sql"),
        "SELECT CASE WHEN i < 50000 THEN i ELSE error('row ' || i || ' is refused') END AS id FROM range(100000) t(i)",
    )
    .unwrap();
    let run = project.run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("step `numbers`") && run.stderr.contains("row 50000 is refused"), "{}", run.stderr);
    assert_eq!(project.scratch(), Vec::<String>::new(), "DuckDB's partial file is deleted");
    let after = project.table("silver.numbers", "id");
    assert_eq!(after["current_snapshot_id"], before["current_snapshot_id"]);
    assert_eq!(after["records"], json!([{"id": 0}, {"id": 1}, {"id": 2}]));
    assert_eq!(project.writers("silver", "numbers"), ["DuckDB"], "only the first run's file");
}

/// The host writes each column's name into the COPY statement (its field
/// id): a name built to close the literal and run SQL of its own is only a
/// name. The model may read nothing of the scratch folder either.
#[test]
fn a_column_name_cannot_break_out_of_the_copy_and_the_scratch_folder_stays_closed() {
    let evil = temp_dir();
    let target = evil.path().join("evil.csv");
    let name = format!("x': 1}}); COPY (SELECT 42) TO '{}' (FORMAT csv); --", target.display());
    let project = Project::new(
        &["{name: crafted, layer: silver, kind: sql, sql: models/crafted.sql}"],
        &[("crafted", &format!("SELECT 7 AS \"{name}\", 8 AS plain"))],
    );
    project.run().expect_code(0);
    assert!(!target.exists(), "the name ran as SQL");
    assert_eq!(project.writers("silver", "crafted"), ["DuckDB"]);
    let crafted = project.table("silver.crafted", "plain");
    let mut row = serde_json::Map::new();
    row.insert(name.clone(), json!(7));
    row.insert("plain".into(), json!(8));
    assert_eq!(crafted["records"], json!([row]));

    for (model, refused) in
        [("SELECT * FROM glob('OUT/*')", "glob"), ("SELECT * FROM read_parquet('OUT/*.parquet')", "read_parquet")]
    {
        let project = Project::new(&["{name: peek, layer: silver, kind: sql, sql: models/peek.sql}"], &[]);
        let out = project.state().join("duckdb-out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("left-by-a-killed-run.parquet"), b"PAR1").unwrap();
        let model = model.replace("OUT", &out.display().to_string());
        std::fs::write(project.dir.path().join("models/peek.sql"), model).unwrap();
        let run = project.run();
        assert_ne!(run.code, 0, "{refused} read the scratch folder:\n{}", run.stdout);
        assert!(run.stderr.contains("Permission Error") || run.stderr.contains("not allowed"), "{}", run.stderr);
    }
}
