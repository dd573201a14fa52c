//! Ephemeral DuckDB compute: one in-memory (or file) database per step. Each
//! input table of a step becomes a view over its local Parquet data files
//! (which the host lists from the snapshot), or a table the host appends
//! Arrow batches to; the result streams back as Arrow. DuckDB never touches
//! a catalog, a bucket or a credential.
//!
//! SQL that the host did not write (a model's, a plugin's) runs only after
//! [`Session::lock_down`]: DuckDB's own switches then deny every file but
//! the step's input files (and, for models, the directories the platform
//! allows), extension loading and any change of settings, and
//! [`Session::stream_select`] runs a query only if DuckDB's parser finds
//! exactly one SELECT in it. A database per step means a query sees only its
//! step's inputs, and nothing one step defines (a macro, a view) survives
//! into the next.

pub mod bind;
mod database;
mod resources;
mod types;
mod worker;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use duckdb::Appender;

use database::{Database, Refusal};

pub use resources::default_memory_limit;
pub use worker::{CHILD_ARG as WORKER_CHILD_ARG, Worker, WorkerLimits, child_main as worker_child_main};

use crate::config::DuckdbProperties;

/// Why DuckDB could not do its part.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("cannot start DuckDB: {0}")]
    Setup(String),
    #[error("invalid DuckDB setting `{setting}` = `{value}`: {source}")]
    Setting {
        setting: &'static str,
        value: String,
        #[source]
        source: duckdb::Error,
    },
    #[error("cannot load table `{table}` into DuckDB: {source}")]
    Load {
        table: String,
        #[source]
        source: duckdb::Error,
    },
    #[error("table `{table}` column `{column}` has type {data_type}, which floe-host cannot hand to DuckDB yet")]
    UnsupportedType { table: String, column: String, data_type: String },
    #[error("table `{table}` column `{column}` has no Iceberg field id, so DuckDB cannot map its data files")]
    NoFieldId { table: String, column: String },
    #[error("{0}")]
    Query(#[source] duckdb::Error),
    /// The SQL is not one read-only query, or DuckDB cannot parse or bind it.
    #[error("{0}")]
    Refused(String),
    /// The SQL worker failed: DuckDB's error, or how the worker died.
    #[error("{0}")]
    Worker(String),
    /// The query ran past its deadline and was interrupted.
    #[error("the query ran longer than its time budget ({0:?}) and was stopped")]
    TimedOut(std::time::Duration),
    /// The consumer of a streamed result refused a batch.
    #[error("{0}")]
    Sink(String),
}

/// How each step's database is made: the platform's DuckDB settings and the
/// run's variables (`getvariable('partition')`).
#[derive(Clone, Debug, Default)]
pub struct Setup {
    pub properties: DuckdbProperties,
    pub variables: Vec<(&'static str, String)>,
    /// Where DuckDB writes a SQL model's data file before it joins its
    /// table (`run::steps::model`); `None`: every output streams through
    /// the host's writer.
    pub scratch: Option<std::path::PathBuf>,
}

impl Setup {
    /// DuckDB's threads and memory as they apply (the profile's, or DuckDB's
    /// defaults), read from a fresh database that proves the settings.
    pub fn budget(&self) -> Result<Budget, ComputeError> {
        let session = self.open()?;
        Ok(Budget { threads: session.threads()?, memory_bytes: session.memory_limit_bytes()? })
    }

    /// This setup with `shares` of `of` equal shares of `budget`: what a step
    /// gets while others compute beside it (`run::schedule`). All shares: the
    /// setup as it is.
    pub fn share(&self, budget: Budget, shares: usize, of: usize) -> Setup {
        if shares >= of || of == 0 {
            return self.clone();
        }
        let (shares, of) = (shares as u64, of as u64);
        self.limited(Budget { threads: budget.threads * shares / of, memory_bytes: budget.memory_bytes * shares / of })
    }

    /// This setup with `limits` (at least one thread and 64 MiB).
    pub fn limited(&self, limits: Budget) -> Setup {
        let mut setup = self.clone();
        setup.properties.threads = Some(limits.threads.max(1) as u32);
        setup.properties.memory_limit = Some(format!("{}B", limits.memory_bytes.max(64 << 20)));
        setup
    }

