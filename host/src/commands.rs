//! What the subcommands do beyond one library call: loading the plan,
//! assembling a run's reporters, the `plugin` and `schema` commands.

use std::path::PathBuf;

use floe_host::config;
use floe_host::exit::ExitCode;
use floe_host::observe::pipes::Pipes;
use floe_host::observe::summary::SummaryJson;
use floe_host::observe::{Observer, Observers};
use floe_host::plan;
use floe_host::plugin_tool;

use crate::cli::{ConfigArgs, PluginCommand, RunArgs};
use crate::plugin_tool_text;
use floe_host::observe::RunInfo;

/// The reporters of a run or a maintenance, from the platform's
/// `observability` and the `--summary-json` flag.
pub fn observers(plan: &plan::Plan, summary_json: Option<&PathBuf>, pipes: Option<Pipes>) -> Observers {
    let mut list: Vec<Box<dyn Observer>> = Vec::new();
    // Dagster Pipes: set up by `dagster_pipes` in the Run branch, since it also selects the steps.
    list.extend(pipes.map(|p| Box::new(p) as Box<dyn Observer>));
    if let Some(lineage) = floe_host::observe::lineage::LineageObserver::from_plan(plan) {
        list.push(Box::new(lineage));
    }
    if let Some(path) = summary_json {
        list.push(Box::new(SummaryJson::new(path.clone())));
    }
    Observers(list)
}

/// The plan of this run: narrowed to the selected assets when Dagster
/// launched this process (Dagster Pipes, with its observer), and bound to the
/// run's partition (`--partition`, or the context's partition key). `None`
/// when that fails (reported on stderr, and to Dagster): a usage error.
pub fn prepare_run(plan: plan::Plan, args: &RunArgs) -> Option<(plan::Plan, Option<Pipes>, Option<String>)> {
    let (plan, pipes) = floe_host::observe::pipes::start(plan, args.partition.as_deref())
        .map_err(|error| crate::logging::report_error(&error.to_string(), ExitCode::Config, Default::default()))
        .ok()?;
    // `--select`/`--exclude`, within what Dagster selected.
    let plan = match args.selection.apply(plan) {
        Ok(plan) => plan,
        Err(error) => {
            crate::logging::report_error(&error.to_string(), ExitCode::Config, Default::default());
            if let Some(pipes) = pipes {
                pipes.refuse(&error.to_string());
            }
            return None;
        }
    };
    let partition = pipes.as_ref().and_then(|p| p.partition().map(str::to_string)).or_else(|| args.partition.clone());
    match plan.for_partition(partition.as_deref()) {
        Ok(plan) => Some((plan, pipes, partition)),
        Err(error) => {
            crate::logging::report_error(&error.to_string(), ExitCode::Config, Default::default());
            if let Some(pipes) = pipes {
                pipes.refuse(&error.to_string());
            }
            None
        }
    }
}

/// The plan of a maintenance, narrowed to the assets Dagster selected when
/// it launched this process, with its Pipes session; and the maintenance's
/// identity for the reporters. `None` after a usage error (reported).
pub fn prepare_maintenance(plan: plan::Plan) -> Option<(plan::Plan, Option<Pipes>, RunInfo)> {
    let (plan, pipes) = floe_host::observe::pipes::start(plan, None)
        .map_err(|error| crate::logging::report_error(&error.to_string(), ExitCode::Config, Default::default()))
        .ok()?;
    let run = RunInfo {
        run_id: floe_host::maintain::new_run_id(),
        pipeline: plan.pipeline.clone(),
        started_at: std::time::SystemTime::now(),
        partition: None,
        parent: pipes.as_ref().and_then(|p| p.parent_run()),
    };
    Some((plan, pipes, run))
}

pub fn load_plan(config: &ConfigArgs) -> Result<plan::Plan, config::ConfigErrors> {
    let project = config::load(&config.source())?;
    let secrets = config::SecretSource { secrets_dir: config.secrets_dir.clone(), ..Default::default() };
    let plan = plan::build(&project, &secrets)?;
    for warning in &plan.warnings {
        tracing::warn!("{warning}");
    }
    tracing::debug!(?plan, "Resolved the plan.");
    Ok(plan)
}

