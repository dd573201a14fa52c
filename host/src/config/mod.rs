//! The two configuration tiers: `floe.yaml` (what flows where) and
//! `platform.yaml` (where and how), read and parsed strictly.
//!
//! Cross-file checks (profiles, files, SQL references) happen in `plan`, which
//! turns a [`Project`] into an ordered, fully resolved plan.

mod error;
mod floe;
mod ident;
mod platform;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, ConfigErrors};
pub use floe::{FloeFile, PluginRef, Transform, TransformKind, WriteMode};
pub use ident::Ident;
pub use platform::{
    CatalogProfile, ComputeProfile, DuckdbProperties, LayerProfile, PlatformFile, StorageProfile,
};

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
}

impl Project {
    /// Line and column of a key path in floe.yaml, for error messages.
    pub fn locate_in_floe(&self, key: &str) -> Option<(usize, usize)> {
        yaml::locate(&self.floe_text, key)
    }

    /// Line and column of a key path in platform.yaml.
    pub fn locate_in_platform(&self, key: &str) -> Option<(usize, usize)> {
        yaml::locate(&self.platform_text, key)
    }

    /// The file name to show for platform errors.
    pub fn platform_display(&self) -> PathBuf {
        self.platform_path.clone().unwrap_or_else(|| PathBuf::from("<embedded default platform>"))
    }
}

/// Reads and parses both files.
pub fn load(source: &ConfigSource) -> Result<Project, ConfigErrors> {
    let floe_path = if source.floe.is_dir() { source.floe.join("floe.yaml") } else { source.floe.clone() };
    let root = floe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let root = if root.as_os_str().is_empty() { PathBuf::from(".") } else { root };
    let floe_text = read(&floe_path, "the pipeline file", "pass a project directory or `-f path/to/floe.yaml`")?;

    let mut errors = ConfigErrors::default();
    let floe = match yaml::parse::<FloeFile>(&floe_path, &floe_text) {
        Ok(floe) => Some(floe),
        Err(error) => {
            errors.push(error);
            None
        }
    };

    let state_dir = source.state_dir.clone().unwrap_or_else(|| root.join(".floe"));
    let platform_path = discover_platform(source, &root);
    let (platform_text, platform) = match &platform_path {
        None => (String::new(), Some(PlatformFile::embedded_default(&absolute(&state_dir)))),
        Some(path) => {
            let text = read(path, "the platform file", "check --platform, FLOE_PLATFORM_FILE and FLOE_PLATFORM_ENV")?;
            match yaml::parse::<PlatformFile>(path, &text) {
                Ok(platform) => (text, Some(platform)),
                Err(error) => {
                    errors.push(error);
                    (text, None)
                }
            }
        }
    };

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
        }),
        _ => Err(errors),
    }
}

/// `--platform`, then `FLOE_PLATFORM_FILE`, then `FLOE_PLATFORM_ENV`; none of
/// them means the embedded default.
fn discover_platform(source: &ConfigSource, root: &Path) -> Option<PathBuf> {
    source
        .platform
        .clone()
        .or_else(|| source.platform_file_env.clone())
        .or_else(|| {
            source
                .platform_env
                .as_ref()
                .map(|env| root.join("platform").join(env).join("platform.yaml"))
        })
}

fn read(path: &Path, what: &str, help: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| {
        ConfigError::new(path, "", format!("cannot read {what}: {error}")).help(help.to_string())
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
