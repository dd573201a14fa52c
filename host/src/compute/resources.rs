//! The default DuckDB memory limit: about 67% of what the process may use,
//! read from the cgroup v2 limit in a container and from physical RAM otherwise,
//! so DuckDB spills before the kernel's OOM killer ends the pod.

use std::path::Path;

/// The share of the memory limit that DuckDB gets; the rest is for Arrow
/// batches in flight, plugins and the host itself.
const DUCKDB_SHARE: f64 = 0.67;

/// About 67% of the container limit or of RAM, in bytes; `None` when neither
/// can be read (DuckDB then applies its own default).
pub fn default_memory_limit() -> Option<u64> {
    let total = cgroup_limit(Path::new("/sys/fs/cgroup/memory.max")).or_else(physical_memory)?;
    Some((total as f64 * DUCKDB_SHARE) as u64)
}

fn cgroup_limit(path: &Path) -> Option<u64> {
    parse_memory_max(&std::fs::read_to_string(path).ok()?)
}

/// `memory.max` holds a byte count, or `max` when unlimited.
fn parse_memory_max(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

fn physical_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_total(&meminfo)
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cgroup_and_meminfo_formats() {
        assert_eq!(parse_memory_max("12884901888\n"), Some(12_884_901_888));
        assert_eq!(parse_memory_max("max\n"), None);
        assert_eq!(parse_mem_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"), Some(24_576_000 * 1024));
    }
}
