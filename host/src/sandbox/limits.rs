//! Per-store resource limits. The memory cap covers the whole plugin
//! instance, not one linear memory: a component can carry many core
//! instances, each with its own memories and tables, so every memory and
//! every table element of the store is charged to one budget. The limiter
//! also records whether that budget was hit, so that the resulting trap is
//! reported as a memory limit rather than a generic crash, and the store's
//! peak.

use wasmtime::ResourceLimiter;

/// Bytes charged per table element. wasmtime stores one pointer per element
/// (8 bytes here); twice that covers its lazy-initialisation bookkeeping, so
/// the charge is never below what the host really spends.
const TABLE_ELEMENT_BYTES: u64 = 16;

/// Counts per store. Compiled Rust needs one core instance with one memory
/// and one table, plus WASI adapter instances; these are far above that and
/// far below what would cost the host real memory in fixed overhead (each
/// memory reserves address space and host-side bookkeeping).
const MAX_INSTANCES: usize = 256;
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 64;

pub(super) struct Limiter {
    /// The budget for all linear memories and tables of the store, in bytes.
    limit: u64,
    /// Bytes of every memory and table the store holds now. Wasm memories and
    /// tables never shrink, so this is also the peak.
    charged: u64,
    /// Of `charged`, the bytes of linear memories (for `peak_memory`).
    memory_bytes: u64,
    exceeded: bool,
}

impl Limiter {
    pub(super) fn new(limit: u64) -> Self {
        Self { limit, charged: 0, memory_bytes: 0, exceeded: false }
    }

    /// Whether a memory or table allocation was refused because of the cap.
    pub(super) fn memory_exceeded(&self) -> bool {
        self.exceeded
    }

    /// The largest total linear memory of the store so far, in bytes.
    pub(super) fn peak_memory(&self) -> u64 {
        self.memory_bytes
    }

    /// Charges `extra` bytes if the budget allows; a refusal is an error,
    /// so that the growth traps at once with a clear cause (most guests
    /// abort on allocation failure anyway).
    fn charge(&mut self, extra: u64, what: &str) -> wasmtime::Result<()> {
        let total = self.charged.saturating_add(extra);
        if total > self.limit {
            self.exceeded = true;
            return Err(wasmtime::format_err!(
                "{what}: the plugin instance would hold {total} bytes of memories and tables, over its limit of {} bytes",
                self.limit
            ));
        }
        self.charged = total;
        Ok(())
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            // The memory's own maximum refuses it; nothing is charged.
            return Ok(false);
        }
        let extra = desired.saturating_sub(current) as u64;
        self.charge(extra, "growing a linear memory")?;
        self.memory_bytes = self.memory_bytes.saturating_add(extra);
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        let extra = (desired.saturating_sub(current) as u64).saturating_mul(TABLE_ELEMENT_BYTES);
        self.charge(extra, "growing a table")?;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
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
    fn charges_every_memory_and_table_of_the_store_to_one_budget() {
        let mut limiter = Limiter::new(2 << 20);
        assert_eq!(limiter.peak_memory(), 0);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap()); // a memory is created
        assert!(limiter.memory_growing(0, 64 << 10, None).unwrap()); // a second one
        assert_eq!(limiter.peak_memory(), (1 << 20) + (64 << 10));
        // A third memory of 1 MiB is within the per-memory size but not the total.
        assert!(limiter.memory_growing(0, 1 << 20, None).is_err());
        assert!(limiter.memory_exceeded());
        assert_eq!(limiter.peak_memory(), (1 << 20) + (64 << 10));
        // Tables draw on the same budget: 4,000 elements are 64,000 bytes.
        let mut limiter = Limiter::new(1 << 20);
        assert!(limiter.table_growing(0, 4_000, None).unwrap());
        assert!(limiter.memory_growing(0, (1 << 20) - 64_000, None).unwrap());
        assert!(limiter.table_growing(4_000, 4_001, None).is_err());
        // A growth the memory's own maximum refuses adds nothing.
        let mut limiter = Limiter::new(2 << 20);
        assert!(!limiter.memory_growing(0, 1 << 20, Some(64 << 10)).unwrap());
        assert_eq!(limiter.peak_memory(), 0);
        assert!(!limiter.memory_exceeded());
    }

    /// Real instantiation through wasmtime: a module whose three memories are
    /// each under the cap, or whose two tables each look small, is refused as
    /// a whole. (Hand-encoded modules: a header, then one section.)
    #[test]
    fn wasmtime_charges_every_memory_and_table_of_an_instance() {
        const HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
        // Memory section: three memories of 16 pages (1 MiB) each.
        let three_memories = [&HEADER[..], &[0x05, 0x07, 0x03, 0x00, 0x10, 0x00, 0x10, 0x00, 0x10]].concat();
        // Table section: two funcref tables of 100,000 elements each.
        let two_tables =
            [&HEADER[..], &[0x04, 0x0b, 0x02, 0x70, 0x00, 0xa0, 0x8d, 0x06, 0x70, 0x00, 0xa0, 0x8d, 0x06]].concat();
        let engine = wasmtime::Engine::default();
        let instantiate = |bytes: &[u8], limit: u64| {
            let module = wasmtime::Module::new(&engine, bytes).unwrap();
            let mut store = wasmtime::Store::new(&engine, Limiter::new(limit));
            store.limiter(|l| l);
            let result = wasmtime::Instance::new(&mut store, &module, &[]).map(|_| ());
            (result, store.data().memory_exceeded(), store.data().charged)
        };
        let (result, exceeded, _) = instantiate(&three_memories, 2 << 20);
        assert!(result.is_err() && exceeded, "three 1 MiB memories under a 2 MiB cap");
        let (result, _, charged) = instantiate(&three_memories, 3 << 20);
        assert!(result.is_ok());
        assert_eq!(charged, 3 << 20);
        // 200,000 elements are 3.2 MB of charge: over 2 MiB, under 4 MiB.
        let (result, exceeded, _) = instantiate(&two_tables, 2 << 20);
        assert!(result.is_err() && exceeded, "two tables of 100,000 elements under a 2 MiB cap");
        assert!(instantiate(&two_tables, 4 << 20).0.is_ok());
    }
}
