//! The deny-all WASI: the context that grants nothing, and the linker setup
//! that bounds the only blocking WASI calls by the call deadline.
//!
//! Rust's std makes every component import `wasi:*` interfaces, so they are
//! linked, but grant nothing: no preopened directories, no environment, no
//! arguments, no stdin, no network; stdout and stderr go to a bounded
//! in-memory tail that error reports quote.
//!
//! **Blocking host calls and the deadline.** Epoch interruption only stops
//! *wasm code*: the check sits at function entries and loop back-edges, so a
//! plugin blocked inside a host call is not interrupted. In the sync WASI
//! bindings, the calls that can block are `wasi:io/poll`'s `poll` and
//! `pollable.block` (every other blocking call, such as `blocking-read` on a
//! stream, waits on the stream's pollable the same way, and the deny-all
//! context only has streams that are always ready). A plugin that calls
//! `std::thread::sleep(1 hour)` (a monotonic-clock subscription, then
//! `pollable.block`) or `poll(2)` with a long timeout would hold the host
//! thread past any deadline (`plugins/evil/sleep` does both).
//!
//! [`add_to_linker`] therefore links WASI as usual and then *shadows* those two
//! functions with copies that wait at most until the current call's deadline
//! ([`CallDeadline`], set whenever the host arms a call): if nothing is ready
//! by then, the host function traps with [`Trap::Interrupt`] and records it,
//! so the call fails as a deadline, exactly as if wasm code had run too long.
//! Shadowing the two functions is the least invasive fix: the rest of
//! wasmtime-wasi stays as it is, pollables keep their semantics, and a plugin
//! that sleeps for less than its deadline is unaffected. The alternative, an
//! async store with `call_async` under a timeout, would change every call
//! site for the same effect.

use std::time::{Duration, Instant};

use wasmtime::component::{Linker, Resource};
use wasmtime::{StoreContextMut, Trap};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::io::poll as async_poll;
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiView};

use super::log::OutputTail;

/// The `wasi:io/poll` instance wasmtime-wasi 48 defines (its WIT is
/// `wasi:io@0.2.12`; guests built against any 0.2.x resolve to it). If a
/// wasmtime upgrade changes it, the shadowing below would go unused: the
/// evil-sleep test in tests/integration/adversarial.rs catches that.
const WASI_IO_POLL: &str = "wasi:io/poll@0.2.12";

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

/// The wall-clock deadline of the call in progress, shared by the epoch
/// deadline (wasm code) and the bounded WASI polls (host code).
#[derive(Debug)]
pub(crate) struct CallDeadline {
    at: Instant,
    hit_in_host: bool,
}

impl Default for CallDeadline {
    fn default() -> Self {
        Self { at: Instant::now(), hit_in_host: false }
    }
}

impl CallDeadline {
    /// Starts a call that may run for `timeout`.
    pub(crate) fn arm(&mut self, timeout: Duration) {
        self.at = Instant::now()
            .checked_add(timeout)
            // Far enough to mean "never" without overflowing tokio's clock.
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));
        self.hit_in_host = false;
    }

    /// Whether the current call ran out of time while blocked in the host.
    pub(crate) fn hit_in_host(&self) -> bool {
        self.hit_in_host
    }
}

/// Store data that can link the bounded WASI: a WASI view plus the deadline.
pub(crate) trait HasCallDeadline: WasiView {
    fn call_deadline(&mut self) -> &mut CallDeadline;
}

/// Links wasmtime-wasi's sync WASI 0.2, with `wasi:io/poll`'s blocking
/// functions bounded by the call deadline (see the module docs).
pub(crate) fn add_to_linker<T: HasCallDeadline + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let mut poll = linker.instance(WASI_IO_POLL)?;
    poll.func_wrap("poll", |mut store: StoreContextMut<'_, T>, (pollables,): (Vec<Resource<DynPollable>>,)| {
        let deadline = store.data_mut().call_deadline().at;
        let table = store.data_mut().ctx().table;
        // The timer must be made inside the runtime `in_tokio` enters.
        let ready = in_tokio(async {
            tokio::time::timeout_at(deadline.into(), async_poll::Host::poll(table, pollables)).await
        });
        match ready {
            Ok(ready) => Ok((ready?,)),
            Err(_) => Err(deadline_hit(store)),
        }
    })?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, T>, (pollable,): (Resource<DynPollable>,)| {
            let deadline = store.data_mut().call_deadline().at;
            let table = store.data_mut().ctx().table;
            // The timer must be made inside the runtime `in_tokio` enters.
            let ready = in_tokio(async {
                tokio::time::timeout_at(deadline.into(), async_poll::HostPollable::block(table, pollable)).await
            });
            match ready {
                Ok(done) => done,
                Err(_) => Err(deadline_hit(store)),
            }
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn deadline_hit<T: HasCallDeadline>(mut store: StoreContextMut<'_, T>) -> wasmtime::Error {
    store.data_mut().call_deadline().hit_in_host = true;
    Trap::Interrupt.into()
}
