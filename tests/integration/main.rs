//! The integration test binary: one per crate, with a module per area.

mod config_errors;
mod demo;
mod sandbox;
mod support;
