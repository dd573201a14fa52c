//! `floe-bench languages`: plugins/pii-mask written in Rust, JavaScript and
//! Python (issue #16), side by side in one run, against the same logic
//! compiled into this binary (`native.rs`).
//!
//! For each component: its size, the cold compile (`load_transform` with an
//! empty compile cache), the load from the warm cache, one instantiation
//! (`info()`), a `transform` over no rows, and the rows per second of email +
//! hash over N rows (default 10M) in 64k-row batches. Every component's
//! output for the first batch must equal the native output before anything
//! is timed. The throughput runs go one language after another, native
//! first, each over the same batches.
//!
//! ```sh
//! scripts/build-plugins.sh && scripts/build-js-plugins.sh && scripts/build-py-plugins.sh
//! cargo build -p floe-bench
//! $CARGO_TARGET_DIR/debug/floe-bench languages [--rows 10000000] [--reps 1] [--only rust,js,python]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use floe_host::sandbox::{Limits, Sandbox};

use crate::native::{self, Sha};
use crate::{SALT, Times, case, concat_batches, generate, ms, repeat, run_native, run_wasm, time};

/// One build of pii-mask: its language and its file name in the plugins folder.
const LANGUAGES: [(&str, &str); 3] =
    [("rust", "pii_mask.wasm"), ("js", "pii_mask_js.wasm"), ("python", "pii_mask_py.wasm")];

struct Options {
    rows: usize,
    reps: usize,
    plugins: PathBuf,
    only: Vec<String>,
}

