//! The plugin sandbox: compiles WebAssembly components (with an on-disk cache),
//! links them against a deny-all WASI and the `floe:plugin` host imports, runs
//! them under per-call deadlines and per-store memory caps, and decodes what
//! they return as one Arrow IPC stream.
//!
//! The deadline covers blocking WASI calls too (`wasi:io/poll`, e.g. a plugin
//! calling `std::thread::sleep`), which epoch interruption alone cannot stop;
//! see `wasi.rs`. `plugins/evil` holds one hostile plugin per rule, exercised
//! by tests/integration/adversarial.rs.
//!
//! Calls block the current thread. Do not call them from inside an async
//! runtime's worker thread (use `tokio::task::spawn_blocking` or a plain
//! thread): WASI's synchronous bindings drive their own runtime.

mod cache;
mod call;
mod compile;
mod engine;
mod error;
mod guard;
mod ingest;
mod ingest_chunks;
mod inspect;
mod ipc;
mod limits;
mod log;
mod split;
mod stats;
pub mod text;
mod transform;
mod values;
mod wasi;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use compile::{CHILD_ARG as COMPILE_CHILD_ARG, Compiled, Compiler, child_main as compile_child_main};
pub use error::{PluginReport, SandboxError};
pub use guard::check_names;
pub use ingest::IngestPlugin;
pub use inspect::{Inspection, LoadedPlugin};
pub(crate) use ipc::IpcStream as OutputStream;
pub use stats::PluginStats;
pub use transform::TransformPlugin;

/// Resource limits applied to every plugin store and call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes that all linear memories and tables of one plugin instance
    /// may hold together (a component can carry many of each).
    pub memory_bytes: u64,
    /// Wall-clock deadline for each call into the plugin (instantiation, `open`,
    /// every `push` and `finish`), enforced with epoch interruption at a 10 ms
    /// granularity.
    pub call_timeout: Duration,
    /// Wall-clock budget of all the calls of one plugin run (an ingest of a
    /// source, a streaming transform, a SQL-mode query): a plugin that uses
    /// most of `call_timeout` on every call cannot stretch a step to hours.
    pub step_timeout: Duration,
    /// Wall-clock budget of every plugin call of a run, counted from the
    /// start of the run (the sandbox's creation).
    pub run_timeout: Duration,
    /// Largest component file accepted for compilation, in bytes.
    pub max_component_bytes: u64,
    /// Memory the compiler may use for one component (compiled in a child
    /// process where the host can, see `compile.rs`).
    pub compile_memory_bytes: u64,
    /// Wall-clock limit for compiling one component.
    pub compile_timeout: Duration,
    /// Largest IPC fragment, in bytes, that one call may return.
    pub max_output_bytes: u64,
    /// Disk that a plugin's SQL may spill to (DuckDB's
    /// `max_temp_directory_size` in its worker).
    pub spill_bytes: u64,
    /// Size of the input chunks handed to an ingest plugin's `push`: every chunk
    /// has exactly this size except the last.
    pub chunk_bytes: usize,
    /// Plugin instances that parse one source at once, for plugins that
    /// declare a record syntax (`ingest-chunks`); 1 parses every source in one
    /// piece. They share `memory_bytes` and `max_output_bytes`.
    pub ingest_parallelism: usize,
    /// Size parallel ingest cuts a source into: a chunk ends at the first
    /// record end after this many bytes.
    pub ingest_chunk_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 1 << 30,
            call_timeout: Duration::from_secs(60),
            step_timeout: Duration::from_secs(3600),
            run_timeout: Duration::from_secs(6 * 3600),
            max_component_bytes: 128 << 20,
            compile_memory_bytes: 2 << 30,
            compile_timeout: Duration::from_secs(120),
            max_output_bytes: 256 << 20,
            spill_bytes: 4 << 30,
            chunk_bytes: 1 << 20,
            ingest_parallelism: default_ingest_parallelism(),
            ingest_chunk_bytes: 8 << 20,
        }
    }
}

/// One instance per core the process may use (cgroup CPU quotas count) but
/// one, at most 8. The spared core is the table writer's: it encodes and
/// compresses Parquet as fast as one instance parses, so on 2 cores a second
/// instance only competes with it (BENCHMARKS.md, "Parallel ingest"); and
/// beyond 8, one reader and one writer are the limit.
pub fn default_ingest_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).clamp(1, 8)
}

/// A wall-clock budget larger than one call (`Limits::step_timeout`,
/// `Limits::run_timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    Step,
    Run,
}

impl Budget {
    /// Its key under `plugins:` in platform.yaml.
    pub fn key(self) -> &'static str {
        match self {
            Budget::Step => "step_timeout",
            Budget::Run => "run_timeout",
        }
    }

    /// Its length under `limits`.
    pub fn limit(self, limits: &Limits) -> Duration {
        match self {
            Budget::Step => limits.step_timeout,
            Budget::Run => limits.run_timeout,
        }
    }
}

