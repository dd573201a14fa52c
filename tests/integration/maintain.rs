//! `floe-host maintain`: snapshots expire as each layer's policy says, the
//! files only they referenced are deleted, orphans older than the orphan age
//! are deleted and younger ones kept, small files are compacted and
//! manifests merged, the current data is unchanged (pyiceberg checks), and
//! `--dry-run` changes nothing. On the embedded catalog and local storage;
//! compaction and the concurrent writers also on the REST catalog over S3.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::catalogs::{Catalog, Storage};
use crate::support::{Run, floe_host_command, floe_host_with_env, parquet_files, plugin, python_json, temp_dir};

/// Where a test's tables live.
#[derive(Clone, Copy, Debug)]
enum Lake {
    /// The embedded catalog on local storage, under the project's `state/`.
    Local,
    /// The REST catalog on S3 (the test services), in namespaces of the
    /// test's own.
    RestS3,
}

/// A test project, and how floe-host and pyiceberg reach its tables.
struct Project {
    dir: tempfile::TempDir,
    /// The secrets the platform file refers to.
    env: Vec<(String, String)>,
    /// pyiceberg's way to the catalog: `--state-dir DIR` or `--props JSON`.
    catalog: [String; 2],
    /// Before each layer's namespace, so tests sharing a catalog server never
    /// see each other's tables; empty on the embedded catalog.
    prefix: String,
}

/// A pipeline that ingests `events.csv` into bronze.raw_events (the plugin
/// reads every value as text) and selects it into silver.events. Every
/// snapshot of bronze is due for expiry under the storage profile's
/// `retention: 1ms` unless `bronze_policy` says otherwise; silver keeps
/// seven years of them.
fn project(lake: Lake, bronze_policy: &str) -> Project {
    static PROJECTS: AtomicUsize = AtomicUsize::new(0);
    let dir = temp_dir();
    let path = dir.path();
    std::fs::create_dir_all(path.join("models")).unwrap();
    std::fs::write(path.join("models/events.sql"), "SELECT id, name FROM bronze.raw_events\n").unwrap();
    let floe = format!(
        "name: maintained\nplugins:\n  csv-ingest:\n    path: {}\ntransforms:\n\
         \x20 - {{name: raw_events, layer: bronze, kind: ingest, plugin: csv-ingest, source: events.csv}}\n\
         \x20 - {{name: events, layer: silver, kind: sql, sql: models/events.sql, max_shrink: 1}}\n",
        serde_json::to_string(plugin("csv_ingest.wasm").to_str().unwrap()).unwrap(),
    );
    std::fs::write(path.join("floe.yaml"), floe).unwrap();
    let (head, env, catalog, prefix) = match lake {
        Lake::Local => {
            let head = "compute:\n  default: {type: duckdb}\n\
                 catalogs:\n  default: {type: sql, uri: 'sqlite:state/catalog.db', warehouse: state/warehouse}\n\
                 storage:\n  default: {type: local, root: state/warehouse, retention: 1ms}\n";
            let state = path.join("state").display().to_string();
            (head.to_string(), Vec::new(), ["--state-dir".to_string(), state], String::new())
        }
        Lake::RestS3 => {
            let prefix = format!("maintain_{}_{}_", std::process::id(), PROJECTS.fetch_add(1, Ordering::Relaxed));
            let platform = crate::catalogs::platform(&prefix, Catalog::RestToken, Storage::S3, &path.join("state"));
            let head = platform.yaml.split("layers:\n").next().unwrap();
            let head = head.replacen("path_style_access: true", "path_style_access: true, retention: 1ms", 1);
            (head, platform.env, ["--props".to_string(), platform.pyiceberg.to_string()], prefix)
        }
    };
    let platform = format!(
        "{head}layers:\n\
         \x20 bronze: {{storage_ref: default, catalog_ref: default, namespace: {prefix}bronze, \
         maintenance: {bronze_policy}}}\n\
         \x20 silver: {{storage_ref: default, catalog_ref: default, namespace: {prefix}silver, \
         maintenance: {{retention: 7 years}}}}\n"
    );
    std::fs::write(path.join("platform.yaml"), platform).unwrap();
    Project { dir, env, catalog, prefix }
}

