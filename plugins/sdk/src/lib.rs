//! `floe-plugin-sdk`: write floe plugins as plain Rust.
//!
//! A floe plugin is a WebAssembly component that implements one world of
//! `wit/floe-plugin.wit`. This crate hides the component model: it generates
//! the bindings, frames Arrow data as IPC stream fragments, parses the step's
//! `config` map and forwards log lines to the host. An author implements one
//! trait and calls one macro:
//!
//! | plugin | trait | macro |
//! |---|---|---|
//! | bronze ingest (bytes → Arrow) | [`Ingest`] | [`export_ingest!`] |
//! | streaming transform (Arrow → Arrow) | [`Transform`] | [`export_transform!`] |
//! | SQL-mode transform (config → DuckDB query) | [`SqlTransform`] | [`export_sql_transform!`] |
//!
//! ```ignore
//! use floe_plugin_sdk::prelude::*;
//!
//! /// Passes every batch through unchanged.
//! struct Identity;
//!
//! impl Transform for Identity {
//!     fn output_schema(config: &Config, input: &SchemaRef) -> Result<SchemaRef, PluginError> {
//!         config.check_keys(&[])?;
//!         Ok(input.clone())
//!     }
//!     fn open(_config: &Config, _input: &SchemaRef) -> Result<Self, PluginError> {
//!         Ok(Identity)
//!     }
//!     fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, PluginError> {
//!         Ok(vec![batch])
//!     }
//! }
//!
//! export_transform!(Identity);
//! ```
//!
//! Keyed state that must hold millions of keys (deduplication, first-seen
//! tracking) fits the plugin's memory in a [`KeySet`].
//!
//! The crate is a `cdylib` built for `wasm32-wasip2`
//! (`cargo build --target wasm32-wasip2 --release`); the build produces the
//! component directly. Package name and version (from `Cargo.toml`) become the
//! plugin's `info`.

// The generated bindings name their runtime through this crate's own path, so
// that the export macros also work from plugin crates that do not depend on
// `wit-bindgen` themselves.
extern crate self as floe_plugin_sdk;

pub mod config;
mod error;
mod ingest;
pub mod ipc;
mod key_set;
pub mod lines;
pub mod log;
mod transform;

pub use arrow_array;
pub use arrow_schema;
pub use config::Config;
pub use error::PluginError;
pub use ingest::Ingest;
pub use key_set::KeySet;
pub use transform::{SqlTransform, Transform};

/// JSON Schema used as `CONFIG_SCHEMA` when a plugin does not declare one: any
/// object of string values.
pub const ANY_CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": { "type": "string" }
}"#;

/// Everything a plugin usually needs: the traits, [`Config`], [`PluginError`],
/// the Arrow types they mention and the export macros.
pub mod prelude {
    pub use crate::arrow_array::{ArrayRef, RecordBatch};
    pub use crate::arrow_schema::{DataType, Field, Schema, SchemaRef};
    pub use crate::{
        Config, Ingest, PluginError, SqlTransform, Transform, export_ingest, export_sql_transform, export_transform,
    };
}

