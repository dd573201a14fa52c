//! One DuckDB database and the two connections the host keeps to it: the
//! duckdb-rs `Connection` that loads inputs and streams results, and a raw
//! connection that only parses and types statements.
//!
//! The second connection exists because duckdb-rs's `prepare` runs every
//! statement of a string but the last: `SELECT 1; COPY … TO '/etc/…'` would
//! run the COPY before anything could look at it. The checker splits the
//! string with DuckDB's own parser (`duckdb_extract_statements`) and reads
//! the prepared statement's type (`duckdb_prepared_statement_type`), so a
//! query is run only when it is exactly one SELECT. The database is opened
//! through the C API (duckdb-rs keeps its handle private) and closed after
//! both connections.
//!
//! A SELECT can still call table functions with effects that the
//! configuration lock does not cover (`enable_logging` writes files and can
//! abort the process, `query` runs SQL text), so [`Database::table_functions`]
//! lists every table function a query calls, from DuckDB's own parse tree
//! (`json_serialize_sql`), for the caller to hold against an allow-list.

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use duckdb::{Connection, ffi};

/// Why a statement may not run.
#[derive(Debug)]
pub enum Refusal {
    /// DuckDB cannot parse or bind it; the message is DuckDB's.
    Invalid(String),
    /// Not exactly one statement.
    Count(usize),
    /// One statement, but not a SELECT; the type's name.
    NotSelect(&'static str),
}

/// A DuckDB database owned by the host.
pub struct Database {
    // Fields drop in order: both connections before the database.
    conn: Connection,
    checker: RawConnection,
    // Only held, so that it closes after both connections.
    #[allow(dead_code)]
    db: RawDatabase,
}

struct RawDatabase(ffi::duckdb_database);
struct RawConnection(ffi::duckdb_connection);

// SAFETY: DuckDB's database and connection handles may be used from any
// thread, one call at a time; `Database` is used by one step at a time.
unsafe impl Send for RawDatabase {}
unsafe impl Send for RawConnection {}

impl Drop for RawConnection {
    fn drop(&mut self) {
        // SAFETY: the handle came from duckdb_connect and is dropped once.
        unsafe { ffi::duckdb_disconnect(&mut self.0) };
    }
}

impl Drop for RawDatabase {
    fn drop(&mut self) {
        // SAFETY: the handle came from duckdb_open and every connection to it
        // was dropped before (field order in `Database`).
        unsafe { ffi::duckdb_close(&mut self.0) };
    }
}

impl Database {
    /// Opens `path` (a file), or a new in-memory database.
    pub fn open(path: Option<&str>) -> Result<Self, String> {
        let path = match path {
            None | Some(":memory:") | Some("") => None,
            Some(path) => Some(CString::new(path).map_err(|_| format!("the database path {path:?} holds a NUL"))?),
        };
        let mut db: ffi::duckdb_database = ptr::null_mut();
        // SAFETY: a valid C string or null (in-memory), and an out pointer.
        let state = unsafe { ffi::duckdb_open(path.as_ref().map_or(ptr::null(), |p| p.as_ptr()), &mut db) };
        if state != ffi::DuckDBSuccess {
            // SAFETY: duckdb_close accepts what a failed open left.
            unsafe { ffi::duckdb_close(&mut db) };
            return Err("duckdb_open failed".to_owned());
        }
        let db = RawDatabase(db);
        let mut con: ffi::duckdb_connection = ptr::null_mut();
        // SAFETY: an open database and an out pointer.
        if unsafe { ffi::duckdb_connect(db.0, &mut con) } != ffi::DuckDBSuccess {
            unsafe { ffi::duckdb_disconnect(&mut con) };
            return Err("duckdb_connect failed".to_owned());
        }
        let checker = RawConnection(con);
        // SAFETY: an open database, which outlives the connection (field order).
        let conn = unsafe { Connection::open_from_raw(db.0) }.map_err(|e| e.to_string())?;
        Ok(Database { conn, checker, db })
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Checks that `sql` is exactly one SELECT (or another read-only query
    /// form DuckDB types as SELECT: `FROM t`, `VALUES`, `WITH … SELECT`),
    /// without running anything.
    pub fn check_select(&self, sql: &str) -> Result<(), Refusal> {
        let text = CString::new(sql).map_err(|_| Refusal::Invalid("the query holds a NUL character".to_owned()))?;
        let mut extracted: ffi::duckdb_extracted_statements = ptr::null_mut();
        // SAFETY: an open connection, a C string and an out pointer; the
        // extracted statements are destroyed by the guard on every path.
        let count = unsafe { ffi::duckdb_extract_statements(self.checker.0, text.as_ptr(), &mut extracted) };
        let guard = Extracted(extracted);
        if count == 0 {
            // SAFETY: the extracted handle from above.
            let error = unsafe { message(ffi::duckdb_extract_statements_error(guard.0)) };
            return Err(match error {
                Some(message) => Refusal::Invalid(message),
                None => Refusal::Count(0),
            });
        }
        if count != 1 {
            return Err(Refusal::Count(count as usize));
        }
        let mut statement: ffi::duckdb_prepared_statement = ptr::null_mut();
        // SAFETY: statement 0 of the extracted set; the prepared statement is
        // destroyed below on every path.
        let state = unsafe { ffi::duckdb_prepare_extracted_statement(self.checker.0, guard.0, 0, &mut statement) };
        let result = if state != ffi::DuckDBSuccess {
            let error = unsafe { message(ffi::duckdb_prepare_error(statement)) };
            Err(Refusal::Invalid(error.unwrap_or_else(|| "DuckDB cannot prepare the query".to_owned())))
        } else {
            match unsafe { ffi::duckdb_prepared_statement_type(statement) } {
                ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT => Ok(()),
                other => Err(Refusal::NotSelect(statement_type_name(other))),
            }
        };
        unsafe { ffi::duckdb_destroy_prepare(&mut statement) };
        result
    }
}

impl Database {
    /// Every table function `sql` calls, anywhere in it (subqueries, CTEs,
    /// joins), lower-cased as DuckDB resolves them. `sql` must already have
    /// passed `check_select`.
    pub fn table_functions(&self, sql: &str) -> Result<Vec<String>, Refusal> {
        let tree: String = self
            .conn
            .query_row("SELECT json_serialize_sql(?::VARCHAR)", [sql], |row| row.get(0))
            .map_err(|e| Refusal::Invalid(format!("DuckDB cannot show how it parses the query: {e}")))?;
        let tree: serde_json::Value =
            serde_json::from_str(&tree).map_err(|e| Refusal::Invalid(format!("unreadable parse tree: {e}")))?;
        if tree.get("error").and_then(serde_json::Value::as_bool) == Some(true) {
            let message = tree.get("error_message").and_then(|m| m.as_str()).unwrap_or("DuckDB cannot parse it");
            return Err(Refusal::Invalid(message.to_owned()));
        }
        match tree.get("statements").and_then(|s| s.as_array()).map(Vec::len) {
            Some(1) => {}
            Some(n) => return Err(Refusal::Count(n)),
            None => return Err(Refusal::Invalid("the parse tree has no statement list".to_owned())),
        }
        let mut names = Vec::new();
        collect_table_functions(&tree, &mut names);
        Ok(names)
    }
}

/// Walks a `json_serialize_sql` tree for `{"type": "TABLE_FUNCTION",
/// "function": {"function_name": …}}` nodes.
fn collect_table_functions(node: &serde_json::Value, names: &mut Vec<String>) {
    match node {
        serde_json::Value::Object(map) => {
            if map.get("type").and_then(|t| t.as_str()) == Some("TABLE_FUNCTION") {
                let name = map
                    .get("function")
                    .and_then(|f| f.get("function_name"))
                    .and_then(|n| n.as_str())
                    // A table function node without a readable name is refused.
                    .unwrap_or("<unnamed>");
                names.push(name.to_owned());
            }
            map.values().for_each(|v| collect_table_functions(v, names));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_table_functions(v, names)),
        _ => {}
    }
}

struct Extracted(ffi::duckdb_extracted_statements);

impl Drop for Extracted {
    fn drop(&mut self) {
        // SAFETY: destroyed once, whether extraction succeeded or not (as the C API asks).
        unsafe { ffi::duckdb_destroy_extracted(&mut self.0) };
    }
}

/// A C string DuckDB owns, copied; `None` for null.
unsafe fn message(text: *const c_char) -> Option<String> {
    (!text.is_null()).then(|| unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned())
}

fn statement_type_name(t: ffi::duckdb_statement_type) -> &'static str {
    match t {
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_INSERT => "INSERT",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_UPDATE => "UPDATE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DELETE => "DELETE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPLAIN => "EXPLAIN",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE => "CREATE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DROP => "DROP",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_PRAGMA => "PRAGMA",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY => "COPY",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ATTACH => "ATTACH",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_DETACH => "DETACH",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SET => "SET",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_LOAD => "LOAD or INSTALL",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CALL => "CALL",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_EXPORT => "EXPORT",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_ALTER => "ALTER",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_TRANSACTION => "a transaction statement",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_VARIABLE_SET => "SET VARIABLE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_CREATE_FUNC => "CREATE MACRO or FUNCTION",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MULTI => "several statements",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY_DATABASE => "COPY DATABASE",
        ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_MERGE_INTO => "MERGE INTO",
        _ => "a statement other than SELECT",
    }
}
