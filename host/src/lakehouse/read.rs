//! Reading a table's current snapshot as Arrow, through iceberg's scan (which
//! applies the snapshot's own schema and any delete files), whole or only
//! the rows a filter matches.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use futures::TryStreamExt;
use std::collections::BTreeMap;

use iceberg::expr::Predicate;
use iceberg::scan::{FileScanTask, TableScan};
use iceberg::table::Table;

use super::{LakehouseError, schema};
use crate::plan::TableRef;

/// The data files a scan will read (after partition and statistics pruning).
pub(super) async fn plan_files(scan: &TableScan, table_ref: &TableRef) -> Result<Vec<FileScanTask>, LakehouseError> {
    let error =
        |source| LakehouseError::Table { table: table_ref.to_string(), message: "cannot plan the scan", source };
    scan.plan_files().await.map_err(error)?.try_collect().await.map_err(error)
}

/// Reads the table's current snapshot as Arrow; with `filter`, only the rows
/// it matches, and data files whose partition or column statistics cannot
/// match are not read at all. Also returns the size of the data files read.
pub async fn scan(
    table: &Table,
    table_ref: &TableRef,
    filter: Option<Predicate>,
) -> Result<(SchemaRef, Vec<RecordBatch>, u64), LakehouseError> {
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    let arrow_schema = schema::table_arrow_schema(table).map_err(error("cannot convert the table schema to Arrow"))?;
    if table.metadata().current_snapshot_id().is_none() {
        return Ok((arrow_schema, Vec::new(), 0));
    }
    let mut builder = table.scan().select_all();
    if let Some(filter) = filter {
        builder = builder.with_filter(filter);
    }
    let scan = builder.build().map_err(error("cannot plan the scan"))?;
    let files: BTreeMap<String, u64> = plan_files(&scan, table_ref)
        .await?
        .into_iter()
        .map(|task| (task.data_file_path, task.file_size_in_bytes))
        .collect();
    let stream = scan.to_arrow().await.map_err(error("cannot start the scan"))?;
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(error("cannot read data files"))?;
    let arrow_schema = batches.first().map(|b| b.schema()).unwrap_or(arrow_schema);
    Ok((arrow_schema, batches, files.values().sum()))
}
