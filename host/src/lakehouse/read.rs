//! Reading a table's current snapshot, through iceberg's scan (which applies
//! the snapshot's own schema and any delete files), whole or only the rows a
//! filter matches. A step's input is either streamed as Arrow batches or, when
//! DuckDB can read it as it is, handed over as its list of local Parquet
//! files.
//!
//! A streaming plugin sees its input **in the table's order**: its data files
//! as they were committed (oldest first, and within a commit as it wrote
//! them), one after another, each file's rows in order. iceberg's reader
//! otherwise reads several files at once and yields their batches as they
//! come, and its plan lists files in no set order: "the first record of each
//! key" (`dedup`) then depended on timing once a table had two data files
//! (50M orders: the same row count, other rows).

use std::collections::{BTreeMap, HashMap};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use iceberg::expr::Predicate;
use iceberg::scan::{FileScanTask, TableScan};
use iceberg::spec::{DataFileFormat, ManifestContentType};
use iceberg::table::Table;

use super::{LakehouseError, schema};
use crate::plan::TableRef;

/// Rows per batch a scan yields: a plugin's `push` takes up to this many.
const BATCH_ROWS: usize = 65_536;

/// How a step takes an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// As local Parquet files where DuckDB can read them as they are, else
    /// as batches in any order (a database loads them).
    FilesOrBatches,
    /// As batches, in any order.
    Batches,
    /// As batches in the table's order (a streaming plugin's input).
    InOrder,
}

/// A step's input table, as the step reads it.
pub enum Input {
    /// Local Parquet data files that DuckDB can read itself: no delete files
    /// apply to them and no row filter is needed.
    Files { schema: SchemaRef, paths: Vec<String>, rows: u64, bytes: u64 },
    /// Batches from iceberg's reader, produced as they are pulled.
    Batches { schema: SchemaRef, batches: BoxStream<'static, Result<RecordBatch, LakehouseError>>, bytes: u64 },
}

impl Input {
    /// The size of the data files the input reads.
    pub fn bytes(&self) -> u64 {
        match self {
            Input::Files { bytes, .. } | Input::Batches { bytes, .. } => *bytes,
        }
    }

    /// Every batch of the input, read now.
    pub async fn collect(self) -> Result<(SchemaRef, Vec<RecordBatch>, u64), LakehouseError> {
        match self {
            Input::Files { .. } => unreachable!("collected inputs are opened as batches"),
            Input::Batches { schema, batches, bytes } => {
                let batches: Vec<RecordBatch> = batches.try_collect().await?;
                let schema = batches.first().map(|b| b.schema()).unwrap_or(schema);
                Ok((schema, batches, bytes))
            }
        }
    }
}

/// Every live data file of the table's current snapshot, with its deletes.
pub(super) async fn live_files(table: &Table, table_ref: &TableRef) -> Result<Vec<FileScanTask>, LakehouseError> {
    let scan = table.scan().select_all().build().map_err(|source| LakehouseError::Table {
        table: table_ref.to_string(),
        message: "cannot plan the scan",
        source,
    })?;
    plan_files(&scan, table_ref).await
}

/// The data files a scan will read (after partition and statistics pruning).
pub(super) async fn plan_files(scan: &TableScan, table_ref: &TableRef) -> Result<Vec<FileScanTask>, LakehouseError> {
    let error =
        |source| LakehouseError::Table { table: table_ref.to_string(), message: "cannot plan the scan", source };
    scan.plan_files().await.map_err(error)?.try_collect().await.map_err(error)
}

/// Sorts `tasks` into the table's order: by the data sequence number their
/// files were added with (commits, oldest first), then as the manifests list
/// them (the order each commit wrote them; `maintain` keeps it when it merges
/// manifests). A task whose file no manifest lists (none is known) goes last,
/// by path.
async fn in_table_order(table: &Table, tasks: &mut [FileScanTask]) -> iceberg::Result<()> {
    if tasks.len() < 2 {
        return Ok(());
    }
    let Some(snapshot) = table.metadata().current_snapshot() else { return Ok(()) };
    let list = table.manifest_list_reader(snapshot).load().await?;
    let mut order: HashMap<String, (i64, usize)> = HashMap::with_capacity(tasks.len());
    for manifest_file in list.entries().iter().filter(|m| m.content == ManifestContentType::Data) {
        let manifest = manifest_file.load_manifest(table.file_io()).await?;
        for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
            let sequence = entry.sequence_number().unwrap_or(manifest_file.sequence_number);
            let position = order.len();
            order.entry(entry.file_path().to_owned()).or_insert((sequence, position));
        }
    }
    let unknown = (i64::MAX, usize::MAX);
    tasks.sort_by(|a, b| {
        let key = |t: &FileScanTask| (order.get(&t.data_file_path).copied().unwrap_or(unknown), t.start);
        key(a).cmp(&key(b)).then_with(|| a.data_file_path.cmp(&b.data_file_path))
    });
    Ok(())
}