impl Project {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    /// `args[0]` on this project (`run`, `maintain`), then `args[1..]`.
    fn args(&self, args: &[&str]) -> Vec<String> {
        let (platform, state) = (self.path().join("platform.yaml"), self.path().join("state"));
        let mut all = vec![args[0].to_string(), self.path().display().to_string()];
        all.extend(["--platform".into(), platform.display().to_string()]);
        all.extend(["--state-dir".into(), state.display().to_string()]);
        all.extend(args[1..].iter().map(|a| a.to_string()));
        all
    }

    fn floe(&self, args: &[&str]) -> Run {
        let args = self.args(args);
        floe_host_with_env(&args.iter().map(String::as_str).collect::<Vec<_>>(), &self.env())
    }

    /// `floe`, spawned with its output piped, for runs side by side.
    fn spawn(&self, args: &[&str]) -> std::process::Child {
        let args = self.args(args);
        let mut command = floe_host_command(&args.iter().map(String::as_str).collect::<Vec<_>>(), &self.env());
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        command.spawn().unwrap()
    }

    /// `script` (table_check.py, table_write.py) on the table `name`
    /// (`bronze.raw_events`) of this project's catalog.
    fn python(&self, script: &str, name: &str, args: &[&str]) -> Value {
        let table = format!("{}{name}", self.prefix);
        let mut all = vec![self.catalog[0].as_str(), &self.catalog[1], "--table", &table];
        all.extend(args);
        python_json(script, &all)
    }

    /// The table as pyiceberg reads it, rows ordered by id, with whether
    /// each live file exists.
    fn table(&self, name: &str) -> Value {
        self.python("table_check.py", name, &["--order-by", "id", "--check-files"])
    }

    /// `table`, and the rows of every snapshot the metadata holds (or of `ids`).
    fn time_travel(&self, name: &str, ids: &[&str]) -> Value {
        let mut args = vec!["--order-by", "id", "--time-travel"];
        args.extend(ids);
        self.python("table_check.py", name, &args)
    }

    /// Another engine writing: table_write.py's `args`.
    fn write(&self, name: &str, args: &[&str]) -> Value {
        self.python("table_write.py", name, args)
    }
}

