//! Where a step's output goes while the step computes: into the data files
//! of its table, written by a task of their own as the batches arrive. The
//! output is never held whole, and Parquet encoding runs beside the query
//! or the plugin. A `merge` needs its whole output before it can start, so
//! its batches are collected.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use arrow_select::coalesce::BatchCoalescer;
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::config::WriteMode;
use crate::lakehouse::{
    CommitInfo, CommitTags, Lakehouse, LakehouseError, LocalFile, PendingWrite, WriteSpec, WrittenFiles,
};
use crate::plan::Step;

/// Batches queued for the writer: enough to keep it busy, few enough that
/// memory stays bounded by the batches in flight, in number and in MiB (a
/// plugin's batch may be hundreds of MiB: sixteen of them were gigabytes).
const IN_FLIGHT: usize = 16;
const IN_FLIGHT_MIB: u32 = 64;

/// Small batches (a selective filter leaves a few rows of each DuckDB chunk)
/// are gathered up to this many rows before they go to the writer, which
/// pays a fixed cost per batch and column. Batches above `SMALL_ROWS` go as
/// they are, without a copy.
const GATHER_ROWS: usize = 8192;
const SMALL_ROWS: usize = 1024;
/// A batch of this many bytes is worth the writer's fixed cost whatever its
/// rows, and goes as it is: gathered by rows alone, 1,024-row batches of
/// 64 KiB rows (a plugin's) were held until 8,192 rows, 512 MiB, then
/// copied into one batch, which then became one row group.
const GATHER_BYTES: usize = 4 << 20;

/// The destination of one step's batches.
pub(super) struct TableSink<'a> {
    lakehouse: &'a Lakehouse,
    step: &'a Step,
    spec: WriteSpec<'a>,
    tags: &'a CommitTags,
    state: State,
}

enum State {
    /// No batch yet.
    Idle,
    /// A merge's output, held whole.
    Collected(Vec<RecordBatch>),
    /// Data files being written by `task` from the batches sent to it.
    Writing {
        pending: PendingWrite,
        small: BatchCoalescer,
        batches: Queue,
        task: JoinHandle<Result<WrittenFiles, LakehouseError>>,
    },
    /// DuckDB writes the output itself, as `file` (`begin_direct`).
    Direct { pending: PendingWrite, file: LocalFile },
    /// The file DuckDB wrote, taken into the table's data folder.
    Adopted { pending: PendingWrite, files: WrittenFiles },
    /// The write could not begin: the batches are dropped, and the error is
    /// the step's unless the step fails on its own first (a plugin that
    /// breaks its contract is reported as such).
    Failed(LakehouseError),
}

/// What a step left to commit.
pub(super) enum Written {
    /// Data files, written as the step ran.
    Files(PendingWrite, WrittenFiles),
    /// The whole output: a merge's, or no batch at all.
    Batches(Vec<RecordBatch>),
}

impl<'a> TableSink<'a> {
    pub fn new(lakehouse: &'a Lakehouse, step: &'a Step, spec: WriteSpec<'a>, tags: &'a CommitTags) -> Self {
        let state = if spec.mode == WriteMode::Merge { State::Collected(Vec::new()) } else { State::Idle };
        TableSink { lakehouse, step, spec, tags, state }
    }

