//! Ingest plugins: the call loop that streams a source object through
//! `open`/`push`/`finish` and decodes what comes back. The bindings, the
//! per-run store and error classification live in `call.rs`.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use wasmtime::Store;
use wasmtime::component::Component;

use super::call::{self, Call, HostState, bindings::chunks as chunk_bindings, bindings::ingest as bindings};
use super::ingest_chunks::{self, ChunkedRun, Totals};
use super::ipc::IpcStream;
use super::{Compiled, PluginInfo, PluginStats, Sandbox, SandboxError};

/// A compiled and linked ingest component. Every run gets a fresh store and
/// instance, so a trap never leaks into the next run. Cheap to clone.
#[derive(Clone)]
pub struct IngestPlugin {
    sandbox: Sandbox,
    name: String,
    pre: bindings::IngestPluginPre<HostState>,
    /// Set when the component also exports `ingest-chunks` (parallel ingest).
    chunks: Option<chunk_bindings::IngestChunksPluginPre<HostState>>,
    compiled: Compiled,
}

impl IngestPlugin {
    pub(super) fn new(
        sandbox: Sandbox,
        plugin: &str,
        component: Component,
        compiled: Compiled,
    ) -> Result<Self, SandboxError> {
        let instance_pre = call::instantiate_pre(&sandbox, plugin, &component)?;
        let chunks = chunk_bindings::IngestChunksPluginPre::new(instance_pre.clone()).ok();
        let pre = bindings::IngestPluginPre::new(instance_pre).map_err(|e| SandboxError::WrongWorld {
            plugin: plugin.to_owned(),
            world: "floe:plugin/ingest-plugin",
            message: call::error_text(&e),
        })?;
        Ok(Self { sandbox, name: plugin.to_owned(), pre, chunks, compiled })
    }

    /// Whether the component exports `ingest-chunks`, so that a source may be
    /// parsed by several instances at once (if its config declares a record
    /// syntax).
    pub fn splits_sources(&self) -> bool {
        self.chunks.is_some()
    }

    /// The plugin name errors and logs use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the component came from the compile cache, and how long
    /// making it ready took.
    pub fn compiled(&self) -> Compiled {
        self.compiled
    }

    /// Asks the plugin about itself, in a throwaway instance.
    pub fn info(&self) -> Result<PluginInfo, SandboxError> {
        let call = Call::new("plugin inspect", &self.name, &self.sandbox);
        let (mut store, instance) = self.instantiate(&call)?;
        call.arm(&mut store);
        let info = instance.floe_plugin_meta().call_info(&mut store).map_err(|e| call.died(&store, e))?;
        Ok(call::plugin_info(info))
    }

    /// Streams `input` into the plugin in chunks of `Limits::chunk_bytes` and
    /// calls `on_batch` for each decoded output batch, in order. Returns the
    /// output schema. The run has its own store; whatever happens, it is
    /// dropped at the end.
    pub fn ingest(
        &self,
        step: &str,
        config: &BTreeMap<String, String>,
        source_name: &str,
        input: &mut dyn Read,
        on_batch: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
    ) -> Result<SchemaRef, SandboxError> {
        self.ingest_with_stats(step, config, source_name, input, on_batch).map(|(schema, _)| schema)
    }

    /// `ingest`, also returning what the plugin's calls cost. A plugin that
    /// declares a record syntax for `config` is run on
    /// `Limits::ingest_parallelism` instances at once (`ingest_chunks.rs`);
    /// the output is the same.
    pub fn ingest_with_stats(
        &self,
        step: &str,
        config: &BTreeMap<String, String>,
        source_name: &str,
        input: &mut dyn Read,
        on_batch: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
    ) -> Result<(SchemaRef, PluginStats), SandboxError> {
        let limits = self.sandbox.limits();
        if let Some(pre) = self.chunks.as_ref().filter(|_| limits.ingest_parallelism > 1) {
            let pairs = call::config_pairs(config);
            if let Some(syntax) = ingest_chunks::syntax(&self.sandbox, pre, &self.name, step, &pairs)? {
                let started = Instant::now();
                let input_error =
                    |source| SandboxError::Input { step: step.to_owned(), plugin: self.name.clone(), source };
                let mut splitter = ingest_chunks::splitter(input, syntax, limits);
                let first = splitter.next_chunk().map_err(input_error)?.expect("the first chunk always comes");
                if splitter.done().map_err(input_error)? {
                    // One chunk: nothing to share out.
                    return self.ingest_serial(step, config, source_name, &mut &first.bytes[..], on_batch);
                }
                let run = ChunkedRun {
                    sandbox: &self.sandbox,
                    pre,
                    plugin: &self.name,
                    step,
                    config: &pairs,
                    source_name,
                    workers: limits.ingest_parallelism,
                };
                let (schema, stats, totals) = run.run(splitter, first, on_batch)?;
                self.report(step, source_name, &totals, started, Some(limits.ingest_parallelism));
                return Ok((schema, stats));
            }
        }
        self.ingest_serial(step, config, source_name, input, on_batch)
    }

