//! The `floe-host` command: parses the command line, calls the library and
//! maps every outcome to a stable exit code (see `floe_host::exit`).

mod cli;
mod commands;
mod logging;
mod plugin_tool_text;

use std::process::ExitCode as ProcessExit;

use clap::Parser;
use floe_host::exit::ExitCode;
use floe_host::run::{self, RunOptions};
use floe_host::show;

use cli::{Cli, Command, SchemaCommand};
use commands::{export_schema, load_plan, observers, plugin_command, prepare_run};
use logging::init_logging;

fn main() -> ProcessExit {
    // A compile child (sandbox/compile.rs): not a command users type, so it
    // is dispatched before the command line is parsed and never listed.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(floe_host::sandbox::COMPILE_CHILD_ARG) {
        return ProcessExit::from(floe_host::sandbox::compile_child_main(&args[2..]) as u8);
    }
    // A SQL worker (compute/worker), the same way.
    if args.get(1).map(String::as_str) == Some(floe_host::compute::WORKER_CHILD_ARG) {
        return ProcessExit::from(floe_host::compute::worker_child_main(&args[2..]) as u8);
    }
    // Not dumpable: another process of the same user (a SQL worker whose
    // DuckDB a hostile query took over) cannot read the host's memory,
    // environment (credentials) or descriptors through /proc, nor attach to
    // it, and no core dump holds its secrets. (A child's exec resets it.)
    // SAFETY: PR_SET_DUMPABLE takes 0 or 1 and affects only this process.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let cli = Cli::parse();
    let mut telemetry = init_logging(cli.log_format);
    let code = match cli.command {
        Command::Validate { config, offline } => load_plan(&config).map(|plan| {
            // The plugins too: each loads, and each step's config fits its schema.
            let options = RunOptions {
                component_cache: Some(plan.component_cache()),
                compiler: commands::compiler(),
                ..Default::default()
            };
            if let Err(error) = run::check_plugins(&plan, &options) {
                return fail(&error.to_string(), error.exit_code());
            }
            // The models: parsed by DuckDB, and bound where their inputs'
            // columns are known (see run::model_check).
            let columns = if offline { Ok(Default::default()) } else { run::input_columns::for_validate(&plan) };
            let columns = match columns {
                Ok((columns, notes)) => {
                    for note in notes {
                        tracing::warn!("{note}");
                    }
                    columns
                }
                Err(error) => return fail(&error.to_string(), error.exit_code()),
            };
            match run::model_check::check(&plan, &columns) {
                Ok(checked) if checked.parsed > 0 => {
                    out(&format!(
                        "ok: {} steps; {} SQL models parsed, {} bound against their inputs\n",
                        plan.steps.len(),
                        checked.parsed,
                        checked.bound.len()
                    ));
                    ExitCode::Success
                }
                Ok(_) => {
                    out(&format!("ok: {} steps\n", plan.steps.len()));
                    ExitCode::Success
                }
                Err(problems) => fail(&problems.join("\n"), ExitCode::Config),
            }
        }),
        Command::Plan { config, select, json } => load_plan(&config).map(|plan| {
            let plan = match select.apply(plan) {
                Ok(plan) => plan,
                Err(error) => return fail(&error.to_string(), ExitCode::Config),
            };
            if json {
                out(&format!("{}\n", serde_json::to_string_pretty(&plan).expect("a plan serializes")));
            } else {
                out(&plan.render());
            }
            ExitCode::Success
        }),
        Command::Maintain { config, tables, dry_run, json, summary_json } => load_plan(&config).map(|plan| {
            telemetry.start(&plan.observability);
            let Some((plan, pipes, run)) = commands::prepare_maintenance(plan) else { return ExitCode::Config };
            let mut observers = observers(&plan, summary_json.as_ref(), pipes);
            match floe_host::maintain::maintain(&plan, &tables, dry_run, &run, &mut observers) {
                Ok(maintained) if json => {
                    let report = serde_json::json!({"dry_run": dry_run, "tables": maintained});
                    out(&format!("{}\n", serde_json::to_string_pretty(&report).expect("a report serializes")));
                    ExitCode::Success
                }
                Ok(maintained) => {
                    out(&floe_host::maintain::render(&maintained, dry_run));
                    ExitCode::Success
                }
                Err(error) => fail(&error.to_string(), error.exit_code()),
            }
        }),
        Command::Schema { command: SchemaCommand::Export { file, out_dir } } => Ok(export_schema(file, out_dir)),
        Command::Version => Ok(match floe_host::compute::engine_report() {
            Ok((duckdb, extensions)) => {
                let mut text = format!(
                    "floe-host {}\nduckdb {duckdb}\nextensions (loaded or installed; STATICALLY_LINKED = compiled in):\n",
                    env!("CARGO_PKG_VERSION")
                );
                for (name, loaded, _, mode) in extensions {
                    let state = if loaded { "loaded" } else { "not loaded" };
                    text.push_str(&format!("  {name:<16} {state:<11} {mode}\n"));
                }
                out(&text);
                ExitCode::Success
            }
            Err(error) => fail(&error.to_string(), ExitCode::StepFailed),
        }),
        Command::Plugin { command } => Ok(plugin_command(command)),
        Command::Init { dir, plugin } => Ok(match floe_host::init::init(&dir, plugin.as_deref()) {
            Ok(files) => {
                for file in files {
                    println!("created {}", file.display());
                }
                println!("next: floe-host run {}", dir.display());
                ExitCode::Success
            }
            Err(error) => fail(&error.to_string(), ExitCode::Config),
        }),
        Command::Show { config, table, limit } => load_plan(&config).map(|plan| match show::show(&plan, &table, limit) {
            Ok(text) => {
                out(&text);
                ExitCode::Success
            }
            Err(error) => {
                let code = match &error {
                    show::ShowError::UnknownTable { .. } => ExitCode::Config,
                    show::ShowError::Run(e) => e.exit_code(),
                };
                fail(&error.to_string(), code)
            }
        }),
        Command::Run { config, run: args } => load_plan(&config).map(|plan| {
            telemetry.start(&plan.observability);
            let Some((plan, pipes, partition)) = prepare_run(plan, &args) else { return ExitCode::Config };
            // Chosen here rather than by the run, so that the final error names it too.
            let run_id = args
                .run_id
                .clone()
                .or_else(|| pipes.as_ref().and_then(|p| p.floe_run_id().map(str::to_string)))
                .unwrap_or_else(run::new_run_id);
            let options = RunOptions {
                run_id: Some(run_id.clone()),
                component_cache: Some(plan.component_cache()),
                compiler: commands::compiler(),
                cancel: Default::default(),
                partition,
                parent: pipes.as_ref().and_then(|p| p.parent_run()),
            };
            // SIGTERM/SIGINT stop the run at its next safe point (run/cancel.rs).
            if let Err(error) = options.cancel.install_signal_handlers() {
                tracing::warn!(%error, "Cannot install the SIGTERM/SIGINT handlers; a signal will kill the run outright.");
            }
            let mut observers = observers(&plan, args.summary_json.as_ref(), pipes);
            match run::run(&plan, &options, &mut observers) {
                Ok(report) => {
                    out(&run::summary_table(&report));
                    ExitCode::Success
                }
                Err(error) => {
                    let code = error.exit_code();
                    let step = error.step();
                    let table = step.and_then(|name| plan.steps.iter().find(|s| s.name.as_str() == name));
                    let table = table.map(|s| s.target.to_string());
                    let failure = logging::Failure {
                        run_id: Some(&run_id),
                        pipeline: Some(&plan.pipeline),
                        step,
                        table: table.as_deref(),
                    };
                    logging::report_error(&error.to_string(), code, failure);
                    code
                }
            }
        }),
    };
    let code = code.unwrap_or_else(|errors| fail(&errors.to_string(), ExitCode::Config));
    // Every path ends here: send the last spans, whether the run succeeded or not.
    telemetry.shutdown();
    ProcessExit::from(code.code() as u8)
}

/// Reports the error a command ends with (see [`logging::report_error`]) and
/// returns its exit code.
fn fail(message: &str, code: ExitCode) -> ExitCode {
    logging::report_error(message, code, Default::default());
    code
}

/// Writes a command's output to stdout. A reader that stops early (`| head`)
/// closes the pipe; that ends the output quietly rather than in a panic,
/// as `print!` would.
fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(error) => eprintln!("error: cannot write to stdout: {error}"),
    }
}
