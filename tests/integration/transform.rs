//! Transform plugins built with the SDK (`pii-mask`, `dedup`, `sql-filter`),
//! the SDK ingest example `jsonl-ingest`, and the host's check of every output
//! batch against the declared output schema (`evil-transform-schema`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use floe_host::sandbox::{IngestPlugin, Limits, PluginKind, Sandbox, SandboxError, TransformPlugin};
use sha2::{Digest, Sha256};

use crate::support::{self, ints, s, strings};

/// One sandbox and compile cache for the module; the lock makes the first
/// load of each component compile it once.
fn sandbox() -> Sandbox {
    static SANDBOX: Mutex<Option<Sandbox>> = Mutex::new(None);
    let mut guard = SANDBOX.lock().unwrap_or_else(|e| e.into_inner());
    guard
        .get_or_insert_with(|| {
            let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("transform-compile-cache");
            Sandbox::new(Limits::default(), Some(cache)).expect("sandbox")
        })
        .clone()
}

fn load_transform(file: &str) -> TransformPlugin {
    static LOAD: Mutex<()> = Mutex::new(());
    let _guard = LOAD.lock().unwrap_or_else(|e| e.into_inner());
    let wasm = std::fs::read(support::plugin(file)).unwrap();
    sandbox().load_transform(file, &wasm).expect(file)
}

fn load_ingest(file: &str) -> IngestPlugin {
    static LOAD: Mutex<()> = Mutex::new(());
    let _guard = LOAD.lock().unwrap_or_else(|e| e.into_inner());
    let wasm = std::fs::read(support::plugin(file)).unwrap();
    sandbox().load_ingest(file, &wasm).expect(file)
}

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn run(
    plugin: &TransformPlugin,
    pairs: &[(&str, &str)],
    schema: &SchemaRef,
    input: Vec<RecordBatch>,
) -> Result<(SchemaRef, Vec<RecordBatch>), SandboxError> {
    let mut out = Vec::new();
    let schema = plugin.transform("silver_step", &config(pairs), schema, &mut input.into_iter(), &mut |b| {
        out.push(b);
        Ok(())
    })?;
    Ok((schema, out))
}

/// (id Int64 not null, email Utf8, ssn Utf8, note Utf8)
fn people_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("email", DataType::Utf8, true),
        Field::new("ssn", DataType::Utf8, true),
        Field::new("note", DataType::Utf8, true),
    ]))
}

fn people(schema: &SchemaRef, ids: &[i64], emails: &[Option<&str>], ssns: &[Option<&str>]) -> RecordBatch {
    let notes: Vec<String> = ids.iter().map(|i| format!("note {i}")).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.to_vec())),
        Arc::new(StringArray::from(emails.to_vec())),
        Arc::new(StringArray::from(ssns.to_vec())),
        Arc::new(StringArray::from(notes)),
    ];
    RecordBatch::try_new(schema.clone(), columns).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn pii_mask_normalises_emails_and_hashes_with_the_salt() {
    let plugin = load_transform("pii_mask.wasm");
    let info = plugin.info().unwrap();
    assert_eq!((info.name.as_str(), info.kind), ("pii-mask", PluginKind::Transform));
    let schema = people_schema();
    let pairs = [("email", "email"), ("hash", "ssn"), ("salt", "pepper-1")];
    assert_eq!(plugin.sql("silver_step", &config(&pairs), &["bronze.people".into()]).unwrap(), None);
    assert_eq!(plugin.output_schema("silver_step", &config(&pairs), &schema).unwrap(), schema);

    let input = vec![
        people(&schema, &[1, 2], &[Some("  Alice@Example.COM "), None], &[Some("123-45-6789"), Some("")]),
        people(&schema, &[3], &[Some("BOB@x.org\t")], &[None]),
    ];
    let (out_schema, out) = run(&plugin, &pairs, &schema, input).unwrap();
    assert_eq!(out_schema, schema);
    assert_eq!(ints(&out, "id"), [1, 2, 3]);
    assert_eq!(strings(&out, "email"), [s("alice@example.com"), None, s("bob@x.org")]);
    assert_eq!(strings(&out, "ssn"), [s(&sha256_hex(b"pepper-1123-45-6789")), s(&sha256_hex(b"pepper-1")), None]);
    assert_eq!(strings(&out, "note"), [s("note 1"), s("note 2"), s("note 3")]);
}

