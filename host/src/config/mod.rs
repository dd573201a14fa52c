//! The two configuration tiers: `floe.yaml` (what flows where) and
//! `platform.yaml` (where and how), read and parsed strictly.
//!
//! Cross-file checks (profiles, files, SQL references) happen in `plan`, which
//! turns a [`Project`] into an ordered, fully resolved plan.

mod compat;
mod error;
mod floe;
mod ident;
mod partition;
mod platform;
mod scan;
mod secret;
mod units;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use error::{ConfigError, ConfigErrors};
pub use floe::{FloeFile, PluginRef, SchemaEvolution, Transform, TransformKind, WriteMode};
pub use ident::Ident;
pub use partition::{CivilDate, PartitionField, PartitionTransform};
pub use platform::{
    CatalogCredentials, CatalogProfile, ClientId, ComputeProfile, DuckdbProperties, LayerProfile, ModelPolicy,
    Observability, PlatformFile, PluginLimits, RestCatalog, SecretField, SqlCatalog, StorageCredentials,
    StorageProfile,
};
pub use secret::{DEFAULT_SECRETS_DIR, Secret, SecretError, SecretRef, SecretSource};
pub use units::{ByteSize, HumanDuration, parse_bytes};

use compat::FileKind;

/// Where the configuration comes from, as given on the command line and in
/// the environment.
#[derive(Clone, Debug, Default)]
pub struct ConfigSource {
    /// A project directory holding `floe.yaml`, or the file itself.
    pub floe: PathBuf,
    /// `--platform`.
    pub platform: Option<PathBuf>,
    /// `FLOE_PLATFORM_FILE`.
    pub platform_file_env: Option<PathBuf>,
    /// `FLOE_PLATFORM_ENV`: selects `platform/<env>/platform.yaml` next to floe.yaml.
    pub platform_env: Option<String>,
    /// `--state-dir` / `FLOE_STATE_DIR`: where the embedded default keeps its
    /// catalog and warehouse. Defaults to `.floe/` next to floe.yaml.
    pub state_dir: Option<PathBuf>,
    /// `--vars`: a YAML or JSON map for `{{ var('name') }}` in SQL models.
    pub vars: Option<String>,
}

/// Both files, parsed.
#[derive(Clone, Debug)]
pub struct Project {
    /// The directory of floe.yaml; relative paths in it resolve from here.
    pub root: PathBuf,
    pub floe_path: PathBuf,
    pub floe_text: String,
    pub floe: FloeFile,
    /// `None` when the embedded default applies.
    pub platform_path: Option<PathBuf>,
    pub platform_text: String,
    pub platform: PlatformFile,
    pub state_dir: PathBuf,
    /// `--vars`, parsed: they override floe.yaml's `vars`.
    pub cli_vars: BTreeMap<String, serde_yaml::Value>,
    /// The name models see as `{{ target.name }}`: the platform environment
    /// (`FLOE_PLATFORM_ENV`), else `default`.
    pub target_name: String,
}

impl Project {
    /// Line and column of a key path in floe.yaml, for error messages.
    pub fn locate_in_floe(&self, key: &str) -> Option<(usize, usize)> {
        yaml::locate_or_parent(&self.floe_text, key)
    }

    /// Line and column of a key path in platform.yaml.
    pub fn locate_in_platform(&self, key: &str) -> Option<(usize, usize)> {
        yaml::locate_or_parent(&self.platform_text, key)
    }

    /// The file name to show for platform errors.
    pub fn platform_display(&self) -> PathBuf {
        self.platform_path.clone().unwrap_or_else(|| PathBuf::from("<embedded default platform>"))
    }
}

