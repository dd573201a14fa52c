//! floe.yaml and platform.yaml, as the host parses them: any texts (split at
//! the first NUL byte) must parse or end in configuration errors that render,
//! never panic.
#![no_main]

#[allow(dead_code)]
#[path = "../../../host/src/config/mod.rs"]
mod config;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (floe, platform) = text.split_once('\0').unwrap_or((&text, ""));
    let _ = config::check_texts(floe, platform);
});
