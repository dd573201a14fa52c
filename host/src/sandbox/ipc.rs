//! Decodes the IPC fragments a plugin returns as one Arrow IPC stream. The host
//! frames messages itself before decoding them, so that it can bound the size
//! of every message (from its declared length, before buffering it), notice a
//! second schema message, and reject bytes after the end-of-stream marker.
//!
//! Every message is checked before arrow-ipc sees it, because arrow-ipc trusts
//! its input: a schema with an odd bit width or no field list, or a buffer
//! that points past the body, makes it panic. The schema must meet
//! `guard::check_schema` (flat types whose decoded size is bounded by the
//! wire); dictionary batches and compressed bodies are refused; every field
//! node and buffer of a record batch must fit its body, and the row count
//! its body size. Every value must lie in its type's domain (`values`).
//! Batches come out without the plugin's metadata.

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::{MessageHeader, root_as_message};
use arrow_schema::SchemaRef;

const CONTINUATION: [u8; 4] = [0xff; 4];

/// Panics of arrow-ipc that `IpcStream::push` caught: each is an input the
/// checks in `frame` should have refused first (the corpus replay asserts
/// that none happens).
static DECODER_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IpcError {
    Malformed(String),
    /// A message declares more bytes than the output limit.
    TooLarge(String),
    SchemaChanged(String),
    /// Well-formed, but not what the host accepts from a plugin (`guard`).
    Refused(String),
}

impl std::fmt::Display for IpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpcError::Malformed(message) => write!(f, "malformed Arrow IPC: {message}"),
            IpcError::SchemaChanged(message) => write!(f, "the schema changed mid-stream: {message}"),
            IpcError::TooLarge(message) | IpcError::Refused(message) => f.write_str(message),
        }
    }
}

/// One output stream being decoded.
pub(crate) struct IpcStream {
    /// Bytes of a message that is not complete yet.
    pending: Vec<u8>,
    decoder: StreamDecoder,
    /// The schema as the plugin sent it (for comparing a repeated one) and
    /// as batches leave (without metadata).
    schema: Option<(arrow_schema::Schema, SchemaRef)>,
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

use super::guard;

impl Frame {
    fn total(&self) -> usize {
        self.prefix + self.meta_len + self.body_len
    }
}

impl IpcStream {
    /// `max_message` bounds one message (metadata plus body), in bytes.
    pub(crate) fn new(max_message: u64) -> Self {
        Self {
            pending: Vec::new(),
            decoder: StreamDecoder::new(),
            schema: None,
            ended: false,
            max_message: usize::try_from(max_message).unwrap_or(usize::MAX),
        }
    }

    /// Adds one fragment; returns the batches it completes, in order.
    pub(crate) fn push(&mut self, fragment: Vec<u8>) -> Result<Vec<RecordBatch>, IpcError> {
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
            let Some(frame) = frame(&data[at..], self.max_message, self.schema.as_ref().map(|(sent, _)| sent))? else {
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
                    None => {
                        let clean = std::sync::Arc::new(guard::without_metadata(&new));
                        self.schema = Some((new, clean));
                    }
                    Some((old, _)) if *old == new => {
                        return Err(IpcError::Malformed("the schema message is repeated".to_owned()));
                    }
                    Some((old, _)) => {
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
        let shared = if data.as_ptr().align_offset(8) == 0 {
            same_type(&arrow_array::builder::BufferBuilder::<u8>::new(0).finish(), data.into())
        } else {
            // Every message starts at a multiple of 8 in `data` (the checks
            // in `frame`); an allocation that is not 8-aligned is copied to
            // one that is, so that every buffer in it is aligned too.
            let mut aligned = arrow_array::builder::BufferBuilder::<u8>::new(data.len());
            aligned.append_slice(&data);
            aligned.finish()
        };
        let clean = self.schema.as_ref().map(|(_, clean)| clean.clone());
        let mut arrays = 0usize;
        for (start, len) in complete {
            let mut message = shared.slice_with_length(start, len);
            while !message.is_empty() {
                // The checks in `frame` keep arrow-ipc off its panicking paths;
                // should one remain, it fails the plugin, not the host.
                let decoded =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.decoder.decode(&mut message)))
                        .map_err(|_| {
                            DECODER_PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            IpcError::Malformed("the Arrow IPC decoder could not read a message".to_owned())
                        })?
                        .map_err(|e| IpcError::Malformed(e.to_string()))?;
                if let Some(batch) = decoded {
                    arrays += batch.num_columns().max(1);
                    if arrays > MAX_ARRAYS_PER_FRAGMENT {
                        return Err(IpcError::Refused(format!(
                            "one call returned more than {MAX_ARRAYS_PER_FRAGMENT} column chunks (columns × \
                             record batches); return fewer, larger batches"
                        )));
                    }
                    super::values::check(&batch).map_err(IpcError::Refused)?;
                    batches.push(without_metadata(batch, clean.as_ref())?);
                }
            }
        }
        Ok(batches)
    }

