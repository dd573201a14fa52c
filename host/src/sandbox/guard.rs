//! What the host accepts from a guest as Arrow: the rules a plugin's output
//! schema must meet before a single batch of it is decoded.
//!
//! The cost of decoding and storing a batch must be bounded by its size on
//! the wire. Some Arrow encodings break that: views and dictionaries let a
//! few bytes stand for gigabytes once cast to the plain types Iceberg stores
//! (every view of a million pointing at one 1 MiB string), delta
//! dictionaries grow across messages, and `Null`, empty structs or
//! zero-width lists carry rows that cost nothing to claim. None of these is
//! accepted. What is accepted is exactly the flat types that the rest of the
//! host carries end to end (Iceberg tables, DuckDB inputs of later steps), so
//! a plugin cannot write a column that breaks an innocent downstream step.
//! With those types every row of every column costs at least one bit of body,
//! which bounds a batch's row count by its body size.
//!
//! Column names are checked too: empty, duplicate (DuckDB compares names
//! without case) and control-character names would commit in bronze and then
//! break a downstream step.

use arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::text::needs_escape;

/// Most columns a plugin may return.
pub const MAX_COLUMNS: usize = 4096;
/// Longest column name, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// Checks a schema a plugin sent (its output, or what `output-schema`
/// declared); the message says what is wrong and what is accepted.
pub fn check_schema(schema: &Schema) -> Result<(), String> {
    check_names(schema)?;
    schema.fields().iter().try_for_each(|field| check_type(field))
}

/// Checks what every step's output must meet to become a table, whoever
/// computed it: at least one and at most [`MAX_COLUMNS`] columns, names
/// that are non-empty, at most [`MAX_NAME_BYTES`], free of control
/// characters and unique ignoring case.
pub fn check_names(schema: &Schema) -> Result<(), String> {
    let fields = schema.fields();
    if fields.is_empty() {
        return Err("the schema has no columns".to_owned());
    }
    if fields.len() > MAX_COLUMNS {
        return Err(format!("the schema has {} columns, more than the {MAX_COLUMNS} accepted", fields.len()));
    }
    let mut seen = std::collections::HashMap::with_capacity(fields.len());
    for (i, field) in fields.iter().enumerate() {
        check_name(i, field.name())?;
        if let Some(first) = seen.insert(field.name().to_lowercase(), i) {
            return Err(format!(
                "columns {} and {} are both named `{}` (names must be unique, ignoring case)",
                first + 1,
                i + 1,
                super::text::escape(field.name())
            ));
        }
    }
    Ok(())
}

fn check_name(index: usize, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("column {} has an empty name", index + 1));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!("column {} has a name of {} bytes, over {MAX_NAME_BYTES}", index + 1, name.len()));
    }
    if name.chars().any(needs_escape) {
        return Err(format!(
            "column {} has a name with a control character: `{}`",
            index + 1,
            super::text::escape(name)
        ));
    }
    Ok(())
}

fn check_type(field: &Field) -> Result<(), String> {
    if accepted(field.data_type()) {
        return Ok(());
    }
    let why = match field.data_type() {
        DataType::Utf8View | DataType::BinaryView => VIEW,
        DataType::Dictionary(..) => DICTIONARY,
        DataType::RunEndEncoded(..) => RUN_END,
        DataType::Null => NULL,
        t if t.is_nested() => NESTED,
        _ => NOT_STORABLE,
    };
    Err(unaccepted(field.name(), &field.data_type().to_string(), why))
}

/// Why a type is not accepted, in the words every refusal uses.
pub const VIEW: &str = "view types are not accepted: send Utf8 or Binary";
pub const DICTIONARY: &str = "dictionary-encoded columns are not accepted: send the plain values";
pub const RUN_END: &str = "run-end encoded columns are not accepted: send the plain values";
pub const NULL: &str = "columns of type Null are not accepted: give the column a type";
pub const NESTED: &str = "nested types are not accepted from plugins yet";
pub const NOT_STORABLE: &str = "the type cannot be stored in an Iceberg table and read by DuckDB";

/// The refusal of column `name` of type `type_name`.
pub fn unaccepted(name: &str, type_name: &str, why: &str) -> String {
    // Both come from the plugin: a type's text carries its time zone string.
    let quote = |text: &str| super::text::quote(text, 200);
    format!(
        "column `{}` has type {}: {why} (accepted: Boolean, Int8-64, UInt8-32, Float32/64, Decimal128, \
         Utf8, LargeUtf8, Binary, LargeBinary, Date32, Time64(µs), Timestamp(µs) without a time zone or in UTC, \
         Timestamp(ns))",
        quote(name),
        quote(type_name)
    )
}

