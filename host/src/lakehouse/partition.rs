//! Partitioned tables: the Iceberg partition spec built from `partition_by`,
//! the check that an existing table is partitioned as declared, partition
//! values from `--partition`, the scan filter of an input partitioned on the
//! same column, and data-file paths per partition.
//!
//! A `--partition` value names a partition the way people write it
//! (`2024-01-03`, `2024-01`, `eu`). It is turned into the source column's
//! type (the first instant of the period for temporal transforms) and then
//! through iceberg's own transform function, so it equals what the writer
//! computes for the rows of that partition.

use iceberg::expr::{Predicate, Reference};
use iceberg::spec::{
    DataFile, Datum, Literal, PartitionField as SpecField, PartitionKey, PartitionSpec, PrimitiveLiteral,
    PrimitiveType, Schema, Struct, TableMetadata, Transform, Type, UnboundPartitionSpec,
};
use iceberg::table::Table;
use iceberg::transform::create_transform_function;
use iceberg::writer::file_writer::location_generator::{DefaultLocationGenerator, LocationGenerator};

use super::LakehouseError;
use crate::config::{CivilDate, PartitionField, PartitionTransform};
use crate::plan::TableRef;

/// How a step lays out its table and which partition it replaces.
#[derive(Clone, Copy, Debug, Default)]
pub struct Partitioning<'a> {
    /// `partition_by` of the step; empty for an unpartitioned table.
    pub fields: &'a [PartitionField],
    /// The partition a `partition_overwrite` step of a `--partition` run replaces.
    pub value: Option<&'a str>,
}

fn transform_of(transform: PartitionTransform) -> Transform {
    match transform {
        PartitionTransform::Identity => Transform::Identity,
        PartitionTransform::Year => Transform::Year,
        PartitionTransform::Month => Transform::Month,
        PartitionTransform::Day => Transform::Day,
    }
}

fn error(table: &TableRef, message: String) -> LakehouseError {
    LakehouseError::Partition { table: table.to_string(), message }
}

/// The partition spec of a new table whose schema is `schema`.
pub(super) fn unbound_spec(
    table: &TableRef,
    fields: &[PartitionField],
    schema: &Schema,
) -> Result<UnboundPartitionSpec, LakehouseError> {
    let mut builder = UnboundPartitionSpec::builder();
    for field in fields {
        let Some(source) = schema.field_by_name(&field.column) else {
            let columns: Vec<&str> = schema.as_struct().fields().iter().map(|f| f.name.as_str()).collect();
            return Err(error(
                table,
                format!(
                    "`partition_by: {field}` names column `{}`, which the step does not produce (its columns: {})",
                    field.column,
                    columns.join(", ")
                ),
            ));
        };
        let transform = transform_of(field.transform);
        if transform.result_type(&source.field_type).is_err() || !matches!(*source.field_type, Type::Primitive(_)) {
            let needs = match field.transform {
                PartitionTransform::Identity => "a column of a primitive type",
                _ => "a date or timestamp column",
            };
            return Err(error(
                table,
                format!("`partition_by: {field}` needs {needs}, but `{}` is {}", field.column, source.field_type),
            ));
        }
        builder = builder
            .add_partition_field(source.id, field.partition_name(), transform)
            .map_err(|e| error(table, format!("`partition_by` is not a valid Iceberg partitioning: {e}")))?;
    }
    Ok(builder.build())
}

/// `order_date`, `day(order_ts)`: a spec field as floe.yaml writes it.
fn describe_field(field: &SpecField, schema: &Schema) -> String {
    let column =
        schema.field_by_id(field.source_id).map_or_else(|| format!("#{}", field.source_id), |f| f.name.clone());
    match field.transform {
        Transform::Identity => column,
        Transform::Year => format!("year({column})"),
        Transform::Month => format!("month({column})"),
        Transform::Day => format!("day({column})"),
        other => format!("{other}({column})"),
    }
}

/// Fails unless the table is partitioned exactly as `fields` declare.
pub(super) fn check_spec(table: &Table, table_ref: &TableRef, fields: &[PartitionField]) -> Result<(), LakehouseError> {
    let metadata = table.metadata();
    let schema = metadata.current_schema();
    let existing: Vec<String> =
        metadata.default_partition_spec().fields().iter().map(|f| describe_field(f, schema)).collect();
    let declared: Vec<String> = fields.iter().map(ToString::to_string).collect();
    if existing == declared {
        return Ok(());
    }
    let list = |fields: &[String]| format!("[{}]", fields.join(", "));
    Err(LakehouseError::PartitionSpecMismatch {
        table: table_ref.to_string(),
        existing: if existing.is_empty() {
            "is not partitioned".to_string()
        } else {
            format!("is partitioned by {}", list(&existing))
        },
        declared: list(&declared),
    })
}

