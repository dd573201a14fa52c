//! The flags of `floe-bench pipeline`.

use std::path::PathBuf;

pub struct Options {
    pub orders: u64,
    pub customers: u64,
    pub seed: u64,
    /// DuckDB `memory_limit`, for floe-host (platform.yaml) and the baselines alike.
    pub memory_limit: String,
    /// `plugins.memory_limit` in platform.yaml (floe-host's default when None).
    pub plugin_memory_limit: Option<String>,
    pub threads: usize,
    /// `concurrent_steps` of the compute profile (floe-host's default when None).
    pub concurrent_steps: Option<usize>,
    pub work: PathBuf,
    pub json: Option<PathBuf>,
    pub reps: usize,
    pub validate_runs: usize,
    /// Compile the plugins into the component cache before the timed run.
    pub warmup: bool,
    /// Run the baselines (and the comparison of every table).
    pub baseline: bool,
    pub project: PathBuf,
    pub floe_host: PathBuf,
    pub datagen: PathBuf,
}

const USAGE: &str = "\
usage: floe-bench pipeline [--orders N (1M)] [--customers N (orders/10, at least 1000)] [--seed S (42)]
                           [--memory-limit SIZE (2GB)] [--plugin-memory-limit SIZE (floe-host's default)]
                           [--threads N (CPUs)] [--concurrent-steps N (floe-host's default)] [--reps N (1)]
                           [--validate-runs N (11)] [--no-warmup] [--no-baseline]
                           [--work DIR ($FLOE_CACHE/bench/pipeline)] [--json FILE (WORK/results/pipeline-SIZE.json)]
                           [--project DIR (examples/customer-analytics)]
                           [--floe-host BIN] [--datagen BIN] (default: next to this binary)

Runs the demo pipeline on generated data with floe-host and, stage by stage, with
raw DuckDB and native Rust; checks that both computed the same tables (exit 1 if not)
and reports time, rows/s and peak RSS per step. Sizes take k/M suffixes: 20k, 10M.";

pub fn parse(args: Vec<String>) -> Options {
    let next_to_me = |name: &str| {
        std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join(name))).unwrap_or_else(|| name.into())
    };
    let cache = std::env::var_os("FLOE_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir).join(".cache/floe-host")
    });
    let mut options = Options {
        orders: 1_000_000,
        customers: 0,
        seed: 42,
        memory_limit: "2GB".into(),
        plugin_memory_limit: None,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        concurrent_steps: None,
        work: cache.join("bench/pipeline"),
        json: None,
        reps: 1,
        validate_runs: 11,
        warmup: true,
        baseline: true,
        project: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/customer-analytics"),
        floe_host: next_to_me("floe-host"),
        datagen: next_to_me("floe-datagen"),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--orders" => options.orders = size(&value()),
            "--customers" => options.customers = size(&value()),
            "--seed" => options.seed = size(&value()),
            "--memory-limit" => options.memory_limit = value(),
            "--plugin-memory-limit" => options.plugin_memory_limit = Some(value()),
            "--threads" => options.threads = size(&value()).max(1) as usize,
            "--concurrent-steps" => options.concurrent_steps = Some(size(&value()).max(1) as usize),
            "--work" => options.work = PathBuf::from(value()),
            "--json" => options.json = Some(PathBuf::from(value())),
            "--reps" => options.reps = size(&value()).max(1) as usize,
            "--validate-runs" => options.validate_runs = size(&value()).max(1) as usize,
            "--no-warmup" => options.warmup = false,
            "--no-baseline" => options.baseline = false,
            "--project" => options.project = PathBuf::from(value()),
            "--floe-host" => options.floe_host = PathBuf::from(value()),
            "--datagen" => options.datagen = PathBuf::from(value()),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    // One customer per ten orders (1M at 10M orders): a join and a
    // deduplication of a size that matters, not a table that fits in cache.
    if options.customers == 0 {
        options.customers = (options.orders / 10).max(1000);
    }
    for (what, path) in [("--floe-host", &options.floe_host), ("--datagen", &options.datagen)] {
        if !path.is_file() {
            usage(&format!(
                "{what}: {} does not exist (build it: cargo build [--release] -p floe-host -p floe-datagen -p floe-bench)",
                path.display()
            ));
        }
    }
    options
}

/// `20000`, `20_000`, `20k`, `10M`, `1G`.
fn size(text: &str) -> u64 {
    let clean = text.replace('_', "");
    let (digits, factor) = match clean.chars().last() {
        Some('k' | 'K') => (&clean[..clean.len() - 1], 1_000),
        Some('m' | 'M') => (&clean[..clean.len() - 1], 1_000_000),
        Some('g' | 'G') => (&clean[..clean.len() - 1], 1_000_000_000),
        _ => (clean.as_str(), 1),
    };
    digits.parse::<u64>().map(|n| n * factor).unwrap_or_else(|_| usage(&format!("`{text}` is not a number")))
}

/// `1M`, `10M`, `20k`, or the plain number.
pub fn size_label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("floe-bench pipeline: {problem}");
    }
    eprintln!("{USAGE}");
    std::process::exit(if problem.is_empty() { 0 } else { 2 });
}
