//! floe-host: runs medallion lakehouse pipelines whose logic ships as sandboxed
//! WebAssembly components.
//!
//! The modules follow the data path: `config` (two-tier YAML, validated) →
//! `plan` (the ordered steps, pure) → `sandbox` (wasmtime, limits, Arrow IPC) →
//! `compute` (ephemeral DuckDB) → `lakehouse` (Iceberg catalogs, writers,
//! commits) → `run` (drives the steps). `exit` maps every failure to a stable
//! process exit code.

pub mod compute;
pub mod config;
pub mod exit;
pub mod failpoint;
pub mod init;
pub mod lakehouse;
pub mod maintain;
pub mod observe;
pub mod plan;
pub mod plugin_tool;
pub mod preview;
pub mod run;
pub mod sandbox;
pub mod show;
