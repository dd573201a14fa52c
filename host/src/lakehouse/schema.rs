//! Between the Arrow schema a step produces and the Iceberg schema of its
//! table: deriving one, checking compatibility, aligning batches.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use iceberg::arrow::{arrow_schema_to_schema_auto_assign_ids, schema_to_arrow_schema};
use iceberg::spec::Schema;
use iceberg::table::Table;

use super::LakehouseError;
use crate::plan::TableRef;

/// The Arrow types DuckDB and plugins produce that Iceberg stores differently.
fn storable(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        other => other.clone(),
    }
}

/// An Iceberg schema for a step's output: same names and types, every column
/// optional (nullability is a data-quality rule, not a storage one).
pub fn iceberg_schema(produced: &SchemaRef) -> iceberg::Result<Schema> {
    let fields: Vec<Field> =
        produced.fields().iter().map(|f| Field::new(f.name(), storable(f.data_type()), true)).collect();
    arrow_schema_to_schema_auto_assign_ids(&ArrowSchema::new(fields))
}

/// Fails unless the table's current columns are the produced ones, in order.
pub fn check_compatible(table: &Table, table_ref: &TableRef, produced: &SchemaRef) -> Result<(), LakehouseError> {
    let existing = table.metadata().current_schema();
    let produced_schema = iceberg_schema(produced).map_err(|source| LakehouseError::Table {
        table: table_ref.to_string(),
        message: "cannot derive an Iceberg schema from the step's output",
        source,
    })?;
    let describe = |schema: &Schema| -> Vec<String> {
        schema.as_struct().fields().iter().map(|f| format!("{} {}", f.name, f.field_type)).collect()
    };
    let (existing, produced) = (describe(existing), describe(&produced_schema));
    if existing == produced {
        Ok(())
    } else {
        Err(LakehouseError::SchemaMismatch {
            table: table_ref.to_string(),
            existing: existing.join(", "),
            produced: produced.join(", "),
        })
    }
}

/// The Arrow schema of the table, carrying Iceberg field ids, which the
/// Parquet writer needs.
pub fn table_arrow_schema(table: &Table) -> iceberg::Result<SchemaRef> {
    arrow_schema(table.metadata().current_schema())
}

/// The Arrow form of an Iceberg schema, carrying its field ids.
pub fn arrow_schema(schema: &Schema) -> iceberg::Result<SchemaRef> {
    Ok(Arc::new(schema_to_arrow_schema(schema)?))
}

/// Re-labels a batch with the table's schema, casting view types where needed.
pub fn align(batch: RecordBatch, target: &SchemaRef) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                arrow_cast::cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(target.clone(), columns)
}
