//! Ephemeral DuckDB compute: one in-memory (or file) database per run. Each
//! input table of a step becomes a view over its local Parquet data files
//! (which the host lists from the snapshot), or a table the host appends
//! Arrow batches to; the result streams back as Arrow. DuckDB never touches
//! a catalog, a bucket or a credential.

mod resources;
mod types;

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use duckdb::{Appender, Connection};

pub use resources::default_memory_limit;

use crate::config::DuckdbProperties;

/// Why DuckDB could not do its part.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("cannot start DuckDB: {0}")]
    Open(#[source] duckdb::Error),
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
    /// The consumer of a streamed result refused a batch.
    #[error("{0}")]
    Sink(String),
}

/// A DuckDB database for one run.
pub struct Session {
    conn: Connection,
}

impl Session {
    /// Opens the database with the profile's settings, defaulting the memory
    /// limit to about 67% of the container limit.
    pub fn open(properties: &DuckdbProperties) -> Result<Self, ComputeError> {
        let conn = match properties.path.as_deref() {
            None | Some(":memory:") | Some("") => Connection::open_in_memory(),
            Some(path) => Connection::open(path),
        }
        .map_err(ComputeError::Open)?;
        let session = Session { conn };
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

    fn set(&self, setting: &'static str, value: &str) -> Result<(), ComputeError> {
        self.conn
            .execute_batch(&format!("SET {setting} = {}", literal(value)))
            .map_err(|source| ComputeError::Setting { setting, value: value.to_string(), source })
    }

    /// Sets a DuckDB variable that SQL reads with `getvariable('name')`.
    pub fn set_variable(&self, name: &'static str, value: &str) -> Result<(), ComputeError> {
        self.conn
            .execute_batch(&format!("SET VARIABLE {name} = {}", literal(value)))
            .map_err(|source| ComputeError::Setting { setting: name, value: value.to_string(), source })
    }

    /// Drops `schema.table`, whether a view or a table, so that a step can
    /// define it again (an earlier step of the run may have read the same
    /// table the other way).
    fn drop_existing(&self, schema: &str, table: &str) -> Result<(), duckdb::Error> {
        let kind: Option<String> = self
            .conn
            .prepare("SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?")?
            .query_map([schema, table], |row| row.get(0))?
            .next()
            .transpose()?;
        let (schema, table) = (quote(schema), quote(table));
        match kind.as_deref() {
            Some("VIEW") => self.conn.execute_batch(&format!("DROP VIEW {schema}.{table}")),
            Some(_) => self.conn.execute_batch(&format!("DROP TABLE {schema}.{table}")),
            None => self.conn.execute_batch(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")),
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
        let mut statement = self.conn.prepare(&sql).map_err(ComputeError::Query)?;
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
        self.conn
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
        self.conn
            .execute_batch(&format!("CREATE TABLE {}.{} ({columns});", quote(schema), quote(table)))
            .map_err(load_error)?;
        let appender = self.conn.appender_to_db(table, schema).map_err(load_error)?;
        Ok(Loader { table: qualified, appender })
    }

    /// Runs one query and returns its result as Arrow.
    pub fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), ComputeError> {
        let mut batches = Vec::new();
        let schema = self.stream(sql, &mut |batch| {
            batches.push(batch);
            Ok(())
        })?;
        Ok((schema, batches))
    }

    /// Runs one query and hands its result to `on_batch` chunk by chunk as
    /// DuckDB produces it, so the result is never held whole; returns its
    /// schema. An error from `on_batch` stops the query.
    pub fn stream(
        &self,
        sql: &str,
        on_batch: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
    ) -> Result<SchemaRef, ComputeError> {
        let sql = sql.trim().trim_end_matches(';');
        let mut statement = self.conn.prepare(sql).map_err(ComputeError::Query)?;
        let schema = statement.stream_arrow([]).map_err(ComputeError::Query)?.get_schema();
        // `step` rather than the iterator, which panics on a failed fetch.
        while let Some(chunk) = statement.step().map_err(ComputeError::Query)? {
            on_batch(RecordBatch::from(&chunk)).map_err(ComputeError::Sink)?;
        }
        Ok(schema)
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
            .conn
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
