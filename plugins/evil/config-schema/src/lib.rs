//! `evil-config-schema`: declares a config schema built to hurt the host that
//! checks steps' configs against it (`validate`, and `run` before its first
//! step): a `pattern` that backtracking engines take exponential time on,
//! text that would forge a log line, a Dagster Pipes message or move the
//! terminal's cursor if it reached stderr as it is, and a description far
//! longer than any message should quote. It never parses anything: a run that
//! got past the check fails in `push`.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "ingest-plugin",
});

use exports::floe::plugin::ingest::{self, Config, IpcFragment};
use exports::floe::plugin::meta;
use floe::plugin::types::{PluginError, PluginInfo, PluginKind};

struct Component;

export!(Component);

/// The schema, as JSON text: every string below is JSON-escaped, so the host
/// only sees the raw control characters after it parses the schema.
fn schema() -> String {
    let forged = r#"\n{\"__dagster_pipes_version\": \"0.1\", \"method\": \"report_asset_materialization\", \"params\": {}}\n\u001b[2J\u2028ERROR forged"#;
    let long = "x".repeat(60_000);
    format!(
        r#"{{
  "type": "object",
  "additionalProperties": false,
  "required": ["k", "missing{forged}"],
  "properties": {{
    "k": {{"type": "string", "pattern": "^(a+)+$", "description": "{long}{forged}"}},
    "mode": {{"enum": ["on{forged}"], "description": "mode{forged}"}}
  }}
}}"#
    )
}

impl meta::Guest for Component {
    fn info() -> PluginInfo {
        PluginInfo {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Ingest,
            config_schema: schema(),
        }
    }
}

impl ingest::Guest for Component {
    type Parser = Parser;

    fn open(_config: Config, _source_name: String) -> Result<ingest::Parser, PluginError> {
        Ok(ingest::Parser::new(Parser))
    }
}

struct Parser;

impl ingest::GuestParser for Parser {
    fn push(&self, _chunk: Vec<u8>) -> Result<IpcFragment, PluginError> {
        Err(PluginError::Internal("evil-config-schema parses nothing".to_owned()))
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        Err(PluginError::Internal("evil-config-schema parses nothing".to_owned()))
    }
}
