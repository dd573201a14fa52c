//! The plugin sandbox with the real `csv-ingest` component: CSV semantics,
//! chunking, plugin-reported errors, and one violation per sandbox limit.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use floe_host::sandbox::{IngestPlugin, Limits, PluginKind, Sandbox, SandboxError};

use crate::support::{ints, s, strings};

fn plugin_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let dist = std::env::var_os("FLOE_PLUGIN_DIST")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist"));
        let path = dist.join("csv_ingest.wasm");
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}; run scripts/build-plugins.sh", path.display()))
    })
}

/// Loads csv-ingest under `limits`. All tests share one compile cache, and the
/// first load holds a lock, so the component is compiled once per run at most.
fn load(limits: Limits) -> IngestPlugin {
    static FIRST_LOAD: Mutex<()> = Mutex::new(());
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sandbox-compile-cache");
    let _guard = FIRST_LOAD.lock().unwrap_or_else(|e| e.into_inner());
    // One instance per source: these tests pin the serial path's limits and
    // calls (parallel_ingest.rs has the parallel one's), whatever the cores.
    let limits = Limits { ingest_parallelism: 1, ..limits };
    Sandbox::new(limits, Some(cache))
        .expect("sandbox")
        .load_ingest("csv-ingest", plugin_wasm())
        .expect("load csv-ingest")
}

fn run(
    plugin: &IngestPlugin,
    config: &[(&str, &str)],
    csv: &[u8],
) -> Result<(SchemaRef, Vec<RecordBatch>), SandboxError> {
    let config: BTreeMap<String, String> = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut batches = Vec::new();
    let schema = plugin.ingest("raw_orders", &config, "raw/orders.csv", &mut &csv[..], &mut |b| {
        batches.push(b);
        Ok(())
    })?;
    Ok((schema, batches))
}

fn with_chunks(chunk_bytes: usize) -> Limits {
    Limits { chunk_bytes, ..Limits::default() }
}

/// Column `name` of all batches, as Option<String> per row.
#[test]
fn csv_values_nulls_quotes_and_ints() {
    let plugin = load(Limits::default());
    let csv = b"id,name,note,tail\n\
                1,\"Last, First\", N/A ,x\n\
                2,,N/A,\n\
                3,\"say \"\"hi\"\"\",  ,\"\"\r\n\
                \n\
                4,caf\xc3\xa9,,z";
    let (schema, batches) = run(&plugin, &[], csv).unwrap();

    let fields: Vec<_> =
        schema.fields().iter().map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable())).collect();
    assert_eq!(
        fields,
        [
            ("id", DataType::Utf8, true),
            ("name", DataType::Utf8, true),
            ("note", DataType::Utf8, true),
            ("tail", DataType::Utf8, true),
            ("_row", DataType::Int64, false),
        ]
    );
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 4);
    assert_eq!(strings(&batches, "id"), [s("1"), s("2"), s("3"), s("4")]);
    assert_eq!(strings(&batches, "name"), [s("Last, First"), None, s("say \"hi\""), s("café")]);
    // Only empty fields are NULL: `N/A` and spaces stay text, untrimmed.
    assert_eq!(strings(&batches, "note"), [s(" N/A "), s("N/A"), s("  "), None]);
    // `\r\n` ends a line like `\n`; a quoted empty field is empty, hence NULL.
    assert_eq!(strings(&batches, "tail"), [s("x"), None, None, s("z")]);
    // The blank line is skipped and does not count as a record.
    assert_eq!(ints(&batches, "_row"), [1, 2, 3, 4]);
}

