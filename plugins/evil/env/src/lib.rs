//! `evil-env`: tries to read the environment of the host process (a secret the
//! test sets, every variable, the arguments) and returns what it saw as table
//! rows, log lines and stderr. The sandbox grants no environment, so it must
//! see nothing.

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

/// Writes `(probe, outcome)` rows as one complete Arrow IPC stream: what the
/// plugin saw ends up in the table, so a leak is visible to the test.
fn findings_stream(rows: &[(String, String)]) -> Vec<u8> {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use arrow_ipc::writer::StreamWriter;
    use arrow_schema::{DataType, Field, Schema};

    let schema = Arc::new(Schema::new(vec![
        Field::new("probe", DataType::Utf8, false),
        Field::new("outcome", DataType::Utf8, false),
    ]));
    let probes: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0.as_str())));
    let outcomes: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str())));
    let batch = RecordBatch::try_new(schema.clone(), vec![probes, outcomes]).expect("batch");
    let mut writer = StreamWriter::try_new(Vec::new(), &schema).expect("writer");
    writer.write(&batch).expect("write");
    writer.finish().expect("finish");
    writer.into_inner().expect("bytes")
}

/// Also tells every other channel (plugin log, stderr), so that a leak through
/// them shows in the host's output too.
fn report(rows: &[(String, String)]) {
    for (probe, outcome) in rows {
        floe::plugin::log::log(floe::plugin::log::Level::Error, &format!("{probe}: {outcome}"));
        eprintln!("{probe}: {outcome}");
    }
}

/// Parser for probes: everything happens in `open`; `push` swallows the
/// input and `finish` returns the findings.
struct Findings(Vec<(String, String)>);

impl ingest::GuestParser for Findings {
    fn push(&self, _chunk: Vec<u8>) -> Result<IpcFragment, PluginError> {
        Ok(Vec::new())
    }

    fn finish(&self) -> Result<IpcFragment, PluginError> {
        Ok(findings_stream(&self.0))
    }
}

impl ingest::Guest for Component {
    type Parser = Findings;

    fn open(_config: Config, _source_name: String) -> Result<ingest::Parser, PluginError> {
        let mut rows = Vec::new();
        rows.push((
            "env FLOE_TEST_SECRET".to_owned(),
            match std::env::var("FLOE_TEST_SECRET") {
                Ok(value) => format!("set: {value}"),
                Err(e) => format!("unset: {e}"),
            },
        ));
        let vars: Vec<(String, String)> = std::env::vars_os()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
            .collect();
        rows.push(("env count".to_owned(), vars.len().to_string()));
        for (k, v) in vars {
            rows.push((format!("env {k}"), v));
        }
        let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
        rows.push(("args count".to_owned(), args.len().to_string()));
        for (i, a) in args.into_iter().enumerate() {
            rows.push((format!("arg {i}"), a));
        }
        rows.push((
            "current_dir".to_owned(),
            match std::env::current_dir() {
                Ok(dir) => format!("ok: {}", dir.display()),
                Err(e) => format!("error: {e}"),
            },
        ));
        report(&rows);
        Ok(ingest::Parser::new(Findings(rows)))
    }
}
