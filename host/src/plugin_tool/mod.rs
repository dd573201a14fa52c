//! `floe-host plugin …`: tools for plugin authors. `inspect` describes a
//! component, `new` scaffolds a project (Rust or JavaScript) that builds into
//! one, and `test` runs a component on a local file, in the same sandbox a
//! pipeline uses.

mod js_templates;
mod py_templates;
mod scaffold;
mod sdk_files;
mod templates;
mod trial;

pub use scaffold::{Lang, ScaffoldError, scaffold};
pub use templates::Kind;
pub use trial::{TrialError, TrialOutput, check_output_path, trial};
