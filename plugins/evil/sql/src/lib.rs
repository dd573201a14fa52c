//! `evil-sql`: a SQL-mode transform that passes hostile SQL through to the
//! host, so that tests/integration/adversarial.rs can send any statement
//! (DDL, `ATTACH`, `COPY ... TO`, `read_text('/etc/passwd')`, `SET ...`,
//! several statements in one string) from floe.yaml config and check that the
//! host refuses it or contains it.
//! - `sql`: the statement returned by `sql`, with every `{input}` replaced by
//!   the first declared input (`layer.table`), or by "" if there is none.
//!   Default: `SELECT * FROM {input}`.
//! - `log`: logged at error level through `floe:plugin/log` before anything
//!   else, as it is (newlines, escape sequences, forged JSON lines).
//! - `error`: returned from `sql` as `invalid-input` instead of a query.
//! - `stderr`: written to stderr, after which `sql` panics (a trap whose
//!   report quotes the output tail).
//!
//! `output-schema` and `open` return `internal("SQL mode")`: the host must
//! never call them for a plugin whose `sql` returns a query.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "transform-plugin",
});

use exports::floe::plugin::meta;
use exports::floe::plugin::transform::{self, Config, IpcFragment};
use floe::plugin::types::{PluginError, PluginInfo, PluginKind};

struct Component;

export!(Component);

impl meta::Guest for Component {
    fn info() -> PluginInfo {
        PluginInfo {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Transform,
            config_schema: "{}".to_owned(),
        }
    }
}

/// The value of `key` in the step's config map.
#[allow(dead_code)]
fn config_value<'a>(config: &'a Config, key: &str) -> Option<&'a str> {
    config.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The query for `config` over `inputs`: `sql` (or `SELECT * FROM {input}`)
/// with every `{input}` replaced by the first input.
fn query(config: &Config, inputs: &[String]) -> String {
    let template = config_value(config, "sql").unwrap_or("SELECT * FROM {input}");
    template.replace("{input}", inputs.first().map_or("", String::as_str))
}

impl transform::Guest for Component {
    type Transformer = Unused;

    fn output_schema(_config: Config, _input_schema: IpcFragment) -> Result<IpcFragment, PluginError> {
        Err(PluginError::Internal("SQL mode".to_owned()))
    }

    fn open(_config: Config) -> Result<transform::Transformer, PluginError> {
        Err(PluginError::Internal("SQL mode".to_owned()))
    }

    fn sql(config: Config, inputs: Vec<String>) -> Result<Option<String>, PluginError> {
        if let Some(text) = config_value(&config, "log") {
            floe::plugin::log::log(floe::plugin::log::Level::Error, text);
        }
        if let Some(text) = config_value(&config, "error") {
            return Err(PluginError::InvalidInput(text.to_owned()));
        }
        if let Some(text) = config_value(&config, "stderr") {
            eprintln!("{text}");
            panic!("evil-sql: after writing to stderr");
        }
        Ok(Some(query(&config, &inputs)))
    }
}

/// Never constructed: `open` always fails.
struct Unused;

impl transform::GuestTransformer for Unused {
    fn push(&self, _input: IpcFragment) -> Result<IpcFragment, PluginError> {
        Err(PluginError::Internal("SQL mode".to_owned()))
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        Err(PluginError::Internal("SQL mode".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_placeholder_is_replaced_by_the_first_input() {
        let inputs = vec!["silver.a".to_owned(), "silver.b".to_owned()];
        let sql = config(&[("sql", "SELECT * FROM {input}; DROP TABLE {input}")]);
        assert_eq!(query(&sql, &inputs), "SELECT * FROM silver.a; DROP TABLE silver.a");
        assert_eq!(query(&config(&[]), &inputs), "SELECT * FROM silver.a");
        assert_eq!(query(&config(&[]), &[]), "SELECT * FROM ");
        assert_eq!(query(&config(&[("sql", "ATTACH 'x.db'")]), &inputs), "ATTACH 'x.db'");
    }
}
