//! `mode: merge`: upsert by key columns, copy-on-write.
//!
//! An output row replaces every table row with the same key; an output row
//! whose key is not in the table is inserted; table rows whose key is not in
//! the output stay. Only the data files that hold a replaced row are
//! rewritten: their other rows are written again, next to the output, and the
//! snapshot (an `overwrite`) marks those files deleted. Files without a
//! replaced row stay as they are. The result derives from one table state, so
//! after a commit conflict the merge is computed again on the new state.
//!
//! Keys are compared in Arrow's row format (`arrow-row`), on the table's key
//! types. The step's output must hold each key at most once and no NULL key.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use arrow_select::filter::filter_record_batch;
use futures::TryStreamExt;
use iceberg::scan::FileScanTask;
use iceberg::table::Table;

use super::{LakehouseError, read, schema};
use crate::plan::TableRef;

/// What a merge writes, computed on one table state.
pub(super) struct Merged {
    /// The output, then the rows kept from every replaced file.
    pub batches: Vec<RecordBatch>,
    /// The data files holding a replaced row, which the snapshot removes.
    pub replaced_files: HashSet<String>,
    /// Table rows replaced by an output row.
    pub updated: u64,
    /// Output rows whose key was not in the table.
    pub inserted: u64,
    /// Table rows written again because they share a file with a replaced row.
    pub rewritten: u64,
}

/// Checks the step's output before anything is read or written: every key
/// is a column, no key is NULL, and no key appears twice.
pub(super) fn check_output(
    table_ref: &TableRef,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    keys: &[String],
) -> Result<(), LakehouseError> {
    let table = table_ref.to_string();
    let mut types = Vec::with_capacity(keys.len());
    for key in keys {
        let Ok(field) = schema.field_with_name(key) else {
            let columns = schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
            return Err(LakehouseError::MergeKeyNotInOutput { table, key: key.clone(), columns });
        };
        types.push(field.data_type().clone());
    }
    for key in keys {
        let nulls: usize = batches.iter().map(|b| b.column_by_name(key).map_or(0, |c| c.null_count())).sum();
        if nulls > 0 {
            return Err(LakehouseError::MergeKeyNull { table, key: key.clone(), rows: nulls });
        }
    }
    let converter = converter(&types).map_err(|e| arrow_error(table_ref, e))?;
    let mut seen: HashMap<Box<[u8]>, u64> = HashMap::new();
    let mut example: Option<(Box<[u8]>, String)> = None;
    for batch in batches {
        let rows = key_rows(&converter, batch, keys, &types).map_err(|e| arrow_error(table_ref, e))?;
        for i in 0..batch.num_rows() {
            let count = seen.entry(rows.row(i).as_ref().into()).or_default();
            *count += 1;
            if *count == 2 && example.is_none() {
                example = Some((rows.row(i).as_ref().into(), describe_key(batch, keys, i)));
            }
        }
    }
    if let Some((example_row, example)) = example {
        let duplicated = seen.values().filter(|&&n| n > 1).count();
        let times = seen[&example_row];
        return Err(LakehouseError::DuplicateMergeKeys { table, keys: keys.join(", "), duplicated, example, times });
    }
    Ok(())
}

/// Merges `output` into the table's current snapshot (see the module docs).
pub(super) async fn merge(
    table: &Table,
    table_ref: &TableRef,
    output: &[RecordBatch],
    keys: &[String],
) -> Result<Merged, LakehouseError> {
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    let output_rows: u64 = output.iter().map(|b| b.num_rows() as u64).sum();
    let mut merged = Merged {
        batches: output.to_vec(),
        replaced_files: HashSet::new(),
        updated: 0,
        inserted: output_rows,
        rewritten: 0,
    };
    let table_schema = schema::table_arrow_schema(table).map_err(error("cannot convert the table schema to Arrow"))?;
    // The keys as the table stores them. A key the table lacks (a column this
    // commit adds) matches no table row: everything is inserted.
    let Some(types) = keys
        .iter()
        .map(|k| table_schema.field_with_name(k).ok().map(|f| f.data_type().clone()))
        .collect::<Option<Vec<DataType>>>()
    else {
        return Ok(merged);
    };
    if table.metadata().current_snapshot().is_none() || output_rows == 0 {
        return Ok(merged);
    }
    let converter = converter(&types).map_err(|e| arrow_error(table_ref, e))?;
    let mut output_keys: HashSet<Box<[u8]>> = HashSet::new();
    for batch in output {
        let rows = key_rows(&converter, batch, keys, &types).map_err(|e| arrow_error(table_ref, e))?;
        output_keys.extend((0..batch.num_rows()).map(|i| rows.row(i).as_ref().into()));
    }

    let tasks = read::live_files(table, table_ref).await?;
    if tasks.iter().any(|t| !t.deletes.is_empty()) {
        return Err(LakehouseError::Unsupported {
            table: table_ref.to_string(),
            message: "the table has delete files, and `mode: merge` only rewrites tables without them; \
                      compact the table (for example rewrite it with `mode: overwrite`) first"
                .into(),
        });
    }
    let mut by_file: BTreeMap<String, Vec<FileScanTask>> = BTreeMap::new();
    for task in tasks {
        by_file.entry(task.data_file_path.clone()).or_default().push(task);
    }
    let mut matched_keys: HashSet<Box<[u8]>> = HashSet::new();
    for (path, tasks) in by_file {
        let stream = table
            .reader_builder()
            .build()
            .read(Box::pin(futures::stream::iter(tasks.into_iter().map(Ok))))
            .map_err(error("cannot read data files"))?
            .stream();
        let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(error("cannot read data files"))?;
        let mut kept = Vec::with_capacity(batches.len());
        let mut replaced = 0u64;
        for batch in batches {
            let rows = key_rows(&converter, &batch, keys, &types).map_err(|e| arrow_error(table_ref, e))?;
            let keep: BooleanArray = (0..batch.num_rows())
                .map(|i| {
                    let key = rows.row(i);
                    let hit = output_keys.contains(key.as_ref());
                    if hit && !matched_keys.contains(key.as_ref()) {
                        matched_keys.insert(key.as_ref().into());
                    }
                    Some(!hit)
                })
                .collect();
            replaced += keep.false_count() as u64;
            kept.push(filter_record_batch(&batch, &keep).map_err(|e| arrow_error(table_ref, e))?);
        }
        if replaced > 0 {
            merged.updated += replaced;
            merged.rewritten += kept.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            merged.batches.extend(kept.into_iter().filter(|b| b.num_rows() > 0));
            merged.replaced_files.insert(path);
        }
    }
    merged.inserted = output_rows - matched_keys.len() as u64;
    Ok(merged)
}

