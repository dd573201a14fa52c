//! `floe-bench scaleout`: how far one catalog carries a partitioned backfill
//! (issue #17). For each N (default 1, 4, 8 and 16), N `floe-host run
//! --partition P` processes start at once and each replaces its own
//! partition of one table, on the REST catalog over S3: the test services
//! (rustberg and moto on 127.0.0.1, `scripts/services.sh start`).
//!
//! Each N gets a table of its own, created by one untimed run of another
//! partition (which also fills the compile cache). Reported per N: the wall
//! time from the first start to the last exit, commits per second, the
//! conflict retries the runs logged ("Commit conflicted with another
//! writer"), the runs that failed, and rows per second over all runs. The
//! table's row count is then checked: every partition landed exactly once.
//!
//! ```sh
//! scripts/services.sh start
//! cargo build -p floe-host -p floe-bench && scripts/build-plugins.sh
//! $CARGO_TARGET_DIR/debug/floe-bench scaleout [--runs 1,4,8,16] [--rows 100000]
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Options {
    runs: Vec<usize>,
    rows: usize,
    floe_host: PathBuf,
    plugins: PathBuf,
}

fn options(args: Vec<String>) -> Options {
    let next_to_me = |name: &str| {
        std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join(name))).unwrap_or_else(|| name.into())
    };
    let mut options = Options {
        runs: vec![1, 4, 8, 16],
        rows: 100_000,
        floe_host: next_to_me("floe-host"),
        plugins: crate::default_plugins(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--runs" => options.runs = value().split(',').map(|n| crate::number(n).max(1)).collect(),
            "--rows" => options.rows = crate::number(&value()).max(1),
            "--floe-host" => options.floe_host = PathBuf::from(value()),
            "--plugins" => options.plugins = PathBuf::from(value()),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    if !options.floe_host.is_file() {
        usage(&format!("--floe-host: {} does not exist (cargo build -p floe-host)", options.floe_host.display()));
    }
    options
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("floe-bench scaleout: {problem}");
    }
    eprintln!(
        "usage: floe-bench scaleout [--runs 1,4,8,16] [--rows N (100000 per partition)] [--floe-host BIN] [--plugins DIR]"
    );
    eprintln!(
        "N concurrent `run --partition` processes into one table, on the REST catalog over S3 (the test services)."
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 });
}

/// The test services' settings, from the environment or the file
/// `scripts/services.sh` writes.
fn services() -> HashMap<String, String> {
    let dir = std::env::var_os("FLOE_SERVICES_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("FLOE_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/floe-host"));
        cache.join("run/services")
    });
    let text = std::fs::read_to_string(dir.join("services.env")).unwrap_or_default();
    let mut found: HashMap<String, String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    for (key, value) in std::env::vars().filter(|(k, _)| k.starts_with("FLOE_TEST_")) {
        found.insert(key, value);
    }
    if !found.contains_key("FLOE_TEST_REST_S3_URI") {
        eprintln!(
            "floe-bench scaleout: the test services are not running: start them with `scripts/services.sh start`"
        );
        std::process::exit(2);
    }
    found
}

/// What one N measured.
struct Round {
    runs: usize,
    wall: Duration,
    failed: usize,
    retries: usize,
    max_retries: usize,
    rows: u64,
}

