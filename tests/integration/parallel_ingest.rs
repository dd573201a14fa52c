//! Parallel ingest: a source cut into chunks of whole records and parsed by
//! several plugin instances at once gives exactly the serial output (same
//! rows in the same order, same `_row`, same errors), whatever the chunk
//! size, with quoted newlines straddling the cuts; a plugin that lies in its
//! record syntax or its chunk output (`evil-chunks`) fails its step with a
//! named error; and `floe-host run` takes the knobs from platform.yaml.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use arrow_array::RecordBatch;
use floe_host::sandbox::{IngestPlugin, Limits, PluginStats, Sandbox, SandboxError};

use crate::support::{self, floe_host, ints, temp_dir};

fn load(file: &str, limits: Limits) -> IngestPlugin {
    static LOAD: Mutex<()> = Mutex::new(());
    let _guard = LOAD.lock().unwrap_or_else(|e| e.into_inner());
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("parallel-ingest-compile-cache");
    let wasm = std::fs::read(support::plugin(file)).unwrap();
    Sandbox::new(limits, Some(cache)).unwrap().load_ingest(file, &wasm).expect(file)
}

fn limits(parallelism: usize, chunk_bytes: usize) -> Limits {
    Limits { ingest_parallelism: parallelism, ingest_chunk_bytes: chunk_bytes, ..Limits::default() }
}

fn ingest(
    plugin: &IngestPlugin,
    config: &[(&str, &str)],
    data: &[u8],
) -> Result<(RecordBatch, PluginStats), SandboxError> {
    let config: BTreeMap<String, String> = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut out = Vec::new();
    let (schema, stats) =
        plugin.ingest_with_stats("raw_notes", &config, "data/notes.csv", &mut &data[..], &mut |b| {
            out.push(b);
            Ok(())
        })?;
    Ok((arrow_select::concat::concat_batches(&schema, &out).unwrap(), stats))
}

/// A CSV of `records` records whose quoted fields hold newlines, CRLFs,
/// commas and doubled quotes, with blank lines and CRLF record ends between
/// them, after two blank lines and a BOM.
fn tricky_csv(records: usize) -> Vec<u8> {
    let mut csv = String::from("\n\r\n\u{feff}id,note,city\r\n");
    for i in 1..=records {
        let note = match i % 6 {
            0 => format!("\"line one\nline {i}\""),
            1 => format!("\"a \"\"quoted\"\", comma\r\nand CRLF {i}\""),
            2 => format!("plain {i}"),
            3 => "\"\n\n\"".to_owned(),
            4 => String::new(),
            _ => format!("naïve \"{i}\""),
        };
        csv.push_str(&format!("{i},{note},city {}", i % 7));
        csv.push_str(if i % 5 == 0 { "\r\n" } else { "\n" });
        if i % 11 == 0 {
            csv.push('\n');
        }
    }
    csv.into_bytes()
}

#[test]
fn parallel_ingest_gives_the_serial_table_with_quoted_newlines_on_every_cut() {
    let data = tricky_csv(600);
    let serial = load("csv_ingest.wasm", limits(1, 1 << 20));
    let (want, _) = ingest(&serial, &[], &data).unwrap();
    assert_eq!(want.num_rows(), 600);
    assert_eq!(ints(std::slice::from_ref(&want), "_row"), (1..=600).collect::<Vec<i64>>());
    let notes = want.column(1).as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
    assert_eq!(notes.value(5), "line one\nline 6");
    assert_eq!(notes.value(0), "a \"quoted\", comma\r\nand CRLF 1");
    assert_eq!(notes.value(2), "\n\n");

    // Chunk size 1 cuts after every record: every quoted newline and blank
    // line is next to a cut somewhere in these runs.
    for (parallelism, chunk_bytes) in [(2, 1), (3, 37), (4, 256), (2, 4096)] {
        let plugin = load("csv_ingest.wasm", limits(parallelism, chunk_bytes));
        assert!(plugin.splits_sources());
        let (got, stats) = ingest(&plugin, &[], &data).unwrap();
        assert_eq!(got, want, "parallelism {parallelism}, chunks of {chunk_bytes} bytes");
        // A chunk ends at the first record end after `chunk_bytes`; no record
        // here is longer than 64 bytes. Every chunk is one call at least.
        let chunks = if chunk_bytes == 1 { 600 } else { data.len() / (chunk_bytes + 64) };
        assert!(stats.calls as usize >= chunks, "{} calls for at least {chunks} chunks", stats.calls);
    }
}