    /// This setup spilling to `<temp_directory>/<name>`: DuckDB databases
    /// open at once must not spill to one folder (their files collide, and
    /// the process crashed), and DuckDB creates its spill folder but not the
    /// folders above it, so it is created here. Without a `temp_directory`,
    /// the setup as it is.
    pub fn spilling_apart(&self, name: &str) -> Setup {
        let mut setup = self.clone();
        if let Some(dir) = &self.properties.temp_directory {
            let own = format!("{}/{name}", dir.trim_end_matches('/'));
            // A failure is DuckDB's to report, when it spills.
            let _ = std::fs::create_dir_all(&own);
            setup.properties.temp_directory = Some(own);
        }
        setup
    }

    /// A fresh database for one step.
    pub fn open(&self) -> Result<Session, ComputeError> {
        let session = Session::open(&self.properties)?;
        for (name, value) in &self.variables {
            session.set_variable(name, value)?;
        }
        Ok(session)
    }
}

/// DuckDB's threads and memory for a run, as they apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub threads: u64,
    pub memory_bytes: u64,
}

/// A DuckDB database for one step.
pub struct Session {
    db: Database,
}

/// Longest SQL text accepted from a plugin or a model, in bytes.
pub const MAX_SQL_BYTES: usize = 1 << 20;

/// Table functions any locked-down query may call: they compute, and touch
/// nothing outside the query.
const PURE_TABLE_FUNCTIONS: &[&str] = &["range", "generate_series", "unnest", "generate_subscripts"];
/// Table functions that read files, which a model may call on the files its
/// platform allows (`allowed_directories`); DuckDB checks every path.
const FILE_TABLE_FUNCTIONS: &[&str] = &[
    "read_csv",
    "read_csv_auto",
    "read_parquet",
    "parquet_scan",
    "read_json",
    "read_json_auto",
    "read_ndjson",
    "read_ndjson_auto",
    "read_json_objects",
    "read_text",
    "read_blob",
    "glob",
];

