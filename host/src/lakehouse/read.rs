//! Reading a table's current snapshot as Arrow, through iceberg's scan (which
//! applies the snapshot's own schema and any delete files).

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use futures::TryStreamExt;
use iceberg::expr::Predicate;
use iceberg::table::Table;

use super::{LakehouseError, schema};
use crate::plan::TableRef;

pub async fn scan(table: &Table, table_ref: &TableRef) -> Result<(SchemaRef, Vec<RecordBatch>), LakehouseError> {
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    let arrow_schema = schema::table_arrow_schema(table).map_err(error("cannot convert the table schema to Arrow"))?;
    if table.metadata().current_snapshot_id().is_none() {
        return Ok((arrow_schema, Vec::new()));
    }
    let stream = table
        .scan()
        .select_all()
        .build()
        .map_err(error("cannot plan the scan"))?
        .to_arrow()
        .await
        .map_err(error("cannot start the scan"))?;
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(error("cannot read data files"))?;
    let arrow_schema = batches.first().map(|b| b.schema()).unwrap_or(arrow_schema);
    Ok((arrow_schema, batches))
}

/// `scan` keeping only the rows `filter` matches: data files whose partition
/// or column statistics cannot match are not read at all. Also returns the
/// size of the data files read.
pub async fn scan_filtered(
    table: &Table,
    table_ref: &TableRef,
    filter: Predicate,
) -> Result<(SchemaRef, Vec<RecordBatch>, u64), LakehouseError> {
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    let arrow_schema = schema::table_arrow_schema(table).map_err(error("cannot convert the table schema to Arrow"))?;
    if table.metadata().current_snapshot_id().is_none() {
        return Ok((arrow_schema, Vec::new(), 0));
    }
    let scan = table.scan().select_all().with_filter(filter).build().map_err(error("cannot plan the scan"))?;
    let tasks: Vec<_> = scan
        .plan_files()
        .await
        .map_err(error("cannot plan the scan"))?
        .try_collect()
        .await
        .map_err(error("cannot plan the scan"))?;
    let mut files = std::collections::BTreeMap::new();
    for task in &tasks {
        files.insert(task.data_file_path.clone(), task.file_size_in_bytes);
    }
    let stream = scan.to_arrow().await.map_err(error("cannot start the scan"))?;
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(error("cannot read data files"))?;
    let arrow_schema = batches.first().map(|b| b.schema()).unwrap_or(arrow_schema);
    Ok((arrow_schema, batches, files.values().sum()))
}
