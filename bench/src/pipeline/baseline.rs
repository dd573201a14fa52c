//! The baselines: every step computed without floe-host, stage by stage from
//! Parquet to Parquet, each stage in its own child process (`floe-bench
//! __baseline SPEC`) so that its peak RSS is its own.
//!
//! - CSV ingest (csv-ingest): DuckDB `read_csv(all_varchar = true)` plus the
//!   record number `row_number() OVER ()` as `_row`, to Parquet. The same
//!   without `_row` is measured too, as a reference nothing reads.
//! - SQL model: the model's SQL, with each input a view over the Parquet file
//!   of the stage that made it.
//! - WASM transform in SQL mode (sql-filter): the SQL the plugin returns (asked
//!   in the parent, through the same sandbox), run the same way.
//! - Streaming WASM transform: the plugin's logic compiled natively (pii-mask:
//!   `native.rs` with the `sha2` crate; dedup: the same row encoding, in a
//!   std `HashSet`: natively nothing caps its memory, so it keeps the
//!   faster, larger set rather than the plugin SDK's compact `KeySet`),
//!   Parquet → Arrow batches of 65,536 rows → Parquet.
//!
//! DuckDB gets the same `memory_limit`, `threads` and a `temp_directory`, and
//! every stage writes ZSTD Parquet at level 1, as floe-host's Iceberg writer
//! does (parquet-rs's default level; DuckDB's own default is 3, which costs it
//! time that floe-host does not spend).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_row::{RowConverter, SortField};
use arrow_schema::DataType;
use duckdb::Connection;
use floe_host::sandbox::{Limits, Sandbox};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use super::options::Options;
use super::plan::{Action, Step};
use super::setup::Project;
use super::{BASELINE_COMMAND, Reference, StageRun, child, sql_path};
use crate::native::{self, Sha};

/// Rows per batch for the native stages: the host's largest `push`.
const BATCH_ROWS: usize = 65_536;

/// What one child computes.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Spec {
    Duckdb { settings: Settings, views: Vec<View>, query: String, out: PathBuf },
    PiiMask { input: PathBuf, out: PathBuf, config: BTreeMap<String, String> },
    Dedup { input: PathBuf, out: PathBuf, config: BTreeMap<String, String> },
}

#[derive(Serialize, Deserialize)]
struct Settings {
    memory_limit: String,
    threads: usize,
    temp_directory: PathBuf,
}

/// `CREATE VIEW schema.name AS SELECT * FROM read_parquet(file)`.
#[derive(Serialize, Deserialize)]
struct View {
    schema: String,
    name: String,
    file: PathBuf,
}

/// What the child prints on stdout.
#[derive(Serialize, Deserialize)]
struct Outcome {
    ms: f64,
    rows_out: u64,
}

/// The Parquet file a step's baseline writes.
pub fn output_file(project: &Project, step: &Step) -> PathBuf {
    project.baseline.join(format!("{}.parquet", step.target))
}

/// Runs every step's baseline in plan order.
pub fn run_all(options: &Options, project: &Project, steps: &[Step]) -> Result<Vec<StageRun>, String> {
    let _ = std::fs::remove_dir_all(&project.baseline);
    std::fs::create_dir_all(&project.baseline).map_err(|e| format!("{}: {e}", project.baseline.display()))?;
    let me = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut sandbox = None;
    let mut runs = Vec::with_capacity(steps.len());
    for step in steps {
        let (spec, what) = spec(options, project, steps, step, &mut sandbox)?;
        let (outcome, measured) = run_stage(&me, &spec, step, &what)?;
        let reference = match reference(options, project, step) {
            Some((spec, what)) => {
                let (outcome, measured) = run_stage(&me, &spec, step, &what)?;
                Some(Reference { what, ms: outcome.ms, peak_rss: measured.peak_rss })
            }
            None => None,
        };
        runs.push(StageRun {
            what,
            ms: outcome.ms,
            wall: measured.wall,
            peak_rss: measured.peak_rss,
            rows_out: outcome.rows_out,
            reference,
        });
    }
    Ok(runs)
}