/// A value of a column of type `column_type`, parsed from partition text.
fn parse_value(text: &str, column_type: &PrimitiveType) -> Result<Datum, String> {
    let fail = |what: &str| Err(format!("`{text}` is not {what}"));
    match column_type {
        PrimitiveType::String => Ok(Datum::string(text)),
        PrimitiveType::Int => text.parse::<i32>().map(Datum::int).or_else(|_| fail("an int")),
        PrimitiveType::Long => text.parse::<i64>().map(Datum::long).or_else(|_| fail("a long")),
        PrimitiveType::Boolean => match text {
            "true" => Ok(Datum::bool(true)),
            "false" => Ok(Datum::bool(false)),
            _ => fail("a boolean (`true` or `false`)"),
        },
        PrimitiveType::Date => PartitionTransform::Day
            .parse_period(text)
            .map(|date| Datum::date(date.days_since_epoch()))
            .or_else(|_| fail("a date (`YYYY-MM-DD`)")),
        other => Err(format!(
            "partitions of a {other} column cannot be named on the command line \
             (floe-host takes string, int, long, boolean and date values)"
        )),
    }
}

/// The first instant of `date` in a date or timestamp column.
fn start_of(date: CivilDate, column_type: &PrimitiveType) -> Option<Datum> {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    let days = date.days_since_epoch() as i64;
    Some(match column_type {
        PrimitiveType::Date => Datum::date(days as i32),
        PrimitiveType::Timestamp => Datum::timestamp_micros(days * MICROS_PER_DAY),
        PrimitiveType::Timestamptz => Datum::timestamptz_micros(days * MICROS_PER_DAY),
        PrimitiveType::TimestampNs => Datum::timestamp_nanos(days * MICROS_PER_DAY * 1000),
        PrimitiveType::TimestamptzNs => Datum::timestamptz_nanos(days * MICROS_PER_DAY * 1000),
        _ => return None,
    })
}

/// The partition `value` names in the table's (one-field) partitioning, as
/// the writer computes partition values.
pub(super) fn partition_value(table: &Table, table_ref: &TableRef, value: &str) -> Result<Struct, LakehouseError> {
    let metadata = table.metadata();
    let spec = metadata.default_partition_spec();
    let schema = metadata.current_schema();
    let [field] = spec.fields() else {
        return Err(error(table_ref, "a partition can only be named in a table partitioned by one field".into()));
    };
    let describe = describe_field(field, schema);
    let bad_value = |reason: String| LakehouseError::PartitionValue {
        table: table_ref.to_string(),
        value: value.to_string(),
        field: describe.clone(),
        reason,
    };
    let source_type = schema
        .field_by_id(field.source_id)
        .and_then(|f| f.field_type.as_primitive_type().cloned())
        .ok_or_else(|| bad_value("its source column is not a primitive column".into()))?;
    let source = match field.transform {
        Transform::Identity => parse_value(value, &source_type).map_err(bad_value)?,
        Transform::Year | Transform::Month | Transform::Day => {
            let transform = match field.transform {
                Transform::Year => PartitionTransform::Year,
                Transform::Month => PartitionTransform::Month,
                _ => PartitionTransform::Day,
            };
            let date = transform.parse_period(value).map_err(bad_value)?;
            start_of(date, &source_type).ok_or_else(|| bad_value(format!("its column is {source_type}")))?
        }
        other => return Err(bad_value(format!("floe-host cannot name partitions of a `{other}` transform"))),
    };
    let partition = create_transform_function(&field.transform)
        .and_then(|f| f.transform_literal_result(&source))
        .map_err(|e| bad_value(e.to_string()))?;
    Ok(Struct::from_iter([Some(Literal::Primitive(partition.literal().clone()))]))
}

