//! The atomic step of a commit: swapping a table's metadata pointer in the
//! catalog, only if it still points where we read it.
//!
//! The SQL catalog keeps the pointer in the `iceberg_tables` table that
//! iceberg-catalog-sql and pyiceberg's SqlCatalog share; the swap is one
//! conditional UPDATE, exactly as those catalogs do it.
//!
//! SQLite lets one writer in at a time. Concurrent runs (one process per
//! partition) therefore meet "database is locked" (SQLITE_BUSY): the
//! connection waits for the lock (`busy_timeout`), and a swap that still gets
//! BUSY is tried again, since a BUSY statement changed nothing. Only a swap
//! that finds another pointer is a conflict.

use std::str::FromStr;
use std::time::Duration;

use iceberg::{Error, ErrorKind, TableIdent};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// How long one statement waits for SQLite's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Swaps tried again after SQLITE_BUSY outlasted the timeout.
const BUSY_RETRIES: u32 = 5;

/// Compare-and-swap of metadata pointers in a SQL catalog.
pub(super) struct SqlPointer {
    pool: SqlitePool,
    catalog_name: String,
}

/// SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
fn is_busy(error: &sqlx::Error) -> bool {
    let Some(database) = error.as_database_error() else { return false };
    let code = database.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
    matches!(code & 0xff, 5 | 6) || database.message().contains("database is locked")
}

impl SqlPointer {
    pub async fn connect(uri: &str, catalog_name: &str) -> iceberg::Result<Self> {
        Self::connect_with(uri, catalog_name, BUSY_TIMEOUT).await
    }

    async fn connect_with(uri: &str, catalog_name: &str, busy_timeout: Duration) -> iceberg::Result<Self> {
        let unexpected = |e: sqlx::Error| Error::new(ErrorKind::Unexpected, format!("cannot connect to {uri}: {e}"));
        let options = SqliteConnectOptions::from_str(uri).map_err(unexpected)?.busy_timeout(busy_timeout);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.map_err(unexpected)?;
        // A process killed inside a transaction leaves a hot journal
        // (`catalog.db-journal`) that read-only readers cannot roll back:
        // they fail with "attempt to write a readonly database" until a
        // writer reads the file. This read, on a read-write connection, rolls
        // it back as soon as floe-host opens the catalog.
        sqlx::query("SELECT count(*) FROM sqlite_master").execute(&pool).await.map_err(unexpected)?;
        Ok(SqlPointer { pool, catalog_name: catalog_name.to_string() })
    }

