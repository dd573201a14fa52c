//! `evil-file`: tries to read `/etc/passwd`, Kubernetes service-account
//! secrets, `/proc/self/environ` and a file the test names in the config
//! (`probe_path`), and to list directories, and returns what it saw as table
//! rows, log lines and stderr. The sandbox preopens no directory, so every
//! attempt must fail.

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

    fn open(config: Config, _source_name: String) -> Result<ingest::Parser, PluginError> {
        let mut files = vec![
            "/etc/passwd".to_owned(),
            "/var/run/secrets/kubernetes.io/serviceaccount/token".to_owned(),
            "/proc/self/environ".to_owned(),
            "floe.yaml".to_owned(),
        ];
        let mut dirs = vec!["/".to_owned(), ".".to_owned(), "/var/run/secrets".to_owned()];
        if let Some(path) = config_value(&config, "probe_path") {
            files.push(path.to_owned());
            if let Some(parent) = std::path::Path::new(path).parent() {
                dirs.push(parent.display().to_string());
            }
        }
        let mut rows = Vec::new();
        for path in files {
            let outcome = match std::fs::read(&path) {
                Ok(bytes) => format!("read {} bytes: {}", bytes.len(), String::from_utf8_lossy(&bytes)),
                Err(e) => format!("error: {e}"),
            };
            rows.push((format!("read {path}"), outcome));
            let outcome = match std::fs::write(format!("{path}.evil"), b"evil") {
                Ok(()) => "wrote".to_owned(),
                Err(e) => format!("error: {e}"),
            };
            rows.push((format!("write {path}.evil"), outcome));
        }
        for dir in dirs {
            let outcome = match std::fs::read_dir(&dir) {
                Ok(entries) => {
                    let names: Vec<String> =
                        entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                    format!("listed: {}", names.join(" "))
                }
                Err(e) => format!("error: {e}"),
            };
            rows.push((format!("list {dir}"), outcome));
        }
        report(&rows);
        Ok(ingest::Parser::new(Findings(rows)))
    }
}