#[test]
fn chunk_size_does_not_change_the_output() {
    let mut csv = String::from("k,text,amount\n");
    for i in 1..=200 {
        csv.push_str(&format!("{i},\"naïve, 日本 {i}\",{}\n", if i % 7 == 0 { "" } else { "1.5" }));
    }
    let config = [("batch_rows", "64"), ("row_number_column", "line_no")];
    let (schema, expected) = run(&load(Limits::default()), &config, csv.as_bytes()).unwrap();
    assert_eq!(expected.iter().map(|b| b.num_rows()).collect::<Vec<_>>(), [64, 64, 64, 8]);
    assert_eq!(ints(&expected, "line_no"), (1..=200).collect::<Vec<i64>>());
    assert_eq!(strings(&expected, "text")[6], s("naïve, 日本 7"));
    assert_eq!(strings(&expected, "amount")[6], None);

    for chunk in [1, 7] {
        let (chunked_schema, batches) = run(&load(with_chunks(chunk)), &config, csv.as_bytes()).unwrap();
        assert_eq!(chunked_schema, schema, "chunk size {chunk}");
        assert_eq!(batches, expected, "chunk size {chunk}");
    }
}

#[test]
fn field_count_mismatch_names_the_line() {
    let err = run(&load(with_chunks(3)), &[], b"a,b\n1,2\n3\n4,5\n").unwrap_err();
    assert!(matches!(err, SandboxError::InvalidInput { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "step `raw_orders`: plugin `csv-ingest` rejected its input: \
         `raw/orders.csv`: line 3 has 1 fields, but the header has 2"
    );
    assert!(!err.is_contract_violation());
}

#[test]
fn invalid_utf8_and_unknown_config_are_plugin_errors() {
    let plugin = load(Limits::default());
    let err = run(&plugin, &[], b"a,b\n1,2\n3,\xff\n").unwrap_err();
    assert!(matches!(&err, SandboxError::InvalidInput { message, .. } if message.contains("line 3")), "{err}");

    let err = run(&plugin, &[("delimiter", ";")], b"a\n1\n").unwrap_err();
    assert!(matches!(&err, SandboxError::InvalidConfig { message, .. } if message.contains("`delimiter`")), "{err}");
    assert!(!err.is_contract_violation());
}

#[test]
fn info_describes_the_plugin() {
    let info = load(Limits::default()).info().unwrap();
    assert_eq!((info.name.as_str(), info.version.as_str(), info.kind), ("csv-ingest", "0.1.0", PluginKind::Ingest));
    let schema: serde_json::Value = serde_json::from_str(&info.config_schema).unwrap();
    assert!(schema["properties"]["batch_rows"].is_object());
    assert!(schema["properties"]["row_number_column"].is_object());
    assert_eq!(schema["additionalProperties"], false);
}

#[test]
fn sink_errors_are_not_contract_violations() {
    let plugin = load(Limits::default());
    let err = plugin
        .ingest("s", &BTreeMap::new(), "x.csv", &mut &b"a\n1\n"[..], &mut |_| Err("disk full".into()))
        .unwrap_err();
    assert!(matches!(err, SandboxError::Sink { .. }), "{err:?}");
    assert!(!err.is_contract_violation());
}

/// Large enough to need far more than 2 MiB of plugin memory and far more than
/// one 10 ms epoch tick of parsing, in one `push`.
fn big_csv() -> Vec<u8> {
    let mut csv = b"a,b,c,d\n".to_vec();
    while csv.len() < 8 << 20 {
        csv.extend_from_slice(b"12345,\"quoted, text\",more text here,0.25\n");
    }
    csv
}

#[test]
fn memory_limit_is_enforced() {
    let limits = Limits { memory_bytes: 2 << 20, chunk_bytes: 16 << 20, ..Limits::default() };
    let err = run(&load(limits), &[], &big_csv()).unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, SandboxError::Memory { limit: 2097152, .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("step `raw_orders`: plugin `csv-ingest` exceeded its memory limit (2097152 bytes)"),
        "{err}"
    );
    assert!(err.is_contract_violation());
}

#[test]
fn stats_count_calls_cpu_and_peak_memory() {
    let config = BTreeMap::new();
    let ingest = |plugin: &IngestPlugin, csv: &[u8]| {
        let mut rows = 0;
        let started = std::time::Instant::now();
        let (_, stats) = plugin
            .ingest_with_stats("raw_orders", &config, "raw/orders.csv", &mut &csv[..], &mut |b| {
                rows += b.num_rows();
                Ok(())
            })
            .unwrap();
        (rows, stats, started.elapsed())
    };

    // 3 chunks: instantiate, open, 3 pushes, finish, drop.
    let limits = Limits { memory_bytes: 8 << 20, chunk_bytes: 10, ..Limits::default() };
    let (rows, stats, _) = ingest(&load(limits), b"id,name\n1,alpha\n2,beta\n");
    assert_eq!(rows, 2);
    assert_eq!(stats.calls, 7, "{stats:?}");
    assert!(stats.peak_memory_bytes > 0 && stats.peak_memory_bytes <= 8 << 20, "{stats:?}");

    // The input `memory_limit_is_enforced` cannot parse in 2 MiB needs more
    // than that; parsing it takes CPU, on this thread, within the wall time.
    let (_, stats, wall) = ingest(&load(with_chunks(16 << 20)), &big_csv());
    assert_eq!(stats.calls, 5, "{stats:?}");
    assert!(
        stats.peak_memory_bytes > 2 << 20 && stats.peak_memory_bytes <= Limits::default().memory_bytes,
        "{stats:?}"
    );
    assert!(stats.cpu_time > Duration::ZERO && stats.cpu_time <= wall, "{stats:?} in {wall:?}");
}

#[test]
fn call_deadline_is_enforced() {
    let limits = Limits { call_timeout: Duration::from_millis(1), chunk_bytes: 16 << 20, ..Limits::default() };
    let err = run(&load(limits), &[], &big_csv()).unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, SandboxError::Deadline { .. }), "{err:?}");
    assert!(err.to_string().contains("exceeded its deadline"), "{err}");
    assert!(err.is_contract_violation());
}

