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

use crate::config::{ConfigError, Project, Transform};

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
    /// Whether models that floe.yaml does not list are steps too (when it
    /// names its `dbt_project`).
    discover: bool,
}

impl Models {
    /// Opens the dbt project and reads its macros. Problems with either, and
    /// with the platform's `models.env_vars`, are errors.
    pub fn open(project: &Project) -> Result<Models, Vec<ConfigError>> {
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
        Ok(Models {
            tests,
            warnings,
            vars: [project.cli_vars.clone(), floe_vars, dbt.vars.clone()],
            project: dbt,
            macros,
            macro_files,
            env_vars,
            target_name: project.target_name.clone(),
            tables: BTreeMap::new(),
            layers: Vec::new(),
            discover: project.floe.dbt_project.is_some(),
        })
    }

    /// The steps of the pipeline, and the layers a `source()` may name:
    /// what `ref` and `source` resolve against.
    pub fn set_pipeline(&mut self, transforms: &[Transform], layers: &[&str]) {
        self.tables = transforms.iter().map(|t| (t.name.to_string(), t.layer.to_string())).collect();
        self.layers = layers.iter().map(|l| l.to_string()).collect();
        for name in self.tests.keys().filter(|name| !self.tables.contains_key(*name)) {
            self.warnings
                .push(format!("the schema files have data tests for `{name}`, which is no step of this pipeline"));
        }
    }

