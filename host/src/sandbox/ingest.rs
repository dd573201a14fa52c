//! Ingest plugins: the `ingest-plugin` world's bindings, the per-run store, and
//! the call loop that streams a source object through `open`/`push`/`finish`
//! and decodes what comes back.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::error::missing_import_name;
use super::ipc::{IpcError, IpcStream};
use super::limits::Limiter;
use super::log::{Level, PluginLog};
use super::{PluginInfo, PluginKind, Sandbox, SandboxError, engine, wasi};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "ingest-plugin",
    });
}

use bindings::floe::plugin::types::{PluginError, PluginKind as WitKind};

/// The data of one plugin store: the WASI context, the resource table, the
/// limiter and the plugin's log.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    log: PluginLog,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::floe::plugin::log::Host for HostState {
    fn log(&mut self, level: bindings::floe::plugin::log::Level, message: String) {
        use bindings::floe::plugin::log::Level as L;
        let level = match level {
            L::Trace => Level::Trace,
            L::Debug => Level::Debug,
            L::Info => Level::Info,
            L::Warn => Level::Warn,
            L::Error => Level::Error,
        };
        self.log.log(level, &message);
    }
}

impl bindings::floe::plugin::types::Host for HostState {}

/// The linker for ingest plugins: deny-all WASI plus `floe:plugin/log`.
pub(super) fn linker(engine: &Engine) -> Result<Linker<HostState>, SandboxError> {
    let mut linker = Linker::new(engine);
    let link_err = |e: wasmtime::Error| SandboxError::Engine {
        message: format!("{e:#}"),
    };
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(link_err)?;
    bindings::IngestPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(link_err)?;
    Ok(linker)
}

/// A compiled and linked ingest component. Every run gets a fresh store and
/// instance, so a trap never leaks into the next run. Cheap to clone.
#[derive(Clone)]
pub struct IngestPlugin {
    sandbox: Sandbox,
    name: String,
    pre: bindings::IngestPluginPre<HostState>,
}

/// Who is calling: the names errors carry.
struct Call<'a> {
    step: &'a str,
    plugin: &'a str,
    sandbox: &'a Sandbox,
}

impl IngestPlugin {
    pub(super) fn new(
        sandbox: Sandbox,
        plugin: &str,
        component: Component,
    ) -> Result<Self, SandboxError> {
        let instance_pre = sandbox
            .inner
            .ingest_linker
            .instantiate_pre(&component)
            .map_err(|e| {
                let message = format!("{e:#}");
                match missing_import_name(&e.to_string()) {
                    Some(import) => SandboxError::MissingImport {
                        plugin: plugin.to_owned(),
                        import,
                    },
                    None => SandboxError::Link {
                        plugin: plugin.to_owned(),
                        message,
                    },
                }
            })?;
        let pre =
            bindings::IngestPluginPre::new(instance_pre).map_err(|e| SandboxError::WrongWorld {
                plugin: plugin.to_owned(),
                world: "floe:plugin/ingest-plugin",
                message: format!("{e:#}"),
            })?;
        Ok(Self {
            sandbox,
            name: plugin.to_owned(),
            pre,
        })
    }

