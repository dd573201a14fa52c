//! `evil-ipc-bomb`: returns a small, well-formed Arrow IPC stream that is
//! dangerous for a host that decodes, validates or casts it naively. `push`
//! returns an empty fragment for every chunk; `finish` returns one complete
//! stream (schema message, dictionary and record-batch messages, end-of-stream
//! marker) written with arrow-ipc's `StreamWriter`.
//!
//! Config keys:
//! - `attack` (required): which stream to send, one of the list below. Any
//!   other value is `invalid-config`.
//! - `rows`: the row count (or column count), where the attack has one; the
//!   default is given per attack.
//! - `names`: the column names of `attack: names`.
//! - `depth`: the nesting depth of `attack: deep` (default 200).
//!
//! Attacks (size on the wire with the defaults, as measured by the unit
//! tests below):
//! - `view-bomb`: column `s: Utf8View`, `rows` (default 1,000,000) views that
//!   all point to the same 1 MiB string in one shared data buffer. Casting to
//!   Utf8 needs `rows` × 1 MiB (about 1 TiB); even decoding it with full
//!   validation checks UTF-8 `rows` × 1 MiB times (arrow-data validates every
//!   view's bytes separately). Wire: 16 bytes a row plus 1 MiB, 17.0 MB for
//!   the default (`rows: 100000` gives 2.6 MB and still about 100 GB as Utf8).
//! - `binary-view-bomb`: the same with `s: BinaryView` (its validation only
//!   checks bounds and prefixes, so it decodes fast and explodes on cast).
//!   17.0 MB.
//! - `dictionary`: column `s: Dictionary(Int32, Utf8)`, `rows` (default
//!   1,000,000) keys all 0 and one dictionary value of 1 MiB; unpacking it
//!   needs `rows` × 1 MiB. Wire: 4 bytes a row plus 1 MiB, 5.0 MB.
//! - `delta-dictionary`: column `s: Dictionary(Int32, Utf8)` over `rows`
//!   (default 16) record batches of one row each. The writer runs with
//!   `DictionaryHandling::Delta`: batch 0 sends the whole dictionary
//!   (`value-0`), batches 1.. send one-value delta dictionaries (`isDelta`)
//!   and their key points at the newest value, so a reader that ignores
//!   deltas sees keys out of range; the last batch (when `rows` >= 2)
//!   replaces the dictionary with a shorter, unrelated one (`replaced-<n>`,
//!   a non-delta dictionary batch). About 590 bytes a row, 9.4 KB.
//! - `null-rows`: column `n: Null` of length `rows` (default 2^40). 264 bytes.
//! - `empty-struct`: column `st: Struct()` (no fields) of length `rows`
//!   (default 2^40). 264 bytes.
//! - `fsl-zero`: column `f: FixedSizeList(0 x Int32)` of length `rows`
//!   (default 2^40): no child values at all. 392 bytes.
//! - `run-end`: column `r: RunEndEncoded(Int32, Utf8)` holding a single run
//!   of length `rows` (default i32::MAX, at most i32::MAX) of a 1 KiB string;
//!   unpacking it needs `rows` × 1 KiB. 1.7 KB.
//! - `deep`: column `d`, a List nested `depth` (default 200) levels deep
//!   around Int32, one row. 31.6 KB. arrow-ipc's own reader refuses its
//!   schema message (flatbuffer verifier: `DepthLimitReached`, the limit is
//!   64), and so does Arrow C++ ("Invalid flatbuffers message"); a recursive
//!   decoder without a limit may overflow its stack.
//! - `names`: one Int64 column (one row, value 1) per entry of `names`, a
//!   comma-separated list (default `id,id`; `,` gives two empty names; `ID,id`
//!   two names equal but for case). Escapes inside a name: `\0` (NUL), `\n`,
//!   `\e` (ESC), `\,` (a comma that does not separate), `\\`. 520 bytes.
//! - `field-id`: column `id: Int64` (rows 1, 2, 3) whose field metadata holds
//!   `PARQUET:field_id = 99`, in a schema whose metadata holds
//!   `floe.injected = 1`. 520 bytes.
//! - `many-columns`: `rows` (default 100,000) columns `c0`, `c1`, ... of
//!   Int8, one row each. About 164 bytes a column, 16.4 MB (the writer pads
//!   every buffer to 64 bytes).
//! - `aliased`: 4,096 columns `c0`, `c1`, ... of Int8, `rows` (default
//!   1,048,576) rows each, whose values buffers all lie at offset 0 of one
//!   body of `rows` bytes: arrow-ipc decodes it zero-copy to 4 GiB of
//!   columns, 16 GiB once cast to the table's Int32. 1.5 MB.
//!
//! Every attack is real: arrow-ipc 58 writes Utf8View/BinaryView (views plus
//! variadic data buffers, no compaction), RunEndEncoded, delta dictionaries
//! and Null/empty-Struct/zero-size FixedSizeList columns without allocating
//! per row. The lengths of `null-rows`, `empty-struct` and `fsl-zero` do not
//! fit in a wasm32 `usize`, so the batch is written with a placeholder length
//! that fits and the two or three i64 length fields of the record-batch
//! message (`RecordBatch.length`, `FieldNode.length`, and for Null
//! `FieldNode.null_count`) are then patched in place to `rows`.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "ingest-plugin",
});