/// One stage in a child process.
fn run_stage(me: &Path, spec: &Spec, step: &Step, what: &str) -> Result<(Outcome, child::Measured), String> {
    let mut command = Command::new(me);
    command.arg(BASELINE_COMMAND).arg(serde_json::to_string(spec).expect("a spec serializes"));
    let measured = child::run(&mut command, false)?;
    let stderr: Vec<&str> = measured.stderr_lines.iter().map(|(_, l)| l.as_str()).collect();
    if measured.code != 0 {
        return Err(format!(
            "baseline of `{}` ({what}) exited with {}: {}",
            step.name,
            measured.code,
            stderr.join("\n")
        ));
    }
    let outcome: Outcome = serde_json::from_slice(&measured.stdout)
        .map_err(|e| format!("baseline of `{}`: bad output ({e}): {}", step.name, stderr.join("\n")))?;
    Ok((outcome, measured))
}

/// `read_csv` with no record number: the ingest reference as the issue
/// words it. DuckDB reads a CSV in parallel, but `row_number() OVER ()`
/// (which `_row` needs, and the later stages read) numbers the rows on one
/// thread, so the stage that feeds silver is slower than this reference.
/// Measured next to it; nothing reads its output.
fn reference(options: &Options, project: &Project, step: &Step) -> Option<(Spec, String)> {
    let Action::Ingest { source, .. } = &step.action else { return None };
    let settings = Settings {
        memory_limit: options.memory_limit.clone(),
        threads: options.threads,
        temp_directory: project.spill.join("duckdb"),
    };
    let query = format!("SELECT * FROM {}", read_csv(source));
    let out = project.baseline.join(format!("{}.no-row-number.parquet", step.target));
    Some((Spec::Duckdb { settings, views: Vec::new(), query, out }, "DuckDB read_csv → Parquet, no `_row`".into()))
}

/// DuckDB's CSV reader as csv-ingest reads: every column a string, the first line the header.
fn read_csv(source: &Path) -> String {
    format!(
        "read_csv({}, all_varchar = true, header = true, delim = ',', quote = '\"', escape = '\"')",
        sql_path(source)
    )
}

fn spec(
    options: &Options,
    project: &Project,
    steps: &[Step],
    step: &Step,
    sandbox: &mut Option<Sandbox>,
) -> Result<(Spec, String), String> {
    let out = output_file(project, step);
    let settings = || Settings {
        memory_limit: options.memory_limit.clone(),
        threads: options.threads,
        temp_directory: project.spill.join("duckdb"),
    };
    let input_file = |target: &str| {
        steps
            .iter()
            .find(|s| s.target == target)
            .map(|s| output_file(project, s))
            .ok_or(format!("step `{}`: its input `{target}` is not a step of the pipeline", step.name))
    };
    let views = || -> Result<Vec<View>, String> {
        step.inputs
            .iter()
            .map(|i| Ok(View { schema: i.layer.clone(), name: i.name.clone(), file: input_file(&i.target)? }))
            .collect()
    };
    Ok(match &step.action {
        Action::Ingest { plugin, source, config, .. } => {
            if plugin != "csv-ingest" {
                return Err(format!("step `{}`: no baseline for the ingest plugin `{plugin}`", step.name));
            }
            let row = config.get("row_number_column").map_or("_row", String::as_str);
            if let Some(key) = config.keys().find(|k| !["row_number_column", "batch_rows"].contains(&k.as_str())) {
                return Err(format!("step `{}`: the baseline does not know csv-ingest's `{key}`", step.name));
            }
            let query =
                format!("SELECT *, row_number() OVER () AS \"{}\" FROM {}", row.replace('"', "\"\""), read_csv(source));
            let what = "DuckDB read_csv + `row_number()` → Parquet".into();
            (Spec::Duckdb { settings: settings(), views: Vec::new(), query, out }, what)
        }
        Action::Sql { file } => {
            let query = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let name = file.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            (Spec::Duckdb { settings: settings(), views: views()?, query, out }, format!("DuckDB, `{name}`"))
        }
        Action::Wasm { plugin, path, config } => {
            if sandbox.is_none() {
                let cache = project.state.join("component-cache");
                *sandbox = Some(Sandbox::new(Limits::default(), Some(cache)).map_err(|e| e.to_string())?);
            }
            let wasm = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let loaded = sandbox.as_ref().expect("made above").load_transform(plugin, &wasm);
            let loaded = loaded.map_err(|e| format!("step `{}`: {e}", step.name))?;
            let names: Vec<String> = step.inputs.iter().map(|i| format!("{}.{}", i.layer, i.name)).collect();
            let query = loaded.sql(&step.name, config, &names).map_err(|e| format!("step `{}`: {e}", step.name))?;
            let [input] = step.inputs.as_slice() else {
                if let Some(query) = query {
                    let what = format!("DuckDB, the SQL `{plugin}` returns");
                    return Ok((Spec::Duckdb { settings: settings(), views: views()?, query, out }, what));
                }
                return Err(format!("step `{}`: a streaming plugin needs one input", step.name));
            };
            let input = input_file(&input.target)?;
            match (query, plugin.as_str()) {
                (Some(query), _) => {
                    let what = format!("DuckDB, the SQL `{plugin}` returns");
                    (Spec::Duckdb { settings: settings(), views: views()?, query, out }, what)
                }
                (None, "pii-mask") => {
                    (Spec::PiiMask { input, out, config: config.clone() }, "native Rust pii-mask (`sha2`)".into())
                }
                (None, "dedup") => (Spec::Dedup { input, out, config: config.clone() }, "native Rust dedup".into()),
                (None, other) => {
                    return Err(format!(
                        "step `{}`: no native baseline for the streaming plugin `{other}` (bench/src/pipeline/baseline.rs)",
                        step.name
                    ));
                }
            }
        }
    })
}

