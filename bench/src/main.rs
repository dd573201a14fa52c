//! `floe-bench`: benchmarks.
//!
//! - `floe-bench pipeline [--orders 10M …]`: the demo pipeline end to end,
//!   floe-host against raw DuckDB and native Rust stage by stage (issue #7;
//!   `pipeline/mod.rs`).
//! - `floe-bench models`: dbt project rendering against `dbt parse` (`models.rs`).
//! - `floe-bench maintenance [--days 365]`: a year of daily runs with and
//!   without `maintain` (issue #14; `maintenance.rs`).
//! - `floe-bench languages [--rows 10M]`: pii-mask in Rust, JavaScript and
//!   Python side by side against native Rust (issue #16; `languages.rs`).
//! - `floe-bench scaleout [--runs 1,4,8,16]`: concurrent `--partition` runs
//!   into one table on the REST catalog over S3 (issue #17; `scaleout.rs`).
//! - `floe-bench ingest --csv FILE [--instances 1,2]`: csv-ingest in one
//!   piece and on several instances at once, no writer (issue #17; `ingest.rs`).
//! - `floe-bench [--rows N …]`, below: the plugin path (issue "Plugin platform").
//!
//! The plugin-path benchmark measures:
//! - Throughput of plugins/pii-mask (`email: email`, `hash: name`) over N rows
//!   (default 10M) in 64k-row batches through `TransformPlugin::transform`,
//!   against the same logic compiled into this binary (`native.rs`), and the
//!   same split per column (email only, hash only).
//! - What the Arrow IPC legs of one pass cost natively (host encode, guest
//!   decode, guest encode, host decode).
//! - Per-call overhead: the slope of `transform` over K one-row batches, and
//!   the extra time per 64k-row call against the native baseline.
//! - Instantiation: `Sandbox::load_transform` cold (compile) and from the warm
//!   compile cache, and the per-run instantiation (`info`, `sql`, a transform
//!   over no rows).
//!
//! Input is generated in memory from a counter, so every run sees the same
//! bytes. Before timing, the WASM output of the first batch must equal the
//! native output exactly. Wall time (`Instant`) over `--reps` repetitions;
//! the median and the minimum are printed. See BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p floe-bench
//! $CARGO_TARGET_DIR/release/floe-bench [--rows 10000000] [--reps 5] [--plugins plugins/dist]
//! ```

mod ingest;
mod languages;
mod maintenance;
mod models;
mod native;
mod pipeline;
mod scaleout;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, RecordBatch};
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use floe_host::sandbox::{Limits, Sandbox, TransformPlugin};

use native::{Action, Sha};

/// Rows per input batch: the host's largest `push` (`MAX_PUSH_ROWS`).
const BATCH_ROWS: usize = 65_536;
const SALT: &str = "floe-bench-salt";
const STEP: &str = "bench";

struct Options {
    rows: usize,
    reps: usize,
    plugins: PathBuf,
    /// The pii-mask component measured: `<plugins>/pii_mask.wasm` unless
    /// `--pii` names another build of it (the JavaScript port).
    pii: Option<PathBuf>,
}

fn options() -> Options {
    let mut options = Options { rows: 10_000_000, reps: 5, plugins: default_plugins(), pii: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--rows" => options.rows = number(&value()),
            "--reps" => options.reps = number(&value()).max(1),
            "--plugins" => options.plugins = PathBuf::from(value()),
            "--pii" => options.pii = Some(PathBuf::from(value())),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    options
}

/// The built plugins: `$FLOE_PLUGIN_DIST`, or the repo's plugins/dist.
fn default_plugins() -> PathBuf {
    std::env::var_os("FLOE_PLUGIN_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist"))
}

fn number(text: &str) -> usize {
    text.replace('_', "").parse().unwrap_or_else(|_| usage(&format!("`{text}` is not a number")))
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("floe-bench: {problem}");
    }
    eprintln!(
        "usage: floe-bench [--rows N (10000000)] [--reps N (5)] [--plugins DIR (plugins/dist)] [--pii FILE (DIR/pii_mask.wasm)]"
    );
    eprintln!("       floe-bench pipeline --help    (the demo pipeline against raw DuckDB)");
    eprintln!("       floe-bench languages --help   (pii-mask in Rust, JavaScript and Python against native Rust)");
    eprintln!("       floe-bench scaleout --help    (concurrent --partition runs on the REST catalog over S3)");
    eprintln!("       floe-bench ingest --help      (csv-ingest in one piece and in parallel chunks, no writer)");
    eprintln!(
        "       floe-bench maintenance [--days 365] [--rows 1000]    (a year of daily runs, with and without maintain)"
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 });
}