#[test]
fn maintain_expires_snapshots_deletes_their_files_and_old_orphans() {
    let project = project(Lake::Local, "{keep_last: 2}");
    let dir = project.path();
    for run in 1..=4 {
        let csv: String = (0..10 * run).map(|i| format!("{i},name-{i}-{run}\n")).collect();
        std::fs::write(dir.join("events.csv"), format!("id,name\n{csv}")).unwrap();
        project.floe(&["run"]).expect_code(0);
    }
    let bronze_data = dir.join("state/warehouse/bronze/raw_events/data");
    let before = project.time_travel("bronze.raw_events", &[]);
    assert_eq!(before["snapshots"].as_array().unwrap().len(), 4, "{before}");
    assert_eq!(parquet_files(&bronze_data), 4, "one data file per run");
    // Two orphans, as a crashed write leaves them: one four days old, one new.
    let old = bronze_data.join("crashed-write-old.parquet");
    std::fs::write(&old, b"PAR1 not really").unwrap();
    let four_days_ago = SystemTime::now() - Duration::from_secs(4 * 86_400);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(four_days_ago).unwrap();
    std::fs::write(bronze_data.join("crashed-write-young.parquet"), b"PAR1 not really").unwrap();

    // A dry run reports and changes nothing.
    let dry = project.floe(&["maintain", "--dry-run"]).expect_code(0);
    assert!(dry.stdout.starts_with("dry run: nothing was changed"), "{}", dry.stdout);
    let line = |out: &str, table: &str| -> Vec<String> {
        let line = out.lines().find(|l| l.starts_with(table)).unwrap_or_else(|| panic!("{table}: {out}"));
        line.split_whitespace().map(str::to_string).collect()
    };
    // table, snapshots, expired, files deleted (n, size), orphans deleted (n, size), young
    let bronze = line(&dry.stdout, "bronze.raw_events");
    // The two oldest snapshots' files: two manifest lists, three manifests
    // (the second overwrite's marks the first file deleted) and two data files.
    assert_eq!((&bronze[1], &bronze[2], &bronze[3]), (&"4".into(), &"2".into(), &"7".into()), "{}", dry.stdout);
    assert_eq!((&bronze[6], &bronze[9]), (&"1".into(), &"1".into()), "{}", dry.stdout);
    assert_eq!(parquet_files(&bronze_data), 6);
    assert_eq!(project.table("bronze.raw_events")["snapshots"], before["snapshots"]);

    let done = project.floe(&["maintain"]).expect_code(0);
    assert_eq!(line(&done.stdout, "bronze.raw_events")[..4], line(&dry.stdout, "bronze.raw_events")[..4]);
    let silver = line(&done.stdout, "silver.events");
    assert_eq!((&silver[1], &silver[2]), (&"4".into(), &"0".into()), "seven years keep them all: {}", done.stdout);
    let after = project.time_travel("bronze.raw_events", &[]);
    let kept: Vec<&Value> = after["snapshots"].as_array().unwrap().iter().map(|s| &s["snapshot_id"]).collect();
    let newest: Vec<&Value> = before["snapshots"].as_array().unwrap()[2..].iter().map(|s| &s["snapshot_id"]).collect();
    assert_eq!(kept, newest, "the two newest snapshots are kept: {after}");
    assert_eq!(
        (&after["rows"], &after["sums"], &after["current_snapshot_id"]),
        (&before["rows"], &before["sums"], &before["current_snapshot_id"]),
        "the current data is unchanged"
    );
    // Time travel: every snapshot was readable before (10, 20, 30, 40 rows);
    // now only the kept two are there, and both still read whole.
    let rows = |report: &Value| -> Vec<Value> {
        let mut rows: Vec<Value> = report["snapshot_rows"].as_object().unwrap().values().cloned().collect();
        rows.sort_by_key(|v| v.as_u64());
        rows
    };
    assert_eq!(rows(&before), [10, 20, 30, 40].map(Value::from), "{before}");
    assert_eq!(rows(&after), [30, 40].map(Value::from), "{after}");
    // The expired snapshots' data files and the old orphan are gone; the
    // kept snapshots' files and the young orphan stay.
    assert_eq!(parquet_files(&bronze_data), 3);
    assert!(!old.exists() && bronze_data.join("crashed-write-young.parquet").exists());
    assert_eq!(project.table("silver.events")["snapshots"].as_array().unwrap().len(), 4);

    // Again, as JSON: nothing is left to do.
    let json = project.floe(&["maintain", "--json"]).expect_code(0);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    let bronze = report["tables"].as_array().unwrap().iter().find(|t| t["table"] == "bronze.raw_events").unwrap();
    assert_eq!(
        (&bronze["snapshots"], &bronze["expired"], &bronze["orphans_young"]),
        (&2.into(), &Value::from(Vec::<i64>::new()), &1.into())
    );
    let again = project.floe(&["maintain", "--table", "bronze.raw_events"]).expect_code(0);
    let bronze = line(&again.stdout, "bronze.raw_events");
    assert_eq!((&bronze[1], &bronze[2], &bronze[3], &bronze[6]), (&"2".into(), &"0".into(), &"0".into(), &"0".into()));
    assert!(!again.stdout.contains("silver.events"), "{}", again.stdout);
    let unknown = project.floe(&["maintain", "--table", "bronze.nope"]).expect_code(2);
    assert!(unknown.stderr.contains("no step of this pipeline produces `bronze.nope`"), "{}", unknown.stderr);
}

/// A policy that could delete a running write's files is refused.
#[test]
fn an_orphan_age_under_an_hour_is_refused() {
    let project = project(Lake::Local, "{orphan_age: 10m}");
    let refused = project.floe(&["maintain"]).expect_code(2);
    assert!(
        refused
            .stderr
            .contains("`layers.bronze.maintenance.orphan_age`: is under 1h: a write still running may commit"),
        "{}",
        refused.stderr
    );
}

