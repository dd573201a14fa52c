//! A plugin step's `config` as floe.yaml writes it, with where each key is,
//! so that once the plugin is loaded (`validate`, or a run before its first
//! step) the config is checked against the schema the plugin declares
//! (`config_schema.rs`) and every problem is reported at its file:line:col.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::config_schema::{self, Violation};
use crate::config::{ConfigError, Project};

/// A step's plugin config and where it is written.
#[derive(Clone, Debug, Default)]
pub struct ConfigSite {
    /// floe.yaml, as the user named it.
    pub file: PathBuf,
    /// `transforms[3].config`.
    pub key: String,
    /// The config, YAML scalars as JSON values.
    pub values: Map<String, Value>,
    /// Line and column of `key` (or of the step, when it has no config).
    pub position: Option<(usize, usize)>,
    /// Line and column of each config key.
    pub positions: BTreeMap<String, (usize, usize)>,
}

impl ConfigSite {
    /// The site of step `index`'s config, from the project's floe.yaml.
    pub fn new(project: &Project, index: usize, config: &BTreeMap<String, serde_yaml::Value>) -> Self {
        let key = format!("transforms[{index}].config");
        let mut values = Map::new();
        let mut positions = BTreeMap::new();
        for (name, value) in config {
            if let Some(value) = scalar(value) {
                values.insert(name.clone(), value);
            }
            if let Some(position) = project.locate_in_floe(&format!("{key}.{name}")) {
                positions.insert(name.clone(), position);
            }
        }
        let position = project.locate_in_floe(&key);
        ConfigSite { file: project.floe_path.clone(), key, values, position, positions }
    }

    /// The config checked against `schema_text`, the schema plugin `plugin`
    /// declares: one error per problem. A schema that cannot be used is
    /// warned about and the config is left to the plugin.
    pub fn check(&self, step: &str, plugin: &str, schema_text: &str) -> Vec<ConfigError> {
        let schema = match config_schema::parse(schema_text) {
            Ok(schema) => schema,
            Err(why) => {
                tracing::warn!(
                    step,
                    plugin,
                    "The plugin's config schema cannot be used ({why}); its config is checked only by the plugin, when it runs."
                );
                return Vec::new();
            }
        };
        config_schema::check(&schema, &self.values).into_iter().map(|v| self.error(plugin, v)).collect()
    }

    fn error(&self, plugin: &str, violation: Violation) -> ConfigError {
        let (key, position) = match &violation.key {
            Some(name) => (format!("{}.{name}", self.key), self.positions.get(name).copied().or(self.position)),
            None => (self.key.clone(), self.position),
        };
        let plugin = crate::sandbox::text::escape(plugin);
        let message = format!("{} (plugin `{plugin}`'s config schema)", violation.message);
        let mut error = ConfigError::new(&self.file, key, message).at(position);
        error.help = Some(
            violation
                .help
                .unwrap_or_else(|| "`floe-host plugin inspect` on the component shows its config schema".into()),
        );
        error
    }
}

/// A YAML scalar as JSON; `None` for a list or a map (refused by the plan).
fn scalar(value: &serde_yaml::Value) -> Option<Value> {
    Some(match value {
        serde_yaml::Value::String(s) => Value::String(s.clone()),
        serde_yaml::Value::Bool(b) => Value::Bool(*b),
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                // NaN and the infinities have no JSON number.
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or_else(|| Value::String(n.to_string()), Value::Number)
            }
        }
        _ => return None,
    })
}
