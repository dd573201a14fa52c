//! `evil-flood`: writes 8 MiB to stdout and to stderr and 20 000 log lines
//! of 4 KiB at error level, then panics. The host must keep what it forwards
//! and quotes bounded.

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
        use std::io::Write;
        let line = format!("{}\n", "flood ".repeat(170));
        let mut out = std::io::stdout().lock();
        let mut err = std::io::stderr().lock();
        let mut written = 0;
        while written < 8 << 20 {
            let _ = out.write_all(line.as_bytes());
            let _ = err.write_all(line.as_bytes());
            written += line.len();
        }
        drop((out, err));
        let message = "log-flood ".repeat(410);
        for _ in 0..20_000 {
            floe::plugin::log::log(floe::plugin::log::Level::Error, &message);
        }
        panic!("evil-flood: done flooding");
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        Ok(Vec::new())
    }
}