/// With `after_run: true`, a run maintains the tables it committed of that
/// layer: bronze never holds more than its last snapshot, silver (no
/// `after_run`) keeps all of them.
#[test]
fn after_run_maintains_the_tables_a_run_committed() {
    let project = project(Lake::Local, "{after_run: true}");
    let dir = project.path();
    for run in 1..=3 {
        let csv: String = (0..run).map(|i| format!("{i},name-{i}\n")).collect();
        std::fs::write(dir.join("events.csv"), format!("id,name\n{csv}")).unwrap();
        let done = project.floe(&["run", "--log-format", "json"]).expect_code(0);
        let maintained = done.stderr.lines().filter(|l| l.contains("Maintained the table after the run.")).count();
        assert_eq!(maintained, 1, "bronze only: {}", done.stderr);
    }
    let bronze = project.table("bronze.raw_events");
    assert_eq!((bronze["snapshots"].as_array().unwrap().len(), &bronze["rows"]), (1, &Value::from(3)), "{bronze}");
    assert_eq!(parquet_files(&dir.join("state/warehouse/bronze/raw_events/data")), 1);
    assert_eq!(project.table("silver.events")["snapshots"].as_array().unwrap().len(), 3);
}

/// 100 small appends by another engine (pyiceberg), then `maintain`: the
/// small files become a few files near the target size in one `replace`
/// snapshot, every row is still there (checksums), and the 101 manifests of
/// the current snapshot are merged into one.
#[test]
fn maintain_compacts_small_files_and_merges_manifests() {
    compacts_and_merges(Lake::Local);
}

#[test]
fn maintain_compacts_small_files_and_merges_manifests_on_the_rest_catalog_over_s3() {
    compacts_and_merges(Lake::RestS3);
}

fn compacts_and_merges(lake: Lake) {
    let project = project(lake, "{retention: 7 years, target_file_size: 64KiB, max_manifests: 10}");
    let dir = project.path();
    let csv: String = (0..50).map(|i| format!("{i},name-{i}\n")).collect();
    std::fs::write(dir.join("events.csv"), format!("id,name\n{csv}")).unwrap();
    project.floe(&["run"]).expect_code(0);
    project.write("bronze.raw_events", &["append", "--commits", "100", "--rows", "300"]);
    let before = project.table("bronze.raw_events");
    let files_before = before["files"].as_array().unwrap().len();
    assert_eq!((files_before, &before["rows"]), (101, &Value::from(30_050)), "{}", before["files"]);

    let dry = project.floe(&["maintain", "--dry-run", "--json"]).expect_code(0);
    let dry: Value = serde_json::from_str(&dry.stdout).unwrap();
    let bronze = &dry["tables"][0];
    assert_eq!(bronze["table"], "bronze.raw_events", "{dry}");
    assert_eq!((&bronze["compaction"]["files_replaced"], &bronze["manifests_before"]), (&101.into(), &101.into()));
    assert_eq!(project.table("bronze.raw_events")["snapshots"], before["snapshots"], "a dry run commits nothing");

    let done = project.floe(&["maintain", "--json"]).expect_code(0);
    let done: Value = serde_json::from_str(&done.stdout).unwrap();
    let report = &done["tables"][0];
    let after = project.table("bronze.raw_events");
    assert_eq!((&after["rows"], &after["sums"]), (&before["rows"], &before["sums"]), "no row changed");
    assert_eq!(after["records"], before["records"], "the same rows, ordered by id");
    let files = after["files"].as_array().unwrap();
    let written = report["compaction"]["files_written"].as_u64().unwrap() as usize;
    assert_eq!(files.len(), written, "{report}");
    assert!(files.iter().all(|f| f["exists"] == true), "{}", after["files"]);
    assert!((2..=10).contains(&files.len()), "{} files from 101: {report}", files.len());
    let sizes: Vec<u64> = files.iter().map(|f| f["size"].as_u64().unwrap()).collect();
    let total: u64 = sizes.iter().sum();
    assert_eq!(total, report["compaction"]["bytes_written"].as_u64().unwrap());
    // The rolling writer closes a file once its (uncompressed) estimate
    // passes the target: every file but the last is near it.
    let mut full = sizes.clone();
    full.sort();
    full.pop();
    assert!(full.iter().all(|&size| (16_384..=98_304).contains(&size)), "sizes near 64 KiB: {sizes:?}");
    // Two maintenance snapshots: the compaction, then the manifest merge.
    let history = after["snapshots"].as_array().unwrap();
    let last_two: Vec<(&Value, &Value)> =
        history[history.len() - 2..].iter().map(|s| (&s["operation"], &s["summary"]["floe.maintenance"])).collect();
    assert_eq!(last_two, [(&"replace".into(), &"compact".into()), (&"replace".into(), &"rewrite-manifests".into())]);
    let compaction = &history[history.len() - 2]["summary"];
    assert_eq!((&compaction["deleted-data-files"], &compaction["added-records"]), (&"101".into(), &"30050".into()));
    // The compaction's snapshot lists 102: its new files' and the 101 it
    // rewrote to mark the old files deleted.
    assert_eq!((&report["manifests_before"], &report["manifests_after"]), (&Value::from(102), &Value::from(1)));
    // Time travel to before the compaction still reads the old files.
    let previous = history[history.len() - 3]["snapshot_id"].to_string();
    let travelled = project.time_travel("bronze.raw_events", &[&previous]);
    assert_eq!(travelled["snapshot_rows"][&previous], 30_050, "{travelled}");

    // Nothing is left to compact or merge.
    let again: Value = serde_json::from_str(&project.floe(&["maintain", "--json"]).expect_code(0).stdout).unwrap();
    let again = &again["tables"][0];
    assert_eq!((&again["compaction"]["files_replaced"], &again["manifests_after"]), (&0.into(), &1.into()), "{again}");
}