/// The partitions a `partition_overwrite` commit replaces: the one
/// `--partition` named (emptied if the step wrote no rows), and those of the
/// written files (every partition of the output, without `--partition`).
pub(super) fn replaced(named: Option<Struct>, written: &[DataFile]) -> Vec<Struct> {
    let mut partitions: Vec<Struct> = Vec::new();
    for partition in named.into_iter().chain(written.iter().map(|f| f.partition().clone())) {
        if !partitions.contains(&partition) {
            partitions.push(partition);
        }
    }
    partitions
}

/// A partition as people read it: `order_date=2024-01-03/region=eu`.
pub fn describe_partition(spec: &PartitionSpec, schema: &Schema, partition: &Struct) -> String {
    partition_parts(spec, schema, partition)
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// Each field's name and value as text.
fn partition_parts(spec: &PartitionSpec, schema: &Schema, partition: &Struct) -> Vec<(String, String)> {
    let Ok(partition_type) = spec.partition_type(schema) else {
        return vec![("partition".into(), format!("{partition:?}"))];
    };
    spec.fields()
        .iter()
        .zip(partition_type.fields())
        .zip(partition.iter())
        .map(|((field, field_type), value)| {
            let text = match (value, field_type.field_type.as_primitive_type()) {
                (Some(Literal::Primitive(literal)), Some(primitive)) => human(field.transform, primitive, literal),
                _ => "null".to_string(),
            };
            (field.name.clone(), text)
        })
        .collect()
}

/// A partition value as text: `2024-01-03` for a day, `2024-01` for a month.
fn human(transform: Transform, primitive: &PrimitiveType, literal: &PrimitiveLiteral) -> String {
    match (transform, literal) {
        (Transform::Month, PrimitiveLiteral::Int(months)) => {
            format!("{:04}-{:02}", 1970 + months.div_euclid(12), months.rem_euclid(12) + 1)
        }
        (Transform::Year, PrimitiveLiteral::Int(years)) => format!("{:04}", 1970 + years),
        _ => Transform::Identity
            .to_human_string(&Type::Primitive(primitive.clone()), Some(&Literal::Primitive(literal.clone()))),
    }
}

/// The scan filter that keeps the rows of `value` of the target's one
/// partition field in an input table, when that input is partitioned on the
/// same column (so that the scan prunes files). `None`: read it whole.
pub(super) fn input_filter(input: &Table, target: &PartitionField, value: &str) -> Option<Predicate> {
    let metadata = input.metadata();
    let column = metadata.current_schema().field_by_name(&target.column)?;
    if !metadata.default_partition_spec().fields().iter().any(|f| f.source_id == column.id) {
        return None;
    }
    let column_type = column.field_type.as_primitive_type()?;
    let reference = || Reference::new(target.column.clone());
    match target.transform {
        PartitionTransform::Identity => Some(reference().equal_to(parse_value(value, column_type).ok()?)),
        temporal => {
            let start = temporal.parse_period(value).ok()?;
            if *column_type == PrimitiveType::Date && temporal == PartitionTransform::Day {
                return Some(reference().equal_to(start_of(start, column_type)?));
            }
            let end = start.next(temporal);
            Some(
                reference()
                    .greater_than_or_equal_to(start_of(start, column_type)?)
                    .and(reference().less_than(start_of(end, column_type)?)),
            )
        }
    }
}

/// Data files under `data/<field>=<value>/…`, each value percent-encoded.
/// iceberg's default generator puts values in the path as they are, so a
/// string value such as `../x` would leave the table's folder.
///
/// It also remembers every location it handed out (clones share the list):
/// a write that fails deletes them all, the files it closed and the ones
/// it had open, which iceberg's writers drop without saying where they were.
#[derive(Clone, Debug)]
pub(super) struct PartitionPaths {
    data_location: String,
    started: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl PartitionPaths {
    pub fn new(metadata: &TableMetadata) -> iceberg::Result<Self> {
        // The default generator knows where data goes (`write.data.path` …).
        let root = DefaultLocationGenerator::new(metadata)?.generate_location(None, "");
        Ok(PartitionPaths { data_location: root.trim_end_matches('/').to_string(), started: Default::default() })
    }

    /// Every location handed out so far, and forgets them.
    pub fn take_started(&self) -> Vec<String> {
        std::mem::take(&mut *self.started.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn started(&self, location: String) -> String {
        self.started.lock().unwrap_or_else(|e| e.into_inner()).push(location.clone());
        location
    }

    /// Where a data file of an unpartitioned table goes.
    pub fn unpartitioned(&self, file_name: &str) -> String {
        format!("{}/{file_name}", self.data_location)
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl LocationGenerator for PartitionPaths {
    fn generate_location(&self, partition_key: Option<&PartitionKey>, file_name: &str) -> String {
        let Some(key) = partition_key.filter(|k| !k.spec().is_unpartitioned()) else {
            return self.started(self.unpartitioned(file_name));
        };
        let path: Vec<String> = partition_parts(key.spec(), key.schema(), key.data())
            .iter()
            .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
            .collect();
        self.started(format!("{}/{}/{file_name}", self.data_location, path.join("/")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use iceberg::spec::{NestedField, StructType};

    use super::*;

    fn schema() -> Schema {
        Schema::builder()
            .with_fields(vec![
                NestedField::optional(1, "order_date", Type::Primitive(PrimitiveType::Date)).into(),
                NestedField::optional(2, "order_ts", Type::Primitive(PrimitiveType::Timestamp)).into(),
                NestedField::optional(3, "region", Type::Primitive(PrimitiveType::String)).into(),
                NestedField::optional(4, "items", Type::Struct(StructType::new(vec![]))).into(),
            ])
            .build()
            .unwrap()
    }

    fn field(text: &str) -> PartitionField {
        PartitionField::try_from(text.to_string()).unwrap()
    }

    fn table_ref() -> TableRef {
        TableRef { namespace: "silver".to_string().try_into().unwrap(), name: "orders".to_string().try_into().unwrap() }
    }

    #[test]
    fn builds_specs_with_iceberg_field_names_and_explains_misfits() {
        let spec = unbound_spec(&table_ref(), &[field("day(order_ts)"), field("region")], &schema()).unwrap();
        let names: Vec<(&str, i32, Transform)> =
            spec.fields().iter().map(|f| (f.name.as_str(), f.source_id, f.transform)).collect();
        assert_eq!(names, [("order_ts_day", 2, Transform::Day), ("region", 3, Transform::Identity)]);

        let message = unbound_spec(&table_ref(), &[field("month(region)")], &schema()).unwrap_err().to_string();
        assert!(
            message.contains("`partition_by: month(region)` needs a date or timestamp column, but `region` is string")
        );
        let message = unbound_spec(&table_ref(), &[field("customer")], &schema()).unwrap_err().to_string();
        assert!(message.contains("names column `customer`, which the step does not produce (its columns: order_date"));
        let message = unbound_spec(&table_ref(), &[field("items")], &schema()).unwrap_err().to_string();
        assert!(message.contains("needs a column of a primitive type"), "{message}");
    }

    #[test]
    fn parses_values_as_the_column_type() {
        assert_eq!(parse_value("eu", &PrimitiveType::String), Ok(Datum::string("eu")));
        assert_eq!(parse_value("42", &PrimitiveType::Long), Ok(Datum::long(42)));
        assert_eq!(parse_value("2024-01-03", &PrimitiveType::Date), Ok(Datum::date(19725)));
        assert!(parse_value("x", &PrimitiveType::Int).unwrap_err().contains("`x` is not an int"));
        assert!(parse_value("1.5", &PrimitiveType::Double).unwrap_err().contains("cannot be named"));
    }

    #[test]
    fn describes_partitions_as_people_write_them() {
        let schema = Arc::new(schema());
        let spec = PartitionSpec::builder(schema.clone())
            .add_partition_field("order_date", "order_date_month", Transform::Month)
            .unwrap()
            .add_partition_field("order_ts", "order_ts_day", Transform::Day)
            .unwrap()
            .add_partition_field("region", "region", Transform::Identity)
            .unwrap()
            .build()
            .unwrap();
        let partition =
            Struct::from_iter([Some(Literal::int(648)), Some(Literal::date(19725)), Some(Literal::string("a/../b c"))]);
        assert_eq!(
            describe_partition(&spec, &schema, &partition),
            "order_date_month=2024-01/order_ts_day=2024-01-03/region=a/../b c"
        );
        let paths = PartitionPaths { data_location: "file:///t/data".into(), started: Default::default() };
        let key = PartitionKey::new(spec, schema, partition);
        assert_eq!(
            paths.generate_location(Some(&key), "f.parquet"),
            "file:///t/data/order_date_month=2024-01/order_ts_day=2024-01-03/region=a%2F..%2Fb%20c/f.parquet"
        );
    }
}