use exports::floe::plugin::ingest::{self, Config, IpcFragment};
use exports::floe::plugin::meta;
use floe::plugin::types::{PluginError, PluginInfo, PluginKind};

struct Component;

export!(Component);

impl meta::Guest for Component {
    fn info() -> PluginInfo {
        PluginInfo {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kind: PluginKind::Ingest,
            config_schema: "{}".to_owned(),
        }
    }
}

/// The value of `key` in the step's config map.
#[allow(dead_code)]
fn config_value<'a>(config: &'a Config, key: &str) -> Option<&'a str> {
    config.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;

use arrow_array::builder::make_view;
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BinaryViewArray, DictionaryArray, FixedSizeListArray, Int8Array, Int32Array, Int64Array, ListArray,
    NullArray, RecordBatch, RecordBatchOptions, RunArray, StringArray, StructArray, new_empty_array,
};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_ipc::writer::{DictionaryHandling, IpcWriteOptions, StreamWriter};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

/// Size of the one value the view, dictionary and run-end bombs repeat.
const BIG_VALUE: usize = 1 << 20;
/// The length the huge-length attacks are written with, before it is patched
/// to `rows`: fits in a wasm32 `usize` and is unlikely to occur by chance.
const PLACEHOLDER_LEN: usize = 0x3C5A_96E1;

impl ingest::Guest for Component {
    type Parser = Parser;

    fn open(config: Config, _source_name: String) -> Result<ingest::Parser, PluginError> {
        Ok(ingest::Parser::new(Parser { attack: Attack::from_config(&config)? }))
    }
}

struct Parser {
    attack: Attack,
}

impl ingest::GuestParser for Parser {
    fn push(&self, _chunk: Vec<u8>) -> Result<IpcFragment, PluginError> {
        Ok(Vec::new())
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        self.attack.stream()
    }
}

/// One attack with its parameters (see the module docs).
#[derive(Debug, Clone, PartialEq)]
enum Attack {
    ViewBomb { rows: usize },
    BinaryViewBomb { rows: usize },
    Dictionary { rows: usize },
    DeltaDictionary { rows: usize },
    NullRows { rows: i64 },
    EmptyStruct { rows: i64 },
    FslZero { rows: i64 },
    RunEnd { rows: i32 },
    Deep { depth: usize },
    Names { names: Vec<String> },
    FieldId,
    ManyColumns { columns: usize },
    Aliased { rows: usize },
}

const ATTACKS: &str = "view-bomb, binary-view-bomb, dictionary, delta-dictionary, null-rows, empty-struct, \
                       fsl-zero, run-end, deep, names, field-id, many-columns, aliased";

