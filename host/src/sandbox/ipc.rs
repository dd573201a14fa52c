//! Decodes the IPC fragments a plugin returns as one Arrow IPC stream. The host
//! frames messages itself before decoding them, so that it can bound the size
//! of every message (from its declared length, before buffering it), notice a
//! second schema message, and reject bytes after the end-of-stream marker.

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::{MessageHeader, root_as_message};
use arrow_schema::SchemaRef;

const CONTINUATION: [u8; 4] = [0xff; 4];

#[derive(Debug, PartialEq, Eq)]
pub(super) enum IpcError {
    Malformed(String),
    SchemaChanged(String),
}

/// One output stream being decoded.
pub(super) struct IpcStream {
    /// Bytes of a message that is not complete yet.
    pending: Vec<u8>,
    decoder: StreamDecoder,
    schema: Option<SchemaRef>,
    ended: bool,
    max_message: usize,
}

/// A message's place in a buffer: its framing prefix, metadata and body.
struct Frame {
    prefix: usize,
    meta_len: usize,
    body_len: usize,
    /// The schema, if this is a schema message.
    schema: Option<arrow_schema::Schema>,
}

impl Frame {
    fn total(&self) -> usize {
        self.prefix + self.meta_len + self.body_len
    }
}

impl IpcStream {
    /// `max_message` bounds one message (metadata plus body), in bytes.
    pub(super) fn new(max_message: u64) -> Self {
        Self {
            pending: Vec::new(),
            decoder: StreamDecoder::new(),
            schema: None,
            ended: false,
            max_message: usize::try_from(max_message).unwrap_or(usize::MAX),
        }
    }

    /// Adds one fragment; returns the batches it completes, in order.
    pub(super) fn push(&mut self, fragment: Vec<u8>) -> Result<Vec<RecordBatch>, IpcError> {
        if fragment.is_empty() {
            return Ok(Vec::new());
        }
        if self.ended {
            return Err(IpcError::Malformed("bytes after the end-of-stream marker".to_owned()));
        }
        let data = if self.pending.is_empty() {
            fragment
        } else {
            let mut data = std::mem::take(&mut self.pending);
            data.extend_from_slice(&fragment);
            data
        };

        let mut batches = Vec::new();
        let mut complete = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let Some(frame) = frame(&data[at..], self.max_message)? else {
                break;
            };
            if frame.meta_len == 0 {
                // The decoder gets the marker too: it completes a message
                // with an empty body (a schema with no batch after it) only
                // when more bytes arrive, and its `finish` wants the marker.
                complete.push((at, frame.prefix));
                at += frame.prefix;
                self.ended = true;
                if at < data.len() {
                    return Err(IpcError::Malformed("bytes after the end-of-stream marker".to_owned()));
                }
                break;
            }
            let total = frame.total();
            if data.len() - at < total {
                break;
            }
            if let Some(new) = frame.schema {
                match &self.schema {
                    None => self.schema = Some(std::sync::Arc::new(new)),
                    Some(old) if **old == new => {
                        return Err(IpcError::Malformed("the schema message is repeated".to_owned()));
                    }
                    Some(old) => {
                        return Err(IpcError::SchemaChanged(format!(
                            "first {}, then {}",
                            describe(old),
                            describe(&new)
                        )));
                    }
                }
            }
            complete.push((at, total));
            at += total;
        }
        if complete.is_empty() {
            self.pending = data; // keeps growing without copying what it holds
            return Ok(batches);
        }
        if at < data.len() {
            self.pending = data[at..].to_vec();
        }

        // Zero-copy from here: every message is a slice of one shared buffer.
        // (`arrow_buffer::Buffer` is not a direct dependency: `BufferBuilder`
        // names the type, and `into` is its zero-copy `From<Vec<u8>>`.)
        let mut data = data;
        data.truncate(at);
        let shared = same_type(&arrow_array::builder::BufferBuilder::<u8>::new(0).finish(), data.into());
        for (start, len) in complete {
            let mut message = shared.slice_with_length(start, len);
            while !message.is_empty() {
                let decoded = self.decoder.decode(&mut message).map_err(|e| IpcError::Malformed(e.to_string()))?;
                if let Some(batch) = decoded {
                    batches.push(batch);
                }
            }
        }
        Ok(batches)
    }

    /// Ends the stream: it must have ended with the end-of-stream marker.
    pub(super) fn finish(&mut self) -> Result<SchemaRef, IpcError> {
        if !self.ended {
            return Err(IpcError::Malformed(if self.pending.is_empty() {
                "the stream does not end with the end-of-stream marker".to_owned()
            } else {
                format!("the stream ends inside a message ({} bytes left over)", self.pending.len())
            }));
        }
        self.decoder.finish().map_err(|e| IpcError::Malformed(e.to_string()))?;
        self.schema.clone().ok_or_else(|| IpcError::Malformed("the stream has no schema message".to_owned()))
    }
}