    /// Ends the stream: it must have ended with the end-of-stream marker.
    pub(crate) fn finish(&mut self) -> Result<SchemaRef, IpcError> {
        if !self.ended {
            return Err(IpcError::Malformed(if self.pending.is_empty() {
                "the stream does not end with the end-of-stream marker".to_owned()
            } else {
                format!("the stream ends inside a message ({} bytes left over)", self.pending.len())
            }));
        }
        self.decoder.finish().map_err(|e| IpcError::Malformed(e.to_string()))?;
        self.schema
            .as_ref()
            .map(|(_, clean)| clean.clone())
            .ok_or_else(|| IpcError::Malformed("the stream has no schema message".to_owned()))
    }
}

/// Reads the framing of the message at the start of `buf`: `None` if not even
/// its metadata is complete yet. Length limits are checked here, from the
/// declared lengths, before the body is buffered.
fn frame(buf: &[u8], max_message: usize, schema: Option<&arrow_schema::Schema>) -> Result<Option<Frame>, IpcError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    // Current format only: the continuation marker, then the metadata
    // length. (The pre-1.0 format, the length alone, would leave every later
    // buffer off its 8-byte alignment.)
    if buf[..4] != CONTINUATION {
        return Err(IpcError::Malformed("a message does not start with the continuation marker".to_owned()));
    }
    if buf.len() < 8 {
        return Ok(None);
    }
    let prefix = 8;
    let meta_len = i32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    let meta_len =
        usize::try_from(meta_len).map_err(|_| IpcError::Malformed(format!("negative metadata length {meta_len}")))?;
    if meta_len % 8 != 0 {
        return Err(IpcError::Malformed(format!("the metadata length {meta_len} is not a multiple of 8")));
    }
    if meta_len == 0 {
        return Ok(Some(Frame { prefix, meta_len: 0, body_len: 0, schema: None }));
    }
    if meta_len > max_message {
        return Err(IpcError::TooLarge(format!(
            "a message declares {meta_len} bytes of metadata, over the output limit ({} bytes)",
            max_message
        )));
    }
    // A message whose body has not all arrived is framed again on the next
    // push: its metadata is verified each time, so it must stay small.
    if meta_len > MAX_METADATA_BYTES {
        return Err(IpcError::Malformed(format!(
            "a message declares {meta_len} bytes of metadata, more than the {MAX_METADATA_BYTES} the largest \
             accepted schema needs (4,096 columns of 1 KiB names)"
        )));
    }
    if buf.len() < prefix + meta_len {
        return Ok(None);
    }
    let message = root_as_message(&buf[prefix..prefix + meta_len])
        .map_err(|e| IpcError::Malformed(format!("invalid message metadata: {e}")))?;
    let body_len = usize::try_from(message.bodyLength())
        .map_err(|_| IpcError::Malformed(format!("negative body length {}", message.bodyLength())))?;
    if body_len % 8 != 0 {
        return Err(IpcError::Malformed(format!("the body length {body_len} is not a multiple of 8")));
    }
    if meta_len.saturating_add(body_len) > max_message {
        return Err(IpcError::TooLarge(format!(
            "a message declares {} bytes, over the output limit ({} bytes)",
            meta_len.saturating_add(body_len),
            max_message
        )));
    }
    let schema = match message.header_type() {
        MessageHeader::Schema => {
            let fb = message
                .header_as_schema()
                .ok_or_else(|| IpcError::Malformed("schema message without a schema".to_owned()))?;
            check_fb_schema(fb)?;
            let schema = arrow_ipc::convert::fb_to_schema(fb);
            guard::check_schema(&schema).map_err(IpcError::Refused)?;
            Some(schema)
        }
        MessageHeader::RecordBatch => {
            let batch = message
                .header_as_record_batch()
                .ok_or_else(|| IpcError::Malformed("record batch message without a record batch".to_owned()))?;
            let schema = schema
                .ok_or_else(|| IpcError::Malformed("a record batch comes before the schema message".to_owned()))?;
            check_batch(batch, schema, body_len as u64)?;
            None
        }
        MessageHeader::DictionaryBatch => {
            return Err(IpcError::Refused(
                "the stream holds a dictionary batch: dictionary-encoded columns are not accepted".to_owned(),
            ));
        }
        other => return Err(IpcError::Malformed(format!("unexpected message type {other:?}"))),
    };
    Ok(Some(Frame { prefix, meta_len, body_len, schema }))
}

