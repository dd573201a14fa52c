//! Data files that DuckDB writes itself, for a SQL model whose table lives
//! on local storage: which writes may take one, where it is written, and
//! its Iceberg entry, built from the Parquet footer since no iceberg writer
//! saw the rows. DuckDB encodes on all of its threads, where the host's
//! writer is one thread behind a single-threaded Arrow export (BENCHMARKS.md,
//! "DuckDB writes the SQL models").
//!
//! Only an exact fit takes this way: an unpartitioned table, the output's
//! columns being the table's columns in order, each of a type whose Parquet
//! form DuckDB and Iceberg agree on. Everything else streams through the
//! host's writer as before.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow_schema::DataType;
use iceberg::spec::{DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, PrimitiveType, Struct, Type};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::statistics::Statistics;

use super::{LakehouseError, PendingWrite, WrittenFiles, read, schema};

/// The one data file DuckDB writes for a pending write.
#[derive(Clone, Debug)]
pub struct LocalFile {
    /// Where DuckDB writes it first: a fresh path outside the table, the only
    /// one the locked-down database may write.
    pub scratch: PathBuf,
    /// Its place among the table's data files (a file-system path).
    path: PathBuf,
    /// As the manifest names it (`file:///…`).
    location: String,
    /// Each column's name and Iceberg field id, in the output's order.
    pub field_ids: Vec<(String, i32)>,
    /// Columns whose bounds the entry may carry, by field id.
    bounded: HashMap<i32, PrimitiveType>,
}

impl PendingWrite {
    /// The data file DuckDB may write for this write, first at `scratch`:
    /// `None` unless the table's files are local, the table is unpartitioned
    /// and the step's output columns are the table's, in order, optional,
    /// and of types that DuckDB writes as Iceberg reads them.
    pub fn local_file(&self, scratch: &Path, file_name: &str) -> Option<LocalFile> {
        let metadata = self.table.metadata();
        if self.only.is_some() || !metadata.default_partition_spec().is_unpartitioned() {
            return None;
        }
        let data = super::partition::PartitionPaths::new(metadata).ok()?.unpartitioned(file_name);
        let path = PathBuf::from(read::local_path(&data)?);
        let target = schema::arrow_schema(&self.target.schema).ok()?;
        if target.fields().len() != self.output.fields().len() {
            return None;
        }
        let mut field_ids = Vec::new();
        let mut bounded = HashMap::new();
        for (produced, (wanted, field)) in
            self.output.fields().iter().zip(target.fields().iter().zip(self.target.schema.as_struct().fields()))
        {
            let same_type = comparable(produced.data_type()) == comparable(wanted.data_type());
            if produced.name() != &field.name
                || !same_type
                || field.required
                || !duckdb_writes(&comparable(wanted.data_type()))
            {
                return None;
            }
            field_ids.push((field.name.clone(), field.id));
            if let Type::Primitive(
                primitive @ (PrimitiveType::Boolean
                | PrimitiveType::Int
                | PrimitiveType::Long
                | PrimitiveType::Date
                | PrimitiveType::Timestamp
                | PrimitiveType::Timestamptz),
            ) = field.field_type.as_ref()
            {
                bounded.insert(field.id, primitive.clone());
            }
        }
        Some(LocalFile { scratch: scratch.to_path_buf(), path, location: data, field_ids, bounded })
    }

