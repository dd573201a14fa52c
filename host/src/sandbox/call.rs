//! What every plugin kind shares: the bindings of both worlds, the per-run
//! store data (`HostState`), the linker, and `Call`, which arms deadlines and
//! turns whatever ends a call into a `SandboxError` naming the step and the
//! plugin.

use std::cell::Cell;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::error::missing_import_name;
use super::ipc::IpcError;
use super::limits::Limiter;
use super::log::{Level, PluginLog};
use super::stats::{Meter, PluginStats};
use super::text::{escape, quote, truncate};
use super::wasi::{CallDeadline, HasCallDeadline};
use super::{Budget, Sandbox, SandboxError, engine, wasi};

/// Host bindings of the two worlds. Both import the same interfaces (`log`,
/// `types` and WASI), so one linker serves both, and the transform bindings
/// reuse the ingest bindings' `types` and `log`.
pub(super) mod bindings {
    pub(in crate::sandbox) mod ingest {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "ingest-plugin",
        });
    }

    /// `ingest-plugin` plus the optional `ingest-chunks` export.
    pub(in crate::sandbox) mod chunks {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "ingest-chunks-plugin",
            with: {
                "floe:plugin/types": super::ingest::floe::plugin::types,
                "floe:plugin/log": super::ingest::floe::plugin::log,
            },
        });
    }

    pub(in crate::sandbox) mod transform {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "transform-plugin",
            with: {
                "floe:plugin/types": super::ingest::floe::plugin::types,
                "floe:plugin/log": super::ingest::floe::plugin::log,
            },
        });
    }

    pub(in crate::sandbox) use ingest::floe::plugin::types::{PluginError, PluginInfo, PluginKind};
}

use bindings::PluginError;

/// What one call may pass to the host beyond its output limit: its error
/// text or a log line (cut to `MAX_ERROR_BYTES` or 2 KiB once copied, but
/// copied whole first). See `Call::store`.
const COPY_MARGIN: u64 = 1 << 20;

/// Longest plugin error message kept, in bytes; longer ones are cut, so that a
/// plugin cannot flood the host's stderr through its errors.
const MAX_ERROR_BYTES: usize = 4096;

/// The data of one plugin store: the WASI context, the resource table, the
/// limiter, the deadline of the call in progress, the plugin's log and what
/// its calls cost.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
    deadline: CallDeadline,
    log: PluginLog,
    meter: Meter,
}

impl HostState {
    /// What the store's calls have cost so far.
    pub(super) fn stats(&self) -> PluginStats {
        PluginStats {
            cpu_time: self.meter.cpu_time(),
            peak_memory_bytes: self.limiter.peak_memory(),
            calls: self.meter.calls(),
        }
    }
}

