//! `floe-bench maintenance`: what a year of daily runs does to a pipeline's
//! tables, with and without `maintain` (issue #14; BENCHMARKS.md, "Table
//! maintenance").
//!
//!   floe-bench maintenance [--days 365] [--rows 1000]
//!
//! The pipeline: `bronze.raw_events`, an ingest (csv-ingest) that appends
//! each day's CSV of `--rows` rows, and `silver.daily_counts`, a SQL model
//! that recomputes a count per day from all of bronze (an overwrite). It runs
//! `--days` times as separate `floe-host run` processes, twice, in two
//! warehouses:
//! - `plain`: no maintenance;
//! - `maintained`: both layers with `after_run: true`, `keep_last: 7` and a
//!   retention shorter than a run (so seven daily snapshots are kept, as
//!   `retention: 7 days` keeps them on a real schedule), and the default
//!   compaction and manifest merging.
//!
//! Then, per table: the metadata folder (files, bytes), the data folder
//! (files, bytes), the current metadata JSON's size, the snapshots and the
//! data files the current snapshot lists, and the time to plan a scan (load
//! the table, read its manifest list and manifests), median of 5. Both
//! variants must hold the same rows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use floe_host::config::{ConfigSource, SecretSource};

use super::ms;

pub fn main(args: Vec<String>) {
    let (mut days, mut rows) = (365usize, 1000usize);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (arg.as_str(), value) {
            ("--days", Some(n)) => days = n,
            ("--rows", Some(n)) => rows = n,
            _ => {
                eprintln!("usage: floe-bench maintenance [--days N] [--rows N]");
                std::process::exit(2)
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("floe-bench-maintenance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = std::env::current_exe().expect("this binary").with_file_name("floe-host");
    let plugins = std::env::var_os("FLOE_PLUGIN_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist"));
    let mut results = Vec::new();
    for variant in ["plain", "maintained"] {
        let project = dir.join(variant);
        write_project(&project, &plugins.join("csv_ingest.wasm"), variant == "maintained");
        let started = Instant::now();
        for day in 0..days {
            let csv: String = (0..rows).map(|i| format!("{},{day},e{i}\n", day * rows + i)).collect();
            std::fs::write(project.join("events.csv"), format!("id,day,name\n{csv}")).unwrap();
            let out = Command::new(&exe)
                .args(["run", project.to_str().unwrap(), "--log-format", "text", "--platform"])
                .arg(project.join("platform.yaml"))
                .env("FLOE_LOG", "warn")
                .output()
                .expect("floe-host runs");
            if !out.status.success() {
                eprintln!("{variant}, day {day}: floe-host failed:\n{}", String::from_utf8_lossy(&out.stderr));
                std::process::exit(1);
            }
            if (day + 1) % 50 == 0 {
                eprintln!("{variant}: {} days in {:.0} s", day + 1, started.elapsed().as_secs_f64());
            }
        }
        let run_time = started.elapsed();
        results.push((variant, run_time, measure(&project)));
    }
    println!("{days} daily runs of {rows} rows; the run time is the whole loop (debug or release, as built)\n");
    println!(
        "| table | variant | manifests and lists | their bytes | metadata JSON files | current metadata JSON | snapshots | \
         data files (current) | data files in the folder | data bytes | plan a scan (median of 5) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (variant, _, tables) in &results {
        for t in tables {
            println!(
                "| {} | {variant} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                t.table,
                t.metadata_files - t.json_files,
                kib(t.metadata_bytes - t.json_bytes),
                t.json_files,
                kib(t.current_json),
                t.snapshots,
                t.live_files,
                t.data_files,
                kib(t.data_bytes),
                ms(t.plan)
            );
        }
    }
    for (variant, run_time, _) in &results {
        println!("\n{variant}: {days} runs in {:.0} s", run_time.as_secs_f64());
    }
    let rows_of = |i: usize| results[i].2.iter().map(|t| t.rows).collect::<Vec<_>>();
    assert_eq!(rows_of(0), rows_of(1), "both variants hold the same rows");
    let _ = std::fs::remove_dir_all(&dir);
}

fn write_project(dir: &Path, csv_ingest: &Path, maintained: bool) {
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(
        dir.join("models/daily_counts.sql"),
        "SELECT day, count(*) AS events FROM bronze.raw_events GROUP BY day\n",
    )
    .unwrap();
    let floe = format!(
        "name: year\nplugins:\n  csv-ingest:\n    path: {}\ntransforms:\n\
         \x20 - {{name: raw_events, layer: bronze, kind: ingest, plugin: csv-ingest, source: events.csv, mode: append}}\n\
         \x20 - {{name: daily_counts, layer: silver, kind: sql, sql: models/daily_counts.sql}}\n",
        serde_json::to_string(csv_ingest.to_str().unwrap()).unwrap(),
    );
    std::fs::write(dir.join("floe.yaml"), floe).unwrap();
    let policy = if maintained { "{retention: 1ms, keep_last: 7, after_run: true}" } else { "{}" };
    let state = dir.join("state");
    let platform = format!(
        "compute:\n  default: {{type: duckdb}}\n\
         catalogs:\n  default: {{type: sql, uri: 'sqlite:{state}/catalog.db', warehouse: {state}/warehouse}}\n\
         storage:\n  default: {{type: local, root: {state}/warehouse}}\n\
         layers:\n\
         \x20 bronze: {{storage_ref: default, catalog_ref: default, maintenance: {policy}}}\n\
         \x20 silver: {{storage_ref: default, catalog_ref: default, maintenance: {policy}}}\n",
        state = state.display()
    );
    std::fs::write(dir.join("platform.yaml"), platform).unwrap();
}

struct Measured {
    table: String,
    metadata_files: usize,
    metadata_bytes: u64,
    json_files: usize,
    json_bytes: u64,
    current_json: u64,
    snapshots: usize,
    live_files: usize,
    data_files: usize,
    data_bytes: u64,
    plan: Duration,
    rows: u64,
}

fn measure(project: &Path) -> Vec<Measured> {
    let source = ConfigSource {
        floe: project.to_path_buf(),
        platform: Some(project.join("platform.yaml")),
        ..Default::default()
    };
    let config = floe_host::config::load(&source).expect("the project loads");
    let plan = floe_host::plan::build(&config, &SecretSource::default()).expect("the plan builds");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let used = plan.steps.iter().map(|s| (s.catalog.clone(), s.storage.clone()));
    let lakehouse = runtime
        .block_on(floe_host::lakehouse::Lakehouse::open(&plan.catalogs, &plan.storage, used))
        .expect("the catalog opens");
    let mut out = Vec::new();
    for step in &plan.steps {
        let folder = project.join("state/warehouse").join(step.layer.as_str()).join(step.name.as_str());
        let (metadata_files, metadata_bytes) = tree(&folder.join("metadata"));
        let (data_files, data_bytes) = tree(&folder.join("data"));
        let (current_json, snapshots) = newest_json(&folder.join("metadata"));
        let (json_files, json_bytes) = json(&folder.join("metadata"));
        let mut times = Vec::new();
        let mut live_files = 0;
        for _ in 0..5 {
            let started = Instant::now();
            live_files = runtime
                .block_on(lakehouse.plan_scan(&step.catalog, &step.target))
                .expect("the scan plans")
                .expect("the table exists");
            times.push(started.elapsed());
        }
        times.sort();
        let rows =
            runtime.block_on(lakehouse.current_rows(&step.catalog, &step.target, None)).expect("rows").unwrap_or(0);
        out.push(Measured {
            table: format!("{}.{}", step.layer, step.name),
            metadata_files,
            metadata_bytes,
            json_files,
            json_bytes,
            current_json,
            snapshots,
            live_files,
            data_files,
            data_bytes,
            plan: times[times.len() / 2],
            rows,
        });
    }
    out
}

/// Files under `dir` (any depth) and their total size.
fn tree(dir: &Path) -> (usize, u64) {
    let mut totals = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            let (n, b) = tree(&entry.path());
            totals = (totals.0 + n, totals.1 + b);
        } else {
            totals = (totals.0 + 1, totals.1 + meta.len());
        }
    }
    totals
}

/// Metadata JSON files in `dir` and their total size.
fn json(dir: &Path) -> (usize, u64) {
    let files = std::fs::read_dir(dir).into_iter().flatten().flatten();
    let sizes: Vec<u64> = files
        .filter(|e| e.file_name().to_string_lossy().ends_with(".metadata.json"))
        .map(|e| e.metadata().unwrap().len())
        .collect();
    (sizes.len(), sizes.iter().sum())
}

/// The size of the newest metadata JSON file (the highest version number),
/// and the snapshots it lists.
fn newest_json(dir: &Path) -> (u64, usize) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".metadata.json"))
        .collect();
    files.sort();
    let Some(newest) = files.last() else { return (0, 0) };
    let metadata: serde_json::Value = serde_json::from_slice(&std::fs::read(newest).unwrap()).unwrap();
    (newest.metadata().unwrap().len(), metadata["snapshots"].as_array().map_or(0, Vec::len))
}

fn kib(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / 1048576.0)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}