/// A snapshot a tag names is never expired: pyiceberg tags the oldest, and
/// `maintain` (everything older than the current snapshot is due) expires
/// only the untagged one between; the tag still reads its rows.
#[test]
fn maintain_keeps_a_snapshot_that_a_tag_names() {
    let project = project(Lake::Local, "{keep_last: 1}");
    let dir = project.path();
    for run in 1..=3 {
        let csv: String = (0..run).map(|i| format!("{i},name-{i}\n")).collect();
        std::fs::write(dir.join("events.csv"), format!("id,name\n{csv}")).unwrap();
        project.floe(&["run"]).expect_code(0);
    }
    let tagged = project.write("bronze.raw_events", &["tag", "--name", "audit-2026", "--oldest"])["tagged"].to_string();
    let before = project.table("bronze.raw_events");
    let history: Vec<String> =
        before["snapshots"].as_array().unwrap().iter().map(|s| s["snapshot_id"].to_string()).collect();
    assert_eq!(history[0], tagged);
    project.floe(&["maintain", "--table", "bronze.raw_events"]).expect_code(0);
    let after = project.time_travel("bronze.raw_events", &[]);
    let mut kept: Vec<&String> = after["snapshot_rows"].as_object().unwrap().keys().collect();
    kept.sort();
    let mut expected = vec![&history[0], &history[2]];
    expected.sort();
    assert_eq!(kept, expected, "the middle snapshot alone is expired: {after}");
    assert_eq!(after["snapshot_rows"][&tagged], 1, "the tag reads its rows: {after}");
    assert_eq!(after["refs"]["audit-2026"].to_string(), tagged);
}

/// `maintain` with every snapshot due, compaction and manifest merging
/// beside 4 writers appending to the same table, ten times over: no row is
/// lost, and every file the current snapshot lists is there.
#[test]
fn maintain_beside_four_writers_loses_no_row_and_no_live_file() {
    beside_four_writers(Lake::Local);
}

#[test]
fn maintain_beside_four_writers_on_the_rest_catalog_over_s3_loses_no_row_and_no_live_file() {
    beside_four_writers(Lake::RestS3);
}

