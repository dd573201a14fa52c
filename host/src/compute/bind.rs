//! Checks SQL models with DuckDB and no data: each is parsed by DuckDB's own
//! parser, and bound against empty tables shaped like its inputs, so a
//! syntax error, a wrong column or an unknown function is found before a
//! run reads anything. The database is in memory, holds no rows, can read
//! no file, and runs nothing but DDL for the empty tables and `DESCRIBE`.

use arrow_schema::SchemaRef;

use super::database::{Database, Refusal};
use super::{ComputeError, Session, quote};
use crate::config::DuckdbProperties;

/// Why a model does not bind, with where DuckDB says it is.
#[derive(Debug, PartialEq)]
pub struct BindProblem {
    /// DuckDB's message, without the excerpt of the SQL it appends.
    pub message: String,
    /// Byte offset in the SQL, when DuckDB gives it (parser errors), or the
    /// 1-based line and column it shows (binder errors).
    pub at: Option<Position>,
}

#[derive(Debug, PartialEq)]
pub enum Position {
    Offset(usize),
    LineColumn(usize, usize),
}

/// An empty, locked-down, in-memory DuckDB for binding models.
pub struct Binder {
    session: Session,
}

impl Binder {
    pub fn open() -> Result<Self, ComputeError> {
        let properties =
            DuckdbProperties { memory_limit: Some("256MB".into()), threads: Some(1), ..Default::default() };
        let session = Session::open(&properties)?;
        session.lock_down(&[], &[])?;
        Ok(Binder { session })
    }

    fn db(&self) -> &Database {
        &self.session.db
    }

    /// Parses `sql` with DuckDB's parser only: no table needs to exist.
    pub fn parse(&self, sql: &str) -> Result<(), BindProblem> {
        let tree: String = self
            .db()
            .conn()
            .query_row("SELECT json_serialize_sql(?::VARCHAR)", [sql], |row| row.get(0))
            .map_err(|e| BindProblem { message: e.to_string(), at: None })?;
        let tree: serde_json::Value = serde_json::from_str(&tree)
            .map_err(|e| BindProblem { message: format!("unreadable parse tree: {e}"), at: None })?;
        if tree.get("error").and_then(serde_json::Value::as_bool) != Some(true) {
            return match tree.get("statements").and_then(|s| s.as_array()).map(Vec::len) {
                Some(1) => Ok(()),
                n => Err(BindProblem { message: Refusal::Count(n.unwrap_or(0)).to_string(), at: None }),
            };
        }
        let message = tree.get("error_message").and_then(|m| m.as_str()).unwrap_or("DuckDB cannot parse it");
        if message.starts_with("Only SELECT statements") {
            // Not one SELECT: how many statements, or which one, DuckDB's splitter says.
            let message = match self.db().check_select(sql) {
                Err(refused) => refused.to_string(),
                Ok(()) => message.to_string(),
            };
            return Err(BindProblem { message, at: None });
        }
        let offset = tree.get("position").and_then(|p| p.as_str()?.parse::<usize>().ok());
        Err(BindProblem { message: format!("Parser Error: {message}"), at: offset.map(Position::Offset) })
    }

    /// Creates the empty table `layer.name` with Arrow's columns.
    pub fn add_arrow_table(&self, layer: &str, name: &str, schema: &SchemaRef) -> Result<(), ComputeError> {
        let columns = super::types::column_definitions(schema, &format!("{layer}.{name}"))?;
        self.create(layer, name, &columns)
    }

    /// Creates the empty table `layer.name` with (column, DuckDB type) pairs.
    pub fn add_table(&self, layer: &str, name: &str, columns: &[(String, String)]) -> Result<(), ComputeError> {
        let columns: Vec<String> = columns.iter().map(|(c, t)| format!("{} {t}", quote(c))).collect();
        self.create(layer, name, &columns.join(", "))
    }

    fn create(&self, layer: &str, name: &str, columns: &str) -> Result<(), ComputeError> {
        let table = format!("{}.{}", quote(layer), quote(name));
        let sql = format!("CREATE SCHEMA IF NOT EXISTS {}; CREATE OR REPLACE TABLE {table} ({columns})", quote(layer));
        self.db().conn().execute_batch(&sql).map_err(|source| ComputeError::Load { table, source })
    }

