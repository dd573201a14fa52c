//! What a component is, without running a pipeline: its world, what it says
//! about itself, and the interfaces it imports and exports
//! (`floe-host plugin inspect`).

use wasmtime::component::Component;

use super::{IngestPlugin, PluginInfo, Sandbox, SandboxError, TransformPlugin};

/// The facts `plugin inspect` prints.
#[derive(Debug)]
pub struct Inspection {
    pub sha256: String,
    /// `floe:plugin/ingest-plugin` or `floe:plugin/transform-plugin`.
    pub world: Option<&'static str>,
    /// `meta.info()`, when the component links.
    pub info: Option<PluginInfo>,
    /// Why it does not link as either world, when it does not.
    pub link_error: Option<SandboxError>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

impl Sandbox {
    /// Compiles `wasm` and reports what it is. A component that links as
    /// neither world is still described (imports and exports), with the reason.
    pub fn inspect(&self, plugin: &str, wasm: &[u8]) -> Result<Inspection, SandboxError> {
        let engine = self.inner.engine.engine();
        let component = self.component(plugin, wasm)?;
        let ty = component.component_type();
        let imports = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
        let exports = ty.exports(engine).map(|(name, _)| name.to_string()).collect();
        let (world, info, link_error) = match self.linked_info(plugin, component) {
            Ok((world, info)) => (Some(world), Some(info), None),
            Err(error) => (None, None, Some(error)),
        };
        Ok(Inspection { sha256: super::sha256_hex(wasm), world, info, link_error, imports, exports })
    }

    fn linked_info(&self, plugin: &str, component: Component) -> Result<(&'static str, PluginInfo), SandboxError> {
        match TransformPlugin::new(self.clone(), plugin, component.clone()) {
            Ok(transform) => Ok(("floe:plugin/transform-plugin", transform.info()?)),
            Err(SandboxError::WrongWorld { .. }) => {
                let ingest = IngestPlugin::new(self.clone(), plugin, component)?;
                Ok(("floe:plugin/ingest-plugin", ingest.info()?))
            }
            Err(error) => Err(error),
        }
    }
}
