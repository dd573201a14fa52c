//! The report: a Markdown summary on stdout and the same numbers as JSON.
//! With several repetitions, times are medians and peak RSS the largest.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use super::options::{Options, size_label};
use super::plan::Step;
use super::setup::Data;
use super::verify::Check;
use super::{FloeRun, StageRun, median};

pub struct Machine {
    cpu: String,
    cpus: usize,
    memory_bytes: u64,
    kernel: String,
    load_at_start: String,
}

impl Machine {
    pub fn detect() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".into(), |s| s.trim().to_owned());
        let memory_bytes = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_at_start: load_average(),
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

pub struct Report<'a> {
    pub options: &'a Options,
    pub machine: Machine,
    pub data: &'a Data,
    pub steps: &'a [Step],
    pub floe: &'a [FloeRun],
    pub baseline: &'a [Vec<StageRun>],
    pub validate: &'a [Duration],
    pub startup: &'a [Duration],
    pub verification: Option<&'a [Check]>,
}

/// One step over all repetitions.
struct Row {
    step: String,
    kind: &'static str,
    /// None when floe-host failed before it committed the step.
    floe: Option<FloeRow>,
    baseline: Option<BaselineRow>,
}

struct FloeRow {
    rows_in: u64,
    rows_out: u64,
    files: u64,
    ms: f64,
    plugin_ms: Option<f64>,
    compile_ms: f64,
    rss: u64,
}

struct BaselineRow {
    what: String,
    ms: f64,
    wall_ms: f64,
    rss: u64,
    rows_in: u64,
    rows_out: u64,
    /// An ingest's reference without `_row`: what, median ms, largest peak RSS.
    reference: Option<(String, f64, u64)>,
}

/// A comparison against one of issue #17's targets (and #7's for `validate`).
struct Target {
    name: &'static str,
    floe: String,
    baseline: String,
    ratio: Option<f64>,
    target: &'static str,
    met: Option<bool>,
}

/// One line per step: its name, start and end, and a bar over `width`
/// columns of the run's span.
fn timeline(steps: &[super::FloeStep], width: usize) -> Vec<String> {
    let end = steps.iter().map(|s| s.started_ms + s.ms).fold(0.0, f64::max).max(1.0);
    let name_width = steps.iter().map(|s| s.step.len()).max().unwrap_or(0);
    steps
        .iter()
        .map(|s| {
            let from = ((s.started_ms / end) * width as f64).round() as usize;
            let to = (((s.started_ms + s.ms) / end) * width as f64).round().max(from as f64 + 1.0) as usize;
            format!(
                "{:<name_width$}  {:>7.2}–{:<7.2}s |{}{}{}|",
                s.step,
                s.started_ms / 1000.0,
                (s.started_ms + s.ms) / 1000.0,
                " ".repeat(from),
                "#".repeat(to.min(width) - from.min(width)),
                " ".repeat(width - to.min(width)),
            )
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn time(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1e3)
    } else if ms >= 1_000.0 {
        format!("{:.2} s", ms / 1e3)
    } else {
        format!("{ms:.0} ms")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
}

fn rate(rows: u64, ms: f64) -> String {
    if ms <= 0.0 {
        return "–".into();
    }
    let per_s = rows as f64 / (ms / 1e3);
    if per_s >= 1e6 { format!("{:.2} M/s", per_s / 1e6) } else { format!("{:.0} k/s", per_s / 1e3) }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

fn show_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "–".into(), |r| format!("{r:.2}×"))
}

/// `2GB`, `1.5GiB`, `512MB` → bytes, as DuckDB reads them (GB = 1000³, GiB = 1024³).
fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * factor) as u64)
}

