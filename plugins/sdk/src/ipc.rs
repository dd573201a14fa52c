//! Arrow IPC stream framing, as the host expects it.
//!
//! Everything a plugin returns from `push`/`finish` is a fragment of one IPC
//! stream: the schema message once, in the first non-empty fragment, then
//! record-batch messages, then the end-of-stream marker in the fragment
//! `finish` returns. [`StreamEncoder`] produces exactly that; the export
//! macros use it, so most plugins never touch this module. Transform input
//! arrives the same way and is read with [`StreamDecoder`].

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{Schema, SchemaRef};

use crate::PluginError;

/// Writes one output stream as a sequence of fragments.
#[derive(Default)]
pub struct StreamEncoder {
    writer: Option<StreamWriter<Vec<u8>>>,
    schema: Option<SchemaRef>,
    finished: bool,
}

impl StreamEncoder {
    /// An encoder that has not written anything yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The schema of the stream, once [`start`](Self::start) has run.
    pub fn schema(&self) -> Option<&SchemaRef> {
        self.schema.as_ref()
    }

    /// Writes the schema message. Call it once, before the first batch.
    pub fn start(&mut self, schema: &SchemaRef) -> Result<(), PluginError> {
        if self.writer.is_some() {
            return Err(PluginError::internal("the output stream was started twice"));
        }
        let writer =
            StreamWriter::try_new(Vec::new(), schema).map_err(|e| PluginError::internal(format!("IPC writer: {e}")))?;
        self.writer = Some(writer);
        self.schema = Some(schema.clone());
        Ok(())
    }

    /// Writes one batch. Its schema must match the stream's: the same field
    /// names and types in the same order. Nullability and metadata may differ;
    /// the batch is then relabelled with the stream's schema (which checks
    /// that no non-nullable field holds a null).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), PluginError> {
        let (Some(writer), Some(schema)) = (&mut self.writer, &self.schema) else {
            return Err(PluginError::internal("a batch was written before the schema"));
        };
        if self.finished {
            return Err(PluginError::internal("a batch was written after the end of the stream"));
        }
        let conformed;
        let batch = if Arc::ptr_eq(&batch.schema(), schema) || batch.schema() == *schema {
            batch
        } else {
            conformed = conform(batch, schema)?;
            &conformed
        };
        writer.write(batch).map_err(|e| PluginError::internal(format!("IPC writer: {e}")))
    }

    /// Writes the end-of-stream marker.
    pub fn finish(&mut self) -> Result<(), PluginError> {
        let Some(writer) = &mut self.writer else {
            return Err(PluginError::internal("the output stream ended before its schema"));
        };
        if !self.finished {
            writer.finish().map_err(|e| PluginError::internal(format!("IPC writer: {e}")))?;
            self.finished = true;
        }
        Ok(())
    }

    /// Takes the bytes written since the last call: the next fragment.
    pub fn take(&mut self) -> Vec<u8> {
        match &mut self.writer {
            Some(writer) => std::mem::take(writer.get_mut()),
            None => Vec::new(),
        }
    }
}

/// Relabels `batch` with `schema` if names and types agree, field by field.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, PluginError> {
    let got = batch.schema();
    if got.fields().len() != schema.fields().len() {
        return Err(PluginError::internal(format!(
            "an output batch has {} columns, but the declared output schema has {}",
            got.fields().len(),
            schema.fields().len()
        )));
    }
    for (g, want) in got.fields().iter().zip(schema.fields()) {
        if g.name() != want.name() || g.data_type() != want.data_type() {
            return Err(PluginError::internal(format!(
                "an output batch has field `{}: {}` where the declared output schema has `{}: {}`",
                g.name(),
                g.data_type(),
                want.name(),
                want.data_type()
            )));
        }
    }
    RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
        .map_err(|e| PluginError::internal(format!("an output batch does not fit the declared schema: {e}")))
}

/// Reads one input stream from a sequence of fragments.
#[derive(Default)]
pub struct StreamDecoder {
    inner: arrow_ipc::reader::StreamDecoder,
    /// The first bytes of the stream, kept until the schema is known.
    head: Vec<u8>,
    /// The schema, read from `head`: arrow's decoder only completes a message
    /// with an empty body (the schema message) once more bytes arrive, and a
    /// first fragment may hold nothing but the schema.
    schema: Option<SchemaRef>,
}