#[test]
fn output_limit_is_enforced() {
    let limits = Limits { max_output_bytes: 64, ..Limits::default() };
    let err = run(&load(limits), &[], b"a,b\n1,2\n").unwrap_err();
    assert!(matches!(err, SandboxError::OutputTooLarge { limit: 64, .. }), "{err:?}");
    assert!(err.is_contract_violation());
}

#[test]
fn compiled_component_is_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let sandbox = Sandbox::new(Limits::default(), Some(cache.clone())).unwrap();
    let cached = || -> Vec<PathBuf> {
        // Compiled components; the cache's key (`cache.key`) sits beside them.
        let mut files: Vec<PathBuf> = std::fs::read_dir(&cache)
            .map(|d| d.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "cwasm")).collect())
            .unwrap_or_default();
        files.sort();
        files
    };
    let sha = floe_host::sandbox::sha256_hex(plugin_wasm());

    sandbox.load_ingest("csv-ingest", plugin_wasm()).unwrap();
    let files = cached();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with(&sha) && name.ends_with(".cwasm"), "{name}");
    let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    let bytes = std::fs::read(&files[0]).unwrap();

    // Second load: served from the cache, the entry not rewritten (only
    // marked used, for trimming), plugin works.
    let plugin = sandbox.load_ingest("csv-ingest", plugin_wasm()).unwrap();
    assert!(plugin.compiled().from_cache);
    assert_eq!(cached(), files);
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);
    assert!(std::fs::metadata(&files[0]).unwrap().modified().unwrap() >= written);
    let (_, batches) = run(&plugin, &[], b"a\nx\n").unwrap();
    assert_eq!(strings(&batches, "a"), [s("x")]);

    // A damaged cache entry (its tag no longer matches) is ignored and
    // rewritten, never fatal.
    let damaged = dir.path().join("damaged");
    std::fs::write(&damaged, b"not a compiled component").unwrap();
    std::fs::rename(&damaged, &files[0]).unwrap();
    let plugin = sandbox.load_ingest("csv-ingest", plugin_wasm()).unwrap();
    assert!(std::fs::metadata(&files[0]).unwrap().len() > 1000);
    run(&plugin, &[], b"a\nx\n").unwrap();
}
