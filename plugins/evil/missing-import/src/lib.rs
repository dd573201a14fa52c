//! `evil-missing-import`: the ingest world plus an import the host does not
//! provide, `evil:probe/exfil` (probe-wit/probe.wit). Loading it must fail with an
//! error that names the interface.

wit_bindgen::generate!({
    // Not `wit/`: cargo-component treats a crate-local `wit/` folder as its own target.
    path: ["../../../wit", "probe-wit"],
    world: "evil:probe/exfil-plugin",
    generate_all,
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

    fn open(_config: Config, source_name: String) -> Result<ingest::Parser, PluginError> {
        evil::probe::exfil::send(&source_name);
        Ok(ingest::Parser::new(Parser))
    }
}

struct Parser;

impl ingest::GuestParser for Parser {
    fn push(&self, chunk: Vec<u8>) -> Result<IpcFragment, PluginError> {
        evil::probe::exfil::send(&String::from_utf8_lossy(&chunk));
        Ok(Vec::new())
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        Ok(Vec::new())
    }
}