/// `floe-bench __baseline SPEC`: runs one stage and prints its outcome.
pub fn child(args: Vec<String>) {
    let [spec] = args.as_slice() else {
        eprintln!("usage: floe-bench {BASELINE_COMMAND} SPEC (internal)");
        std::process::exit(2);
    };
    let spec: Spec = serde_json::from_str(spec).unwrap_or_else(|e| {
        eprintln!("{BASELINE_COMMAND}: bad spec: {e}");
        std::process::exit(2)
    });
    let started = Instant::now();
    let rows_out = match spec {
        Spec::Duckdb { settings, views, query, out } => duckdb_stage(&settings, &views, &query, &out),
        Spec::PiiMask { input, out, config } => native_stage(&input, &out, PiiMask::new(&config)),
        Spec::Dedup { input, out, config } => native_stage(&input, &out, Dedup::new(&config)),
    };
    let ms = started.elapsed().as_secs_f64() * 1e3;
    match rows_out {
        Ok(rows_out) => println!("{}", serde_json::to_string(&Outcome { ms, rows_out }).expect("serializes")),
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(1);
        }
    }
}

fn duckdb_stage(settings: &Settings, views: &[View], query: &str, out: &Path) -> Result<u64, String> {
    let conn = Connection::open_in_memory().map_err(|e| format!("DuckDB: {e}"))?;
    let setup = format!(
        "SET memory_limit = '{}'; SET threads = {}; SET temp_directory = {};",
        settings.memory_limit.replace('\'', "''"),
        settings.threads,
        sql_path(&settings.temp_directory)
    );
    conn.execute_batch(&setup).map_err(|e| format!("{setup}: {e}"))?;
    for view in views {
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS \"{0}\"; CREATE VIEW \"{0}\".\"{1}\" AS SELECT * FROM read_parquet({2});",
            view.schema,
            view.name,
            sql_path(&view.file)
        );
        conn.execute_batch(&sql).map_err(|e| format!("{sql}: {e}"))?;
    }
    let query = query.trim().trim_end_matches(';');
    // The newline ends a trailing `--` comment of the model.
    let copy = format!("COPY ({query}\n) TO {} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)", sql_path(out));
    let rows = conn.execute(&copy, []).map_err(|e| format!("{copy}: {e}"))?;
    Ok(rows as u64)
}

/// A streaming transform's logic, batch by batch.
trait Native {
    fn open(&mut self, schema: &arrow_schema::Schema) -> Result<(), String>;
    fn push(&mut self, batch: RecordBatch) -> Result<Option<RecordBatch>, String>;
}