fn invalid(message: impl Into<String>) -> PluginError {
    PluginError::InvalidConfig(message.into())
}

fn internal(e: impl Display) -> PluginError {
    PluginError::Internal(e.to_string())
}

/// The unsigned integer under `key`, or `default`; `_` separators are allowed.
fn number(config: &Config, key: &str, default: u64) -> Result<u64, PluginError> {
    match config_value(config, key) {
        None => Ok(default),
        Some(text) => text
            .replace('_', "")
            .parse()
            .map_err(|_| invalid(format!("`{key}` must be a non-negative integer, got {text:?}"))),
    }
}

/// Converts `n` to the integer type an attack needs, or says why it cannot.
fn fit<T: TryFrom<u64>>(key: &str, n: u64, what: &str) -> Result<T, PluginError> {
    T::try_from(n).map_err(|_| invalid(format!("`{key}` {n} is too large: {what}")))
}

impl Attack {
    fn from_config(config: &Config) -> Result<Self, PluginError> {
        let rows = |default: u64| number(config, "rows", default);
        let in_memory = "the plugin must hold that many rows in wasm32 memory";
        let ipc_length = "an IPC length is an i64";
        let attack = match config_value(config, "attack") {
            None => return Err(invalid(format!("`attack` is required, one of: {ATTACKS}"))),
            Some(attack) => attack,
        };
        Ok(match attack {
            "view-bomb" => Attack::ViewBomb { rows: fit("rows", rows(1_000_000)?, in_memory)? },
            "binary-view-bomb" => Attack::BinaryViewBomb { rows: fit("rows", rows(1_000_000)?, in_memory)? },
            "dictionary" => Attack::Dictionary { rows: fit("rows", rows(1_000_000)?, in_memory)? },
            "delta-dictionary" => Attack::DeltaDictionary { rows: fit("rows", rows(16)?, in_memory)? },
            "null-rows" => Attack::NullRows { rows: fit("rows", rows(1 << 40)?, ipc_length)? },
            "empty-struct" => Attack::EmptyStruct { rows: fit("rows", rows(1 << 40)?, ipc_length)? },
            "fsl-zero" => Attack::FslZero { rows: fit("rows", rows(1 << 40)?, ipc_length)? },
            "run-end" => Attack::RunEnd { rows: fit("rows", rows(i32::MAX as u64)?, "run ends are Int32")? },
            "deep" => Attack::Deep { depth: fit("depth", number(config, "depth", 200)?, in_memory)? },
            "names" => Attack::Names { names: split_names(config_value(config, "names").unwrap_or("id,id")) },
            "field-id" => Attack::FieldId,
            "many-columns" => Attack::ManyColumns { columns: fit("rows", rows(100_000)?, in_memory)? },
            "aliased" => Attack::Aliased { rows: fit("rows", rows(1 << 20)?, in_memory)? },
            other => return Err(invalid(format!("unknown `attack` {other:?}, expected one of: {ATTACKS}"))),
        })
    }

