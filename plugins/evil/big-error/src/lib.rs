//! `evil-big-error`: fails `push` with a plugin error whose message is `bytes`
//! (config, default 64 MiB) of text, to check that the host bounds what it
//! prints.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "ingest-plugin",
});

use exports::floe::plugin::ingest::{self, Config, IpcFragment};
use exports::floe::plugin::meta;
use floe::plugin::types::{PluginError, PluginInfo, PluginKind};

struct Component;

export!(Component);

impl meta::Guest for Component {
    fn info() -> PluginInfo {
        PluginInfo {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Ingest,
            config_schema: "{}".to_owned(),
        }
    }
}

/// The value of `key` in the step's config map.
#[allow(dead_code)]
fn config_value<'a>(config: &'a Config, key: &str) -> Option<&'a str> {
    config.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

impl ingest::Guest for Component {
    type Parser = Parser;

    fn open(config: Config, _source_name: String) -> Result<ingest::Parser, PluginError> {
        Ok(ingest::Parser::new(Parser { config }))
    }
}

struct Parser {
    #[allow(dead_code)]
    config: Config,
}

impl ingest::GuestParser for Parser {
    fn push(&self, _chunk: Vec<u8>) -> Result<IpcFragment, PluginError> {
        let mut message = String::from("evil-big-error: ");
        let bytes = config_value(&self.config, "bytes").and_then(|v| v.parse().ok()).unwrap_or(64 << 20);
        message.push_str(&"x".repeat(bytes));
        message.push_str(" END-OF-BIG-ERROR");
        Err(PluginError::InvalidInput(message))
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        Ok(Vec::new())
    }
}