impl Session {
    /// Opens a fresh database with the profile's settings, defaulting the
    /// memory limit to about 67% of the container limit. A database `path`
    /// is removed first: it is the step's scratch space, not a store.
    pub fn open(properties: &DuckdbProperties) -> Result<Self, ComputeError> {
        let path = properties.path.as_deref().filter(|p| !p.is_empty() && *p != ":memory:");
        if let Some(path) = path {
            // Only ever delete a DuckDB database (its magic `DUCK` at byte 8):
            // a `path` that names any other file is a mistake to report.
            if let Ok(mut file) = std::fs::File::open(path) {
                use std::io::Read;
                let mut header = [0u8; 12];
                let is_duckdb = file.read_exact(&mut header).is_ok() && &header[8..12] == b"DUCK";
                if !is_duckdb {
                    return Err(ComputeError::Setup(format!(
                        "the DuckDB `path` {path} is a file that is not a DuckDB database; floe-host recreates \
                         that file for every step, so point `path` at a file of its own"
                    )));
                }
            }
            for file in [path.to_owned(), format!("{path}.wal")] {
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(ComputeError::Setup(format!("cannot remove the old database {file}: {e}"))),
                }
            }
        }
        let db = Database::open(path).map_err(ComputeError::Setup)?;
        let session = Session { db };
        // No extension is ever installed or loaded behind the host's back
        // (the ones it needs, parquet above all, are built in).
        session.set("autoinstall_known_extensions", "false")?;
        session.set("autoload_known_extensions", "false")?;
        let memory_limit =
            properties.memory_limit.clone().or_else(|| default_memory_limit().map(|b| format!("{}MB", b / 1_000_000)));
        if let Some(limit) = memory_limit {
            session.set("memory_limit", &limit)?;
        }
        if let Some(threads) = properties.threads {
            session.set("threads", &threads.to_string())?;
        }
        if let Some(dir) = &properties.temp_directory {
            session.set("temp_directory", dir)?;
        }
        Ok(session)
    }

    fn conn(&self) -> &duckdb::Connection {
        self.db.conn()
    }

    fn set(&self, setting: &'static str, value: &str) -> Result<(), ComputeError> {
        self.set_raw(setting, &literal(value), value)
    }

    /// `SET setting = sql_value`, where `sql_value` is already SQL (a list).
    fn set_raw(&self, setting: &'static str, sql_value: &str, shown: &str) -> Result<(), ComputeError> {
        self.conn().execute_batch(&format!("SET {setting} = {sql_value}")).map_err(|source| ComputeError::Setting {
            setting,
            value: shown.to_string(),
            source,
        })
    }

    /// Locks the database down before SQL the host did not write runs in it:
    /// only `files` (the step's input data files) and the files under
    /// `directories` can be read, nothing can be written outside DuckDB's
    /// own spill directory, no extension can be installed or loaded, no
    /// database attached, and no setting changed (`lock_configuration`).
    /// Irreversible for this database.
    pub fn lock_down(&self, files: &[String], directories: &[String]) -> Result<(), ComputeError> {
        // The allow-lists first: DuckDB refuses to change them once external
        // access is off.
        self.set_raw("allowed_paths", &path_list(files), &format!("{} input files", files.len()))?;
        self.set_raw("allowed_directories", &path_list(directories), &directories.join(", "))?;
        self.set("enable_external_access", "false")?;
        self.set("allow_community_extensions", "false")?;
        self.set("lock_configuration", "true")
    }

    /// Sets a DuckDB variable that SQL reads with `getvariable('name')`.
    pub fn set_variable(&self, name: &str, value: &str) -> Result<(), ComputeError> {
        self.conn()
            .execute_batch(&format!("SET VARIABLE {} = {}", quote(name), literal(value)))
            .map_err(|source| ComputeError::Setting { setting: "VARIABLE", value: format!("{name} = {value}"), source })
    }

    /// DuckDB's `threads`, as it applies it.
    pub fn threads(&self) -> Result<u64, ComputeError> {
        let threads: i64 = self
            .conn()
            .query_row("SELECT current_setting('threads')", [], |row| row.get(0))
            .map_err(ComputeError::Query)?;
        Ok(threads.max(1) as u64)
    }

    /// Caps what DuckDB may spill to disk (`max_temp_directory_size`; its
    /// default is 90% of the free disk).
    pub fn limit_spill(&self, bytes: u64) -> Result<(), ComputeError> {
        self.set("max_temp_directory_size", &format!("{bytes}B"))
    }

    /// DuckDB's `memory_limit` in bytes, as it applies it.
    pub fn memory_limit_bytes(&self) -> Result<u64, ComputeError> {
        let shown: String = self
            .conn()
            .query_row("SELECT current_setting('memory_limit')", [], |row| row.get(0))
            .map_err(ComputeError::Query)?;
        crate::config::parse_bytes(&shown)
            .map_err(|e| ComputeError::Setup(format!("cannot read DuckDB's memory_limit `{shown}`: {e}")))
    }

    /// Drops `schema.table`, whether a view or a table, so that a step can
    /// define it again (an earlier step of the run may have read the same
    /// table the other way).
    fn drop_existing(&self, schema: &str, table: &str) -> Result<(), duckdb::Error> {
        let kind: Option<String> = self
            .conn()
            .prepare("SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?")?
            .query_map([schema, table], |row| row.get(0))?
            .next()
            .transpose()?;
        let (schema, table) = (quote(schema), quote(table));
        match kind.as_deref() {
            Some("VIEW") => self.conn().execute_batch(&format!("DROP VIEW {schema}.{table}")),
            Some(_) => self.conn().execute_batch(&format!("DROP TABLE {schema}.{table}")),
            None => self.conn().execute_batch(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")),
        }
    }

    /// How DuckDB can read a table's Parquet data files (`arrow_schema`: the
    /// table's schema, each field with its `PARQUET:field_id`), or `None` if
    /// some column of a file has no field id: files added from elsewhere may
    /// lack them, and DuckDB would read such columns as NULL.
    pub fn parquet_layout(&self, arrow_schema: &SchemaRef, paths: &[String]) -> Result<Option<Layout>, ComputeError> {
        if paths.is_empty() {
            return Ok(Some(Layout::Same));
        }
        let expected: BTreeSet<(String, Option<i32>)> =
            arrow_schema.fields().iter().map(|f| (f.name().clone(), field_id(f))).collect();
        let sql = format!(
            "SELECT file_name, name, field_id FROM parquet_schema({}) WHERE num_children IS NULL",
            path_list(paths)
        );
        let mut statement = self.conn().prepare(&sql).map_err(ComputeError::Query)?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, Option<i32>>(2)?))
            })
            .map_err(ComputeError::Query)?;
        let mut files: BTreeMap<String, BTreeSet<(String, Option<i32>)>> = BTreeMap::new();
        for row in rows {
            let (file, name, id) = row.map_err(ComputeError::Query)?;
            if id.is_none() {
                return Ok(None);
            }
            files.entry(file).or_default().insert((name, id));
        }
        let same = files.len() == paths.len() && files.values().all(|columns| *columns == expected);
        Ok(Some(if same { Layout::Same } else { Layout::ByFieldId }))
    }

    /// Defines `schema.table` as a view over Parquet data files, read by
    /// DuckDB in parallel with projection pushdown, with the column types of
    /// `arrow_schema` (the table's schema). With `Layout::ByFieldId`, columns
    /// map by Iceberg field id (the `PARQUET:field_id` of each field): a file
    /// written before a column was added reads it as NULL, as Iceberg
    /// requires. That mapping costs DuckDB its projection pushdown, so files
    /// that all hold exactly the table's columns are read by name.
    pub fn register_parquet(
        &self,
        schema: &str,
        table: &str,
        arrow_schema: &SchemaRef,
        paths: &[String],
        layout: Layout,
    ) -> Result<(), ComputeError> {
        let qualified = format!("{schema}.{table}");
        if paths.is_empty() {
            return self.load_table(schema, table, arrow_schema, std::iter::empty());
        }
        // Layout::Same: each column by name, cast to its type; ByFieldId: the
        // field id → name and type map.
        let mut columns = Vec::with_capacity(arrow_schema.fields().len());
        for field in arrow_schema.fields() {
            let id = field_id(field)
                .ok_or_else(|| ComputeError::NoFieldId { table: qualified.clone(), column: field.name().clone() })?;
            let sql_type = types::column_type(field, &qualified)?;
            columns.push(match layout {
                Layout::Same => format!("CAST({name} AS {sql_type}) AS {name}", name = quote(field.name())),
                Layout::ByFieldId => {
                    format!("{id}: {{name: {}, type: '{sql_type}', default_value: NULL}}", literal(field.name()))
                }
            });
        }
        let source = match layout {
            Layout::Same => format!("SELECT {} FROM read_parquet({})", columns.join(", "), path_list(paths)),
            Layout::ByFieldId => {
                format!("SELECT * FROM read_parquet({}, schema = MAP {{{}}})", path_list(paths), columns.join(", "))
            }
        };
        let load_error = |source| ComputeError::Load { table: qualified.clone(), source };
        self.drop_existing(schema, table).map_err(load_error)?;
        self.conn()
            .execute_batch(&format!("CREATE VIEW {}.{} AS {source}", quote(schema), quote(table)))
            .map_err(load_error)
    }

    /// Creates (or replaces) `schema.table` from Arrow batches, appended as
    /// they come: DuckDB holds them in its buffer pool, which spills.
    pub fn load_table(
        &self,
        schema: &str,
        table: &str,
        arrow_schema: &SchemaRef,
        batches: impl IntoIterator<Item = RecordBatch>,
    ) -> Result<(), ComputeError> {
        let mut loader = self.loader(schema, table, arrow_schema)?;
        for batch in batches {
            loader.append(batch)?;
        }
        loader.finish()
    }

    /// Creates (or replaces) `schema.table`, empty, for batches to be
    /// appended one by one.
    pub fn loader(&self, schema: &str, table: &str, arrow_schema: &SchemaRef) -> Result<Loader<'_>, ComputeError> {
        let qualified = format!("{schema}.{table}");
        let columns = types::column_definitions(arrow_schema, &qualified)?;
        let load_error = |source| ComputeError::Load { table: qualified.clone(), source };
        self.drop_existing(schema, table).map_err(load_error)?;
        self.conn()
            .execute_batch(&format!("CREATE TABLE {}.{} ({columns});", quote(schema), quote(table)))
            .map_err(load_error)?;
        let appender = self.conn().appender_to_db(table, schema).map_err(load_error)?;
        Ok(Loader { table: qualified, appender })
    }

    /// Runs one query and returns its result as Arrow (see `stream_select`).
    pub fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), ComputeError> {
        let mut batches = Vec::new();
        let schema = self.stream_select(sql, Reads::Files, None, &mut |batch| {
            batches.push(batch);
            Ok(())
        })?;
        Ok((schema, batches))
    }

    /// Refuses `sql` unless it is exactly one SELECT of at most
    /// `MAX_SQL_BYTES` that calls only the table functions `reads` allows.
    fn check(&self, sql: &str, reads: Reads) -> Result<(), ComputeError> {
        if sql.len() > MAX_SQL_BYTES {
            return Err(ComputeError::Refused(format!(
                "the query has {} bytes, over the {MAX_SQL_BYTES} accepted",
                sql.len()
            )));
        }
        let refused = |refusal: Refusal| ComputeError::Refused(refusal.to_string());
        // Parse before binding: the parse tree names the table functions
        // without running any (binding `read_text` would already open its file,
        // which the lock then refuses, but with a less direct message).
        let references = match self.db.references(sql) {
            Ok(references) => references,
            Err(refusal) => {
                // Not one SELECT: say which statement it is, if DuckDB can.
                self.db.check_select(sql).map_err(refused)?;
                return Err(refused(refusal));
            }
        };
        let allowed = |name: &str| {
            PURE_TABLE_FUNCTIONS.contains(&name) || (reads == Reads::Files && FILE_TABLE_FUNCTIONS.contains(&name))
        };
        if let Some(name) = references.functions.iter().find(|name| !allowed(name)) {
            let also = if reads == Reads::Files { ", and the file readers" } else { "" };
            return Err(ComputeError::Refused(format!(
                "it calls the table function `{}`, which is not allowed here (allowed: {}{also})",
                crate::sandbox::text::escape(name),
                PURE_TABLE_FUNCTIONS.join(", ")
            )));
        }
        if reads == Reads::InputsOnly {
            for table in &references.tables {
                self.check_table_name(table)?;
            }
        }
        self.db.check_select(sql).map_err(refused)
    }

    /// Refuses a table name that DuckDB would turn into a reader: a path
    /// (`FROM 'x.csv'` reads the file, and DuckDB allows its temp directory
    /// beside the allowed files) or one of its own views, each of which runs
    /// a table function (`pg_catalog.pg_settings`). A step's inputs are
    /// `layer.table` and CTEs plain names, so neither is ever refused.
    fn check_table_name(&self, table: &database::TableName) -> Result<(), ComputeError> {
        static SYSTEM_VIEWS: OnceLock<Vec<String>> = OnceLock::new();
        let name = table.name.to_lowercase();
        let quoted = || {
            let parts = [&table.catalog, &table.schema, &table.name];
            let written: Vec<&str> = parts.iter().filter(|p| !p.is_empty()).map(|p| p.as_str()).collect();
            crate::sandbox::text::quote(&written.join("."), 200)
        };
        if name.contains(['.', '/', '\\', '*', '?']) {
            return Err(ComputeError::Refused(format!(
                "it reads `{}`, a path, which is not allowed here: this SQL reads only the step's inputs, \
                 by their `layer.table` names",
                quoted()
            )));
        }
        let system_views = match SYSTEM_VIEWS.get() {
            Some(views) => views,
            None => {
                let views = self.db.system_views().map_err(ComputeError::Query)?;
                SYSTEM_VIEWS.get_or_init(|| views)
            }
        };
        let system_schema = ["pg_catalog", "information_schema"].contains(&table.schema.to_lowercase().as_str());
        let system_catalog = ["system", "temp"].contains(&table.catalog.to_lowercase().as_str());
        if system_schema || system_catalog || (table.schema.is_empty() && system_views.contains(&name)) {
            return Err(ComputeError::Refused(format!(
                "it reads `{}`, one of DuckDB's system views, which is not allowed here: this SQL reads only \
                 the step's inputs, by their `layer.table` names",
                quoted()
            )));
        }
        Ok(())
    }

    /// Runs `sql` if it is exactly one SELECT, and hands its result to
    /// `on_batch` chunk by chunk as DuckDB produces it, so the result is
    /// never held whole; returns its schema. An error from `on_batch` stops
    /// the query, and so does `timeout`, if given, once it has passed.
    pub fn stream_select(
        &self,
        sql: &str,
        reads: Reads,
        timeout: Option<std::time::Duration>,
        on_batch: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
    ) -> Result<SchemaRef, ComputeError> {
        self.check(sql, reads)?;
        let watchdog = timeout.map(|limit| Watchdog::start(self.conn().interrupt_handle(), limit));
        let result = (|| {
            // One statement (checked above), so duckdb-rs runs nothing before it.
            let mut statement = self.conn().prepare(sql).map_err(ComputeError::Query)?;
            let schema = statement.stream_arrow([]).map_err(ComputeError::Query)?.get_schema();
            // `step` rather than the iterator, which panics on a failed fetch.
            while let Some(chunk) = statement.step().map_err(ComputeError::Query)? {
                on_batch(RecordBatch::from(&chunk)).map_err(ComputeError::Sink)?;
            }
            Ok(schema)
        })();
        match watchdog.map(Watchdog::stop) {
            Some(Some(limit)) if result.is_err() => Err(ComputeError::TimedOut(limit)),
            _ => result,
        }
    }
    /// The schema of the result of `sql` (checked as `stream_select` checks
    /// it), from binding it without running it.
    pub fn output_schema(&self, sql: &str, reads: Reads) -> Result<SchemaRef, ComputeError> {
        self.check(sql, reads)?;
        let schema = self.db.select_schema(sql).map_err(|refusal| ComputeError::Refused(refusal.to_string()))?;
        Ok(std::sync::Arc::new(schema))
    }

    /// Runs `sql` (checked as `stream_select` checks it) and has DuckDB
    /// write its result as one Parquet file at `file`, each column carrying
    /// the Iceberg field id `field_ids` gives it; returns the rows written.
    /// `None`: DuckDB cannot take the query inside `COPY`, so nothing ran and
    /// the caller streams it. Defensive: no such query is known (a model
    /// ending in `;` and a comment is refused when the plan is checked).
    /// `file` must be the one path the locked-down database may write.
    pub fn copy_select(
        &self,
        sql: &str,
        reads: Reads,
        file: &std::path::Path,
        field_ids: &[(String, i32)],
    ) -> Result<Option<u64>, ComputeError> {
        self.check(sql, reads)?;
        let ids: Vec<String> = field_ids.iter().map(|(name, id)| format!("{}: {id}", literal(name))).collect();
        // The query on lines of its own: a trailing `--` comment ends
        // before the closing parenthesis.
        let query = sql.trim_end().trim_end_matches(';');
        let copy = format!(
            "COPY (\n{query}\n) TO {} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, FIELD_IDS {{{}}})",
            literal(&file.display().to_string()),
            ids.join(", ")
        );
        // duckdb-rs would run every statement before the last: the wrapped
        // text must still be exactly one statement, a COPY.
        if let Err(refusal) = self.db.check_copy(&copy) {
            tracing::debug!(?refusal, "The query cannot run inside COPY; streaming it instead.");
            return Ok(None);
        }
        let rows: i64 = self.conn().query_row(&copy, [], |row| row.get(0)).map_err(ComputeError::Query)?;
        Ok(Some(rows as u64))
    }
}

