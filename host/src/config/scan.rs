//! Finds literal credentials before anything else reads the files.
//!
//! floe.yaml is shared by every environment and its plugin `config` is handed
//! to third-party code, so it must never hold a credential: a key that names
//! one (`password`, `token`, …) with a literal value, a `secret_ref` (plugins
//! never receive secrets), or a value shaped like a known key format is an
//! error. Values shaped like keys are rejected in platform.yaml too.

use serde_yaml::Value;

/// A suspicious entry: its key path and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    pub key: String,
    pub reason: String,
}

const CREDENTIAL_WORDS: [&str; 10] = [
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "access_key",
    "private_key",
    "credential",
];

/// Scans floe.yaml: credential-named keys, `secret_ref`s and key-shaped values.
pub fn scan_pipeline(value: &Value) -> Vec<Finding> {
    let mut findings = Vec::new();
    walk(value, String::new(), &mut |key, leaf_name, leaf| {
        let name = leaf_name.to_ascii_lowercase();
        if name == "secret_ref" {
            findings.push(Finding {
                key: key.to_string(),
                reason: "floe.yaml cannot reference secrets: plugins and SQL never receive credentials".into(),
            });
        } else if CREDENTIAL_WORDS.iter().any(|w| name.contains(w)) && !is_empty(leaf) {
            findings.push(Finding {
                key: key.to_string(),
                reason: format!("`{leaf_name}` looks like a literal credential"),
            });
        } else if let Some(kind) = key_shaped(leaf) {
            findings.push(Finding { key: key.to_string(), reason: format!("the value looks like {kind}") });
        }
    });
    findings
}

/// Scans platform.yaml: key-shaped values anywhere (secret fields themselves
/// already refuse literals when parsed).
pub fn scan_platform(value: &Value) -> Vec<Finding> {
    let mut findings = Vec::new();
    walk(value, String::new(), &mut |key, _, leaf| {
        if let Some(kind) = key_shaped(leaf) {
            findings.push(Finding { key: key.to_string(), reason: format!("the value looks like {kind}") });
        }
    });
    findings
}

fn is_empty(value: &Value) -> bool {
    matches!(value, Value::Null) || value.as_str().is_some_and(str::is_empty)
}

/// Calls `visit(path, last key, value)` for every scalar and for every
/// `secret_ref` mapping.
fn walk(value: &Value, path: String, visit: &mut dyn FnMut(&str, &str, &Value)) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let name = match k {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
                };
                let child = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                match v {
                    Value::Mapping(_) | Value::Sequence(_) => walk(v, child, visit),
                    Value::Tagged(tagged) => walk(&tagged.value, child, visit),
                    _ => visit(&child, &name, v),
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let child = format!("{path}[{i}]");
                match item {
                    Value::Mapping(_) | Value::Sequence(_) => walk(item, child, visit),
                    _ => visit(&child, "", item),
                }
            }
        }
        _ => {}
    }
}

/// Recognises the shapes of common credentials.
fn key_shaped(value: &Value) -> Option<&'static str> {
    let text = value.as_str()?;
    let alnum_upper = |s: &str| s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if text.len() == 20 && (text.starts_with("AKIA") || text.starts_with("ASIA")) && alnum_upper(text) {
        return Some("an AWS access key id");
    }
    if text.contains("-----BEGIN") && text.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() == 3
        && text.starts_with("eyJ")
        && parts.iter().all(|p| p.len() >= 4 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Some("a JSON Web Token");
    }
    for prefix in ["ghp_", "gho_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "sk_live_"] {
        if text.starts_with(prefix) && text.len() > prefix.len() + 15 {
            return Some("an API token");
        }
    }
    if let Some((_, rest)) = text.split_once("://")
        && let Some((userinfo, _)) = rest.split_once('@')
        && userinfo.contains(':')
        && !rest[..userinfo.len()].contains('/')
    {
        return Some("a URL with a password");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn flags_credential_keys_refs_and_key_shapes_in_the_pipeline() {
        let found = scan_pipeline(&yaml(
            "name: x\ntransforms:\n  - name: a\n    config:\n      api_token: abc\n      password: ''\n      \
             conn: postgres://u:pw@db/x\n      key: AKIAABCDEFGHIJKLMNOP\n      salt: pepper\n      \
             creds: {secret_ref: db}\n",
        ));
        let keys: Vec<&str> = found.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "transforms[0].config.api_token",
                "transforms[0].config.conn",
                "transforms[0].config.key",
                "transforms[0].config.creds.secret_ref",
            ]
        );
        assert_eq!(found[2].reason, "the value looks like an AWS access key id");
    }

    #[test]
    fn platform_secret_refs_are_fine_but_key_shapes_are_not() {
        let ok = scan_platform(&yaml("catalogs:\n  c:\n    credentials:\n      client_secret: {secret_ref: s}\n"));
        assert!(ok.is_empty(), "{ok:?}");
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl";
        let found = scan_platform(&yaml(&format!("catalogs:\n  c:\n    uri: {jwt}\n")));
        assert_eq!(
            found,
            vec![Finding { key: "catalogs.c.uri".into(), reason: "the value looks like a JSON Web Token".into() }]
        );
    }
}