/// An error is reported from the record where the serial run reports it,
/// with the same text, wherever the cuts fall.
#[test]
fn parallel_ingest_fails_where_and_as_the_serial_run_fails() {
    let mut bad_row = tricky_csv(300);
    bad_row.extend_from_slice(b"301,only two\n302,a,b\n");
    let mut open_quote = tricky_csv(300);
    open_quote.extend_from_slice(b"301,\"never closed,x\n302,a,b\n");
    // The host counts a line holding only a BOM as the header record.
    let lone_bom = [&b"\xef\xbb\xbf\n"[..], &tricky_csv(300)].concat();
    for data in [bad_row, open_quote, lone_bom] {
        let serial = load("csv_ingest.wasm", limits(1, 1 << 20));
        let want = ingest(&serial, &[], &data).unwrap_err().to_string();
        assert!(
            want.contains("has 2 fields, but the header has 3")
                || want.contains("not closed before the end of the file")
                || want.contains("line 1: a UTF-8 byte-order mark alone on a line"),
            "{want}"
        );
        for chunk_bytes in [1, 100, 5000] {
            let plugin = load("csv_ingest.wasm", limits(3, chunk_bytes));
            let got = ingest(&plugin, &[], &data).unwrap_err().to_string();
            assert_eq!(got, want, "chunks of {chunk_bytes} bytes");
        }
    }
}

#[test]
fn a_plugin_that_lies_about_its_chunks_fails_its_step() {
    let data = tricky_csv(50);
    let evil = |mode: &str, limits: Limits| ingest(&load("evil_chunks.wasm", limits), &[("mode", mode)], &data);

    let err = evil("header-records", limits(2, 64)).unwrap_err();
    assert!(matches!(err, SandboxError::OutputRefused { .. }), "{err}");
    assert!(err.to_string().contains("1000000 header records, more than the 16 accepted"), "{err}");

    let err = evil("newline-quote", limits(2, 64)).unwrap_err().to_string();
    assert!(err.contains("quotes with byte 10 and delimits with byte 44: they must differ"), "{err}");

    let err = evil("schema-flip", limits(2, 64)).unwrap_err();
    assert!(matches!(err, SandboxError::SchemaChanged { .. }), "{err}");
    assert!(err.to_string().contains("another schema than the first chunk"), "{err}");

    // Four instances share 256 MiB: each one stops at 64 MiB.
    let shared = Limits { memory_bytes: 256 << 20, ..limits(4, 64) };
    let err = evil("alloc", shared).unwrap_err();
    assert!(matches!(err, SandboxError::Memory { limit, shared_by: 4, .. } if limit == 64 << 20), "{err}");
    assert!(err.to_string().contains("`plugins.memory_limit` split 4 ways by parallel ingest"), "{err}");

    // With one instance, the object is parsed in one piece: no chunk calls.
    let (one_piece, _) = evil("schema-flip", limits(1, 64)).unwrap();
    assert_eq!(ints(&[one_piece], "id"), [1]);
}

/// platform.yaml's knobs reach the run: a source cut into many chunks by 3
/// instances is committed with every record, in order.
#[test]
fn floe_host_run_ingests_in_parallel_chunks_from_platform_yaml() {
    let dir = temp_dir();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/notes.csv"), tricky_csv(400)).unwrap();
    let floe = format!(
        "name: notes\ntransforms:\n  - name: raw_notes\n    layer: bronze\n    kind: ingest\n    plugin: csv-ingest\n    \
         source: data/notes.csv\nplugins:\n  csv-ingest:\n    path: {}\n",
        serde_json::to_string(support::plugin("csv_ingest.wasm").to_str().unwrap()).unwrap()
    );
    std::fs::write(dir.path().join("floe.yaml"), floe).unwrap();
    let state = dir.path().join(".floe");
    let platform = format!(
        "compute:\n  default:\n    type: duckdb\ncatalogs:\n  default:\n    type: sql\n    uri: sqlite:{state}/catalog.db\n    \
         warehouse: {state}/warehouse\nstorage:\n  default:\n    type: local\n    root: {state}/warehouse\n\
         plugins:\n  ingest_parallelism: 3\n  ingest_chunk_size: 512B\n",
        state = state.display()
    );
    std::fs::write(dir.path().join("platform.yaml"), platform).unwrap();
    let project = dir.path().to_str().unwrap();
    let platform = dir.path().join("platform.yaml");
    let run =
        floe_host(&["run", project, "--platform", platform.to_str().unwrap(), "--log-format", "json"]).expect_code(0);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("The plugin ingested a source object.") && l.contains("\"chunks\""))
        .unwrap_or_else(|| panic!("no parallel ingest log line:\n{}", run.stderr));
    let log: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(log["instances"], 3);
    assert_eq!(log["rows"], 400);
    assert!(log["chunks"].as_u64().unwrap() >= 15, "{line}");
    // The workers' records are the step's: they carry the run id.
    for record in run.stderr.lines() {
        let record: serde_json::Value = serde_json::from_str(record).unwrap();
        assert!(record["run_id"].is_string(), "{record}");
    }
    let committed = run.stderr.lines().find(|l| l.contains("Committed step.")).expect("committed");
    let committed: serde_json::Value = serde_json::from_str(committed).unwrap();
    assert_eq!(committed["rows"], 400, "{committed}");
}