/// Which table functions a query may call besides the pure ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Only the step's inputs: SQL from a plugin.
    InputsOnly,
    /// Also the file readers, on what the database allows: models and the
    /// host's own queries.
    Files,
}

/// Interrupts the connection's query once `limit` has passed, unless
/// stopped first.
struct Watchdog {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<bool>,
    limit: std::time::Duration,
}

impl Watchdog {
    fn start(handle: std::sync::Arc<duckdb::InterruptHandle>, limit: std::time::Duration) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let fired = matches!(stopped.recv_timeout(limit), Err(std::sync::mpsc::RecvTimeoutError::Timeout));
            if fired {
                handle.interrupt();
            }
            fired
        });
        Watchdog { stop, thread, limit }
    }

    /// Stops the watchdog; returns the limit if it had fired.
    fn stop(self) -> Option<std::time::Duration> {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or(false).then_some(self.limit)
    }
}

/// How a table's Parquet files relate to its schema (`Session::parquet_layout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Every file holds exactly the table's columns, by name and field id.
    Same,
    /// Some file differs (written before a column was added, for example):
    /// columns must be matched by field id.
    ByFieldId,
}

/// The Iceberg field id an Arrow field carries.
fn field_id(field: &arrow_schema::Field) -> Option<i32> {
    field.metadata().get(parquet::arrow::PARQUET_FIELD_ID_META_KEY).and_then(|id| id.parse().ok())
}