/// Checks a schema message's flatbuffer before arrow-ipc converts it (which
/// panics on what it does not expect): little-endian, a field list, and for
/// each field a name and a flat type whose parameters arrow knows, no
/// dictionary and no children. `guard::check_schema` then applies the host's
/// own rules to the converted schema.
fn check_fb_schema(fb: arrow_ipc::Schema<'_>) -> Result<(), IpcError> {
    use arrow_ipc::{DateUnit, Endianness, Precision, TimeUnit, Type};
    let refused = |m: String| Err(IpcError::Refused(m));
    if fb.endianness() != Endianness::Little {
        return refused("the schema is big-endian; plugin output must be little-endian".to_owned());
    }
    let Some(fields) = fb.fields() else {
        return Err(IpcError::Malformed("the schema message has no field list".to_owned()));
    };
    if fields.len() > guard::MAX_COLUMNS {
        return refused(format!(
            "the schema has {} columns, more than the {} accepted",
            fields.len(),
            guard::MAX_COLUMNS
        ));
    }
    for (i, field) in fields.iter().enumerate() {
        let name = field.name().ok_or_else(|| IpcError::Malformed(format!("column {} has no name", i + 1)))?;
        let type_name = format!("{:?}", field.type_type());
        if field.dictionary().is_some() {
            return refused(guard::unaccepted(name, &format!("Dictionary({type_name})"), guard::DICTIONARY));
        }
        let why = match field.type_type() {
            Type::Utf8View | Type::BinaryView => Some(guard::VIEW),
            Type::RunEndEncoded => Some(guard::RUN_END),
            Type::Null => Some(guard::NULL),
            Type::List
            | Type::LargeList
            | Type::FixedSizeList
            | Type::ListView
            | Type::LargeListView
            | Type::Struct_
            | Type::Map
            | Type::Union => Some(guard::NESTED),
            _ if field.children().is_some_and(|c| !c.is_empty()) => Some(guard::NESTED),
            _ => None,
        };
        if let Some(why) = why {
            return refused(guard::unaccepted(name, &type_name, why));
        }
        let known = match field.type_type() {
            Type::Bool | Type::Utf8 | Type::LargeUtf8 | Type::Binary | Type::LargeBinary => true,
            Type::Int => field.type_as_int().is_some_and(|t| matches!(t.bitWidth(), 8 | 16 | 32 | 64)),
            Type::FloatingPoint => field
                .type_as_floating_point()
                .is_some_and(|t| matches!(t.precision(), Precision::HALF | Precision::SINGLE | Precision::DOUBLE)),
            Type::Date => {
                field.type_as_date().is_some_and(|t| matches!(t.unit(), DateUnit::DAY | DateUnit::MILLISECOND))
            }
            Type::Time => field.type_as_time().is_some_and(|t| {
                matches!(
                    (t.unit(), t.bitWidth()),
                    (TimeUnit::SECOND | TimeUnit::MILLISECOND, 32) | (TimeUnit::MICROSECOND | TimeUnit::NANOSECOND, 64)
                )
            }),
            Type::Timestamp => field.type_as_timestamp().is_some_and(|t| {
                matches!(
                    t.unit(),
                    TimeUnit::SECOND | TimeUnit::MILLISECOND | TimeUnit::MICROSECOND | TimeUnit::NANOSECOND
                )
            }),
            Type::Decimal => field.type_as_decimal().is_some_and(|t| {
                t.bitWidth() == 128 && (1..=38).contains(&t.precision()) && (0..=t.precision()).contains(&t.scale())
            }),
            _ => false,
        };
        if !known {
            return refused(guard::unaccepted(name, &type_name, guard::NOT_STORABLE));
        }
    }
    Ok(())
}

