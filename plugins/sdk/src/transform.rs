//! Silver/gold transform plugins: the [`Transform`] (streaming) and
//! [`SqlTransform`] (SQL mode) traits and their `transform-plugin` exports.

use std::cell::RefCell;
use std::marker::PhantomData;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::__private::Named;
use crate::__private::common::exports::floe::plugin::meta;
use crate::__private::common::floe::plugin::types as wit_types;
use crate::__private::transform_world::exports::floe::plugin::transform as wit;
use crate::ipc::{self, StreamDecoder, StreamEncoder};
use crate::{Config, PluginError};

/// A streaming transform: Arrow batches in, Arrow batches out, with state
/// across batches if it needs any.
///
/// The host first asks for the [`output_schema`](Transform::output_schema)
/// and checks every output batch against it before anything is written. Then
/// one value is [`open`](Transform::open)ed per run, gets every input batch
/// through [`push`](Transform::push) and a final [`finish`](Transform::finish).
/// The host chooses the input batch sizes, so the output must not depend on
/// where batch boundaries fall.
///
/// Output batches must have the declared schema's field names and types in
/// order; the SDK relabels them with the declared schema (so a batch built
/// with non-nullable fields is fine where nullable ones were declared, but a
/// null in a field declared non-nullable is an error).
pub trait Transform: Sized + 'static {
    /// JSON Schema of the accepted `config` map, shown by
    /// `floe-host plugin inspect`.
    const CONFIG_SCHEMA: &'static str = crate::ANY_CONFIG_SCHEMA;

    /// The schema the output will have for `input`. Check the config here
    /// (keys, values, the columns it names), with errors that name the key
    /// and the column: the host calls this before any data flows.
    fn output_schema(config: &Config, input: &SchemaRef) -> Result<SchemaRef, PluginError>;

    /// Starts a run over an input with schema `input` (the same config and
    /// schema `output_schema` accepted).
    fn open(config: &Config, input: &SchemaRef) -> Result<Self, PluginError>;

    /// Takes the next input batch; returns the output batches it completes
    /// (possibly none).
    fn push(&mut self, batch: RecordBatch) -> Result<Vec<RecordBatch>, PluginError>;

    /// Ends the input; returns the remaining output batches. The default
    /// returns none, which suits transforms that hold nothing back.
    fn finish(&mut self) -> Result<Vec<RecordBatch>, PluginError> {
        Ok(Vec::new())
    }
}

/// A SQL-mode transform: builds a DuckDB query from its config, which the
/// host runs over the step's declared inputs. No data passes through the
/// plugin.
pub trait SqlTransform: 'static {
    /// JSON Schema of the accepted `config` map, shown by
    /// `floe-host plugin inspect`.
    const CONFIG_SCHEMA: &'static str = crate::ANY_CONFIG_SCHEMA;

    /// The query, over `inputs` (`layer.table` names, in the order the step
    /// declares them).
    fn sql(config: &Config, inputs: &[String]) -> Result<String, PluginError>;
}

fn info<T: Named>(config_schema: &str) -> wit_types::PluginInfo {
    wit_types::PluginInfo {
        name: T::NAME.to_owned(),
        version: T::VERSION.to_owned(),
        kind: wit_types::PluginKind::Transform,
        config_schema: config_schema.to_owned(),
    }
}

/// The streaming `transform-plugin` export of a [`Transform`] type (see
/// `export_transform!`).
#[doc(hidden)]
pub struct TransformExport<T>(PhantomData<T>);

impl<T: Transform + Named> meta::Guest for TransformExport<T> {
    fn info() -> wit_types::PluginInfo {
        info::<T>(T::CONFIG_SCHEMA)
    }
}

impl<T: Transform + Named> wit::Guest for TransformExport<T> {
    type Transformer = Transformer<T>;

    fn output_schema(config: Vec<(String, String)>, input_schema: Vec<u8>) -> Result<Vec<u8>, wit_types::PluginError> {
        let input = ipc::decode_schema(input_schema)?;
        let output = T::output_schema(&Config::new(config), &input)?;
        Ok(ipc::encode_schema(&output)?)
    }

    fn open(config: Vec<(String, String)>) -> Result<wit::Transformer, wit_types::PluginError> {
        Ok(wit::Transformer::new(Transformer::<T>(RefCell::new(Run {
            config: Config::new(config),
            plugin: None,
            input: StreamDecoder::new(),
            out: StreamEncoder::new(),
            failed: None,
            finished: false,
        }))))
    }

