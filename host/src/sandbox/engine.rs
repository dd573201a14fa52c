//! The wasmtime `Engine` configuration and the epoch ticker thread that gives
//! every call a wall-clock deadline.

use std::time::Duration;

use wasmtime::{Config, Engine, OptLevel, WasmBacktraceDetails};

use super::SandboxError;

/// How often the engine epoch advances: the granularity of call deadlines.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(10);

pub(super) struct SandboxEngine {
    engine: Engine,
}

/// The engine configuration. The compile child (`compile.rs`) builds its
/// engine from the same function, so that what it serializes loads here.
pub(super) fn config() -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        // Deadlines: generated code checks the epoch at function entries and
        // loop back-edges; the ticker below advances it.
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(true)
        // No wasm backtraces: their frames carry the module's and functions'
        // names from the plugin's name section, unescaped and of any length,
        // up to 20 times in one error (a 30 MB name made gigabytes of text).
        // A plugin's own panic message reaches its stderr tail instead.
        .wasm_backtrace_max_frames(None)
        .wasm_backtrace_details(WasmBacktraceDetails::Disable);
    config
}

impl SandboxEngine {
    pub(super) fn new() -> Result<Self, SandboxError> {
        let engine = Engine::new(&config()).map_err(|e| SandboxError::Engine { message: format!("{e:#}") })?;
        spawn_ticker(&engine)?;
        Ok(Self { engine })
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Epoch ticks for a deadline of `timeout`, rounded up, at least one.
pub(super) fn deadline_ticks(timeout: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    u64::try_from(timeout.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX).max(1)
}

/// Advances the engine epoch every `EPOCH_TICK`. The thread holds only a weak
/// reference, so it ends once the engine and everything compiled with it are
/// dropped.
fn spawn_ticker(engine: &Engine) -> Result<(), SandboxError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("floe-epoch-ticker".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .map_err(|e| SandboxError::Engine { message: format!("cannot start the epoch ticker: {e}") })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_whole_ticks() {
        assert_eq!(deadline_ticks(Duration::ZERO), 1);
        assert_eq!(deadline_ticks(Duration::from_millis(1)), 1);
        assert_eq!(deadline_ticks(Duration::from_millis(10)), 1);
        assert_eq!(deadline_ticks(Duration::from_millis(11)), 2);
        assert_eq!(deadline_ticks(Duration::from_secs(60)), 6000);
        assert_eq!(deadline_ticks(Duration::MAX), u64::MAX);
    }
}
