//! Writing a step's batches as Parquet data files of the table, as the step
//! produces them. Nothing is visible until `commit` swaps the table's
//! metadata pointer; a failure here leaves only unreferenced files.
//!
//! A partitioned table's rows are split by partition
//! (`RecordBatchPartitionSplitter`) and written by a `Fanout`, one rolling
//! file writer per open partition (within bounds: `fanout.rs`), so every data
//! file holds one partition and carries its partition values.

use arrow_array::RecordBatch;
use futures::{Stream, StreamExt};
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::spec::{DataFile, DataFileFormat, SchemaRef, Struct, TableProperties};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::DefaultFileNameGenerator;
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::fanout::{Fanout, FanoutError};
use super::partition::{PartitionPaths, describe_partition};
use super::{CommitTags, LakehouseError, schema};
use crate::plan::TableRef;

/// Rows per Parquet row group, as DuckDB writes them. DuckDB scans a file
/// in parallel by row group: with parquet-rs's default (1,048,576 rows) a
/// 1M-row table was one row group, read on one thread (stg_customers took
/// 0.72 s over it against 0.53 s over DuckDB's own file; BENCHMARKS.md).
const ROW_GROUP_ROWS: usize = 122_880;
/// Most bytes in a Parquet row group: Iceberg's default
/// `write.parquet.row-group-size-bytes`. The writer holds a row group's
/// encoded pages in memory until it is complete, so without this a step whose
/// rows are wide held 122,880 of them whatever their size: a plugin that
/// returns values of 64 KiB held 7.5 GiB of the host's memory per file
/// being written, before the first byte reached storage.
const ROW_GROUP_BYTES: usize = 128 << 20;
/// Most bytes of a step's batch converted to the table schema at once. The
/// conversion may widen a column (Int8 to Int32: four times), and parquet-rs
/// takes the first batch of a row group whole, whatever `ROW_GROUP_BYTES`
/// says: a batch is cut into slices of about this size first (zero-copy).
const SLICE_BYTES: usize = 8 << 20;
/// Memory the Parquet encoders' per-page row buffers may take together.
/// A dictionary-encoded column keeps 8 bytes per row of its open page,
/// whatever the encoded size (which is what `ROW_GROUP_BYTES` counts): at
/// parquet-rs's default of 20,000 rows a page, 4,096 columns held 1 GiB.
/// Tables of up to 409 columns keep the default.
const PAGE_ROW_BUFFER_BYTES: usize = 64 << 20;

/// How a write names its files and how large it lets them grow.
pub struct Layout {
    /// Unique to this write: the default generator numbers files from zero
    /// on every write and would otherwise overwrite earlier files.
    prefix: String,
    target_size: usize,
}

impl Layout {
    /// A step's files: `<step>-<run id>-<unique>-*.parquet`, of the default
    /// size. The run id is the operator's (`--run-id`, `FLOE_RUN_ID`): any
    /// byte of it but ASCII letters, digits, `-`, `_` and `.` becomes `_`,
    /// so that it cannot leave the folder or break a file name.
    pub fn step(tags: &CommitTags) -> Self {
        let unique = uuid::Uuid::new_v4().simple();
        let run_id: String = tags
            .run_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
            .collect();
        Layout {
            prefix: format!("{}-{run_id}-{unique}", tags.step),
            target_size: TableProperties::PROPERTY_WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT,
        }
    }

    /// A compaction's file: `compact-<unique>-0.parquet`, one per write
    /// (compaction sizes its files by what it gives each write).
    pub fn compaction() -> Self {
        let unique = uuid::Uuid::new_v4().simple();
        Layout { prefix: format!("compact-{unique}"), target_size: usize::MAX }
    }
}

impl CommitTags {
    /// The name of a step's data file when one file holds its whole output
    /// (DuckDB's write of a SQL model): as the step's writer names its first.
    pub fn data_file_name(&self) -> String {
        format!("{}-00000.parquet", Layout::step(self).prefix)
    }
}

/// Writes `batches` as data files of `table` with the Iceberg `schema` (the
/// table's current one, or the one a schema evolution will make current),
/// as they arrive. With `only`, every row must fall in that partition;
/// otherwise nothing more is written after the first row outside it, the
/// rest are counted, and the result is an error.
///
/// A write that fails deletes every data file it started, closed or not:
/// the step commits nothing, and nothing is left for orphan cleanup.
pub async fn data_files(
    table: &Table,
    table_ref: &TableRef,
    schema: &SchemaRef,
    batches: impl Stream<Item = RecordBatch> + Unpin,
    layout: Layout,
    only: Option<&Struct>,
) -> Result<Vec<DataFile>, LakehouseError> {
    let locations = PartitionPaths::new(table.metadata()).map_err(|source| LakehouseError::Table {
        table: table_ref.to_string(),
        message: "cannot place data files",
        source,
    })?;
    let written = write(table, table_ref, schema, batches, layout, only, locations.clone()).await;
    if written.is_err() {
        // The writers are dropped by now: delete what they began.
        for path in locations.take_started() {
            if let Err(error) = table.file_io().delete(&path).await {
                tracing::debug!(path, %error, "Cannot delete a data file of a failed write.");
            }
        }
    }
    written
}

