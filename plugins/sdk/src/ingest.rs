//! Bronze ingest plugins: the [`Ingest`] trait and its `ingest-plugin` export.

use std::cell::RefCell;
use std::marker::PhantomData;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::__private::Named;
use crate::__private::chunks_world::exports::floe::plugin::ingest_chunks as wit_chunks;
use crate::__private::common::exports::floe::plugin::meta;
use crate::__private::common::floe::plugin::types as wit_types;
use crate::__private::ingest_world::exports::floe::plugin::ingest as wit;
use crate::ipc::StreamEncoder;
use crate::lines::{Quoting, RecordSyntax};
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

    /// Parallel ingest, optional: how records are delimited in objects parsed
    /// with `config`. With `Some`, the host may cut an object into chunks at
    /// record boundaries and parse them in separate instances at once: for
    /// each chunk it calls [`open`](Ingest::open), pushes the object's header
    /// records unless the chunk starts the object (they must yield no batch),
    /// calls [`resume_at`](Ingest::resume_at), pushes the chunk's bytes and
    /// calls [`finish`](Ingest::finish). Declare a syntax only if the parser
    /// frames records by exactly these rules (use
    /// [`Lines::new`](crate::lines::Lines::new) with the same quoting) and
    /// implements `resume_at`. The default: objects are parsed in one piece.
    fn record_syntax(config: &Config) -> Result<Option<RecordSyntax>, PluginError> {
        let _ = config;
        Ok(None)
    }

    /// Parallel ingest: the bytes pushed next start record `first_record`
    /// (1-based, counting the records after the header records as
    /// [`RecordSyntax`] counts them) on line `first_line` (1-based). Called
    /// once per chunk, before the chunk's first byte (for the first chunk,
    /// which holds the header itself, with 1 and 1 before anything was
    /// pushed); record numbers and error messages must continue from there.
    /// The host only cuts objects of more than one chunk: a plugin that sees
    /// this call is parsing a part of an object.
    fn resume_at(&mut self, first_record: u64, first_line: u64) -> Result<(), PluginError> {
        let _ = (first_record, first_line);
        Err(PluginError::internal("this plugin declares a record syntax but cannot resume at a record"))
    }
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

impl<T: Ingest + Named> wit_chunks::Guest for IngestExport<T> {
    fn syntax(config: Vec<(String, String)>) -> Result<Option<wit_chunks::RecordSyntax>, wit_types::PluginError> {
        let syntax = T::record_syntax(&Config::new(config))?;
        Ok(syntax.map(|s| wit_chunks::RecordSyntax {
            header_records: s.header_records,
            quoting: s.quoting.map(|Quoting { quote, delimiter }| wit_chunks::Quoting { quote, delimiter }),
        }))
    }

    fn parse_chunk(
        config: Vec<(String, String)>,
        source_name: String,
        chunk: wit_chunks::Chunk,
    ) -> Result<Vec<u8>, wit_types::PluginError> {
        let plugin = T::open(&Config::new(config), &source_name)?;
        let mut run = Run { plugin, out: StreamEncoder::new(), failed: None, finished: false };
        if !chunk.header.is_empty() && !run.plugin.push(&chunk.header)?.is_empty() {
            return Err(PluginError::internal("the header records produced rows").into());
        }
        run.plugin.resume_at(chunk.first_record, chunk.first_line)?;
        drop(chunk.header);
        let batches = run.plugin.push(&chunk.bytes)?;
        drop(chunk.bytes);
        run.emit(batches)?;
        Ok(run.end()?)
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

    /// Ends the input: the plugin's last batches and the end-of-stream
    /// marker, as the final fragment.
    fn end(&mut self) -> Result<Vec<u8>, PluginError> {
        self.finished = true;
        let batches = self.plugin.finish()?;
        self.emit(batches)?;
        if self.out.schema().is_none() {
            return Err(PluginError::internal(
                "the plugin finished without an output schema (`Ingest::schema` returned none)",
            ));
        }
        self.out.finish()?;
        Ok(self.out.take())
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
            run.end()
        })?)
    }
}