fn converter(types: &[DataType]) -> Result<RowConverter, ArrowError> {
    RowConverter::new(types.iter().map(|t| SortField::new(t.clone())).collect())
}

/// The key columns of `batch` in row format, cast to `types`.
fn key_rows(
    converter: &RowConverter,
    batch: &RecordBatch,
    keys: &[String],
    types: &[DataType],
) -> Result<Rows, ArrowError> {
    let columns = keys
        .iter()
        .zip(types)
        .map(|(key, data_type)| {
            let column = batch
                .column_by_name(key)
                .ok_or_else(|| ArrowError::SchemaError(format!("merge key `{key}` is missing from a batch")))?;
            if column.data_type() == data_type { Ok(column.clone()) } else { arrow_cast::cast(column, data_type) }
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    converter.convert_columns(&columns)
}

/// `order_id=42`, or `order_id=42, region=EU` for a composite key.
fn describe_key(batch: &RecordBatch, keys: &[String], row: usize) -> String {
    let options = FormatOptions::default();
    keys.iter()
        .map(|key| {
            let value = batch
                .column_by_name(key)
                .and_then(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok().map(|f| f.value(row).to_string()))
                .unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn arrow_error(table_ref: &TableRef, error: ArrowError) -> LakehouseError {
    LakehouseError::Unsupported { table: table_ref.to_string(), message: format!("cannot compare merge keys: {error}") }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::config::Ident;

    fn table_ref() -> TableRef {
        TableRef {
            namespace: Ident::try_from("silver".to_string()).unwrap(),
            name: Ident::try_from("t".to_string()).unwrap(),
        }
    }

    fn batch(ids: &[Option<i64>], regions: &[&str]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("region", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(ids.to_vec())), Arc::new(StringArray::from(regions.to_vec()))],
        )
        .unwrap()
    }

    fn check(batches: &[RecordBatch], keys: &[&str]) -> Result<(), String> {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        check_output(&table_ref(), &batches[0].schema(), batches, &keys).map_err(|e| e.to_string())
    }

    #[test]
    fn output_keys_must_exist_be_set_and_be_unique() {
        let a = batch(&[Some(1), Some(2)], &["EU", "US"]);
        let b = batch(&[Some(3), Some(1)], &["EU", "US"]);
        assert_eq!(check(&[a.clone()], &["id"]), Ok(()));
        // Unique across batches on (id, region), not on id alone.
        assert_eq!(check(&[a.clone(), b.clone()], &["id", "region"]), Ok(()));
        assert_eq!(
            check(&[a.clone(), b.clone()], &["id"]).unwrap_err(),
            "table `silver.t`: the step's output has 1 merge key (id) on more than one row, for example \
             id=1 on 2 rows; a merge needs at most one row per key"
        );
        assert_eq!(
            check(&[a.clone()], &["order_id"]).unwrap_err(),
            "table `silver.t`: merge key `order_id` is not a column of the step's output (its columns: id, region)"
        );
        let nulls = batch(&[None, Some(2)], &["EU", "US"]);
        assert_eq!(
            check(&[nulls], &["region", "id"]).unwrap_err(),
            "table `silver.t`: merge key `id` is NULL on 1 row of the step's output; a merge needs a key on every row"
        );
    }
}
