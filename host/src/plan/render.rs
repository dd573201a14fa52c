//! The human-readable plan that `floe-host plan` prints.

use std::fmt::Write;

use super::{Action, CatalogSpec, Plan};
use crate::config::{SchemaEvolution, WriteMode};

impl Plan {
    /// Steps in run order with their targets, inputs and plugins.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "pipeline {} ({} steps)", self.pipeline, self.steps.len());
        for (i, step) in self.steps.iter().enumerate() {
            let catalog = match self.catalogs.get(&step.catalog) {
                Some(CatalogSpec::Sql { uri, .. }) => format!("sql catalog `{}` ({uri})", step.catalog),
                Some(CatalogSpec::Rest(rest)) => format!("rest catalog `{}` ({})", step.catalog, rest.uri),
                None => format!("catalog `{}`", step.catalog),
            };
            let _ = writeln!(out, "{}. {} -> {} [{}] in {catalog}", i + 1, step.name, step.target, step.mode.as_str());
            if !step.partition_by.is_empty() {
                let fields: Vec<String> = step.partition_by.iter().map(ToString::to_string).collect();
                let _ = write!(out, "   partitioned by [{}]", fields.join(", "));
                match &step.partition {
                    Some(value) => {
                        let _ = writeln!(out, "; replaces partition {value}");
                    }
                    None => out.push('\n'),
                }
            }
            if step.mode == WriteMode::Merge {
                let _ = writeln!(out, "   merge on {}", step.merge_keys.join(", "));
            }
            if step.schema_evolution == SchemaEvolution::AddColumns {
                let _ = writeln!(out, "   schema evolution: add columns");
            }
            if let Some(location) = &step.location {
                let _ = writeln!(out, "   location {location} (storage `{}`)", step.storage);
            }
            match &step.action {
                Action::Ingest { plugin, source_display, .. } => {
                    let _ = writeln!(
                        out,
                        "   ingest {source_display} with plugin `{}` (sha256 {})",
                        plugin.name, plugin.sha256
                    );
                }
                Action::Wasm { plugin, .. } => {
                    let _ = writeln!(out, "   transform with plugin `{}` (sha256 {})", plugin.name, plugin.sha256);
                }
                Action::Sql { file, incremental, .. } => {
                    let how = if incremental.is_some() { " (incremental once the table exists)" } else { "" };
                    let _ = writeln!(out, "   sql {}{how}", file.display());
                }
            }
            if !step.data_tests.is_empty() {
                let tests: Vec<String> = step
                    .data_tests
                    .iter()
                    .map(|t| match t.severity {
                        crate::plan::model::data_tests::Severity::Error => t.name(),
                        crate::plan::model::data_tests::Severity::Warn => format!("{} (warn)", t.name()),
                    })
                    .collect();
                let _ = writeln!(out, "   tests {}", tests.join(", "));
            }
            for input in &step.inputs {
                let _ = writeln!(out, "   reads {}.{} = {}", input.layer, input.table.name, input.table);
            }
        }
        out
    }
}
