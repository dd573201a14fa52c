//! `floe-bench models`: how long floe-host takes to load a dbt project,
//! render every model and check it with DuckDB, against `dbt parse` (real
//! dbt-core, from the test venv) on the same generated project, in the same
//! run (BENCHMARKS.md, "dbt models").
//!
//!   floe-bench models [--models 200] [--reps 3]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use floe_host::config::{ConfigSource, SecretSource};

use super::{Times, ms};

pub fn main(args: Vec<String>) {
    let mut models = 200usize;
    let mut reps = 3usize;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse().ok());
        match (arg.as_str(), value) {
            ("--models", Some(n)) => models = n,
            ("--reps", Some(n)) => reps = n,
            _ => {
                eprintln!("usage: floe-bench models [--models N] [--reps N]");
                std::process::exit(2)
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("floe-bench-models-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    generate(&dir, models);

    let mut load = Vec::new();
    let mut render = Vec::new();
    let mut check = Vec::new();
    let mut bound = 0;
    for _ in 0..reps {
        let started = Instant::now();
        let source = ConfigSource { floe: dir.clone(), state_dir: Some(dir.join(".floe")), ..Default::default() };
        let project = floe_host::config::load(&source).expect("the generated project loads");
        load.push(started.elapsed());
        let started = Instant::now();
        let plan = floe_host::plan::build(&project, &SecretSource::default()).expect("the generated project plans");
        render.push(started.elapsed());
        let started = Instant::now();
        let checked = floe_host::run::model_check::check(&plan, &Default::default()).expect("the models check");
        check.push(started.elapsed());
        bound = checked.bound.len();
    }
    let validate = validate(&dir, reps);
    let dbt = dbt_parse(&dir, reps);

    println!("# floe-bench models");
    println!();
    println!(
        "{models} generated models (a chain, each with `config`, two `ref`s, a `var` and a macro); {reps} \
         repetitions; build: {}",
        if cfg!(debug_assertions) { "debug assertions ON (not a release build)" } else { "optimised" }
    );
    println!();
    println!("| what | median | min |");
    println!("|---|---|---|");
    let row = |what: &str, times: &Times| println!("| {what} | {} | {} |", ms(times.median()), ms(times.min()));
    row("floe-host: read floe.yaml and the dbt project", &Times(load.clone()));
    row("floe-host: render every model, resolve refs, plan", &Times(render.clone()));
    row(&format!("floe-host: parse every model with DuckDB and bind {bound}"), &Times(check.clone()));
    let total: Vec<Duration> = (0..reps).map(|i| load[i] + render[i] + check[i]).collect();
    row("**floe-host: all of the above**", &Times(total.clone()));
    match &validate {
        Ok(times) => row("`floe-host validate`, whole process (the same, and reads the platform default)", times),
        Err(error) => println!("| `floe-host validate` | not measured: {error} | |"),
    }
    match dbt {
        Ok(times) => {
            row("`dbt parse` (dbt-core 1.11, no partial parse), whole process", &times);
            let ratio = Times(total).median().as_secs_f64() / times.median().as_secs_f64();
            println!();
            println!(
                "floe-host takes {ratio:.3}x the time of `dbt parse` (medians), and also parses and binds the SQL."
            );
        }
        Err(error) => println!("| `dbt parse` | not measured: {error} | |"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A floe.yaml with `models` dbt steps over a generated dbt project.
fn generate(dir: &Path, models: usize) {
    let write = |path: PathBuf, text: String| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let mut floe = String::from("name: bench-models\ndbt_project: dbt\nvars: {scale: 3}\ntransforms:\n");
    for i in 0..models {
        let layer = if i < models / 2 { "silver" } else { "gold" };
        floe.push_str(&format!("  - name: m{i:04}\n    type: dbt\n    schema: {layer}\n"));
        let sql = if i == 0 {
            format!(
                "{{{{ config(materialized='table', schema='{layer}') }}}}\nSELECT range AS id, range * 2 AS amount FROM range(100)\n"
            )
        } else {
            let other = i / 2;
            format!(
                "{{{{ config(materialized='table', schema='{layer}', tags=['t{}']) }}}}\n\
                 -- model {i}: joins its parent and an earlier model\n\
                 SELECT a.id, {{{{ scaled('a.amount') }}}} AS amount, b.amount AS other_amount\n\
                 FROM {{{{ ref('m{:04}') }}}} AS a\n\
                 LEFT JOIN {{{{ ref('m{other:04}') }}}} AS b ON a.id = b.id\n\
                 WHERE a.id % {{{{ var('scale') }}}} <> {}\n",
                i % 10,
                i - 1,
                i % 3
            )
        };
        write(dir.join(format!("dbt/models/{layer}/m{i:04}.sql")), sql);
    }
    write(dir.join("floe.yaml"), floe);
    write(
        dir.join("dbt/dbt_project.yml"),
        "name: bench_models\nversion: '1.0.0'\nprofile: bench\nmodel-paths: [models]\nmacro-paths: [macros]\n".into(),
    );
    write(
        dir.join("dbt/macros/scaled.sql"),
        "{% macro scaled(column) -%}\n    ({{ column }} * {{ var('scale') }})\n{%- endmacro %}\n".into(),
    );
    write(
        dir.join("dbt/macros/generate_schema_name.sql"),
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n    {%- if custom_schema_name is none -%}\
         {{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}\n{%- endmacro %}\n"
            .into(),
    );
    write(
        dir.join("profiles/profiles.yml"),
        format!(
            "bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {:?}\n      schema: main\n",
            dir.join("dbt.duckdb").display().to_string()
        ),
    );
}

/// `floe-host validate` on the project, the binary built next to this one.
fn validate(dir: &Path, reps: usize) -> Result<Times, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("floe-host");
    if !exe.exists() {
        return Err(format!("{} does not exist (cargo build -p floe-host)", exe.display()));
    }
    let mut times = Vec::new();
    for _ in 0..reps {
        let started = Instant::now();
        let output = Command::new(&exe).arg("validate").arg(dir).output().map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(format!("validate failed: {}", String::from_utf8_lossy(&output.stderr)));
        }
        times.push(started.elapsed());
    }
    Ok(Times(times))
}

/// `dbt parse` on the project, `reps` times, each a fresh process without
/// partial parsing (as a first `dbt parse` in a pod).
fn dbt_parse(dir: &Path, reps: usize) -> Result<Times, String> {
    let venv =
        std::env::var_os("FLOE_VENV").map(PathBuf::from).ok_or("FLOE_VENV is not set (source scripts/env.sh)")?;
    let dbt = venv.join("bin/dbt");
    if !dbt.exists() {
        return Err(format!("{} does not exist (run scripts/setup.sh)", dbt.display()));
    }
    let mut times = Vec::new();
    for _ in 0..reps {
        let started = Instant::now();
        let output = Command::new(&dbt)
            .args(["parse", "--no-partial-parse", "--no-version-check"])
            .arg("--project-dir")
            .arg(dir.join("dbt"))
            .arg("--profiles-dir")
            .arg(dir.join("profiles"))
            .arg("--target-path")
            .arg(dir.join("dbt-target"))
            .arg("--log-path")
            .arg(dir.join("dbt-logs"))
            .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
            .env("DO_NOT_TRACK", "1")
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(format!("dbt parse failed: {}", String::from_utf8_lossy(&output.stdout)));
        }
        times.push(started.elapsed());
    }
    Ok(Times(times))
}
