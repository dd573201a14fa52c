//! What plugin calls cost: the CPU time the calling thread spent in plugin
//! code, the number of calls, and (from the limiter) the peak linear memory.
//!
//! CPU time comes from wasmtime's call hook: the thread's CPU clock is read
//! when the host enters wasm and when the outermost entry returns, so host
//! work between calls (reading the source, decoding IPC, the sink) is not
//! counted, while host functions the plugin calls (log, WASI) are.

use std::time::Duration;

use wasmtime::CallHook;

/// The cost of a plugin's calls in one step (or one store).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PluginStats {
    /// CPU time of the calling thread while it ran plugin code.
    pub cpu_time: Duration,
    /// Largest total linear memory, in bytes, that any one instance of the
    /// plugin reached (wasm memories never shrink: this is their final size).
    pub peak_memory_bytes: u64,
    /// Calls into the plugin: each instantiation and each export called.
    pub calls: u64,
}

impl PluginStats {
    /// Adds `other`, from another store used by the same step: CPU time and
    /// calls add up, the peak is the larger one (stores do not overlap).
    pub fn merge(&mut self, other: PluginStats) {
        self.cpu_time += other.cpu_time;
        self.peak_memory_bytes = self.peak_memory_bytes.max(other.peak_memory_bytes);
        self.calls += other.calls;
    }

    /// Adds `other`, from a store that ran at the same time as this one
    /// (parallel ingest): the peaks add up too.
    pub fn merge_concurrent(&mut self, other: PluginStats) {
        self.cpu_time += other.cpu_time;
        self.peak_memory_bytes += other.peak_memory_bytes;
        self.calls += other.calls;
    }
}

/// Per-store CPU and call accounting, fed by the store's call hook.
#[derive(Debug, Default)]
pub(super) struct Meter {
    /// Nesting of host→wasm entries (wasm→host→wasm re-enters).
    depth: u32,
    entered: Duration,
    cpu_time: Duration,
    calls: u64,
}

impl Meter {
    pub(super) fn hook(&mut self, kind: CallHook) {
        match kind {
            CallHook::CallingWasm => {
                if self.depth == 0 {
                    self.entered = thread_cpu_time();
                }
                self.depth += 1;
            }
            CallHook::ReturningFromWasm => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.cpu_time += thread_cpu_time().saturating_sub(self.entered);
                }
            }
            CallHook::CallingHost | CallHook::ReturningFromHost => {}
        }
    }

    /// One more call into the plugin (counted when its deadline is armed).
    pub(super) fn count_call(&mut self) {
        self.calls += 1;
    }

    pub(super) fn cpu_time(&self) -> Duration {
        self.cpu_time
    }

    pub(super) fn calls(&self) -> u64 {
        self.calls
    }
}

/// The CPU time the current thread has used.
#[cfg(unix)]
pub(super) fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(not(unix))]
pub(super) fn thread_cpu_time() -> Duration {
    Duration::ZERO
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Burns CPU on this thread until its clock advanced by `d`.
    fn spin(d: Duration) {
        let start = thread_cpu_time();
        let mut x = 0u64;
        while thread_cpu_time() - start < d {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    #[test]
    fn counts_only_time_inside_the_outermost_entry() {
        let mut meter = Meter::default();
        spin(Duration::from_millis(50)); // host work before: not counted
        meter.hook(CallHook::CallingWasm);
        spin(Duration::from_millis(5));
        meter.hook(CallHook::CallingHost); // the plugin calls the host: counted
        meter.hook(CallHook::CallingWasm); // ... which re-enters wasm
        meter.hook(CallHook::ReturningFromWasm);
        spin(Duration::from_millis(5));
        meter.hook(CallHook::ReturningFromHost);
        meter.hook(CallHook::ReturningFromWasm);
        spin(Duration::from_millis(50)); // host work after: not counted
        meter.count_call();
        let cpu = meter.cpu_time();
        assert!(cpu >= Duration::from_millis(10), "{cpu:?}");
        assert!(cpu < Duration::from_millis(50), "{cpu:?}");
        assert_eq!(meter.calls(), 1);
    }

    #[test]
    fn merges_stores() {
        let mut a = PluginStats { cpu_time: Duration::from_millis(3), peak_memory_bytes: 1 << 20, calls: 2 };
        a.merge(PluginStats { cpu_time: Duration::from_millis(4), peak_memory_bytes: 64 << 10, calls: 5 });
        assert_eq!(a, PluginStats { cpu_time: Duration::from_millis(7), peak_memory_bytes: 1 << 20, calls: 7 });
    }
}