    /// Binds `sql` (one SELECT) against the tables added so far and returns
    /// its output columns as (name, DuckDB type).
    pub fn bind(&self, sql: &str) -> Result<Vec<(String, String)>, BindProblem> {
        self.db().check_select(sql).map_err(|refused| match refused {
            Refusal::Invalid(message) => split_excerpt(&message),
            other => BindProblem { message: other.to_string(), at: None },
        })?;
        // DESCRIBE binds the query again and reports its columns; nothing runs.
        let describe = format!("DESCRIBE SELECT * FROM (\n{sql}\n)");
        let mut statement =
            self.db().conn().prepare(&describe).map_err(|e| BindProblem { message: e.to_string(), at: None })?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
            .map_err(|e| BindProblem { message: e.to_string(), at: None })?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| BindProblem { message: e.to_string(), at: None })
    }
}

/// DuckDB ends a binder error with `LINE n: <excerpt>` and a caret line under
/// the excerpt; returns the message before it, and the line and column.
fn split_excerpt(message: &str) -> BindProblem {
    let Some(at) = message.find("\n\nLINE ") else {
        return BindProblem { message: message.trim().to_string(), at: None };
    };
    let (head, excerpt) = message.split_at(at);
    let mut lines = excerpt.trim_start_matches('\n').lines();
    let position = (|| {
        let first = lines.next()?;
        let rest = first.strip_prefix("LINE ")?;
        let (number, text) = rest.split_once(':')?;
        let line: usize = number.trim().parse().ok()?;
        let prefix = first.len() - text.len() + 1; // "LINE n: "
        let caret = lines.next()?.find('^')?;
        // An excerpt that starts with `...` is cut: its columns are not the line's.
        let column = (!text.trim_start().starts_with("...") && caret >= prefix).then(|| caret - prefix + 1);
        Some(Position::LineColumn(line, column.unwrap_or(1)))
    })();
    BindProblem { message: head.trim().to_string(), at: position }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binds_and_describes() {
        let binder = Binder::open().unwrap();
        let syntax = binder.parse("SELECT a,\n b FORM t").unwrap_err();
        assert_eq!(syntax.at, Some(Position::Offset(18)), "{syntax:?}");
        assert!(syntax.message.contains("syntax error at or near"), "{syntax:?}");

        binder.add_table("silver", "t", &[("a".into(), "INTEGER".into()), ("b".into(), "VARCHAR".into())]).unwrap();
        let columns = binder.bind("SELECT a, b || 'x' AS c FROM silver.t").unwrap();
        assert_eq!(columns, vec![("a".to_string(), "INTEGER".to_string()), ("c".into(), "VARCHAR".into())]);

        let wrong = binder.bind("SELECT a,\n       nope FROM silver.t").unwrap_err();
        assert!(wrong.message.starts_with("Binder Error: Referenced column \"nope\" not found"), "{wrong:?}");
        assert_eq!(wrong.at, Some(Position::LineColumn(2, 8)), "{wrong:?}");
        let typo = binder.bind("SELECT lenght(b) FROM silver.t").unwrap_err();
        assert!(typo.message.contains("Did you mean \"length\""), "{typo:?}");
        // Nothing outside the database: no file, no second statement.
        assert!(binder.bind("SELECT * FROM read_csv('/etc/passwd')").is_err());
        let two = binder.bind("SELECT 1; SELECT 2").unwrap_err();
        assert!(two.message.contains("holds 2 statements"), "{two:?}");
        let copy = binder.parse("SELECT 1 AS n; COPY (SELECT 1) TO '/tmp/x.csv'").unwrap_err();
        assert_eq!(copy.message, "it holds 2 statements; only one SELECT may run");
        let drop = binder.parse("DROP TABLE silver.t").unwrap_err();
        assert!(drop.message.ends_with("not a SELECT; only one SELECT may run"), "{drop:?}");
    }
}
