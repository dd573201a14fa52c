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

/// A data file cut short and a metadata file that is not JSON are named in
/// the error, as corrupt, with exit 4: no retry can fix them. Both through
/// iceberg's reader (`show`) and through DuckDB (a step reading its input).
#[test]
fn corrupt_files_are_named_and_not_retried() {
    let dir = temp_dir();
    let dir = dir.path();
    project(dir);
    // A second step that reads raw_events through DuckDB.
    // First broken, so that run `first` commits bronze only.
    std::fs::write(dir.join("count.sql"), "SELECT nope FROM bronze.raw_events\n").unwrap();
    let yaml = std::fs::read_to_string(dir.join("floe.yaml")).unwrap()
        + "  - name: event_count\n    layer: silver\n    kind: sql\n    sql: count.sql\n";
    std::fs::write(dir.join("floe.yaml"), yaml).unwrap();
    let state = dir.join("state");
    let run = |run_id: &str| {
        floe_host_with_env(
            &["run", dir.to_str().unwrap(), "--state-dir", state.to_str().unwrap(), "--run-id", run_id],
            &[],
        )
    };
    run("first").expect_code(2);
    std::fs::write(dir.join("count.sql"), "SELECT count(*) AS n FROM bronze.raw_events\n").unwrap();
    let data = std::fs::read_dir(state.join("warehouse/bronze/raw_events/data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .unwrap();
    let bytes = std::fs::read(&data).unwrap();
    std::fs::write(&data, &bytes[..100]).unwrap();
    // Named as the reader names it: a `file://` URI through iceberg, a path through DuckDB.
    let name = data.file_name().unwrap().to_str().unwrap().to_owned();
    let expected = format!("{name}` is corrupt (100 bytes, and it does not end with Parquet's `PAR1`)");

    let show = |table: &str| {
        floe_host_with_env(&["show", table, dir.to_str().unwrap(), "--state-dir", state.to_str().unwrap()], &[])
    };
    let shown = show("bronze.raw_events").expect_code(4);
    assert!(shown.stderr.contains("table `bronze.raw_events`: its data file `file://"), "{}", shown.stderr);
    assert!(shown.stderr.contains(&expected), "{}", shown.stderr);
    // The rerun of `first` skips bronze (committed) and computes silver,
    // which reads the broken file through DuckDB.
    let failed = run("first").expect_code(4);
    assert!(
        failed.stderr.contains("step `event_count`: table `bronze.raw_events`: its data file `/"),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains(&expected), "{}", failed.stderr);
    assert!(failed.stderr.contains("no retry can fix it"), "{}", failed.stderr);

    // The table's current metadata file, made unreadable.
    std::fs::write(&data, &bytes).unwrap();
    let location = catalog_location(&state);
    let metadata = location.trim_start_matches("file://");
    std::fs::write(metadata, "{\"broken").unwrap();
    let shown = show("bronze.raw_events").expect_code(4);
    assert!(
        shown.stderr.contains(&format!("table `bronze.raw_events`: its metadata file `{location}` is corrupt")),
        "{}",
        shown.stderr
    );
}

/// The metadata location the catalog holds for bronze.raw_events.
fn catalog_location(state: &Path) -> String {
    sqlite(
        state,
        "import sqlite3, sys\n\
         db = sqlite3.connect(sys.argv[1])\n\
         print(db.execute(\"SELECT metadata_location FROM iceberg_tables WHERE table_name = 'raw_events'\").fetchone()[0])\n",
    )
}

/// A tmpfs of `bytes`, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    /// Needs root (CI and this machine run tests as root), like any mount.
    fn mount(path: &Path, bytes: usize) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs", path.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root: the disk-full test uses a real full disk");
        SmallDisk(path.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A full disk under the warehouse fails the step with the files it was
/// writing named, exit 1 (space may come back), and commits nothing.
#[test]
fn a_full_disk_names_the_files_it_stopped() {
    let dir = temp_dir();
    let dir = dir.path();
    project(dir);
    // About 2 MB that compresses poorly: more than the 256 KiB disk holds.
    let mut csv = "id,name\n".to_owned();
    let mut x: u64 = 42;
    for i in 0..50_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        csv.push_str(&format!("{i},{x:016x}{:016x}\n", x.rotate_left(17)));
    }
    std::fs::write(dir.join("events.csv"), csv).unwrap();
    // Only the warehouse is on the small disk; the catalog and the compile
    // cache are not.
    let state = dir.join("state");
    let _disk = SmallDisk::mount(&dir.join("disk"), 256 << 10);
    let warehouse = dir.join("disk/warehouse");
    let platform = dir.join("platform.yaml");
    std::fs::write(
        &platform,
        format!(
            "catalogs:\n  default: {{type: sql, uri: \"sqlite:{}/catalog.db\", warehouse: \"{w}\"}}\n\
             storage:\n  default: {{type: local, root: \"{w}\"}}\ncompute:\n  default: {{type: duckdb}}\n",
            state.display(),
            w = warehouse.display(),
        ),
    )
    .unwrap();
    let args = [
        "run",
        dir.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--platform",
        platform.to_str().unwrap(),
    ];
    let failed = floe_host_with_env(&args, &[]).expect_code(1);
    let error = failed.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{}", failed.stderr));
    assert!(error.contains("step `raw_events`: table `bronze.raw_events`: cannot"), "{error}");
    assert!(error.contains("disk/warehouse/bronze/raw_events/data/…/raw_events-run-"), "the files are named: {error}");
    assert!(error.contains("No space left on device"), "{error}");
    assert_eq!(catalog_rows(&state), "[]");
}
