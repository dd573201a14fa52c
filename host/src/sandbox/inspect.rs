//! What a component is, without running a pipeline: its world, what it says
//! about itself, and the interfaces it imports and exports
//! (`floe-host plugin inspect`).

use wasmtime::component::Component;

use super::{Compiled, IngestPlugin, PluginInfo, Sandbox, SandboxError, TransformPlugin};

/// The facts `plugin inspect` prints.
#[derive(Debug)]
pub struct Inspection {
    pub sha256: String,
    /// From the compile cache or compiled, and how long it took.
    pub compiled: Compiled,
    /// `floe:plugin/ingest-plugin`, `floe:plugin/ingest-chunks-plugin` (an
    /// ingest plugin that can be parsed in parallel chunks) or
    /// `floe:plugin/transform-plugin`.
    pub world: Option<&'static str>,
    /// `meta.info()`, when the component links.
    pub info: Option<PluginInfo>,
    /// Why it does not link as either world, when it does not.
    pub link_error: Option<SandboxError>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// A component linked as whichever world it implements.
#[derive(Clone)]
pub enum LoadedPlugin {
    Ingest(IngestPlugin),
    Transform(TransformPlugin),
}

impl LoadedPlugin {
    /// From the compile cache or compiled, and how long it took.
    pub fn compiled(&self) -> Compiled {
        match self {
            LoadedPlugin::Ingest(plugin) => plugin.compiled(),
            LoadedPlugin::Transform(plugin) => plugin.compiled(),
        }
    }
}

impl Sandbox {
    /// Compiles `wasm` (or takes it from the cache) and reports what it is.
    /// A component that links as neither world is still described (imports
    /// and exports), with the reason.
    pub fn inspect(&self, plugin: &str, wasm: &[u8]) -> Result<Inspection, SandboxError> {
        self.open(plugin, wasm).map(|(inspection, _)| inspection)
    }

    /// [`Sandbox::inspect`], also returning the linked plugin when it links:
    /// one compile for callers that go on to run it (`plugin test`).
    pub fn open(&self, plugin: &str, wasm: &[u8]) -> Result<(Inspection, Option<LoadedPlugin>), SandboxError> {
        let engine = self.inner.engine.engine();
        let (component, compiled) = self.component(plugin, wasm)?;
        let ty = component.component_type();
        let imports = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
        let exports = ty.exports(engine).map(|(name, _)| name.to_string()).collect();
        let (world, info, link_error, loaded) = match self.linked_info(plugin, component, compiled) {
            Ok((world, info, loaded)) => (Some(world), Some(info), None, Some(loaded)),
            Err(error) => (None, None, Some(error), None),
        };
        let sha256 = super::sha256_hex(wasm);
        Ok((Inspection { sha256, compiled, world, info, link_error, imports, exports }, loaded))
    }

    fn linked_info(
        &self,
        plugin: &str,
        component: Component,
        compiled: Compiled,
    ) -> Result<(&'static str, PluginInfo, LoadedPlugin), SandboxError> {
        match TransformPlugin::new(self.clone(), plugin, component.clone(), compiled) {
            Ok(transform) => {
                Ok(("floe:plugin/transform-plugin", transform.info()?, LoadedPlugin::Transform(transform)))
            }
            Err(SandboxError::WrongWorld { .. }) => {
                let ingest = IngestPlugin::new(self.clone(), plugin, component, compiled)?;
                let world = if ingest.splits_sources() {
                    "floe:plugin/ingest-chunks-plugin"
                } else {
                    "floe:plugin/ingest-plugin"
                };
                Ok((world, ingest.info()?, LoadedPlugin::Ingest(ingest)))
            }
            Err(error) => Err(error),
        }
    }
}
