//! The atomic step of a commit: swapping a table's metadata pointer in the
//! catalog, only if it still points where we read it.
//!
//! The SQL catalog keeps the pointer in the `iceberg_tables` table that
//! iceberg-catalog-sql and pyiceberg's SqlCatalog share; the swap is one
//! conditional UPDATE, exactly as those catalogs do it.

use iceberg::{Error, ErrorKind, TableIdent};
use sqlx::SqlitePool;
use sqlx::sqlite::SqlitePoolOptions;

/// Compare-and-swap of metadata pointers in a SQL catalog.
pub(super) struct SqlPointer {
    pool: SqlitePool,
    catalog_name: String,
}

impl SqlPointer {
    pub async fn connect(uri: &str, catalog_name: &str) -> iceberg::Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect(uri)
            .await
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("cannot connect to {uri}: {e}")))?;
        Ok(SqlPointer { pool, catalog_name: catalog_name.to_string() })
    }

    /// Points `table` at `new` if it still points at `expected`. A lost race
    /// is a retryable `CatalogCommitConflicts` error.
    pub async fn swap(&self, table: &TableIdent, expected: &str, new: &str) -> iceberg::Result<()> {
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
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, format!("catalog update failed: {e}")).with_retryable(true))?;
        if result.rows_affected() == 0 {
            return Err(Error::new(ErrorKind::CatalogCommitConflicts, format!("commit conflicted for table {table}"))
                .with_retryable(true));
        }
        Ok(())
    }
}
