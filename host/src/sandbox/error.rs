//! `SandboxError`: every way loading or running a plugin can fail, each naming
//! the step and the plugin, and split into plugin faults (contract
//! violations, exit code 3) and everything else.

use std::time::Duration;

/// The last plugin log lines and captured stdout/stderr, attached to errors
/// about a plugin that died, so that its author sees why. Log lines are
/// escaped when logged; the output tail is escaped line by line when
/// printed, each line behind `| ` so that no line of it can pass for a line
/// of the host's own (or for JSON that a Pipes reader would parse).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginReport {
    pub log_lines: Vec<String>,
    pub output_tail: String,
}

impl std::fmt::Display for PluginReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.log_lines.is_empty() {
            write!(f, "\n  last plugin log lines:")?;
            for line in &self.log_lines {
                write!(f, "\n    {line}")?;
            }
        }
        let tail = self.output_tail.trim_end();
        if !tail.is_empty() {
            write!(f, "\n  plugin stdout/stderr (tail):")?;
            for line in super::text::escaped_lines(tail) {
                write!(f, "\n    | {line}")?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot set up the WebAssembly sandbox: {message}")]
    Engine { message: String },

    #[error("plugin `{plugin}` is not a valid WebAssembly component: {message}")]
    Compile { plugin: String, message: String },

    #[error("plugin `{plugin}` cannot be compiled within its limits: {message}")]
    CompileLimit { plugin: String, message: String },

    #[error(
        "plugin `{plugin}` imports `{import}`, which the host does not provide \
         (plugins may import `floe:plugin/log` and WASI 0.2 interfaces only)"
    )]
    MissingImport { plugin: String, import: String },

    #[error("plugin `{plugin}` cannot be linked: {message}")]
    Link { plugin: String, message: String },

    #[error("plugin `{plugin}` does not implement the `{world}` world: {message}")]
    WrongWorld { plugin: String, world: &'static str, message: String },

    #[error("step `{step}`: plugin `{plugin}` trapped: {message}{report}")]
    Trap { step: String, plugin: String, message: String, report: Box<PluginReport> },

    #[error("step `{step}`: plugin `{plugin}` exceeded its deadline ({limit:?} per call){report}")]
    Deadline { step: String, plugin: String, limit: Duration, report: Box<PluginReport> },

    #[error(
        "step `{step}`: plugin `{plugin}` used up its time budget (`plugins.{budget}`: {limit:?}); \
         raise it in platform.yaml if the step needs longer"
    )]
    Budget { step: String, plugin: String, budget: &'static str, limit: Duration },

    /// `shared_by`: instances that split `plugins.memory_limit` (parallel
    /// ingest), 1 otherwise.
    #[error(
        "step `{step}`: plugin `{plugin}` exceeded its memory limit ({limit} bytes{}){report}",
        share("memory_limit", *shared_by)
    )]
    Memory { step: String, plugin: String, limit: u64, shared_by: u64, report: Box<PluginReport> },

    /// `shared_by`: chunk outputs that split `plugins.max_output_bytes`
    /// (parallel ingest), 1 otherwise.
    #[error(
        "step `{step}`: plugin `{plugin}` returned {size} bytes from one call, \
         over its output limit ({limit} bytes{})",
        share("max_output_bytes", *shared_by)
    )]
    OutputTooLarge { step: String, plugin: String, size: u64, limit: u64, shared_by: u64 },

    #[error("step `{step}`: plugin `{plugin}` rejected its config: {message}")]
    InvalidConfig { step: String, plugin: String, message: String },

    #[error("step `{step}`: plugin `{plugin}` rejected its input: {message}")]
    InvalidInput { step: String, plugin: String, message: String },

    #[error("step `{step}`: plugin `{plugin}` failed: {message}")]
    PluginInternal { step: String, plugin: String, message: String },

    #[error("step `{step}`: plugin `{plugin}` returned malformed Arrow IPC: {message}")]
    MalformedOutput { step: String, plugin: String, message: String },

    #[error("step `{step}`: plugin `{plugin}` returned output the host does not accept: {message}")]
    OutputRefused { step: String, plugin: String, message: String },

    #[error("step `{step}`: plugin `{plugin}` changed its output schema mid-stream: {message}")]
    SchemaChanged { step: String, plugin: String, message: String },

    #[error("step `{step}`: plugin `{plugin}` broke its declared output schema: {message}")]
    OutputSchema { step: String, plugin: String, message: String },

    #[error("step `{step}`: reading the input of plugin `{plugin}` failed: {source}")]
    Input {
        step: String,
        plugin: String,
        #[source]
        source: std::io::Error,
    },

    #[error("step `{step}`: handling the output of plugin `{plugin}` failed: {message}")]
    Sink { step: String, plugin: String, message: String },
}

/// How a limit split between parallel ingest instances reads in an error.
fn share(key: &str, shared_by: u64) -> String {
    if shared_by <= 1 {
        return String::new();
    }
    format!(
        ": `plugins.{key}` split {shared_by} ways by parallel ingest; raise it, or lower \
         `plugins.ingest_parallelism`"
    )
}

