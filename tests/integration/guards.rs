//! Guards against bad inputs: a header-only source (a truncated upstream
//! export) or an output that lacks more than `max_shrink` of the rows it
//! replaces fails its step with exit 4, names the table and both row
//! counts, and leaves every table as it was; `allow_empty` and `max_shrink`
//! let a step opt out.

use std::path::Path;

use crate::support::{Run, floe_host, parquet_files, plugin, temp_dir};

/// A project with `bronze.raw_events` ingested from `events.csv` and
/// `silver.events` selecting all of it; `extra` is added to each step.
fn project(dir: &Path, bronze_extra: &str, silver_extra: &str) {
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(dir.join("models/events.sql"), "SELECT id, name FROM bronze.raw_events\n").unwrap();
    let yaml = format!(
        "name: guarded\nplugins:\n  csv-ingest:\n    path: {}\ntransforms:\n\
         \x20 - name: raw_events\n    layer: bronze\n    kind: ingest\n    plugin: csv-ingest\n    source: events.csv\n{bronze_extra}\
         \x20 - name: events\n    layer: silver\n    kind: sql\n    sql: models/events.sql\n{silver_extra}",
        serde_json::to_string(plugin("csv_ingest.wasm").to_str().unwrap()).unwrap(),
    );
    std::fs::write(dir.join("floe.yaml"), yaml).unwrap();
}

fn rows(n: usize) -> String {
    let mut csv = "id,name\n".to_owned();
    for i in 0..n {
        csv.push_str(&format!("{i},name-{i}\n"));
    }
    csv
}

fn run(dir: &Path) -> Run {
    let state = dir.join("state");
    floe_host(&["run", dir.to_str().unwrap(), "--state-dir", state.to_str().unwrap()])
}

/// `(rows, snapshot)` of `table`, as `show` prints them.
fn table(dir: &Path, table: &str) -> (u64, String) {
    let state = dir.join("state");
    let show =
        floe_host(&["show", table, dir.to_str().unwrap(), "--state-dir", state.to_str().unwrap()]).expect_code(0);
    let header = show.stdout.lines().next().unwrap_or_default().to_owned();
    // "bronze.raw_events (3 rows, snapshot 123)"
    let inner =
        header.split_once('(').and_then(|(_, rest)| rest.strip_suffix(')')).unwrap_or_else(|| panic!("{header}"));
    let (rows, snapshot) = inner.split_once(" rows, snapshot ").unwrap_or_else(|| panic!("{header}"));
    (rows.parse().unwrap(), snapshot.to_owned())
}