    fn sql(_config: Vec<(String, String)>, _inputs: Vec<String>) -> Result<Option<String>, wit_types::PluginError> {
        Ok(None)
    }
}

/// The `transformer` resource. WIT methods take `&self`; calls never overlap.
#[doc(hidden)]
pub struct Transformer<T>(RefCell<Run<T>>);

struct Run<T> {
    config: Config,
    /// Opened when the input's schema message arrives (in the first `push`).
    plugin: Option<T>,
    input: StreamDecoder,
    out: StreamEncoder,
    /// Set after the first error: the stream is broken, every later call fails.
    failed: Option<PluginError>,
    finished: bool,
}

impl<T: Transform> Run<T> {
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

    fn push(&mut self, fragment: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        if self.finished {
            return Err(PluginError::internal("push after finish"));
        }
        let batches = self.input.push(fragment)?;
        if self.plugin.is_none()
            && let Some(input) = self.input.schema()
        {
            let output = T::output_schema(&self.config, &input)?;
            self.plugin = Some(T::open(&self.config, &input)?);
            self.out.start(&output)?;
        }
        for batch in batches {
            let plugin = self.plugin.as_mut().expect("a batch comes after the schema");
            for out in plugin.push(batch)? {
                self.out.write(&out)?;
            }
        }
        Ok(self.out.take())
    }

    fn finish(&mut self) -> Result<Vec<u8>, PluginError> {
        if self.finished {
            return Err(PluginError::internal("finish called twice"));
        }
        self.finished = true;
        let held_back = self.input.finish()?;
        let Some(plugin) = self.plugin.as_mut() else {
            return Err(PluginError::internal("the input ended before its schema message"));
        };
        for batch in held_back {
            for out in plugin.push(batch)? {
                self.out.write(&out)?;
            }
        }
        for out in plugin.finish()? {
            self.out.write(&out)?;
        }
        self.out.finish()?;
        Ok(self.out.take())
    }
}

impl<T: Transform> wit::GuestTransformer for Transformer<T> {
    fn push(&self, input: Vec<u8>) -> Result<Vec<u8>, wit_types::PluginError> {
        Ok(self.0.borrow_mut().guard(|run| run.push(input))?)
    }

    fn finish(&self) -> Result<Vec<u8>, wit_types::PluginError> {
        Ok(self.0.borrow_mut().guard(Run::finish)?)
    }
}

/// The SQL-mode `transform-plugin` export of a [`SqlTransform`] type (see
/// `export_sql_transform!`).
#[doc(hidden)]
pub struct SqlTransformExport<T>(PhantomData<T>);

const SQL_MODE: &str = "this is a SQL-mode transform: the host must call `sql`, not stream batches";

impl<T: SqlTransform + Named> meta::Guest for SqlTransformExport<T> {
    fn info() -> wit_types::PluginInfo {
        info::<T>(T::CONFIG_SCHEMA)
    }
}

impl<T: SqlTransform + Named> wit::Guest for SqlTransformExport<T> {
    type Transformer = SqlOnly;

    fn output_schema(
        _config: Vec<(String, String)>,
        _input_schema: Vec<u8>,
    ) -> Result<Vec<u8>, wit_types::PluginError> {
        Err(PluginError::internal(SQL_MODE).into())
    }

    fn open(_config: Vec<(String, String)>) -> Result<wit::Transformer, wit_types::PluginError> {
        Err(PluginError::internal(SQL_MODE).into())
    }

    fn sql(config: Vec<(String, String)>, inputs: Vec<String>) -> Result<Option<String>, wit_types::PluginError> {
        Ok(Some(T::sql(&Config::new(config), &inputs)?))
    }
}

/// The `transformer` resource of a SQL-mode plugin: never created.
#[doc(hidden)]
pub struct SqlOnly;

impl wit::GuestTransformer for SqlOnly {
    fn push(&self, _input: Vec<u8>) -> Result<Vec<u8>, wit_types::PluginError> {
        Err(PluginError::internal(SQL_MODE).into())
    }

    fn finish(&self) -> Result<Vec<u8>, wit_types::PluginError> {
        Err(PluginError::internal(SQL_MODE).into())
    }
}
