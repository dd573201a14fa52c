//! The dbt project folder of a pipeline's SQL models: where its models and
//! macros are (`dbt_project.yml`'s `model-paths` and `macro-paths`, or
//! `models/` and `macros/`), its `vars`, and the model file of a step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::ConfigError;

/// Folders deeper than this under a model or macro path are not searched.
const MAX_DEPTH: usize = 16;
/// More files than this under the model and macro paths is a mistake (the
/// project points at a data folder, or `/`).
const MAX_FILES: usize = 20_000;

/// A dbt project folder, scanned once per plan.
#[derive(Debug, Default)]
pub struct DbtProject {
    /// The folder (relative paths of floe.yaml's folder joined).
    pub root: PathBuf,
    /// `*.sql` and `*.py` files under the model paths, by file stem.
    models: BTreeMap<String, Vec<PathBuf>>,
    /// `*.sql` files under the macro paths.
    pub macro_files: Vec<PathBuf>,
    /// `*.yml` files under the model paths (`schema.yml`: data tests).
    pub schema_files: Vec<PathBuf>,
    /// Singular data tests: `*.sql` files under the test paths, when the
    /// folder has a `dbt_project.yml`.
    pub test_files: Vec<PathBuf>,
    /// `dbt_project.yml`'s `vars`.
    pub vars: BTreeMap<String, serde_yaml::Value>,
    /// What floe-host reads from `dbt_project.yml` and ignores, to warn about.
    pub ignored: Vec<String>,
    /// `dbt_project.yml`'s `models: <project>:` tree of folder configurations.
    folder_configs: serde_yaml::Value,
    model_paths: Vec<PathBuf>,
}

#[derive(Deserialize, Default)]
struct DbtProjectFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "model-paths")]
    model_paths: Option<Vec<PathBuf>>,
    #[serde(default, rename = "macro-paths")]
    macro_paths: Option<Vec<PathBuf>>,
    #[serde(default, rename = "test-paths")]
    test_paths: Option<Vec<PathBuf>>,
    #[serde(default)]
    vars: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    models: Option<serde_yaml::Value>,
    #[serde(default)]
    packages: Option<serde_yaml::Value>,
}

