//! `floe-bench pipeline`: the demo pipeline end to end against raw DuckDB
//! (issue #7). It measures; it asserts only that floe-host and the baselines
//! computed the same tables.
//!
//! 1. Generates the demo data at the chosen size with `floe-datagen` (kept in
//!    the work directory and reused while the size and seed stay the same).
//! 2. Copies `examples/customer-analytics` into the work directory, with
//!    `data/` pointing at the generated CSVs, its plugin paths made absolute,
//!    and a generated platform.yaml (SQL catalog and warehouse in the work
//!    directory, DuckDB `memory_limit`, `threads`, `temp_directory`).
//! 3. Runs `floe-host run --summary-json` as a child process: per-step times
//!    and rows from the summary, peak RSS from the child's rusage, and the
//!    RSS sampled every 10 ms, split by step using the JSON log lines.
//! 4. Runs a baseline for every step, each in its own child process (this
//!    binary's hidden `__baseline` command), so every peak RSS is its own:
//!    DuckDB `read_csv(all_varchar = true)` → Parquet for a CSV ingest, the
//!    same SQL over the previous stages' Parquet for a SQL model or a plugin
//!    in SQL mode, and the plugin's logic compiled natively for a streaming
//!    WASM transform. Each stage reads the Parquet files the earlier stages wrote.
//! 5. Checks that every floe-host table equals its baseline: rows, column
//!    names and types, the sum of every numeric column and an
//!    order-independent hash of all rows. A mismatch exits 1.
//! 6. Times `floe-host validate` on the project (median of several runs).
//! 7. Prints a Markdown report and writes the same numbers as JSON.
//!
//! The steps come from `floe-host plan --json`, so a changed demo is measured
//! as it is; a plugin without a baseline stops the benchmark with its name.

pub mod baseline;
mod child;
mod options;
mod plan;
mod report;
mod setup;
mod verify;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use options::Options;
use plan::Step;

/// The hidden subcommand that runs one baseline stage in a child process.
pub const BASELINE_COMMAND: &str = "__baseline";

/// One floe-host run, as measured from outside.
pub struct FloeRun {
    pub wall: Duration,
    pub peak_rss: u64,
    /// `duration_ms` of the summary: the run inside the process.
    pub run_ms: f64,
    /// The steps committed, in order: all of them unless the run failed.
    pub steps: Vec<FloeStep>,
    /// The exit code and error of a failed run.
    pub failure: Option<String>,
}

/// One step of a floe-host run.
pub struct FloeStep {
    pub step: String,
    pub rows_in: u64,
    pub rows_out: u64,
    pub files: u64,
    /// When the step started, from the start of the first step (steps overlap).
    pub started_ms: f64,
    pub ms: f64,
    /// Time inside the plugin call as the host logs it (ingest or streaming transform).
    pub plugin_ms: Option<f64>,
    /// A plugin compiled during the step (a cold component cache), in ms.
    pub compile_ms: f64,
    /// Largest RSS sampled while the step ran.
    pub peak_rss: u64,
}

/// One baseline stage.
pub struct StageRun {
    pub what: String,
    /// The stage's work, timed inside the child (open, read, compute, write).
    pub ms: f64,
    /// The child process, start to exit.
    pub wall: Duration,
    pub peak_rss: u64,
    pub rows_out: u64,
    /// An ingest's reference without the record number.
    pub reference: Option<Reference>,
}

/// A baseline measured for reference only: nothing reads its output.
pub struct Reference {
    pub what: String,
    pub ms: f64,
    pub peak_rss: u64,
}

pub fn main(args: Vec<String>) {
    let options = options::parse(args);
    if let Err(message) = run(&options) {
        eprintln!("floe-bench pipeline: {message}");
        std::process::exit(1);
    }
}

fn run(options: &Options) -> Result<(), String> {
    let machine = report::Machine::detect();
    eprintln!(
        "floe-bench pipeline: {} orders, {} customers, work dir {}",
        options.orders,
        options.customers,
        options.work.display()
    );
    let data = setup::data(options)?;
    let project = setup::project(options, &data.dir)?;
    let steps = plan::load(options, &project)?;
    if options.warmup {
        setup::warm_component_cache(&steps, &project.state.join("component-cache"))?;
    }

    let mut floe_runs = Vec::new();
    let mut baseline_runs = Vec::new();
    for rep in 1..=options.reps {
        eprintln!("floe-bench pipeline: repetition {rep}/{}: floe-host run", options.reps);
        floe_runs.push(run_floe_host(options, &project, &steps)?);
        if options.baseline {
            eprintln!("floe-bench pipeline: repetition {rep}/{}: baselines", options.reps);
            baseline_runs.push(baseline::run_all(options, &project, &steps)?);
        }
    }
    eprintln!("floe-bench pipeline: timing `floe-host validate` ({} runs)", options.validate_runs);
    let validate = time_command(options.validate_runs, || {
        let mut command = Command::new(&options.floe_host);
        command.arg("validate").arg(&project.dir).arg("--platform").arg(&project.platform);
        command.arg("--state-dir").arg(&project.state);
        command
    })?;
    let startup = time_command(options.validate_runs, || {
        let mut command = Command::new(&options.floe_host);
        command.arg("--version");
        command
    })?;

    let verification = if options.baseline {
        eprintln!("floe-bench pipeline: comparing every table with its baseline");
        // The tables on disk are the last repetition's.
        let last = floe_runs.last().expect("at least one repetition");
        let committed: Vec<&str> = last.steps.iter().map(|s| s.step.as_str()).collect();
        Some(verify::compare(&steps, &committed, &project)?)
    } else {
        None
    };
    let report = report::Report {
        options,
        machine,
        data: &data,
        steps: &steps,
        floe: &floe_runs,
        baseline: &baseline_runs,
        validate: &validate,
        startup: &startup,
        verification: verification.as_deref(),
    };
    print!("{}", report.markdown());
    let json_path = options.json.clone().unwrap_or_else(|| {
        options.work.join("results").join(format!("pipeline-{}.json", options::size_label(options.orders)))
    });
    if let Some(parent) = json_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(&report.json()).expect("the report serializes") + "\n";
    std::fs::write(&json_path, text).map_err(|e| format!("{}: {e}", json_path.display()))?;
    eprintln!("floe-bench pipeline: wrote {}", json_path.display());
    if let Some(failure) = floe_runs.iter().find_map(|r| r.failure.as_ref()) {
        return Err(format!("floe-host run failed: {failure}"));
    }
    match verification {
        Some(checks) if checks.iter().any(|c| !c.equal()) => {
            Err("floe-host's tables differ from the baselines (see the verification table)".into())
        }
        _ => Ok(()),
    }
}