/// A table being filled batch by batch (`Session::loader`).
pub struct Loader<'a> {
    table: String,
    appender: Appender<'a>,
}

impl Loader<'_> {
    pub fn append(&mut self, batch: RecordBatch) -> Result<(), ComputeError> {
        let table = &self.table;
        self.appender.append_record_batch(batch).map_err(|source| ComputeError::Load { table: table.clone(), source })
    }

    pub fn finish(mut self) -> Result<(), ComputeError> {
        let table = &self.table;
        self.appender.flush().map_err(|source| ComputeError::Load { table: table.clone(), source })
    }
}

/// A quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `['a', 'b']`, a SQL list of paths.
fn path_list(paths: &[String]) -> String {
    let items: Vec<String> = paths.iter().map(|p| literal(p)).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use arrow_array::Int64Array;

    /// A table's files as DuckDB reads them: by name when all hold the
    /// table's columns, by field id when one predates a column (which then
    /// reads as NULL), and not at all when a file lacks field ids.
    #[test]
    fn parquet_views_match_columns_by_field_id() {
        use arrow_array::{Array, StringArray};
        use arrow_schema::{DataType, Field, Schema};
        use std::collections::HashMap;

        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| dir.path().join(name).display().to_string();
        let session = Session::open(&DuckdbProperties::default()).unwrap();
        session
            .conn()
            .execute_batch(&format!(
                "COPY (SELECT 1::BIGINT AS id, 'a' AS name) TO '{}' (FIELD_IDS {{id: 1, name: 2}});
                 COPY (SELECT 2::BIGINT AS id) TO '{}' (FIELD_IDS {{id: 1}});
                 COPY (SELECT 3::BIGINT AS id, 'c' AS name) TO '{}';",
                file("both.parquet"),
                file("old.parquet"),
                file("no-ids.parquet"),
            ))
            .unwrap();
        let with_id = |name: &str, data_type: DataType, id: i32| {
            Field::new(name, data_type, true)
                .with_metadata(HashMap::from([(parquet::arrow::PARQUET_FIELD_ID_META_KEY.into(), id.to_string())]))
        };
        let schema = Arc::new(Schema::new(vec![with_id("id", DataType::Int64, 1), with_id("name", DataType::Utf8, 2)]));
        let names = |paths: &[String]| {
            let layout = session.parquet_layout(&schema, paths).unwrap().expect("field ids");
            session.register_parquet("silver", "t", &schema, paths, layout).unwrap();
            let (_, batches) = session.query("SELECT name FROM silver.t ORDER BY id").unwrap();
            let values: Vec<Option<String>> = batches
                .iter()
                .flat_map(|b| {
                    let column = b.column(0).as_any().downcast_ref::<StringArray>().unwrap().clone();
                    (0..column.len()).map(move |i| column.is_valid(i).then(|| column.value(i).to_string()))
                })
                .collect();
            (layout, values)
        };
        assert_eq!(names(&[file("both.parquet")]), (Layout::Same, vec![Some("a".to_string())]));
        assert_eq!(
            names(&[file("both.parquet"), file("old.parquet")]),
            (Layout::ByFieldId, vec![Some("a".to_string()), None])
        );
        assert_eq!(session.parquet_layout(&schema, &[file("both.parquet"), file("no-ids.parquet")]).unwrap(), None);
    }

    /// A step's share of DuckDB, as the database applies it: half of 2
    /// threads and 2 GiB; all shares leave the profile as it is.
    #[test]
    fn a_share_of_the_budget_is_what_the_steps_database_gets() {
        let setup = Setup {
            properties: DuckdbProperties { threads: Some(2), memory_limit: Some("2GiB".into()), ..Default::default() },
            ..Default::default()
        };
        let budget = setup.budget().unwrap();
        assert_eq!(budget, Budget { threads: 2, memory_bytes: 2 << 30 });
        let half = setup.share(budget, 1, 2).open().unwrap();
        assert_eq!(half.memory_limit_bytes().unwrap(), 1 << 30);
        assert_eq!(half.threads().unwrap(), 1);
        assert_eq!(setup.share(budget, 2, 2).properties.memory_limit.as_deref(), Some("2GiB"));
        // Never below one thread and 64 MiB.
        let tiny = setup.share(Budget { threads: 1, memory_bytes: 100 << 20 }, 1, 4);
        assert_eq!((tiny.properties.threads, tiny.properties.memory_limit.as_deref()), (Some(1), Some("67108864B")));
    }

    /// A step that needs more memory than `memory_limit` spills to
    /// `temp_directory` and finishes, rather than failing.
    #[test]
    fn a_query_larger_than_the_memory_limit_spills_and_finishes() {
        let temp = std::env::temp_dir().join(format!("floe-spill-{}", std::process::id()));
        let properties = DuckdbProperties {
            path: None,
            threads: Some(1),
            memory_limit: Some("100MB".into()),
            temp_directory: Some(temp.display().to_string()),
            allowed_directories: Vec::new(),
        };
        let session = Session::open(&properties).unwrap();
        // About 400 MB of rows to sort: four times the limit.
        let (_, batches) = session
            .query(
                "SELECT count(*) AS n FROM \
                 (SELECT i, repeat(md5(i::VARCHAR), 2) AS s FROM range(3000000) t(i) ORDER BY s) \
                 WHERE s IS NOT NULL",
            )
            .unwrap();
        let n = batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0);
        assert_eq!(n, 3_000_000);
        let _ = std::fs::remove_dir_all(&temp);
    }
}

/// DuckDB as this binary has it: its version, and every extension it has
/// loaded or installed, with how (`STATICALLY_LINKED`, `REPOSITORY`, ...),
/// for `floe-host version`. A release build shows parquet and json loaded
/// and statically linked, and nothing installed.
pub fn engine_report() -> Result<(String, Vec<(String, bool, bool, String)>), ComputeError> {
    let session = Session::open(&DuckdbProperties::default())?;
    let setup = |e: duckdb::Error| ComputeError::Setup(format!("cannot read DuckDB's extensions: {e}"));
    let version: String = session.conn().query_row("SELECT version()", [], |row| row.get(0)).map_err(setup)?;
    let mut statement = session
        .conn()
        .prepare(
            "SELECT extension_name, loaded, installed, coalesce(CAST(install_mode AS VARCHAR), '') \
             FROM duckdb_extensions() WHERE loaded OR installed ORDER BY extension_name",
        )
        .map_err(setup)?;
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .map_err(setup)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(setup)?;
    Ok((version, rows))
}
