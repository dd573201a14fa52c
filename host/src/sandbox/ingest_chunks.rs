//! Parallel ingest: a source object cut into chunks of whole records
//! (`split.rs`), parsed by several instances of the plugin at once through its
//! `ingest-chunks` export, and delivered in file order, so that the output is
//! the one `ingest` gives over the whole object.
//!
//! Budgets: the instances share the plugin memory limit (each gets an equal
//! part), and the chunk outputs in flight share `max_output_bytes` (each
//! chunk's output may use an equal part of it), so running in parallel holds
//! no more plugin memory and no more plugin output than one instance does.
//! Every chunk's output goes through the same IPC checks as a serial run's,
//! in the worker that called the plugin, and its schema must be the first
//! chunk's.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::call::{Call, HostState, bindings::chunks as bindings};
use super::ipc::IpcStream;
use super::split::{Chunk, Splitter, Syntax};
use super::{PluginStats, Sandbox, SandboxError};

use bindings::exports::floe::plugin::ingest_chunks as wit;

/// What one parallel ingest needs to know.
pub(super) struct ChunkedRun<'a> {
    pub sandbox: &'a Sandbox,
    pub pre: &'a bindings::IngestChunksPluginPre<HostState>,
    pub plugin: &'a str,
    pub step: &'a str,
    pub config: &'a Vec<(String, String)>,
    pub source_name: &'a str,
    pub workers: usize,
}

/// Totals of a run, for the caller's span and log line.
#[derive(Default)]
pub(super) struct Totals {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub rows: u64,
    pub batches: u64,
    pub chunks: u64,
}

/// A parsed chunk, checked and decoded by the worker that parsed it.
struct Parsed {
    /// Where the chunk starts in the source, in bytes.
    offset: u64,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    bytes_out: u64,
}

/// Asks the plugin how its records are delimited under `config`, in a
/// throwaway instance. `None`: parse the object in one piece.
pub(super) fn syntax(
    sandbox: &Sandbox,
    pre: &bindings::IngestChunksPluginPre<HostState>,
    plugin: &str,
    step: &str,
    config: &Vec<(String, String)>,
) -> Result<Option<Syntax>, SandboxError> {
    let call = Call::new(step, plugin, sandbox);
    let mut store = call.store(pre.engine());
    let instance = pre.instantiate(&mut store).map_err(|e| call.died(&store, e))?;
    call.arm(&mut store);
    let declared = instance
        .floe_plugin_ingest_chunks()
        .call_syntax(&mut store, config)
        .map_err(|e| call.died(&store, e))?
        .map_err(|e| call.plugin_error(e))?;
    let Some(declared) = declared else { return Ok(None) };
    let quoting = declared.quoting.map(|q| super::split::Quoting { quote: q.quote, delimiter: q.delimiter });
    Syntax::new(declared.header_records, quoting).map(Some).map_err(|message| SandboxError::OutputRefused {
        step: step.to_owned(),
        plugin: plugin.to_owned(),
        message,
    })
}

/// The splitter for a run on `limits.ingest_parallelism` workers: chunks of
/// about `ingest_chunk_bytes`, and no chunk larger than its output share.
pub(super) fn splitter<'a>(input: &'a mut dyn Read, syntax: Syntax, limits: &super::Limits) -> Splitter<'a> {
    let output_share = limits.max_output_bytes / shares(limits).1;
    // A chunk's output is about its size; keep well inside the share.
    let target = limits.ingest_chunk_bytes.min(usize::try_from(output_share / 4).unwrap_or(usize::MAX)).max(1);
    let cap = usize::try_from(output_share).unwrap_or(usize::MAX).max(target);
    Splitter::new(input, syntax, target, cap)
}

/// How many ways the memory limit (one part per instance) and the output
/// limit (one part per chunk in flight) are split.
fn shares(limits: &super::Limits) -> (u64, u64) {
    let workers = limits.ingest_parallelism.max(1) as u64;
    (workers, WINDOW_PER_WORKER * workers)
}