/// Most bytes of one message's metadata (its flatbuffer header).
const MAX_METADATA_BYTES: usize = 16 << 20;

/// Most decoded arrays (columns × record batches) one fragment may yield.
/// A fragment's batches are held together once decoded, and each column of
/// each batch costs the host about 150 bytes for 48 on the wire: 256 MiB of
/// one-row batches of 4,096 columns would take about 1 GB. This keeps that
/// overhead near 40 MB; a plugin that batches its rows (csv-ingest: a few
/// hundred arrays per call) never comes close.
const MAX_ARRAYS_PER_FRAGMENT: usize = 1 << 18;

/// Checks a record batch message against the stream's (flat, checked)
/// schema before arrow-ipc reads it: uncompressed, one field node per column
/// with the batch's length and a null count within it, the buffers each type
/// has, every buffer inside the body, and no more rows than the body can
/// hold (`guard::max_rows`).
fn check_batch(
    batch: arrow_ipc::RecordBatch<'_>,
    schema: &arrow_schema::Schema,
    body_len: u64,
) -> Result<(), IpcError> {
    let malformed = |m: String| Err(IpcError::Malformed(m));
    if batch.compression().is_some() {
        return Err(IpcError::Refused("a record batch is compressed; plugin output must be uncompressed".to_owned()));
    }
    if batch.variadicBufferCounts().is_some_and(|c| !c.is_empty()) {
        return malformed("a record batch has variadic buffer counts, but no column has a view type".to_owned());
    }
    let rows = batch.length();
    if rows < 0 {
        return malformed(format!("a record batch has {rows} rows"));
    }
    if rows as u64 > guard::max_rows(body_len) {
        return malformed(format!("a record batch claims {rows} rows in a body of {body_len} bytes"));
    }
    let nodes = batch.nodes().map(|n| n.len()).unwrap_or(0);
    if nodes != schema.fields().len() {
        return malformed(format!("a record batch has {nodes} field nodes for {} columns", schema.fields().len()));
    }
    for node in batch.nodes().into_iter().flatten() {
        if node.length() != rows || node.null_count() < 0 || node.null_count() > rows {
            return malformed(format!(
                "a field node has length {} and {} nulls in a batch of {rows} rows",
                node.length(),
                node.null_count()
            ));
        }
    }
    use arrow_schema::DataType;
    // Variable-width columns have validity, offsets and values; the others
    // validity and values.
    let variable =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary);
    let expected: usize = schema.fields().iter().map(|f| if variable(f.data_type()) { 3 } else { 2 }).sum();
    let buffers = batch.buffers().map(|b| b.len()).unwrap_or(0);
    if buffers != expected {
        return malformed(format!("a record batch has {buffers} buffers where its columns have {expected}"));
    }
    for buffer in batch.buffers().into_iter().flatten() {
        let (offset, length) = (buffer.offset(), buffer.length());
        let fits =
            offset >= 0 && length >= 0 && (offset as u64).checked_add(length as u64).is_some_and(|end| end <= body_len);
        if !fits {
            return malformed(format!(
                "a buffer at offset {offset} of {length} bytes lies outside the {body_len}-byte body"
            ));
        }
        // arrow asserts (panics) on offsets it cannot read as aligned values.
        if offset % 8 != 0 {
            return malformed(format!("a buffer at offset {offset} is not aligned to 8 bytes"));
        }
    }
    // Buffers are slices of the body, not copies: 4,096 columns that all
    // point at the same bytes decode, for free, to 4,096 times the body,
    // which every later stage (casts, validation, the Parquet encoder) then
    // pays for column by column. A writer lays buffers out one after the
    // other, so together they fit in the body.
    let total: u64 = batch.buffers().into_iter().flatten().map(|b| b.length() as u64).sum();
    if total > body_len {
        return malformed(format!(
            "a record batch's buffers add up to {total} bytes, more than its {body_len}-byte body: buffers may \
             not share bytes"
        ));
    }
    // Each buffer must be as long as its column's rows need: arrow-ipc
    // asserts (panics) on a short validity bitmap rather than failing.
    let rows = rows as u64;
    let bitmap = rows.div_ceil(8);
    let mut lengths = batch.buffers().into_iter().flatten().map(|b| b.length() as u64);
    let mut next = || lengths.next().unwrap_or(0);
    for (field, node) in schema.fields().iter().zip(batch.nodes().into_iter().flatten()) {
        let validity = next();
        let values = next();
        // The width of one value (or offset), and how many bytes the rows need.
        let (width, need) = match field.data_type() {
            DataType::Utf8 | DataType::Binary => (4, (rows + 1) * 4),
            DataType::LargeUtf8 | DataType::LargeBinary => (8, (rows + 1) * 8),
            DataType::Boolean => (1, bitmap),
            other => {
                let width = other.primitive_width().unwrap_or(1) as u64;
                (width, rows.saturating_mul(width))
            }
        };
        let need = if rows == 0 { 0 } else { need };
        // arrow reinterprets the bytes as values and asserts the length divides.
        if values % width != 0 {
            return malformed(format!(
                "column `{}` has a values or offsets buffer of {values} bytes, not a multiple of {width}",
                super::text::escape(field.name())
            ));
        }
        if variable(field.data_type()) {
            next(); // the value bytes: any length, checked against the offsets by arrow
        }
        if node.null_count() > 0 && validity < bitmap {
            return malformed(format!(
                "column `{}` has {} nulls but a validity bitmap of {validity} bytes for {rows} rows",
                super::text::escape(field.name()),
                node.null_count()
            ));
        }
        if values < need {
            return malformed(format!(
                "column `{}` has {values} bytes of values or offsets, fewer than its {rows} rows need ({need})",
                super::text::escape(field.name())
            ));
        }
    }
    Ok(())
}