    /// The complete IPC stream of this attack.
    fn stream(&self) -> Result<Vec<u8>, PluginError> {
        match self {
            Attack::ViewBomb { rows } => view_bomb(*rows, false),
            Attack::BinaryViewBomb { rows } => view_bomb(*rows, true),
            Attack::Dictionary { rows } => {
                let keys = Int32Array::from(vec![0; *rows]);
                let values: ArrayRef = Arc::new(StringArray::from(vec!["x".repeat(BIG_VALUE)]));
                let column = DictionaryArray::<Int32Type>::try_new(keys, values).map_err(internal)?;
                single_column("s", Arc::new(column), false)
            }
            Attack::DeltaDictionary { rows } => delta_dictionary(*rows),
            Attack::NullRows { rows } => huge_length("n", true, *rows, Arc::new(NullArray::new(PLACEHOLDER_LEN))),
            Attack::EmptyStruct { rows } => {
                huge_length("st", false, *rows, Arc::new(StructArray::new_empty_fields(PLACEHOLDER_LEN, None)))
            }
            Attack::FslZero { rows } => {
                let item = Arc::new(Field::new_list_field(DataType::Int32, true));
                let values = new_empty_array(&DataType::Int32);
                let column = FixedSizeListArray::try_new_with_length(item, 0, values, None, PLACEHOLDER_LEN)
                    .map_err(internal)?;
                huge_length("f", false, *rows, Arc::new(column))
            }
            Attack::RunEnd { rows } => {
                let (ends, values) =
                    if *rows == 0 { (vec![], vec![]) } else { (vec![*rows], vec!["x".repeat(1 << 10)]) };
                let column = RunArray::<Int32Type>::try_new(&Int32Array::from(ends), &StringArray::from(values))
                    .map_err(internal)?;
                single_column("r", Arc::new(column), false)
            }
            Attack::Deep { depth } => {
                let mut column: ArrayRef = Arc::new(Int32Array::from(vec![1]));
                for _ in 0..*depth {
                    let item = Arc::new(Field::new_list_field(column.data_type().clone(), false));
                    let list =
                        ListArray::try_new(item, OffsetBuffer::from_lengths([1]), column, None).map_err(internal)?;
                    column = Arc::new(list);
                }
                single_column("d", column, false)
            }
            Attack::Names { names } => {
                let fields: Vec<Field> = names.iter().map(|name| Field::new(name, DataType::Int64, false)).collect();
                let column: ArrayRef = Arc::new(Int64Array::from(vec![1]));
                let schema = Arc::new(Schema::new(fields));
                let columns = vec![column; names.len()];
                write(&schema, &[batch(&schema, columns, 1)?], IpcWriteOptions::default())
            }
            Attack::FieldId => {
                let field_metadata = HashMap::from([("PARQUET:field_id".to_owned(), "99".to_owned())]);
                let field = Field::new("id", DataType::Int64, false).with_metadata(field_metadata);
                let schema_metadata = HashMap::from([("floe.injected".to_owned(), "1".to_owned())]);
                let schema = Arc::new(Schema::new_with_metadata(vec![field], schema_metadata));
                let column: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
                write(&schema, &[batch(&schema, vec![column], 3)?], IpcWriteOptions::default())
            }
            Attack::Aliased { rows } => aliased(ALIASED_COLUMNS, *rows),
            Attack::ManyColumns { columns } => {
                let fields: Vec<Field> =
                    (0..*columns).map(|i| Field::new(format!("c{i}"), DataType::Int8, false)).collect();
                let column: ArrayRef = Arc::new(Int8Array::from(vec![1]));
                let schema = Arc::new(Schema::new(fields));
                write(&schema, &[batch(&schema, vec![column; *columns], 1)?], IpcWriteOptions::default())
            }
        }
    }
}

/// Splits `names` on commas, honouring the escapes `\0`, `\n`, `\e`, `\,`
/// and `\\`; any other backslash is kept as is.
fn split_names(names: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = names.chars();
    while let Some(c) = chars.next() {
        let current = out.last_mut().expect("never empty");
        match c {
            ',' => out.push(String::new()),
            '\\' => match chars.next() {
                Some('0') => current.push('\0'),
                Some('n') => current.push('\n'),
                Some('e') => current.push('\x1b'),
                Some(',') => current.push(','),
                Some('\\') => current.push('\\'),
                Some(other) => {
                    current.push('\\');
                    current.push(other);
                }
                None => current.push('\\'),
            },
            c => current.push(c),
        }
    }
    out
}

/// A record batch of `schema` with an explicit row count (so that zero
/// columns are allowed).
fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch, PluginError> {
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options).map_err(internal)
}

/// One complete stream of `batches`.
fn write(schema: &SchemaRef, batches: &[RecordBatch], options: IpcWriteOptions) -> Result<Vec<u8>, PluginError> {
    let mut writer = StreamWriter::try_new_with_options(Vec::new(), schema, options).map_err(internal)?;
    for batch in batches {
        writer.write(batch).map_err(internal)?;
    }
    writer.finish().map_err(internal)?;
    writer.into_inner().map_err(internal)
}