/// One `floe-host run` over a fresh catalog and warehouse (the compiled
/// plugins in the state directory are kept).
fn run_floe_host(options: &Options, project: &setup::Project, steps: &[Step]) -> Result<FloeRun, String> {
    project.clear_tables()?;
    let summary_path = project.root.join("summary.json");
    let _ = std::fs::remove_file(&summary_path);
    let mut command = Command::new(&options.floe_host);
    command
        .arg("--log-format")
        .arg("json")
        .arg("run")
        .arg(&project.dir)
        .arg("--platform")
        .arg(&project.platform)
        .arg("--state-dir")
        .arg(&project.state)
        .arg("--summary-json")
        .arg(&summary_path)
        .env("FLOE_LOG", "floe_host=info,warn");
    let measured = child::run(&mut command, true)?;
    let log_path = project.root.join("floe-host.log");
    std::fs::write(&log_path, measured.stderr_lines.iter().map(|(_, l)| format!("{l}\n")).collect::<String>())
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    // A failed run still writes its summary, with the steps it committed:
    // those are measured, and the report says how the run ended.
    let summary: Option<serde_json::Value> =
        std::fs::read_to_string(&summary_path).ok().and_then(|t| serde_json::from_str(&t).ok());
    let summary = match summary {
        Some(summary) => summary,
        None => {
            let tail: Vec<&str> = measured.stderr_lines.iter().rev().take(20).map(|(_, l)| l.as_str()).collect();
            return Err(format!(
                "floe-host run exited with {} after {:.1} s and wrote no summary; the log is {}; its end:\n{}",
                measured.code,
                measured.wall.as_secs_f64(),
                log_path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
    };
    let failure = (measured.code != 0).then(|| {
        let error = summary["error"].as_str().unwrap_or("no error in the summary");
        format!("exit {}: {error}", measured.code)
    });
    if let Some(failure) = &failure {
        eprintln!("floe-bench pipeline: floe-host run failed ({failure}); the log is {}", log_path.display());
    }
    let events = child::step_events(&measured.stderr_lines);
    let mut floe_steps = Vec::new();
    for entry in summary["steps"].as_array().ok_or("the summary has no `steps`")? {
        let name = entry["step"].as_str().unwrap_or_default().to_owned();
        let number = |key: &str| entry[key].as_u64().unwrap_or(0);
        let event = events.get(&name);
        let peak_rss = event
            .and_then(|e| {
                let end = e.end.unwrap_or(measured.wall);
                measured.rss_samples.iter().filter(|(t, _)| *t >= e.start && *t <= end).map(|(_, rss)| *rss).max()
            })
            .unwrap_or(0);
        floe_steps.push(FloeStep {
            rows_in: number("rows_in"),
            rows_out: number("rows_out"),
            files: number("files"),
            started_ms: entry["started_ms"].as_f64().unwrap_or(0.0),
            ms: entry["duration_ms"].as_f64().unwrap_or(0.0),
            plugin_ms: event.and_then(|e| e.plugin_ms),
            compile_ms: event.map_or(0.0, |e| e.compile_ms),
            peak_rss,
            step: name,
        });
    }
    let planned: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    let ran: Vec<&str> = floe_steps.iter().map(|s| s.step.as_str()).collect();
    let complete = if failure.is_none() { planned == ran } else { planned.starts_with(&ran) };
    if !complete {
        return Err(format!("the plan has steps {planned:?} but the run summary lists {ran:?}"));
    }
    Ok(FloeRun {
        wall: measured.wall,
        peak_rss: measured.peak_rss,
        run_ms: summary["duration_ms"].as_f64().unwrap_or(0.0),
        steps: floe_steps,
        failure,
    })
}

/// Wall times of `runs` runs of a short command that must succeed.
fn time_command(runs: usize, command: impl Fn() -> Command) -> Result<Vec<Duration>, String> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut command = command();
        let measured = child::run(&mut command, false)?;
        if measured.code != 0 {
            return Err(format!(
                "{command:?} exited with {}: {}",
                measured.code,
                measured.stderr_lines.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n")
            ));
        }
        times.push(measured.wall);
    }
    Ok(times)
}

/// The median of some durations.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

/// `path` as a SQL string literal.
pub fn sql_path(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "''"))
}
