//! The plugin SDK and the WIT contract, embedded in the binary at build time,
//! so that `plugin new` writes a project that builds anywhere (a laptop
//! without this repository, the release image): the SDK goes under
//! `vendor/floe-plugin-sdk/`, the WIT under `wit/`, where the SDK's
//! `wit_bindgen::generate!(path: "../../wit")` finds it.
//!
//! The SDK's `Cargo.toml` inherits its versions from the plugin workspace;
//! [`sdk_cargo_toml`] writes them out from the embedded workspace manifest,
//! so the vendored SDK builds against exactly what `plugins/` builds with.

/// The SDK's sources, by path under `src/`. A unit test checks that every
/// file of `plugins/sdk/src` is here.
pub const SDK_SOURCES: [(&str, &str); 9] = [
    ("lib.rs", include_str!("../../../plugins/sdk/src/lib.rs")),
    ("config.rs", include_str!("../../../plugins/sdk/src/config.rs")),
    ("error.rs", include_str!("../../../plugins/sdk/src/error.rs")),
    ("ingest.rs", include_str!("../../../plugins/sdk/src/ingest.rs")),
    ("ipc.rs", include_str!("../../../plugins/sdk/src/ipc.rs")),
    ("key_set.rs", include_str!("../../../plugins/sdk/src/key_set.rs")),
    ("lines.rs", include_str!("../../../plugins/sdk/src/lines.rs")),
    ("log.rs", include_str!("../../../plugins/sdk/src/log.rs")),
    ("transform.rs", include_str!("../../../plugins/sdk/src/transform.rs")),
];

/// `wit/floe-plugin.wit`: the contract between host and plugins.
pub const WIT: &str = include_str!("../../../wit/floe-plugin.wit");

const SDK_MANIFEST: &str = include_str!("../../../plugins/sdk/Cargo.toml");
const WORKSPACE_MANIFEST: &str = include_str!("../../../plugins/Cargo.toml");

/// The SDK's `Cargo.toml` as a package of its own: every `x.workspace = true`
/// replaced by the plugin workspace's value of `x`. It has no `[workspace]`:
/// under the plugin crate's directory, it is a member of the crate's.
pub fn sdk_cargo_toml() -> String {
    let mut out = String::new();
    for line in SDK_MANIFEST.lines() {
        let inherited = line.trim().strip_suffix(".workspace = true").map(str::trim);
        match inherited.and_then(|key| workspace_value(key).map(|value| (key, value))) {
            Some((key, value)) => out.push_str(&format!("{key} = {value}\n")),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The value of `key` in the workspace's `[workspace.package]` or
/// `[workspace.dependencies]` table.
fn workspace_value(key: &str) -> Option<&'static str> {
    let mut section = "";
    for line in WORKSPACE_MANIFEST.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section != "[workspace.package]" && section != "[workspace.dependencies]" {
            continue;
        }
        if let Some((name, value)) = line.split_once('=')
            && name.trim() == key
        {
            return Some(value.trim());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sdk_source_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk/src");
        let mut on_disk: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        on_disk.sort();
        let mut embedded: Vec<String> = SDK_SOURCES.iter().map(|(name, _)| name.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "add the new SDK file to SDK_SOURCES");
    }

    #[test]
    fn the_vendored_manifest_inherits_nothing() {
        let manifest = sdk_cargo_toml();
        assert!(!manifest.contains(".workspace"), "{manifest}");
        assert!(manifest.contains("\nedition = \"2024\"\n"), "{manifest}");
        assert!(manifest.contains("\nwit-bindgen = \"0.61\"\n"), "{manifest}");
        assert!(manifest.contains("\narrow-ipc = { version = \"58\", default-features = false }\n"), "{manifest}");
        assert!(!manifest.contains("[workspace]"), "the plugin crate is the workspace root");
    }
}
