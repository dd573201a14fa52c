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
//! abort the process, `query` runs SQL text), so [`Database::references`]
//! lists every table function a query calls, from DuckDB's own parse tree
//! (`json_serialize_sql`), for the caller to hold against an allow-list.
//! The same tree names every table a query reads, because a table name can
//! stand for a reader too: DuckDB reads `FROM 'x.csv'` with `read_csv` (a
//! replacement scan), and its system views (`pg_catalog.pg_settings`) call
//! table functions of their own.

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

/// Why a text is not one SELECT, in the words a run uses.
impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Invalid(message) => f.write_str(message),
            Refusal::Count(0) => f.write_str("there is no statement to run"),
            Refusal::Count(n) => write!(f, "it holds {n} statements; only one SELECT may run"),
            Refusal::NotSelect(kind) => write!(f, "it is {kind}, not a SELECT; only one SELECT may run"),
        }
    }
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
        self.prepare_one(sql)?.expect(ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT)
    }

    /// Checks that `sql`, which the host wrote around a checked SELECT, is
    /// exactly one COPY.
    pub fn check_copy(&self, sql: &str) -> Result<(), Refusal> {
        self.prepare_one(sql)?.expect(ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_COPY)
    }

    /// The Arrow schema of the result of `sql`, exactly one SELECT, from
    /// binding it without running it.
    pub fn select_schema(&self, sql: &str) -> Result<arrow_schema::Schema, Refusal> {
        let prepared = self.prepare_one(sql)?;
        prepared.expect(ffi::duckdb_statement_type_DUCKDB_STATEMENT_TYPE_SELECT)?;
        // SAFETY: a successfully prepared statement; each name is copied and
        // freed, each type destroyed after the conversion below.
        let count = unsafe { ffi::duckdb_prepared_statement_column_count(prepared.0) };
        let mut names = Vec::with_capacity(count as usize);
        let mut types = Vec::with_capacity(count as usize);
        for column in 0..count {
            let name = unsafe { ffi::duckdb_prepared_statement_column_name(prepared.0, column) };
            if name.is_null() {
                return Err(Refusal::Invalid(format!("DuckDB gives no name for column {column}")));
            }
            names.push(unsafe { CStr::from_ptr(name) }.to_owned());
            unsafe { ffi::duckdb_free(name as *mut std::ffi::c_void) };
            types.push(LogicalType(unsafe { ffi::duckdb_prepared_statement_column_logical_type(prepared.0, column) }));
        }
        let mut name_pointers: Vec<*const c_char> = names.iter().map(|name| name.as_ptr()).collect();
        let mut type_handles: Vec<ffi::duckdb_logical_type> = types.iter().map(|t| t.0).collect();
        let mut schema = arrow_schema::ffi::FFI_ArrowSchema::empty();
        let mut options: ffi::duckdb_arrow_options = ptr::null_mut();
        // SAFETY: an open connection; `names` and `types` hold `count`
        // live entries; `schema` is an ArrowSchema the caller owns, which
        // DuckDB fills and which is released when it drops.
        let error = unsafe {
            ffi::duckdb_connection_get_arrow_options(self.checker.0, &mut options);
            let error = ffi::duckdb_to_arrow_schema(
                options,
                type_handles.as_mut_ptr(),
                name_pointers.as_mut_ptr(),
                count,
                &mut schema as *mut arrow_schema::ffi::FFI_ArrowSchema as *mut ffi::ArrowSchema,
            );
            ffi::duckdb_destroy_arrow_options(&mut options);
            ErrorData(error)
        };
        if let Some(message) = error.message() {
            return Err(Refusal::Invalid(format!("the query's Arrow schema: {message}")));
        }
        arrow_schema::Schema::try_from(&schema).map_err(|e| Refusal::Invalid(format!("the query's Arrow schema: {e}")))
    }

    /// `sql` prepared on the checker connection, if it is exactly one
    /// statement that DuckDB can parse and bind.
    fn prepare_one(&self, sql: &str) -> Result<Prepared, Refusal> {
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
        let mut statement = Prepared(ptr::null_mut());
        // SAFETY: statement 0 of the extracted set; the prepared statement is
        // destroyed when `statement` drops, on every path.
        let state = unsafe { ffi::duckdb_prepare_extracted_statement(self.checker.0, guard.0, 0, &mut statement.0) };
        if state != ffi::DuckDBSuccess {
            let error = unsafe { message(ffi::duckdb_prepare_error(statement.0)) };
            return Err(Refusal::Invalid(error.unwrap_or_else(|| "DuckDB cannot prepare the query".to_owned())));
        }
        Ok(statement)
    }
}

/// A column type DuckDB handed over, destroyed on drop.
struct LogicalType(ffi::duckdb_logical_type);