    /// Streams the whole object through one instance's `open`/`push`/`finish`.
    fn ingest_serial(
        &self,
        step: &str,
        config: &BTreeMap<String, String>,
        source_name: &str,
        input: &mut dyn Read,
        on_batch: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
    ) -> Result<(SchemaRef, PluginStats), SandboxError> {
        let call = Call::new(step, &self.name, &self.sandbox);
        let limits = self.sandbox.limits();
        let started = Instant::now();
        let (mut store, instance) = self.instantiate(&call)?;
        let ingest = instance.floe_plugin_ingest();

        let config = call::config_pairs(config);
        call.arm(&mut store);
        let parser = ingest
            .call_open(&mut store, &config, source_name)
            .map_err(|e| call.died(&store, e))?
            .map_err(|e| call.plugin_error(e))?;

        let mut stream = IpcStream::new(limits.max_output_bytes);
        let mut chunk = vec![0u8; limits.chunk_bytes];
        let mut totals = Totals::default();
        let mut deliver = |stream: &mut IpcStream, fragment: Vec<u8>| -> Result<(), SandboxError> {
            call.check_output(fragment.len())?;
            totals.bytes_out += fragment.len() as u64;
            for batch in stream.push(fragment).map_err(|e| call.ipc_error(e))? {
                totals.rows += batch.num_rows() as u64;
                totals.batches += 1;
                on_batch(batch).map_err(|message| call.sink(message))?;
            }
            Ok(())
        };
        loop {
            let n = read_chunk(input, &mut chunk).map_err(|source| SandboxError::Input {
                step: step.to_owned(),
                plugin: self.name.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            totals.bytes_in += n as u64;
            call.arm(&mut store);
            let fragment = ingest
                .parser()
                .call_push(&mut store, parser, &chunk[..n])
                .map_err(|e| call.died(&store, e))?
                .map_err(|e| call.plugin_error(e))?;
            deliver(&mut stream, fragment)?;
        }
        call.arm(&mut store);
        let fragment = ingest
            .parser()
            .call_finish(&mut store, parser)
            .map_err(|e| call.died(&store, e))?
            .map_err(|e| call.plugin_error(e))?;
        deliver(&mut stream, fragment)?;
        let schema = stream.finish().map_err(|e| call.ipc_error(e))?;
        call.arm(&mut store);
        parser.resource_drop(&mut store).map_err(|e| call.died(&store, e))?;

        self.report(step, source_name, &totals, started, None);
        Ok((schema, store.data().stats()))
    }

    /// What one ingested source took: the counters of the caller's `plugin`
    /// span (observe/traces.rs), if any, and the log line. `instances` is set
    /// for a parallel run, which also logs its chunks.
    fn report(&self, step: &str, source_name: &str, totals: &Totals, started: Instant, instances: Option<usize>) {
        tracing::Span::current()
            .record("bytes_in", totals.bytes_in as i64)
            .record("bytes_out", totals.bytes_out as i64)
            .record("rows_out", totals.rows as i64)
            .record("batches_out", totals.batches as i64);
        let chunks = instances.map(|_| totals.chunks);
        tracing::info!(step, plugin = %self.name, source = source_name, bytes_in = totals.bytes_in,
            bytes_out = totals.bytes_out, rows = totals.rows, batches = totals.batches, chunks, instances,
            elapsed_ms = started.elapsed().as_millis() as u64, "The plugin ingested a source object.");
    }

    fn instantiate(&self, call: &Call<'_>) -> Result<(Store<HostState>, bindings::IngestPlugin), SandboxError> {
        let mut store = call.store(self.pre.engine());
        let instance = self.pre.instantiate(&mut store).map_err(|e| call.died(&store, e))?;
        Ok((store, instance))
    }
}

/// Fills `buf` from `input` unless the input ends first; returns the length.
fn read_chunk(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
