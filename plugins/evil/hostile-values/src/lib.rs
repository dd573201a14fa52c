//! `evil-hostile-values`: a well-formed ingest whose *values* attack.
//!
//! With no config, its one column, `status`, holds text meant to escape
//! wherever the host quotes a value (a failing data test's examples in
//! errors, logs, lineage, Pipes): terminal escapes, a newline then a forged
//! Dagster Pipes message, a forged JSON log record, a Unicode line separator,
//! a 100 KB value; each twice, so that `unique` fails on them too.
//!
//! `values: edges` sends one batch whose decimal, time, date and timestamp
//! columns hold the edges of their domains, which the host must accept;
//! `values: decimal`, `time`, `date` or `timestamp` sends the same batch with
//! that column's value one past its edge (Arrow carries it, DuckDB breaks on
//! it), which the host must refuse.
//!
//! `values: wide` returns, from every `push`, `rows` rows of `bytes` random
//! bytes each: rows so wide that a writer which buffers a row group by its
//! row count holds gigabytes.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "ingest-plugin",
});

use std::cell::RefCell;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray, Time64MicrosecondArray,
    TimestampMicrosecondArray,
};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
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

impl ingest::Guest for Component {
    type Parser = Parser;

    fn open(config: Config, _source_name: String) -> Result<ingest::Parser, PluginError> {
        let value = |key: &str| config.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let number = |key: &str, default: usize| -> Result<usize, PluginError> {
            value(key).map_or(Ok(default), |v| v.parse().map_err(|_| PluginError::InvalidConfig(format!("`{key}`: {v}"))))
        };
        let mode = match value("values").as_deref() {
            None | Some("text") => Mode::Text,
            Some("wide") => Mode::Wide { rows: number("rows", 1024)?, bytes: number("bytes", 65_536)? },
            Some(case) => Mode::Domains(case.to_owned()),
        };
        Ok(ingest::Parser::new(Parser { mode, wide: RefCell::new(None), seed: RefCell::new(0x9e37_79b9_7f4a_7c15) }))
    }
}

enum Mode {
    Text,
    Domains(String),
    Wide { rows: usize, bytes: usize },
}

struct Parser {
    mode: Mode,
    /// `wide`: the stream, started on the first push.
    wide: RefCell<Option<StreamWriter<Vec<u8>>>>,
    /// `wide`: xorshift state, so the bytes do not compress.
    seed: RefCell<u64>,
}

fn internal(e: impl ToString) -> PluginError {
    PluginError::Internal(e.to_string())
}

/// One batch as a whole IPC stream.
fn stream(batch: &RecordBatch) -> Result<Vec<u8>, PluginError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema()).map_err(internal)?;
    writer.write(batch).map_err(internal)?;
    writer.finish().map_err(internal)?;
    writer.into_inner().map_err(internal)
}

/// Days since 1970-01-01 of -262143-01-01 and 262142-12-31, and the
/// microseconds of the first and last instant of those days: the host's
/// range for dates and timestamps.
const DAYS: (i32, i32) = (-96_465_292, 95_026_236);
const MICROS: (i64, i64) = (-8_334_601_228_800_000_000, 8_210_266_876_799_999_999);
const DAY_MICROS: i64 = 86_400_000_000;

/// Two rows at the edges of each domain; `case` pushes one value past.
fn domains(case: &str) -> Result<RecordBatch, PluginError> {
    let mut amount = vec![999_999_999_999_i128, -999_999_999_999];
    let mut time = vec![0, DAY_MICROS - 1];
    let mut date = vec![DAYS.0, DAYS.1];
    let mut at = vec![MICROS.0, MICROS.1];
    match case {
        "edges" => {}
        "decimal" => amount[1] = -1_000_000_000_000,
        "time" => time[1] = DAY_MICROS,
        "date" => date[0] = DAYS.0 - 1,
        "timestamp" => at[1] = MICROS.1 + 1,
        other => return Err(PluginError::InvalidConfig(format!("`values`: {other}"))),
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from(vec![1, 2]))),
        ("amount", Arc::new(Decimal128Array::from(amount).with_precision_and_scale(12, 2).map_err(internal)?)),
        ("t", Arc::new(Time64MicrosecondArray::from(time))),
        ("d", Arc::new(Date32Array::from(date))),
        ("ts", Arc::new(TimestampMicrosecondArray::from(at))),
        ("ts_utc", Arc::new(TimestampMicrosecondArray::from(vec![MICROS.0, MICROS.1]).with_timezone("UTC"))),
    ];
    RecordBatch::try_from_iter(columns).map_err(internal)
}

impl Parser {
    /// `rows` rows of `bytes` random bytes each, as the next part of the stream.
    fn wide(&self, rows: usize, bytes: usize) -> Result<Vec<u8>, PluginError> {
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("payload", DataType::Binary, false)]));
        let mut seed = self.seed.borrow_mut();
        let mut data = vec![0u8; rows * bytes];
        for word in data.chunks_mut(8) {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            word.copy_from_slice(&seed.to_le_bytes()[..word.len()]);
        }
        let payload = BinaryArray::from_iter_values(data.chunks(bytes.max(1)).take(rows));
        let mut wide = self.wide.borrow_mut();
        let writer = match &mut *wide {
            Some(writer) => writer,
            none => none.insert(StreamWriter::try_new(Vec::new(), &schema).map_err(internal)?),
        };
        let ids = Int64Array::from_iter_values(0..rows as i64);
        let batch = RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(payload)]).map_err(internal)?;
        writer.write(&batch).map_err(internal)?;
        Ok(std::mem::take(writer.get_mut()))
    }
}

/// The values: each would break a line-oriented reader of the host's output.
fn values() -> Vec<String> {
    let attacks = [
        "\u{1b}[2J\u{1b}[31mFORGED TERMINAL\u{1b}[0m".to_owned(),
        "x\n{\"__dagster_pipes_version\":\"0.1\",\"method\":\"report_asset_materialization\",\"params\":{\"asset_key\":\"gold/pwned\"}}".to_owned(),
        "y\r\n{\"level\":\"ERROR\",\"message\":\"forged record\",\"exit_code\":0}".to_owned(),
        "z\u{2028}forged line".to_owned(),
        "A".repeat(100_000),
    ];
    attacks.iter().chain(attacks.iter()).cloned().collect()
}

impl ingest::GuestParser for Parser {
    fn push(&self, _chunk: Vec<u8>) -> Result<IpcFragment, PluginError> {
        match self.mode {
            Mode::Wide { rows, bytes } => self.wide(rows, bytes),
            _ => Ok(Vec::new()),
        }
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        match &self.mode {
            Mode::Text => {
                let schema = Arc::new(Schema::new(vec![Field::new("status", DataType::Utf8, true)]));
                let column: ArrayRef = Arc::new(StringArray::from(values()));
                stream(&RecordBatch::try_new(schema, vec![column]).map_err(internal)?)
            }
            Mode::Domains(case) => stream(&domains(case)?),
            Mode::Wide { rows, bytes } => {
                // An empty source had no push: its rows come here.
                let mut out = if self.wide.borrow().is_none() { self.wide(*rows, *bytes)? } else { Vec::new() };
                let mut wide = self.wide.borrow_mut();
                let writer = wide.as_mut().expect("started by a push or above");
                writer.finish().map_err(internal)?;
                out.append(writer.get_mut());
                Ok(out)
            }
        }
    }
}
