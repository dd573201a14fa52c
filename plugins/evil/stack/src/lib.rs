//! `evil-stack`: recurses without end inside `push`, with a 4 KiB frame, until
//! the stack overflows.

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
        Ok(vec![dive(0, &[1u8; 4096]) as u8])
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        Ok(Vec::new())
    }
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn dive(depth: u64, parent: &[u8; 4096]) -> u64 {
    let mut frame = [0u8; 4096];
    frame[(depth % 4096) as usize] = parent[(depth % 4095) as usize].wrapping_add(1);
    let below = dive(depth + 1, std::hint::black_box(&frame));
    below.wrapping_add(u64::from(frame[7]))
}
