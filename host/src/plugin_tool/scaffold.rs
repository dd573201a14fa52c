//! `plugin new NAME`: a ready-to-build transform plugin crate on the SDK.

use std::path::{Path, PathBuf};

/// Why a crate could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("`{0}` is not a valid crate name: use lower-case letters, digits and `-`, starting with a letter")]
    Name(String),
    #[error("{} already exists; choose another name or directory", .0.display())]
    Exists(PathBuf),
    #[error("cannot find the plugin SDK (plugins/sdk); pass --sdk PATH to a checkout of floe-host's plugins/sdk")]
    NoSdk,
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Creates `<dir>/<name>/` and returns the files written.
pub fn scaffold(name: &str, dir: &Path, sdk: Option<&Path>) -> Result<Vec<PathBuf>, ScaffoldError> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ScaffoldError::Name(name.to_string()));
    }
    let sdk = match sdk {
        Some(path) => path.to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk"),
    };
    let sdk = std::fs::canonicalize(&sdk).map_err(|_| ScaffoldError::NoSdk)?;
    if !sdk.join("Cargo.toml").is_file() {
        return Err(ScaffoldError::NoSdk);
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(ScaffoldError::Exists(root));
    }
    let files = [
        (root.join("Cargo.toml"), cargo_toml(name, &sdk)),
        (root.join("src/lib.rs"), LIB_RS.to_string()),
        (root.join("README.md"), readme(name)),
        (root.join(".gitignore"), "/target\n".to_string()),
    ];
    for (path, text) in &files {
        let parent = path.parent().expect("files are inside the crate");
        std::fs::create_dir_all(parent)
            .map_err(|source| ScaffoldError::Write { path: parent.to_path_buf(), source })?;
        std::fs::write(path, text).map_err(|source| ScaffoldError::Write { path: path.clone(), source })?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

# A plugin is a WebAssembly component: build it with
#   cargo build --release --target wasm32-wasip2
# and find it in target/wasm32-wasip2/release/{lib}.wasm
[lib]
crate-type = ["cdylib"]

[dependencies]
floe-plugin-sdk = {{ path = "{sdk}" }}

[profile.release]
opt-level = 3
lto = true
codegen-units = 1
strip = "debuginfo"

# A standalone crate, not a member of an enclosing workspace.
[workspace]
"#,
        lib = name.replace('-', "_"),
        sdk = sdk.display()
    )
}

fn readme(name: &str) -> String {
    let lib = name.replace('-', "_");
    format!(
        "# {name}\n\nA floe transform plugin. It upper-cases the column named by its `column` config.\n\n\
         ```sh\nrustup target add wasm32-wasip2\ncargo build --release --target wasm32-wasip2\n\
         floe-host plugin inspect target/wasm32-wasip2/release/{lib}.wasm\n\
         floe-host plugin test target/wasm32-wasip2/release/{lib}.wasm --input data.csv --config column=name\n```\n\n\
         In floe.yaml:\n\n```yaml\nplugins:\n  {name}:\n    path: path/to/{lib}.wasm\ntransforms:\n  - name: shouted\n    \
         layer: silver\n    kind: wasm\n    plugin: {name}\n    inputs: [bronze.raw_customers]\n    config: {{column: customer_name}}\n```\n"
    )
}

const LIB_RS: &str = r##"//! A floe transform plugin: upper-cases one string column, batch by batch.
//! Replace the logic in `push`; the SDK handles Arrow IPC, config and the
//! component bindings.

use std::sync::Arc;

use floe_plugin_sdk::arrow_array::StringArray;
use floe_plugin_sdk::arrow_array::cast::AsArray;
use floe_plugin_sdk::prelude::*;

const CONFIG_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "required": ["column"],
  "properties": { "column": { "type": "string", "description": "The Utf8 column to upper-case." } }
}"#;

struct Upper {
    column: usize,
}

impl Upper {
    fn column(config: &Config, input: &SchemaRef) -> Result<usize, PluginError> {
        config.check_keys(&["column"])?;
        let name = config.required_non_empty("column")?;
        let index = input
            .index_of(name)
            .map_err(|_| PluginError::config(format!("`column`: `{name}` is not in the input")))?;
        if input.field(index).data_type() != &DataType::Utf8 {
            return Err(PluginError::config(format!("`column`: `{name}` is not a string column")));
        }
        Ok(index)
    }
}

impl Transform for Upper {
    const CONFIG_SCHEMA: &'static str = CONFIG_SCHEMA;

    fn output_schema(config: &Config, input: &SchemaRef) -> Result<SchemaRef, PluginError> {
        Self::column(config, input)?;
        Ok(input.clone())
    }

    fn open(config: &Config, input: &SchemaRef) -> Result<Self, PluginError> {
        Ok(Upper { column: Self::column(config, input)? })
    }

    fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, PluginError> {
        let mut columns = batch.columns().to_vec();
        let upper: StringArray =
            columns[self.column].as_string::<i32>().iter().map(|v| v.map(str::to_uppercase)).collect();
        columns[self.column] = Arc::new(upper) as ArrayRef;
        Ok(vec![RecordBatch::try_new(batch.schema(), columns)?])
    }
}

export_transform!(Upper);
"##;
