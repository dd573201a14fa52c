//! What a floe-host built without some of its default Cargo features cannot
//! do (the demo's build, `scripts/demo.sh`, leaves out S3, TLS and the OTLP
//! exporter to build in half the time). Checked when the plan is built, so
//! that `validate` names the platform.yaml key instead of a run failing at
//! its first request.

use crate::config::{CatalogProfile, PlatformFile, StorageProfile};

/// A platform.yaml setting that needs a feature this binary was built
/// without.
pub(super) struct Missing {
    /// The key path in platform.yaml.
    pub key: String,
    /// What the setting needs, as a message says it.
    pub needs: &'static str,
    /// The Cargo feature that brings it.
    pub feature: &'static str,
}

/// Every setting of `platform` that this build cannot serve.
pub(super) fn missing(platform: &PlatformFile) -> Vec<Missing> {
    let mut missing = Vec::new();
    if !cfg!(feature = "s3") {
        for (name, profile) in &platform.storage {
            if matches!(profile, StorageProfile::S3 { .. }) {
                missing.push(Missing { key: format!("storage.{name}.type"), needs: "S3 storage", feature: "s3" });
            }
        }
    }
    if !cfg!(feature = "tls") {
        let mut urls: Vec<(String, &str)> = Vec::new();
        for (name, profile) in &platform.catalogs {
            if let CatalogProfile::Rest(rest) | CatalogProfile::Polaris(rest) = profile {
                urls.push((format!("catalogs.{name}.uri"), &rest.uri));
                if let Some(uri) = &rest.oauth2_server_uri {
                    urls.push((format!("catalogs.{name}.oauth2_server_uri"), uri));
                }
            }
        }
        for (name, profile) in &platform.storage {
            if let StorageProfile::S3 { endpoint: Some(endpoint), .. } = profile {
                urls.push((format!("storage.{name}.endpoint"), endpoint));
            }
        }
        let observability = &platform.observability;
        if let Some(url) = &observability.otlp_endpoint {
            urls.push(("observability.otlp_endpoint".into(), url));
        }
        if let Some(url) = &observability.lineage_endpoint {
            urls.push(("observability.lineage_endpoint".into(), url));
        }
        for (key, url) in urls {
            if url.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")) {
                missing.push(Missing { key, needs: "TLS (an `https://` URL)", feature: "tls" });
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S3 storage and an `https://` URL in every place one can appear, and
    /// an `http://` one that no build refuses.
    const PLATFORM: &str = r#"
catalogs:
  lake: {type: polaris, uri: "HTTPS://polaris/api/catalog", oauth2_server_uri: "https://idp/token"}
  local: {type: rest, uri: "http://rest:8181"}
storage:
  s3: {type: s3, bucket: b, endpoint: "https://s3.example"}
  disk: {type: local, root: /data}
observability: {otlp_endpoint: "https://otel:4318", lineage_endpoint: "https://marquez/api/v1/lineage"}
"#;

    #[test]
    fn refuses_exactly_what_this_build_lacks() {
        let platform: PlatformFile = serde_yaml::from_str(PLATFORM).unwrap();
        let mut expected: Vec<(&str, &str)> = Vec::new();
        if !cfg!(feature = "s3") {
            expected.push(("storage.s3.type", "s3"));
        }
        if !cfg!(feature = "tls") {
            expected.extend([
                ("catalogs.lake.uri", "tls"),
                ("catalogs.lake.oauth2_server_uri", "tls"),
                ("storage.s3.endpoint", "tls"),
                ("observability.otlp_endpoint", "tls"),
                ("observability.lineage_endpoint", "tls"),
            ]);
        }
        let found = missing(&platform);
        let found: Vec<(&str, &str)> = found.iter().map(|m| (m.key.as_str(), m.feature)).collect();
        assert_eq!(found, expected);
    }
}