#[test]
fn pii_mask_rejects_bad_config_before_any_data() {
    let plugin = load_transform("pii_mask.wasm");
    let schema = people_schema();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("hash", "ssn")], "missing config key `salt`"),
        (&[("email", "mail")], "`email`: column `mail` is not in the input (columns: id, email, ssn, note)"),
        (&[("hash", "id"), ("salt", "x")], "`hash`: column `id` is Int64, not Utf8"),
        (&[("email", "email"), ("sault", "x")], "unknown config key `sault` (accepted: `email`, `hash`, `salt`)"),
    ];
    for (pairs, expected) in cases {
        let err = plugin.output_schema("silver_step", &config(pairs), &schema).unwrap_err();
        assert!(matches!(&err, SandboxError::InvalidConfig { message, .. } if message == expected), "{pairs:?}: {err}");
        assert!(!err.is_contract_violation());
        assert!(err.to_string().starts_with("step `silver_step`: plugin `pii_mask.wasm` rejected its config"), "{err}");
    }
}

/// (k Utf8, n Int64 not null)
fn keyed(schema: &SchemaRef, keys: &[Option<&str>], start: i64) -> RecordBatch {
    let n: Vec<i64> = (start..start + keys.len() as i64).collect();
    RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(keys.to_vec())), Arc::new(Int64Array::from(n))],
    )
    .unwrap()
}

#[test]
fn dedup_keeps_the_first_row_per_key_across_batches() {
    let plugin = load_transform("dedup.wasm");
    let schema =
        Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("n", DataType::Int64, false)]));
    let input = vec![
        keyed(&schema, &[Some("a"), Some("b"), Some("a")], 1),
        keyed(&schema, &[], 4),
        keyed(&schema, &[Some("b"), None, Some("c")], 4),
        keyed(&schema, &[Some("c"), None, Some("d"), Some("a")], 7),
    ];
    let (_, out) = run(&plugin, &[("key", "k")], &schema, input.clone()).unwrap();
    assert_eq!(strings(&out, "k"), [s("a"), s("b"), None, s("c"), s("d")]);
    assert_eq!(ints(&out, "n"), [1, 2, 5, 6, 9]);

    // Two key columns: (k, n % 2).
    let two = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Utf8, true),
        Field::new("n", DataType::Int64, false),
        Field::new("parity", DataType::Int64, false),
    ]));
    let with_parity: Vec<RecordBatch> = input
        .iter()
        .map(|b| {
            let n = b.column(1).as_primitive::<Int64Type>();
            let parity: Int64Array = n.iter().map(|v| v.map(|v| v % 2)).collect();
            RecordBatch::try_new(two.clone(), vec![b.column(0).clone(), b.column(1).clone(), Arc::new(parity)]).unwrap()
        })
        .collect();
    let (_, out) = run(&plugin, &[("key", "k, parity")], &two, with_parity).unwrap();
    // n: 1 a odd, 2 b even, 3 a odd (dup), 4 b even (dup), 5 null odd, 6 c even,
    // 7 c odd, 8 null even, 9 d odd, 10 a even.
    assert_eq!(ints(&out, "n"), [1, 2, 5, 6, 7, 8, 9, 10]);

    let err = plugin.output_schema("silver_step", &config(&[("key", "id")]), &schema).unwrap_err();
    assert!(err.to_string().contains("`key`: column `id` is not in the input (columns: k, n)"), "{err}");
}