fn native_stage(input: &Path, out: &Path, transform: Result<impl Native, String>) -> Result<u64, String> {
    let mut transform = transform?;
    let error = |e: &dyn std::fmt::Display| format!("{}: {e}", input.display());
    let file = File::open(input).map_err(|e| error(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| error(&e))?;
    let schema = builder.schema().clone();
    transform.open(&schema)?;
    let reader = builder.with_batch_size(BATCH_ROWS).build().map_err(|e| error(&e))?;
    let properties = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let target = File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut writer = ArrowWriter::try_new(target, schema, Some(properties)).map_err(|e| error(&e))?;
    let mut rows = 0;
    for batch in reader {
        let batch = batch.map_err(|e| error(&e))?;
        if let Some(output) = transform.push(batch)? {
            rows += output.num_rows() as u64;
            writer.write(&output).map_err(|e| format!("{}: {e}", out.display()))?;
        }
    }
    writer.close().map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(rows)
}

fn list(config: &BTreeMap<String, String>, key: &str) -> Vec<String> {
    config
        .get(key)
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

/// plugins/pii-mask natively (`native::mask` with the `sha2` crate).
struct PiiMask {
    email: Vec<String>,
    hash: Vec<String>,
    salt: String,
    actions: Vec<native::Action>,
}

impl PiiMask {
    fn new(config: &BTreeMap<String, String>) -> Result<Self, String> {
        let salt = config.get("salt").cloned().unwrap_or_default();
        Ok(PiiMask { email: list(config, "email"), hash: list(config, "hash"), salt, actions: Vec::new() })
    }
}

impl Native for PiiMask {
    fn open(&mut self, schema: &arrow_schema::Schema) -> Result<(), String> {
        self.actions = schema
            .fields()
            .iter()
            .map(|field| {
                let action = if self.email.contains(field.name()) {
                    native::Action::Email
                } else if self.hash.contains(field.name()) {
                    native::Action::Hash
                } else {
                    return Ok(native::Action::Keep);
                };
                if field.data_type() != &DataType::Utf8 {
                    return Err(format!("pii-mask: column `{}` is {}, not Utf8", field.name(), field.data_type()));
                }
                Ok(action)
            })
            .collect::<Result<_, String>>()?;
        Ok(())
    }

    fn push(&mut self, batch: RecordBatch) -> Result<Option<RecordBatch>, String> {
        Ok(Some(native::mask(&batch, &self.actions, &self.salt, Sha::Sha2)))
    }
}

/// plugins/dedup natively: the first row of every key, by the keys' row encoding.
struct Dedup {
    key: Vec<String>,
    columns: Vec<usize>,
    converter: Option<RowConverter>,
    seen: HashSet<Box<[u8]>>,
}

impl Dedup {
    fn new(config: &BTreeMap<String, String>) -> Result<Self, String> {
        let key = list(config, "key");
        if key.is_empty() {
            return Err("dedup: no `key`".into());
        }
        Ok(Dedup { key, columns: Vec::new(), converter: None, seen: HashSet::new() })
    }
}

impl Native for Dedup {
    fn open(&mut self, schema: &arrow_schema::Schema) -> Result<(), String> {
        self.columns =
            self.key.iter().map(|k| schema.index_of(k).map_err(|e| format!("dedup: {e}"))).collect::<Result<_, _>>()?;
        let fields = self.columns.iter().map(|&i| SortField::new(schema.field(i).data_type().clone())).collect();
        self.converter = Some(RowConverter::new(fields).map_err(|e| format!("dedup: {e}"))?);
        Ok(())
    }

    fn push(&mut self, batch: RecordBatch) -> Result<Option<RecordBatch>, String> {
        let columns: Vec<ArrayRef> = self.columns.iter().map(|&i| batch.column(i).clone()).collect();
        let converter = self.converter.as_ref().expect("opened");
        let rows = converter.convert_columns(&columns).map_err(|e| format!("dedup: {e}"))?;
        let keep: BooleanArray = rows.iter().map(|row| Some(self.seen.insert(row.as_ref().into()))).collect();
        if keep.true_count() == 0 {
            return Ok(None);
        }
        arrow_select::filter::filter_record_batch(&batch, &keep).map(Some).map_err(|e| format!("dedup: {e}"))
    }
}