    /// With `dbt_project:` in floe.yaml, every model of the project that no
    /// step names becomes a `sql` step, as `dbt run` runs them all. Its layer
    /// is the `schema` of its folder in `dbt_project.yml`, or of its
    /// `config(schema='...')`.
    pub fn discover(&self, listed: &[Transform]) -> Result<Vec<Transform>, Vec<ConfigError>> {
        if !self.discover {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let mut errors = Vec::new();
        for (name, files) in self.project.models() {
            if listed.iter().any(|t| t.name.as_str() == name) {
                continue;
            }
            let [file] = files else {
                let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
                errors.push(
                    ConfigError::new(
                        &files[0],
                        "",
                        format!("{} models are named `{name}`: {}", files.len(), paths.join(", ")),
                    )
                    .help("rename all but one"),
                );
                continue;
            };
            if file.extension().and_then(|e| e.to_str()) == Some("py") {
                errors.push(
                    ConfigError::new(file, "", "a Python model, which floe-host does not run")
                        .help("rewrite it as a SQL model, or as a `kind: wasm` transform plugin; or delete it"),
                );
                continue;
            }
            let layer = self
                .project
                .folder_config(file)
                .get("schema")
                .and_then(|v| v.as_str().map(str::to_string))
                .or_else(|| std::fs::read_to_string(file).ok().and_then(|text| config_schema(&text)));
            let (Some(layer), Ok(ident)) = (layer, crate::config::Ident::try_from(name.clone())) else {
                errors.push(
                    ConfigError::new(file, "", format!("model `{name}` has no layer floe-host can tell before rendering it"))
                        .help(format!(
                            "give it `{{{{ config(schema='silver') }}}}`, a `+schema` for its folder in dbt_project.yml, or \
                             list it in floe.yaml: `- {{name: {name}, type: dbt, schema: silver}}` (its name must be a \
                             table name: [a-z_][a-z0-9_]*)"
                        )),
                );
                continue;
            };
            match crate::config::Ident::try_from(layer.clone()) {
                Ok(layer) => found.push(Transform::model(ident, layer, file.clone())),
                Err(_) => errors.push(
                    ConfigError::new(file, "", format!("`{layer}` is not a layer name"))
                        .help("a layer is a name such as `silver`"),
                ),
            }
        }
        if errors.is_empty() { Ok(found) } else { Err(errors) }
    }

    /// Warnings about the dbt project itself (what floe-host ignores in it).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The dbt data tests on step `name`'s output.
    pub fn tests_of(&self, name: &str) -> Vec<data_tests::DataTest> {
        self.tests.get(name).cloned().unwrap_or_default()
    }

    /// The singular test files of the dbt project.
    pub fn singular_test_files(&self) -> &[PathBuf] {
        &self.project.test_files
    }

    /// Renders the singular test `file` as a model is rendered: its query,
    /// a map back to the file, and its `config(severity=...)`. Other config
    /// keys are named in `warnings`.
    pub fn render_test(
        &self,
        file: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<(String, SourceMap, data_tests::Severity), Vec<ConfigError>> {
        let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or("test");
        let source = std::fs::read_to_string(file)
            .map_err(|error| vec![ConfigError::new(file, "", format!("cannot read the singular test: {error}"))])?;
        let template = file.display().to_string();
        let rendered = self.render_as(name, "tests", &BTreeMap::new(), &template, &source, false);
        let (query, recorded, stretches) = rendered.map_err(|e| {
            let mut error = self.locate(e, name, &template, file, &source);
            error.message = error.message.replacen("model `", "singular test `", 1);
            vec![error]
        })?;
        let mut severity = data_tests::Severity::Error;
        for (key, value) in &recorded.config {
            match (key.as_str(), value.as_str()) {
                ("severity", Some(level)) if level.eq_ignore_ascii_case("warn") => {
                    severity = data_tests::Severity::Warn
                }
                ("severity", Some(level)) if level.eq_ignore_ascii_case("error") => {}
                ("severity", _) => {
                    let position = config_position(&source);
                    return Err(vec![
                        ConfigError::new(
                            file,
                            "",
                            format!("singular test `{name}`: severity must be 'warn' or 'error'"),
                        )
                        .at(position),
                    ]);
                }
                (other, _) => warnings.push(format!(
                    "{}: config key `{other}` of the singular test `{name}` is ignored by floe-host (it reads \
                     `severity`)",
                    file.display()
                )),
            }
        }
        Ok((query, SourceMap { source, stretches }, severity))
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
        let preset = self.project.folder_config(file);
        let template = file.display().to_string();
        let located = |error: jinja::RenderError| self.locate(error, name, &template, file, source);
        let (query, recorded, stretches) =
            self.render_as(name, layer, &preset, &template, source, false).map_err(|e| vec![located(e)])?;
        let settings = model_config::interpret(&recorded.config, name).map_err(|messages| {
            let position = config_position(source);
            messages
                .into_iter()
                .map(|m| ConfigError::new(file, "", format!("model `{name}`: {m}")).at(position))
                .collect::<Vec<_>>()
        })?;
        let incremental = if settings.incremental && recorded.asked_incremental {
            Some(self.render_as(name, layer, &preset, &template, source, true).map_err(|e| vec![located(e)])?.0)
        } else {
            None
        };
        let source_map = SourceMap { source: source.to_string(), stretches };
        Ok(Model { file: file.to_path_buf(), query, incremental, settings, source_map })
    }

    /// Renders `source` as the template `template` of `name` in `layer`,
    /// with the folder configuration `preset`, against this project.
    fn render_as(
        &self,
        name: &str,
        layer: &str,
        preset: &BTreeMap<String, serde_yaml::Value>,
        template: &str,
        source: &str,
        incremental: bool,
    ) -> Result<(String, jinja::Recorded, Vec<source_map::Stretch>), jinja::RenderError> {
        let layers: Vec<&str> = self.layers.iter().map(String::as_str).collect();
        let vars: Vec<&BTreeMap<String, serde_yaml::Value>> = self.vars.iter().collect();
        let ctx = jinja::Context {
            preset,
            name,
            layer,
            tables: &self.tables,
            layers: &layers,
            vars: &vars,
            env_vars: &self.env_vars,
            target_name: &self.target_name,
            macros: &self.macros,
        };
        jinja::render(&ctx, template, source, incremental)
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
            (_, Some(range)) => Some(line_column(text, range.start)),
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

/// `schema='silver'` in a model's `config(...)`, read without rendering it.
fn config_schema(text: &str) -> Option<String> {
    let config = &text[text.find("config(")?..];
    let config = &config[..config.find(')').unwrap_or(config.len())];
    let after = config[config.find("schema")? + "schema".len()..].trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let value = &after[1..];
    Some(value[..value.find(quote)?].to_string())
}

/// Where a model calls `config(`, for errors about its configuration.
fn config_position(source: &str) -> Option<(usize, usize)> {
    source.lines().enumerate().find_map(|(i, line)| line.find("config(").map(|c| (i + 1, c + 1)))
}