impl HasCallDeadline for HostState {
    fn call_deadline(&mut self) -> &mut CallDeadline {
        &mut self.deadline
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl bindings::ingest::floe::plugin::log::Host for HostState {
    fn log(&mut self, level: bindings::ingest::floe::plugin::log::Level, message: String) {
        use bindings::ingest::floe::plugin::log::Level as L;
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

impl bindings::ingest::floe::plugin::types::Host for HostState {}

/// The linker for every plugin: deny-all WASI (its blocking polls bounded by
/// the call deadline, see `wasi`) plus `floe:plugin/log`.
pub(super) fn linker(engine: &Engine) -> Result<Linker<HostState>, SandboxError> {
    let mut linker = Linker::new(engine);
    let link_err = |e: wasmtime::Error| SandboxError::Engine { message: format!("{e:#}") };
    wasi::add_to_linker(&mut linker).map_err(link_err)?;
    bindings::ingest::IngestPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(link_err)?;
    Ok(linker)
}

/// The text of an error wasmtime raised over a plugin's component or call,
/// cut and escaped: it may quote names the plugin chose (imports, exports,
/// its own functions).
pub(super) fn error_text(err: &wasmtime::Error) -> String {
    quote(&format!("{err:#}"), MAX_ERROR_BYTES)
}

/// Links `component` against the sandbox's linker; a missing import is named.
pub(super) fn instantiate_pre(
    sandbox: &Sandbox,
    plugin: &str,
    component: &Component,
) -> Result<InstancePre<HostState>, SandboxError> {
    sandbox.inner.linker.instantiate_pre(component).map_err(|e| {
        let message = error_text(&e);
        match missing_import_name(&e.to_string()) {
            Some(import) => SandboxError::MissingImport { plugin: plugin.to_owned(), import: quote(&import, 200) },
            None => SandboxError::Link { plugin: plugin.to_owned(), message },
        }
    })
}

/// What `meta.info` returned, as the host keeps it: every string cut and
/// escaped, the config schema on one line.
pub(super) fn plugin_info(info: bindings::PluginInfo) -> super::PluginInfo {
    let clean = |text: &str| quote(text, MAX_ERROR_BYTES);
    // Bounded (a larger schema is not used to check configs anyway) and one
    // printable line: the line breaks between JSON tokens become spaces.
    let schema = truncate(&info.config_schema, crate::plan::config_schema::MAX_SCHEMA_BYTES + 1)
        .replace(['\n', '\r', '\t'], " ");
    super::PluginInfo {
        name: clean(&info.name),
        version: clean(&info.version),
        kind: match info.kind {
            PluginKind::Ingest => super::PluginKind::Ingest,
            PluginKind::Transform => super::PluginKind::Transform,
        },
        config_schema: escape(&schema).into_owned(),
    }
}

use bindings::PluginKind;

/// Who is calling: the names errors carry, and the budgets of one plugin
/// run (every call of an ingest, a transform or a `sql` call).
pub(super) struct Call<'a> {
    pub(super) step: &'a str,
    pub(super) plugin: &'a str,
    pub(super) sandbox: &'a Sandbox,
    /// When the earlier of the step's and the run's budgets runs out.
    budget_ends: (Instant, Budget),
    /// Which budget bounds the call in progress, when one bounds it more
    /// tightly than `call_timeout`: a deadline hit is then reported as that
    /// budget running out.
    bound_by: Cell<Option<Budget>>,
    /// The memory cap of this run's store and the output cap of one call:
    /// the sandbox's limits, or a share of them (parallel ingest), and how
    /// many ways each was split.
    memory_bytes: u64,
    max_output_bytes: u64,
    shared_by: (u64, u64),
}

impl<'a> Call<'a> {
    pub(super) fn new(step: &'a str, plugin: &'a str, sandbox: &'a Sandbox) -> Self {
        let budget_ends = sandbox.budget_ends(Instant::now());
        let limits = sandbox.limits();
        Call {
            step,
            plugin,
            sandbox,
            budget_ends,
            bound_by: Cell::new(None),
            memory_bytes: limits.memory_bytes,
            max_output_bytes: limits.max_output_bytes,
            shared_by: (1, 1),
        }
    }

    /// This call's store gets the memory limit split `memory_ways` ways, and
    /// one call may return the output limit split `output_ways` ways: one
    /// instance's share when several run at once.
    pub(super) fn with_shares(mut self, memory_ways: u64, output_ways: u64) -> Self {
        let (memory_ways, output_ways) = (memory_ways.max(1), output_ways.max(1));
        self.memory_bytes /= memory_ways;
        self.max_output_bytes /= output_ways;
        self.shared_by = (memory_ways, output_ways);
        self
    }

    /// The output cap of one call (see `with_shares`).
    pub(super) fn max_output_bytes(&self) -> u64 {
        self.max_output_bytes
    }

    /// How long the next call may run, and which budget bounds it if not
    /// `call_timeout`.
    fn next_timeout(&self) -> (Duration, Option<Budget>) {
        let call_timeout = self.sandbox.limits().call_timeout;
        let (ends, budget) = self.budget_ends;
        let left = ends.saturating_duration_since(Instant::now());
        if left < call_timeout { (left, Some(budget)) } else { (call_timeout, None) }
    }

    /// A fresh store for one run, under the sandbox's limits.
    pub(super) fn store(&self, engine: &Engine) -> Store<HostState> {
        let log = PluginLog::new(self.step, self.plugin);
        let state = HostState {
            wasi: wasi::deny_all(log.output()),
            table: ResourceTable::new(),
            limiter: Limiter::new(self.memory_bytes),
            deadline: CallDeadline::default(),
            log,
            meter: Meter::default(),
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        store.call_hook(|mut cx, kind| {
            cx.data_mut().meter.hook(kind);
            Ok(())
        });
        // wasmtime caps what one call may copy out of the guest into host
        // memory ("hostcall fuel", 128 MiB by default): a call's results, and
        // the arguments of every import the guest calls (a log line, a WASI
        // write). Without a cap of ours, one `log` of a string that fills
        // the plugin's memory makes the host hold a second copy of it. The
        // cap is this call's output limit plus `COPY_MARGIN` (an error
        // message or a log line beside the largest allowed fragment): an
        // oversized fragment under it still gets `OutputTooLarge` with its
        // size, anything larger traps before the host copies it (`died`).
        let fuel = self.max_output_bytes.saturating_add(COPY_MARGIN);
        store.set_hostcall_fuel(usize::try_from(fuel).unwrap_or(usize::MAX));
        self.arm(&mut store);
        store
    }

    /// Gives the next call into the plugin its deadline: in wasm code (epoch)
    /// and in blocking WASI calls (`CallDeadline`).
    pub(super) fn arm(&self, store: &mut Store<HostState>) {
        let (timeout, bound_by) = self.next_timeout();
        self.bound_by.set(bound_by);
        store.data_mut().meter.count_call();
        store.data_mut().deadline.arm(timeout);
        store.set_epoch_deadline(engine::deadline_ticks(timeout));
    }

    /// Classifies an error that ended a call (the store is unusable after it).
    pub(super) fn died(&self, store: &Store<HostState>, err: wasmtime::Error) -> SandboxError {
        let (step, plugin) = (self.step.to_owned(), self.plugin.to_owned());
        let report = Box::new(store.data().log.report());
        let limits = self.sandbox.limits();
        if store.data().limiter.memory_exceeded() {
            return SandboxError::Memory {
                step,
                plugin,
                limit: self.memory_bytes,
                shared_by: self.shared_by.0,
                report,
            };
        }
        if store.data().deadline.hit_in_host() || err.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return match self.bound_by.get() {
                None => SandboxError::Deadline { step, plugin, limit: limits.call_timeout, report },
                Some(budget) => self.sandbox.out_of_budget(self.step, self.plugin, budget),
            };
        }
        // wasmtime's error type for this is private: its text is the signal.
        if format!("{err:#}").contains("fuel allocated for hostcalls has been exhausted") {
            let limit = self.max_output_bytes.saturating_add(COPY_MARGIN);
            let message = format!(
                "it passed more than {limit} bytes to the host in one call (a log line, an error or an output \
                 fragment); one call may pass `plugins.max_output_bytes`{} plus {} bytes",
                if self.shared_by.1 > 1 { format!(" / {}", self.shared_by.1) } else { String::new() },
                COPY_MARGIN
            );
            tracing::warn!(step = self.step, plugin = self.plugin, error = %message, "The plugin trapped.");
            return SandboxError::Trap { step, plugin, message, report };
        }
        let message = match err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => format!("the plugin called exit({})", exit.0),
            None => match err.downcast_ref::<Trap>() {
                Some(trap) => trap.to_string(),
                None => error_text(&err),
            },
        };
        tracing::warn!(step = self.step, plugin = self.plugin, error = %message, "The plugin trapped.");
        SandboxError::Trap { step, plugin, message, report }
    }

    pub(super) fn plugin_error(&self, err: PluginError) -> SandboxError {
        let (step, plugin) = (self.step.to_owned(), self.plugin.to_owned());
        // Cut (bounded work), then escape: the message becomes one printable line.
        let cut = |m: String| quote(&m, MAX_ERROR_BYTES);
        let err = match err {
            PluginError::InvalidConfig(m) => PluginError::InvalidConfig(cut(m)),
            PluginError::InvalidInput(m) => PluginError::InvalidInput(cut(m)),
            PluginError::Internal(m) => PluginError::Internal(cut(m)),
        };
        match err {
            PluginError::InvalidConfig(message) => SandboxError::InvalidConfig { step, plugin, message },
            PluginError::InvalidInput(message) => SandboxError::InvalidInput { step, plugin, message },
            PluginError::Internal(message) => SandboxError::PluginInternal { step, plugin, message },
        }
    }

    pub(super) fn check_output(&self, len: usize) -> Result<(), SandboxError> {
        let limit = self.max_output_bytes;
        if len as u64 > limit {
            return Err(SandboxError::OutputTooLarge {
                step: self.step.to_owned(),
                plugin: self.plugin.to_owned(),
                size: len as u64,
                limit,
                shared_by: self.shared_by.1,
            });
        }
        Ok(())
    }

    pub(super) fn ipc_error(&self, err: IpcError) -> SandboxError {
        let (step, plugin) = (self.step.to_owned(), self.plugin.to_owned());
        match err {
            IpcError::Malformed(message) | IpcError::TooLarge(message) => {
                SandboxError::MalformedOutput { step, plugin, message }
            }
            IpcError::SchemaChanged(message) => SandboxError::SchemaChanged { step, plugin, message },
            IpcError::Refused(message) => SandboxError::OutputRefused { step, plugin, message },
        }
    }

    pub(super) fn sink(&self, message: String) -> SandboxError {
        SandboxError::Sink { step: self.step.to_owned(), plugin: self.plugin.to_owned(), message }
    }
}

/// The config map as the WIT `config` type.
pub(super) fn config_pairs(config: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    config.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