fn beside_four_writers(lake: Lake) {
    let project = project(lake, "{retention: 1ms, target_file_size: 8KiB, max_manifests: 3}");
    let dir = project.path();
    // Four pipelines that append to bronze.raw_events, each from its own file.
    let floe_yaml = std::fs::read_to_string(dir.join("floe.yaml")).unwrap();
    let ingest = floe_yaml.lines().find(|l| l.contains("kind: ingest")).unwrap();
    for writer in 0..4 {
        let step = ingest.replace("source: events.csv", &format!("source: w{writer}.csv, mode: append"));
        let head: String =
            floe_yaml.lines().take_while(|l| !l.contains("transforms:")).map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.join(format!("w{writer}.yaml")), format!("{head}transforms:\n{step}\n")).unwrap();
    }
    let mut expected_rows = 0u64;
    let mut expected_ids = 0u64;
    let (mut expired, mut compacted) = (0, 0);
    for round in 0..10u64 {
        let mut children = Vec::new();
        for writer in 0..4u64 {
            let rows: String = (0..5)
                .map(|i| {
                    let id = round * 100 + writer * 10 + i;
                    expected_ids += id;
                    format!("{id},w{writer}-r{round}-{i}\n")
                })
                .collect();
            std::fs::write(dir.join(format!("w{writer}.csv")), format!("id,name\n{rows}")).unwrap();
            let file = dir.join(format!("w{writer}.yaml"));
            children.push(("writer", project.spawn(&["run", "-f", file.to_str().unwrap()])));
        }
        expected_rows += 20;
        let w0 = dir.join("w0.yaml");
        children.push(("maintain", project.spawn(&["maintain", "-f", w0.to_str().unwrap(), "--json"])));
        for (what, child) in children {
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "round {round}: {what} failed\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            if what == "maintain" {
                let report: Value = serde_json::from_slice(&out.stdout).unwrap();
                let table = &report["tables"][0];
                expired += table["expired"].as_array().map_or(0, Vec::len);
                compacted += table["compaction"]["snapshot_id"].is_i64() as usize;
            }
        }
        let now = project.table("bronze.raw_events");
        assert_eq!(now["rows"], expected_rows, "round {round}: {}", now["files"]);
        let ids: u64 =
            now["records"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().parse::<u64>().unwrap()).sum();
        assert_eq!(ids, expected_ids, "round {round}");
        for file in now["files"].as_array().unwrap() {
            assert_eq!(file["exists"], true, "round {round}: a live file is gone: {file}");
        }
    }
    // The concurrent maintains did their work, not only the last one.
    assert!(expired >= 10 && compacted >= 2, "{expired} snapshots expired, {compacted} compactions");
    // The last maintain, alone: history is down to its own compaction and
    // merge, and the appends' small files were compacted along the way.
    let w0 = dir.join("w0.yaml");
    let done = project.floe(&["maintain", "--json", "-f", w0.to_str().unwrap()]).expect_code(0);
    let done: Value = serde_json::from_str(&done.stdout).unwrap();
    let after = project.table("bronze.raw_events");
    assert_eq!(after["rows"], expected_rows);
    let operations: Vec<&Value> = after["snapshots"].as_array().unwrap().iter().map(|s| &s["operation"]).collect();
    assert!((1..=2).contains(&operations.len()) && operations.iter().all(|&o| o == "replace"), "{done}");
    assert!(after["files"].as_array().unwrap().len() < 40, "{} files: {done}", after["files"]);
}