/// Chunks parsed or waiting to be delivered, per worker, at most.
const WINDOW_PER_WORKER: u64 = 2;

impl ChunkedRun<'_> {
    /// Parses `first` and the rest of `splitter`'s chunks on `workers`
    /// threads and calls `on_batch` for every output batch in file order.
    /// Returns the output schema, the plugin's cost and the totals.
    pub(super) fn run(
        &self,
        mut splitter: Splitter<'_>,
        first: Chunk,
        on_batch: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
    ) -> Result<(SchemaRef, PluginStats, Totals), SandboxError> {
        let workers = self.workers.max(1);
        let window = WINDOW_PER_WORKER as usize * workers;
        let (memory_ways, output_ways) = shares(self.sandbox.limits());

        let (job_tx, job_rx) = mpsc::channel::<(Chunk, Arc<[u8]>)>();
        let job_rx = Mutex::new(job_rx);
        let (done_tx, done_rx) = mpsc::channel::<(usize, Result<Parsed, SandboxError>)>();
        let stop = AtomicBool::new(false);
        let stats = Mutex::new(PluginStats::default());

        // The workers' records (the plugin's log lines among them) belong to
        // the step's span, with its run id, pipeline and step.
        let span = tracing::Span::current();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let done_tx = done_tx.clone();
                let (job_rx, stop, stats, span) = (&job_rx, &stop, &stats, span.clone());
                scope.spawn(move || {
                    let _in_step = span.enter();
                    self.work(job_rx, &done_tx, stop, stats, memory_ways, output_ways)
                });
            }
            drop(done_tx);
            let result = self.deliver(&mut splitter, first, &job_tx, &done_rx, window, on_batch);
            // Whatever happened, the workers stop at their next job.
            stop.store(true, Ordering::Relaxed);
            drop(job_tx);
            result
        })
        .map(|(schema, totals)| (schema, stats.into_inner().unwrap_or_else(|e| e.into_inner()), totals))
    }

    /// The reading side: hands out chunks while fewer than `window` are in
    /// flight, and delivers parsed chunks in order.
    fn deliver(
        &self,
        splitter: &mut Splitter<'_>,
        first: Chunk,
        job_tx: &mpsc::Sender<(Chunk, Arc<[u8]>)>,
        done_rx: &mpsc::Receiver<(usize, Result<Parsed, SandboxError>)>,
        window: usize,
        on_batch: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
    ) -> Result<(SchemaRef, Totals), SandboxError> {
        let call = Call::new(self.step, self.plugin, self.sandbox);
        let mut totals = Totals::default();
        let mut header: Option<Arc<[u8]>> = None;
        let mut parsed: BTreeMap<usize, Result<Parsed, SandboxError>> = BTreeMap::new();
        let (mut sent, mut delivered, mut last) = (0usize, 0usize, false);
        let mut schema: Option<SchemaRef> = None;
        let mut first = Some(first);
        loop {
            while !last && sent - delivered < window {
                let chunk = match first.take() {
                    Some(first) => Some(first),
                    None => splitter.next_chunk().map_err(|source| SandboxError::Input {
                        step: self.step.to_owned(),
                        plugin: self.plugin.to_owned(),
                        source,
                    })?,
                };
                let Some(chunk) = chunk else {
                    last = true;
                    break;
                };
                totals.bytes_in += chunk.bytes.len() as u64;
                // The first chunk holds the header itself; the others get it.
                let header = header.get_or_insert_with(|| Arc::from(splitter.header())).clone();
                let header = if chunk.index == 0 { Arc::from(&[][..]) } else { header };
                if job_tx.send((chunk, header)).is_err() {
                    return Err(host_bug("its workers stopped taking chunks"));
                }
                sent += 1;
            }
            if delivered == sent {
                break;
            }
            let Ok((index, result)) = done_rx.recv() else {
                // Every worker is gone: a failure among the results says why.
                return Err(parsed
                    .into_values()
                    .find_map(Result::err)
                    .unwrap_or_else(|| host_bug("its workers stopped")));
            };
            parsed.insert(index, result);
            while let Some(result) = parsed.remove(&delivered) {
                let chunk = result?;
                match &schema {
                    None => schema = Some(chunk.schema.clone()),
                    Some(first) if **first != *chunk.schema => {
                        return Err(SandboxError::SchemaChanged {
                            step: self.step.to_owned(),
                            plugin: self.plugin.to_owned(),
                            message: format!(
                                "the chunk from byte {} of the source has another schema than the first chunk",
                                chunk.offset
                            ),
                        });
                    }
                    Some(_) => {}
                }
                totals.bytes_out += chunk.bytes_out;
                totals.chunks += 1;
                for batch in chunk.batches {
                    totals.rows += batch.num_rows() as u64;
                    totals.batches += 1;
                    on_batch(batch).map_err(|message| call.sink(message))?;
                }
                delivered += 1;
            }
        }
        let schema = schema.ok_or_else(|| host_bug("the source produced no chunk"))?;
        Ok((schema, totals))
    }

    /// One worker: its own store and instance, reused for every chunk it
    /// takes, under its share of the memory and output limits.
    fn work(
        &self,
        jobs: &Mutex<mpsc::Receiver<(Chunk, Arc<[u8]>)>>,
        done: &mpsc::Sender<(usize, Result<Parsed, SandboxError>)>,
        stop: &AtomicBool,
        stats: &Mutex<PluginStats>,
        memory_ways: u64,
        output_ways: u64,
    ) {
        let call = Call::new(self.step, self.plugin, self.sandbox).with_shares(memory_ways, output_ways);
        let mut store = call.store(self.pre.engine());
        let mut instance = None;
        loop {
            let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
            let Ok((chunk, header)) = job else { break };
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let index = chunk.index;
            let result = self.parse(&call, &mut store, &mut instance, chunk, &header);
            let failed = result.is_err();
            if done.send((index, result)).is_err() || failed {
                break; // after a failure the store is not trusted
            }
        }
        stats.lock().unwrap_or_else(|e| e.into_inner()).merge_concurrent(store.data().stats());
    }

    fn parse(
        &self,
        call: &Call<'_>,
        store: &mut wasmtime::Store<HostState>,
        instance: &mut Option<bindings::IngestChunksPlugin>,
        chunk: Chunk,
        header: &[u8],
    ) -> Result<Parsed, SandboxError> {
        if instance.is_none() {
            *instance = Some(self.pre.instantiate(&mut *store).map_err(|e| call.died(store, e))?);
        }
        let instance = instance.as_ref().expect("set above");
        let offset = chunk.offset;
        let wit_chunk = wit::Chunk {
            header: header.to_vec(),
            bytes: chunk.bytes,
            first_record: chunk.first_record,
            first_line: chunk.first_line,
        };
        call.arm(store);
        let fragment = instance
            .floe_plugin_ingest_chunks()
            .call_parse_chunk(&mut *store, self.config, self.source_name, &wit_chunk)
            .map_err(|e| call.died(store, e))?
            .map_err(|e| call.plugin_error(e))?;
        drop(wit_chunk);
        call.check_output(fragment.len())?;
        let bytes_out = fragment.len() as u64;
        let mut stream = IpcStream::new(call.max_output_bytes());
        let batches = stream.push(fragment).map_err(|e| call.ipc_error(e))?;
        let schema = stream.finish().map_err(|e| call.ipc_error(e))?;
        Ok(Parsed { offset, schema, batches, bytes_out })
    }
}

/// A state parallel ingest should never reach.
fn host_bug(what: &str) -> SandboxError {
    SandboxError::Engine {
        message: format!(
            "parallel ingest failed: {what} (a floe-host bug; set `plugins.ingest_parallelism: 1` to avoid it)"
        ),
    }
}