    /// Takes one batch of the step's output. Called from the step's blocking
    /// code (inside `block_in_place`); the first batch begins the write. An
    /// error (the writer stopped) tells the step to stop: `failure` says why.
    pub fn push(&mut self, batch: RecordBatch) -> Result<(), String> {
        if let State::Idle = self.state
            && let Err(message) = crate::sandbox::check_names(batch.schema_ref())
        {
            // A model's output (a plugin's was checked at the boundary):
            // nothing is written for it.
            let table = self.step.target.to_string();
            self.state = State::Failed(LakehouseError::OutputColumns { table, message });
        }
        if let State::Idle = self.state {
            let handle = Handle::current();
            let begun = handle.block_on(self.lakehouse.begin_write(
                &self.step.catalog,
                &self.step.target,
                self.step.location.as_deref(),
                &batch.schema(),
                self.spec,
            ));
            self.state = match begun {
                Ok(pending) => {
                    let (sender, receiver) = mpsc::channel(IN_FLIGHT);
                    // A batch's bytes are released as the writer takes it.
                    let batches = futures::stream::unfold(receiver, |mut receiver| async move {
                        receiver.recv().await.map(|(batch, _bytes)| (batch, receiver))
                    });
                    let task = handle.spawn(pending.write_files(Box::pin(batches), self.tags));
                    let small = BatchCoalescer::new(batch.schema(), GATHER_ROWS)
                        .with_biggest_coalesce_batch_size(Some(SMALL_ROWS));
                    let batches = Queue { sender, mib: std::sync::Arc::new(Semaphore::new(IN_FLIGHT_MIB as usize)) };
                    State::Writing { pending, small, batches, task }
                }
                Err(error) => State::Failed(error),
            };
        }
        match &mut self.state {
            State::Collected(batches) => {
                batches.push(batch);
                Ok(())
            }
            State::Writing { small, batches, .. } => {
                let gather_error = |e| format!("cannot gather the step's batches: {e}");
                let bytes = crate::lakehouse::batch_bytes(&batch);
                if bytes >= GATHER_BYTES {
                    // After what was gathered before it, so that rows keep their order.
                    small.finish_buffered_batch().map_err(gather_error)?;
                    send_completed(small, batches)?;
                    return batches.send(batch, bytes);
                }
                small.push_batch(batch).map_err(gather_error)?;
                send_completed(small, batches)
            }
            State::Failed(_) => Ok(()),
            State::Idle => unreachable!("the write began above"),
            State::Direct { .. } | State::Adopted { .. } => {
                Err("the step's output was already written by DuckDB".to_string())
            }
        }
    }

    /// Begins a write of `schema` that DuckDB makes itself, first at
    /// `scratch`: `Some(file)` when the table can take such a file
    /// ([`PendingWrite::local_file`]); `None` leaves the sink as it was, for
    /// the batches to stream in.
    pub async fn begin_direct(
        &mut self,
        schema: &SchemaRef,
        scratch: &std::path::Path,
    ) -> Result<Option<LocalFile>, LakehouseError> {
        // Decided before the write begins: beginning it may stage a new
        // table in a REST catalog, which a second begin would do again.
        let step = self.step;
        if !matches!(self.state, State::Idle)
            || self.spec.mode == WriteMode::Merge
            || !step.partition_by.is_empty()
            || !self.lakehouse.local_storage(&step.catalog)
            || !crate::lakehouse::duckdb_can_write(schema)
        {
            return Ok(None);
        }
        crate::sandbox::check_names(schema)
            .map_err(|message| LakehouseError::OutputColumns { table: step.target.to_string(), message })?;
        let pending = self
            .lakehouse
            .begin_write(&step.catalog, &step.target, step.location.as_deref(), schema, self.spec)
            .await?;
        let Some(file) = pending.local_file(scratch, &self.tags.data_file_name()) else { return Ok(None) };
        self.state = State::Direct { pending, file: file.clone() };
        Ok(Some(file))
    }

    /// Gives up a direct write before DuckDB wrote anything: the batches
    /// stream in instead.
    pub fn decline_direct(&mut self) {
        if let State::Direct { .. } = self.state {
            self.state = State::Idle;
        }
    }

    /// Takes the file DuckDB wrote for the direct write into the table.
    pub fn adopt(&mut self) -> Result<(), LakehouseError> {
        let State::Direct { pending, file } = std::mem::replace(&mut self.state, State::Idle) else {
            return Ok(());
        };
        match pending.adopt(&file) {
            Ok(files) => {
                self.state = State::Adopted { pending, files };
                Ok(())
            }
            Err(error) => {
                let _ = std::fs::remove_file(&file.scratch);
                Err(error)
            }
        }
    }

    /// For a step that failed: waits for the writer to stop and deletes the
    /// data files it wrote. Returns why the writer failed, if it did: the
    /// cause to report when the step stopped because a batch was refused.
    pub async fn failure(self) -> Option<LakehouseError> {
        match self.state {
            State::Writing { pending, batches, task, .. } => {
                drop(batches);
                match finished(task, &self.step.target.to_string()).await {
                    Ok(files) => {
                        pending.discard(files).await;
                        None
                    }
                    Err(error) => Some(error),
                }
            }
            State::Direct { file, .. } => {
                // What DuckDB wrote before it failed, if anything.
                let _ = std::fs::remove_file(&file.scratch);
                None
            }
            State::Adopted { pending, files } => {
                pending.discard(files).await;
                None
            }
            State::Idle | State::Collected(_) | State::Failed(_) => None,
        }
    }