    /// The plugin name errors and logs use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Asks the plugin about itself, in a throwaway instance.
    pub fn info(&self) -> Result<PluginInfo, SandboxError> {
        let call = Call {
            step: "plugin inspect",
            plugin: &self.name,
            sandbox: &self.sandbox,
        };
        let (mut store, instance) = self.instantiate(&call)?;
        call.arm(&mut store);
        let info = instance
            .floe_plugin_meta()
            .call_info(&mut store)
            .map_err(|e| call.died(&store, e))?;
        Ok(PluginInfo {
            name: info.name,
            version: info.version,
            kind: match info.kind {
                WitKind::Ingest => PluginKind::Ingest,
                WitKind::Transform => PluginKind::Transform,
            },
            config_schema: info.config_schema,
        })
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
        let call = Call {
            step,
            plugin: &self.name,
            sandbox: &self.sandbox,
        };
        let limits = self.sandbox.limits();
        let started = Instant::now();
        let (mut store, instance) = self.instantiate(&call)?;
        let ingest = instance.floe_plugin_ingest();

        let config: Vec<(String, String)> =
            config.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        call.arm(&mut store);
        let parser = ingest
            .call_open(&mut store, &config, source_name)
            .map_err(|e| call.died(&store, e))?
            .map_err(|e| call.plugin_error(e))?;

        let mut stream = IpcStream::new(limits.max_output_bytes);
        let mut chunk = vec![0u8; limits.chunk_bytes];
        let (mut bytes_in, mut bytes_out, mut rows, mut batches) = (0u64, 0u64, 0u64, 0u64);
        let mut deliver = |stream: &mut IpcStream, fragment: Vec<u8>| -> Result<(), SandboxError> {
            call.check_output(fragment.len())?;
            bytes_out += fragment.len() as u64;
            for batch in stream.push(fragment).map_err(|e| call.ipc_error(e))? {
                rows += batch.num_rows() as u64;
                batches += 1;
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
            bytes_in += n as u64;
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
        parser
            .resource_drop(&mut store)
            .map_err(|e| call.died(&store, e))?;

        tracing::info!(step, plugin = %self.name, source = source_name, bytes_in, bytes_out, rows, batches,
            elapsed_ms = started.elapsed().as_millis() as u64, "The plugin ingested a source object.");
        Ok(schema)
    }

    fn instantiate(
        &self,
        call: &Call<'_>,
    ) -> Result<(Store<HostState>, bindings::IngestPlugin), SandboxError> {
        let limits = self.sandbox.limits();
        let log = PluginLog::new(call.step, call.plugin);
        let state = HostState {
            wasi: wasi::deny_all(log.output()),
            table: ResourceTable::new(),
            limiter: Limiter::new(limits.memory_bytes),
            log,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        call.arm(&mut store);
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| call.died(&store, e))?;
        Ok((store, instance))
    }
}

impl Call<'_> {
    /// Gives the next call into the plugin its deadline.
    fn arm(&self, store: &mut Store<HostState>) {
        store.set_epoch_deadline(engine::deadline_ticks(self.sandbox.limits().call_timeout));
    }

    /// Classifies an error that ended a call (the store is unusable after it).
    fn died(&self, store: &Store<HostState>, err: wasmtime::Error) -> SandboxError {
        let (step, plugin) = (self.step.to_owned(), self.plugin.to_owned());
        let report = Box::new(store.data().log.report());
        let limits = self.sandbox.limits();
        if store.data().limiter.memory_exceeded() {
            return SandboxError::Memory {
                step,
                plugin,
                limit: limits.memory_bytes,
                report,
            };
        }
        if err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return SandboxError::Deadline {
                step,
                plugin,
                limit: limits.call_timeout,
                report,
            };
        }
        let message = match err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => format!("the plugin called exit({})", exit.0),
            None => match err.downcast_ref::<Trap>() {
                Some(trap) => trap.to_string(),
                None => format!("{err:#}"),
            },
        };
        tracing::warn!(step = self.step, plugin = self.plugin, error = %message, "The plugin trapped.");
        SandboxError::Trap {
            step,
            plugin,
            message,
            report,
        }
    }

    fn plugin_error(&self, err: PluginError) -> SandboxError {
        let (step, plugin) = (self.step.to_owned(), self.plugin.to_owned());
        match err {
            PluginError::InvalidConfig(message) => SandboxError::InvalidConfig {
                step,
                plugin,
                message,
            },
            PluginError::InvalidInput(message) => SandboxError::InvalidInput {
                step,
                plugin,
                message,
            },
            PluginError::Internal(message) => SandboxError::PluginInternal {
                step,
                plugin,
                message,
            },
        }
    }

    fn check_output(&self, len: usize) -> Result<(), SandboxError> {
        let limit = self.sandbox.limits().max_output_bytes;
        if len as u64 > limit {
            return Err(SandboxError::OutputTooLarge {
                step: self.step.to_owned(),
                plugin: self.plugin.to_owned(),
                size: len as u64,
                limit,
            });
        }
        Ok(())
    }

    fn ipc_error(&self, err: IpcError) -> SandboxError {
        let (step, plugin) = (self.step.to_owned(), self.plugin.to_owned());
        match err {
            IpcError::Malformed(message) => SandboxError::MalformedOutput {
                step,
                plugin,
                message,
            },
            IpcError::SchemaChanged(message) => SandboxError::SchemaChanged {
                step,
                plugin,
                message,
            },
        }
    }

    fn sink(&self, message: String) -> SandboxError {
        SandboxError::Sink {
            step: self.step.to_owned(),
            plugin: self.plugin.to_owned(),
            message,
        }
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
