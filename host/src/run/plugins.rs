//! Loading plugins for a run: each component is read, checked against the
//! digest the plan recorded (the file may have changed since validation),
//! compiled once (or taken from the cache) and reused by every step.

use std::collections::BTreeMap;

use super::RunError;
use crate::plan::{PluginSpec, Step};
use crate::sandbox::{IngestPlugin, Sandbox, TransformPlugin, sha256_hex};

/// The plugins loaded so far in this run, by name.
pub(super) struct Plugins {
    sandbox: Sandbox,
    ingest: BTreeMap<String, IngestPlugin>,
    transform: BTreeMap<String, TransformPlugin>,
}

impl Plugins {
    pub fn new(sandbox: Sandbox) -> Self {
        Plugins { sandbox, ingest: BTreeMap::new(), transform: BTreeMap::new() }
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    pub fn ingest(&mut self, step: &Step, spec: &PluginSpec) -> Result<&IngestPlugin, RunError> {
        if !self.ingest.contains_key(&spec.name) {
            let wasm = read_verified(step, spec)?;
            let plugin = self.sandbox.load_ingest(&spec.name, &wasm).map_err(|source| load_error(step, source))?;
            self.ingest.insert(spec.name.clone(), plugin);
        }
        Ok(&self.ingest[&spec.name])
    }

    pub fn transform(&mut self, step: &Step, spec: &PluginSpec) -> Result<&TransformPlugin, RunError> {
        if !self.transform.contains_key(&spec.name) {
            let wasm = read_verified(step, spec)?;
            let plugin = self.sandbox.load_transform(&spec.name, &wasm).map_err(|source| load_error(step, source))?;
            self.transform.insert(spec.name.clone(), plugin);
        }
        Ok(&self.transform[&spec.name])
    }
}

fn load_error(step: &Step, source: crate::sandbox::SandboxError) -> RunError {
    RunError::PluginLoad { step: step.name.to_string(), source }
}

/// The component's bytes, if they still have the digest the plan saw.
fn read_verified(step: &Step, spec: &PluginSpec) -> Result<Vec<u8>, RunError> {
    let wasm = std::fs::read(&spec.path).map_err(|source| RunError::Source {
        step: step.name.to_string(),
        path: spec.path.display().to_string(),
        source,
    })?;
    let digest = sha256_hex(&wasm);
    if digest != spec.sha256 {
        return Err(RunError::PluginChanged {
            step: step.name.to_string(),
            plugin: spec.name.clone(),
            path: spec.path.display().to_string(),
        });
    }
    Ok(wasm)
}
