//! Turns a parsed [`Project`] into a [`Plan`], collecting every problem:
//! unknown profiles and plugins, missing files, SQL that reads a table no step
//! produces, cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::order::topological;
use super::sql_refs::find_refs;
use super::{Action, CatalogSpec, Input, Plan, PluginSpec, Step, TableRef};
use crate::config::{CatalogProfile, ComputeProfile, ConfigError, ConfigErrors, Ident, Project, TransformKind};

/// Resolves and checks everything; returns every error found.
pub fn build(project: &Project) -> Result<Plan, ConfigErrors> {
    let mut checker = Checker { project, errors: ConfigErrors::default() };
    let plan = checker.build();
    checker.errors.into_result(()).map(|()| plan.expect("a plan exists when there are no errors"))
}

struct Checker<'a> {
    project: &'a Project,
    errors: ConfigErrors,
}

impl Checker<'_> {
    fn floe_error(&mut self, key: String, message: String, help: Option<String>) {
        let position = self.project.locate_in_floe(&key);
        let mut error = ConfigError::new(&self.project.floe_path, key, message).at(position);
        error.help = help;
        self.errors.push(error);
    }

    fn platform_error(&mut self, key: String, message: String, help: Option<String>) {
        let position = self.project.locate_in_platform(&key);
        let mut error = ConfigError::new(self.project.platform_display(), key, message).at(position);
        error.help = help;
        self.errors.push(error);
    }

    fn build(&mut self) -> Option<Plan> {
        let project = self.project;
        let floe = &project.floe;
        let platform = &project.platform;

        self.check_profile("catalog", &floe.catalog, platform.catalogs.keys());
        self.check_profile("storage", &floe.storage, platform.storage.keys());
        self.check_profile("compute", &floe.compute, platform.compute.keys());
        for (layer, profile) in &platform.layers {
            if !platform.catalogs.contains_key(&profile.catalog_ref) {
                self.platform_error(
                    format!("layers.{layer}.catalog_ref"),
                    format!("unknown catalog `{}`", profile.catalog_ref),
                    Some(available("catalogs", platform.catalogs.keys())),
                );
            }
            if !platform.storage.contains_key(&profile.storage_ref) {
                self.platform_error(
                    format!("layers.{layer}.storage_ref"),
                    format!("unknown storage `{}`", profile.storage_ref),
                    Some(available("storage", platform.storage.keys())),
                );
            }
        }

        let plugins = self.plugins();
        let mut seen = BTreeMap::new();
        for (i, transform) in floe.transforms.iter().enumerate() {
            if let Some(first) = seen.insert(transform.name.clone(), i) {
                self.floe_error(
                    format!("transforms[{i}].name"),
                    format!("step `{}` is defined twice (first at `transforms[{first}]`)", transform.name),
                    Some("step names are table names and must be unique".into()),
                );
            }
        }

        // Every layer a SQL model may refer to by name.
        let layers: BTreeSet<&str> = floe
            .transforms
            .iter()
            .map(|t| t.layer.as_str())
            .chain(platform.layers.keys().map(Ident::as_str))
            .collect();
        let layer_names: Vec<&str> = layers.into_iter().collect();
        let produced: BTreeMap<(String, String), usize> = floe
            .transforms
            .iter()
            .enumerate()
            .map(|(i, t)| ((t.layer.to_string(), t.name.to_string()), i))
            .collect();

        let mut steps = Vec::new();
        let mut deps = Vec::new();
        for (i, transform) in floe.transforms.iter().enumerate() {
            let (catalog, namespace) = self.layer_target(&transform.layer);
            let key = |field: &str| format!("transforms[{i}].{field}");
            let mut step_deps = Vec::new();
            let action = match transform.kind {
                TransformKind::Ingest => {
                    for (field, present) in [("sql", transform.sql.is_some())] {
                        if present {
                            self.floe_error(key(field), format!("`{field}` does not apply to an `ingest` step"), None);
                        }
                    }
                    let plugin = match &transform.plugin {
                        None => {
                            self.floe_error(
                                key("kind"),
                                "an `ingest` step needs `plugin`".into(),
                                Some("add for example `plugin: csv-ingest`, a key of `plugins`".into()),
                            );
                            None
                        }
                        Some(name) => match plugins.get(name) {
                            Some(spec) => Some(spec.clone()),
                            None => {
                                if !floe.plugins.contains_key(name) {
                                    self.floe_error(
                                        key("plugin"),
                                        format!("unknown plugin `{name}`"),
                                        Some(available("plugins", floe.plugins.keys())),
                                    );
                                }
                                None
                            }
                        },
                    };
                    let source = match &transform.source {
                        None => {
                            self.floe_error(
                                key("kind"),
                                "an `ingest` step needs `source`".into(),
                                Some("add for example `source: data/orders.csv`, relative to floe.yaml".into()),
                            );
                            None
                        }
                        Some(source) => {
                            let path = project.root.join(source);
                            if path.is_file() {
                                Some((path, source.display().to_string()))
                            } else {
                                self.floe_error(
                                    key("source"),
                                    format!("source file `{}` does not exist", path.display()),
                                    Some("paths are relative to the directory of floe.yaml".into()),
                                );
                                None
                            }
                        }
                    };
                    let config = self.plugin_config(i, &transform.config);
                    match (plugin, source) {
                        (Some(plugin), Some((source, source_display))) => {
                            Some(Action::Ingest { plugin, source, source_display, config })
                        }
                        _ => None,
                    }
                }
                TransformKind::Sql => {
                    for (field, present) in [
                        ("plugin", transform.plugin.is_some()),
                        ("source", transform.source.is_some()),
                        ("config", !transform.config.is_empty()),
                    ] {
                        if present {
                            self.floe_error(key(field), format!("`{field}` does not apply to a `sql` step"), None);
                        }
                    }
                    match &transform.sql {
                        None => {
                            self.floe_error(
                                key("kind"),
                                "a `sql` step needs `sql`".into(),
                                Some("add for example `sql: models/stg_orders.sql`, relative to floe.yaml".into()),
                            );
                            None
                        }
                        Some(file) => {
                            let path = project.root.join(file);
                            match std::fs::read_to_string(&path) {
                                Err(error) => {
                                    self.floe_error(
                                        key("sql"),
                                        format!("cannot read SQL file `{}`: {error}", path.display()),
                                        Some("paths are relative to the directory of floe.yaml".into()),
                                    );
                                    None
                                }
                                Ok(query) => {
                                    for found in find_refs(&query, &layer_names) {
                                        match produced.get(&(found.schema.clone(), found.table.clone())) {
                                            Some(&dep) if dep == i => self.errors.push(
                                                ConfigError::new(
                                                    &path,
                                                    "",
                                                    format!("step `{}` reads its own table `{}.{}`", transform.name, found.schema, found.table),
                                                )
                                                .at(Some((found.line, found.column))),
                                            ),
                                            Some(&dep) => step_deps.push(dep),
                                            None => self.errors.push(
                                                ConfigError::new(
                                                    &path,
                                                    "",
                                                    format!(
                                                        "references `{}.{}`, which no step produces (SQL of `transforms[{i}].sql` in {})",
                                                        found.schema,
                                                        found.table,
                                                        project.floe_path.display()
                                                    ),
                                                )
                                                .at(Some((found.line, found.column)))
                                                .help(available_in_layer(&found.schema, &floe.transforms)),
                                            ),
                                        }
                                    }
                                    Some(Action::Sql { file: path, query })
                                }
                            }
                        }
                    }
                }
            };
            step_deps.sort_unstable();
            step_deps.dedup();
            deps.push(step_deps);
            steps.push(action.map(|action| Step {
                name: transform.name.clone(),
                layer: transform.layer.clone(),
                target: TableRef { namespace, name: transform.name.clone() },
                catalog,
                mode: transform.mode,
                action,
                inputs: Vec::new(),
            }));
        }

        let order = match topological(steps.len(), &deps) {
            Ok(order) => order,
            Err(cycle) => {
                let names: Vec<String> = cycle.iter().map(|&n| floe.transforms[n].name.to_string()).collect();
                self.floe_error(
                    format!("transforms[{}]", cycle[0]),
                    format!("steps depend on each other in a cycle: {} -> {}", names.join(" -> "), names[0]),
                    Some("a SQL model may only read tables of steps that do not read it".into()),
                );
                return None;
            }
        };

        let compute = match platform.compute.get(&floe.compute) {
            Some(ComputeProfile::Duckdb { properties }) => properties.clone(),
            None => return None,
        };
        let catalogs = platform
            .catalogs
            .iter()
            .map(|(name, profile)| {
                let spec = match profile {
                    CatalogProfile::Sql { uri, warehouse } => CatalogSpec::Sql { uri: uri.clone(), warehouse: warehouse.clone() },
                };
                (name.clone(), spec)
            })
            .collect();

        if !self.errors.is_empty() {
            return None;
        }
        let mut resolved: Vec<Option<Step>> = steps;
        let mut ordered = Vec::with_capacity(order.len());
        for &n in &order {
            let mut step = resolved[n].take()?;
            step.inputs = deps[n]
                .iter()
                .map(|&d| {
                    let producer = &floe.transforms[d];
                    let (catalog, namespace) = self.layer_target(&producer.layer);
                    Input {
                        layer: producer.layer.clone(),
                        table: TableRef { namespace, name: producer.name.clone() },
                        catalog,
                    }
                })
                .collect();
            ordered.push(step);
        }
        Some(Plan { pipeline: floe.name.clone(), steps: ordered, catalogs, compute, state_dir: project.state_dir.clone() })
    }

    fn check_profile<'k>(&mut self, kind: &str, name: &str, known: impl Iterator<Item = &'k String> + Clone) {
        if !known.clone().any(|k| k == name) {
            let section = if kind == "catalog" { "catalogs" } else { kind };
            self.floe_error(
                kind.to_string(),
                format!("unknown {kind} profile `{name}`"),
                Some(format!(
                    "{}; define `{section}.{name}` in {}",
                    available(section, known),
                    self.project.platform_display().display()
                )),
            );
        }
    }

    /// Catalog profile and namespace of a layer's tables.
    fn layer_target(&self, layer: &Ident) -> (String, Ident) {
        match self.project.platform.layers.get(layer) {
            Some(profile) => (
                profile.catalog_ref.clone(),
                profile.namespace.clone().unwrap_or_else(|| layer.clone()),
            ),
            None => (self.project.floe.catalog.clone(), layer.clone()),
        }
    }

    /// Checks every plugin file and its pin; returns the good ones.
    fn plugins(&mut self) -> BTreeMap<String, PluginSpec> {
        let mut specs = BTreeMap::new();
        for (name, plugin) in &self.project.floe.plugins {
            let path = self.project.root.join(&plugin.path);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(error) => {
                    self.floe_error(
                        format!("plugins.{name}.path"),
                        format!("cannot read plugin `{name}` at `{}`: {error}", path.display()),
                        Some(plugin_help(&path)),
                    );
                    continue;
                }
            };
            let sha256 = hex(&Sha256::digest(&bytes));
            if let Some(pin) = &plugin.sha256
                && !pin.eq_ignore_ascii_case(&sha256)
            {
                self.floe_error(
                    format!("plugins.{name}.sha256"),
                    format!("plugin `{name}` has sha256 {sha256}, but floe.yaml pins {pin}"),
                    Some("rebuild or re-download the plugin, or update the pin if the change is intended".into()),
                );
                continue;
            }
            specs.insert(name.clone(), PluginSpec { name: name.clone(), path, sha256 });
        }
        specs
    }

    fn plugin_config(&mut self, i: usize, config: &BTreeMap<String, serde_yaml::Value>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, value) in config {
            let text = match value {
                serde_yaml::Value::String(s) => s.clone(),
                serde_yaml::Value::Number(n) => n.to_string(),
                serde_yaml::Value::Bool(b) => b.to_string(),
                serde_yaml::Value::Null => String::new(),
                _ => {
                    self.floe_error(
                        format!("transforms[{i}].config.{key}"),
                        "plugin config values must be scalars (string, number, boolean)".into(),
                        Some("encode lists as a comma-separated string, for example `keys: \"a,b\"`".into()),
                    );
                    continue;
                }
            };
            out.insert(key.clone(), text);
        }
        out
    }
}

fn available<'k>(section: &str, known: impl Iterator<Item = &'k String>) -> String {
    let names: Vec<&str> = known.map(String::as_str).collect();
    if names.is_empty() {
        format!("no {section} are defined")
    } else {
        format!("available {section}: {}", names.join(", "))
    }
}

fn available_in_layer(layer: &str, transforms: &[crate::config::Transform]) -> String {
    let names: Vec<String> =
        transforms.iter().filter(|t| t.layer.as_str() == layer).map(|t| format!("{layer}.{}", t.name)).collect();
    if names.is_empty() {
        format!("no step writes to layer `{layer}`")
    } else {
        format!("tables in layer `{layer}`: {}", names.join(", "))
    }
}

fn plugin_help(path: &Path) -> String {
    if path.to_string_lossy().contains("plugins/dist") {
        "build the bundled plugins with `scripts/build-plugins.sh`".into()
    } else {
        "paths are relative to the directory of floe.yaml".into()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