/// `maintain` reports as `run` does: OpenLineage events that validate
/// against the 2-0-2 schemas (a `<pipeline>.maintain` run, one task per
/// table with its `floe_maintenance` facet), Dagster Pipes messages (a log
/// line and a custom message per table, then `closed`), and the
/// `--summary-json` file, each with the same figures as `--json`.
#[test]
fn maintain_reports_through_lineage_pipes_and_the_summary() {
    let project = project(Lake::Local, "{keep_last: 1}");
    let dir = project.path();
    for run in 1..=2 {
        std::fs::write(dir.join("events.csv"), format!("id,name\n{run},x\n")).unwrap();
        project.floe(&["run"]).expect_code(0);
    }
    let (lineage, messages, summary) = (dir.join("lineage.jsonl"), dir.join("pipes.jsonl"), dir.join("summary.json"));
    let context = serde_json::json!({"data": {"asset_keys": null, "run_id": "dagster-run-1", "extras": {},
        "retry_number": 0, "job_name": "floe_maintenance"}});
    let args = project.args(&["maintain", "--json", "--summary-json", summary.to_str().unwrap()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [
        ("FLOE_LINEAGE_FILE", lineage.to_str().unwrap().to_string()),
        ("DAGSTER_PIPES_CONTEXT", crate::pipes::encode_param(&context)),
        ("DAGSTER_PIPES_MESSAGES", crate::pipes::encode_param(&serde_json::json!({"path": messages}))),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = floe_host_with_env(&args, &env).expect_code(0);
    let report: Value = serde_json::from_str(&done.stdout).unwrap();
    let tables = report["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 2, "{report}");
    let bronze = tables.iter().find(|t| t["table"] == "bronze.raw_events").unwrap();
    assert_eq!(bronze["expired"].as_array().unwrap().len(), 1, "{bronze}");

    // The summary file: the same tables, and the maintenance's identity.
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(
        (&written["command"], &written["status"], &written["exit_code"]),
        (&"maintain".into(), &"succeeded".into(), &0.into())
    );
    assert_eq!(&written["tables"], &report["tables"]);
    let run_id = written["run_id"].as_str().unwrap();
    assert!(run_id.starts_with("maintain-"), "{written}");

    // Lineage: valid, a parent run and one task per table with its figures.
    let events: Vec<Value> =
        std::fs::read_to_string(&lineage).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    crate::lineage::assert_all_valid(&events);
    let kinds: Vec<(&str, &str)> =
        events.iter().map(|e| (e["eventType"].as_str().unwrap(), e["job"]["name"].as_str().unwrap())).collect();
    assert_eq!(
        kinds,
        [
            ("START", "maintained.maintain"),
            ("COMPLETE", "maintained.maintain.raw_events"),
            ("COMPLETE", "maintained.maintain.events"),
            ("COMPLETE", "maintained.maintain"),
        ]
    );
    let task = &events[1];
    let figures = &task["run"]["facets"]["floe_maintenance"];
    assert_eq!(figures["snapshotsExpired"], 1, "{task}");
    assert_eq!(figures["filesDeleted"], bronze["files_deleted"]);
    assert_eq!(task["run"]["facets"]["parent"]["run"]["runId"], events[0]["run"]["runId"]);
    assert_eq!(task["inputs"][0]["name"], "bronze.raw_events");
    assert_eq!(task["outputs"][0]["name"], "bronze.raw_events");
    assert_eq!(events[0]["run"]["facets"]["floe_run"]["runId"], run_id);

    // Pipes: opened, a log line and the figures per table, closed cleanly.
    let messages: Vec<Value> =
        std::fs::read_to_string(&messages).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let methods: Vec<&str> = messages.iter().map(|m| m["method"].as_str().unwrap()).collect();
    assert_eq!(methods.first(), Some(&"opened"));
    assert_eq!(methods.last(), Some(&"closed"));
    assert_eq!(messages.last().unwrap()["params"]["exception"], Value::Null);
    let custom: Vec<&Value> =
        messages.iter().filter(|m| m["method"] == "report_custom_message").map(|m| &m["params"]["payload"]).collect();
    assert_eq!(custom.len(), 2, "{messages:?}");
    assert_eq!(custom[0]["asset_key"], "bronze/raw_events");
    assert_eq!(custom[0]["floe_maintenance"], *bronze);
    let logs = messages.iter().filter(|m| m["method"] == "log").map(|m| m["params"]["message"].to_string());
    assert!(logs.clone().any(|l| l.contains("maintained bronze.raw_events: 1 snapshots expired")), "{messages:?}");
}

/// Metadata JSON files that fell out of the metadata log
/// (`write.metadata.previous-versions-max`, set to 2 here by pyiceberg) are
/// orphans: deleted once older than the orphan age. The current one and
/// those in the log stay, and the table still reads.
#[test]
fn maintain_deletes_metadata_files_that_left_the_log() {
    let project = project(Lake::Local, "{retention: 7 years}");
    let dir = project.path();
    std::fs::write(dir.join("events.csv"), "id,name\n1,x\n").unwrap();
    project.floe(&["run"]).expect_code(0);
    project
        .write("bronze.raw_events", &["set-property", "--key", "write.metadata.previous-versions-max", "--value", "2"]);
    for run in 2..=4 {
        std::fs::write(dir.join("events.csv"), format!("id,name\n{run},x\n")).unwrap();
        project.floe(&["run"]).expect_code(0);
    }
    let metadata = dir.join("state/warehouse/bronze/raw_events/metadata");
    let json_files = || -> Vec<std::path::PathBuf> {
        let entries = std::fs::read_dir(&metadata).unwrap().flatten().map(|e| e.path());
        entries.filter(|p| p.to_string_lossy().ends_with(".metadata.json")).collect()
    };
    let before = json_files();
    assert_eq!(before.len(), 5, "the first run's, the property's and three more runs' commits: {before:?}");
    let four_days_ago = SystemTime::now() - Duration::from_secs(4 * 86_400);
    for file in std::fs::read_dir(&metadata).unwrap().flatten() {
        std::fs::File::options().write(true).open(file.path()).unwrap().set_modified(four_days_ago).unwrap();
    }
    let done: Value = serde_json::from_str(&project.floe(&["maintain", "--json"]).expect_code(0).stdout).unwrap();
    let bronze = done["tables"].as_array().unwrap().iter().find(|t| t["table"] == "bronze.raw_events").unwrap();
    // The current file and the two the log keeps stay; two go.
    assert_eq!(json_files().len(), 3, "{:?}", json_files());
    assert_eq!(bronze["orphans_deleted"], 2, "{bronze}");
    let after = project.table("bronze.raw_events");
    assert_eq!((&after["rows"], after["snapshots"].as_array().unwrap().len()), (&Value::from(1), 4), "{after}");
}

/// On a partitioned table, compaction rewrites each partition's small files
/// into files of that partition alone.
#[test]
fn compaction_keeps_each_file_in_one_partition() {
    let project = project(Lake::Local, "{retention: 7 years}");
    let dir = project.path();
    let yaml = std::fs::read_to_string(dir.join("floe.yaml")).unwrap();
    let yaml = yaml.replace("source: events.csv}", "source: events.csv, mode: append, partition_by: [name]}");
    std::fs::write(dir.join("floe.yaml"), yaml).unwrap();
    for run in 0..6 {
        std::fs::write(
            dir.join("events.csv"),
            format!("id,name\n{},a\n{},b\n{},a\n", run * 3, run * 3 + 1, run * 3 + 2),
        )
        .unwrap();
        project.floe(&["run"]).expect_code(0);
    }
    let before = project.table("bronze.raw_events");
    assert_eq!(before["files"].as_array().unwrap().len(), 12, "{}", before["files"]);
    let done: Value = serde_json::from_str(&project.floe(&["maintain", "--json"]).expect_code(0).stdout).unwrap();
    let bronze = done["tables"].as_array().unwrap().iter().find(|t| t["table"] == "bronze.raw_events").unwrap();
    assert_eq!((&bronze["compaction"]["partitions"], &bronze["compaction"]["files_replaced"]), (&2.into(), &12.into()));
    let after = project.table("bronze.raw_events");
    assert_eq!((&after["rows"], &after["records"]), (&before["rows"], &before["records"]));
    let mut partitions: Vec<(String, u64)> = after["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["partition"].to_string(), f["records"].as_u64().unwrap()))
        .collect();
    partitions.sort();
    assert_eq!(partitions, [(r#"["a"]"#.to_string(), 12), (r#"["b"]"#.to_string(), 6)]);
}