/// Wall times of the repetitions of one case.
struct Times(Vec<Duration>);

impl Times {
    fn median(&self) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        let n = sorted.len();
        if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2 }
    }

    fn min(&self) -> Duration {
        *self.0.iter().min().expect("at least one repetition")
    }
}

fn repeat(reps: usize, mut f: impl FnMut() -> Duration) -> Times {
    Times((0..reps).map(|_| f()).collect())
}

fn time(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

fn ms(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// `(a - b) / calls` in µs, with its sign.
fn signed_us(a: Duration, b: Duration, calls: u32) -> String {
    let diff = (a.as_secs_f64() - b.as_secs_f64()) / f64::from(calls);
    format!("{:+.1} µs", diff * 1e6)
}

fn mrows(rows: usize, d: Duration) -> String {
    format!("{:.2} M rows/s", rows as f64 / d.as_secs_f64() / 1e6)
}

/// `email` and `name`, both nullable Utf8, from a counter: 1 in 97 emails is
/// NULL, the others carry white space and upper case for `lower(trim())`.
fn generate(rows: usize) -> (SchemaRef, Vec<RecordBatch>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("email", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let mut batches = Vec::with_capacity(rows.div_ceil(BATCH_ROWS));
    let mut text = String::new();
    for start in (0..rows).step_by(BATCH_ROWS) {
        let end = rows.min(start + BATCH_ROWS);
        let mut email = StringBuilder::with_capacity(end - start, (end - start) * 32);
        let mut name = StringBuilder::with_capacity(end - start, (end - start) * 28);
        for i in start..end {
            if i % 97 == 0 {
                email.append_null();
            } else {
                text.clear();
                write!(text, "  User.{i:08}@Example{}.COM ", i % 10).unwrap();
                email.append_value(&text);
            }
            text.clear();
            write!(text, "Customer {i} Van der Berg-{}", i % 1000).unwrap();
            name.append_value(&text);
        }
        batches.push(
            RecordBatch::try_new(schema.clone(), vec![Arc::new(email.finish()), Arc::new(name.finish())]).unwrap(),
        );
    }
    (schema, batches)
}

/// One pii-mask configuration and the matching native actions.
struct Case {
    label: &'static str,
    config: BTreeMap<String, String>,
    actions: [Action; 2],
}

fn case(label: &'static str, email: bool, hash: bool) -> Case {
    let mut config = BTreeMap::new();
    if email {
        config.insert("email".to_owned(), "email".to_owned());
    }
    if hash {
        config.insert("hash".to_owned(), "name".to_owned());
        config.insert("salt".to_owned(), SALT.to_owned());
    }
    let actions = [if email { Action::Email } else { Action::Keep }, if hash { Action::Hash } else { Action::Keep }];
    Case { label, config, actions }
}

/// Streams `batches` through the plugin; returns the rows out and the time.
fn run_wasm(
    plugin: &TransformPlugin,
    config: &BTreeMap<String, String>,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    keep: Option<&mut Vec<RecordBatch>>,
) -> (usize, Duration) {
    let mut rows = 0;
    let mut keep = keep;
    let started = Instant::now();
    plugin
        .transform(STEP, config, schema, &mut batches.iter().cloned(), &mut |batch| {
            rows += batch.num_rows();
            match keep.as_deref_mut() {
                Some(kept) => kept.push(batch),
                None => drop(black_box(batch)),
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", plugin.name()));
    (rows, started.elapsed())
}

fn run_native(batches: &[RecordBatch], actions: &[Action], sha: Sha) -> (usize, Duration) {
    let mut rows = 0;
    let started = Instant::now();
    for batch in batches {
        let out = native::mask(batch, actions, SALT, sha);
        rows += out.num_rows();
        drop(black_box(out));
    }
    (rows, started.elapsed())
}

/// Time of each IPC leg over one pass, natively: [host encode input, guest
/// decode input, guest encode output, host decode output]. Each stream keeps
/// one writer and one decoder, as host and SDK do (schema sent once).
fn ipc_legs(batches: &[RecordBatch], actions: &[Action]) -> [Duration; 4] {
    fn encode(writer: &mut StreamWriter<Vec<u8>>, batch: &RecordBatch) -> Vec<u8> {
        writer.write(batch).unwrap();
        std::mem::take(writer.get_mut())
    }
    fn decode(decoder: &mut StreamDecoder, bytes: Vec<u8>) -> usize {
        let mut buffer = Buffer::from_vec(bytes);
        let mut rows = 0;
        while !buffer.is_empty() {
            if let Some(batch) = decoder.decode(&mut buffer).unwrap() {
                rows += batch.num_rows();
                black_box(batch);
            }
        }
        rows
    }
    let schema = batches[0].schema();
    let (mut enc_in, mut enc_out) =
        (StreamWriter::try_new(Vec::new(), &schema).unwrap(), StreamWriter::try_new(Vec::new(), &schema).unwrap());
    let (mut dec_in, mut dec_out) = (StreamDecoder::new(), StreamDecoder::new());
    let mut legs = [Duration::ZERO; 4];
    for batch in batches {
        let out = native::mask(batch, actions, SALT, Sha::Sha2);
        let t = Instant::now();
        let bytes_in = encode(&mut enc_in, batch);
        legs[0] += t.elapsed();
        let t = Instant::now();
        assert_eq!(decode(&mut dec_in, bytes_in), batch.num_rows());
        legs[1] += t.elapsed();
        let t = Instant::now();
        let bytes_out = encode(&mut enc_out, &out);
        legs[2] += t.elapsed();
        let t = Instant::now();
        assert_eq!(decode(&mut dec_out, bytes_out), out.num_rows());
        legs[3] += t.elapsed();
    }
    legs
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("floe-bench: {}: {e} (build the plugins with scripts/build-plugins.sh)", path.display());
        std::process::exit(2)
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("pipeline") => return pipeline::main(args.collect()),
        Some("models") => return models::main(args.collect()),
        Some("maintenance") => return maintenance::main(args.collect()),
        Some("languages") => return languages::main(args.collect()),
        Some("ingest") => return ingest::main(args.collect()),
        Some("scaleout") => return scaleout::main(args.collect()),
        Some(pipeline::BASELINE_COMMAND) => return pipeline::baseline::child(args.collect()),
        _ => {}
    }
    plugin_path();
}

/// The plugin-path benchmark (BENCHMARKS.md, "Plugin path").
fn plugin_path() {
    let options = options();
    let reps = options.reps;
    let pii_path = options.pii.clone().unwrap_or_else(|| options.plugins.join("pii_mask.wasm"));
    println!(
        "pii-mask component: {} ({} bytes)",
        pii_path.display(),
        std::fs::metadata(&pii_path).map_or(0, |m| m.len())
    );
    let pii_wasm = read(pii_path);
    let filter_wasm = read(options.plugins.join("sql_filter.wasm"));
    let cache_dir = std::env::temp_dir().join(format!("floe-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache_dir);
    let sandbox = || Sandbox::new(Limits::default(), Some(cache_dir.clone())).unwrap();

    println!("# floe-bench");
    println!();
    println!(
        "rows {}, batches of {BATCH_ROWS} rows, {reps} repetitions; build: {}; CPU SHA extensions: {}",
        options.rows,
        if cfg!(debug_assertions) {
            "debug assertions ON (not a release build)"
        } else {
            "optimised, no debug assertions"
        },
        sha_extensions()
    );

    // ---- Instantiation --------------------------------------------------
    println!();
    println!("## Instantiation");
    println!();
    println!("| what | median | min |");
    println!("|---|---|---|");
    let cold = |wasm: &[u8], name: &str| {
        let _ = std::fs::remove_dir_all(&cache_dir);
        let sandbox = sandbox();
        time(|| {
            sandbox.load_transform(name, wasm).unwrap();
        })
    };
    let cold_pii = Times(vec![cold(&pii_wasm, "pii-mask")]);
    let cold_filter = Times(vec![cold(&filter_wasm, "sql-filter")]);
    // Warm the cache for both (the last cold load left only sql-filter).
    sandbox().load_transform("pii-mask", &pii_wasm).unwrap();
    let new_sandbox = repeat(20, || time(|| drop(sandbox())));
    let warm = |wasm: &[u8], name: &str| {
        repeat(20, || {
            let sandbox = sandbox();
            time(|| {
                black_box(sandbox.load_transform(name, wasm).unwrap());
            })
        })
    };
    let warm_pii = warm(&pii_wasm, "pii-mask");
    let warm_filter = warm(&filter_wasm, "sql-filter");
    let sandbox = sandbox();
    let pii = sandbox.load_transform("pii-mask", &pii_wasm).unwrap();
    let filter = sandbox.load_transform("sql-filter", &filter_wasm).unwrap();
    let info = repeat(50, || time(|| drop(black_box(pii.info().unwrap()))));
    let pii_sql = repeat(50, || time(|| assert!(pii.sql(STEP, &BTreeMap::new(), &[]).unwrap().is_none())));
    let filter_config = BTreeMap::from([("where".to_owned(), "amount > 0".to_owned())]);
    let inputs = ["silver.orders".to_owned()];
    let filter_sql = repeat(50, || {
        time(|| {
            assert!(filter.sql(STEP, &filter_config, &inputs).unwrap().is_some());
        })
    });
    let both = case("email + hash", true, true);
    let (schema, batches) = generate(options.rows);
    let empty_run = repeat(50, || run_wasm(&pii, &both.config, &schema, &[], None).1);
    for (what, times) in [
        ("`Sandbox::new` (engine, linker, epoch thread)", &new_sandbox),
        ("`load_transform` pii-mask, cold (compile + write cache)", &cold_pii),
        ("`load_transform` sql-filter, cold (compile + write cache)", &cold_filter),
        ("`load_transform` pii-mask, warm cache (fresh Sandbox)", &warm_pii),
        ("`load_transform` sql-filter, warm cache (fresh Sandbox)", &warm_filter),
        ("pii-mask `info()`: instantiate + 1 trivial call", &info),
        ("pii-mask `sql()`: instantiate + 1 trivial call", &pii_sql),
        ("sql-filter `sql()`: instantiate + config + format SQL", &filter_sql),
        ("pii-mask `transform` over 0 rows: instantiate + output-schema + open + push(schema) + finish", &empty_run),
    ] {
        println!("| {what} | {} | {} |", ms(times.median()), ms(times.min()));
    }
    let _ = std::fs::remove_dir_all(&cache_dir);

    // ---- Correctness ----------------------------------------------------
    native::check_scalar_sha256();
    let first = &batches[..1];
    let mut kept = Vec::new();
    run_wasm(&pii, &both.config, &schema, first, Some(&mut kept));
    let wasm_out = concat_batches(&kept);
    for sha in [Sha::Sha2, Sha::Scalar] {
        let native_out = native::mask(&first[0], &both.actions, SALT, sha);
        assert_eq!(wasm_out, native_out, "the WASM and native outputs differ");
    }

    // ---- Throughput -----------------------------------------------------
    let rows = options.rows;
    let in_bytes: usize = batches
        .iter()
        .flat_map(|b| b.columns().iter().map(|c| c.to_data().buffers().iter().map(|b| b.len()).sum::<usize>()))
        .sum();
    println!();
    println!(
        "## Throughput: pii-mask over {rows} rows ({} batches, {:.0} MiB of Arrow buffers)",
        batches.len(),
        in_bytes as f64 / (1 << 20) as f64
    );
    println!();
    println!("| case | median | min | rows/s (median) | throughput ÷ native `sha2` | ÷ native scalar |");
    println!("|---|---|---|---|---|---|");
    let mut per_call_64k = None;
    for (case, case_reps) in [
        (both, reps),
        (case("email only", true, false), reps.div_ceil(2)),
        (case("hash only", false, true), reps.div_ceil(2)),
    ] {
        let native = repeat(case_reps, || {
            let (n, t) = run_native(&batches, &case.actions, Sha::Sha2);
            assert_eq!(n, rows);
            t
        });
        let hashes = case.actions.contains(&Action::Hash);
        let scalar = hashes.then(|| {
            repeat(case_reps, || {
                let (n, t) = run_native(&batches, &case.actions, Sha::Scalar);
                assert_eq!(n, rows);
                t
            })
        });
        let wasm = repeat(case_reps, || {
            let (n, t) = run_wasm(&pii, &case.config, &schema, &batches, None);
            assert_eq!(n, rows);
            t
        });
        let ratio = |base: &Times, t: &Times| format!("{:.2}", base.median().as_secs_f64() / t.median().as_secs_f64());
        let to_scalar = |t: &Times| scalar.as_ref().map_or("–".to_owned(), |s| ratio(s, t));
        let line = |what: String, t: &Times| {
            println!(
                "| {what} | {} | {} | {} | {} | {} |",
                ms(t.median()),
                ms(t.min()),
                mrows(rows, t.median()),
                ratio(&native, t),
                to_scalar(t)
            );
        };
        line(format!("{}: native, `sha2`", case.label), &native);
        if let Some(scalar) = &scalar {
            line(format!("{}: native, scalar SHA-256", case.label), scalar);
        }
        line(format!("**{}: WASM (`transform`)**", case.label), &wasm);
        if per_call_64k.is_none() {
            per_call_64k = Some((native.median(), scalar.as_ref().map(Times::median), wasm.median()));
        }
    }
    let legs = repeat(reps.div_ceil(2), || {
        let l = ipc_legs(&batches, &both_actions());
        l.iter().sum()
    });
    let one_pass = ipc_legs(&batches, &both_actions());
    println!();
    println!(
        "Arrow IPC, natively, one pass of email + hash: host encode {}, guest decode {}, guest encode {}, host decode {}; \
         all four: median {} (min {}) over {} reps.",
        ms(one_pass[0]),
        ms(one_pass[1]),
        ms(one_pass[2]),
        ms(one_pass[3]),
        ms(legs.median()),
        ms(legs.min()),
        legs.0.len()
    );

    // ---- Per-call overhead ------------------------------------------------
    let one_row = batches[0].slice(1, 1);
    let k = 2049;
    let many: Vec<RecordBatch> = vec![one_row.clone(); k];
    let t_one = repeat(reps, || run_wasm(&pii, &both_config(), &schema, &many[..1], None).1);
    let t_many = repeat(reps, || run_wasm(&pii, &both_config(), &schema, &many, None).1);
    let slope = |a: Duration, b: Duration| b.saturating_sub(a) / (k as u32 - 1);
    let calls = batches.len() as u32;
    let (native_t, scalar_t, wasm_t) = per_call_64k.unwrap();
    println!();
    println!("## Per-call overhead");
    println!();
    println!("| what | value |");
    println!("|---|---|");
    println!(
        "| one `push` of a 1-row batch (slope of {k} vs 1 pushes; median, min) | {}, {} |",
        us(slope(t_one.median(), t_many.median())),
        us(slope(t_one.min(), t_many.min()))
    );
    println!("| a 64k-row `push`, WASM (email + hash, median run ÷ {calls} calls) | {} |", us(wasm_t / calls));
    println!("| the same 64k rows, native `sha2` | {} |", us(native_t / calls));
    if let Some(scalar_t) = scalar_t {
        println!("| the same 64k rows, native scalar SHA-256 | {} |", us(scalar_t / calls));
        println!("| WASM − native scalar, per 64k-row call | {} |", signed_us(wasm_t, scalar_t, calls));
    }
    println!("| WASM − native `sha2`, per 64k-row call | {} |", signed_us(wasm_t, native_t, calls));
}

fn both_actions() -> [Action; 2] {
    [Action::Email, Action::Hash]
}

fn both_config() -> BTreeMap<String, String> {
    case("", true, true).config
}

/// The batches as one (for comparing a multi-batch output with one batch).
fn concat_batches(batches: &[RecordBatch]) -> RecordBatch {
    assert!(!batches.is_empty(), "the plugin returned no batch");
    let schema = batches[0].schema();
    let columns = (0..schema.fields().len())
        .map(|i| {
            let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            concat(&arrays)
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Concatenates Utf8 arrays (the only type here).
fn concat(arrays: &[&dyn Array]) -> arrow_array::ArrayRef {
    use arrow_array::cast::AsArray;
    let values: arrow_array::StringArray = arrays.iter().flat_map(|a| a.as_string::<i32>().iter()).collect();
    Arc::new(values)
}

fn sha_extensions() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("sha") {
            return "yes (native `sha2` uses them)";
        }
    }
    "no"
}
