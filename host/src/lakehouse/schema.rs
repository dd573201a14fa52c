//! Between the Arrow schema a step produces and the Iceberg schema of its
//! table: deriving one, checking compatibility or evolving it
//! (`schema_evolution`), aligning batches.

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions, new_null_array};
use arrow_schema::{ArrowError, DataType, Field, Schema as ArrowSchema};
use iceberg::arrow::{arrow_schema_to_schema_auto_assign_ids, schema_to_arrow_schema};
use iceberg::spec::{ListType, MapType, NestedField, NestedFieldRef, Schema, SchemaRef, StructType, Type};
use iceberg::table::Table;

use super::LakehouseError;
use crate::config::SchemaEvolution;
use crate::plan::TableRef;

/// The Arrow types DuckDB and plugins produce that Iceberg stores differently.
fn storable(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        // An instant, whatever zone it is shown in (DuckDB's TIMESTAMPTZ
        // comes as `Etc/UTC`, or the session's zone): Iceberg's timestamptz.
        DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(*unit, Some("+00:00".into())),
        other => other.clone(),
    }
}

/// An Iceberg schema for a step's output: same names and types, every column
/// optional (nullability is a data-quality rule, not a storage one).
pub fn iceberg_schema(produced: &arrow_schema::SchemaRef) -> iceberg::Result<Schema> {
    let fields: Vec<Field> =
        produced.fields().iter().map(|f| Field::new(f.name(), storable(f.data_type()), true)).collect();
    arrow_schema_to_schema_auto_assign_ids(&ArrowSchema::new(fields))
}

/// The schema a step's data files are written with, on one table state.
#[derive(Clone, Debug)]
pub struct Target {
    /// The table's current schema, or its evolution.
    pub schema: SchemaRef,
    /// The columns `schema` adds to the table's current schema (`add_columns`);
    /// when not empty, the commit adds `schema` and makes it current.
    pub added: Vec<String>,
}

/// Checks a step's output against the table's current schema and decides
/// the schema to write with: the table's own, or (with `add_columns`) one
/// that adds the output's new columns as optional columns with fresh ids.
pub fn target(
    table: &Table,
    table_ref: &TableRef,
    produced: &arrow_schema::SchemaRef,
    evolution: SchemaEvolution,
) -> Result<Target, LakehouseError> {
    let metadata = table.metadata();
    let existing = metadata.current_schema();
    let produced_schema = iceberg_schema(produced).map_err(|source| LakehouseError::Table {
        table: table_ref.to_string(),
        message: "cannot derive an Iceberg schema from the step's output",
        source,
    })?;
    let unchanged = || Ok(Target { schema: existing.clone(), added: Vec::new() });
    let describe = |schema: &Schema| -> Vec<String> {
        schema.as_struct().fields().iter().map(|f| format!("{} {}", f.name, f.field_type)).collect()
    };
    if describe(existing) == describe(&produced_schema) {
        return unchanged();
    }

    let diff = Diff::new(existing, &produced_schema);
    if !diff.changed_types.is_empty() {
        return Err(LakehouseError::ColumnTypeChanged {
            table: table_ref.to_string(),
            changes: listed(diff.changed_types.clone()),
        });
    }
    let hint = |advice: String| LakehouseError::SchemaMismatch {
        table: table_ref.to_string(),
        existing: listed(describe(existing)),
        produced: listed(describe(&produced_schema)),
        advice,
    };
    // Names differ from the table's in case only: the engines that read the
    // table (DuckDB, Trino, Spark) resolve names without case, so adding
    // one would leave a table none of them can read.
    if let Some((produced, table_has)) = diff.case_only.first() {
        return Err(hint(format!(
            "the step's column `{}` differs from the table's `{}` only in case, and a table cannot hold both \
             (readers match names ignoring case): produce `{}`",
            quoted(produced),
            quoted(table_has),
            quoted(table_has)
        )));
    }
    let columns = existing.as_struct().fields().len() + diff.new.len();
    if evolution == SchemaEvolution::AddColumns && columns > MAX_TABLE_COLUMNS {
        return Err(hint(format!(
            "adding its {} new columns would give the table {columns} columns, over the {MAX_TABLE_COLUMNS} \
             floe-host keeps in one table (every schema stays in the table's metadata, rewritten on each commit)",
            diff.new.len()
        )));
    }
    if let Some(column) = diff.missing.iter().find(|f| f.required) {
        return Err(hint(format!(
            "the table's column `{}` is required, so the step must produce it (columns the output lacks are \
             written as NULL only when they are optional)",
            column.name
        )));
    }
    if evolution == SchemaEvolution::Fail {
        let mut changes = Vec::new();
        if !diff.new.is_empty() {
            changes.push(format!("add the new columns ({})", names(&diff.new)));
        }
        if !diff.missing.is_empty() {
            changes.push(format!("write NULL for the columns the output lacks ({})", names(&diff.missing)));
        }
        if changes.is_empty() {
            changes.push("match the columns by name rather than by position".into());
        }
        return Err(hint(format!(
            "the step's `schema_evolution` is `fail` (the default); set `schema_evolution: add_columns` to {}",
            changes.join(" and ")
        )));
    }
    if diff.new.is_empty() {
        return unchanged();
    }
    let evolved = evolve(table, &diff.new).map_err(|source| LakehouseError::Table {
        table: table_ref.to_string(),
        message: "cannot add the new columns to the table schema",
        source,
    })?;
    Ok(Target { schema: Arc::new(evolved), added: diff.new.iter().map(|f| f.name.clone()).collect() })
}