/// Reads and parses both files, reporting every problem found in either.
pub fn load(source: &ConfigSource) -> Result<Project, ConfigErrors> {
    let floe_path = if source.floe.is_dir() { source.floe.join("floe.yaml") } else { source.floe.clone() };
    let root = floe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let root = if root.as_os_str().is_empty() { PathBuf::from(".") } else { root };
    let floe_text = read(&floe_path, "the pipeline file", "pass a project directory or `-f path/to/floe.yaml`")?;

    let mut errors = ConfigErrors::default();
    let floe = parse_file::<FloeFile>(&floe_path, &floe_text, FileKind::Pipeline, &mut errors);

    let state_dir = source.state_dir.clone().unwrap_or_else(|| root.join(".floe"));
    let platform_path = discover_platform(source, &root);
    let (platform_text, platform) = match &platform_path {
        None => (String::new(), Some(PlatformFile::embedded_default(&absolute(&state_dir)))),
        Some(path) => {
            match read(path, "the platform file", "check --platform, FLOE_PLATFORM_FILE and FLOE_PLATFORM_ENV") {
                Ok(text) => {
                    let mut platform = parse_file::<PlatformFile>(path, &text, FileKind::Platform, &mut errors);
                    if let Some(platform) = &mut platform {
                        let base = absolute(path.parent().unwrap_or(Path::new(".")));
                        platform.resolve_paths(&base);
                    }
                    (text, platform)
                }
                Err(error) => {
                    errors.push(error);
                    (String::new(), None)
                }
            }
        }
    };

    let cli_vars = match source.vars.as_deref().map(parse_vars).transpose() {
        Ok(vars) => vars.unwrap_or_default(),
        Err(error) => {
            errors.push(error);
            BTreeMap::new()
        }
    };
    let target_name = source.platform_env.clone().unwrap_or_else(|| "default".to_string());
    match (floe, platform) {
        (Some(floe), Some(platform)) if errors.is_empty() => Ok(Project {
            root,
            floe_path,
            floe_text,
            floe,
            platform_path,
            platform_text,
            platform,
            state_dir,
            cli_vars,
            target_name,
        }),
        _ => Err(errors),
    }
}

/// Parses a pipeline and a platform file given as text, as `load` does
/// (without reading files or resolving paths), and renders every error: what
/// the `config_files` fuzz target and the corpus replay run. Must never
/// panic, whatever the texts are.
pub fn check_texts(floe: &str, platform: &str) -> Result<(), String> {
    let mut errors = ConfigErrors::default();
    let parsed_floe = parse_file::<FloeFile>(Path::new("floe.yaml"), floe, FileKind::Pipeline, &mut errors);
    let parsed_platform =
        parse_file::<PlatformFile>(Path::new("platform.yaml"), platform, FileKind::Platform, &mut errors);
    if let Some(mut platform) = parsed_platform {
        platform.resolve_paths(Path::new("/project"));
        let _ = platform.secret_refs();
    }
    let _ = parsed_floe;
    if errors.is_empty() { Ok(()) } else { Err(errors.to_string()) }
}