    /// Takes the file DuckDB wrote at `file.scratch` into the table's data
    /// folder and describes it from its footer, checking that every column
    /// carries the field id it was given. An empty output takes no file.
    pub fn adopt(&self, file: &LocalFile) -> Result<WrittenFiles, LakehouseError> {
        let refused = |message: String| LakehouseError::Adopt {
            table: self.table_ref.to_string(),
            file: file.scratch.display().to_string(),
            message,
        };
        let opened = std::fs::File::open(&file.scratch).map_err(|e| refused(format!("cannot open it: {e}")))?;
        let size = opened.metadata().map_err(|e| refused(format!("cannot read its size: {e}")))?.len();
        let footer =
            ParquetMetaDataReader::new().parse_and_finish(&opened).map_err(|e| refused(format!("its footer: {e}")))?;
        check_field_ids(&footer, &file.field_ids).map_err(refused)?;
        if footer.file_metadata().num_rows() == 0 {
            let _ = std::fs::remove_file(&file.scratch);
            return Ok(WrittenFiles(Vec::new()));
        }
        let entry = data_file(&footer, file, size, self.table.metadata().default_partition_spec_id())
            .map_err(|e| refused(format!("cannot describe it: {e}")))?;
        move_file(&file.scratch, &file.path)
            .map_err(|e| refused(format!("cannot move it to {}: {e}", file.path.display())))?;
        Ok(WrittenFiles(vec![entry]))
    }
}

/// Whether DuckDB may write an output of `schema` as a data file: it has
/// columns, and each is of a type DuckDB writes as Iceberg reads it. Known
/// before the write begins (which may stage a new table in its catalog).
pub fn fits(schema: &arrow_schema::Schema) -> bool {
    !schema.fields().is_empty() && schema.fields().iter().all(|f| duckdb_writes(&comparable(f.data_type())))
}

/// Arrow types as the write compares them: DuckDB's string views and
/// Iceberg's strings are one type, and so is any time zone of a timestamp
/// (both mean an instant in UTC).
fn comparable(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(*unit, Some("UTC".into())),
        other => other.clone(),
    }
}

/// The types whose Parquet form from DuckDB's writer Iceberg reads as the
/// same type: plain integers, floats, strings, dates, microsecond
/// timestamps and decimals that fit in 64 bits. Nested types, binary, time
/// and wider decimals stream through the host's writer.
fn duckdb_writes(data_type: &DataType) -> bool {
    match data_type {
        DataType::Boolean
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Utf8
        | DataType::Date32 => true,
        DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, _) => true,
        DataType::Decimal128(precision, _) => *precision <= 18,
        _ => false,
    }
}

/// Every leaf column of the file must be the next of `expected`, by name and
/// field id: what proves that DuckDB applied `FIELD_IDS` as the reader will
/// resolve them.
fn check_field_ids(footer: &ParquetMetaData, expected: &[(String, i32)]) -> Result<(), String> {
    let columns = footer.file_metadata().schema_descr().columns();
    let found: Vec<(String, Option<i32>)> = columns
        .iter()
        .map(|c| {
            let info = c.self_type().get_basic_info();
            (c.path().string(), info.has_id().then(|| info.id()))
        })
        .collect();
    let wanted: Vec<(String, Option<i32>)> = expected.iter().map(|(name, id)| (name.clone(), Some(*id))).collect();
    if found != wanted {
        return Err(format!("its columns and field ids are {found:?}, not {wanted:?}"));
    }
    Ok(())
}

