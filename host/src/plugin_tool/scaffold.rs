//! `plugin new NAME --kind ingest|transform|sql`: a ready-to-build plugin
//! crate that depends on nothing but crates.io and what it is given: the
//! SDK and the WIT come from the binary (`sdk_files.rs`), unless `--sdk`
//! names a checkout of the SDK to depend on.

use std::path::{Path, PathBuf};

use super::sdk_files;
use super::templates::{self, Kind};

/// Why a crate could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("`{0}` is not a valid crate name: use lower-case letters, digits and `-`, starting with a letter")]
    Name(String),
    #[error("{} already exists; choose another name or directory", .0.display())]
    Exists(PathBuf),
    #[error("--sdk {}: no plugin SDK there (no Cargo.toml); pass floe-host's plugins/sdk, or leave --sdk out to use the SDK built into floe-host", .0.display())]
    NoSdk(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Creates `<dir>/<name>/`, a crate for a plugin of `kind`, and returns the
/// files written. With `sdk`, the crate depends on that SDK checkout;
/// without, on a copy of the SDK built into floe-host, written under
/// `vendor/`.
pub fn scaffold(name: &str, kind: Kind, dir: &Path, sdk: Option<&Path>) -> Result<Vec<PathBuf>, ScaffoldError> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ScaffoldError::Name(name.to_string()));
    }
    let sdk = match sdk {
        Some(path) => {
            let path = std::fs::canonicalize(path).map_err(|_| ScaffoldError::NoSdk(path.to_path_buf()))?;
            if !path.join("Cargo.toml").is_file() {
                return Err(ScaffoldError::NoSdk(path));
            }
            Some(path)
        }
        None => None,
    };
    let root = dir.join(name);
    if root.exists() {
        return Err(ScaffoldError::Exists(root));
    }
    let sdk_path = sdk.as_ref().map_or_else(|| "vendor/floe-plugin-sdk".to_string(), |p| p.display().to_string());
    let mut files = vec![
        (root.join("Cargo.toml"), templates::cargo_toml(name, &sdk_path)),
        (root.join("src/lib.rs"), templates::lib_rs(kind).to_string()),
        (root.join("README.md"), templates::readme(name, kind)),
        (root.join(".gitignore"), "/target\n".to_string()),
    ];
    if sdk.is_none() {
        let vendor = root.join("vendor/floe-plugin-sdk");
        files.push((vendor.join("Cargo.toml"), sdk_files::sdk_cargo_toml()));
        for (file, text) in sdk_files::SDK_SOURCES {
            files.push((vendor.join("src").join(file), text.to_string()));
        }
        files.push((root.join("wit/floe-plugin.wit"), sdk_files::WIT.to_string()));
    }
    for (path, text) in &files {
        let parent = path.parent().expect("files are inside the crate");
        std::fs::create_dir_all(parent)
            .map_err(|source| ScaffoldError::Write { path: parent.to_path_buf(), source })?;
        std::fs::write(path, text).map_err(|source| ScaffoldError::Write { path: path.clone(), source })?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}
