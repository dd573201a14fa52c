//! Ephemeral DuckDB compute: one in-memory (or file) database per run. The
//! host loads each step's input tables as Arrow and reads the result back as
//! Arrow; DuckDB never touches a catalog, a bucket or a credential.

mod resources;
mod types;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use duckdb::Connection;

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
    #[error("{0}")]
    Query(#[source] duckdb::Error),
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
        let quoted = value.replace('\'', "''");
        self.conn.execute_batch(&format!("SET {setting} = '{quoted}'")).map_err(|source| ComputeError::Setting {
            setting,
            value: value.to_string(),
            source,
        })
    }

    /// Sets a DuckDB variable that SQL reads with `getvariable('name')`.
    pub fn set_variable(&self, name: &'static str, value: &str) -> Result<(), ComputeError> {
        let quoted = value.replace('\'', "''");
        self.conn.execute_batch(&format!("SET VARIABLE {name} = '{quoted}'")).map_err(|source| ComputeError::Setting {
            setting: name,
            value: value.to_string(),
            source,
        })
    }

    /// Creates (or replaces) `schema.table` from Arrow batches.
    pub fn load_table(
        &self,
        schema: &str,
        table: &str,
        arrow_schema: &SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<(), ComputeError> {
        let qualified = format!("{schema}.{table}");
        let columns = types::column_definitions(arrow_schema, &qualified)?;
        let load_error = |source| ComputeError::Load { table: qualified.clone(), source };
        self.conn
            .execute_batch(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; CREATE OR REPLACE TABLE \"{schema}\".\"{table}\" ({columns});"
            ))
            .map_err(load_error)?;
        let mut appender = self.conn.appender_to_db(table, schema).map_err(load_error)?;
        for batch in batches {
            appender.append_record_batch(batch).map_err(load_error)?;
        }
        appender.flush().map_err(load_error)?;
        Ok(())
    }

    /// Runs one query and returns its result as Arrow.
    pub fn query(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), ComputeError> {
        let sql = sql.trim().trim_end_matches(';');
        let mut statement = self.conn.prepare(sql).map_err(ComputeError::Query)?;
        let arrow = statement.query_arrow([]).map_err(ComputeError::Query)?;
        let schema = arrow.get_schema();
        let batches = arrow.collect();
        Ok((schema, batches))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;

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
