//! The integration test binary: one per crate, with a module per area.

mod adversarial;
mod catalogs;
mod config_errors;
mod crafted_wasm;
mod crash;
mod demo;
mod deploy;
mod examples;
mod golden;
mod guards;
mod hostile_sql;
mod lineage;
mod logs;
mod partitions;
mod pipes;
mod plugin_tool;
mod sandbox;
mod secrets;
mod select;
mod signals;
mod sources;
mod support;
mod terminal;
mod traces;
mod transform;
mod write_modes;