impl StreamDecoder {
    /// A decoder that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stream's schema, once its schema message has arrived.
    pub fn schema(&self) -> Option<SchemaRef> {
        self.inner.schema().or_else(|| self.schema.clone())
    }

    /// Adds one fragment; returns the batches it completes, in order. A
    /// fragment may end anywhere, even inside a message.
    pub fn push(&mut self, fragment: Vec<u8>) -> Result<Vec<RecordBatch>, PluginError> {
        if self.schema().is_none() {
            self.head.extend_from_slice(&fragment);
            self.schema = read_schema(&self.head)?;
            if self.schema.is_some() {
                self.head = Vec::new();
            }
        }
        self.decode(Buffer::from_vec(fragment))
    }

    /// Ends the stream; returns the batches still held back (a batch with an
    /// empty body is only complete once more bytes arrive). The host does not
    /// send the end-of-stream marker, so a stream cut inside a message is the
    /// only error.
    pub fn finish(&mut self) -> Result<Vec<RecordBatch>, PluginError> {
        let batches = self.decode(Buffer::from_vec(END_OF_STREAM.to_vec()))?;
        self.inner.finish().map_err(|e| PluginError::internal(format!("malformed IPC input: {e}")))?;
        Ok(batches)
    }

    fn decode(&mut self, mut buffer: Buffer) -> Result<Vec<RecordBatch>, PluginError> {
        let mut batches = Vec::new();
        while !buffer.is_empty() {
            let decoded = self
                .inner
                .decode(&mut buffer)
                .map_err(|e| PluginError::internal(format!("malformed IPC input: {e}")))?;
            if let Some(batch) = decoded {
                batches.push(batch);
            }
        }
        Ok(batches)
    }
}

const END_OF_STREAM: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// The schema of the stream starting at `buf`, once its first message is
/// complete.
fn read_schema(buf: &[u8]) -> Result<Option<SchemaRef>, PluginError> {
    let prefix = if buf.len() >= 4 && buf[..4] == END_OF_STREAM[..4] { 8 } else { 4 };
    if buf.len() < prefix {
        return Ok(None);
    }
    let len = i32::from_le_bytes(buf[prefix - 4..prefix].try_into().expect("4 bytes"));
    let len =
        usize::try_from(len).map_err(|_| PluginError::internal("malformed IPC input: negative message length"))?;
    if buf.len() < prefix + len {
        return Ok(None);
    }
    let message = arrow_ipc::root_as_message(&buf[prefix..prefix + len])
        .map_err(|e| PluginError::internal(format!("malformed IPC input: {e}")))?;
    let schema = message
        .header_as_schema()
        .ok_or_else(|| PluginError::internal("malformed IPC input: the first message is not a schema"))?;
    Ok(Some(Arc::new(arrow_ipc::convert::fb_to_schema(schema))))
}

/// A schema-only IPC stream: the schema message and the end-of-stream marker,
/// as `output-schema` takes and returns it.
pub fn encode_schema(schema: &Schema) -> Result<Vec<u8>, PluginError> {
    let mut writer =
        StreamWriter::try_new(Vec::new(), schema).map_err(|e| PluginError::internal(format!("IPC writer: {e}")))?;
    writer.finish().map_err(|e| PluginError::internal(format!("IPC writer: {e}")))?;
    writer.into_inner().map_err(|e| PluginError::internal(format!("IPC writer: {e}")))
}

/// Reads a schema-only IPC stream (see [`encode_schema`]). The end-of-stream
/// marker is optional; a record batch is an error.
pub fn decode_schema(bytes: Vec<u8>) -> Result<SchemaRef, PluginError> {
    let mut decoder = StreamDecoder::new();
    if !decoder.push(bytes)?.is_empty() {
        return Err(PluginError::internal("a schema-only IPC stream holds a record batch"));
    }
    decoder.schema().ok_or_else(|| PluginError::internal("a schema-only IPC stream has no schema message"))
}
