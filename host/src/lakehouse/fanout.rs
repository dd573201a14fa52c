//! The open file writers of a partitioned write, one per partition, within
//! bounds.
//!
//! A partition's values come from the step's output (a plugin's, among
//! others), and every open writer costs the host memory and a file
//! descriptor: about 100 KiB per column (measured: 8,000 partitions of a
//! 3-column table took 1.3 GB, 1,365 open at once 390 MB above the host's
//! own), and up to a row group (128 MiB) of rows. So at most [`OPEN_COLUMN_WRITERS`] / columns
//! partitions are open at once, and their writers hold at most
//! [`OPEN_BYTES`] of rows between them. Past either bound the writer used
//! least recently, or the one holding the most, is closed and its file
//! finished; a later row of its partition starts a new file.
//!
//! Output in partition order (a time-ordered ingest, a model with
//! `ORDER BY`) writes one file per partition. Rows in no order over more
//! partitions than stay open make small files, which `floe-host maintain`
//! compacts; past [`MAX_FILES`] the step fails rather than commit a table
//! of that many files.

use std::collections::{BTreeMap, HashMap};

use arrow_array::RecordBatch;
use iceberg::spec::{DataFile, PartitionKey, Struct};
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};

/// Column writers (open partitions × columns) open at once: about 200 MiB,
/// 682 partitions of a 3-column table, 102 of 20 columns (Trino's Iceberg
/// connector keeps 100 open by default).
pub const OPEN_COLUMN_WRITERS: usize = 2048;
/// Bytes of rows the open writers take in before the fullest is closed.
pub const OPEN_BYTES: usize = 512 << 20;
/// Most data files one write makes.
pub const MAX_FILES: usize = 20_000;

/// Why a partitioned write stopped.
#[derive(Debug)]
pub enum FanoutError {
    Iceberg(iceberg::Error),
    /// [`MAX_FILES`] data files were made, with `open` partitions open at
    /// most; `files` are theirs, for the caller to delete.
    TooManyFiles {
        files: Vec<DataFile>,
        open: usize,
    },
}

impl From<iceberg::Error> for FanoutError {
    fn from(error: iceberg::Error) -> Self {
        FanoutError::Iceberg(error)
    }
}

struct Open<W> {
    writer: W,
    /// When it was last written to, a key of `Fanout::by_use`.
    used: u64,
    /// Bytes of rows written since it was opened.
    bytes: usize,
}

/// Writes each batch to its partition's writer, opening and closing them
/// within the bounds above.
pub struct Fanout<B: IcebergWriterBuilder> {
    builder: B,
    open: HashMap<Struct, Open<B::R>>,
    /// The open partitions by last use, least recent first.
    by_use: BTreeMap<u64, Struct>,
    clock: u64,
    max_open: usize,
    bytes: usize,
    /// Files of the writers closed so far.
    closed: Vec<DataFile>,
}

impl<B: IcebergWriterBuilder> Fanout<B> {
    /// A fanout for a table of `columns` columns.
    pub fn new(builder: B, columns: usize) -> Self {
        Fanout {
            builder,
            open: HashMap::new(),
            by_use: BTreeMap::new(),
            clock: 0,
            max_open: (OPEN_COLUMN_WRITERS / columns.max(1)).max(1),
            bytes: 0,
            closed: Vec::new(),
        }
    }

    pub async fn write(&mut self, key: PartitionKey, batch: RecordBatch) -> Result<(), FanoutError> {
        let size = batch_bytes(&batch);
        self.clock += 1;
        let partition = key.data();
        match self.open.get_mut(partition) {
            Some(open) => {
                self.by_use.remove(&open.used);
                open.used = self.clock;
            }
            None => {
                if self.open.len() >= self.max_open
                    && let Some((_, least)) = self.by_use.pop_first()
                {
                    self.close(&least).await?;
                }
                let writer = self.builder.build(Some(key.clone())).await?;
                self.open.insert(partition.clone(), Open { writer, used: self.clock, bytes: 0 });
            }
        }
        self.by_use.insert(self.clock, partition.clone());
        let open = self.open.get_mut(partition).expect("opened above");
        open.writer.write(batch).await?;
        open.bytes += size;
        self.bytes += size;
        while self.bytes > OPEN_BYTES {
            let Some(fullest) = self.open.iter().max_by_key(|(_, open)| open.bytes).map(|(key, _)| key.clone()) else {
                break;
            };
            let used = self.open[&fullest].used;
            self.by_use.remove(&used);
            self.close(&fullest).await?;
        }
        Ok(())
    }

    /// Closes `partition`'s writer (already out of `by_use`).
    async fn close(&mut self, partition: &Struct) -> Result<(), FanoutError> {
        let Some(mut open) = self.open.remove(partition) else { return Ok(()) };
        self.bytes -= open.bytes;
        self.closed.extend(open.writer.close().await?);
        if self.closed.len() >= MAX_FILES {
            return Err(FanoutError::TooManyFiles { files: std::mem::take(&mut self.closed), open: self.max_open });
        }
        Ok(())
    }

    /// Closes every writer; the files of the whole write.
    pub async fn finish(mut self) -> Result<Vec<DataFile>, FanoutError> {
        for (_, mut open) in self.open.drain() {
            self.closed.extend(open.writer.close().await?);
        }
        Ok(self.closed)
    }
}

/// The bytes of `batch`'s own rows. A plugin's batches are slices of one
/// buffer shared by every batch of its message, and a partition of a batch
/// that is all one partition is the batch itself: `get_array_memory_size`
/// would count the whole buffer for each.
pub fn batch_bytes(batch: &RecordBatch) -> usize {
    batch.columns().iter().map(|column| column.to_data().get_slice_memory_size().unwrap_or(0)).sum()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array};

    use super::*;

    #[test]
    fn a_slice_counts_its_own_rows_only() {
        let column: ArrayRef = Arc::new(Int64Array::from_iter_values(0..1_000_000));
        let batch = RecordBatch::try_from_iter([("v", column)]).unwrap();
        assert_eq!(batch_bytes(&batch), 8_000_000);
        assert_eq!(batch_bytes(&batch.slice(10, 1000)), 8_000);
        assert!(batch.slice(10, 1000).get_array_memory_size() >= 8_000_000, "the shared buffer, counted whole");
    }
}