/// The flat types every later stage handles (Iceberg storage, DuckDB).
fn accepted(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::Date32
            | DataType::Time64(TimeUnit::Microsecond)
            | DataType::Timestamp(TimeUnit::Microsecond, None)
            | DataType::Timestamp(TimeUnit::Nanosecond, None)
    ) || matches!(data_type, DataType::Timestamp(TimeUnit::Microsecond, Some(zone)) if utc(zone))
        || matches!(data_type, DataType::Decimal128(precision, scale) if *precision >= 1 && *precision <= 38 && *scale >= 0 && (*scale as u8) <= *precision)
}

/// The zones Iceberg's timestamptz accepts (it stores instants in UTC).
fn utc(zone: &str) -> bool {
    zone == "UTC" || zone == "+00:00"
}

/// Most rows a batch of accepted types can hold in `body_bytes` of body:
/// every accepted type spends at least one bit per row (a Boolean's values).
pub fn max_rows(body_bytes: u64) -> u64 {
    body_bytes.saturating_mul(8)
}

/// `schema` without metadata: a plugin must not pass field ids or other
/// hints to the writer (`PARQUET:field_id` would map its columns onto
/// another table column).
pub fn without_metadata(schema: &Schema) -> Schema {
    let fields: Vec<Field> =
        schema.fields().iter().map(|f| f.as_ref().clone().with_metadata(Default::default())).collect();
    Schema::new(fields)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn schema(fields: Vec<Field>) -> Schema {
        Schema::new(fields)
    }

    #[test]
    fn accepts_the_flat_types_the_host_stores() {
        let ok = schema(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("Größe", DataType::Float64, true),
        ]);
        assert_eq!(check_schema(&ok), Ok(()));
    }

    #[test]
    fn refuses_types_whose_cost_is_not_bounded_by_the_wire() {
        let utf8 = || Arc::new(Field::new("v", DataType::Int32, true));
        for (data_type, why) in [
            (DataType::Utf8View, "view types"),
            (DataType::BinaryView, "view types"),
            (DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), "dictionary-encoded"),
            (DataType::Null, "type Null"),
            (DataType::Struct(Default::default()), "nested types"),
            (DataType::FixedSizeList(utf8(), 0), "nested types"),
            (DataType::List(utf8()), "nested types"),
            (DataType::RunEndEncoded(Arc::new(Field::new("r", DataType::Int32, false)), utf8()), "run-end"),
            (DataType::FixedSizeBinary(0), "cannot be stored"),
            (DataType::Float16, "cannot be stored"),
            (DataType::Decimal128(0, 0), "cannot be stored"),
        ] {
            let err = check_schema(&schema(vec![Field::new("c", data_type.clone(), true)])).unwrap_err();
            assert!(err.contains(why) && err.starts_with("column `c` has type"), "{data_type}: {err}");
        }
    }

    #[test]
    fn refuses_names_that_break_later_steps() {
        let col = |name: &str| Field::new(name, DataType::Int64, true);
        let err = |fields| check_schema(&schema(fields)).unwrap_err();
        assert_eq!(err(vec![]), "the schema has no columns");
        assert_eq!(err(vec![col("")]), "column 1 has an empty name");
        assert!(err(vec![col("a\0b")]).contains("control character: `a\\u{0}b`"));
        assert!(err(vec![col("a\nb")]).contains("control character: `a\\nb`"));
        assert_eq!(
            err(vec![col("id"), col("x"), col("ID")]),
            "columns 1 and 3 are both named `ID` (names must be unique, ignoring case)"
        );
        assert!(err(vec![col(&"n".repeat(MAX_NAME_BYTES + 1))]).contains("over 1024"));
        let many: Vec<Field> = (0..=MAX_COLUMNS).map(|i| col(&format!("c{i}"))).collect();
        assert!(err(many).contains("4097 columns"));
    }

    #[test]
    fn strips_metadata() {
        let field = Field::new("id", DataType::Int64, true)
            .with_metadata([("PARQUET:field_id".to_owned(), "99".to_owned())].into());
        let schema = Schema::new(vec![field]).with_metadata([("k".to_owned(), "v".to_owned())].into());
        let clean = without_metadata(&schema);
        assert!(clean.metadata().is_empty() && clean.field(0).metadata().is_empty());
        assert_eq!(clean.field(0).data_type(), &DataType::Int64);
    }
}