/// Opens the table's current snapshot for reading; with `filter`, only the
/// rows it matches, and data files whose partition or column statistics
/// cannot match are not read at all. `take` says whether local Parquet files
/// without deletes may be listed rather than read, and whether the batches
/// must come in the table's order.
pub async fn open(
    table: &Table,
    table_ref: &TableRef,
    filter: Option<Predicate>,
    take: Take,
) -> Result<Input, LakehouseError> {
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    let schema = schema::table_arrow_schema(table).map_err(error("cannot convert the table schema to Arrow"))?;
    if table.metadata().current_snapshot_id().is_none() {
        return Ok(Input::Batches { schema, batches: futures::stream::empty().boxed(), bytes: 0 });
    }
    let filtered = filter.is_some();
    let mut builder = table.scan().select_all().with_batch_size(Some(BATCH_ROWS));
    if let Some(filter) = filter {
        builder = builder.with_filter(filter);
    }
    let scan = builder.build().map_err(error("cannot plan the scan"))?;
    let mut tasks = plan_files(&scan, table_ref).await?;
    let files_allowed = take == Take::FilesOrBatches;
    if take == Take::InOrder {
        in_table_order(table, &mut tasks).await.map_err(error("cannot read the manifests"))?;
    }
    let sizes: BTreeMap<&str, u64> = tasks.iter().map(|t| (t.data_file_path.as_str(), t.file_size_in_bytes)).collect();
    let bytes = sizes.values().sum();
    // A table whose files may lack field ids resolves columns by name.
    let name_mapped = table.metadata().properties().contains_key("schema.name-mapping.default");
    let direct = files_allowed
        && !filtered
        && !name_mapped
        && tasks.iter().all(|t| {
            t.deletes.is_empty()
                && t.data_file_format == DataFileFormat::Parquet
                && t.record_count.is_some()
                && local_path(&t.data_file_path).is_some()
        });
    if direct {
        let paths = sizes.keys().filter_map(|p| local_path(p)).map(str::to_string).collect();
        let rows = tasks.iter().filter_map(|t| t.record_count).sum();
        return Ok(Input::Files { schema, paths, rows, bytes });
    }
    let table_name = table_ref.to_string();
    let paths: std::sync::Arc<Vec<String>> = std::sync::Arc::new(sizes.keys().map(|p| p.to_string()).collect());
    let file_io = table.file_io().clone();
    let mut reader = table.reader_builder().with_batch_size(BATCH_ROWS);
    if take == Take::InOrder {
        // One file after another, as listed (several at once interleave).
        reader = reader.with_data_file_concurrency_limit(1);
    }
    let batches = reader
        .build()
        .read(Box::pin(futures::stream::iter(tasks.into_iter().map(Ok))))
        .map_err(error("cannot start the scan"))?
        .stream()
        .then(move |item| {
            let (table, paths, file_io) = (table_name.clone(), paths.clone(), file_io.clone());
            async move {
                match item {
                    Ok(batch) => Ok(batch),
                    Err(source) => Err(match corrupt_file(&file_io, &paths).await {
                        Some((file, message)) => {
                            LakehouseError::Corrupt { table, what: "its data file", file, message }
                        }
                        None => LakehouseError::Table { table, message: "cannot read data files", source },
                    }),
                }
            }
        })
        .boxed();
    Ok(Input::Batches { schema, batches, bytes })
}

