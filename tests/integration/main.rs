//! The integration test binary: one per crate, with a module per area.

mod adversarial;
mod config_errors;
mod demo;
mod examples;
mod golden;
mod plugin_tool;
mod sandbox;
mod secrets;
mod support;
mod transform;
