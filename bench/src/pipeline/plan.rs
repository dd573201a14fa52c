//! The steps to measure, from `floe-host plan --json` on the bench's project
//! copy: what each step computes, from which inputs, and where its table's
//! data files are.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::options::Options;
use super::setup::Project;

pub struct Step {
    pub name: String,
    /// `layer.name`, as other steps' inputs refer to it.
    pub target: String,
    /// The table's data folder in the local warehouse.
    pub data_dir: PathBuf,
    pub action: Action,
    pub inputs: Vec<Input>,
}

pub enum Action {
    Ingest { plugin: String, path: PathBuf, source: PathBuf, config: BTreeMap<String, String> },
    Sql { file: PathBuf },
    Wasm { plugin: String, path: PathBuf, config: BTreeMap<String, String> },
}

pub struct Input {
    /// The layer, the schema name the SQL uses.
    pub layer: String,
    /// The table's name within the layer.
    pub name: String,
    /// The producing step's `target`.
    pub target: String,
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self.action {
            Action::Ingest { .. } => "ingest",
            Action::Sql { .. } => "sql",
            Action::Wasm { .. } => "wasm",
        }
    }
}

pub fn load(options: &Options, project: &Project) -> Result<Vec<Step>, String> {
    let output = Command::new(&options.floe_host)
        .arg("plan")
        .arg(&project.dir)
        .arg("--platform")
        .arg(&project.platform)
        .arg("--state-dir")
        .arg(&project.state)
        .arg("--json")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", options.floe_host.display()))?;
    if !output.status.success() {
        return Err(format!("floe-host plan failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let plan: Value = serde_json::from_slice(&output.stdout).map_err(|e| format!("floe-host plan --json: {e}"))?;
    plan["steps"].as_array().ok_or("floe-host plan --json: no `steps`")?.iter().map(step).collect()
}

fn step(value: &Value) -> Result<Step, String> {
    let text = |v: &Value, what: &str| v.as_str().map(str::to_owned).ok_or(format!("plan: no `{what}` in {v}"));
    let name = text(&value["name"], "name")?;
    let location = text(&value["location"], "location")?;
    let data_dir = location
        .strip_prefix("file://")
        .map(|path| PathBuf::from(path).join("data"))
        .ok_or(format!("step `{name}`: the bench needs a local warehouse, not {location}"))?;
    let action = &value["action"];
    let config = || -> BTreeMap<String, String> {
        action["config"]
            .as_object()
            .map(|map| {
                map.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect()
            })
            .unwrap_or_default()
    };
    let action = match action["kind"].as_str() {
        Some("ingest") => Action::Ingest {
            plugin: text(&action["plugin"]["name"], "plugin.name")?,
            path: PathBuf::from(text(&action["plugin"]["path"], "plugin.path")?),
            source: PathBuf::from(text(&action["source"], "source")?),
            config: config(),
        },
        Some("sql") => Action::Sql { file: PathBuf::from(text(&action["file"], "file")?) },
        Some("wasm") => Action::Wasm {
            plugin: text(&action["plugin"]["name"], "plugin.name")?,
            path: PathBuf::from(text(&action["plugin"]["path"], "plugin.path")?),
            config: config(),
        },
        other => return Err(format!("step `{name}`: unknown action kind {other:?}")),
    };
    let inputs = value["inputs"]
        .as_array()
        .map(|inputs| {
            inputs
                .iter()
                .map(|input| {
                    let target = text(&input["table"], "inputs[].table")?;
                    Ok(Input {
                        layer: text(&input["layer"], "inputs[].layer")?,
                        name: target.rsplit('.').next().unwrap_or_default().to_owned(),
                        target,
                    })
                })
                .collect::<Result<Vec<_>, String>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(Step { target: text(&value["target"], "target")?, name, data_dir, action, inputs })
}