/// One column of the table's current snapshot, streamed; `None` when the
/// table has no such column. For checks that need one column of a table
/// that may be wide (a `relationships` test's referenced field).
pub async fn column(
    table: &Table,
    table_ref: &TableRef,
    column: &str,
) -> Result<Option<BoxStream<'static, Result<RecordBatch, LakehouseError>>>, LakehouseError> {
    let error = |message: &'static str| {
        let table = table_ref.to_string();
        move |source| LakehouseError::Table { table, message, source }
    };
    if table.metadata().current_schema().field_by_name(column).is_none() {
        return Ok(None);
    }
    if table.metadata().current_snapshot_id().is_none() {
        return Ok(Some(futures::stream::empty().boxed()));
    }
    let scan = table
        .scan()
        .select([column])
        .with_batch_size(Some(BATCH_ROWS))
        .build()
        .map_err(error("cannot plan the scan"))?;
    let table_name = table_ref.to_string();
    let batches = scan.to_arrow().await.map_err(error("cannot start the scan"))?.map_err(move |source| {
        LakehouseError::Table { table: table_name.clone(), message: "cannot read data files", source }
    });
    Ok(Some(batches.boxed()))
}

/// After a failed read, the first of `paths` that is not a whole Parquet
/// file (too short, or without the footer it must end with), and why: the
/// reader's own error does not say which file failed. `None` when every file
/// looks whole, or cannot be checked (then the failure may be transient).
async fn corrupt_file(file_io: &iceberg::io::FileIO, paths: &[String]) -> Option<(String, String)> {
    for path in paths {
        let Ok(input) = file_io.new_input(path) else { continue };
        let Ok(metadata) = input.metadata().await else { continue };
        let size = metadata.size;
        let tail = match size {
            ..12 => Vec::new(),
            _ => {
                let Ok(reader) = input.reader().await else { continue };
                let Ok(tail) = reader.read(size - 8..size).await else { continue };
                tail.to_vec()
            }
        };
        if let Some(why) = not_parquet(size, &tail) {
            return Some((path.clone(), why));
        }
    }
    None
}

/// [`corrupt_file`] for local paths, read directly: for an input DuckDB
/// reads itself, whose error may not say that the file is broken.
pub fn corrupt_local_file(paths: &[String]) -> Option<(String, String)> {
    use std::io::{Read, Seek, SeekFrom};
    for path in paths {
        let Ok(mut file) = std::fs::File::open(path) else { continue };
        let Ok(size) = file.metadata().map(|m| m.len()) else { continue };
        let mut tail = [0u8; 8];
        if size >= 12 && file.seek(SeekFrom::End(-8)).and_then(|_| file.read_exact(&mut tail)).is_err() {
            continue;
        }
        if let Some(why) = not_parquet(size, &tail) {
            return Some((path.clone(), why));
        }
    }
    None
}

/// Why a file of `size` bytes that ends with `tail` (its last 8 bytes; any
/// bytes when it is shorter than a Parquet file can be) is not a whole
/// Parquet file, if it is not: Parquet ends with the footer's length and
/// `PAR1`.
fn not_parquet(size: u64, tail: &[u8]) -> Option<String> {
    if size < 12 {
        return Some(format!("{size} bytes, too short for a Parquet file"));
    }
    if &tail[4..8] != b"PAR1" {
        return Some(format!("{size} bytes, and it does not end with Parquet's `PAR1`"));
    }
    let footer = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    (footer + 12 > size).then(|| format!("{size} bytes, shorter than its footer says ({footer} bytes)"))
}

/// The file-system path of a local data file (`file:///a/b` or `/a/b`).
pub(super) fn local_path(location: &str) -> Option<&str> {
    let path = location.strip_prefix("file://").unwrap_or(location);
    path.starts_with('/').then_some(path)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn a_file_without_its_footer_is_not_parquet() {
        use super::not_parquet;
        assert_eq!(not_parquet(11, &[]), Some("11 bytes, too short for a Parquet file".into()));
        assert_eq!(not_parquet(100, &[4, 0, 0, 0, b'P', b'A', b'R', b'1']), None);
        assert!(not_parquet(100, &[4, 0, 0, 0, b'x', b'A', b'R', b'1']).unwrap().contains("`PAR1`"));
        assert!(not_parquet(100, &[200, 0, 0, 0, b'P', b'A', b'R', b'1']).unwrap().contains("(200 bytes)"));
    }

    #[test]
    fn only_local_locations_have_a_path() {
        assert_eq!(local_path("file:///w/t/data/a.parquet"), Some("/w/t/data/a.parquet"));
        assert_eq!(local_path("/w/t/data/a.parquet"), Some("/w/t/data/a.parquet"));
        assert_eq!(local_path("s3://bucket/t/data/a.parquet"), None);
        assert_eq!(local_path("file:relative.parquet"), None);
    }
}
