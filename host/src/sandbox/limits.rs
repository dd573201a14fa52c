//! Per-store resource limits: wasmtime's `StoreLimits` plus a record of whether
//! the memory cap was hit, so that the resulting trap is reported as a memory
//! limit rather than a generic crash, and of the store's peak linear memory.

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// Table elements per table: far above what compiled Rust or C needs.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

pub(super) struct Limiter {
    inner: StoreLimits,
    memory_limit: usize,
    memory_exceeded: bool,
    /// Total size of the store's linear memories: every creation and granted
    /// growth goes through `memory_growing`, and wasm memories never shrink,
    /// so this is also the peak.
    memory_bytes: u64,
}

impl Limiter {
    pub(super) fn new(memory_bytes: u64) -> Self {
        let memory_limit = usize::try_from(memory_bytes).unwrap_or(usize::MAX);
        let inner = StoreLimitsBuilder::new()
            .memory_size(memory_limit)
            .table_elements(MAX_TABLE_ELEMENTS)
            // Fail the growth with a trap instead of returning -1 to the guest:
            // most guests abort on allocation failure anyway, and a trap ends the
            // call at once with a clear cause.
            .trap_on_grow_failure(true)
            .build();
        Self { inner, memory_limit, memory_exceeded: false, memory_bytes: 0 }
    }

    /// Whether a memory allocation was refused because of the cap.
    pub(super) fn memory_exceeded(&self) -> bool {
        self.memory_exceeded
    }

    /// The largest total linear memory of the store so far, in bytes.
    pub(super) fn peak_memory(&self) -> u64 {
        self.memory_bytes
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = true;
        }
        let granted = self.inner.memory_growing(current, desired, maximum)?;
        if granted {
            self.memory_bytes = self.memory_bytes.saturating_add(desired.saturating_sub(current) as u64);
        }
        Ok(granted)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_a_refused_growth() {
        let mut limiter = Limiter::new(2 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!limiter.memory_exceeded());
        assert!(limiter.memory_growing(1 << 20, 3 << 20, None).is_err());
        assert!(limiter.memory_exceeded());
    }

    #[test]
    fn tracks_the_peak_of_granted_memory() {
        let mut limiter = Limiter::new(2 << 20);
        assert_eq!(limiter.peak_memory(), 0);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap()); // a memory is created
        assert!(limiter.memory_growing(0, 64 << 10, None).unwrap()); // a second one
        assert_eq!(limiter.peak_memory(), (1 << 20) + (64 << 10));
        assert!(limiter.memory_growing(1 << 20, 2 << 20, None).unwrap()); // exactly the cap
        assert_eq!(limiter.peak_memory(), (2 << 20) + (64 << 10));
        // A refused growth adds nothing.
        assert!(limiter.memory_growing(2 << 20, 3 << 20, None).is_err());
        assert_eq!(limiter.peak_memory(), (2 << 20) + (64 << 10));
        // A growth the memory's own maximum refuses adds nothing either.
        let mut limiter = Limiter::new(2 << 20);
        assert!(!limiter.memory_growing(0, 1 << 20, Some(64 << 10)).unwrap_or(false));
        assert_eq!(limiter.peak_memory(), 0);
    }
}