impl Report<'_> {
    fn rows(&self) -> Vec<Row> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let runs: Vec<&super::FloeStep> =
                    self.floe.iter().filter_map(|run| run.steps.iter().find(|s| s.step == step.name)).collect();
                let medians =
                    |f: &dyn Fn(&super::FloeStep) -> f64| median(&runs.iter().map(|s| f(s)).collect::<Vec<_>>());
                let floe = runs.first().map(|first| FloeRow {
                    rows_in: first.rows_in,
                    rows_out: first.rows_out,
                    files: first.files,
                    ms: medians(&|s| s.ms),
                    plugin_ms: first.plugin_ms.map(|_| medians(&|s| s.plugin_ms.unwrap_or(0.0))),
                    compile_ms: medians(&|s| s.compile_ms),
                    rss: runs.iter().map(|s| s.peak_rss).max().unwrap_or(0),
                });
                let baseline = (!self.baseline.is_empty()).then(|| {
                    let stages: Vec<&StageRun> = self.baseline.iter().map(|run| &run[i]).collect();
                    let rows_of = |target: &str| {
                        self.steps.iter().position(|s| s.target == target).map_or(0, |j| self.baseline[0][j].rows_out)
                    };
                    let rows_in = match step.kind() {
                        "ingest" => stages[0].rows_out,
                        _ => step.inputs.iter().map(|input| rows_of(&input.target)).sum(),
                    };
                    BaselineRow {
                        what: stages[0].what.clone(),
                        ms: median(&stages.iter().map(|s| s.ms).collect::<Vec<_>>()),
                        wall_ms: median(&stages.iter().map(|s| ms(s.wall)).collect::<Vec<_>>()),
                        rss: stages.iter().map(|s| s.peak_rss).max().unwrap_or(0),
                        rows_in,
                        rows_out: stages[0].rows_out,
                        reference: stages[0].reference.as_ref().map(|first| {
                            let refs = stages.iter().filter_map(|s| s.reference.as_ref());
                            let ms = median(&refs.clone().map(|r| r.ms).collect::<Vec<_>>());
                            (first.what.clone(), ms, refs.map(|r| r.peak_rss).max().unwrap_or(0))
                        }),
                    }
                });
                Row { step: step.name.clone(), kind: step.kind(), floe, baseline }
            })
            .collect()
    }

    /// Why floe-host's first failed run failed.
    fn failure(&self) -> Option<&str> {
        self.floe.iter().find_map(|r| r.failure.as_deref())
    }

    fn floe_wall_ms(&self) -> f64 {
        median(&self.floe.iter().map(|r| ms(r.wall)).collect::<Vec<_>>())
    }

    fn floe_peak_rss(&self) -> u64 {
        self.floe.iter().map(|r| r.peak_rss).max().unwrap_or(0)
    }

    fn baseline_wall_ms(&self) -> Option<f64> {
        (!self.baseline.is_empty())
            .then(|| median(&self.baseline.iter().map(|run| run.iter().map(|s| ms(s.wall)).sum()).collect::<Vec<_>>()))
    }

    fn baseline_peak_rss(&self) -> u64 {
        self.baseline.iter().flatten().map(|s| s.peak_rss).max().unwrap_or(0)
    }

    fn targets(&self, rows: &[Row]) -> Vec<Target> {
        let sum = |kind: &str, f: &dyn Fn(&Row) -> Option<f64>| -> Option<f64> {
            rows.iter().filter(|r| r.kind == kind).map(f).sum()
        };
        // `limit`: the ratio the target allows, or none for a figure shown
        // beside a target that is checked elsewhere.
        let group = |name, kind, target, limit: Option<f64>| {
            let floe = sum(kind, &|r| r.floe.as_ref().map(|f| f.ms));
            let base = sum(kind, &|r| r.baseline.as_ref().map(|b| b.ms));
            let r = floe.zip(base).and_then(|(a, b)| ratio(a, b));
            Target {
                name,
                floe: floe.map_or("–".into(), time),
                baseline: base.map_or("–".into(), time),
                ratio: r,
                target,
                met: limit.zip(r).map(|(limit, r)| r <= limit),
            }
        };
        let failure = self.failure();
        let whole = self.baseline_wall_ms().and_then(|b| ratio(self.floe_wall_ms(), b)).filter(|_| failure.is_none());
        let limit = parse_bytes(&self.options.memory_limit);
        let peak = self.floe_peak_rss();
        let validate = median(&self.validate.iter().map(|d| ms(*d)).collect::<Vec<_>>());
        vec![
            Target {
                name: "whole pipeline (process wall; baseline: Σ of its stage processes)",
                floe: match failure {
                    None => time(self.floe_wall_ms()),
                    Some(_) => format!("failed after {}", time(self.floe_wall_ms())),
                },
                baseline: self.baseline_wall_ms().map_or("–".into(), time),
                ratio: whole,
                target: "≤ 0.65× (at 10M)",
                met: whole.map(|r| r <= 0.65),
            },
            group("SQL steps (Σ of `kind: sql` steps)", "sql", "(the sum; the target is per step, next row)", None),
            {
                // The slowest SQL step against its own DuckDB stage.
                let worst = rows
                    .iter()
                    .filter(|r| r.kind == "sql")
                    .filter_map(|r| {
                        let (f, b) = (r.floe.as_ref()?.ms, r.baseline.as_ref()?.ms);
                        Some((ratio(f, b)?, f, b))
                    })
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                Target {
                    name: "the slowest SQL step against its DuckDB stage",
                    floe: worst.map_or("–".into(), |w| time(w.1)),
                    baseline: worst.map_or("–".into(), |w| time(w.2)),
                    ratio: worst.map(|w| w.0),
                    target: "≤ 1.0×",
                    met: worst.map(|w| w.0 <= 1.0),
                }
            },
            group("CSV ingest via WASM (Σ of ingest steps; baseline with `_row`)", "ingest", "≤ 0.4×", Some(0.4)),
            {
                let floe = sum("ingest", &|r| r.floe.as_ref().map(|f| f.ms));
                let plain = sum("ingest", &|r| r.baseline.as_ref().and_then(|b| b.reference.as_ref()).map(|x| x.1));
                let r = floe.zip(plain).and_then(|(a, b)| ratio(a, b));
                Target {
                    name: "CSV ingest via WASM against `read_csv` → Parquet without `_row`",
                    floe: floe.map_or("–".into(), time),
                    baseline: plain.map_or("–".into(), time),
                    ratio: r,
                    target: "(a reference)",
                    met: None,
                }
            },
            Target {
                name: "peak RSS, whole run",
                floe: mib(peak),
                baseline: format!("{} (largest stage)", mib(self.baseline_peak_rss())),
                ratio: limit.and_then(|l| ratio(peak as f64, l as f64)),
                target: "≤ 1.1 GB (1,049 MiB) under `memory_limit: 2GB` (ratio: ÷ memory_limit)",
                met: Some(peak <= 1_100_000_000),
            },
            Target {
                name: "run finished",
                floe: failure.map_or_else(|| "yes".into(), |f| format!("no: {f}")),
                baseline: if self.baseline.is_empty() { "not run".into() } else { "yes".into() },
                ratio: None,
                target: "finishes (at 50M, under the default limits)",
                met: Some(failure.is_none()),
            },
            Target {
                name: "`floe-host validate` (median)",
                floe: format!("{validate:.1} ms"),
                baseline: "–".into(),
                ratio: None,
                target: "≤ 50 ms (issue #7)",
                met: Some(validate <= 50.0),
            },
        ]
    }

    pub fn markdown(&self) -> String {
        let rows = self.rows();
        let o = self.options;
        let d = self.data;
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(w, "\n# floe-bench pipeline: {} orders\n", size_label(o.orders));
        let _ = writeln!(
            w,
            "- data: {} customer records, {} order records, {:.1} MB of CSV ({}), seed {}",
            d.customers_lines,
            d.orders_lines,
            d.bytes as f64 / 1e6,
            d.generated_in.map_or("reused".into(), |s| format!("generated in {s:.1} s")),
            o.seed
        );
        let _ = writeln!(
            w,
            "- floe-host `{}`; DuckDB memory_limit {}, threads {}; {} repetition(s); component cache {}",
            o.floe_host.display(),
            o.memory_limit,
            o.threads,
            o.reps,
            if o.warmup { "warmed before the run" } else { "as found (no warm-up)" }
        );
        let _ = writeln!(
            w,
            "- machine: {}, {} CPUs, {:.1} GiB RAM, Linux {}; load average {} at start, {} at end; floe-bench built {}",
            self.machine.cpu,
            self.machine.cpus,
            self.machine.memory_bytes as f64 / (1u64 << 30) as f64,
            self.machine.kernel,
            self.machine.load_at_start,
            load_average(),
            if cfg!(debug_assertions) { "without optimisations (debug)" } else { "optimised (release)" }
        );
        let _ = writeln!(w, "\n## Steps\n");
        let _ = writeln!(
            w,
            "| step | kind | rows in | rows out | floe-host | baseline | ratio | floe-host rows in/s | baseline rows in/s | floe-host peak RSS¹ | baseline peak RSS | baseline |"
        );
        let _ = writeln!(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
        for r in &rows {
            let b = r.baseline.as_ref();
            let f = r.floe.as_ref();
            let dash = || "–".to_owned();
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.step,
                r.kind,
                f.map_or_else(|| b.map_or_else(dash, |b| b.rows_in.to_string()), |f| f.rows_in.to_string()),
                f.map_or_else(|| b.map_or_else(dash, |b| b.rows_out.to_string()), |f| f.rows_out.to_string()),
                f.map_or_else(|| "not committed".into(), |f| time(f.ms)),
                b.map_or_else(dash, |b| time(b.ms)),
                show_ratio(f.zip(b).and_then(|(f, b)| ratio(f.ms, b.ms))),
                f.map_or_else(dash, |f| rate(f.rows_in, f.ms)),
                b.map_or_else(dash, |b| rate(b.rows_in, b.ms)),
                f.map_or_else(dash, |f| mib(f.rss)),
                b.map_or_else(dash, |b| mib(b.rss)),
                b.map_or_else(dash, |b| b.what.clone()),
            );
        }
        let csv_rows = d.customers_lines + d.orders_lines;
        let _ = writeln!(
            w,
            "| **whole pipeline**² | | {csv_rows} CSV | | {} | {} | {} | {} | {} | {} | {} | |",
            match self.failure() {
                None => time(self.floe_wall_ms()),
                Some(_) => format!("failed after {}", time(self.floe_wall_ms())),
            },
            self.baseline_wall_ms().map_or("–".into(), time),
            show_ratio(
                self.baseline_wall_ms()
                    .and_then(|b| ratio(self.floe_wall_ms(), b))
                    .filter(|_| self.failure().is_none())
            ),
            if self.failure().is_none() { rate(csv_rows, self.floe_wall_ms()) } else { "–".into() },
            self.baseline_wall_ms().map_or("–".into(), |b| rate(csv_rows, b)),
            mib(self.floe_peak_rss()),
            mib(self.baseline_peak_rss()),
        );
        let _ = writeln!(
            w,
            "\n¹ floe-host runs every step in one process: its RSS sampled every 10 ms while the step ran \
             (the whole-pipeline row: the process's `ru_maxrss`). Each baseline stage is its own process (`ru_maxrss`).  \n\
             ² floe-host: the `run` process from start to exit (the summary's `duration_ms`: {}); \
             baseline: the sum of its stage processes, start to exit. Step times: floe-host's summary \
             (read, compute, write, commit); a baseline stage's work timed inside its process. Ratio = floe-host ÷ baseline.",
            time(median(&self.floe.iter().map(|r| r.run_ms).collect::<Vec<_>>()))
        );

        if let Some(last) = self.floe.last().filter(|run| !run.steps.is_empty()) {
            let _ = writeln!(w, "\n## Overlap (the last run)\n");
            let _ = writeln!(
                w,
                "Each step from its start to its commit, counted from the start of the first step; steps on one \
                 line's columns at once computed together (`concurrent_steps`).\n"
            );
            let _ = writeln!(w, "```");
            for line in timeline(&last.steps, 60) {
                let _ = writeln!(w, "{line}");
            }
            let _ = writeln!(w, "```");
        }
        let references: Vec<_> = rows
            .iter()
            .filter_map(|r| {
                let b = r.baseline.as_ref()?;
                Some((r.step.as_str(), r.floe.as_ref()?, b, b.reference.as_ref()?))
            })
            .collect();
        if !references.is_empty() {
            let _ = writeln!(w, "\n## CSV ingest against both DuckDB references\n");
            let _ = writeln!(
                w,
                "The baseline above adds the record number `_row` (`row_number() OVER ()`), which the later stages \
                 read; DuckDB numbers rows on one thread. The issue's reference, `read_csv(all_varchar = true)` → \
                 Parquet, has no `_row` and reads in parallel.\n"
            );
            let _ = writeln!(
                w,
                "| step | floe-host | DuckDB with `_row` | ratio | DuckDB without `_row` | ratio | its peak RSS |"
            );
            let _ = writeln!(w, "|---|--:|--:|--:|--:|--:|--:|");
            for (step, f, b, (_, ms, rss)) in references {
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    step,
                    time(f.ms),
                    time(b.ms),
                    show_ratio(ratio(f.ms, b.ms)),
                    time(*ms),
                    show_ratio(ratio(f.ms, *ms)),
                    mib(*rss)
                );
            }
        }

        let _ = writeln!(w, "\n## Where floe-host's step time goes\n");
        let _ = writeln!(
            w,
            "| step | total | in the plugin call³ | plugin compile | the rest: read, DuckDB query, last writes, commit | files |"
        );
        let _ = writeln!(w, "|---|--:|--:|--:|--:|--:|");
        for (step, f) in rows.iter().filter_map(|r| Some((&r.step, r.floe.as_ref()?))) {
            let plugin = f.plugin_ms.unwrap_or(0.0);
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} |",
                step,
                time(f.ms),
                f.plugin_ms.map_or("–".into(), time),
                if f.compile_ms > 0.0 { time(f.compile_ms) } else { "–".into() },
                time((f.ms - plugin - f.compile_ms).max(0.0)),
                f.files
            );
        }
        let _ = writeln!(
            w,
            "\n³ `elapsed_ms` of the host's log line for the ingest or streaming transform call (IPC, \
             the guest's work and the host's checks). The step's data files are written on another thread \
             meanwhile, so most of its write is inside this time. A plugin in SQL mode shows –: DuckDB runs its query."
        );

        let _ = writeln!(w, "\n## Against the targets\n");
        let _ = writeln!(w, "| what | floe-host | baseline | ratio | target | status |");
        let _ = writeln!(w, "|---|--:|--:|--:|---|---|");
        for t in self.targets(&rows) {
            let status = match t.met {
                Some(true) => "met",
                Some(false) => "**missed**",
                None => "–",
            };
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {status} |",
                t.name,
                t.floe,
                t.baseline,
                show_ratio(t.ratio),
                t.target
            );
        }
        let startup = median(&self.startup.iter().map(|d| ms(*d)).collect::<Vec<_>>());
        let _ = writeln!(
            w,
            "\n`floe-host validate`: median {:.1} ms, min {:.1} ms over {} runs (`floe-host --version`, the process start alone: median {:.1} ms).",
            median(&self.validate.iter().map(|d| ms(*d)).collect::<Vec<_>>()),
            self.validate.iter().map(|d| ms(*d)).fold(f64::INFINITY, f64::min),
            self.validate.len(),
            startup
        );

        if let Some(checks) = self.verification {
            let _ = writeln!(w, "\n## floe-host's tables against the baselines\n");
            let _ = writeln!(
                w,
                "| step | floe-host rows | baseline rows | data files | sums (baseline) | same rows and values |"
            );
            let _ = writeln!(w, "|---|--:|--:|--:|---|---|");
            for c in checks {
                let sums = c.baseline.sums.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
                let equal = if c.equal() { "yes".to_owned() } else { format!("**no**: {}", c.difference()) };
                let floe_rows = c.floe.as_ref().map_or_else(|| "–".into(), |f| f.rows.to_string());
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {sums} | {equal} |",
                    c.step, floe_rows, c.baseline.rows, c.floe_files
                );
            }
        } else {
            let _ = writeln!(w, "\n(No baselines: `--no-baseline`; nothing was compared.)");
        }
        out
    }

    pub fn json(&self) -> Value {
        let rows = self.rows();
        let o = self.options;
        let m = &self.machine;
        let steps: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "step": r.step,
                    "kind": r.kind,
                    "floe_host": r.floe.as_ref().map(|f| json!({
                        "rows_in": f.rows_in, "rows_out": f.rows_out, "files": f.files,
                        "duration_ms": f.ms, "plugin_call_ms": f.plugin_ms, "plugin_compile_ms": f.compile_ms,
                        "peak_rss_bytes_sampled": f.rss,
                    })),
                    "baseline": r.baseline.as_ref().map(|b| json!({
                        "what": b.what, "rows_in": b.rows_in, "rows_out": b.rows_out,
                        "duration_ms": b.ms, "process_wall_ms": b.wall_ms, "peak_rss_bytes": b.rss,
                        "reference": b.reference.as_ref().map(|(what, ms, rss)| json!({
                            "what": what, "duration_ms": ms, "peak_rss_bytes": rss,
                        })),
                    })),
                    "ratio": r.floe.as_ref().zip(r.baseline.as_ref()).and_then(|(f, b)| ratio(f.ms, b.ms)),
                })
            })
            .collect();
        let targets: Vec<Value> = self
            .targets(&rows)
            .into_iter()
            .map(|t| json!({"what": t.name, "floe_host": t.floe, "baseline": t.baseline, "ratio": t.ratio, "target": t.target, "met": t.met}))
            .collect();
        json!({
            "benchmark": "floe-bench pipeline",
            "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "machine": {
                "cpu": m.cpu, "cpus": m.cpus, "memory_bytes": m.memory_bytes, "kernel": m.kernel,
                "load_average_start": m.load_at_start, "load_average_end": load_average(),
                "floe_bench_optimised": !cfg!(debug_assertions),
            },
            "options": {
                "orders": o.orders, "customers": o.customers, "seed": o.seed, "memory_limit": o.memory_limit,
                "threads": o.threads, "reps": o.reps, "warmup": o.warmup, "floe_host": o.floe_host,
                "project": o.project,
            },
            "data": {
                "customer_records": self.data.customers_lines, "order_records": self.data.orders_lines,
                "csv_bytes": self.data.bytes, "generated_in_s": self.data.generated_in,
            },
            "floe_host": {
                "process_wall_ms": self.floe.iter().map(|r| ms(r.wall)).collect::<Vec<_>>(),
                "run_duration_ms": self.floe.iter().map(|r| r.run_ms).collect::<Vec<_>>(),
                "peak_rss_bytes": self.floe_peak_rss(),
                "failure": self.failure(),
            },
            "baseline": {
                "process_wall_ms": self.baseline.iter().map(|run| run.iter().map(|s| ms(s.wall)).sum::<f64>()).collect::<Vec<_>>(),
                "peak_rss_bytes": self.baseline_peak_rss(),
            },
            "steps": steps,
            "validate_ms": self.validate.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
            "process_start_ms": self.startup.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
            "targets": targets,
            "verification": self.verification.map(|checks| checks.iter().map(|c| json!({
                "step": c.step, "equal": c.equal(), "difference": c.difference(), "floe_host_files": c.floe_files,
                "floe_host": c.floe.as_ref().map(|f| json!({"rows": f.rows, "sums": f.sums, "row_hash": f.hash})),
                "baseline": {"rows": c.baseline.rows, "sums": c.baseline.sums, "row_hash": c.baseline.hash},
            })).collect::<Vec<_>>()),
        })
    }
}