#[test]
fn big_batches_are_sliced_and_the_result_does_not_change() {
    let plugin = load_transform("dedup.wasm");
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    // 150,000 rows in one batch, every value three times: [0..50k) x 3.
    let values: Vec<i64> = (0..150_000).map(|i| i % 50_000).collect();
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))]).unwrap();
    let (_, out) = run(&plugin, &[("key", "n")], &schema, vec![batch]).unwrap();
    assert_eq!(ints(&out, "n"), (0..50_000).collect::<Vec<_>>());
    // The host pushed at most 65,536 rows at a time; dedup answers per push.
    assert!(out.iter().all(|b| b.num_rows() <= 65_536), "{:?}", out.iter().map(|b| b.num_rows()).collect::<Vec<_>>());

    // No input batches at all: the output is empty, with the declared schema.
    let (declared, out) = run(&plugin, &[("key", "n")], &schema, vec![]).unwrap();
    assert_eq!(declared, schema);
    assert!(out.is_empty());
}

/// 50M distinct `Int64` keys, the demo's order_id at the largest scale of
/// issue #17, fit dedup's state in the default plugin memory (1 GiB); every
/// tenth batch repeats the one before it, and is dropped whole.
#[test]
fn dedup_holds_50m_distinct_keys_in_the_default_plugin_memory() {
    const KEYS: i64 = 50_000_000;
    const ROWS: i64 = 65_536;
    let plugin = load_transform("dedup.wasm");
    let schema = Arc::new(Schema::new(vec![Field::new("order_id", DataType::Int64, false)]));
    let batch = |first: i64| {
        let values = Int64Array::from_iter_values(first..(first + ROWS).min(KEYS));
        RecordBatch::try_new(schema.clone(), vec![Arc::new(values) as ArrayRef]).unwrap()
    };
    let starts = (0..KEYS).step_by(ROWS as usize);
    let mut input = starts.enumerate().flat_map(|(i, first)| {
        let again = (i % 10 == 9).then(|| batch(first));
        std::iter::once(batch(first)).chain(again)
    });
    let (mut rows, mut sum) = (0i64, 0i64);
    let (_, stats) = plugin
        .transform_with_stats("first_orders", &config(&[("key", "order_id")]), &schema, &mut input, &mut |out| {
            let ids = out.column(0).as_primitive::<Int64Type>();
            rows += ids.len() as i64;
            sum += ids.values().iter().sum::<i64>();
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((rows, sum), (KEYS, KEYS * (KEYS - 1) / 2));
    eprintln!("dedup over {KEYS} keys: peak plugin memory {} MiB", stats.peak_memory_bytes >> 20);
    assert!(stats.peak_memory_bytes <= Limits::default().memory_bytes);
}

#[test]
fn sql_filter_returns_its_query() {
    let plugin = load_transform("sql_filter.wasm");
    let inputs = vec!["silver.orders".to_owned()];
    let sql = plugin.sql("gold_step", &config(&[("where", "amount > 0"), ("columns", "id, amount")]), &inputs).unwrap();
    assert_eq!(sql.as_deref(), Some(r#"SELECT "id", "amount" FROM silver.orders WHERE (amount > 0)"#));
    assert_eq!(
        plugin.sql("gold_step", &config(&[("where", "true")]), &inputs).unwrap().as_deref(),
        Some("SELECT * FROM silver.orders WHERE (true)")
    );

    let two = vec!["silver.orders".to_owned(), "silver.customers".to_owned()];
    let err = plugin.sql("gold_step", &config(&[("where", "true")]), &two).unwrap_err();
    assert!(
        matches!(&err, SandboxError::InvalidConfig { message, .. }
            if message == "set `input`: the step declares several inputs (silver.orders, silver.customers)"),
        "{err}"
    );
    let picked = plugin.sql("gold_step", &config(&[("where", "true"), ("input", "silver.customers")]), &two).unwrap();
    assert_eq!(picked.as_deref(), Some("SELECT * FROM silver.customers WHERE (true)"));

    // A SQL-mode plugin does not stream.
    let schema = people_schema();
    let err = plugin.output_schema("gold_step", &config(&[("where", "true")]), &schema).unwrap_err();
    assert!(matches!(err, SandboxError::PluginInternal { .. }), "{err}");
}

#[test]
fn an_output_batch_that_breaks_the_declared_schema_is_a_contract_violation() {
    let plugin = load_transform("evil_transform_schema.wasm");
    let schema =
        Arc::new(Schema::new(vec![Field::new("email", DataType::Utf8, true), Field::new("n", DataType::Int64, true)]));
    assert_eq!(plugin.output_schema("silver_step", &config(&[]), &schema).unwrap(), schema);
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(vec!["a"])), Arc::new(Int64Array::from(vec![1]))],
    )
    .unwrap();
    let mut delivered = 0;
    let err = plugin
        .transform("silver_step", &config(&[]), &schema, &mut vec![batch].into_iter(), &mut |_| {
            delivered += 1;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(delivered, 0, "nothing may reach the writer");
    assert!(err.is_contract_violation());
    assert_eq!(
        err.to_string(),
        "step `silver_step`: plugin `evil_transform_schema.wasm` broke its declared output schema: \
         field 2 `n`: declared `n: Int64`, but sent `n: Utf8`"
    );
}

#[test]
fn a_transform_is_not_an_ingest_plugin() {
    let wasm = std::fs::read(support::plugin("dedup.wasm")).unwrap();
    let err = sandbox().load_ingest("dedup", &wasm).err().expect("wrong world");
    assert!(matches!(err, SandboxError::WrongWorld { .. }), "{err}");
}

fn jsonl(pairs: &[(&str, &str)], bytes: &[u8], chunk: usize) -> Result<(SchemaRef, Vec<RecordBatch>), SandboxError> {
    let limits = Limits { chunk_bytes: chunk, ..Limits::default() };
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("transform-compile-cache");
    let wasm = std::fs::read(support::plugin("jsonl_ingest.wasm")).unwrap();
    let plugin = {
        static LOAD: Mutex<()> = Mutex::new(());
        let _guard = LOAD.lock().unwrap_or_else(|e| e.into_inner());
        Sandbox::new(limits, Some(cache)).unwrap().load_ingest("jsonl-ingest", &wasm).unwrap()
    };
    let mut out = Vec::new();
    let schema = plugin.ingest("raw_events", &config(pairs), "raw/events.jsonl", &mut &bytes[..], &mut |b| {
        out.push(b);
        Ok(())
    })?;
    Ok((schema, out))
}

#[test]
fn jsonl_ingest_exact_output() {
    let _ = load_ingest("jsonl_ingest.wasm").info().unwrap();
    let text = "{\"id\": 1, \"name\": \"Ann\", \"tags\": [\"a\", \"b\"], \"ok\": true}\r\n\
                \n\
                {\"name\": \"caf\u{e9}\", \"id\": 2.5, \"ok\": null}\n   \n\
                {\"id\": \"3\", \"tags\": {\"x\": 1}}";
    for chunk in [1, 7, 1 << 20] {
        let (schema, out) = jsonl(&[("batch_rows", "2")], text.as_bytes(), chunk).unwrap();
        let fields: Vec<_> =
            schema.fields().iter().map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable())).collect();
        assert_eq!(
            fields,
            [
                ("id", DataType::Utf8, true),
                ("name", DataType::Utf8, true),
                ("tags", DataType::Utf8, true),
                ("ok", DataType::Utf8, true),
                ("_row", DataType::Int64, false),
            ]
        );
        assert_eq!(out.iter().map(|b| b.num_rows()).collect::<Vec<_>>(), [2, 1], "chunk {chunk}");
        assert_eq!(strings(&out, "id"), [s("1"), s("2.5"), s("3")]);
        assert_eq!(strings(&out, "name"), [s("Ann"), s("café"), None]);
        assert_eq!(strings(&out, "tags"), [s(r#"["a","b"]"#), None, s(r#"{"x":1}"#)]);
        assert_eq!(strings(&out, "ok"), [s("true"), None, None]);
        assert_eq!(ints(&out, "_row"), [1, 2, 3]);
    }

    // Chosen columns: others are ignored, and an empty file still has a schema.
    let (schema, out) = jsonl(&[("columns", "name,id")], text.as_bytes(), 1 << 20).unwrap();
    assert_eq!(schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["name", "id", "_row"]);
    assert_eq!(strings(&out, "name"), [s("Ann"), s("café"), None]);
    let (schema, out) = jsonl(&[("columns", "a")], b"", 1 << 20).unwrap();
    assert_eq!(schema.fields().len(), 2);
    assert!(out.is_empty());

    let cases: [(&[u8], &str); 3] = [
        (b"{\"a\": 1}\n{\"b\": 2}\n", "`raw/events.jsonl`: line 2: key `b` is not a column"),
        (b"{\"a\": 1}\n\n[1]\n", "`raw/events.jsonl`: line 3 is not a JSON object"),
        (b"", "`raw/events.jsonl`: the file has no JSON object to take the columns from; set `columns`"),
    ];
    for (bytes, expected) in cases {
        let err = jsonl(&[], bytes, 1 << 20).unwrap_err();
        assert!(matches!(&err, SandboxError::InvalidInput { message, .. } if message.starts_with(expected)), "{err}");
    }
}

/// A streaming plugin sees its input in the table's order: files as they
/// were committed, oldest first. iceberg's reader reads several files at
/// once and yields batches as they come, and its plan lists files in no set
/// order, so `dedup`'s "first row of each key" depended on timing once its
/// input had two data files (at 50M orders: the right count, other rows).
/// Here eight appends each write every id with their commit's number: the
/// first row of every id is the first commit's.
#[test]
fn a_streaming_plugin_reads_its_input_in_commit_order() {
    let dir = support::temp_dir();
    let (root, state) = (dir.path(), dir.path().join("state"));
    std::fs::create_dir_all(root.join("models")).unwrap();
    let dedup = serde_json::to_string(support::plugin("dedup.wasm").to_str().unwrap()).unwrap();
    std::fs::write(
        root.join("floe.yaml"),
        format!(
            "name: order\nplugins:\n  dedup: {{path: {dedup}}}\ntransforms:\n\
             \x20 - {{name: events, layer: bronze, kind: sql, sql: models/events.sql, mode: append}}\n\
             \x20 - {{name: first_events, layer: silver, kind: wasm, plugin: dedup, inputs: [bronze.events], \
             config: {{key: id}}}}\n"
        ),
    )
    .unwrap();
    let run = |select: &str| {
        support::floe_host(&["run", root.to_str().unwrap(), "--state-dir", state.to_str().unwrap(), "--select", select])
            .expect_code(0)
    };
    const COMMITS: i64 = 8;
    for commit in 1..=COMMITS {
        let model = format!("SELECT range AS id, CAST({commit} AS BIGINT) AS commit_no FROM range(300)");
        std::fs::write(root.join("models/events.sql"), model).unwrap();
        run("events");
    }
    run("first_events");
    let read = |table: &str| {
        support::python_json(
            "table_check.py",
            &["--state-dir", state.to_str().unwrap(), "--table", table, "--order-by", "id"],
        )
    };
    let events = read("bronze.events");
    assert_eq!(events["files"].as_array().unwrap().len(), COMMITS as usize, "{events}");
    let first = read("silver.first_events");
    assert_eq!(first["rows"], 300, "{first}");
    let commits: Vec<i64> =
        first["records"].as_array().unwrap().iter().map(|r| r["commit_no"].as_i64().unwrap()).collect();
    let late: Vec<(usize, i64)> = commits.iter().copied().enumerate().filter(|&(_, c)| c != 1).collect();
    assert!(late.is_empty(), "ids whose first row came from a later commit (id, commit): {late:?}");
}
