//! dbt-style SQL models. A `sql` step's model is Jinja, rendered at plan
//! time (so `validate` catches a broken one) with dbt's `ref`, `source`,
//! `config`, `var`, `env_var`, `is_incremental`, `this`, `target` and the
//! project's macros; its `config(...)` sets the step's write mode,
//! partitioning and tags. A model without Jinja renders to itself.

pub mod data_tests;
mod jinja;
mod model_config;
mod project;
mod source_map;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use model_config::ModelSettings;
pub use project::DbtProject;
pub use source_map::{SourceMap, line_column, offset_of};

use crate::config::{ConfigError, Project};

/// Substrings of environment variable names that say they hold a secret.
const SECRET_WORDS: &[&str] = &["SECRET", "PASSWORD", "PASSWD", "TOKEN", "CREDENTIAL", "PRIVATE"];

/// One rendered model.
#[derive(Debug)]
pub struct Model {
    pub file: PathBuf,
    /// The SQL for a run that replaces or creates the table.
    pub query: String,
    /// For `materialized='incremental'` models that ask `is_incremental()`:
    /// the SQL for a run whose table exists (it may read the table itself).
    pub incremental: Option<String>,
    pub settings: ModelSettings,
    /// Maps places in `query` back to the model file.
    pub source_map: SourceMap,
}

/// Everything a model renders against, shared by the models of a plan.
pub struct Models {
    project: DbtProject,
    /// Macro templates: (template name, source, macro names), and each
    /// template's file.
    macros: Vec<(String, String, Vec<String>)>,
    macro_files: BTreeMap<String, PathBuf>,
    /// `--vars`, floe.yaml's `vars`, dbt_project.yml's `vars`: first wins.
    vars: [BTreeMap<String, serde_yaml::Value>; 3],
    env_vars: Vec<String>,
    target_name: String,
    /// Step name to layer.
    tables: BTreeMap<String, String>,
    layers: Vec<String>,
    /// dbt data tests from the schema files, by step name.
    tests: BTreeMap<String, Vec<data_tests::DataTest>>,
    warnings: Vec<String>,
}

