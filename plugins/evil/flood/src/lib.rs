//! `evil-flood`: writes 8 MiB to stdout and to stderr and 20 000 log lines
//! of 4 KiB at error level, then panics. The host must keep what it forwards
//! and quotes bounded.
//!
//! With `mode: big-log`, it logs one line of `bytes` (config) bytes instead:
//! the host must not copy it whole. `mode: hold` fills as much of its own
//! memory and fails without logging it: the same plugin memory, for
//! comparison. `mode: bad-log` logs a string that lies outside its memory,
//! from a function whose name must not reach the host's error.

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
    config: Config,
}

impl ingest::GuestParser for Parser {
    fn push(&self, _chunk: Vec<u8>) -> Result<IpcFragment, PluginError> {
        use std::io::Write;
        let bytes = config_value(&self.config, "bytes").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1 << 20);
        match config_value(&self.config, "mode") {
            Some("big-log") => {
                let line = "L".repeat(bytes);
                floe::plugin::log::log(floe::plugin::log::Level::Error, &line);
                return Err(PluginError::Internal(format!("evil-flood: logged {} bytes", line.len())));
            }
            Some("bad-log") => forged_frame_name_in_a_backtrace(),
            Some("hold") => {
                let line = std::hint::black_box("L".repeat(bytes));
                return Err(PluginError::Internal(format!("evil-flood: held {} bytes", line.len())));
            }
            _ => {}
        }
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

/// Calls `log` with a string 4 GiB - 64 KiB into a memory far smaller: the
/// host fails the call while copying it, with wasmtime's own error.
#[inline(never)]
fn forged_frame_name_in_a_backtrace() -> ! {
    // SAFETY: not safe, on purpose: the bytes are never read by this
    // plugin, only the pointer and length cross to the host.
    let bogus = unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(0xFFFF_0000usize as *const u8, 64)) };
    floe::plugin::log::log(floe::plugin::log::Level::Error, std::hint::black_box(bogus));
    panic!("evil-flood: the host read a string outside my memory");
}