/// A stream of one batch holding `column` alone, named `name`.
fn single_column(name: &str, column: ArrayRef, nullable: bool) -> Result<Vec<u8>, PluginError> {
    let schema = Arc::new(Schema::new(vec![Field::new(name, column.data_type().clone(), nullable)]));
    let rows = column.len();
    write(&schema, &[batch(&schema, vec![column], rows)?], IpcWriteOptions::default())
}

/// `rows` views of one shared 1 MiB value, as Utf8View or BinaryView.
fn view_bomb(rows: usize, binary: bool) -> Result<Vec<u8>, PluginError> {
    let data = vec![b'x'; BIG_VALUE];
    let views = ScalarBuffer::from(vec![make_view(&data, 0, 0); rows]);
    // Checks every view's bounds and prefix (cheap), not its bytes.
    let array = BinaryViewArray::try_new(views, vec![Buffer::from_vec(data)], None).map_err(internal)?;
    let column: ArrayRef = if binary {
        Arc::new(array)
    } else {
        // StringViewArray::try_new (and the builder's try_append_view) would
        // check UTF-8 for every view, rows × 1 MiB of work. Safety: every view
        // spans the whole data buffer, which is ASCII.
        Arc::new(unsafe { array.to_string_view_unchecked() })
    };
    single_column("s", column, false)
}

/// `rows` one-row batches of a `Dictionary(Int32, Utf8)` column whose
/// dictionary grows by one value a batch (delta dictionaries), then is
/// replaced by an unrelated one in the last batch.
fn delta_dictionary(rows: usize) -> Result<Vec<u8>, PluginError> {
    let data_type = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let schema = Arc::new(Schema::new(vec![Field::new("s", data_type, false)]));
    let all: StringArray = (0..rows).map(|i| Some(format!("value-{i}"))).collect();
    let mut batches = Vec::with_capacity(rows);
    for i in 0..rows {
        let (values, key): (ArrayRef, i32) = if rows >= 2 && i == rows - 1 {
            (Arc::new(StringArray::from(vec![format!("replaced-{i}")])), 0)
        } else {
            (Arc::new(all.slice(0, i + 1)), fit("rows", i as u64, "keys are Int32")?)
        };
        let column = DictionaryArray::<Int32Type>::try_new(Int32Array::from(vec![key]), values).map_err(internal)?;
        batches.push(batch(&schema, vec![Arc::new(column)], 1)?);
    }
    let options = IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Delta);
    write(&schema, &batches, options)
}

/// Columns of the `aliased` attack: the most the host accepts.
const ALIASED_COLUMNS: usize = 4096;