/// What a plugin says about itself (`meta.info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    /// JSON Schema of the accepted `config` map, as a JSON document.
    pub config_schema: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    Ingest,
    Transform,
}

/// One wasmtime engine (with its epoch ticker), the host linker and the limits.
/// Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    engine: engine::SandboxEngine,
    /// When the run began: the start of `Limits::run_timeout`.
    started: Instant,
    /// One linker for both worlds: they import the same interfaces.
    linker: wasmtime::component::Linker<call::HostState>,
    limits: Limits,
    cache: Option<cache::CompileCache>,
    compiler: Compiler,
}

impl Sandbox {
    /// Builds the engine and linker. With `cache_dir`, compiled components are
    /// kept there (created if missing) and reused across runs. Components are
    /// compiled in process; see [`Sandbox::with_compiler`].
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Self, SandboxError> {
        Self::with_compiler(limits, cache_dir, Compiler::InProcess)
    }

    /// [`Sandbox::new`], compiling components where `compiler` says: the
    /// `floe-host` binary compiles in a bounded child of itself.
    pub fn with_compiler(limits: Limits, cache_dir: Option<PathBuf>, compiler: Compiler) -> Result<Self, SandboxError> {
        if limits.chunk_bytes == 0 {
            return Err(SandboxError::Engine { message: "`chunk_bytes` must be at least 1".to_owned() });
        }
        let engine = engine::SandboxEngine::new()?;
        let linker = call::linker(engine.engine())?;
        let cache = cache_dir.map(cache::CompileCache::new);
        let started = Instant::now();
        Ok(Self { inner: Arc::new(Inner { engine, started, linker, limits, cache, compiler }) })
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The executable that runs a plugin's work in bounded child processes
    /// (its compiles, and its SQL: `compute::Worker`), if there is one.
    pub fn child_executable(&self) -> Option<&std::path::Path> {
        match &self.inner.compiler {
            Compiler::Child(exe) => Some(exe),
            Compiler::InProcess => None,
        }
    }

    /// How far a worker running this sandbox's plugin SQL may go.
    pub fn worker_limits(&self) -> crate::compute::WorkerLimits {
        let limits = &self.inner.limits;
        crate::compute::WorkerLimits {
            extra_memory: limits.memory_bytes,
            max_message: limits.max_output_bytes,
            spill_bytes: limits.spill_bytes,
        }
    }

    /// When the budgets of a plugin run that starts at `started` run out:
    /// the earlier of its step's (`step_timeout`) and the run's
    /// (`run_timeout`), and which one that is.
    pub fn budget_ends(&self, started: Instant) -> (Instant, Budget) {
        let later = |start: Instant, budget: Duration| {
            start.checked_add(budget).unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 24 * 3600))
        };
        let step = later(started, self.inner.limits.step_timeout);
        let run = later(self.inner.started, self.inner.limits.run_timeout);
        if step <= run { (step, Budget::Step) } else { (run, Budget::Run) }
    }

    /// The error for a plugin run of `step` that used up `budget`.
    pub fn out_of_budget(&self, step: &str, plugin: &str, budget: Budget) -> SandboxError {
        let limit = budget.limit(&self.inner.limits);
        SandboxError::Budget { step: step.to_owned(), plugin: plugin.to_owned(), budget: budget.key(), limit }
    }

    /// Compiles (or loads from cache) and links an ingest component.
    pub fn load_ingest(&self, plugin: &str, wasm: &[u8]) -> Result<IngestPlugin, SandboxError> {
        let (component, compiled) = self.component(plugin, wasm)?;
        IngestPlugin::new(self.clone(), plugin, component, compiled)
    }

    /// Compiles (or loads from cache) and links a transform component.
    pub fn load_transform(&self, plugin: &str, wasm: &[u8]) -> Result<TransformPlugin, SandboxError> {
        let (component, compiled) = self.component(plugin, wasm)?;
        TransformPlugin::new(self.clone(), plugin, component, compiled)
    }

    fn component(&self, plugin: &str, wasm: &[u8]) -> Result<(wasmtime::component::Component, Compiled), SandboxError> {
        let inner = &self.inner;
        compile::load_component(
            inner.engine.engine(),
            &inner.compiler,
            inner.cache.as_ref(),
            &inner.limits,
            plugin,
            wasm,
        )
    }
}

/// Hex SHA-256 of a plugin's bytes: the cache key, and what floe.yaml pins.
pub fn sha256_hex(wasm: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(wasm).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        assert_send_sync::<Sandbox>();
        assert_send_sync::<IngestPlugin>();
        assert_send_sync::<TransformPlugin>();
        assert_send_sync::<SandboxError>();
    }

    #[test]
    fn errors_stay_small() {
        // Callers wrap SandboxError in their own error enums.
        assert!(std::mem::size_of::<SandboxError>() <= 96, "{}", std::mem::size_of::<SandboxError>());
    }

    #[test]
    fn sha256_is_lower_hex() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
