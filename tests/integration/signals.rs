//! SIGTERM and SIGINT stop a run at a safe point: exit 143 or 130, a message
//! naming the committed steps, every table either absent or complete, and a
//! rerun that finishes.
//!
//! The pipeline's `raw_orders` reads the demo's orders 100 times over (about
//! half a million rows), so its ingest takes long enough to be interrupted
//! deterministically: the signal is sent as soon as the run logs that the step
//! started, and the step computes for seconds after that. The project runs
//! its steps one by one (`concurrent_steps: 1`), so that which steps committed
//! before the signal is known; the last test overlaps two steps.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use floe_host::run::cancel::{Cancel, Signal};

use crate::support::{example, floe_host, plugin, step_files, temp_dir};

const TABLES: [&str; 4] = ["bronze.raw_customers", "bronze.raw_orders", "silver.stg_customers", "silver.stg_orders"];

/// A four-step project (two ingests, two SQL models) with a large orders.csv.
fn project(dir: &Path) -> PathBuf {
    let demo = example("customer-analytics");
    let project = dir.join("project");
    std::fs::create_dir_all(project.join("data")).unwrap();
    std::fs::create_dir_all(project.join("models")).unwrap();
    for model in ["stg_customers.sql", "stg_orders.sql"] {
        std::fs::copy(demo.join("models").join(model), project.join("models").join(model)).unwrap();
    }
    std::fs::copy(demo.join("data/customers.csv"), project.join("data/customers.csv")).unwrap();
    let orders = std::fs::read_to_string(demo.join("data/orders.csv")).unwrap();
    let (header, body) = orders.split_once('\n').unwrap();
    let mut big = String::with_capacity(orders.len() * 100);
    big.push_str(header);
    big.push('\n');
    for _ in 0..100 {
        big.push_str(body);
        if !body.ends_with('\n') {
            big.push('\n');
        }
    }
    std::fs::write(project.join("data/orders.csv"), big).unwrap();
    let floe = format!(
        "name: signals\nversion: \"1.0.0\"\nstorage: default\ncatalog: default\ncompute: default\n\
         plugins:\n  csv-ingest:\n    path: {plugin}\n\
         transforms:\n\
         \x20 - {{name: raw_customers, layer: bronze, kind: ingest, plugin: csv-ingest, source: data/customers.csv}}\n\
         \x20 - {{name: raw_orders, layer: bronze, kind: ingest, plugin: csv-ingest, source: data/orders.csv}}\n\
         \x20 - {{name: stg_customers, layer: silver, kind: sql, sql: models/stg_customers.sql}}\n\
         \x20 - {{name: stg_orders, layer: silver, kind: sql, sql: models/stg_orders.sql}}\n",
        plugin = plugin("csv_ingest.wasm").display()
    );
    std::fs::write(project.join("floe.yaml"), floe).unwrap();
    let state = dir.join("state");
    let q = |p: &Path| serde_json::to_string(p.to_str().unwrap()).unwrap();
    for (file, concurrent_steps) in [("serial.yaml", 1), ("overlap.yaml", 2)] {
        std::fs::write(
            project.join(file),
            format!(
                "catalogs:\n  default: {{type: sql, uri: {uri}, warehouse: {wh}}}\n\
                 storage:\n  default: {{type: local, root: {wh}}}\n\
                 compute:\n  default: {{type: duckdb, concurrent_steps: {concurrent_steps}}}\n",
                uri = q(&PathBuf::from(format!("sqlite:{}", state.join("catalog.db").display()))),
                wh = q(&state.join("warehouse")),
            ),
        )
        .unwrap();
    }
    project
}

/// `--platform`: the steps one by one, or two at once.
fn platform_args(project: &Path, serial: bool) -> Vec<String> {
    let file = if serial { "serial.yaml" } else { "overlap.yaml" };
    vec!["--platform".into(), project.join(file).display().to_string()]
}

/// What an interrupted run printed and how it ended.
struct Interrupted {
    code: i32,
    stderr: String,
}

