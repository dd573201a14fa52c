//! Bronze ingest plugins: the [`Ingest`] trait and its `ingest-plugin` export.

use std::cell::RefCell;
use std::marker::PhantomData;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::__private::Named;
use crate::__private::common::exports::floe::plugin::meta;
use crate::__private::common::floe::plugin::types as wit_types;
use crate::__private::ingest_world::exports::floe::plugin::ingest as wit;
use crate::ipc::StreamEncoder;
use crate::{Config, PluginError};

/// A bronze ingest plugin: parses the raw bytes of one source object into
/// Arrow record batches. One value parses one object; the host feeds it the
/// bytes in file order, in chunks whose boundaries may fall anywhere (inside a
/// record, inside a UTF-8 sequence).
///
/// The SDK does the IPC framing: the schema message goes out as soon as
/// [`schema`](Ingest::schema) returns `Some` (or with the first batch), each
/// batch as soon as it is returned, and the end-of-stream marker after
/// [`finish`](Ingest::finish). After the first error every later call fails
/// with the same error, and calls after `finish` are errors.
///
/// Return batches of many thousands of rows: every call crosses the sandbox,
/// and the batch layout should not depend on the chunking (cut batches by row
/// count, not at chunk ends), so that outputs are reproducible.
pub trait Ingest: Sized + 'static {
    /// JSON Schema of the accepted `config` map, shown by
    /// `floe-host plugin inspect`.
    const CONFIG_SCHEMA: &'static str = crate::ANY_CONFIG_SCHEMA;

    /// Starts parsing the object `source` (its path relative to the project,
    /// for error messages only). Reject a bad config here.
    fn open(config: &Config, source: &str) -> Result<Self, PluginError>;

    /// Feeds the next chunk; returns the batches completed so far.
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>, PluginError>;

    /// Ends the object; returns the remaining batches.
    fn finish(&mut self) -> Result<Vec<RecordBatch>, PluginError>;

    /// The output schema, once it is known (e.g. after a header line). It must
    /// be known by the end of `finish`, even for an object with no records, so
    /// that the stream always has a schema.
    fn schema(&self) -> Option<SchemaRef>;
}

/// The `ingest-plugin` export of an [`Ingest`] type (see `export_ingest!`).
#[doc(hidden)]
pub struct IngestExport<T>(PhantomData<T>);

impl<T: Ingest + Named> meta::Guest for IngestExport<T> {
    fn info() -> wit_types::PluginInfo {
        wit_types::PluginInfo {
            name: T::NAME.to_owned(),
            version: T::VERSION.to_owned(),
            kind: wit_types::PluginKind::Ingest,
            config_schema: T::CONFIG_SCHEMA.to_owned(),
        }
    }
}

impl<T: Ingest + Named> wit::Guest for IngestExport<T> {
    type Parser = Parser<T>;

    fn open(config: Vec<(String, String)>, source_name: String) -> Result<wit::Parser, wit_types::PluginError> {
        let plugin = T::open(&Config::new(config), &source_name)?;
        Ok(wit::Parser::new(Parser::<T>(RefCell::new(Run {
            plugin,
            out: StreamEncoder::new(),
            failed: None,
            finished: false,
        }))))
    }
}

/// The `parser` resource. WIT methods take `&self`; calls never overlap.
#[doc(hidden)]
pub struct Parser<T>(RefCell<Run<T>>);

struct Run<T> {
    plugin: T,
    out: StreamEncoder,
    /// Set after the first error: the stream is broken, every later call fails.
    failed: Option<PluginError>,
    finished: bool,
}

impl<T: Ingest> Run<T> {
    fn guard(&mut self, f: impl FnOnce(&mut Self) -> Result<Vec<u8>, PluginError>) -> Result<Vec<u8>, PluginError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = f(self);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    fn emit(&mut self, batches: Vec<RecordBatch>) -> Result<(), PluginError> {
        if self.out.schema().is_none() {
            let schema = self.plugin.schema().or_else(|| batches.first().map(|b| b.schema()));
            if let Some(schema) = schema {
                self.out.start(&schema)?;
            }
        }
        for batch in &batches {
            self.out.write(batch)?;
        }
        Ok(())
    }
}

impl<T: Ingest> wit::GuestParser for Parser<T> {
    fn push(&self, chunk: Vec<u8>) -> Result<Vec<u8>, wit_types::PluginError> {
        let mut run = self.0.borrow_mut();
        Ok(run.guard(|run| {
            if run.finished {
                return Err(PluginError::internal("push after finish"));
            }
            let batches = run.plugin.push(&chunk)?;
            run.emit(batches)?;
            Ok(run.out.take())
        })?)
    }

    fn finish(&self) -> Result<Vec<u8>, wit_types::PluginError> {
        let mut run = self.0.borrow_mut();
        Ok(run.guard(|run| {
            if run.finished {
                return Err(PluginError::internal("finish called twice"));
            }
            run.finished = true;
            let batches = run.plugin.finish()?;
            run.emit(batches)?;
            if run.out.schema().is_none() {
                return Err(PluginError::internal(
                    "the plugin finished without an output schema (`Ingest::schema` returned none)",
                ));
            }
            run.out.finish()?;
            Ok(run.out.take())
        })?)
    }
}
