//! Is every floe-host table the same as its baseline? Both are read as
//! Parquet by DuckDB: floe-host's table as the data files in its warehouse
//! folder (the bench's catalog is fresh, so each table has exactly one
//! snapshot and every file there is live), the baseline as its one file.
//! Compared: rows, column names and types, the sum of every numeric column,
//! and the sum of a hash of every whole row (order-independent; duplicate
//! rows count).

use std::path::{Path, PathBuf};

use duckdb::Connection;

use super::baseline::output_file;
use super::plan::Step;
use super::setup::Project;
use super::sql_path;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub rows: u64,
    pub columns: Vec<(String, String)>,
    pub sums: Vec<(String, String)>,
    pub hash: String,
}

pub struct Check {
    pub step: String,
    pub floe_files: usize,
    /// None: floe-host did not commit the step (its run failed before).
    pub floe: Option<Fingerprint>,
    pub baseline: Fingerprint,
}

impl Check {
    pub fn equal(&self) -> bool {
        // An empty output has no data file on floe-host's side, so no columns.
        self.floe.as_ref().is_some_and(|f| f.rows == self.baseline.rows && (f.rows == 0 || *f == self.baseline))
    }

    /// What differs, for the report.
    pub fn difference(&self) -> String {
        let Some(a) = &self.floe else { return "floe-host did not commit the step".into() };
        let b = &self.baseline;
        if a.rows != b.rows {
            return format!("rows {} vs {}", a.rows, b.rows);
        }
        if a.columns != b.columns {
            return format!("columns {:?} vs {:?}", a.columns, b.columns);
        }
        if a.sums != b.sums {
            return format!("sums {:?} vs {:?}", a.sums, b.sums);
        }
        if a.hash != b.hash {
            return "same rows, columns and sums, different row contents (row hash)".into();
        }
        String::new()
    }
}

/// `committed`: the steps floe-host committed (all of them, unless it failed).
pub fn compare(steps: &[Step], committed: &[&str], project: &Project) -> Result<Vec<Check>, String> {
    let conn = Connection::open_in_memory().map_err(|e| format!("DuckDB: {e}"))?;
    steps
        .iter()
        .map(|step| {
            let mut files = Vec::new();
            parquet_files(&step.data_dir, &mut files)?;
            let floe = committed
                .contains(&step.name.as_str())
                .then(|| fingerprint(&conn, &files))
                .transpose()
                .map_err(|e| format!("step `{}`, floe-host table: {e}", step.name))?;
            let baseline = fingerprint(&conn, &[output_file(project, step)])
                .map_err(|e| format!("step `{}`, baseline: {e}", step.name))?;
            Ok(Check { step: step.name.clone(), floe_files: files.len(), floe, baseline })
        })
        .collect()
}

fn parquet_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_dir() {
            parquet_files(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            files.push(path);
        }
    }
    files.sort();
    Ok(())
}

fn is_numeric(sql_type: &str) -> bool {
    sql_type.starts_with("DECIMAL")
        || matches!(
            sql_type,
            "TINYINT"
                | "SMALLINT"
                | "INTEGER"
                | "BIGINT"
                | "HUGEINT"
                | "UTINYINT"
                | "USMALLINT"
                | "UINTEGER"
                | "UBIGINT"
                | "FLOAT"
                | "DOUBLE"
        )
}

fn fingerprint(conn: &Connection, files: &[PathBuf]) -> Result<Fingerprint, duckdb::Error> {
    if files.is_empty() {
        return Ok(Fingerprint::default());
    }
    let source = format!("read_parquet([{}])", files.iter().map(|f| sql_path(f)).collect::<Vec<_>>().join(", "));
    let columns: Vec<(String, String)> = conn
        .prepare(&format!("DESCRIBE SELECT * FROM {source}"))?
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?
        .collect::<Result<_, _>>()?;
    let numeric: Vec<&String> = columns.iter().filter(|(_, t)| is_numeric(t)).map(|(c, _)| c).collect();
    let mut select = vec!["count(*)".to_owned(), "CAST(coalesce(sum(hash(t)::HUGEINT), 0) AS VARCHAR)".to_owned()];
    select.extend(numeric.iter().map(|c| format!("CAST(sum(t.\"{}\") AS VARCHAR)", c.replace('"', "\"\""))));
    let sql = format!("SELECT {} FROM {source} AS t", select.join(", "));
    conn.query_row(&sql, [], |row| {
        let sums = numeric
            .iter()
            .enumerate()
            .map(|(i, c)| Ok(((*c).clone(), row.get::<_, Option<String>>(i + 2)?.unwrap_or_else(|| "NULL".into()))))
            .collect::<Result<_, duckdb::Error>>()?;
        Ok(Fingerprint { rows: row.get::<_, i64>(0)? as u64, hash: row.get(1)?, sums, columns: columns.clone() })
    })
}
