//! `evil-sleep`: goes silent inside `push` for an hour in a *blocking host call*:
//! `std::thread::sleep`, which on wasip2 is a monotonic-clock subscription
//! blocked on with `wasi:io/poll` (`pollable.block`), or with `mode: poll`,
//! wasi-libc's `poll(2)` with no descriptors (`wasi:io/poll.poll`). Epoch
//! interruption cannot stop either, since no wasm code runs meanwhile.
//! With `ms: N` it sleeps N milliseconds in every `push` and goes on: a
//! plugin that stays inside each call's deadline but stretches its step.

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
        if let Some(ms) = config_value(&self.config, "ms") {
            let ms: u64 =
                ms.parse().map_err(|_| PluginError::InvalidConfig(format!("`ms`: `{ms}` is not a number")))?;
            std::thread::sleep(std::time::Duration::from_millis(ms));
            return Ok(Vec::new());
        }
        if config_value(&self.config, "mode") == Some("poll") {
            // SAFETY: poll(2) with no descriptors only waits for the timeout.
            let rc = unsafe { poll(std::ptr::null_mut(), 0, 3_600_000) };
            return Err(PluginError::Internal(format!("poll returned {rc}")));
        }
        std::thread::sleep(std::time::Duration::from_secs(3600));
        Err(PluginError::Internal("woke up after an hour".to_owned()))
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        Ok(Vec::new())
    }
}

unsafe extern "C" {
    /// wasi-libc's poll(2); `fds` is unused with `nfds` 0.
    fn poll(fds: *mut u8, nfds: usize, timeout_ms: i32) -> i32;
}
