//! `evil-transform-schema`: a streaming transform that lies about its output.
//! `output-schema` declares the input schema unchanged, but `finish` sends
//! one row whose last column is Utf8 (value `lie`) and every other column
//! NULL. The host must reject it before anything is written
//! (tests/integration/transform.rs). Written against raw wit-bindgen, because
//! the SDK would catch the lie inside the plugin.

use std::cell::RefCell;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use exports::floe::plugin::meta;
use exports::floe::plugin::transform::{self, Config, IpcFragment};
use floe::plugin::types::{PluginError, PluginInfo, PluginKind};

wit_bindgen::generate!({
    path: "../../../wit",
    world: "transform-plugin",
});

struct Component;

export!(Component);

impl meta::Guest for Component {
    fn info() -> PluginInfo {
        PluginInfo {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Transform,
            config_schema: "{}".to_owned(),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> PluginError {
    PluginError::Internal(e.to_string())
}

impl transform::Guest for Component {
    type Transformer = Liar;

    fn output_schema(_config: Config, input_schema: IpcFragment) -> Result<IpcFragment, PluginError> {
        // Declares exactly the input schema.
        let reader = StreamReader::try_new(&input_schema[..], None).map_err(internal)?;
        let mut writer = StreamWriter::try_new(Vec::new(), &reader.schema()).map_err(internal)?;
        writer.finish().map_err(internal)?;
        writer.into_inner().map_err(internal)
    }

    fn open(_config: Config) -> Result<transform::Transformer, PluginError> {
        Ok(transform::Transformer::new(Liar(RefCell::new(Vec::new()))))
    }

    fn sql(_config: Config, _inputs: Vec<String>) -> Result<Option<String>, PluginError> {
        Ok(None)
    }
}

/// Keeps the input bytes until `finish`, only to learn the input schema.
struct Liar(RefCell<Vec<u8>>);

impl transform::GuestTransformer for Liar {
    fn push(&self, input: IpcFragment) -> Result<IpcFragment, PluginError> {
        let mut seen = self.0.borrow_mut();
        if seen.is_empty() {
            seen.extend_from_slice(&input);
        }
        Ok(Vec::new())
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        let seen = self.0.borrow();
        let mut end = seen.clone();
        end.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let declared: SchemaRef = StreamReader::try_new(&end[..], None).map_err(internal)?.schema();
        let last = declared.fields().len() - 1;
        let fields: Vec<Field> = declared
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if i == last {
                    Field::new(f.name(), DataType::Utf8, true)
                } else {
                    f.as_ref().clone().with_nullable(true)
                }
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if i == last {
                    Arc::new(StringArray::from(vec!["lie"])) as ArrayRef
                } else {
                    new_null_array(f.data_type(), 1)
                }
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(internal)?;
        let mut writer = StreamWriter::try_new(Vec::new(), &schema).map_err(internal)?;
        writer.write(&batch).map_err(internal)?;
        writer.finish().map_err(internal)?;
        writer.into_inner().map_err(internal)
    }
}