/// Reads the framing of the message at the start of `buf`: `None` if not even
/// its metadata is complete yet. Length limits are checked here, from the
/// declared lengths, before the body is buffered.
fn frame(buf: &[u8], max_message: usize) -> Result<Option<Frame>, IpcError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    // Current format: continuation marker, then the metadata length. The
    // pre-1.0 format has the length alone.
    let (prefix, len_bytes) = if buf[..4] == CONTINUATION {
        if buf.len() < 8 {
            return Ok(None);
        }
        (8, &buf[4..8])
    } else {
        (4, &buf[..4])
    };
    let meta_len = i32::from_le_bytes(len_bytes.try_into().expect("4 bytes"));
    let meta_len =
        usize::try_from(meta_len).map_err(|_| IpcError::Malformed(format!("negative metadata length {meta_len}")))?;
    if meta_len == 0 {
        return Ok(Some(Frame { prefix, meta_len: 0, body_len: 0, schema: None }));
    }
    if meta_len > max_message {
        return Err(IpcError::Malformed(format!(
            "a message declares {meta_len} bytes of metadata, over the output limit ({} bytes)",
            max_message
        )));
    }
    if buf.len() < prefix + meta_len {
        return Ok(None);
    }
    let message = root_as_message(&buf[prefix..prefix + meta_len])
        .map_err(|e| IpcError::Malformed(format!("invalid message metadata: {e}")))?;
    let body_len = usize::try_from(message.bodyLength())
        .map_err(|_| IpcError::Malformed(format!("negative body length {}", message.bodyLength())))?;
    if meta_len.saturating_add(body_len) > max_message {
        return Err(IpcError::Malformed(format!(
            "a message declares {} bytes, over the output limit ({} bytes)",
            meta_len.saturating_add(body_len),
            max_message
        )));
    }
    let schema = if message.header_type() == MessageHeader::Schema {
        let schema = message
            .header_as_schema()
            .map(arrow_ipc::convert::fb_to_schema)
            .ok_or_else(|| IpcError::Malformed("schema message without a schema".to_owned()))?;
        Some(schema)
    } else {
        None
    };
    Ok(Some(Frame { prefix, meta_len, body_len, schema }))
}

fn same_type<T>(_witness: &T, value: T) -> T {
    value
}

fn describe(schema: &arrow_schema::Schema) -> String {
    let fields: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}{}", f.name(), f.data_type(), if f.is_nullable() { "" } else { " not null" }))
        .collect();
    format!("({})", fields.join(", "))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_ipc::writer::StreamWriter;
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn batch(n: i64) -> RecordBatch {
        let schema = Schema::new(vec![Field::new("s", DataType::Utf8, true), Field::new("n", DataType::Int64, false)]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(StringArray::from(vec![Some("a"), None])), Arc::new(Int64Array::from(vec![n, n + 1]))],
        )
        .unwrap()
    }

    fn stream(batches: &[RecordBatch]) -> Vec<u8> {
        let mut writer = StreamWriter::try_new(Vec::new(), &batches[0].schema()).unwrap();
        for b in batches {
            writer.write(b).unwrap();
        }
        writer.finish().unwrap();
        writer.into_inner().unwrap()
    }

    #[test]
    fn decodes_any_fragmentation() {
        let expected = [batch(1), batch(3), batch(5)];
        let bytes = stream(&expected);
        for size in [1, 3, 8, 100, bytes.len()] {
            let mut ipc = IpcStream::new(1 << 20);
            let mut got = Vec::new();
            for piece in bytes.chunks(size) {
                got.extend(ipc.push(piece.to_vec()).unwrap());
            }
            assert_eq!(ipc.finish().unwrap(), expected[0].schema(), "fragments of {size}");
            assert_eq!(got, expected, "fragments of {size}");
        }
    }

    #[test]
    fn decodes_a_stream_without_batches() {
        let schema = batch(1).schema();
        let mut writer = StreamWriter::try_new(Vec::new(), &schema).unwrap();
        writer.finish().unwrap();
        let bytes = writer.into_inner().unwrap();
        for size in [1, 8, bytes.len()] {
            let mut ipc = IpcStream::new(1 << 20);
            for piece in bytes.chunks(size) {
                assert!(ipc.push(piece.to_vec()).unwrap().is_empty());
            }
            assert_eq!(ipc.finish().unwrap(), schema, "fragments of {size}");
        }
    }

    #[test]
    fn rejects_broken_streams() {
        let bytes = stream(&[batch(1)]);

        let mut ipc = IpcStream::new(1 << 20);
        ipc.push(bytes[..bytes.len() - 8].to_vec()).unwrap();
        assert!(matches!(ipc.finish(), Err(IpcError::Malformed(m)) if m.contains("end-of-stream")));

        let mut ipc = IpcStream::new(1 << 20);
        ipc.push(bytes.clone()).unwrap();
        assert!(matches!(ipc.push(vec![0; 8]), Err(IpcError::Malformed(m)) if m.contains("after the end")));

        let mut ipc = IpcStream::new(16);
        assert!(matches!(ipc.push(bytes.clone()), Err(IpcError::Malformed(m)) if m.contains("output limit")));

        let mut ipc = IpcStream::new(1 << 20);
        assert!(ipc.push(vec![0xff, 0xff, 0xff, 0xff, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]).is_err());
    }

    #[test]
    fn notices_a_second_schema() {
        let first = stream(&[batch(1)]);
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        let second = stream(&[other]);
        let mut ipc = IpcStream::new(1 << 20);
        // The first stream without its end-of-stream marker, then another schema.
        ipc.push(first[..first.len() - 8].to_vec()).unwrap();
        let err = ipc.push(second).unwrap_err();
        assert!(matches!(&err, IpcError::SchemaChanged(m) if m.contains("then (x: Int64)")), "{err:?}");
    }
}
