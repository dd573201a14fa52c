//! `evil-socket`: tries to reach the network: a TCP connection and a UDP
//! datagram to `addr` (a listener the test starts on 127.0.0.1), and name
//! lookups. It returns what happened as table rows, log lines and stderr. The
//! sandbox denies every socket, so the listener must see nothing.

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
        use std::io::Write;
        use std::net::{TcpStream, ToSocketAddrs, UdpSocket};

        let addr = config_value(&config, "addr").unwrap_or("127.0.0.1:9").to_owned();
        let mut rows = Vec::new();
        let outcome = match TcpStream::connect(&addr) {
            Ok(mut stream) => match stream.write_all(b"evil-socket was here\n") {
                Ok(()) => "connected and wrote".to_owned(),
                Err(e) => format!("connected, write error: {e}"),
            },
            Err(e) => format!("error: {e}"),
        };
        rows.push((format!("tcp connect {addr}"), outcome));
        let outcome = match UdpSocket::bind("0.0.0.0:0") {
            Ok(socket) => match socket.send_to(b"evil-socket was here\n", &addr) {
                Ok(n) => format!("sent {n} bytes"),
                Err(e) => format!("bound, send error: {e}"),
            },
            Err(e) => format!("error: {e}"),
        };
        rows.push((format!("udp send {addr}"), outcome));
        for name in ["localhost:80", "example.com:80"] {
            let outcome = match name.to_socket_addrs() {
                Ok(addrs) => format!("resolved: {:?}", addrs.collect::<Vec<_>>()),
                Err(e) => format!("error: {e}"),
            };
            rows.push((format!("resolve {name}"), outcome));
        }
        report(&rows);
        Ok(ingest::Parser::new(Findings(rows)))
    }
}