async fn write(
    table: &Table,
    table_ref: &TableRef,
    schema: &SchemaRef,
    mut batches: impl Stream<Item = RecordBatch> + Unpin,
    layout: Layout,
    only: Option<&Struct>,
    locations: PartitionPaths,
) -> Result<Vec<DataFile>, LakehouseError> {
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    let metadata = table.metadata();
    let target = schema::arrow_schema(schema).map_err(error("cannot convert the table schema to Arrow"))?;
    let page_rows = (PAGE_ROW_BUFFER_BYTES / (8 * target.fields().len().max(1))).clamp(1024, 20_000);
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .set_data_page_row_count_limit(page_rows)
        .build();
    let parquet = ParquetWriterBuilder::new(properties, schema.clone());
    let Layout { prefix, target_size } = layout;
    let files = format!("`{}/data/…/{prefix}-*.parquet`", metadata.location());
    let write_error = |message: &'static str| {
        let (table, files) = (table_ref.to_string(), files.clone());
        move |source| LakehouseError::WriteFiles { table, message, files, source }
    };
    let names = DefaultFileNameGenerator::new(prefix, None, DataFileFormat::Parquet);
    let rolling = RollingFileWriterBuilder::new(parquet, target_size, table.file_io().clone(), locations, names);
    let builder = DataFileWriterBuilder::new(rolling);
    let align = |batch: RecordBatch| {
        schema::align(batch, &target).map_err(|e| LakehouseError::Unsupported {
            table: table_ref.to_string(),
            message: format!("cannot convert the step's output to the table schema: {e}"),
        })
    };

    let spec = metadata.default_partition_spec();
    if spec.is_unpartitioned() {
        // Started on the first row, so that no rows write no file.
        let mut builder = Some(builder);
        let mut writer = None;
        while let Some(batch) = batches.next().await {
            if batch.num_rows() == 0 {
                continue;
            }
            if let Some(builder) = builder.take() {
                writer = Some(builder.build(None).await.map_err(error("cannot start writing"))?);
            }
            let writer = writer.as_mut().expect("started on the first row");
            for slice in slices(&batch) {
                writer.write(align(slice)?).await.map_err(write_error("cannot write data file"))?;
            }
        }
        return match writer {
            Some(mut writer) => writer.close().await.map_err(write_error("cannot finish data file")),
            None => Ok(Vec::new()),
        };
    }

    let splitter = RecordBatchPartitionSplitter::try_new_with_computed_values(schema.clone(), spec.clone())
        .map_err(error("cannot compute partition values"))?;
    let mut writer = Fanout::new(builder, target.fields().len());
    let fanout_error = |e: FanoutError, doing: &'static str| async move {
        match e {
            FanoutError::Iceberg(source) => write_error(doing)(source),
            // Its files are deleted with every other failed write's.
            FanoutError::TooManyFiles { files, open } => {
                LakehouseError::ScatteredPartitions { table: table_ref.to_string(), files: files.len(), open }
            }
        }
    };
    // Rows outside `only`: how many, and the first one's partition.
    let mut outside: Option<(Struct, u64)> = None;
    while let Some(batch) = batches.next().await {
        if batch.num_rows() == 0 {
            continue;
        }
        for slice in slices(&batch) {
            let parts = splitter.split(&align(slice)?).map_err(error("cannot compute partition values"))?;
            for (key, part) in parts {
                match only {
                    Some(only) if key.data() != only => {
                        let (_, rows) = outside.get_or_insert_with(|| (key.data().clone(), 0));
                        *rows += part.num_rows() as u64;
                    }
                    _ if outside.is_some() => {}
                    _ => {
                        if let Err(e) = writer.write(key, part).await {
                            return Err(fanout_error(e, "cannot write data file").await);
                        }
                    }
                }
            }
        }
    }
    if let (Some((example, rows)), Some(only)) = (outside, only) {
        return Err(LakehouseError::OutsidePartition {
            table: table_ref.to_string(),
            partition: describe_partition(spec, schema, only),
            rows,
            example: describe_partition(spec, schema, &example),
            column: spec
                .fields()
                .first()
                .and_then(|f| schema.field_by_id(f.source_id))
                .map_or_else(String::new, |f| f.name.clone()),
        });
    }
    match writer.finish().await {
        Ok(files) => Ok(files),
        Err(e) => Err(fanout_error(e, "cannot finish data file").await),
    }
}

/// `batch` in zero-copy slices of about `SLICE_BYTES` each (see there).
fn slices(batch: &RecordBatch) -> Vec<RecordBatch> {
    let (rows, bytes) = (batch.num_rows(), super::batch_bytes(batch));
    if bytes <= SLICE_BYTES || rows <= 1 {
        return vec![batch.clone()];
    }
    let per_slice = (rows * SLICE_BYTES / bytes).max(1);
    (0..rows).step_by(per_slice).map(|at| batch.slice(at, per_slice.min(rows - at))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_run_id_cannot_leave_the_data_folder() {
        let tags = CommitTags {
            run_id: "../../etc/x y'z".into(),
            pipeline: "p".into(),
            step: "s".into(),
            partition: None,
            inputs: Vec::new(),
        };
        let name = tags.data_file_name();
        assert!(name.starts_with("s-.._.._etc_x_y_z-") && name.ends_with("-00000.parquet"), "{name}");
        assert!(!name.contains('/'));
    }

    #[test]
    fn a_large_batch_is_converted_in_slices_of_bounded_bytes() {
        use arrow_array::{Array, Int8Array};
        // 32 MiB of Int8, which the table stores as Int32: 128 MiB at once.
        let column: arrow_array::ArrayRef = std::sync::Arc::new(Int8Array::from(vec![7i8; 32 << 20]));
        let batch = RecordBatch::try_from_iter([("v", column)]).unwrap();
        let parts = slices(&batch);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.iter().map(RecordBatch::num_rows).sum::<usize>(), 32 << 20);
        assert!(parts.iter().all(|p| super::super::batch_bytes(p) <= SLICE_BYTES), "slices over SLICE_BYTES");
        assert_eq!(parts[3].column(0).len(), 8 << 20);
        let small = batch.slice(0, 1000);
        assert_eq!(slices(&small).len(), 1);
    }
}