/// Plugins compile in a bounded child of this executable; if its path cannot
/// be found, in process (with a warning, since compilation is then unbounded).
pub fn compiler() -> floe_host::sandbox::Compiler {
    match std::env::current_exe() {
        Ok(exe) => floe_host::sandbox::Compiler::Child(exe),
        Err(error) => {
            tracing::warn!(%error, "Cannot find the floe-host executable; plugins compile in process, without compile limits.");
            floe_host::sandbox::Compiler::InProcess
        }
    }
}

/// Where `plugin inspect` and `plugin test` keep compiled components, so
/// that a plugin author's second call does not compile again:
/// `$XDG_CACHE_HOME/floe-host/component-cache`, else `~/.cache/…`. `None`
/// (compile every time) when neither variable is set.
pub fn tool_component_cache() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|home| PathBuf::from(home).join(".cache"))
    })?;
    Some(base.join("floe-host").join("component-cache"))
}

pub fn plugin_command(command: PluginCommand) -> ExitCode {
    match command {
        PluginCommand::Inspect { wasm } => {
            let result = std::fs::read(&wasm).map_err(|e| e.to_string()).and_then(|bytes| {
                let cache = tool_component_cache();
                let sandbox = floe_host::sandbox::Sandbox::with_compiler(Default::default(), cache, compiler())
                    .map_err(|e| e.to_string())?;
                let name = wasm.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin");
                sandbox.inspect(name, &bytes).map_err(|e| e.to_string())
            });
            match result {
                Ok(inspection) => {
                    println!("{}", plugin_tool_text::inspection(&wasm, &inspection));
                    if inspection.world.is_some() { ExitCode::Success } else { ExitCode::PluginViolation }
                }
                Err(error) => {
                    eprintln!("error: {}: {error}", wasm.display());
                    ExitCode::Config
                }
            }
        }
        PluginCommand::New { name, kind, lang, dir, sdk } => {
            let lang = floe_host::plugin_tool::Lang::from(lang);
            match plugin_tool::scaffold(&name, kind.into(), lang, &dir, sdk.as_deref()) {
                Ok(files) => {
                    let root = dir.join(&name);
                    let (source, build) = match lang {
                        floe_host::plugin_tool::Lang::Rust => {
                            ("src/lib.rs", "cargo build --release --target wasm32-wasip2")
                        }
                        floe_host::plugin_tool::Lang::Js => ("src/plugin.js", "npm ci && npm run build"),
                        floe_host::plugin_tool::Lang::Python => {
                            ("app.py", "pip install -r requirements.txt && sh build.sh")
                        }
                    };
                    println!("created {} ({} files; the plugin is {source})", root.display(), files.len());
                    println!("next: cd {} && {build}", root.display());
                    println!("      then see README.md to try it with `floe-host plugin test`");
                    ExitCode::Success
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::Config
                }
            }
        }
        PluginCommand::Test { wasm, input, config, limit, out } => {
            // Arguments first: a wrong `--out` costs no compile and no run.
            if let Some(out) = &out
                && let Err(problem) = plugin_tool::check_output_path(out)
            {
                eprintln!("error: --out {}: {problem}", out.display());
                return ExitCode::Config;
            }
            let config = config.into_iter().collect();
            match plugin_tool::trial(&wasm, &input, &config, Default::default(), compiler(), tool_component_cache()) {
                Ok(output) => {
                    print!("{}", plugin_tool_text::trial(&output, limit));
                    if let Some(out) = out {
                        if let Err(error) = plugin_tool_text::write_parquet(&out, &output) {
                            eprintln!("error: cannot write {}: {error}", out.display());
                            return ExitCode::StepFailed;
                        }
                        println!("wrote {}", out.display());
                    }
                    ExitCode::Success
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    error.exit_code()
                }
            }
        }
    }
}

pub fn export_schema(file: Option<String>, out_dir: Option<PathBuf>) -> ExitCode {
    let schemas = [("floe", config::pipeline_schema()), ("platform", config::platform_schema())];
    match out_dir {
        Some(dir) => {
            for (name, schema) in schemas {
                let path = dir.join(format!("{name}.schema.json"));
                let text = serde_json::to_string_pretty(&schema).expect("a schema serializes") + "\n";
                if let Err(error) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
                    eprintln!("error: cannot write {}: {error}", path.display());
                    return ExitCode::Config;
                }
                println!("wrote {}", path.display());
            }
        }
        None => {
            let wanted = file.unwrap_or_default();
            for (name, schema) in schemas {
                if name == wanted {
                    println!("{}", serde_json::to_string_pretty(&schema).expect("a schema serializes"));
                }
            }
        }
    }
    ExitCode::Success
}