impl SandboxError {
    /// The step the plugin was running for; `None` for errors of loading
    /// or compiling a plugin, which belong to no step yet.
    pub fn step(&self) -> Option<&str> {
        match self {
            SandboxError::Engine { .. }
            | SandboxError::Compile { .. }
            | SandboxError::CompileLimit { .. }
            | SandboxError::MissingImport { .. }
            | SandboxError::Link { .. }
            | SandboxError::WrongWorld { .. } => None,
            SandboxError::Trap { step, .. }
            | SandboxError::Deadline { step, .. }
            | SandboxError::Budget { step, .. }
            | SandboxError::Memory { step, .. }
            | SandboxError::OutputTooLarge { step, .. }
            | SandboxError::InvalidConfig { step, .. }
            | SandboxError::InvalidInput { step, .. }
            | SandboxError::PluginInternal { step, .. }
            | SandboxError::MalformedOutput { step, .. }
            | SandboxError::OutputRefused { step, .. }
            | SandboxError::SchemaChanged { step, .. }
            | SandboxError::OutputSchema { step, .. }
            | SandboxError::Input { step, .. }
            | SandboxError::Sink { step, .. } => Some(step),
        }
    }

    /// True when the plugin broke its sandbox or the plugin contract (exit
    /// code 3): traps, deadlines, memory, oversized or malformed output,
    /// output that breaks its declared schema, and components that need more
    /// than the host provides. False for errors the
    /// plugin reports about its config or input, and for host-side I/O.
    pub fn is_contract_violation(&self) -> bool {
        match self {
            SandboxError::Compile { .. }
            | SandboxError::CompileLimit { .. }
            | SandboxError::MissingImport { .. }
            | SandboxError::Link { .. }
            | SandboxError::WrongWorld { .. }
            | SandboxError::Trap { .. }
            | SandboxError::Deadline { .. }
            | SandboxError::Budget { .. }
            | SandboxError::Memory { .. }
            | SandboxError::OutputTooLarge { .. }
            | SandboxError::MalformedOutput { .. }
            | SandboxError::OutputRefused { .. }
            | SandboxError::SchemaChanged { .. }
            | SandboxError::OutputSchema { .. } => true,
            SandboxError::Engine { .. }
            | SandboxError::InvalidConfig { .. }
            | SandboxError::InvalidInput { .. }
            | SandboxError::PluginInternal { .. }
            | SandboxError::Input { .. }
            | SandboxError::Sink { .. } => false,
        }
    }

    /// The plugin the error is about, if any.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            SandboxError::Engine { .. } => None,
            SandboxError::Compile { plugin, .. }
            | SandboxError::CompileLimit { plugin, .. }
            | SandboxError::MissingImport { plugin, .. }
            | SandboxError::Link { plugin, .. }
            | SandboxError::WrongWorld { plugin, .. }
            | SandboxError::Trap { plugin, .. }
            | SandboxError::Deadline { plugin, .. }
            | SandboxError::Budget { plugin, .. }
            | SandboxError::Memory { plugin, .. }
            | SandboxError::OutputTooLarge { plugin, .. }
            | SandboxError::InvalidConfig { plugin, .. }
            | SandboxError::InvalidInput { plugin, .. }
            | SandboxError::PluginInternal { plugin, .. }
            | SandboxError::MalformedOutput { plugin, .. }
            | SandboxError::OutputRefused { plugin, .. }
            | SandboxError::SchemaChanged { plugin, .. }
            | SandboxError::OutputSchema { plugin, .. }
            | SandboxError::Input { plugin, .. }
            | SandboxError::Sink { plugin, .. } => Some(plugin),
        }
    }
}

/// Pulls the import name out of wasmtime's "component imports instance
/// `name`, but a matching implementation was not found in the linker".
pub(super) fn missing_import_name(message: &str) -> Option<String> {
    if !message.contains("a matching implementation was not found in the linker") {
        return None;
    }
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_missing_import() {
        let msg = "component imports instance `wasi:http/types@0.2.0`, but a matching \
                   implementation was not found in the linker";
        assert_eq!(missing_import_name(msg).as_deref(), Some("wasi:http/types@0.2.0"));
        assert_eq!(missing_import_name("type mismatch for `x`"), None);
    }

    #[test]
    fn memory_message_reads_like_a_sentence() {
        let err = SandboxError::Memory {
            step: "raw_orders".into(),
            plugin: "csv-ingest".into(),
            limit: 1 << 30,
            shared_by: 1,
            report: Box::default(),
        };
        assert_eq!(
            err.to_string(),
            "step `raw_orders`: plugin `csv-ingest` exceeded its memory limit (1073741824 bytes)"
        );
        let shared = SandboxError::Memory {
            step: "raw_orders".into(),
            plugin: "csv-ingest".into(),
            limit: 1 << 28,
            shared_by: 4,
            report: Box::default(),
        };
        assert_eq!(
            shared.to_string(),
            "step `raw_orders`: plugin `csv-ingest` exceeded its memory limit (268435456 bytes: \
             `plugins.memory_limit` split 4 ways by parallel ingest; raise it, or lower \
             `plugins.ingest_parallelism`)"
        );
        assert!(err.is_contract_violation());
    }
}
