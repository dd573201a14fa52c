//! Writing a step's batches as Parquet data files of the table. Nothing is
//! visible until `commit` swaps the table's metadata pointer; a failure here
//! leaves only unreferenced files.

use arrow_array::RecordBatch;
use iceberg::spec::{DataFile, DataFileFormat, SchemaRef};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{DefaultFileNameGenerator, DefaultLocationGenerator};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::{CommitTags, LakehouseError, schema};
use crate::plan::TableRef;

/// Writes `batches` as data files of `table` with the Iceberg `schema` (the
/// table's current one, or the one a schema evolution will make current).
pub async fn data_files(
    table: &Table,
    table_ref: &TableRef,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    tags: &CommitTags,
) -> Result<Vec<DataFile>, LakehouseError> {
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(Vec::new());
    }
    let target = schema::arrow_schema(schema).map_err(error("cannot convert the table schema to Arrow"))?;
    let properties = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let parquet = ParquetWriterBuilder::new(properties, schema.clone());
    let locations = DefaultLocationGenerator::new(table.metadata()).map_err(error("cannot place data files"))?;
    // A prefix unique to this write: the default generator numbers files from
    // zero on every write and would otherwise overwrite earlier files.
    let prefix = format!("{}-{}-{}", tags.step, tags.run_id, uuid::Uuid::new_v4().simple());
    let names = DefaultFileNameGenerator::new(prefix, None, DataFileFormat::Parquet);
    let rolling =
        RollingFileWriterBuilder::new_with_default_file_size(parquet, table.file_io().clone(), locations, names);
    let mut writer = DataFileWriterBuilder::new(rolling).build(None).await.map_err(error("cannot start writing"))?;
    for batch in batches {
        if batch.num_rows() == 0 {
            continue;
        }
        let aligned = schema::align(batch, &target).map_err(|e| LakehouseError::Unsupported {
            table: table_ref.to_string(),
            message: format!("cannot convert the step's output to the table schema: {e}"),
        })?;
        writer.write(aligned).await.map_err(error("cannot write a data file"))?;
    }
    writer.close().await.map_err(error("cannot finish a data file"))
}
