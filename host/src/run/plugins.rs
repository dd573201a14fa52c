//! Loading plugins for a run: each component is read, checked against the
//! digest the plan recorded (the file may have changed since validation),
//! compiled once (or taken from the cache) and reused by every step.
//!
//! [`Plugins::prepare`] does this for every plugin of the run before the
//! first step, and checks each step's `config` against the schema its plugin
//! declares (`plan::plugin_config`): a component that does not compile or
//! link, or a config it would refuse, fails the run before any data is read;
//! the progress line says what is compiling, and compile time is reported
//! apart from step time (summary, traces, Pipes).
//! One plugin compiles at a time: each compile uses every core already, and
//! two at once took longer on 2 cores (BENCHMARKS.md).

use std::collections::BTreeMap;

use super::RunError;
use crate::config::ConfigErrors;
use crate::plan::{Action, PluginSpec, Step};
use crate::sandbox::{Compiled, IngestPlugin, LoadedPlugin, Sandbox, TransformPlugin, sha256_hex};

/// How one plugin of the run was made ready.
#[derive(Clone, Debug)]
pub struct PluginLoad {
    pub plugin: String,
    pub sha256: String,
    pub compiled: Compiled,
}

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

    /// Loads every plugin `steps` use, in order of first use, and checks
    /// each step's config against its plugin's schema. A plugin that fails to
    /// load fails with the first step that uses it; config problems are
    /// reported all at once ([`RunError::Config`]).
    pub fn prepare(&mut self, steps: &[Step]) -> Result<Vec<PluginLoad>, RunError> {
        let mut jobs: Vec<(&Step, &PluginSpec, bool)> = Vec::new();
        for step in steps {
            let Some((spec, ingest)) = plugin_of(step) else { continue };
            if !jobs.iter().any(|(_, s, i)| s.name == spec.name && *i == ingest) {
                jobs.push((step, spec, ingest));
            }
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let count = jobs.len();
        let mut loads = Vec::with_capacity(count);
        let mut result = Ok(());
        for (index, (step, spec, ingest)) in jobs.into_iter().enumerate() {
            let phase = format!("compiling plugin {} ({}/{count})", spec.name, index + 1);
            crate::observe::progress::phase_started(&phase);
            match self.load(step, spec, ingest) {
                Ok(loaded) => {
                    let compiled = self.insert(spec, loaded);
                    loads.push(PluginLoad { plugin: spec.name.clone(), sha256: spec.sha256.clone(), compiled });
                }
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        crate::observe::progress::phase_finished();
        result?;
        self.check_configs(steps)?;
        Ok(loads)
    }

    /// Each plugin step's config against the schema its (loaded) plugin
    /// declares in `meta.info`: every problem of the run at once.
    fn check_configs(&self, steps: &[Step]) -> Result<(), RunError> {
        let mut schemas: BTreeMap<(&str, bool), String> = BTreeMap::new();
        let mut errors = ConfigErrors::default();
        for step in steps {
            let (Some((spec, ingest)), Some(site)) = (plugin_of(step), &step.plugin_config) else { continue };
            let key = (spec.name.as_str(), ingest);
            if !schemas.contains_key(&key) {
                let info = if ingest {
                    self.ingest.get(&spec.name).map(IngestPlugin::info)
                } else {
                    self.transform.get(&spec.name).map(TransformPlugin::info)
                };
                let Some(info) = info else { continue };
                let info = info.map_err(|source| load_error(step, source))?;
                schemas.insert(key, info.config_schema);
            }
            for error in site.check(step.name.as_str(), &spec.name, &schemas[&key]) {
                errors.push(error);
            }
        }
        errors.into_result(()).map_err(|errors| RunError::Config(errors.to_string()))
    }

    /// How the plugin of `step` was made ready in this run, if it has one
    /// and it is loaded.
    pub fn compiled_for(&self, step: &Step) -> Option<Compiled> {
        let (spec, ingest) = plugin_of(step)?;
        if ingest {
            self.ingest.get(&spec.name).map(IngestPlugin::compiled)
        } else {
            self.transform.get(&spec.name).map(TransformPlugin::compiled)
        }
    }

    /// Reads, verifies and loads one plugin, in a `compile` span.
    fn load(&self, step: &Step, spec: &PluginSpec, ingest: bool) -> Result<LoadedPlugin, RunError> {
        use tracing::field::Empty;
        let span = tracing::info_span!(crate::observe::traces::COMPILE, step = %step.name,
            plugin = %spec.name, plugin_digest = %spec.sha256, from_cache = Empty, elapsed_ms = Empty,
            otel.status_code = Empty, otel.status_description = Empty);
        let result = span.in_scope(|| {
            let wasm = read_verified(step, spec)?;
            let loaded = if ingest {
                self.sandbox.load_ingest(&spec.name, &wasm).map(LoadedPlugin::Ingest)
            } else {
                self.sandbox.load_transform(&spec.name, &wasm).map(LoadedPlugin::Transform)
            };
            loaded.map_err(|source| load_error(step, source))
        });
        match &result {
            Ok(loaded) => {
                let compiled = loaded.compiled();
                span.record("from_cache", compiled.from_cache)
                    .record("elapsed_ms", compiled.elapsed.as_millis() as i64);
            }
            Err(error) => {
                crate::observe::traces::fail(&span, error);
            }
        }
        result
    }

    /// Keeps a loaded plugin under its name; returns how it was made ready.
    fn insert(&mut self, spec: &PluginSpec, loaded: LoadedPlugin) -> Compiled {
        let compiled = loaded.compiled();
        match loaded {
            LoadedPlugin::Ingest(plugin) => {
                self.ingest.insert(spec.name.clone(), plugin);
            }
            LoadedPlugin::Transform(plugin) => {
                self.transform.insert(spec.name.clone(), plugin);
            }
        }
        compiled
    }

    /// The ingest plugin of `step`, loaded by [`Plugins::prepare`]. Steps
    /// run on threads of their own and share the loaded plugins.
    pub fn ingest(&self, step: &Step, spec: &PluginSpec) -> Result<&IngestPlugin, RunError> {
        self.ingest.get(&spec.name).ok_or_else(|| not_prepared(step, spec))
    }

    /// The transform plugin of `step`, loaded by [`Plugins::prepare`].
    pub fn transform(&self, step: &Step, spec: &PluginSpec) -> Result<&TransformPlugin, RunError> {
        self.transform.get(&spec.name).ok_or_else(|| not_prepared(step, spec))
    }
}

/// `prepare` loads every plugin of the run's steps before the first one.
fn not_prepared(step: &Step, spec: &PluginSpec) -> RunError {
    RunError::Setup(format!(
        "step `{}`: plugin `{}` was not loaded before the run started (a floe-host bug; please report it)",
        step.name, spec.name
    ))
}

/// A step's plugin, and whether it is an ingest plugin; `None` for a SQL model.
fn plugin_of(step: &Step) -> Option<(&PluginSpec, bool)> {
    match &step.action {
        Action::Ingest { plugin, .. } => Some((plugin, true)),
        Action::Wasm { plugin, .. } => Some((plugin, false)),
        Action::Sql { .. } => None,
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
