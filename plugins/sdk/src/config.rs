//! The step's `config` map, with typed getters whose errors name the key.
//!
//! The host flattens the `config` map of the step in floe.yaml to string keys
//! and string values (YAML scalars only: `64` arrives as `"64"`, `true` as
//! `"true"`). Lists are written as one comma-separated string
//! (`key: "id, email"`), which [`Config::list`] splits.
//!
//! Check the keys first with [`Config::check_keys`], so that a misspelt key is
//! an error instead of a silently ignored setting. Every error is a
//! [`PluginError::InvalidConfig`] whose message names the key.

use std::str::FromStr;

use crate::PluginError;

/// A step's `config` map, in the order the host sent it (sorted by key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    /// Wraps the key/value pairs the host sent. When a key appears twice, the
    /// last value wins (the host never sends duplicates).
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// Rejects the first key that is not in `accepted`, with a message that
    /// lists the accepted keys.
    pub fn check_keys(&self, accepted: &[&str]) -> Result<(), PluginError> {
        for (key, _) in &self.pairs {
            if !accepted.contains(&key.as_str()) {
                let hint = if accepted.is_empty() {
                    "this plugin takes no config".to_owned()
                } else {
                    let names: Vec<String> = accepted.iter().map(|k| format!("`{k}`")).collect();
                    format!("accepted: {}", names.join(", "))
                };
                return Err(PluginError::config(format!("unknown config key `{key}` ({hint})")));
            }
        }
        Ok(())
    }

    /// All pairs, in the order the host sent them.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The raw value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key`, which must be set.
    pub fn required(&self, key: &str) -> Result<&str, PluginError> {
        self.get(key).ok_or_else(|| PluginError::config(format!("missing config key `{key}`")))
    }

    /// The value of `key` if set; an empty value is an error.
    pub fn non_empty(&self, key: &str) -> Result<Option<&str>, PluginError> {
        match self.get(key) {
            Some("") => Err(PluginError::config(format!("`{key}` must not be empty"))),
            other => Ok(other),
        }
    }

    /// The value of `key`, which must be set and not empty.
    pub fn required_non_empty(&self, key: &str) -> Result<&str, PluginError> {
        self.required(key)?;
        Ok(self.non_empty(key)?.expect("checked above"))
    }

    /// `key` as a positive integer (surrounding spaces allowed), if set.
    pub fn positive_usize(&self, key: &str) -> Result<Option<usize>, PluginError> {
        let Some(value) = self.get(key) else { return Ok(None) };
        match value.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(PluginError::config(format!("`{key}` must be a positive integer, got `{value}`"))),
        }
    }

    /// `key` as `true` or `false`, if set.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, PluginError> {
        self.parse(key, "`true` or `false`")
    }

    /// `key` parsed with `FromStr` (surrounding spaces allowed), if set.
    /// `expected` describes a valid value for the error message, e.g.
    /// `"a number of seconds"`.
    pub fn parse<T: FromStr>(&self, key: &str, expected: &str) -> Result<Option<T>, PluginError> {
        let Some(value) = self.get(key) else { return Ok(None) };
        value
            .trim()
            .parse::<T>()
            .map(Some)
            .map_err(|_| PluginError::config(format!("`{key}` must be {expected}, got `{value}`")))
    }

    /// `key` as a comma-separated list of non-empty items (each trimmed), if
    /// set. `"a, b"` gives `["a", "b"]`; an empty item (`"a,,b"`, `""`) is an
    /// error.
    pub fn list(&self, key: &str) -> Result<Option<Vec<String>>, PluginError> {
        let Some(value) = self.get(key) else { return Ok(None) };
        let items: Vec<String> = value.split(',').map(|s| s.trim().to_owned()).collect();
        if items.iter().any(String::is_empty) {
            return Err(PluginError::config(format!("`{key}` must be a comma-separated list of names, got `{value}`")));
        }
        Ok(Some(items))
    }
}

impl From<Vec<(String, String)>> for Config {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Self::new(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn errors_name_the_key() {
        let c = config(&[("batch_rows", "0"), ("columns", "a,,b"), ("x", "1")]);
        assert_eq!(
            c.check_keys(&["batch_rows", "columns"]).unwrap_err(),
            PluginError::config("unknown config key `x` (accepted: `batch_rows`, `columns`)")
        );
        assert_eq!(
            c.positive_usize("batch_rows").unwrap_err(),
            PluginError::config("`batch_rows` must be a positive integer, got `0`")
        );
        assert!(c.list("columns").unwrap_err().message().contains("`columns`"));
        assert_eq!(c.required("salt").unwrap_err().message(), "missing config key `salt`");
        assert_eq!(c.parse::<u8>("x", "a byte").unwrap(), Some(1));
    }

    #[test]
    fn lists_are_trimmed() {
        let c = config(&[("k", " a , b")]);
        assert_eq!(c.list("k").unwrap().unwrap(), ["a", "b"]);
        assert_eq!(c.list("missing").unwrap(), None);
    }
}
