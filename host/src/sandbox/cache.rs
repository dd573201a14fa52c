//! The on-disk cache of compiled components: `<dir>/<sha256 of the wasm>-<wasmtime
//! version>.cwasm`, written atomically. Any cache failure falls back to
//! compiling, with a warning; the cache never makes a load fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::SandboxError;

/// The wasmtime version compiled artifacts are tied to (the cache key's suffix).
const WASMTIME_VERSION: &str = "48.0.8";

pub(super) struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{WASMTIME_VERSION}.cwasm"))
    }

    fn load(&self, engine: &Engine, path: &Path) -> Option<Component> {
        if !path.is_file() {
            return None;
        }
        // SAFETY: `deserialize_file` trusts the file to be a wasmtime artifact.
        // Files in this directory are written only by `store` below: serialized
        // by this wasmtime version, written to a temporary name and renamed
        // into place, so a reader never sees a partial file. The directory is
        // created private to the host user (0700) and its path comes from the
        // platform operator, not from a pipeline or a plugin. wasmtime itself
        // still checks the header (version, engine settings) and rejects
        // artifacts made for another configuration; those fall back to a compile.
        // The file is memory-mapped for as long as the component lives, so it
        // must never be modified in place (that is SIGBUS territory): entries are
        // only ever replaced by rename, and deleting one is safe.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %format!("{err:#}"),
                    "Ignoring an unusable compiled plugin in the cache; recompiling.");
                None
            }
        }
    }

    fn store(&self, component: &Component, path: &Path) -> std::io::Result<()> {
        let bytes = component.serialize().map_err(std::io::Error::other)?;
        create_private_dir(&self.dir)?;
        let tmp = self.dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("component"),
            std::process::id()
        ));
        let result = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Compiles `wasm`, or loads its compiled form from `cache`.
pub(super) fn load_component(
    engine: &Engine,
    cache: Option<&CompileCache>,
    plugin: &str,
    wasm: &[u8],
) -> Result<Component, SandboxError> {
    let sha256 = super::sha256_hex(wasm);
    let path = cache.map(|c| c.path_for(&sha256));
    if let (Some(cache), Some(path)) = (cache, &path)
        && let Some(component) = cache.load(engine, path)
    {
        tracing::debug!(plugin, sha256, "Loaded the compiled plugin from the cache.");
        return Ok(component);
    }

    let started = Instant::now();
    let component = Component::new(engine, wasm)
        .map_err(|e| SandboxError::Compile { plugin: plugin.to_owned(), message: format!("{e:#}") })?;
    tracing::info!(
        plugin,
        sha256,
        bytes = wasm.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Compiled the plugin."
    );

    if let (Some(cache), Some(path)) = (cache, &path)
        && let Err(err) = cache.store(&component, path)
    {
        tracing::warn!(plugin, path = %path.display(), error = %err,
            "Cannot write the compiled plugin to the cache; it will be compiled again next time.");
    }
    Ok(component)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constant_matches_the_linked_wasmtime() {
        // Keeps the cache key honest when wasmtime is upgraded.
        let lock = include_str!("../../../Cargo.lock");
        let needle = format!("name = \"wasmtime\"\nversion = \"{WASMTIME_VERSION}\"");
        assert!(lock.contains(&needle), "update WASMTIME_VERSION to the wasmtime in Cargo.lock");
    }
}