impl Drop for LogicalType {
    fn drop(&mut self) {
        // SAFETY: a handle DuckDB created for us, destroyed once.
        unsafe { ffi::duckdb_destroy_logical_type(&mut self.0) };
    }
}

/// What a C API call that reports errors as data returned, destroyed on drop.
struct ErrorData(ffi::duckdb_error_data);

impl ErrorData {
    fn message(&self) -> Option<String> {
        // SAFETY: a handle DuckDB returned (null when there is no error).
        if self.0.is_null() || !unsafe { ffi::duckdb_error_data_has_error(self.0) } {
            return None;
        }
        Some(unsafe { message(ffi::duckdb_error_data_message(self.0)) }.unwrap_or_else(|| "unknown error".to_owned()))
    }
}

impl Drop for ErrorData {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: destroyed once.
            unsafe { ffi::duckdb_destroy_error_data(&mut self.0) };
        }
    }
}

/// A statement prepared on the checker connection; never executed.
struct Prepared(ffi::duckdb_prepared_statement);

impl Prepared {
    fn expect(&self, wanted: ffi::duckdb_statement_type) -> Result<(), Refusal> {
        // SAFETY: a successfully prepared statement.
        match unsafe { ffi::duckdb_prepared_statement_type(self.0) } {
            kind if kind == wanted => Ok(()),
            other => Err(Refusal::NotSelect(statement_type_name(other))),
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // SAFETY: destroyed once; DuckDB accepts a failed preparation's handle.
        unsafe { ffi::duckdb_destroy_prepare(&mut self.0) };
    }
}

impl Database {
    /// Every table function `sql` calls and every table it names, anywhere
    /// in it (subqueries, CTEs, joins). `sql` must already have passed
    /// `check_select`.
    pub fn references(&self, sql: &str) -> Result<References, Refusal> {
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
        let mut references = References::default();
        collect_references(&tree, &mut references);
        Ok(references)
    }

    /// The views DuckDB defines itself (`duckdb_tables`, `pg_settings`, …),
    /// lower-cased: a query that names one runs the table function behind it.
    pub fn system_views(&self) -> Result<Vec<String>, duckdb::Error> {
        let mut statement = self.conn.prepare("SELECT DISTINCT lower(view_name) FROM duckdb_views() WHERE internal")?;
        let names = statement.query_map([], |row| row.get(0))?;
        names.collect()
    }
}

/// What a query's parse tree reads.
#[derive(Debug, Default)]
pub struct References {
    /// Table functions, lower-cased as DuckDB resolves them.
    pub functions: Vec<String>,
    /// Tables and views by name (CTE names among them), as written.
    pub tables: Vec<TableName>,
}

/// A table reference: `catalog.schema.name`, each part empty if not written.
#[derive(Debug)]
pub struct TableName {
    pub catalog: String,
    pub schema: String,
    pub name: String,
}

/// Walks a `json_serialize_sql` tree for `{"type": "TABLE_FUNCTION",
/// "function": {"function_name": …}}` and `{"type": "BASE_TABLE", …}` nodes.
fn collect_references(node: &serde_json::Value, found: &mut References) {
    match node {
        serde_json::Value::Object(map) => {
            let text = |key: &str| map.get(key).and_then(|n| n.as_str()).unwrap_or_default().to_owned();
            match map.get("type").and_then(|t| t.as_str()) {
                Some("TABLE_FUNCTION") => {
                    let name = map
                        .get("function")
                        .and_then(|f| f.get("function_name"))
                        .and_then(|n| n.as_str())
                        // A table function node without a readable name is refused.
                        .unwrap_or("<unnamed>");
                    found.functions.push(name.to_owned());
                }
                Some("BASE_TABLE") => found.tables.push(TableName {
                    catalog: text("catalog_name"),
                    schema: text("schema_name"),
                    name: text("table_name"),
                }),
                _ => {}
            }
            map.values().for_each(|v| collect_references(v, found));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_select_is_typed_without_running() {
        let db = Database::open(None).unwrap();
        let schema = db.select_schema("SELECT 1::BIGINT AS a, 'x' AS b, 1.5::DECIMAL(12, 2) AS c").unwrap();
        let fields: Vec<String> = schema.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect();
        assert_eq!(fields, ["a Int64", "b Utf8", "c Decimal128(12, 2)"]);
        assert!(matches!(db.select_schema("CREATE TABLE t (a INT)"), Err(Refusal::NotSelect("CREATE"))));
        assert!(db.check_copy("COPY (SELECT 1) TO '/nowhere/x.parquet' (FORMAT parquet)").is_ok());
        assert!(matches!(db.check_copy("COPY (SELECT 1;) TO '/nowhere/x.parquet'"), Err(Refusal::Invalid(_))));
    }
}
