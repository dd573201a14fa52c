//! What a plugin returns, as the host decodes it: any bytes, cut into any
//! fragments, must end in batches of an accepted schema or an error, never a
//! panic, an abort or an allocation out of proportion to the input.
#![no_main]

#[allow(dead_code)]
#[path = "../../../host/src/sandbox/guard.rs"]
mod guard;
#[allow(dead_code)]
#[path = "../../../host/src/sandbox/ipc.rs"]
mod ipc;
#[allow(dead_code)]
#[path = "../../../host/src/sandbox/text.rs"]
mod text;
#[allow(dead_code)]
#[path = "../../../host/src/sandbox/values.rs"]
mod values;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ipc::decode_fragments(data);
});
