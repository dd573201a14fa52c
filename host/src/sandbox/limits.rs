//! Per-store resource limits: wasmtime's `StoreLimits` plus a record of whether
//! the memory cap was hit, so that the resulting trap is reported as a memory
//! limit rather than a generic crash.

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// Table elements per table: far above what compiled Rust or C needs.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

pub(super) struct Limiter {
    inner: StoreLimits,
    memory_limit: usize,
    memory_exceeded: bool,
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
        Self {
            inner,
            memory_limit,
            memory_exceeded: false,
        }
    }

    /// Whether a memory allocation was refused because of the cap.
    pub(super) fn memory_exceeded(&self) -> bool {
        self.memory_exceeded
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = true;
        }
        self.inner.memory_growing(current, desired, maximum)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
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
}
