//! The `floe-host` command: parses the command line, calls the library and
//! maps every outcome to a stable exit code (see `floe_host::exit`).

use std::path::PathBuf;
use std::process::ExitCode as ProcessExit;

use clap::{Args, Parser, Subcommand};
use floe_host::config::{self, ConfigSource};
use floe_host::exit::ExitCode;
use floe_host::plan;
use floe_host::run::{self, RunOptions};
use floe_host::observe::{Observer, Observers};
use floe_host::observe::pipes::Pipes;
use floe_host::observe::summary::SummaryJson;
use floe_host::show;
use floe_host::plugin_tool;

mod plugin_tool_text;

/// Runs lakehouse pipelines (bronze → silver → gold) whose logic ships as
/// sandboxed WebAssembly components, on DuckDB and Iceberg.
///
/// Exit codes: 0 success, 1 a step failed (retryable), 2 configuration or
/// usage error, 3 a plugin violated its sandbox or contract, 130/143 stopped by
/// SIGINT/SIGTERM at a safe point (nothing half-visible; rerun to finish).
#[derive(Parser, Debug)]
#[command(name = "floe-host", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: `text` for people, `json` (one object per line)
    /// for log collectors; `auto` picks text on a terminal, JSON elsewhere.
    /// The level comes from FLOE_LOG (default: `floe_host=info,warn`).
    #[arg(long, global = true, env = "FLOE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the pipeline: ingest, transform and commit every step in dependency order.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Check both configuration files and everything they refer to. Exit 0 or 2.
    Validate {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Print the resolved plan: steps in order, targets, inputs and plugins.
    /// Secrets are shown as `***`.
    Plan {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the first rows of a pipeline table, read through its catalog.
    Show {
        /// The table as `layer.name`, for example `gold.customer_totals`.
        table: String,
        #[command(flatten)]
        config: ConfigArgs,
        /// How many rows to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Tools for plugin authors: inspect, scaffold and try components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// JSON Schemas of the configuration files, for editors.
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
    /// Create a small working project (the demo pipeline on a few rows) in DIR.
    Init {
        /// The new project's directory.
        dir: PathBuf,
        /// The csv-ingest component to copy in [default: found next to the
        /// binary, in $FLOE_PLUGIN_DIST or in the source tree].
        #[arg(long)]
        plugin: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum PluginCommand {
    /// Describe a component: its world, metadata, config schema, imports and exports.
    Inspect {
        /// The `.wasm` component.
        wasm: PathBuf,
    },
    /// Create a ready-to-build transform plugin crate NAME (on the floe plugin SDK).
    New {
        /// Crate name, for example `upper-case`.
        name: String,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The SDK crate (floe-host's plugins/sdk) [default: the one this binary was built from].
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Run a component on a local file, in the same sandbox as a pipeline.
    /// Ingest plugins get the file's bytes; transforms get it as Arrow (CSV or
    /// Parquet, read by DuckDB), named `trial.input` in SQL mode.
    Test {
        /// The `.wasm` component.
        wasm: PathBuf,
        /// The input file.
        #[arg(long)]
        input: PathBuf,
        /// A plugin config entry, repeatable: `--config key=value`.
        #[arg(long = "config", value_parser = parse_key_value)]
        config: Vec<(String, String)>,
        /// Rows to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Also write the whole output to this Parquet file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{text}` is not key=value"))
}

#[derive(Subcommand, Debug)]
enum SchemaCommand {
    /// Print the JSON Schema of one file, or write both to a directory.
    Export {
        /// Which file: `floe` or `platform`.
        #[arg(value_parser = ["floe", "platform"], required_unless_present = "out_dir")]
        file: Option<String>,
        /// Write `floe.schema.json` and `platform.schema.json` here instead.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

/// Runtime behaviour of `run` (pipeline meaning lives in the config files).
#[derive(Args, Debug)]
struct RunArgs {
    /// Id recorded in every snapshot summary (generated when absent).
    #[arg(long, env = "FLOE_RUN_ID")]
    run_id: Option<String>,
    /// Write a JSON summary of the run (per step: rows, bytes, duration, snapshot) to this file.
    #[arg(long)]
    summary_json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ConfigArgs {
    /// Project directory holding floe.yaml.
    #[arg(default_value = ".")]
    project: PathBuf,
    /// The pipeline file, instead of PROJECT/floe.yaml.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// The platform file. Without it: $FLOE_PLATFORM_FILE, then
    /// platform/$FLOE_PLATFORM_ENV/platform.yaml, then the embedded default
    /// (a SQLite Iceberg catalog and warehouse under the state directory).
    #[arg(long)]
    platform: Option<PathBuf>,
    #[arg(long, env = "FLOE_PLATFORM_FILE", hide = true)]
    platform_file_env: Option<PathBuf>,
    #[arg(long, env = "FLOE_PLATFORM_ENV", hide = true)]
    platform_env: Option<String>,
    /// Where the embedded default keeps its catalog and warehouse
    /// [default: .floe next to floe.yaml].
    #[arg(long, env = "FLOE_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Where `secret_ref` files are read from, after environment variables.
    #[arg(long, env = "FLOE_SECRETS_DIR", default_value = config::DEFAULT_SECRETS_DIR)]
    secrets_dir: PathBuf,
}

impl ConfigArgs {
    fn source(&self) -> ConfigSource {
        ConfigSource {
            floe: self.file.clone().unwrap_or_else(|| self.project.clone()),
            platform: self.platform.clone(),
            platform_file_env: self.platform_file_env.clone(),
            platform_env: self.platform_env.clone(),
            state_dir: self.state_dir.clone(),
        }
    }
}

fn main() -> ProcessExit {
    let cli = Cli::parse();
    let mut telemetry = init_logging(cli.log_format);
    let code = match cli.command {
        Command::Validate { config } => load_plan(&config).map(|plan| {
            println!("ok: {} steps", plan.steps.len());
            ExitCode::Success
        }),
        Command::Plan { config, json } => load_plan(&config).map(|plan| {
            if json {
                println!("{}", serde_json::to_string_pretty(&plan).expect("a plan serializes"));
            } else {
                print!("{}", plan.render());
            }
            ExitCode::Success
        }),
        Command::Schema { command: SchemaCommand::Export { file, out_dir } } => Ok(export_schema(file, out_dir)),
        Command::Plugin { command } => Ok(plugin_command(command)),
        Command::Init { dir, plugin } => Ok(match floe_host::init::init(&dir, plugin.as_deref()) {
            Ok(files) => {
                for file in files {
                    println!("created {}", file.display());
                }
                println!("next: floe-host run {}", dir.display());
                ExitCode::Success
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::Config
            }
        }),
        Command::Show { config, table, limit } => load_plan(&config).map(|plan| match show::show(&plan, &table, limit) {
            Ok(text) => {
                print!("{text}");
                ExitCode::Success
            }
            Err(error) => {
                eprintln!("error: {error}");
                match error {
                    show::ShowError::UnknownTable { .. } => ExitCode::Config,
                    show::ShowError::Run(e) => e.exit_code(),
                }
            }
        }),
        Command::Run { config, run: args } => load_plan(&config).map(|plan| {
            telemetry.start(&plan.observability);
            let Some((plan, pipes)) = dagster_pipes(plan) else { return ExitCode::Config };
            let options = RunOptions {
                run_id: args.run_id.clone(),
                component_cache: Some(plan.state_dir.join("component-cache")),
                cancel: Default::default(),
            };
            // SIGTERM/SIGINT stop the run at its next safe point (run/cancel.rs).
            if let Err(error) = options.cancel.install_signal_handlers() {
                tracing::warn!(%error, "Cannot install the SIGTERM/SIGINT handlers; a signal will kill the run outright.");
            }
            let mut observers = observers(&plan, &args, pipes);
            match run::run(&plan, &options, &mut observers) {
                Ok(report) => {
                    print!("{}", run::summary_table(&report));
                    ExitCode::Success
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    error.exit_code()
                }
            }
        }),
    };
    let code = code.unwrap_or_else(|errors| {
        eprintln!("{errors}");
        ExitCode::Config
    });
    // Every path ends here: send the last spans, whether the run succeeded or not.
    telemetry.shutdown();
    ProcessExit::from(code.code() as u8)
}

/// The reporters of a run, from the platform's `observability` and the flags.
/// Each reporter adds itself below its own marker line.
fn observers(plan: &plan::Plan, args: &RunArgs, pipes: Option<Pipes>) -> Observers {
    let mut list: Vec<Box<dyn Observer>> = Vec::new();
    // Dagster Pipes: set up by `dagster_pipes` in the Run branch, since it also selects the steps.
    list.extend(pipes.map(|p| Box::new(p) as Box<dyn Observer>));
    // [observers: openlineage]
    if let Some(lineage) = floe_host::observe::lineage::LineageObserver::from_plan(plan) {
        list.push(Box::new(lineage));
    }
    if let Some(path) = &args.summary_json {
        list.push(Box::new(SummaryJson::new(path.clone())));
    }
    let _ = (plan, args);
    Observers(list)
}

/// When Dagster launched this process (Dagster Pipes): its observer, and the
/// plan narrowed to the selected assets. `None` when the context cannot be
/// honoured (reported to Dagster and on stderr): a configuration error.
fn dagster_pipes(plan: plan::Plan) -> Option<(plan::Plan, Option<Pipes>)> {
    floe_host::observe::pipes::start(plan).map_err(|error| eprintln!("error: {error}")).ok()
}

fn load_plan(config: &ConfigArgs) -> Result<plan::Plan, config::ConfigErrors> {
    let project = config::load(&config.source())?;
    let secrets = config::SecretSource { secrets_dir: config.secrets_dir.clone(), ..Default::default() };
    let plan = plan::build(&project, &secrets)?;
    tracing::debug!(?plan, "Resolved the plan.");
    Ok(plan)
}

fn plugin_command(command: PluginCommand) -> ExitCode {
    match command {
        PluginCommand::Inspect { wasm } => {
            let result = std::fs::read(&wasm).map_err(|e| e.to_string()).and_then(|bytes| {
                let sandbox = floe_host::sandbox::Sandbox::new(Default::default(), None).map_err(|e| e.to_string())?;
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
        PluginCommand::New { name, dir, sdk } => match plugin_tool::scaffold(&name, &dir, sdk.as_deref()) {
            Ok(files) => {
                for file in &files {
                    println!("created {}", file.display());
                }
                println!("next: cd {} && cargo build --release --target wasm32-wasip2", dir.join(&name).display());
                ExitCode::Success
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::Config
            }
        },
        PluginCommand::Test { wasm, input, config, limit, out } => {
            let config = config.into_iter().collect();
            match plugin_tool::trial(&wasm, &input, &config, Default::default()) {
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
                    if error.is_contract_violation() { ExitCode::PluginViolation } else { ExitCode::StepFailed }
                }
            }
        }
    }
}

fn export_schema(file: Option<String>, out_dir: Option<PathBuf>) -> ExitCode {
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

/// The OpenTelemetry layer slot: empty until a run's plan asks for traces.
type TraceLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// Installs the stderr log subscriber, with an (empty) slot for the
/// OpenTelemetry layer that [`Telemetry::start`] fills.
fn init_logging(format: LogFormat) -> Telemetry {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{filter::{filter_fn, FilterExt}, reload};
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("floe_host=info,warn"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    // The OpenTelemetry layer sees the host's spans whatever FLOE_LOG says;
    // the log layer sees events only, so log lines carry no span context.
    let (traces, handle) = reload::Layer::new(None::<TraceLayer>);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    let events_only = filter_fn(|meta| meta.is_event());
    let logs: Box<dyn tracing_subscriber::Layer<_> + Send + Sync> = if json {
        fmt.json().flatten_event(true).with_current_span(false).with_span_list(false).with_filter(FilterExt::and(filter, events_only)).boxed()
    } else {
        fmt.with_filter(FilterExt::and(filter, events_only)).boxed()
    };
    tracing_subscriber::registry().with(traces.with_filter(floe_host::observe::traces::targets())).with(logs).init();
    Telemetry { handle, provider: None }
}

/// The trace exporter of this process, if any. [`Telemetry::shutdown`] flushes
/// it; `main` calls it on every path, and dropping it flushes too (a panic).
struct Telemetry {
    handle: tracing_subscriber::reload::Handle<Option<TraceLayer>, tracing_subscriber::Registry>,
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Starts exporting spans when the platform asks for traces. A failure
    /// to set up the exporter is reported and the run goes on without it.
    fn start(&mut self, observability: &floe_host::config::Observability) {
        if !observability.traces {
            return;
        }
        #[cfg(feature = "otlp")]
        match floe_host::observe::traces::otlp_provider(observability.otlp_endpoint.as_deref()) {
            Ok(provider) => {
                let layer: TraceLayer = Box::new(floe_host::observe::traces::layer(&provider));
                match self.handle.reload(Some(layer)) {
                    Ok(()) => self.provider = Some(provider),
                    Err(error) => tracing::warn!(%error, "Cannot install the trace exporter; the run goes on without traces."),
                }
            }
            Err(error) => tracing::warn!(%error, "Cannot export traces; the run goes on without them."),
        }
        #[cfg(not(feature = "otlp"))]
        tracing::warn!("`observability.traces` is set, but this floe-host was built without the `otlp` feature; no traces are sent.");
    }

    /// Flushes and stops the exporter (waits for the last batch to be sent).
    fn shutdown(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = self.handle.reload(None);
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "Cannot flush the last traces.");
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.shutdown();
    }
}