/// A stream of one batch of `columns` Int8 columns of `rows` rows whose
/// values buffers all lie at offset 0 of one body of `rows` bytes: every
/// buffer is inside the body, aligned and as long as its rows need, and
/// arrow-ipc decodes it (zero-copy) to `columns` × `rows` bytes of columns.
/// The record batch message is written by hand; the schema by arrow-ipc.
fn aliased(columns: usize, rows: usize) -> Result<Vec<u8>, PluginError> {
    use arrow_ipc::{Buffer as Span, FieldNode, MessageBuilder, MessageHeader, MetadataVersion, RecordBatchBuilder};
    let fields: Vec<Field> = (0..columns).map(|i| Field::new(format!("c{i}"), DataType::Int8, false)).collect();
    let schema = Arc::new(Schema::new(fields));
    let mut out = StreamWriter::try_new(Vec::new(), &schema).map_err(internal)?.get_ref().clone();
    let body = rows.next_multiple_of(8);
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let nodes: Vec<FieldNode> = (0..columns).map(|_| FieldNode::new(rows as i64, 0)).collect();
    let spans: Vec<Span> = (0..columns).flat_map(|_| [Span::new(0, 0), Span::new(0, rows as i64)]).collect();
    let (nodes, spans) = (fbb.create_vector(&nodes), fbb.create_vector(&spans));
    let mut batch = RecordBatchBuilder::new(&mut fbb);
    batch.add_length(rows as i64);
    batch.add_nodes(nodes);
    batch.add_buffers(spans);
    let batch = batch.finish();
    let mut message = MessageBuilder::new(&mut fbb);
    message.add_version(MetadataVersion::V5);
    message.add_header_type(MessageHeader::RecordBatch);
    message.add_header(batch.as_union_value());
    message.add_bodyLength(body as i64);
    let message = message.finish();
    fbb.finish(message, None);
    let mut meta = fbb.finished_data().to_vec();
    meta.resize(meta.len().next_multiple_of(8), 0);
    out.extend_from_slice(&[0xFF; 4]);
    out.extend_from_slice(&(meta.len() as i32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.resize(out.len() + body, 7);
    out.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
    Ok(out)
}

/// A stream of one batch holding `column` (built with length
/// `PLACEHOLDER_LEN`) whose length fields are then patched to `rows`.
fn huge_length(name: &str, nullable: bool, rows: i64, column: ArrayRef) -> Result<Vec<u8>, PluginError> {
    let schema = Arc::new(Schema::new(vec![Field::new(name, column.data_type().clone(), nullable)]));
    let batch = batch(&schema, vec![column], PLACEHOLDER_LEN)?;
    let mut writer = StreamWriter::try_new(Vec::new(), &schema).map_err(internal)?;
    let start = writer.get_ref().len();
    writer.write(&batch).map_err(internal)?;
    let end = writer.get_ref().len();
    writer.finish().map_err(internal)?;
    let mut bytes = writer.into_inner().map_err(internal)?;
    // Flatbuffers store an i64 little-endian at an 8-aligned offset; the
    // message starts 8-aligned too (after the padded schema message).
    let from = (PLACEHOLDER_LEN as i64).to_le_bytes();
    let to = rows.to_le_bytes();
    let mut patched = 0;
    for at in (start..end.saturating_sub(7)).step_by(8) {
        if bytes[at..at + 8] == from {
            bytes[at..at + 8].copy_from_slice(&to);
            patched += 1;
        }
    }
    if patched < 2 {
        return Err(internal(format!("patched {patched} length fields, expected at least 2")));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow_array::Array;
    use arrow_ipc::reader::StreamReader;

    fn config(pairs: &[(&str, &str)]) -> Config {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn stream(pairs: &[(&str, &str)]) -> Vec<u8> {
        Attack::from_config(&config(pairs)).expect("config").stream().expect("stream")
    }

    fn decode(bytes: &[u8]) -> (SchemaRef, Vec<RecordBatch>) {
        let reader = StreamReader::try_new(bytes, None).expect("reader");
        let schema = reader.schema();
        (schema, reader.collect::<Result<Vec<_>, _>>().expect("batches"))
    }

    /// (header type, isDelta) of every message of `bytes`, in order.
    fn messages(bytes: &[u8]) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            assert_eq!(bytes[at..at + 4], [0xff; 4], "continuation marker at {at}");
            let len = i32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            if len == 0 {
                assert_eq!(at + 8, bytes.len(), "end-of-stream marker is last");
                return out;
            }
            let message = arrow_ipc::root_as_message(&bytes[at + 8..at + 8 + len]).expect("message");
            let delta = message.header_as_dictionary_batch().is_some_and(|d| d.isDelta());
            out.push((format!("{:?}", message.header_type()), delta));
            at += 8 + len + message.bodyLength() as usize;
        }
    }

    fn check_size(attack: &str, bytes: &[u8], max: usize) {
        eprintln!("{attack}: {} bytes on the wire", bytes.len());
        assert!(bytes.len() <= max, "{attack}: {} bytes > {max}", bytes.len());
    }

    #[test]
    fn view_bombs_share_one_buffer() {
        for attack in ["view-bomb", "binary-view-bomb"] {
            let bytes = stream(&[("attack", attack)]);
            check_size(attack, &bytes, 16 * 1_000_000 + (1 << 20) + 4096);
            let small = stream(&[("attack", attack), ("rows", "3")]);
            let (schema, batches) = decode(&small);
            let expected = if attack == "view-bomb" { DataType::Utf8View } else { DataType::BinaryView };
            assert_eq!(schema.field(0).data_type(), &expected);
            assert_eq!(batches[0].num_rows(), 3);
            assert_eq!(batches[0].column(0).to_data().buffers().len(), 2, "views + one data buffer");
        }
        // BinaryView validation is cheap: decode the default one in full.
        let (_, batches) = decode(&stream(&[("attack", "binary-view-bomb")]));
        assert_eq!(batches[0].num_rows(), 1_000_000);
        let column = batches[0].column(0).as_any().downcast_ref::<BinaryViewArray>().unwrap();
        assert_eq!(column.value(999_999).len(), 1 << 20);
    }

    #[test]
    fn dictionary_has_one_big_value() {
        let bytes = stream(&[("attack", "dictionary")]);
        check_size("dictionary", &bytes, 4 * 1_000_000 + (1 << 20) + 4096);
        let (_, batches) = decode(&bytes);
        assert_eq!(batches[0].num_rows(), 1_000_000);
        let kinds: Vec<_> = messages(&bytes).into_iter().map(|(kind, _)| kind).collect();
        assert_eq!(kinds, ["Schema", "DictionaryBatch", "RecordBatch"]);
    }

    #[test]
    fn delta_dictionary_sends_deltas_then_a_replacement() {
        let bytes = stream(&[("attack", "delta-dictionary")]);
        check_size("delta-dictionary", &bytes, 16 << 10);
        let kinds = messages(&bytes);
        let dictionaries: Vec<bool> =
            kinds.iter().filter(|(kind, _)| kind == "DictionaryBatch").map(|(_, delta)| *delta).collect();
        let mut expected = vec![false];
        expected.extend([true; 14]);
        expected.push(false);
        assert_eq!(dictionaries, expected, "{kinds:?}");
        let (_, batches) = decode(&bytes);
        assert_eq!(batches.len(), 16);
        let values: Vec<String> = batches
            .iter()
            .map(|b| {
                let d = b.column(0).as_any().downcast_ref::<DictionaryArray<Int32Type>>().unwrap();
                let v = d.values().as_any().downcast_ref::<StringArray>().unwrap();
                v.value(d.keys().value(0) as usize).to_owned()
            })
            .collect();
        assert_eq!(values[0], "value-0");
        assert_eq!(values[14], "value-14");
        assert_eq!(values[15], "replaced-15");
    }

    #[test]
    fn huge_lengths_are_patched() {
        for (attack, data_type) in [
            ("null-rows", DataType::Null),
            ("empty-struct", DataType::Struct(Default::default())),
            ("fsl-zero", DataType::FixedSizeList(Arc::new(Field::new_list_field(DataType::Int32, true)), 0)),
        ] {
            let bytes = stream(&[("attack", attack)]);
            check_size(attack, &bytes, 1024);
            let (schema, batches) = decode(&bytes);
            assert_eq!(schema.field(0).data_type(), &data_type);
            assert_eq!(batches[0].num_rows(), 1 << 40, "{attack}");
            assert_eq!(batches[0].column(0).len(), 1 << 40, "{attack}");
            let small = stream(&[("attack", attack), ("rows", "5")]);
            assert_eq!(decode(&small).1[0].num_rows(), 5);
        }
    }

    #[test]
    fn run_end_is_one_run() {
        let bytes = stream(&[("attack", "run-end")]);
        check_size("run-end", &bytes, 4096);
        let (_, batches) = decode(&bytes);
        assert_eq!(batches[0].num_rows(), i32::MAX as usize);
        assert!(matches!(batches[0].column(0).data_type(), DataType::RunEndEncoded(_, _)));
        assert_eq!(decode(&stream(&[("attack", "run-end"), ("rows", "0")])).1[0].num_rows(), 0);
    }

    #[test]
    fn deep_is_refused_by_the_arrow_reader() {
        let bytes = stream(&[("attack", "deep")]);
        check_size("deep", &bytes, 64 << 10);
        let error = StreamReader::try_new(&bytes[..], None).expect_err("too deep");
        eprintln!("deep: arrow-ipc reader says: {error}");
        let (schema, _) = decode(&stream(&[("attack", "deep"), ("depth", "10")]));
        let mut depth = 0;
        let mut data_type = schema.field(0).data_type().clone();
        while let DataType::List(item) = data_type {
            depth += 1;
            data_type = item.data_type().clone();
        }
        assert_eq!((depth, data_type), (10, DataType::Int32));
    }

    #[test]
    fn names_are_split_and_unescaped() {
        assert_eq!(split_names("id,id"), ["id", "id"]);
        assert_eq!(split_names(","), ["", ""]);
        assert_eq!(split_names(r"a\0b,c\nd,\e[31m,x\,y,\\,\q"), ["a\0b", "c\nd", "\x1b[31m", "x,y", "\\", "\\q"]);
        let bytes = stream(&[("attack", "names")]);
        check_size("names", &bytes, 4096);
        let (schema, batches) = decode(&bytes);
        assert_eq!(schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["id", "id"]);
        assert_eq!(batches[0].num_rows(), 1);
        let (schema, _) = decode(&stream(&[("attack", "names"), ("names", r"ID,id,a\0b")]));
        assert_eq!(schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["ID", "id", "a\0b"]);
    }

    #[test]
    fn field_id_metadata_survives() {
        let bytes = stream(&[("attack", "field-id")]);
        check_size("field-id", &bytes, 4096);
        let (schema, batches) = decode(&bytes);
        assert_eq!(schema.metadata().get("floe.injected").map(String::as_str), Some("1"));
        assert_eq!(schema.field(0).metadata().get("PARQUET:field_id").map(String::as_str), Some("99"));
        assert_eq!(batches[0].num_rows(), 3);
    }

    #[test]
    fn many_columns() {
        let bytes = stream(&[("attack", "many-columns")]);
        check_size("many-columns", &bytes, 16 << 20);
        let (schema, batches) = decode(&bytes);
        assert_eq!(schema.fields().len(), 100_000);
        assert_eq!(batches[0].num_columns(), 100_000);
        assert_eq!(decode(&stream(&[("attack", "many-columns"), ("rows", "0")])).1[0].num_rows(), 1);
    }

    #[test]
    fn aliased() {
        let bytes = stream(&[("attack", "aliased"), ("rows", "1024")]);
        check_size("aliased", &bytes, 512 << 10);
        let (schema, batches) = decode(&bytes);
        assert_eq!(schema.fields().len(), 4096);
        assert_eq!((batches[0].num_columns(), batches[0].num_rows()), (4096, 1024));
        // Every column reads the same bytes of the one body.
        let first = batches[0].column(0).to_data().buffers()[0].as_ptr();
        assert_eq!(batches[0].column(4095).to_data().buffers()[0].as_ptr(), first);
        check_size("aliased", &stream(&[("attack", "aliased")]), 2 << 20);
    }

    #[test]
    fn bad_configs_are_rejected() {
        for pairs in [
            vec![],
            vec![("attack", "nope")],
            vec![("attack", "null-rows"), ("rows", "-1")],
            vec![("attack", "null-rows"), ("rows", "9223372036854775808")],
            vec![("attack", "run-end"), ("rows", "2147483648")],
        ] {
            let result = Attack::from_config(&config(&pairs));
            assert!(matches!(result, Err(PluginError::InvalidConfig(_))), "{pairs:?}: {result:?}");
        }
        assert_eq!(
            Attack::from_config(&config(&[("attack", "null-rows"), ("rows", "1_000")])).unwrap(),
            Attack::NullRows { rows: 1000 }
        );
    }
}
