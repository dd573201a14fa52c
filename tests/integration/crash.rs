//! What a crash or an I/O error at the exact point where a new table is
//! created leaves behind, made to happen there by a failpoint
//! (`FLOE_FAILPOINT`, debug builds): no table at all, not a table without a
//! snapshot; and a rerun creates it with its first snapshot.

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

/// The rows of `iceberg_tables` for `raw_events`, as SQLite has them.
fn catalog_rows(state: &Path) -> String {
    let script = "import sqlite3, sys\n\
                  db = sqlite3.connect(sys.argv[1])\n\
                  rows = db.execute(\"SELECT table_namespace, table_name FROM iceberg_tables\").fetchall()\n\
                  print(rows)\n";
    let output = std::process::Command::new(python())
        .args(["-c", script, state.join("catalog.db").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
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