impl DbtProject {
    /// Reads `root/dbt_project.yml` when there is one and scans the model and
    /// macro paths. Problems are errors against the file that has them.
    pub fn open(root: &Path) -> Result<DbtProject, ConfigError> {
        let file_path = root.join("dbt_project.yml");
        let is_dbt_project = file_path.is_file();
        let file = match std::fs::read_to_string(&file_path) {
            Ok(text) => serde_yaml::from_str::<DbtProjectFile>(&text).map_err(|error| {
                let position = error.location().map(|l| (l.line(), l.column()));
                ConfigError::new(&file_path, "", format!("is not a dbt project file floe-host can read: {error}"))
                    .at(position)
                    .help("floe-host reads `model-paths`, `macro-paths` and `vars` from it")
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => DbtProjectFile::default(),
            Err(error) => return Err(ConfigError::new(&file_path, "", format!("cannot read it: {error}"))),
        };
        let mut ignored = Vec::new();
        // Folder configurations apply to this project's models, under its name.
        let folder_configs = match (file.models, &file.name) {
            (Some(serde_yaml::Value::Mapping(mut models)), Some(name)) => {
                models.remove(name.as_str()).unwrap_or(serde_yaml::Value::Null)
            }
            _ => serde_yaml::Value::Null,
        };
        if file.packages.is_some() || root.join("packages.yml").exists() {
            ignored.push(format!(
                "{}: dbt packages are not installed by floe-host; a model that calls a package's macro fails to render",
                root.display()
            ));
        }
        let model_paths: Vec<PathBuf> = file.model_paths.unwrap_or_else(|| vec!["models".into()]);
        let macro_paths: Vec<PathBuf> = file.macro_paths.unwrap_or_else(|| vec!["macros".into()]);
        let mut models: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        let mut macro_files = Vec::new();
        let mut schema_files = Vec::new();
        let mut count = 0;
        for dir in &model_paths {
            for path in scan(&root.join(dir), &mut count)? {
                match (path.file_stem().and_then(|s| s.to_str()), path.extension().and_then(|e| e.to_str())) {
                    (Some(stem), Some("sql" | "py")) => models.entry(stem.to_string()).or_default().push(path),
                    (_, Some("yml" | "yaml")) => schema_files.push(path),
                    _ => {}
                }
            }
        }
        for dir in &macro_paths {
            for path in scan(&root.join(dir), &mut count)? {
                if path.extension().and_then(|e| e.to_str()) == Some("sql") {
                    macro_files.push(path);
                }
            }
        }
        macro_files.sort();
        let mut test_files = Vec::new();
        if is_dbt_project {
            for dir in file.test_paths.unwrap_or_else(|| vec!["tests".into()]) {
                let files = scan(&root.join(dir), &mut count)?;
                test_files.extend(files.into_iter().filter(|p| p.extension().and_then(|e| e.to_str()) == Some("sql")));
            }
            test_files.sort();
        }
        Ok(DbtProject {
            root: root.to_path_buf(),
            models,
            macro_files,
            schema_files,
            test_files,
            vars: file.vars,
            folder_configs,
            ignored,
            model_paths: model_paths.iter().map(|p| root.join(p)).collect(),
        })
    }

    /// Every model, by name, with its files (more than one is an error).
    pub fn models(&self) -> impl Iterator<Item = (&String, &[PathBuf])> {
        self.models.iter().map(|(name, files)| (name, files.as_slice()))
    }

    /// The model file of step `name`: the one `name.sql` under the model
    /// paths. Else a message and a help.
    pub fn find_model(&self, name: &str) -> Result<&Path, (String, String)> {
        let found = self.models.get(name).map(Vec::as_slice).unwrap_or_default();
        match found {
            [one] if one.extension().and_then(|e| e.to_str()) == Some("py") => Err((
                format!("the model `{}` is a Python model, which floe-host does not run", one.display()),
                "rewrite it as a SQL model, or as a `kind: wasm` transform plugin (`floe-host plugin new`)".into(),
            )),
            [one] => Ok(one),
            [] => {
                let searched: Vec<String> = self.model_paths.iter().map(|p| p.display().to_string()).collect();
                Err((
                    format!("no model `{name}.sql` under {}", searched.join(", ")),
                    format!(
                        "name the model file after the step, or give its path: `sql: models/{name}.sql` (relative to \
                         floe.yaml); `dbt_project:` in floe.yaml says where the dbt project is"
                    ),
                ))
            }
            several => {
                let paths: Vec<String> = several.iter().map(|p| p.display().to_string()).collect();
                Err((
                    format!("{} models are named `{name}`: {}", several.len(), paths.join(", ")),
                    "rename all but one, or give the step its file with `sql:`".into(),
                ))
            }
        }
    }
}

impl DbtProject {
    /// The configuration `dbt_project.yml` gives the model at `file`: the
    /// `+key: value` entries (and known config keys) of the `models:` tree
    /// on the path of its folders, deeper folders overriding; `tags` add up.
    pub fn folder_config(&self, file: &Path) -> BTreeMap<String, serde_yaml::Value> {
        let mut config = BTreeMap::new();
        let Some(folders) = self.model_paths.iter().find_map(|root| file.strip_prefix(root).ok()) else {
            return config;
        };
        let folders: Vec<&str> =
            folders.parent().map(|p| p.iter().filter_map(|c| c.to_str()).collect()).unwrap_or_default();
        let mut node = &self.folder_configs;
        let mut depth = 0;
        loop {
            let Some(map) = node.as_mapping() else { break };
            for (key, value) in map {
                let Some(key) = key.as_str() else { continue };
                let name = match key.strip_prefix('+') {
                    Some(name) => name,
                    None if CONFIG_KEYS.contains(&key) && !value.is_mapping() => key,
                    None => continue,
                };
                if name == "tags" {
                    let tags = config.entry("tags".to_string()).or_insert(serde_yaml::Value::Sequence(Vec::new()));
                    if let serde_yaml::Value::Sequence(all) = tags {
                        match value {
                            serde_yaml::Value::Sequence(more) => all.extend(more.iter().cloned()),
                            one => all.push(one.clone()),
                        }
                    }
                } else {
                    config.insert(name.to_string(), value.clone());
                }
            }
            let Some(folder) = folders.get(depth) else { break };
            node = map.get(*folder).unwrap_or(&serde_yaml::Value::Null);
            depth += 1;
        }
        config
    }
}

/// Config keys dbt also takes without a `+` in `dbt_project.yml`.
const CONFIG_KEYS: &[&str] = &[
    "materialized",
    "schema",
    "tags",
    "unique_key",
    "incremental_strategy",
    "partition_by",
    "on_schema_change",
    "enabled",
    "alias",
    "pre-hook",
    "post-hook",
    "docs",
    "meta",
    "persist_docs",
    "grants",
    "contract",
];

/// Every file under `dir` (none if it does not exist), without following
/// symbolic links to folders, at most [`MAX_DEPTH`] deep, sorted.
fn scan(dir: &Path, count: &mut usize) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(ConfigError::new(&dir, "", format!("cannot list the folder: {error}"))),
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() && depth < MAX_DEPTH {
                pending.push((entry.path(), depth + 1));
            } else if kind.is_file() {
                *count += 1;
                if *count > MAX_FILES {
                    return Err(ConfigError::new(
                        &dir,
                        "",
                        format!("the dbt project's model and macro folders hold more than {MAX_FILES} files"),
                    )
                    .help("point `dbt_project:` in floe.yaml at the dbt project folder, not at a data folder"));
                }
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_models_by_name_and_reads_the_project_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sql/silver")).unwrap();
        std::fs::create_dir_all(root.join("sql/gold")).unwrap();
        std::fs::write(root.join("sql/silver/stg.sql"), "select 1").unwrap();
        std::fs::write(root.join("sql/gold/py_model.py"), "def model(dbt, s): pass").unwrap();
        std::fs::write(root.join("sql/gold/twice.sql"), "").unwrap();
        std::fs::write(root.join("sql/silver/twice.sql"), "").unwrap();
        std::fs::write(root.join("dbt_project.yml"), "name: x\nmodel-paths: [sql]\nvars: {region: EU}\n").unwrap();
        let project = DbtProject::open(root).unwrap();
        assert_eq!(project.find_model("stg").unwrap(), root.join("sql/silver/stg.sql"));
        assert!(project.find_model("py_model").unwrap_err().0.contains("Python model"));
        assert!(project.find_model("twice").unwrap_err().0.starts_with("2 models are named `twice`"));
        assert!(project.find_model("nope").unwrap_err().0.contains("no model `nope.sql` under"));
        assert_eq!(project.vars["region"], serde_yaml::Value::from("EU"));
        assert!(project.macro_files.is_empty());
    }

    #[test]
    fn folder_configs_apply_down_the_model_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("models/silver/deep")).unwrap();
        std::fs::write(root.join("models/silver/deep/m.sql"), "select 1").unwrap();
        let yaml = [
            "name: proj",
            "models:",
            "  proj:",
            "    +materialized: table",
            "    +tags: [a]",
            "    silver:",
            "      schema: silver",
            "      deep:",
            "        +materialized: incremental",
            "        +tags: b",
            "  other_package:",
            "    +materialized: view",
        ];
        std::fs::write(root.join("dbt_project.yml"), yaml.join("\n")).unwrap();
        let project = DbtProject::open(root).unwrap();
        let config = project.folder_config(&root.join("models/silver/deep/m.sql"));
        let text = |k: &str| serde_yaml::to_string(&config[k]).unwrap().trim().to_string();
        assert_eq!((text("materialized"), text("schema")), ("incremental".into(), "silver".into()));
        assert_eq!(text("tags"), "- a\n- b");
        assert!(project.ignored.is_empty(), "{:?}", project.ignored);
    }
}
