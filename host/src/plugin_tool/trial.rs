//! `plugin test X.wasm --input FILE`: runs a component on a local file in the
//! pipeline's sandbox. An ingest plugin gets the file's bytes; a transform
//! gets the file read by DuckDB (CSV or Parquet) as the input `trial.input`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::compute::{ComputeError, Reads, Session, Setup, Worker};
use crate::config::DuckdbProperties;
use crate::exit::ExitCode;
use crate::sandbox::{Compiler, Limits, LoadedPlugin, Sandbox, SandboxError};

/// The name a transform's input has in `plugin test` (for SQL mode).
pub const TRIAL_INPUT: &str = "trial.input";

/// What a trial produced.
pub struct TrialOutput {
    pub world: &'static str,
    /// The SQL a SQL-mode plugin returned.
    pub sql: Option<String>,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// Why a trial failed.
#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Plugin(#[from] SandboxError),
    #[error("the component is not a floe plugin: {0}")]
    NotAPlugin(SandboxError),
    #[error("reading the input with DuckDB: {0}")]
    Input(#[source] ComputeError),
    #[error("running the plugin's SQL: {}", crate::sandbox::text::escape(&.0.to_string()))]
    Sql(#[source] ComputeError),
}

impl TrialError {
    /// The exit code `plugin test` ends with, as `run` would: 2 for a file
    /// that cannot be read or a config the plugin refuses, 3 for a contract
    /// violation, 4 for input the plugin calls invalid, else 1.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            TrialError::Read { .. } | TrialError::Plugin(SandboxError::InvalidConfig { .. }) => ExitCode::Config,
            TrialError::Plugin(SandboxError::InvalidInput { .. }) => ExitCode::DataRefused,
            error if error.is_contract_violation() => ExitCode::PluginViolation,
            _ => ExitCode::StepFailed,
        }
    }

    /// Whether the plugin (rather than the input) is at fault.
    pub fn is_contract_violation(&self) -> bool {
        match self {
            TrialError::Plugin(e) | TrialError::NotAPlugin(e) => e.is_contract_violation(),
            // The plugin's SQL is the plugin's, as in a run.
            TrialError::Sql(_) => true,
            _ => false,
        }
    }
}

/// Why `--out PATH` cannot be written, checked before anything runs: its
/// directory must exist and the path must not be a directory.
pub fn check_output_path(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("is a directory; name a file, for example out.parquet".to_string());
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(format!("the directory {} does not exist; create it first", parent.display()));
    }
    Ok(())
}

/// Runs the component at `wasm` on `input` with `config`. Compiled
/// components are kept in `cache_dir` when given. The input is checked before
/// the component is compiled, and the component is compiled once.
pub fn trial(
    wasm: &Path,
    input: &Path,
    config: &BTreeMap<String, String>,
    limits: Limits,
    compiler: Compiler,
    cache_dir: Option<PathBuf>,
) -> Result<TrialOutput, TrialError> {
    let read_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrialError::Read { path, source }
    };
    // Arguments first: a typo in `--input` costs no compile.
    let file = File::open(input).map_err(read_error(input))?;
    if file.metadata().map_err(read_error(input))?.is_dir() {
        return Err(read_error(input)(std::io::Error::other("it is a directory; pass a file")));
    }
    let bytes = std::fs::read(wasm).map_err(read_error(wasm))?;
    let name = wasm.file_stem().and_then(|s| s.to_str()).unwrap_or("plugin").to_string();
    let sandbox = Sandbox::with_compiler(limits.clone(), cache_dir, compiler)?;
    let (inspection, loaded) = sandbox.open(&name, &bytes)?;
    let step = "plugin test";
    let (world, loaded) = match (inspection.world, loaded) {
        (Some(world), Some(loaded)) => (world, loaded),
        _ => {
            return Err(TrialError::NotAPlugin(
                inspection.link_error.expect("a component that does not link says why"),
            ));
        }
    };
    match loaded {
        LoadedPlugin::Ingest(plugin) => {
            let mut batches = Vec::new();
            let source = input.display().to_string();
            let schema = plugin.ingest(step, config, &source, &mut BufReader::new(file), &mut |b| {
                batches.push(b);
                Ok(())
            })?;
            Ok(TrialOutput { world, sql: None, schema, batches })
        }
        LoadedPlugin::Transform(plugin) => {
            let session = Session::open(&DuckdbProperties::default()).map_err(TrialError::Input)?;
            let reader = match input.extension().and_then(|e| e.to_str()) {
                Some("parquet") => "read_parquet",
                _ => "read_csv",
            };
            let path = input.display().to_string().replace('\'', "''");
            let (input_schema, input_batches) =
                session.query(&format!("SELECT * FROM {reader}('{path}')")).map_err(TrialError::Input)?;
            if let Some(sql) = plugin.sql(step, config, &[TRIAL_INPUT.to_string()])? {
                let (schema_name, table) = TRIAL_INPUT.split_once('.').expect("a qualified name");
                let mut batches = Vec::new();
                let mut keep = |b| {
                    batches.push(b);
                    Ok(())
                };
                // As in a run: the plugin's SQL sees its input table and
                // nothing else, in a SQL worker when there is an executable
                // to start one.
                let schema = if let Some(exe) = sandbox.child_executable() {
                    let mut setup = Setup::default();
                    setup.properties.temp_directory =
                        Some(std::env::temp_dir().join("floe-duckdb-tmp").display().to_string());
                    let mut worker = Worker::start(exe, &setup, sandbox.worker_limits()).map_err(TrialError::Input)?;
                    worker.begin_table(schema_name, table, &input_schema).map_err(TrialError::Input)?;
                    for batch in &input_batches {
                        worker.append(batch).map_err(TrialError::Input)?;
                    }
                    worker.end_table().map_err(TrialError::Input)?;
                    worker.select(&sql, &[], limits.step_timeout, &mut keep).map_err(TrialError::Sql)?
                } else {
                    session.load_table(schema_name, table, &input_schema, input_batches).map_err(TrialError::Input)?;
                    session.lock_down(&[], &[]).map_err(TrialError::Input)?;
                    session.stream_select(&sql, Reads::InputsOnly, None, &mut keep).map_err(TrialError::Sql)?
                };
                return Ok(TrialOutput { world, sql: Some(sql), schema, batches });
            }
            let mut batches = Vec::new();
            let schema = plugin.transform(step, config, &input_schema, &mut input_batches.into_iter(), &mut |b| {
                batches.push(b);
                Ok(())
            })?;
            Ok(TrialOutput { world, sql: None, schema, batches })
        }
    }
}
