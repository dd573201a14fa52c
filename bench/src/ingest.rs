//! `floe-bench ingest`: csv-ingest over one CSV file, parsed in one piece
//! and by several instances at once (parallel ingest, issue #17), with all
//! of the host's checks but no table writer: how the parse scales with
//! instances when nothing else wants the cores. In a pipeline the Parquet
//! writer runs beside it (`floe-bench pipeline` measures that). DuckDB's
//! `read_csv` over the same file, counting rows on all cores, is the
//! reference of the same run.
//!
//! ```sh
//! cargo build --release -p floe-bench
//! $CARGO_TARGET_DIR/release/floe-bench ingest --csv orders.csv [--instances 1,2] [--reps 3]
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use floe_host::sandbox::{Limits, Sandbox};

struct Options {
    csv: PathBuf,
    instances: Vec<usize>,
    reps: usize,
    plugins: PathBuf,
}

fn options(args: Vec<String>) -> Options {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    let mut csv = None;
    let mut options =
        Options { csv: PathBuf::new(), instances: vec![1, cores], reps: 3, plugins: crate::default_plugins() };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--csv" => csv = Some(PathBuf::from(value())),
            "--instances" => options.instances = value().split(',').map(crate::number).collect(),
            "--reps" => options.reps = crate::number(&value()).max(1),
            "--plugins" => options.plugins = PathBuf::from(value()),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    options.csv = csv.unwrap_or_else(|| usage("--csv is required"));
    if options.instances.contains(&0) {
        usage("--instances: 1 or more");
    }
    options
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("floe-bench ingest: {problem}");
    }
    eprintln!("usage: floe-bench ingest --csv FILE [--instances 1,2] [--reps 3] [--plugins DIR (plugins/dist)]");
    eprintln!("csv-ingest over FILE in one piece and on N instances at once, no writer; DuckDB read_csv as reference.");
    std::process::exit(if problem.is_empty() { 0 } else { 2 });
}

/// CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The median wall time, its CPU time and the rows of `reps` runs of `f`.
fn measure(reps: usize, mut f: impl FnMut() -> u64) -> (Duration, Duration, u64) {
    let mut runs: Vec<(Duration, Duration, u64)> = (0..reps)
        .map(|_| {
            let (wall, cpu) = (Instant::now(), cpu_time());
            let rows = f();
            (wall.elapsed(), cpu_time() - cpu, rows)
        })
        .collect();
    runs.sort_by_key(|r| r.0);
    runs[runs.len() / 2]
}

pub fn main(args: Vec<String>) {
    let options = options(args);
    let wasm = std::fs::read(options.plugins.join("csv_ingest.wasm")).unwrap_or_else(|e| {
        eprintln!("floe-bench ingest: {}: {e} (scripts/build-plugins.sh)", options.plugins.display());
        std::process::exit(2)
    });
    let data = std::fs::read(&options.csv).unwrap_or_else(|e| {
        eprintln!("floe-bench ingest: {}: {e}", options.csv.display());
        std::process::exit(2)
    });
    let cache_dir = std::env::temp_dir().join(format!("floe-bench-ingest-{}", std::process::id()));
    let config = BTreeMap::new();

    println!("# floe-bench ingest");
    println!();
    println!(
        "csv-ingest over `{}` ({:.1} MB), {} repetition(s), the file in memory, no writer; build: {}",
        options.csv.display(),
        data.len() as f64 / 1e6,
        options.reps,
        if cfg!(debug_assertions) { "dev" } else { "release" }
    );
    println!();
    println!("| parse | wall (median) | rows/s | CPU | CPU ÷ wall | ÷ one piece |");
    println!("|---|--:|--:|--:|--:|--:|");
    let mut one_piece = None;
    for &instances in &options.instances {
        let limits = Limits { ingest_parallelism: instances, ..Limits::default() };
        let plugin = Sandbox::new(limits, Some(cache_dir.clone())).unwrap().load_ingest("csv-ingest", &wasm).unwrap();
        let (wall, cpu, rows) = measure(options.reps, || {
            let mut rows = 0u64;
            plugin
                .ingest("raw_orders", &config, "orders.csv", &mut &data[..], &mut |batch| {
                    rows += batch.num_rows() as u64;
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{e}"));
            rows
        });
        let base = *one_piece.get_or_insert(wall);
        let label = if instances == 1 { "one piece".to_owned() } else { format!("{instances} instances") };
        row(&label, wall, cpu, rows, wall.as_secs_f64() / base.as_secs_f64());
    }
    let db = duckdb::Connection::open_in_memory().unwrap();
    let sql = format!(
        "SELECT count(*) FROM read_csv('{}', all_varchar = true, header = true)",
        options.csv.display().to_string().replace('\'', "''")
    );
    let (wall, cpu, rows) = measure(options.reps, || db.query_row(&sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64);
    let base = one_piece.expect("one setting at least");
    row("DuckDB `read_csv`, count(*)", wall, cpu, rows, wall.as_secs_f64() / base.as_secs_f64());
    let _ = std::fs::remove_dir_all(&cache_dir);
}

fn row(label: &str, wall: Duration, cpu: Duration, rows: u64, ratio: f64) {
    println!(
        "| {label} | {:.2} s | {:.2} M | {:.2} s | {:.2} | {ratio:.2}× |",
        wall.as_secs_f64(),
        rows as f64 / wall.as_secs_f64() / 1e6,
        cpu.as_secs_f64(),
        cpu.as_secs_f64() / wall.as_secs_f64(),
    );
}