fn names(fields: &[NestedFieldRef]) -> String {
    listed(fields.iter().map(|f| format!("`{}`", quoted(&f.name))).collect())
}

/// Most columns a table may reach by schema evolution: what one plugin
/// output may carry (`sandbox/guard.rs`). Without it, a step could add
/// thousands of columns on every run, and every schema stays in the
/// table's metadata.
const MAX_TABLE_COLUMNS: usize = 4096;

/// At most `LISTED` items joined, each cut, and how many more: column lists
/// in errors go to stderr, Pipes, lineage and traces, and a table may have
/// thousands of columns of 1 KiB names.
fn listed(items: Vec<String>) -> String {
    const LISTED: usize = 20;
    let more = items.len().saturating_sub(LISTED);
    let mut shown: Vec<String> = items.into_iter().take(LISTED).map(|item| quoted(&item)).collect();
    if more > 0 {
        shown.push(format!("… and {more} more"));
    }
    shown.join(", ")
}

/// A name (or a name and its type) as an error quotes it: cut at 200
/// bytes, escaped.
fn quoted(text: &str) -> String {
    crate::sandbox::text::quote(text, 200)
}

/// How the output's columns differ from the table's, by name.
struct Diff {
    /// Output columns the table lacks, in output order.
    new: Vec<NestedFieldRef>,
    /// Table columns the output lacks.
    missing: Vec<NestedFieldRef>,
    /// `name: table type → output type`, for columns in both.
    changed_types: Vec<String>,
    /// (output name, table name) of output columns whose name only the
    /// case tells from a table column's.
    case_only: Vec<(String, String)>,
}

impl Diff {
    fn new(existing: &Schema, produced: &Schema) -> Self {
        let mut diff = Diff { new: Vec::new(), missing: Vec::new(), changed_types: Vec::new(), case_only: Vec::new() };
        let by_lowercase: std::collections::HashMap<String, &str> =
            existing.as_struct().fields().iter().map(|f| (f.name.to_lowercase(), f.name.as_str())).collect();
        for field in produced.as_struct().fields() {
            match existing.as_struct().field_by_name(&field.name) {
                None => match by_lowercase.get(&field.name.to_lowercase()) {
                    Some(table_has) => diff.case_only.push((field.name.clone(), (*table_has).to_owned())),
                    None => diff.new.push(field.clone()),
                },
                Some(old) if !same_type(&old.field_type, &field.field_type) => {
                    diff.changed_types.push(format!("`{}`: {} → {}", field.name, old.field_type, field.field_type))
                }
                Some(_) => {}
            }
        }
        for field in existing.as_struct().fields() {
            if produced.as_struct().field_by_name(&field.name).is_none() {
                diff.missing.push(field.clone());
            }
        }
        diff
    }
}

/// Whether two types are the same, whatever the field ids inside them.
fn same_type(a: &Type, b: &Type) -> bool {
    let same_field = |a: &NestedField, b: &NestedField| a.name == b.name && same_type(&a.field_type, &b.field_type);
    match (a, b) {
        (Type::Primitive(a), Type::Primitive(b)) => a == b,
        (Type::Struct(a), Type::Struct(b)) => {
            a.fields().len() == b.fields().len() && a.fields().iter().zip(b.fields()).all(|(a, b)| same_field(a, b))
        }
        (Type::List(a), Type::List(b)) => same_type(&a.element_field.field_type, &b.element_field.field_type),
        (Type::Map(a), Type::Map(b)) => {
            same_type(&a.key_field.field_type, &b.key_field.field_type)
                && same_type(&a.value_field.field_type, &b.value_field.field_type)
        }
        _ => false,
    }
}