/// YAML syntax, then floe-platform keys and literal credentials (collected),
/// then the typed structure (first error).
fn parse_file<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    kind: FileKind,
    errors: &mut ConfigErrors,
) -> Option<T> {
    let mut value = match yaml::parse_value(path, text) {
        Ok(value) => value,
        Err(error) => {
            errors.push(error);
            return None;
        }
    };
    let before = errors.0.len();
    for (key, message) in compat::take_unsupported(kind, &mut value) {
        errors.push(ConfigError::new(path, key.clone(), message).at(yaml::locate_or_parent(text, &key)));
    }
    let findings = match kind {
        FileKind::Pipeline => scan::scan_pipeline(&value),
        FileKind::Platform => scan::scan_platform(&value),
    };
    // Every type error: one per broken step or profile, not only the first.
    let (parsed, typed_errors) = match yaml::from_value::<T>(path, text, value.clone()) {
        Ok(parsed) => (Some(parsed), Vec::new()),
        Err(error) => {
            let sections: &[(&str, yaml::MemberCheck)] = match kind {
                FileKind::Pipeline => {
                    &[("transforms", yaml::member::<floe::Transform>), ("plugins", yaml::member::<floe::PluginRef>)]
                }
                FileKind::Platform => &[
                    ("compute", yaml::member::<ComputeProfile>),
                    ("catalogs", yaml::member::<CatalogProfile>),
                    ("storage", yaml::member::<StorageProfile>),
                    ("layers", yaml::member::<LayerProfile>),
                    ("observability", yaml::field::<platform::Observability>),
                    ("plugins", yaml::field::<platform::PluginLimits>),
                    ("sources", yaml::field::<platform::SourcePolicy>),
                    ("models", yaml::field::<platform::ModelPolicy>),
                ],
            };
            let per_member = yaml::errors_by_member::<T>(path, text, &value, sections);
            (None, if per_member.is_empty() { vec![error] } else { per_member })
        }
    };
    // The typed parse reports literal secrets in secret fields itself, with a
    // sharper message; keep one error per key.
    let typed_keys: Vec<&str> = typed_errors.iter().map(|e| e.key.as_str()).collect();
    for finding in findings.into_iter().filter(|f| !typed_keys.contains(&f.key.as_str())) {
        let help = match kind {
            FileKind::Pipeline => {
                "floe.yaml must never hold credentials: platform engineers put them in platform.yaml \
                                   as `{secret_ref: <name>}` on the catalog or storage profile that needs them"
            }
            FileKind::Platform => {
                "put the value in a Kubernetes Secret or an environment variable and refer to it \
                                   with `{secret_ref: <name>}`"
            }
        };
        let error =
            ConfigError::new(path, finding.key.clone(), finding.reason).at(yaml::locate_or_parent(text, &finding.key));
        errors.push(error.help(help));
    }
    errors.0.extend(typed_errors);
    parsed.filter(|_| errors.0.len() == before)
}

/// `--vars '{start_date: 2024-01-01}'`: a YAML (or JSON) map, as dbt takes it.
fn parse_vars(text: &str) -> Result<BTreeMap<String, serde_yaml::Value>, ConfigError> {
    serde_yaml::from_str::<BTreeMap<String, serde_yaml::Value>>(text).map_err(|error| {
        ConfigError::new("--vars", "", format!("is not a YAML map of names to values: {error}"))
            .help("write for example `--vars '{start_date: 2024-01-01, region: EU}'`")
    })
}

/// `--platform`, then `FLOE_PLATFORM_FILE`, then `FLOE_PLATFORM_ENV`; none of
/// them means the embedded default.
fn discover_platform(source: &ConfigSource, root: &Path) -> Option<PathBuf> {
    source
        .platform
        .clone()
        .or_else(|| source.platform_file_env.clone())
        .or_else(|| source.platform_env.as_ref().map(|env| root.join("platform").join(env).join("platform.yaml")))
}

fn read(path: &Path, what: &str, help: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|error| ConfigError::new(path, "", format!("cannot read {what}: {error}")).help(help.to_string()))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The JSON Schema of floe.yaml, generated from these types (for editors).
pub fn pipeline_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(FloeFile)).expect("a schema serializes")
}

/// The JSON Schema of platform.yaml.
pub fn platform_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(PlatformFile)).expect("a schema serializes")
}

#[cfg(test)]
mod fuzz_corpus {
    /// Every input the `config_files` fuzz target saved (`fuzz/corpus`, and
    /// what once broke it under `fuzz/regressions`) parses or fails with
    /// errors, without a panic; the shipped examples parse.
    #[test]
    fn replays_the_fuzz_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut replayed = 0;
        for dir in ["seeds/config_files", "corpus/config_files", "regressions/config_files"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                // A fuzzer at work may replace files meanwhile.
                let Ok(bytes) = std::fs::read(&path) else { continue };
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let (floe, platform) = text.split_once('\0').unwrap_or((&text, ""));
                let result = super::check_texts(floe, platform);
                if path.file_name().unwrap().to_string_lossy().starts_with("example") {
                    assert_eq!(result, Ok(()), "{}", path.display());
                }
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no fuzz corpus under {}", root.display());
    }
}
