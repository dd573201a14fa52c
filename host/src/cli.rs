//! The command line: every subcommand and flag, with the doc comments that
//! `--help` prints. Parsing only; `main` and `commands` act on it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use floe_host::config::{self, ConfigSource};

/// Runs lakehouse pipelines (bronze → silver → gold) whose logic ships as
/// sandboxed WebAssembly components, on DuckDB and Iceberg.
///
/// Exit codes: 0 success, 1 a step failed (retryable), 2 configuration or
/// usage error, 3 a plugin violated its sandbox or contract, 4 the data was
/// refused (an empty source, an output that would shrink a table past
/// `max_shrink`, input a plugin calls invalid, a corrupt table file), 130/143 stopped by
/// SIGINT/SIGTERM at a safe point (nothing half-visible; rerun to finish).
#[derive(Parser, Debug)]
#[command(name = "floe-host", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr: `text` for people, `json` (one object per line)
    /// for log collectors; `auto` picks text on a terminal, JSON elsewhere.
    /// The level comes from FLOE_LOG (default: `floe_host=info,warn`).
    #[arg(long, global = true, env = "FLOE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the pipeline: ingest, transform and commit every step in dependency order.
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Check both configuration files and everything they refer to, plugins
    /// included: each is compiled (or taken from the compile cache) and each
    /// step's `config` is checked against the schema its plugin declares.
    /// Every SQL model is rendered, parsed by DuckDB, and bound against the
    /// columns of its inputs: other models' outputs, and the tables the
    /// catalog holds already (metadata only). Reads no data. Exit 0; 2 for a
    /// configuration error (every one is listed, with file:line:col); 3 for a
    /// plugin that does not compile or link.
    Validate {
        #[command(flatten)]
        config: ConfigArgs,
        /// Do not open the catalogs: models that read tables which no model
        /// writes are parsed, not bound. For CI without catalog access.
        #[arg(long)]
        offline: bool,
    },
    /// Keep the pipeline's tables healthy, per each layer's maintenance
    /// policy in platform.yaml: expire snapshots older than the retention
    /// (all but the `keep_last` newest) and delete the files only they
    /// referenced; compact each partition's small files into files of the
    /// target size and merge the manifests (each a `replace` snapshot that
    /// changes no row); delete orphan files (no snapshot references them)
    /// older than the orphan age. Safe beside running writers. Exit 0; 2 for
    /// an unknown --table or a bad policy.
    Maintain {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only this table (`layer.name`); repeat for several. Default: every table of the pipeline.
        #[arg(long = "table", value_name = "LAYER.NAME")]
        tables: Vec<String>,
        /// Report what would be expired, deleted, compacted and merged, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON: one object per table.
        #[arg(long)]
        json: bool,
        /// Also write the report, with the maintenance's id, status and exit
        /// code, as JSON to this file (replaced whole, on success or failure).
        #[arg(long, value_name = "FILE")]
        summary_json: Option<PathBuf>,
    },
    /// Print the resolved plan: steps in order, targets, inputs and plugins.
    /// Secrets are shown as `***`.
    Plan {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        select: SelectArgs,
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
    /// Versions: floe-host, and the DuckDB in it with the extensions it has
    /// loaded or installed (a release build has parquet and json compiled in
    /// and never installs one at run time).
    Version,
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
pub enum PluginCommand {
    /// Describe a component: its world, metadata, config schema, imports and exports.
    /// Compiled components are kept in $XDG_CACHE_HOME/floe-host/component-cache
    /// (else ~/.cache/floe-host/component-cache), shared with `plugin test`.
    Inspect {
        /// The `.wasm` component.
        wasm: PathBuf,
    },
    /// Create a ready-to-build plugin project NAME on the floe plugin SDK,
    /// in Rust (a crate), JavaScript (a module) or Python (an app). The SDK
    /// and the WIT contract are copied in from this binary (under `vendor/`
    /// and `wit/`), so the project builds anywhere with only crates.io, npm
    /// or PyPI; its README has the two commands to build and try it.
    New {
        /// Crate name, for example `upper-case`.
        name: String,
        /// What the plugin does: `ingest` (bronze: raw bytes → Arrow),
        /// `transform` (streaming: Arrow → Arrow) or `sql` (returns a DuckDB
        /// query over its input).
        #[arg(long, value_enum, default_value_t = PluginKindArg::Transform)]
        kind: PluginKindArg,
        /// The language: `rust` (built with cargo for wasm32-wasip2), `js`
        /// (built with esbuild and componentize-js; Node.js 20.11 or newer)
        /// or `python` (built with componentize-py).
        #[arg(long, value_enum, default_value_t = PluginLangArg::Rust)]
        lang: PluginLangArg,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Rust only: depend on this SDK checkout (floe-host's plugins/sdk) instead of a copy.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Run a component on a local file, in the same sandbox as a pipeline.
    /// Ingest plugins get the file's bytes; transforms get it as Arrow (CSV or
    /// Parquet, read by DuckDB), named `trial.input` in SQL mode. The arguments
    /// are checked before the component is compiled (once, and cached like
    /// `plugin inspect`'s). Exit codes as for `run`: 2 a file or config
    /// problem, 3 the plugin broke its contract, 4 it refused the input.
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

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PluginLangArg {
    Rust,
    Js,
    Python,
}

impl From<PluginLangArg> for floe_host::plugin_tool::Lang {
    fn from(lang: PluginLangArg) -> Self {
        match lang {
            PluginLangArg::Rust => Self::Rust,
            PluginLangArg::Js => Self::Js,
            PluginLangArg::Python => Self::Python,
        }
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PluginKindArg {
    Ingest,
    Transform,
    Sql,
}

impl From<PluginKindArg> for floe_host::plugin_tool::Kind {
    fn from(kind: PluginKindArg) -> Self {
        match kind {
            PluginKindArg::Ingest => Self::Ingest,
            PluginKindArg::Transform => Self::Transform,
            PluginKindArg::Sql => Self::Sql,
        }
    }
}

pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{text}` is not key=value"))
}

#[derive(Subcommand, Debug)]
pub enum SchemaCommand {
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

/// Which steps `run` (and `plan`) take, in dbt's and Dagster's selector forms.
#[derive(Args, Debug, Default)]
pub struct SelectArgs {
    /// Only these steps: a step name (`stg_orders`), a table
    /// (`silver.stg_orders`, or Dagster's `silver/stg_orders`), `tag:NAME` or
    /// `layer:NAME`; `+X` adds the steps upstream of X, `X+` those downstream.
    /// Repeat the flag or separate selectors by spaces
    /// (`--select "+customer_totals daily_revenue"`). Tables the selected
    /// steps read must be selected too or exist already.
    #[arg(long, short = 's', value_name = "SELECTORS")]
    pub select: Vec<String>,
    /// Leave these steps out (the same forms as --select).
    #[arg(long, value_name = "SELECTORS")]
    pub exclude: Vec<String>,
}

impl SelectArgs {
    /// The plan narrowed to the selected steps (unchanged without selectors).
    pub fn apply(
        &self,
        plan: floe_host::plan::Plan,
    ) -> Result<floe_host::plan::Plan, floe_host::plan::select::SelectorError> {
        use floe_host::plan::select::Selector;
        let parse = |list: &[String]| -> Result<Vec<Selector>, _> {
            list.iter().flat_map(|v| v.split_whitespace()).map(Selector::parse).collect()
        };
        let (select, exclude) = (parse(&self.select)?, parse(&self.exclude)?);
        if select.is_empty() && exclude.is_empty() {
            return Ok(plan);
        }
        plan.select_steps(&select, &exclude)
    }
}

/// Runtime behaviour of `run` (pipeline meaning lives in the config files).
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub selection: SelectArgs,
    /// Id recorded in every snapshot summary (generated when absent).
    #[arg(long, env = "FLOE_RUN_ID")]
    pub run_id: Option<String>,
    /// Write a JSON summary of the run (per step: rows, bytes, duration, snapshot) to this file.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Replace one partition: every `mode: partition_overwrite` step replaces
    /// only this partition of its table (for example `2024-01-03` for
    /// `partition_by: [order_date]` or `["day(order_ts)"]`, `2024-01` for a
    /// month) and reads only this partition of inputs partitioned on the same
    /// column; `{partition}` in ingest sources becomes VALUE. Other steps run as
    /// usual. Under Dagster, the context's partition key sets it.
    #[arg(long, value_name = "VALUE")]
    pub partition: Option<String>,
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Project directory holding floe.yaml.
    #[arg(default_value = ".")]
    pub project: PathBuf,
    /// The pipeline file, instead of PROJECT/floe.yaml.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// The platform file. Without it: $FLOE_PLATFORM_FILE, then
    /// platform/$FLOE_PLATFORM_ENV/platform.yaml, then the embedded default
    /// (a SQLite Iceberg catalog and warehouse under the state directory).
    #[arg(long)]
    pub platform: Option<PathBuf>,
    #[arg(long, env = "FLOE_PLATFORM_FILE", hide = true)]
    pub platform_file_env: Option<PathBuf>,
    #[arg(long, env = "FLOE_PLATFORM_ENV", hide = true)]
    pub platform_env: Option<String>,
    /// Where the embedded default keeps its catalog and warehouse
    /// [default: .floe next to floe.yaml].
    #[arg(long, env = "FLOE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where `secret_ref` files are read from, after environment variables.
    #[arg(long, env = "FLOE_SECRETS_DIR", default_value = config::DEFAULT_SECRETS_DIR)]
    pub secrets_dir: PathBuf,
    /// Values for `{{ var('name') }}` in SQL models, as a YAML or JSON map
    /// (for example `'{start_date: 2024-01-01}'`); they override floe.yaml's `vars`.
    #[arg(long, value_name = "YAML")]
    pub vars: Option<String>,
}

impl ConfigArgs {
    pub fn source(&self) -> ConfigSource {
        ConfigSource {
            floe: self.file.clone().unwrap_or_else(|| self.project.clone()),
            platform: self.platform.clone(),
            platform_file_env: self.platform_file_env.clone(),
            platform_env: self.platform_env.clone(),
            state_dir: self.state_dir.clone(),
            vars: self.vars.clone(),
        }
    }
}