/// Starts `floe-host run` on the steps one by one, waits until it logs that
/// `step` started, then sends `signals` (each after the previous one's
/// acknowledgement on stderr).
fn run_and_signal(project: &Path, state: &Path, step: &str, signals: &[libc::c_int]) -> Interrupted {
    run_and_signal_after(project, state, &[step], signals, true, &[])
}

/// As `run_and_signal`, waiting until every step of `steps` started; `serial`
/// picks the platform (`platform_args`).
fn run_and_signal_after(
    project: &Path,
    state: &Path,
    steps: &[&str],
    signals: &[libc::c_int],
    serial: bool,
    env: &[(&str, &str)],
) -> Interrupted {
    let mut child = Command::new(env!("CARGO_BIN_EXE_floe-host"))
        .args(["run", project.to_str().unwrap(), "--state-dir", state.to_str().unwrap()])
        .args(platform_args(project, serial))
        .envs(env.iter().copied())
        .env("FLOE_LOG", "info")
        .env("NO_COLOR", "1")
        .env("FLOE_LOG_FORMAT", "text")
        .env_remove("FLOE_PLATFORM_FILE")
        .env_remove("FLOE_PLATFORM_ENV")
        .env_remove("FLOE_STATE_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("floe-host starts");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = lines_tx.send(strip_ansi(&line));
        }
    });
    let mut seen = String::new();
    let wait_for = |what: &dyn Fn(&str) -> bool, seen: &mut String| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("the run ended or stalled before the expected line; stderr:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
        if what(&line) {
            break;
        }
    };
    for step in steps {
        wait_for(&|line| line.contains("Running step") && line.contains(&format!("step={step}")), &mut seen);
    }
    for (i, &signal) in signals.iter().enumerate() {
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0, "kill");
        if i + 1 < signals.len() {
            wait_for(&|line| line.contains("received: stopping at the next safe point"), &mut seen);
        }
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    seen.extend(lines.try_iter().map(|line| line + "\n"));
    Interrupted { code: status.code().unwrap_or(-1), stderr: seen }
}

/// The log line without terminal colour codes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The row count of every table through `floe-host show`, `None` when the
/// catalog does not have it.
fn row_counts(project: &Path, state: &Path) -> Vec<(&'static str, Option<u64>)> {
    let platform = platform_args(project, true);
    TABLES
        .iter()
        .map(|&table| {
            let mut args =
                vec!["show", table, project.to_str().unwrap(), "--state-dir", state.to_str().unwrap(), "--limit", "0"];
            args.extend(platform.iter().map(String::as_str));
            let run = floe_host(&args);
            if run.code == 0 {
                let rows = run.stdout.split_once(" (").and_then(|(_, rest)| rest.split_once(" rows")).unwrap().0;
                (table, Some(rows.parse().unwrap()))
            } else {
                assert!(
                    run.stderr.contains("does not exist"),
                    "show {table}: neither rows nor absent: {}{}",
                    run.stdout,
                    run.stderr
                );
                (table, None)
            }
        })
        .collect()
}

/// Every table is either absent or has the rows of a complete run; `bronze.raw_orders`
/// (interrupted while computing) is absent; a rerun finishes with exit 0.
fn check_absent_or_complete_then_rerun(project: &Path, state: &Path) {
    let interrupted = row_counts(project, state);
    assert_eq!(interrupted[1], ("bronze.raw_orders", None), "the abandoned step must not be visible");
    let platform = platform_args(project, true);
    let mut args = vec!["run", project.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
    args.extend(platform.iter().map(String::as_str));
    floe_host(&args).expect_code(0);
    let complete = row_counts(project, state);
    assert_eq!(complete[1].1, Some(509_900), "the complete raw_orders: 5,099 demo rows × 100");
    for ((table, after_signal), (_, after_rerun)) in interrupted.iter().zip(&complete) {
        assert!(after_rerun.is_some(), "{table} missing after the rerun");
        if after_signal.is_some() {
            assert_eq!(after_signal, after_rerun, "{table} was half-visible after the signal");
        }
    }
}

#[test]
fn sigterm_stops_at_a_safe_point_with_143_and_a_rerun_finishes() {
    let dir = temp_dir();
    let project = project(dir.path());
    let state = dir.path().join("state");
    let run = run_and_signal(&project, &state, "raw_orders", &[libc::SIGTERM]);
    assert_eq!(run.code, 143, "exit code; stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(
            "error: stopped by SIGTERM after step `raw_customers` (step `raw_orders` was abandoned before its commit: \
             nothing of it is visible); steps committed: raw_customers; rerun to finish"
        ),
        "message; stderr:\n{}",
        run.stderr
    );
    check_absent_or_complete_then_rerun(&project, &state);
}

