//! Arrow → DuckDB column types, for the tables the host loads.

use arrow_schema::{DataType, Field, SchemaRef, TimeUnit};

use super::ComputeError;

/// `"a" BIGINT, "b" VARCHAR, …` for a CREATE TABLE.
pub fn column_definitions(schema: &SchemaRef, table: &str) -> Result<String, ComputeError> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let sql_type = column_type(field, table)?;
        columns.push(format!("{} {sql_type}", super::quote(field.name())));
    }
    Ok(columns.join(", "))
}

/// The DuckDB type of one column of `table`.
pub fn column_type(field: &Field, table: &str) -> Result<String, ComputeError> {
    duckdb_type(field.data_type()).ok_or_else(|| ComputeError::UnsupportedType {
        table: table.to_string(),
        column: field.name().clone(),
        data_type: field.data_type().to_string(),
    })
}

fn duckdb_type(data_type: &DataType) -> Option<String> {
    Some(match data_type {
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INTEGER".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::UInt8 => "UTINYINT".into(),
        DataType::UInt16 => "USMALLINT".into(),
        DataType::UInt32 => "UINTEGER".into(),
        DataType::UInt64 => "UBIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BLOB".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Time64(_) => "TIME".into(),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "TIMESTAMP".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Timestamp(TimeUnit::Nanosecond, None) => "TIMESTAMP_NS".into(),
        DataType::Decimal128(precision, scale) => format!("DECIMAL({precision},{scale})"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::Schema;

    use super::*;

    #[test]
    fn maps_the_demo_types_and_rejects_nested_ones() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new("day", DataType::Date32, true),
            Field::new("na\"me", DataType::Utf8, true),
        ]));
        assert_eq!(
            column_definitions(&schema, "t").unwrap(),
            "\"id\" BIGINT, \"amount\" DECIMAL(12,2), \"day\" DATE, \"na\"\"me\" VARCHAR"
        );
        let nested = Arc::new(Schema::new(vec![Field::new(
            "l",
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            true,
        )]));
        let err = column_definitions(&nested, "s.t").unwrap_err().to_string();
        assert!(err.contains("table `s.t` column `l`"), "{err}");
    }
}