impl Models {
    /// Opens the dbt project and reads its macros. Problems with either, and
    /// with the platform's `models.env_vars`, are errors.
    pub fn open(project: &Project, layers: &[&str]) -> Result<Models, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let root = match &project.floe.dbt_project {
            Some(folder) => project.root.join(folder),
            None => project.root.clone(),
        };
        if project.floe.dbt_project.is_some() && !root.is_dir() {
            let position = project.locate_in_floe("dbt_project");
            errors.push(
                ConfigError::new(&project.floe_path, "dbt_project", format!("`{}` is not a folder", root.display()))
                    .at(position)
                    .help("give the dbt project folder (the one with `models/`), relative to floe.yaml"),
            );
        }
        let dbt = DbtProject::open(&root).unwrap_or_else(|error| {
            errors.push(error);
            DbtProject::default()
        });
        let mut macros = Vec::new();
        let mut macro_files = BTreeMap::new();
        let mut defined: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in &dbt.macro_files {
            let source = match std::fs::read_to_string(path) {
                Ok(source) => source,
                Err(error) => {
                    errors.push(ConfigError::new(path, "", format!("cannot read the macro file: {error}")));
                    continue;
                }
            };
            let names = jinja::macro_names(&source);
            for name in &names {
                if jinja::BUILTINS.contains(&name.as_str()) {
                    errors.push(
                        ConfigError::new(
                            path,
                            "",
                            format!("macro `{name}` has the name of a function floe-host provides"),
                        )
                        .help("rename the macro"),
                    );
                } else if let Some(first) = defined.insert(name.clone(), path.clone()) {
                    errors.push(
                        ConfigError::new(path, "", format!("macro `{name}` is also defined in {}", first.display()))
                            .help("macros share one namespace, as in dbt: rename one of them"),
                    );
                }
            }
            let template = path.strip_prefix(&root).unwrap_or(path).display().to_string();
            macro_files.insert(template.clone(), path.clone());
            macros.push((template, source, names));
        }
        let env_vars = project.platform.models.env_vars.clone();
        let secret_vars: Vec<String> = project.platform.secret_refs().iter().map(|(_, r)| r.env_var()).collect();
        for (i, name) in env_vars.iter().enumerate() {
            let upper = name.to_ascii_uppercase();
            let secret = secret_vars.contains(name)
                || SECRET_WORDS.iter().any(|w| upper.contains(w))
                || upper.ends_with("_KEY")
                || upper.ends_with("_KEY_ID");
            if secret {
                let key = format!("models.env_vars[{i}]");
                errors.push(
                    ConfigError::new(project.platform_display(), key.clone(), format!("`{name}` may hold a secret"))
                        .at(project.locate_in_platform(&key))
                        .help(
                            "models render to SQL that is logged, traced and sent as lineage: never let them read \
                             a secret; credentials go in `secret_ref`s of catalog and storage profiles",
                        ),
                );
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let floe_vars = project.floe.vars.clone();
        let (tests, mut warnings) = data_tests::read(&dbt.schema_files);
        warnings.splice(0..0, dbt.ignored.iter().cloned());
        for name in tests.keys().filter(|name| !project.floe.transforms.iter().any(|t| t.name.as_str() == *name)) {
            warnings.push(format!("the schema files have data tests for `{name}`, which is no step of this pipeline"));
        }
        Ok(Models {
            tests,
            warnings,
            vars: [project.cli_vars.clone(), floe_vars, dbt.vars.clone()],
            project: dbt,
            macros,
            macro_files,
            env_vars,
            target_name: project.target_name.clone(),
            tables: project.floe.transforms.iter().map(|t| (t.name.to_string(), t.layer.to_string())).collect(),
            layers: layers.iter().map(|l| l.to_string()).collect(),
        })
    }

    /// Warnings about the dbt project itself (what floe-host ignores in it).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The dbt data tests on step `name`'s output.
    pub fn tests_of(&self, name: &str) -> Vec<data_tests::DataTest> {
        self.tests.get(name).cloned().unwrap_or_default()
    }

    /// The model file of a step: `sql:` (relative to floe.yaml), else the
    /// model named like the step. Errors are (message, help).
    pub fn model_file(&self, root: &Path, step: &str, sql: Option<&Path>) -> Result<PathBuf, (String, String)> {
        match sql {
            Some(file) => Ok(root.join(file)),
            None => self.project.find_model(step).map(Path::to_path_buf),
        }
    }

    /// Renders step `name`'s model `source` from `file`, and reads its config.
    pub fn render(&self, name: &str, layer: &str, file: &Path, source: &str) -> Result<Model, Vec<ConfigError>> {
        let layers: Vec<&str> = self.layers.iter().map(String::as_str).collect();
        let vars: Vec<&BTreeMap<String, serde_yaml::Value>> = self.vars.iter().collect();
        let ctx = jinja::Context {
            name,
            layer,
            tables: &self.tables,
            layers: &layers,
            vars: &vars,
            env_vars: &self.env_vars,
            target_name: &self.target_name,
            macros: &self.macros,
        };
        let template = file.display().to_string();
        let located = |error: jinja::RenderError| self.locate(error, name, &template, file, source);
        let (query, recorded, stretches) =
            jinja::render(&ctx, &template, source, false).map_err(|e| vec![located(e)])?;
        let settings = model_config::interpret(&recorded.config, name).map_err(|messages| {
            let position = config_position(source);
            messages
                .into_iter()
                .map(|m| ConfigError::new(file, "", format!("model `{name}`: {m}")).at(position))
                .collect::<Vec<_>>()
        })?;
        let incremental = if settings.incremental && recorded.asked_incremental {
            Some(jinja::render(&ctx, &template, source, true).map_err(|e| vec![located(e)])?.0)
        } else {
            None
        };
        let source_map = SourceMap { source: source.to_string(), stretches };
        Ok(Model { file: file.to_path_buf(), query, incremental, settings, source_map })
    }

    /// A rendering error as a configuration error against the file it is in
    /// (the model's, or a macro file's), at its line and column.
    fn locate(&self, error: jinja::RenderError, model: &str, template: &str, file: &Path, source: &str) -> ConfigError {
        let (path, text) = match error.template.as_deref() {
            Some(name) if name != template => match self.macro_files.get(name) {
                Some(path) => {
                    let text = self.macros.iter().find(|(t, ..)| t == name).map(|(_, s, _)| s.as_str());
                    (path.clone(), text.unwrap_or_default())
                }
                None => (file.to_path_buf(), source),
            },
            _ => (file.to_path_buf(), source),
        };
        let position = match (error.line, &error.byte_range) {
            (_, Some(range)) if range.start <= text.len() && text.is_char_boundary(range.start) => {
                let before = &text[..range.start];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                Some((line, column))
            }
            (Some(line), _) => Some((line, 1)),
            _ => None,
        };
        let in_macro = if path == file { "" } else { " (in a macro it calls)" };
        let error_at = ConfigError::new(path, "", format!("model `{model}`{in_macro}: {}", error.message)).at(position);
        match error.kind {
            Some(minijinja::ErrorKind::SyntaxError) => error_at.help(
                "models are Jinja, as in dbt: every `{% if %}`, `{% for %}` and `{% macro %}` needs its `{% end… %}`, \
                 every `{{` its `}}`",
            ),
            Some(minijinja::ErrorKind::UndefinedError | minijinja::ErrorKind::UnknownFunction) => error_at.help(
                "models may use ref, source, config, var, env_var, is_incremental, this, target and the macros of \
                 the dbt project's `macros/` folder; dbt packages are not installed",
            ),
            _ => error_at,
        }
    }
}

/// Where a model calls `config(`, for errors about its configuration.
fn config_position(source: &str) -> Option<(usize, usize)> {
    source.lines().enumerate().find_map(|(i, line)| line.find("config(").map(|c| (i + 1, c + 1)))
}
