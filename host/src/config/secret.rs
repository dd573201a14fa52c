//! Secrets: `secret_ref`s in platform.yaml and the values they resolve to.
//!
//! A `secret_ref: polaris-client-secret` resolves from the environment variable
//! `POLARIS_CLIENT_SECRET` first, then from the file
//! `/var/run/secrets/polaris-client-secret` (where Kubernetes mounts Secrets;
//! the directory can be moved with `FLOE_SECRETS_DIR`). A resolved value lives
//! in [`Secret`], which cannot be printed by accident.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The default directory where Kubernetes mounts Secret volumes.
pub const DEFAULT_SECRETS_DIR: &str = "/var/run/secrets";

/// A secret value. `Debug` prints `***`, there is no `Display`, and
/// [`Secret::expose`] is the one way to read it, so every use is explicit.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for handing to a client library. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    /// Secrets serialize as `***`: `plan --json` and every other output show
    /// that a secret is set, never its value.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// A reference to a secret by name: `{secret_ref: polaris-client-secret}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// Name of the secret: lower-case letters, digits, `-`, `_` and `.`; `/`
    /// selects a key inside a mounted Secret (`aws-credentials/access_key_id`).
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._/-]*$"))]
    pub secret_ref: String,
}

impl SecretRef {
    /// The environment variable checked first: upper snake case.
    pub fn env_var(&self) -> String {
        self.secret_ref.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
    }

    /// The file checked second.
    pub fn file(&self, secrets_dir: &Path) -> PathBuf {
        secrets_dir.join(&self.secret_ref)
    }

    /// Whether the name is acceptable (checked before anything is looked up,
    /// so a name can never walk out of the secrets directory).
    pub fn is_valid_name(&self) -> bool {
        let name = &self.secret_ref;
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_./".contains(c))
            && name.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
    }
}

/// Where secrets are looked up.
#[derive(Clone, Debug)]
pub struct SecretSource {
    pub secrets_dir: PathBuf,
    /// Reads an environment variable; a parameter so tests need not mutate
    /// the process environment.
    pub env: fn(&str) -> Option<String>,
}

impl Default for SecretSource {
    fn default() -> Self {
        SecretSource { secrets_dir: PathBuf::from(DEFAULT_SECRETS_DIR), env: |name| std::env::var(name).ok() }
    }
}

/// Why a secret could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret `{name}` not found: environment variable {env_var} is not set and {} does not exist", file.display())]
    Missing { name: String, env_var: String, file: PathBuf },
    #[error("secret `{name}`: cannot read {}: {message}", file.display())]
    Unreadable { name: String, file: PathBuf, message: String },
    #[error("secret `{name}` is empty (in {origin})")]
    Empty { name: String, origin: String },
    #[error("`{name}` is not a valid secret name: use lower-case letters, digits, `-`, `_`, `.` and `/` between parts")]
    InvalidName { name: String },
}

impl SecretSource {
    /// Resolves a reference: environment variable, then file. A trailing
    /// newline in a file (as `kubectl create secret --from-file` keeps it) is dropped.
    pub fn resolve(&self, reference: &SecretRef) -> Result<Secret, SecretError> {
        let name = reference.secret_ref.clone();
        if !reference.is_valid_name() {
            return Err(SecretError::InvalidName { name });
        }
        let env_var = reference.env_var();
        if let Some(value) = (self.env)(&env_var) {
            if value.is_empty() {
                return Err(SecretError::Empty { name, origin: format!("environment variable {env_var}") });
            }
            return Ok(Secret(value));
        }
        let file = reference.file(&self.secrets_dir);
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let value = text.strip_suffix('\n').unwrap_or(&text);
                let value = value.strip_suffix('\r').unwrap_or(value);
                if value.is_empty() {
                    return Err(SecretError::Empty { name, origin: file.display().to_string() });
                }
                Ok(Secret(value.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SecretError::Missing { name, env_var, file }),
            Err(e) => Err(SecretError::Unreadable { name, file, message: e.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str) -> SecretRef {
        SecretRef { secret_ref: name.into() }
    }

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(***)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn env_var_is_upper_snake_case() {
        assert_eq!(reference("polaris-client-secret").env_var(), "POLARIS_CLIENT_SECRET");
        assert_eq!(reference("aws-credentials/access_key_id").env_var(), "AWS_CREDENTIALS_ACCESS_KEY_ID");
    }

    #[test]
    fn env_wins_over_file_and_file_trailing_newline_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("from-file"), "file-value\n").unwrap();
        std::fs::write(dir.path().join("both"), "file-value\n").unwrap();
        let source = SecretSource {
            secrets_dir: dir.path().to_path_buf(),
            env: |name| (name == "BOTH").then(|| "env-value".to_string()),
        };
        assert_eq!(source.resolve(&reference("from-file")).unwrap().expose(), "file-value");
        assert_eq!(source.resolve(&reference("both")).unwrap().expose(), "env-value");
        let missing = source.resolve(&reference("nope")).unwrap_err().to_string();
        assert!(missing.contains("environment variable NOPE is not set"), "{missing}");
        assert!(missing.contains(&dir.path().join("nope").display().to_string()), "{missing}");
    }

    #[test]
    fn names_cannot_escape_the_secrets_dir() {
        for bad in ["../etc/passwd", "a//b", "/abs", "Upper", "a/./b", ""] {
            assert!(!reference(bad).is_valid_name(), "{bad}");
        }
        assert!(reference("aws-credentials/access_key_id").is_valid_name());
    }
}