/// Implementation details the export macros expand to. Not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    pub use crate::ingest::IngestExport;
    pub use crate::transform::{SqlTransformExport, TransformExport};

    /// The package name and version of the plugin crate, filled in by the
    /// export macros (they expand inside the plugin crate, where `env!` sees
    /// its `Cargo.toml`).
    pub trait Named {
        const NAME: &'static str;
        const VERSION: &'static str;
    }

    // The two worlds of `wit/floe-plugin.wit` both export `meta`, and the
    // macros wit-bindgen generates for an exported interface are named after
    // the interface alone, so generating both worlds in one crate would define
    // `meta`'s macros twice. The worlds are therefore generated in three
    // pieces that wit-component unions back together when the plugin is
    // componentized: `common` (import `log`, export `meta`), `ingest_world`
    // (export `ingest`) and `transform_world` (export `transform`). An
    // `export_*!` macro exports `common` plus one of the other two, which
    // gives exactly the `ingest-plugin` or `transform-plugin` world; ingest
    // also exports `chunks_world` (`ingest-chunks`).

    /// `log` and `meta`, shared by both worlds.
    pub mod common {
        wit_bindgen::generate!({
            path: "../../wit",
            inline: "package floe:sdk; world common { import floe:plugin/log@0.1.0; export floe:plugin/meta@0.1.0; }",
            world: "floe:sdk/common",
            generate_all,
            pub_export_macro: true,
            export_macro_name: "export_common",
            default_bindings_module: "floe_plugin_sdk::__private::common",
            runtime_path: "floe_plugin_sdk::__private::wit_bindgen::rt",
        });
    }

    /// The `ingest` export.
    pub mod ingest_world {
        wit_bindgen::generate!({
            path: "../../wit",
            inline: "package floe:sdk; world ingest { export floe:plugin/ingest@0.1.0; }",
            world: "floe:sdk/ingest",
            with: { "floe:plugin/types@0.1.0": crate::__private::common::floe::plugin::types },
            pub_export_macro: true,
            export_macro_name: "export_ingest_world",
            default_bindings_module: "floe_plugin_sdk::__private::ingest_world",
            runtime_path: "floe_plugin_sdk::__private::wit_bindgen::rt",
        });
    }

    /// The `ingest-chunks` export (parallel ingest), beside `ingest`.
    pub mod chunks_world {
        wit_bindgen::generate!({
            path: "../../wit",
            inline: "package floe:sdk; world chunks { export floe:plugin/ingest-chunks@0.1.0; }",
            world: "floe:sdk/chunks",
            with: { "floe:plugin/types@0.1.0": crate::__private::common::floe::plugin::types },
            pub_export_macro: true,
            export_macro_name: "export_chunks_world",
            default_bindings_module: "floe_plugin_sdk::__private::chunks_world",
            runtime_path: "floe_plugin_sdk::__private::wit_bindgen::rt",
        });
    }

    /// The `transform` export.
    pub mod transform_world {
        wit_bindgen::generate!({
            path: "../../wit",
            inline: "package floe:sdk; world transform { export floe:plugin/transform@0.1.0; }",
            world: "floe:sdk/transform",
            with: { "floe:plugin/types@0.1.0": crate::__private::common::floe::plugin::types },
            pub_export_macro: true,
            export_macro_name: "export_transform_world",
            default_bindings_module: "floe_plugin_sdk::__private::transform_world",
            runtime_path: "floe_plugin_sdk::__private::wit_bindgen::rt",
        });
    }
}

/// Exports `$ty`, which implements [`Ingest`], as the plugin's
/// `ingest-chunks-plugin` world (`ingest-plugin` plus `ingest-chunks`, whose
/// `record-syntax` says none unless `$ty` declares one). Call it once, at the
/// crate root of a `cdylib`.
#[macro_export]
macro_rules! export_ingest {
    ($ty:ty) => {
        impl $crate::__private::Named for $ty {
            const NAME: &'static str = env!("CARGO_PKG_NAME");
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
        }
        #[doc(hidden)]
        type __FloeIngestExport = $crate::__private::IngestExport<$ty>;
        $crate::__private::common::export_common!(
            __FloeIngestExport with_types_in $crate::__private::common
        );
        $crate::__private::ingest_world::export_ingest_world!(
            __FloeIngestExport with_types_in $crate::__private::ingest_world
        );
        $crate::__private::chunks_world::export_chunks_world!(
            __FloeIngestExport with_types_in $crate::__private::chunks_world
        );
    };
}

/// Exports `$ty`, which implements [`Transform`], as the plugin's
/// `transform-plugin` world in streaming mode (`sql` returns none). Call it
/// once, at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_transform {
    ($ty:ty) => {
        impl $crate::__private::Named for $ty {
            const NAME: &'static str = env!("CARGO_PKG_NAME");
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
        }
        #[doc(hidden)]
        type __FloeTransformExport = $crate::__private::TransformExport<$ty>;
        $crate::__private::common::export_common!(
            __FloeTransformExport with_types_in $crate::__private::common
        );
        $crate::__private::transform_world::export_transform_world!(
            __FloeTransformExport with_types_in $crate::__private::transform_world
        );
    };
}

/// Exports `$ty`, which implements [`SqlTransform`], as the plugin's
/// `transform-plugin` world in SQL mode (`output-schema` and `open` return an
/// error). Call it once, at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_sql_transform {
    ($ty:ty) => {
        impl $crate::__private::Named for $ty {
            const NAME: &'static str = env!("CARGO_PKG_NAME");
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
        }
        #[doc(hidden)]
        type __FloeSqlTransformExport = $crate::__private::SqlTransformExport<$ty>;
        $crate::__private::common::export_common!(
            __FloeSqlTransformExport with_types_in $crate::__private::common
        );
        $crate::__private::transform_world::export_transform_world!(
            __FloeSqlTransformExport with_types_in $crate::__private::transform_world
        );
    };
}
