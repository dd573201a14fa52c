//! What a crash or an I/O error at the exact point where a new table is
//! created leaves behind, made to happen there by a failpoint
//! (`FLOE_FAILPOINT`, debug builds): no table at all, not a table without a
//! snapshot; and a rerun creates it with its first snapshot. And the SQLite
//! hot journal a kill can leave, which floe-host rolls back when it opens the
//! catalog.

use std::path::Path;

use crate::support::{floe_host_with_env, plugin, python, temp_dir};

fn project(dir: &Path) {
    std::fs::write(dir.join("events.csv"), "id,name\n1,a\n2,b\n").unwrap();
    let yaml = format!(
        "name: crash\nplugins:\n  csv-ingest:\n    path: {}\ntransforms:\n\
         \x20 - name: raw_events\n    layer: bronze\n    kind: ingest\n    plugin: csv-ingest\n    source: events.csv\n",
        serde_json::to_string(plugin("csv_ingest.wasm").to_str().unwrap()).unwrap(),
    );
    std::fs::write(dir.join("floe.yaml"), yaml).unwrap();
}

/// The rows of `iceberg_tables`, as SQLite has them.
fn catalog_rows(state: &Path) -> String {
    let script = "import sqlite3, sys\n\
                  db = sqlite3.connect(sys.argv[1])\n\
                  print(db.execute('SELECT table_namespace, table_name FROM iceberg_tables').fetchall())\n";
    sqlite(state, script)
}

#[test]
fn a_new_table_appears_only_with_its_first_snapshot() {
    let dir = temp_dir();
    let dir = dir.path();
    project(dir);
    let state = dir.join("state");
    let args = ["run", dir.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];

    // Killed right before the catalog row is written: its data and metadata
    // files exist, the table does not.
    let crashed = floe_host_with_env(&args, &[("FLOE_FAILPOINT", "create-table:abort")]);
    assert_eq!(crashed.code, -1, "killed by SIGABRT at the failpoint, no exit code:\n{}", crashed.stderr);
    assert!(crashed.stderr.contains("failpoint create-table: aborting"), "{}", crashed.stderr);
    assert_eq!(catalog_rows(&state), "[]");
    // An I/O error at the same point: the step fails (exit 1), no table.
    let failed = floe_host_with_env(&args, &[("FLOE_FAILPOINT", "create-table:error")]);
    let failed = failed.expect_code(1);
    assert!(failed.stderr.contains("failpoint create-table: injected error"), "{}", failed.stderr);
    assert_eq!(catalog_rows(&state), "[]");

    // The rerun creates the table with its first snapshot.
    let run = floe_host_with_env(&args, &[]).expect_code(0);
    assert!(run.stdout.contains("raw_events"), "{}", run.stdout);
    assert_eq!(catalog_rows(&state), "[('bronze', 'raw_events')]");
    let show = floe_host_with_env(
        &["show", "bronze.raw_events", dir.to_str().unwrap(), "--state-dir", state.to_str().unwrap()],
        &[],
    )
    .expect_code(0);
    assert!(show.stdout.starts_with("bronze.raw_events (2 rows, snapshot "), "{}", show.stdout);
}

/// Runs `script` (Python) with the catalog file as its argument; returns
/// its exit code and what it printed.
fn python_on_catalog(state: &Path, script: &str) -> (Option<i32>, String) {
    let output = std::process::Command::new(python())
        .args(["-c", script, state.join("catalog.db").to_str().unwrap()])
        .output()
        .unwrap();
    (output.status.code(), String::from_utf8(output.stdout).unwrap().trim().to_owned())
}

/// What `script` printed; it must succeed.
fn sqlite(state: &Path, script: &str) -> String {
    let (code, printed) = python_on_catalog(state, script);
    assert_eq!(code, Some(0), "{printed}");
    printed
}

/// A process killed inside a catalog transaction leaves a hot journal, and
/// read-only readers of the catalog fail until a writer rolls it back: the
/// next floe-host command that opens the catalog does, before anything else.
#[test]
fn a_hot_journal_is_rolled_back_when_floe_host_opens_the_catalog() {
    let dir = temp_dir();
    let dir = dir.path();
    project(dir);
    let state = dir.join("state");
    floe_host_with_env(&["run", dir.to_str().unwrap(), "--state-dir", state.to_str().unwrap()], &[]).expect_code(0);

    // A writer killed mid-transaction, after its pages spilled into the file.
    let (code, _) = python_on_catalog(
        &state,
        "import os, sqlite3, sys\n\
         db = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
         db.execute('PRAGMA cache_size=1')\n\
         db.execute('BEGIN IMMEDIATE')\n\
         db.execute('CREATE TABLE crash_filler(x BLOB)')\n\
         [db.execute('INSERT INTO crash_filler VALUES (randomblob(4096))') for _ in range(300)]\n\
         os._exit(9)\n",
    );
    assert_eq!(code, Some(9));
    assert!(state.join("catalog.db-journal").exists(), "the kill left a hot journal");
    let read_only = "import sqlite3, sys\n\
                     db = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
                     try:\n    print(db.execute('SELECT table_name FROM iceberg_tables').fetchall())\n\
                     except sqlite3.Error as e:\n    print('error:', e)\n";
    assert_eq!(sqlite(&state, read_only), "error: attempt to write a readonly database");

    // Any command that opens the catalog rolls the journal back.
    let show = floe_host_with_env(
        &["show", "bronze.raw_events", dir.to_str().unwrap(), "--state-dir", state.to_str().unwrap()],
        &[],
    )
    .expect_code(0);
    assert!(show.stdout.starts_with("bronze.raw_events (2 rows, snapshot "), "{}", show.stdout);
    assert!(!state.join("catalog.db-journal").exists());
    assert_eq!(sqlite(&state, read_only), "[('raw_events',)]");
}