fn options(args: Vec<String>) -> Options {
    let mut options = Options {
        rows: 10_000_000,
        reps: 1,
        plugins: crate::default_plugins(),
        only: LANGUAGES.iter().map(|(lang, _)| lang.to_string()).collect(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--rows" => options.rows = crate::number(&value()),
            "--reps" => options.reps = crate::number(&value()).max(1),
            "--plugins" => options.plugins = PathBuf::from(value()),
            "--only" => {
                options.only = value().split(',').map(str::to_string).collect();
                if let Some(unknown) = options.only.iter().find(|l| !LANGUAGES.iter().any(|(lang, _)| lang == l)) {
                    usage(&format!("--only: unknown language `{unknown}` (rust, js, python)"));
                }
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    options
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("floe-bench languages: {problem}");
    }
    eprintln!(
        "usage: floe-bench languages [--rows N (10000000)] [--reps N (1)] [--plugins DIR (plugins/dist)] \
         [--only rust,js,python]"
    );
    eprintln!("pii-mask in each language (DIR/pii_mask.wasm, pii_mask_js.wasm, pii_mask_py.wasm) against native Rust.");
    std::process::exit(if problem.is_empty() { 0 } else { 2 });
}

/// What one component measured.
struct Measured {
    lang: &'static str,
    size: u64,
    cold: Duration,
    warm: Times,
    info: Times,
    empty: Times,
    throughput: Times,
}

pub fn main(args: Vec<String>) {
    let options = options(args);
    let both = case("email + hash", true, true);
    let (schema, batches) = generate(options.rows);
    let rows = options.rows;
    native::check_scalar_sha256();
    let cache_dir = std::env::temp_dir().join(format!("floe-bench-languages-{}", std::process::id()));
    let sandbox = || Sandbox::new(Limits::default(), Some(cache_dir.clone())).unwrap();
    let components: Vec<(&'static str, PathBuf)> = LANGUAGES
        .iter()
        .filter(|(lang, _)| options.only.iter().any(|l| l == lang))
        .map(|(lang, file)| (*lang, options.plugins.join(file)))
        .collect();
    for (_, path) in &components {
        if !path.is_file() {
            eprintln!(
                "floe-bench languages: {} is missing: build it (scripts/build-plugins.sh, build-js-plugins.sh, \
                 build-py-plugins.sh) or leave its language out with --only",
                path.display()
            );
            std::process::exit(2);
        }
    }

    println!("# floe-bench languages");
    println!();
    println!(
        "pii-mask, email + hash, {rows} rows in {} batches, {} repetition(s); build: {}",
        batches.len(),
        options.reps,
        if cfg!(debug_assertions) { "dev (floe-bench at opt-level 3, its dependencies at 1)" } else { "release" }
    );
    let native = repeat(options.reps, || {
        let (n, t) = run_native(&batches, &both.actions, Sha::Sha2);
        assert_eq!(n, rows);
        t
    });
    eprintln!("native Rust: {}", mrows(rows, native.median()));

    let mut measured = Vec::new();
    for (lang, path) in &components {
        let wasm = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let _ = std::fs::remove_dir_all(&cache_dir);
        let cold = time(|| drop(sandbox().load_transform("pii-mask", &wasm).unwrap()));
        let warm = repeat(5, || {
            let sandbox = sandbox();
            time(|| drop(sandbox.load_transform("pii-mask", &wasm).unwrap()))
        });
        let sandbox = sandbox();
        let plugin = sandbox.load_transform("pii-mask", &wasm).unwrap();
        let info = repeat(20, || time(|| drop(plugin.info().unwrap())));
        let empty = repeat(20, || run_wasm(&plugin, &both.config, &schema, &[], None).1);
        check_output(lang, path, &plugin, &both.config, &schema, &batches[0], &both.actions);
        let throughput = repeat(options.reps, || {
            let (n, t) = run_wasm(&plugin, &both.config, &schema, &batches, None);
            assert_eq!(n, rows, "{lang}: rows out");
            t
        });
        eprintln!("{lang}: {}", mrows(rows, throughput.median()));
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        measured.push(Measured { lang, size, cold, warm, info, empty, throughput });
    }
    let _ = std::fs::remove_dir_all(&cache_dir);
    report(rows, &native, &measured);
}

/// The component's output for `batch` must be the native output, byte for byte.
fn check_output(
    lang: &str,
    path: &Path,
    plugin: &floe_host::sandbox::TransformPlugin,
    config: &BTreeMap<String, String>,
    schema: &arrow_schema::SchemaRef,
    batch: &arrow_array::RecordBatch,
    actions: &[native::Action],
) {
    let mut kept = Vec::new();
    run_wasm(plugin, config, schema, std::slice::from_ref(batch), Some(&mut kept));
    let expected = native::mask(batch, actions, SALT, Sha::Sha2);
    assert!(concat_batches(&kept) == expected, "{lang} ({}): the output differs from native Rust's", path.display());
}

fn report(rows: usize, native: &Times, measured: &[Measured]) {
    let header: Vec<&str> = measured.iter().map(|m| m.lang).collect();
    println!();
    println!("| what | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(measured.len()));
    let row = |what: &str, cell: &dyn Fn(&Measured) -> String| {
        let cells: Vec<String> = measured.iter().map(cell).collect();
        println!("| {what} | {} |", cells.join(" | "));
    };
    row("component size", &|m| format!("{:.1} MB", m.size as f64 / 1e6));
    row("cold compile (`load_transform`, empty cache)", &|m| format!("{:.1} s", m.cold.as_secs_f64()));
    row("load from the warm compile cache (median of 5)", &|m| ms(m.warm.median()));
    row("instantiate + `info()` (median of 20)", &|m| ms(m.info.median()));
    row("`transform` over 0 rows (median of 20)", &|m| ms(m.empty.median()));
    row("email + hash: time (median)", &|m| format!("{:.1} s", m.throughput.median().as_secs_f64()));
    row("email + hash: rows/s", &|m| mrows(rows, m.throughput.median()));
    row("÷ native Rust", &|m| format!("{:.3}", native.median().as_secs_f64() / m.throughput.median().as_secs_f64()));
    println!();
    println!(
        "Native Rust (`sha2`) in the same run: {:.1} s, {}.",
        native.median().as_secs_f64(),
        mrows(rows, native.median())
    );
}

/// Rows per second with three significant digits: the languages differ 100-fold.
fn mrows(rows: usize, d: Duration) -> String {
    let per_second = rows as f64 / d.as_secs_f64() / 1e6;
    let decimals = if per_second >= 1.0 { 2 } else { (2.0 - per_second.log10().floor()) as usize };
    format!("{per_second:.decimals$} M rows/s")
}