#[test]
fn sigint_stops_at_a_safe_point_with_130() {
    let dir = temp_dir();
    let project = project(dir.path());
    let state = dir.path().join("state");
    let run = run_and_signal(&project, &state, "raw_orders", &[libc::SIGINT]);
    assert_eq!(run.code, 130, "exit code; stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("error: stopped by SIGINT after step `raw_customers`"), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("steps committed: raw_customers; rerun to finish"), "stderr:\n{}", run.stderr);
    let counts = row_counts(&project, &state);
    assert_eq!(counts[1], ("bronze.raw_orders", None));
    assert_eq!(counts[2], ("silver.stg_customers", None), "no step runs after the signal");
}

#[test]
fn a_second_signal_with_no_commit_in_flight_exits_at_once() {
    let dir = temp_dir();
    let project = project(dir.path());
    let state = dir.path().join("state");
    let run = run_and_signal(&project, &state, "raw_orders", &[libc::SIGTERM, libc::SIGTERM]);
    assert_eq!(run.code, 143, "exit code; stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("second signal (SIGTERM) and no commit in flight: stopped at once"),
        "stderr:\n{}",
        run.stderr
    );
    check_absent_or_complete_then_rerun(&project, &state);
}

#[test]
fn the_flag_is_checked_and_set_atomically_with_the_commit() {
    let cancel = Cancel::new();
    assert_eq!(cancel.requested(), None);
    {
        let _guard = cancel.begin_commit().expect("no signal yet");
        assert!(cancel.committing());
        // A signal during a commit is recorded; the commit goes on.
        cancel.request(Signal::Terminate);
        assert!(cancel.committing());
    }
    assert!(!cancel.committing());
    // Once a signal is recorded, no commit can begin, and the first signal wins.
    cancel.request(Signal::Interrupt);
    assert_eq!(cancel.begin_commit().unwrap_err(), Signal::Terminate);
    assert_eq!(cancel.requested().map(|s| s.exit_code().code()), Some(143));
    assert_eq!(Signal::Interrupt.exit_code().code(), 130);
}

#[test]
fn sigterm_during_two_overlapped_steps_abandons_both_and_leaves_no_file() {
    let dir = temp_dir();
    let project = project(dir.path());
    let state = dir.path().join("state");
    // Two steps at once: raw_orders (an ingest) and stg_customers (a model
    // on raw_customers) compute together; every step waits 3 s at its last safe
    // point, so both have written their data files and neither has committed
    // when the signal comes.
    let run = run_and_signal_after(
        &project,
        &state,
        &["raw_orders", "stg_customers"],
        &[libc::SIGTERM],
        false,
        &[("FLOE_FAILPOINT", "before-commit:sleep-3000")],
    );
    assert_eq!(run.code, 143, "exit code; stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(
            "error: stopped by SIGTERM after step `raw_customers` (steps `raw_orders`, `stg_customers` were \
             abandoned before their commit: nothing of them is visible); steps committed: raw_customers; rerun to \
             finish"
        ),
        "message; stderr:\n{}",
        run.stderr
    );
    let counts = row_counts(&project, &state);
    assert_eq!(counts[0], ("bronze.raw_customers", Some(1_055)), "committed before the signal");
    assert_eq!(counts[2], ("silver.stg_customers", None), "abandoned beside raw_orders");
    assert_eq!(counts[3], ("silver.stg_orders", None), "never started");
    for table in ["bronze.raw_orders", "silver.stg_customers"] {
        assert_eq!(step_files(&state, table), Vec::<PathBuf>::new(), "{table}: the abandoned step's files are deleted");
    }
    check_absent_or_complete_then_rerun(&project, &state);
}