#[test]
fn a_header_only_source_leaves_every_table_as_it_was() {
    let dir = temp_dir();
    let dir = dir.path();
    project(dir, "", "");
    std::fs::write(dir.join("events.csv"), rows(3)).unwrap();
    run(dir).expect_code(0);
    let before = [table(dir, "bronze.raw_events"), table(dir, "silver.events")];
    assert_eq!((before[0].0, before[1].0), (3, 3));

    // The export arrives truncated: its header and nothing else.
    std::fs::write(dir.join("events.csv"), "id,name\n").unwrap();
    let refused = run(dir).expect_code(4);
    assert!(
        refused.stderr.contains(
            "step `raw_events`: source `events.csv` has no data rows, so `bronze.raw_events` is left as it was; \
             if the source may be empty, set `allow_empty: true` on the step"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!([table(dir, "bronze.raw_events"), table(dir, "silver.events")], before, "nothing was committed");

    // Allowed empty, bronze commits 0 rows; silver would then lose all 3 of
    // its rows, which its default max_shrink refuses.
    project(dir, "    allow_empty: true\n", "");
    let refused = run(dir).expect_code(4);
    assert!(
        refused.stderr.contains(
            "step `events`: the output has 0 rows where the table `silver.events` has 3, more than `max_shrink` \
             (0.5) allows it to lose"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(table(dir, "bronze.raw_events").0, 0);
    assert_eq!(table(dir, "silver.events"), before[1]);

    // Opted out on both steps: the empty input empties both tables.
    project(dir, "    allow_empty: true\n", "    max_shrink: 1\n");
    run(dir).expect_code(0);
    assert_eq!((table(dir, "bronze.raw_events").0, table(dir, "silver.events").0), (0, 0));
}

#[test]
fn an_output_that_shrinks_past_max_shrink_is_refused() {
    let dir = temp_dir();
    let dir = dir.path();
    project(dir, "", "");
    std::fs::write(dir.join("events.csv"), rows(10)).unwrap();
    run(dir).expect_code(0);
    let before = table(dir, "bronze.raw_events");

    // 4 of 10 rows: 60% fewer, past the default 50%.
    let files = parquet_files(&dir.join("state/warehouse/bronze/raw_events"));
    assert_eq!(files, 1);
    std::fs::write(dir.join("events.csv"), rows(4)).unwrap();
    let refused = run(dir).expect_code(4);
    assert!(
        refused.stderr.contains("step `raw_events`: the output has 4 rows where the table `bronze.raw_events` has 10"),
        "{}",
        refused.stderr
    );
    assert_eq!(table(dir, "bronze.raw_events"), before);
    // The refused step deleted the data file it had written.
    assert_eq!(parquet_files(&dir.join("state/warehouse/bronze/raw_events")), files, "no orphan is left");

    // 5 of 10 is within the default; 4 of 10 within `max_shrink: 0.6`.
    project(dir, "    max_shrink: 0.6\n", "    max_shrink: 0.6\n");
    run(dir).expect_code(0);
    assert_eq!((table(dir, "bronze.raw_events").0, table(dir, "silver.events").0), (4, 4));

    // A fraction outside 0..1 is a configuration error.
    project(dir, "    max_shrink: 1.5\n", "    allow_empty: true\n");
    let invalid = run(dir).expect_code(2);
    for piece in
        ["`transforms[0].max_shrink`: `max_shrink` is 1.5, not a fraction from 0 to 1", "`transforms[1].allow_empty`"]
    {
        assert!(invalid.stderr.contains(piece), "{piece}:\n{}", invalid.stderr);
    }
}

/// With `--partition`, what a step replaces is its partition: a day that
/// arrives with a quarter of its rows is refused, and the other days are
/// not counted.
#[test]
fn a_partition_that_shrinks_past_max_shrink_is_refused() {
    let dir = temp_dir();
    let (project_dir, state) = (dir.path().join("project"), dir.path().join("state"));
    crate::partitions::project(&project_dir, &["raw_orders"]);
    for (day, rows) in [("2024-01-01", 8), ("2024-01-02", 4)] {
        crate::partitions::write_day(&project_dir, day, rows, "1.00");
        let args = ["run", project_dir.to_str().unwrap(), "--state-dir", state.to_str().unwrap(), "--partition", day];
        floe_host(&args).expect_code(0);
    }
    crate::partitions::write_day(&project_dir, "2024-01-02", 1, "1.00");
    let args =
        ["run", project_dir.to_str().unwrap(), "--state-dir", state.to_str().unwrap(), "--partition", "2024-01-02"];
    let refused = floe_host(&args).expect_code(4);
    assert!(
        refused.stderr.contains(
            "step `raw_orders`: the output has 1 rows where partition `2024-01-02` of the table `bronze.raw_orders` has 4"
        ),
        "{}",
        refused.stderr
    );
    let tables = crate::partitions::read_back(&state, &["bronze.raw_orders"]);
    assert_eq!(tables["bronze.raw_orders"]["rows"], 12, "both days as they were");
}

/// A 50 MB header (a broken export) is refused by csv-ingest as bad input
/// with a short message, before it is buffered whole: exit 4, no table.
#[test]
fn a_50_mb_header_is_refused_with_a_short_message() {
    let dir = temp_dir();
    let dir = dir.path();
    project(dir, "", "");
    let mut csv = "h".repeat(50 << 20);
    csv.push_str("\n1\n");
    std::fs::write(dir.join("events.csv"), csv).unwrap();
    let refused = run(dir).expect_code(4);
    assert!(
        refused.stderr.contains(
            "step `raw_events`: plugin `csv-ingest` rejected its input: `events.csv`: the header line is longer than \
             the 1048576 bytes accepted"
        ),
        "{}",
        &refused.stderr[..refused.stderr.len().min(4096)]
    );
    assert!(refused.stderr.len() < 4096, "stderr is {} bytes", refused.stderr.len());
    assert!(!dir.join("state/warehouse/bronze/raw_events").exists());
}

/// A model's column names meet the same bounds as a plugin's (1 KiB, no
/// control characters, unique, at most 4,096 columns): a step that names a
/// column with 2,000 bytes fails with exit 2 before any data file is
/// written, whether or not it has rows.
#[test]
fn a_model_column_name_over_the_limit_is_refused() {
    let dir = temp_dir();
    let dir = dir.path();
    project(dir, "", "");
    std::fs::write(dir.join("events.csv"), rows(3)).unwrap();
    let name = "n".repeat(2000);
    for filter in ["", " WHERE false"] {
        std::fs::write(
            dir.join("models/events.sql"),
            format!("SELECT id AS \"{name}\" FROM bronze.raw_events{filter}\n"),
        )
        .unwrap();
        let refused = run(dir).expect_code(2);
        assert!(
            refused.stderr.contains(
                "step `events`: table `silver.events`: the step's output cannot be stored: column 1 has a name of \
                 2000 bytes, over 1024; name the columns in the step"
            ),
            "{filter:?}: {}",
            refused.stderr
        );
        assert!(!dir.join("state/warehouse/silver/events").exists(), "{filter:?}: nothing written");
    }
}
