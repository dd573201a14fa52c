//! `plugin new NAME --kind ingest|transform|sql --lang rust|js`: a
//! ready-to-build plugin project that depends on nothing but its registry
//! (crates.io, npm) and what it is given: the SDK and the WIT come from the
//! binary (`sdk_files.rs`, `js_templates.rs`), unless `--sdk` names a
//! checkout of the Rust SDK to depend on.

use std::path::{Path, PathBuf};

use super::templates::{self, Kind};
use super::{js_templates, py_templates, sdk_files};

/// The language a new plugin is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// A crate on the Rust SDK, built with cargo for wasm32-wasip2.
    Rust,
    /// A module on the JavaScript SDK (apache-arrow), built with esbuild and componentize-js.
    Js,
    /// An app on the Python SDK, built with componentize-py.
    Python,
}

/// Why a crate could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("`{0}` is not a valid crate name: use lower-case letters, digits and `-`, starting with a letter")]
    Name(String),
    #[error("{} already exists; choose another name or directory", .0.display())]
    Exists(PathBuf),
    #[error("--sdk {}: no plugin SDK there (no Cargo.toml); pass floe-host's plugins/sdk, or leave --sdk out to use the SDK built into floe-host", .0.display())]
    NoSdk(PathBuf),
    #[error(
        "--sdk names a Rust SDK checkout; a JavaScript or Python plugin carries its SDK in vendor/ (leave --sdk out)"
    )]
    SdkForJs,
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
pub fn scaffold(
    name: &str,
    kind: Kind,
    lang: Lang,
    dir: &Path,
    sdk: Option<&Path>,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ScaffoldError::Name(name.to_string()));
    }
    if lang != Lang::Rust && sdk.is_some() {
        return Err(ScaffoldError::SdkForJs);
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
    let files = match lang {
        Lang::Rust => rust_files(name, kind, &root, sdk.as_deref()),
        Lang::Js => js_files(name, kind, &root),
        Lang::Python => py_files(name, kind, &root),
    };
    for (path, text) in &files {
        let parent = path.parent().expect("files are inside the project");
        std::fs::create_dir_all(parent)
            .map_err(|source| ScaffoldError::Write { path: parent.to_path_buf(), source })?;
        std::fs::write(path, text).map_err(|source| ScaffoldError::Write { path: path.clone(), source })?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

/// A crate on the Rust SDK: vendored unless `sdk` names a checkout.
fn rust_files(name: &str, kind: Kind, root: &Path, sdk: Option<&Path>) -> Vec<(PathBuf, String)> {
    let sdk_path = sdk.map_or_else(|| "vendor/floe-plugin-sdk".to_string(), |p| p.display().to_string());
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
    files
}

/// A module on the JavaScript SDK, with its build script and lockfile.
fn js_files(name: &str, kind: Kind, root: &Path) -> Vec<(PathBuf, String)> {
    vec![
        (root.join("package.json"), js_templates::package_json(name, kind)),
        (root.join("package-lock.json"), js_templates::package_lock(name)),
        (root.join("src/plugin.js"), js_templates::plugin_js(kind).replace("\"NAME\"", &format!("\"{name}\""))),
        (root.join("README.md"), js_templates::readme(name, kind)),
        (root.join("build.mjs"), js_templates::BUILD.to_string()),
        (root.join("vendor/floe-plugin.js"), js_templates::SDK.to_string()),
        (root.join("wit/floe-plugin.wit"), sdk_files::WIT.to_string()),
        (root.join(".gitignore"), "/node_modules\n/*.wasm\n".to_string()),
    ]
}

/// An app on the Python SDK, with its build script and pinned build tool.
fn py_files(name: &str, kind: Kind, root: &Path) -> Vec<(PathBuf, String)> {
    vec![
        (root.join("app.py"), py_templates::app_py(kind).replace("\"NAME\"", &format!("\"{name}\""))),
        (root.join("requirements.txt"), py_templates::requirements()),
        (root.join("build.sh"), py_templates::build_sh(name, kind)),
        (root.join("README.md"), py_templates::readme(name, kind)),
        (root.join("vendor/floe_plugin.py"), py_templates::SDK.to_string()),
        (root.join("wit/floe-plugin.wit"), sdk_files::WIT.to_string()),
        (root.join(".gitignore"), "/*.wasm\n__pycache__/\n".to_string()),
    ]
}