    /// Waits for the last data file, once the step has produced everything.
    pub async fn finish(self) -> Result<Written, LakehouseError> {
        match self.state {
            State::Idle => Ok(Written::Batches(Vec::new())),
            State::Collected(batches) => Ok(Written::Batches(batches)),
            State::Writing { pending, mut small, batches, task } => {
                let table = self.step.target.to_string();
                let flushed = small.finish_buffered_batch().map_err(|e| e.to_string());
                let sent = tokio::task::block_in_place(|| flushed.and_then(|()| send_completed(&mut small, &batches)));
                drop(batches);
                let files = finished(task, &table).await?;
                sent.map_err(|message| LakehouseError::WriterStopped { table, message })?;
                Ok(Written::Files(pending, files))
            }
            State::Adopted { pending, files } => Ok(Written::Files(pending, files)),
            State::Direct { file, .. } => {
                // Never adopted: committing nothing would empty the table.
                let _ = std::fs::remove_file(&file.scratch);
                Err(LakehouseError::WriterStopped {
                    table: self.step.target.to_string(),
                    message: "DuckDB's data file was never taken into the table".to_string(),
                })
            }
            State::Failed(error) => Err(error),
        }
    }
}

impl Written {
    /// Deletes the data files of a step that fails before its commit.
    pub async fn discard(self) {
        if let Written::Files(pending, files) = self {
            pending.discard(files).await;
        }
    }

    /// Commits what the step wrote (`schema`: its output schema) as one snapshot.
    pub async fn commit(
        self,
        lakehouse: &Lakehouse,
        step: &Step,
        schema: &SchemaRef,
        spec: WriteSpec<'_>,
        tags: &CommitTags,
    ) -> Result<CommitInfo, LakehouseError> {
        match self {
            Written::Files(pending, files) => lakehouse.commit_write(pending, files, spec, tags).await,
            Written::Batches(batches) => {
                lakehouse
                    .write(&step.catalog, &step.target, step.location.as_deref(), schema, batches, spec, tags)
                    .await
            }
        }
    }
}

/// Sends the coalescer's completed batches to the writer.
fn send_completed(small: &mut BatchCoalescer, batches: &Queue) -> Result<(), String> {
    while let Some(batch) = small.next_completed_batch() {
        let bytes = crate::lakehouse::batch_bytes(&batch);
        batches.send(batch, bytes)?;
    }
    Ok(())
}

/// The writer's queue: at most [`IN_FLIGHT`] batches and [`IN_FLIGHT_MIB`]
/// of them (a batch counts at least 1 MiB, and at most all of it, so that a
/// larger batch still goes, alone).
struct Queue {
    sender: mpsc::Sender<(RecordBatch, OwnedSemaphorePermit)>,
    mib: std::sync::Arc<Semaphore>,
}

impl Queue {
    /// Waits, on a blocking thread, until the writer has room for `batch`
    /// of `bytes` (`lakehouse::batch_bytes`).
    fn send(&self, batch: RecordBatch, bytes: usize) -> Result<(), String> {
        let stopped = || "the table's data file writer stopped".to_string();
        let mib = u32::try_from(bytes >> 20).unwrap_or(u32::MAX).clamp(1, IN_FLIGHT_MIB);
        let permit = futures::executor::block_on(self.mib.clone().acquire_many_owned(mib)).map_err(|_| stopped())?;
        self.sender.blocking_send((batch, permit)).map_err(|_| stopped())
    }
}

async fn finished(
    task: JoinHandle<Result<WrittenFiles, LakehouseError>>,
    table: &str,
) -> Result<WrittenFiles, LakehouseError> {
    task.await.unwrap_or_else(|join| {
        Err(LakehouseError::WriterStopped { table: table.to_string(), message: join.to_string() })
    })
}