/// The table's current schema plus `new` columns, optional, with field ids
/// above any the table ever used, under the schema id the catalog will give it.
fn evolve(table: &Table, new: &[NestedFieldRef]) -> iceberg::Result<Schema> {
    let metadata = table.metadata();
    let current = metadata.current_schema();
    let mut next_id = metadata.last_column_id() + 1;
    let mut fields: Vec<NestedFieldRef> = current.as_struct().fields().to_vec();
    for field in new {
        let mut field = renumber(field, &mut next_id);
        field.required = false;
        fields.push(Arc::new(field));
    }
    let build = |id: i32| {
        Schema::builder()
            .with_schema_id(id)
            .with_fields(fields.clone())
            .with_identifier_field_ids(current.identifier_field_ids())
            .build()
    };
    // The id the metadata builder assigns: an identical earlier schema's, else the next one.
    let schema = build(0)?;
    let id = metadata
        .schemas_iter()
        .find(|s| s.as_struct() == schema.as_struct() && s.identifier_field_ids().eq(schema.identifier_field_ids()))
        .map(|s| s.schema_id())
        .unwrap_or_else(|| metadata.schemas_iter().map(|s| s.schema_id()).max().unwrap_or(0) + 1);
    build(id)
}

/// A copy of `field` whose ids (its own and nested ones) are taken from `next_id` on.
fn renumber(field: &NestedField, next_id: &mut i32) -> NestedField {
    let id = *next_id;
    *next_id += 1;
    let renumber_ref = |f: &NestedFieldRef, next: &mut i32| Arc::new(renumber(f, next));
    let field_type = match field.field_type.as_ref() {
        Type::Primitive(p) => Type::Primitive(p.clone()),
        Type::Struct(s) => Type::Struct(StructType::new(s.fields().iter().map(|f| renumber_ref(f, next_id)).collect())),
        Type::List(l) => Type::List(ListType::new(renumber_ref(&l.element_field, next_id))),
        Type::Map(m) => {
            let key_field = renumber_ref(&m.key_field, next_id);
            Type::Map(MapType::new(key_field, renumber_ref(&m.value_field, next_id)))
        }
    };
    NestedField { id, field_type: Box::new(field_type), ..field.clone() }
}

/// The Arrow schema of the table, carrying Iceberg field ids, which the
/// Parquet writer needs.
pub fn table_arrow_schema(table: &Table) -> iceberg::Result<arrow_schema::SchemaRef> {
    arrow_schema(table.metadata().current_schema())
}

/// The Arrow form of an Iceberg schema, carrying its field ids.
pub fn arrow_schema(schema: &Schema) -> iceberg::Result<arrow_schema::SchemaRef> {
    Ok(Arc::new(schema_to_arrow_schema(schema)?))
}

/// Re-labels a batch with the target schema, matching columns by name:
/// casts view types where needed and fills a column the batch lacks with
/// NULL (`target` checked that such a column is optional).
pub fn align(batch: RecordBatch, target: &arrow_schema::SchemaRef) -> Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    // By position when the names are in the table's order (a step's output
    // almost always is), else through one map: looking each name up in turn
    // is quadratic, 16 million comparisons per batch at 4,096 columns.
    let in_order = schema.fields().len() == target.fields().len()
        && schema.fields().iter().zip(target.fields().iter()).all(|(a, b)| a.name() == b.name());
    let by_name: std::collections::HashMap<&str, usize> = if in_order {
        std::collections::HashMap::new()
    } else {
        schema.fields().iter().enumerate().map(|(i, f)| (f.name().as_str(), i)).collect()
    };
    let column_of = |i: usize, name: &str| {
        if in_order { Some(batch.column(i)) } else { by_name.get(name).map(|&at| batch.column(at)) }
    };
    let columns = target
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| match column_of(i, field.name()) {
            Some(column) if column.data_type() == field.data_type() => Ok(column.clone()),
            Some(column) => arrow_cast::cast(column, field.data_type()),
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        target.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}