    /// Points `table` at `new` if it still points at `expected`. A lost race
    /// is a retryable `CatalogCommitConflicts` error.
    pub async fn swap(&self, table: &TableIdent, expected: &str, new: &str) -> iceberg::Result<()> {
        let mut busy = 0;
        let updated = loop {
            let result = sqlx::query(
                "UPDATE iceberg_tables
                 SET metadata_location = ?, previous_metadata_location = ?
                 WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?
                   AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)
                   AND metadata_location = ?",
            )
            .bind(new)
            .bind(expected)
            .bind(&self.catalog_name)
            .bind(table.namespace().join("."))
            .bind(table.name())
            .bind(expected)
            .execute(&self.pool)
            .await;
            match result {
                Ok(done) => break done.rows_affected(),
                Err(e) if is_busy(&e) && busy < BUSY_RETRIES => {
                    busy += 1;
                    tracing::info!(table = %table, attempt = busy, "The catalog database is locked; trying the swap again.");
                    tokio::time::sleep(Duration::from_millis(50 << busy)).await;
                }
                Err(e) => {
                    return Err(
                        Error::new(ErrorKind::Unexpected, format!("catalog update failed: {e}")).with_retryable(true)
                    );
                }
            }
        };
        if updated == 0 {
            // After a BUSY retry, make sure the first attempt did not land.
            if busy > 0 && self.current(table).await.as_deref() == Some(new) {
                return Ok(());
            }
            return Err(Error::new(ErrorKind::CatalogCommitConflicts, format!("commit conflicted for table {table}"))
                .with_retryable(true));
        }
        Ok(())
    }

    /// Creates `table` pointing at `location`: the one INSERT that makes a
    /// new table visible, already with its first snapshot. A table of that
    /// name made meanwhile by another writer is a retryable conflict.
    pub async fn create(&self, table: &TableIdent, location: &str) -> iceberg::Result<()> {
        let mut busy = 0;
        loop {
            let result = sqlx::query(
                "INSERT INTO iceberg_tables
                 (catalog_name, table_namespace, table_name, metadata_location, iceberg_type)
                 VALUES (?, ?, ?, ?, 'TABLE')",
            )
            .bind(&self.catalog_name)
            .bind(table.namespace().join("."))
            .bind(table.name())
            .bind(location)
            .execute(&self.pool)
            .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) if is_busy(&e) && busy < BUSY_RETRIES => {
                    busy += 1;
                    tokio::time::sleep(Duration::from_millis(50 << busy)).await;
                }
                Err(e) => {
                    // After a BUSY retry, the first attempt may have landed.
                    if self.current(table).await.as_deref() == Some(location) {
                        return Ok(());
                    }
                    let unique = e.as_database_error().is_some_and(|d| d.is_unique_violation());
                    let kind = if unique { ErrorKind::CatalogCommitConflicts } else { ErrorKind::Unexpected };
                    return Err(Error::new(kind, format!("creating table {table} failed: {e}")).with_retryable(true));
                }
            }
        }
    }

    /// Where the table points now (`None` if that cannot be read).
    pub(super) async fn current(&self, table: &TableIdent) -> Option<String> {
        sqlx::query_scalar(
            "SELECT metadata_location FROM iceberg_tables
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?",
        )
        .bind(&self.catalog_name)
        .bind(table.namespace().join("."))
        .bind(table.name())
        .fetch_optional(&self.pool)
        .await
        .ok()
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iceberg::NamespaceIdent;
    use sqlx::Connection;

    /// A catalog file with one table pointing at `v1.json`.
    async fn catalog(dir: &std::path::Path) -> String {
        let uri = format!("sqlite://{}?mode=rwc", dir.join("catalog.db").display());
        let mut connection = sqlx::SqliteConnection::connect(&uri).await.unwrap();
        sqlx::query(
            "CREATE TABLE iceberg_tables (catalog_name TEXT, table_namespace TEXT, table_name TEXT,
             metadata_location TEXT, previous_metadata_location TEXT, iceberg_type TEXT)",
        )
        .execute(&mut connection)
        .await
        .unwrap();
        sqlx::query("INSERT INTO iceberg_tables VALUES ('default', 'silver', 'orders', 'v1.json', NULL, 'TABLE')")
            .execute(&mut connection)
            .await
            .unwrap();
        uri
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
    }

    #[test]
    fn a_locked_catalog_is_waited_for_not_failed() {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let uri = catalog(dir.path()).await;
            let table = TableIdent::new(NamespaceIdent::new("silver".into()), "orders".into());
            // A short busy timeout, so that the lock outlasts it and the swap's own retries take over.
            let pointer = SqlPointer::connect_with(&uri, "default", Duration::from_millis(20)).await.unwrap();
            let mut other = sqlx::SqliteConnection::connect(&uri).await.unwrap();
            sqlx::query("BEGIN EXCLUSIVE").execute(&mut other).await.unwrap();
            let release = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                sqlx::query("COMMIT").execute(&mut other).await.unwrap();
            });
            let started = std::time::Instant::now();
            pointer.swap(&table, "v1.json", "v2.json").await.expect("the swap waits for the lock");
            // Longer than the busy timeout: the swap tried again after SQLITE_BUSY.
            assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
            release.await.unwrap();
            assert_eq!(pointer.current(&table).await.as_deref(), Some("v2.json"));

            // A pointer that moved meanwhile is a conflict, to be retried on the new state.
            let error = pointer.swap(&table, "v1.json", "v3.json").await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::CatalogCommitConflicts);
            assert!(error.retryable());
        });
    }
}
