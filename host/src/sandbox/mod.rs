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
mod engine;
mod error;
mod ingest;
mod inspect;
mod ipc;
mod limits;
mod log;
mod stats;
mod transform;
mod wasi;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::{PluginReport, SandboxError};
pub use ingest::IngestPlugin;
pub use inspect::Inspection;
pub use stats::PluginStats;
pub use transform::TransformPlugin;

/// Resource limits applied to every plugin store and call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest size, in bytes, of any one linear memory of a plugin instance.
    pub memory_bytes: u64,
    /// Wall-clock deadline for each call into the plugin (instantiation, `open`,
    /// every `push` and `finish`), enforced with epoch interruption at a 10 ms
    /// granularity.
    pub call_timeout: Duration,
    /// Largest IPC fragment, in bytes, that one call may return.
    pub max_output_bytes: u64,
    /// Size of the input chunks handed to an ingest plugin's `push`: every chunk
    /// has exactly this size except the last.
    pub chunk_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 1 << 30,
            call_timeout: Duration::from_secs(60),
            max_output_bytes: 256 << 20,
            chunk_bytes: 1 << 20,
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
    /// One linker for both worlds: they import the same interfaces.
    linker: wasmtime::component::Linker<call::HostState>,
    limits: Limits,
    cache: Option<cache::CompileCache>,
}

impl Sandbox {
    /// Builds the engine and linker. With `cache_dir`, compiled components are
    /// kept there (created if missing) and reused across runs.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Self, SandboxError> {
        if limits.chunk_bytes == 0 {
            return Err(SandboxError::Engine { message: "`chunk_bytes` must be at least 1".to_owned() });
        }
        let engine = engine::SandboxEngine::new()?;
        let linker = call::linker(engine.engine())?;
        let cache = cache_dir.map(cache::CompileCache::new);
        Ok(Self { inner: Arc::new(Inner { engine, linker, limits, cache }) })
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Compiles (or loads from cache) and links an ingest component.
    pub fn load_ingest(&self, plugin: &str, wasm: &[u8]) -> Result<IngestPlugin, SandboxError> {
        let component = cache::load_component(self.inner.engine.engine(), self.inner.cache.as_ref(), plugin, wasm)?;
        IngestPlugin::new(self.clone(), plugin, component)
    }

    /// Compiles (or loads from cache) and links a transform component.
    pub fn load_transform(&self, plugin: &str, wasm: &[u8]) -> Result<TransformPlugin, SandboxError> {
        let component = cache::load_component(self.inner.engine.engine(), self.inner.cache.as_ref(), plugin, wasm)?;
        TransformPlugin::new(self.clone(), plugin, component)
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