pub fn main(args: Vec<String>) {
    let options = options(args);
    let services = services();
    let service = |name: &str| services[name].clone();
    let work = std::env::temp_dir().join(format!("floe-bench-scaleout-{}", std::process::id()));
    std::fs::create_dir_all(work.join("data")).unwrap();
    let parts = options.runs.iter().max().copied().unwrap_or(1) + 1;
    for part in 0..parts {
        let csv: String = (0..options.rows)
            .map(|i| format!("{},p{part:03},{}.{:02}\n", part * options.rows + i, i % 1000, i % 100))
            .collect();
        std::fs::write(work.join(format!("data/orders_p{part:03}.csv")), format!("order_id,part,amount\n{csv}"))
            .unwrap();
    }
    let plugin = options.plugins.join("csv_ingest.wasm");
    let floe = format!(
        "name: scaleout\nplugins:\n  csv-ingest:\n    path: {}\ntransforms:\n\
         \x20 - {{name: raw_orders, layer: bronze, kind: ingest, plugin: csv-ingest, \
         source: \"data/orders_{{partition}}.csv\", partition_by: [part], mode: partition_overwrite}}\n",
        serde_json::to_string(&plugin.display().to_string()).unwrap()
    );
    std::fs::write(work.join("floe.yaml"), floe).unwrap();
    let env = [
        ("REST_TOKEN", service("FLOE_TEST_REST_TOKEN")),
        ("S3_KEYS_ACCESS_KEY_ID", service("FLOE_TEST_S3_ACCESS_KEY")),
        ("S3_KEYS_SECRET_ACCESS_KEY", service("FLOE_TEST_S3_SECRET_KEY")),
    ];

    println!("# floe-bench scaleout");
    println!();
    println!(
        "{} rows per partition; REST catalog {} over S3 {}; floe-host {}",
        options.rows,
        service("FLOE_TEST_REST_S3_URI"),
        service("FLOE_TEST_S3_ENDPOINT"),
        options.floe_host.display()
    );
    let mut rounds = Vec::new();
    for &n in &options.runs {
        let namespace = format!("scaleout_{}_n{n}", std::process::id());
        let platform = work.join(format!("platform-{n}.yaml"));
        std::fs::write(
            &platform,
            format!(
                "compute:\n  default: {{type: duckdb, properties: {{threads: 1}}}}\n\
                 catalogs:\n  default: {{type: rest, uri: \"{}\", warehouse: \"{}\", \
                 credentials: {{mode: bearer, token: {{secret_ref: rest-token}}}}}}\n\
                 storage:\n  default: {{type: s3, endpoint: \"{}\", bucket: {}, region: {}, path_style_access: true, \
                 credentials: {{mode: static, secret_ref: s3-keys}}}}\n\
                 layers:\n  bronze: {{storage_ref: default, catalog_ref: default, namespace: {namespace}}}\n",
                service("FLOE_TEST_REST_S3_URI"),
                service("FLOE_TEST_REST_S3_WAREHOUSE"),
                service("FLOE_TEST_S3_ENDPOINT"),
                service("FLOE_TEST_S3_BUCKET"),
                service("FLOE_TEST_S3_REGION"),
            ),
        )
        .unwrap();
        // `head` (the command, and `show`'s table), the project, then `tail`.
        let command = |head: &[&str], tail: &[&str]| {
            let mut command = Command::new(&options.floe_host);
            command.args(head).arg(&work).arg("--platform").arg(&platform).arg("--state-dir").arg(work.join("state"));
            command.args(tail).args(["--log-format", "json"]);
            command.envs(env.iter().map(|(k, v)| (k, v))).stdout(Stdio::piped()).stderr(Stdio::piped());
            command
        };
        // The table and the compile cache, untimed: partition p000.
        let seed = command(&["run"], &["--partition", "p000"]).output().unwrap();
        if !seed.status.success() {
            eprintln!("floe-bench scaleout: the first run failed:\n{}", String::from_utf8_lossy(&seed.stderr));
            std::process::exit(1);
        }
        let started = Instant::now();
        let children: Vec<_> =
            (1..=n).map(|part| command(&["run"], &["--partition", &format!("p{part:03}")]).spawn().unwrap()).collect();
        let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        let wall = started.elapsed();
        let retries: Vec<usize> = outputs
            .iter()
            .map(|o| String::from_utf8_lossy(&o.stderr).matches("Commit conflicted with another writer").count())
            .collect();
        let failed: Vec<_> = outputs.iter().filter(|o| !o.status.success()).collect();
        for output in &failed {
            let stderr = String::from_utf8_lossy(&output.stderr);
            eprintln!("N = {n}: a run failed ({}): {}", output.status, stderr.lines().last().unwrap_or(""));
        }
        let shown = command(&["show", "bronze.raw_orders"], &["--limit", "0"]).output().unwrap();
        let header = String::from_utf8_lossy(&shown.stdout).lines().next().unwrap_or("").to_string();
        let rows = table_rows(&header).unwrap_or_else(|| {
            eprintln!("floe-bench scaleout: no row count in `{header}`: {}", String::from_utf8_lossy(&shown.stderr));
            std::process::exit(1)
        });
        let expected = ((n - failed.len() + 1) * options.rows) as u64;
        assert_eq!(rows, expected, "N = {n}: every partition that succeeded lands once, plus the first");
        eprintln!("N = {n}: {:.1} s, {} retries", wall.as_secs_f64(), retries.iter().sum::<usize>());
        rounds.push(Round {
            runs: n,
            wall,
            failed: failed.len(),
            retries: retries.iter().sum(),
            max_retries: retries.iter().copied().max().unwrap_or(0),
            rows: ((n - failed.len()) * options.rows) as u64,
        });
    }
    let _ = std::fs::remove_dir_all(&work);
    println!();
    println!(
        "| concurrent runs | wall | commits/s | conflict retries (total, most in one run) | failed runs | rows/s (all runs) |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rounds {
        let seconds = r.wall.as_secs_f64();
        println!(
            "| {} | {:.1} s | {:.2} | {}, {} | {} | {:.3} M |",
            r.runs,
            seconds,
            (r.runs - r.failed) as f64 / seconds,
            r.retries,
            r.max_retries,
            r.failed,
            r.rows as f64 / seconds / 1e6
        );
    }
}

/// The row count of `show`'s header: `<table> (<rows> rows, snapshot <id>)`.
fn table_rows(header: &str) -> Option<u64> {
    let inside = header.split_once(" (")?.1;
    inside.split_once(" rows")?.0.replace(',', "").parse().ok()
}