/// The Iceberg entry of a data file, from its footer: sizes, value and null
/// counts per column, and bounds for the columns whose Parquet statistics
/// are exact integers (`bounded`); string, float and decimal columns carry
/// none, which only makes scans prune less.
fn data_file(footer: &ParquetMetaData, file: &LocalFile, size: u64, spec_id: i32) -> Result<DataFile, String> {
    let ids: HashMap<&str, i32> = file.field_ids.iter().map(|(name, id)| (name.as_str(), *id)).collect();
    let (mut sizes, mut values, mut nulls) = (HashMap::new(), HashMap::new(), HashMap::new());
    let (mut lower, mut upper) = (HashMap::<i32, Datum>::new(), HashMap::<i32, Datum>::new());
    // A column that some row group has no exact bounds (or null count) for
    // has none for the file.
    let (mut unbounded, mut uncounted) = (HashSet::new(), HashSet::new());
    for group in footer.row_groups() {
        for column in group.columns() {
            let Some(&id) = ids.get(column.column_descr().path().string().as_str()) else { continue };
            *sizes.entry(id).or_insert(0u64) += column.compressed_size() as u64;
            *values.entry(id).or_insert(0u64) += column.num_values() as u64;
            match column.statistics().and_then(Statistics::null_count_opt) {
                Some(count) => *nulls.entry(id).or_insert(0u64) += count,
                None => {
                    uncounted.insert(id);
                }
            }
            let Some(kind) = file.bounded.get(&id) else { continue };
            match column.statistics().and_then(|statistics| bounds(kind, statistics)) {
                Some((min, max)) => {
                    lower.entry(id).and_modify(|d| *d = min_of(d, &min)).or_insert(min);
                    upper.entry(id).and_modify(|d| *d = max_of(d, &max)).or_insert(max);
                }
                None => {
                    unbounded.insert(id);
                }
            }
        }
    }
    for id in unbounded {
        lower.remove(&id);
        upper.remove(&id);
    }
    for id in uncounted {
        nulls.remove(&id);
    }
    DataFileBuilder::default()
        .content(DataContentType::Data)
        .file_path(file.location.clone())
        .file_format(DataFileFormat::Parquet)
        .partition(Struct::empty())
        .partition_spec_id(spec_id)
        .record_count(footer.file_metadata().num_rows() as u64)
        .file_size_in_bytes(size)
        .column_sizes(sizes)
        .value_counts(values)
        .null_value_counts(nulls)
        .lower_bounds(lower)
        .upper_bounds(upper)
        .split_offsets(Some(footer.row_groups().iter().filter_map(|g| g.file_offset()).collect()))
        .build()
        .map_err(|e| e.to_string())
}

/// A row group's exact minimum and maximum of a column, as Iceberg values.
fn bounds(kind: &PrimitiveType, statistics: &Statistics) -> Option<(Datum, Datum)> {
    if !statistics.min_is_exact() || !statistics.max_is_exact() {
        return None;
    }
    match (kind, statistics) {
        (PrimitiveType::Boolean, Statistics::Boolean(s)) => {
            Some((Datum::bool(*s.min_opt()?), Datum::bool(*s.max_opt()?)))
        }
        (PrimitiveType::Int, Statistics::Int32(s)) => Some((Datum::int(*s.min_opt()?), Datum::int(*s.max_opt()?))),
        (PrimitiveType::Date, Statistics::Int32(s)) => Some((Datum::date(*s.min_opt()?), Datum::date(*s.max_opt()?))),
        (PrimitiveType::Long, Statistics::Int64(s)) => Some((Datum::long(*s.min_opt()?), Datum::long(*s.max_opt()?))),
        (PrimitiveType::Timestamp, Statistics::Int64(s)) => {
            Some((Datum::timestamp_micros(*s.min_opt()?), Datum::timestamp_micros(*s.max_opt()?)))
        }
        (PrimitiveType::Timestamptz, Statistics::Int64(s)) => {
            Some((Datum::timestamptz_micros(*s.min_opt()?), Datum::timestamptz_micros(*s.max_opt()?)))
        }
        _ => None,
    }
}

fn min_of(a: &Datum, b: &Datum) -> Datum {
    if b < a { b.clone() } else { a.clone() }
}

fn max_of(a: &Datum, b: &Datum) -> Datum {
    if b > a { b.clone() } else { a.clone() }
}

/// Moves `from` to `to` (a new name in the table's data folder): a rename,
/// or a copy when the two are on different file systems.
fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(folder) = to.parent() {
        std::fs::create_dir_all(folder)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            std::fs::copy(from, to)?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_time_zones_compare_as_one_type() {
        assert_eq!(comparable(&DataType::Utf8View), DataType::Utf8);
        let utc = DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("+00:00".into()));
        let named = DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()));
        assert_eq!(comparable(&utc), comparable(&named));
        let naive = DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, None);
        assert_ne!(comparable(&naive), comparable(&named));
        assert!(!duckdb_writes(&DataType::Decimal128(38, 0)));
        assert!(!duckdb_writes(&DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, None)));
    }
}