/// `batch` under the metadata-free schema the stream hands out.
fn without_metadata(batch: RecordBatch, clean: Option<&SchemaRef>) -> Result<RecordBatch, IpcError> {
    let Some(clean) = clean else { return Ok(batch) };
    if std::sync::Arc::ptr_eq(&batch.schema(), clean) {
        return Ok(batch);
    }
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(clean.clone(), batch.columns().to_vec(), &options)
        .map_err(|e| IpcError::Malformed(e.to_string()))
}

/// What the fuzz target (`fuzz/boundary`, `guest_output`) and the corpus
/// replay test run: `data` is cut into fragments whose sizes come from its
/// own bytes (so the fuzzer explores framing too) and decoded as one stream
/// under a 1 MiB message limit. Must never panic, whatever `data` is; every
/// batch it yields must have the accepted schema. Returns the rows decoded.
#[allow(dead_code)] // Called by the fuzz target (which includes this file) and tests.
pub(super) fn decode_fragments(data: &[u8]) -> Result<usize, IpcError> {
    let Some((&cut, mut rest)) = data.split_first() else {
        return Ok(0);
    };
    let piece = usize::from(cut).max(1) * 16;
    let mut stream = IpcStream::new(1 << 20);
    let mut rows = 0;
    while !rest.is_empty() {
        let (fragment, tail) = rest.split_at(piece.min(rest.len()));
        rest = tail;
        for batch in stream.push(fragment.to_vec())? {
            guard::check_schema(&batch.schema()).expect("a decoded batch has an accepted schema");
            assert!(batch.schema().metadata().is_empty(), "metadata reached a batch");
            rows += batch.num_rows();
        }
    }
    stream.finish()?;
    Ok(rows)
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
        assert!(matches!(ipc.push(bytes.clone()), Err(IpcError::TooLarge(m)) if m.contains("output limit")));

        let mut ipc = IpcStream::new(1 << 20);
        assert!(ipc.push(vec![0xff, 0xff, 0xff, 0xff, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]).is_err());
    }

    /// Every input the fuzzer saved (`fuzz/corpus/guest_output`, and the
    /// crashes it once found under `fuzz/regressions/guest_output`) decodes
    /// without a panic.
    #[test]
    fn replays_the_fuzz_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        let mut replayed = 0;
        for dir in ["seeds/guest_output", "corpus/guest_output", "regressions/guest_output"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                let panics = DECODER_PANICS.load(std::sync::atomic::Ordering::Relaxed);
                // A fuzzer at work may replace files meanwhile.
                let Ok(bytes) = std::fs::read(&path) else { continue };
                let _ = decode_fragments(&bytes);
                let after = DECODER_PANICS.load(std::sync::atomic::Ordering::Relaxed);
                assert_eq!(after, panics, "arrow-ipc panicked on {}: a check in `frame` is missing", path.display());
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no fuzz corpus under {}", root.display());
        // A well-formed stream decodes whole, under any fragmentation.
        let bytes = stream(&[batch(1), batch(3)]);
        for cut in [0u8, 1, 7, 255] {
            let data = [&[cut][..], &bytes].concat();
            assert_eq!(decode_fragments(&data), Ok(4), "fragments of {}", usize::from(cut).max(1) * 16);
        }
    }

    /// Streams written by another implementation (pyarrow, the seeds of the
    /// fuzz corpus) land on the right side of the boundary.
    #[test]
    fn pyarrow_streams_are_accepted_or_refused_as_the_rules_say() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/guest_output");
        let decode = |name: &str| decode_fragments(&std::fs::read(dir.join(name)).unwrap());
        assert_eq!(decode("flat_two_batches"), Ok(6));
        assert_eq!(decode("every_accepted_type"), Ok(2));
        assert_eq!(decode("metadata"), Ok(3));
        assert_eq!(decode("schema_only"), Ok(0));
        for (name, why) in [
            ("dictionary", "dictionary-encoded"),
            ("view", "view types"),
            ("nested", "nested types"),
            ("null_type", "type Null"),
            ("tz_mars", "cannot be stored"),
            ("dup_names", "both named `X`"),
            ("compressed", "compressed"),
        ] {
            match decode(name) {
                Err(IpcError::Refused(message)) => assert!(message.contains(why), "{name}: {message}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(matches!(decode("garbage"), Err(IpcError::Malformed(_))));
        // 64 columns over the same 1 KiB of body (`fuzz/tools/aliased_buffers.py`).
        match decode("aliased_buffers") {
            Err(IpcError::Malformed(message)) => {
                assert!(message.contains("buffers add up to 65536 bytes, more than its 1024-byte body"), "{message}")
            }
            other => panic!("aliased_buffers: {other:?}"),
        }
    }

    /// A fragment of many one-row batches would cost the host far more
    /// decoded than on the wire: refused past `MAX_ARRAYS_PER_FRAGMENT`.
    #[test]
    fn refuses_a_fragment_of_too_many_arrays() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let one = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        let many = vec![one; MAX_ARRAYS_PER_FRAGMENT + 1];
        let bytes = stream(&many);
        let err = IpcStream::new(1 << 30).push(bytes.clone()).unwrap_err();
        assert!(matches!(&err, IpcError::Refused(m) if m.contains("return fewer, larger batches")), "{err:?}");
        // The same batches over two calls pass.
        let mut ipc = IpcStream::new(1 << 30);
        let half = bytes.len() / 2;
        let rows: usize = [&bytes[..half], &bytes[half..]]
            .iter()
            .map(|part| ipc.push(part.to_vec()).unwrap().iter().map(RecordBatch::num_rows).sum::<usize>())
            .sum();
        assert_eq!(rows, MAX_ARRAYS_PER_FRAGMENT + 1);
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
