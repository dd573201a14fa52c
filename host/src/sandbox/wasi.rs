//! The deny-all WASI context. Rust's std makes every component import
//! `wasi:*` interfaces, so they are linked, but grant nothing: no preopened
//! directories, no environment, no arguments, no stdin, no network; stdout and
//! stderr go to a bounded in-memory tail that error reports quote.

use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use super::log::OutputTail;

pub(super) fn deny_all(output: OutputTail) -> WasiCtx {
    WasiCtxBuilder::new()
        // The builder starts with no preopens, env, args or stdin; say so
        // explicitly for what has a switch.
        .stdout(output.clone())
        .stderr(output)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .build()
}
