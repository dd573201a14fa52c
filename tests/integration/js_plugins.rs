//! Plugins written in JavaScript (the SDK in plugins/js/sdk, componentize-js):
//! a project from `plugin new --lang js` builds with its README's two
//! commands and runs; the ports of pii-mask and csv-ingest give exactly the
//! Rust plugins' output; a pipeline of them commits the same tables; and
//! hostile JavaScript is contained like hostile Rust (exit 3, no snapshot).
//!
//! scripts/build-js-plugins.sh builds the ports and the hostile plugins into
//! plugins/dist (`*_js.wasm`) and installs the toolchain whose npm cache
//! `npm ci --offline` uses here.

use std::path::Path;
use std::process::Command;

use crate::support::{example, floe_host, hostile_silver_exists, plugin, python_json, run_hostile, temp_dir};
use arrow_array::RecordBatch;

/// Every batch of a Parquet file that `plugin test --out` wrote, as one.
pub(crate) fn parquet(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// `plugin test WASM --input INPUT --config k=v … --out OUT`: its output.
pub(crate) fn trial(wasm: &Path, input: &Path, config: &[&str], out: &Path) -> RecordBatch {
    let mut args = vec!["plugin", "test", wasm.to_str().unwrap(), "--input", input.to_str().unwrap()];
    for entry in config {
        args.extend(["--config", entry]);
    }
    args.extend(["--out", out.to_str().unwrap(), "--limit", "1"]);
    floe_host(&args).expect_code(0);
    parquet(out)
}

fn npm(dir: &Path, args: &[&str]) {
    let out = Command::new("npm").args(args).current_dir(dir).output().expect("npm runs");
    assert!(
        out.status.success(),
        "npm {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The scaffolded `lines` ingest and `shout` transform (built under `dir`)
/// as a pipeline: lines in bronze, upper-cased in silver, read back by
/// pyiceberg.
pub(crate) fn run_scaffolded_pipeline(dir: &Path) {
    let pipeline = dir.join("pipeline");
    std::fs::create_dir_all(&pipeline).unwrap();
    std::fs::write(pipeline.join("notes.txt"), "first\nsecond\n").unwrap();
    let wasm =
        |name: &str| serde_json::to_string(dir.join(name).join(format!("{name}.wasm")).to_str().unwrap()).unwrap();
    let yaml = format!(
        "name: scaffolded\nplugins:\n  lines: {{path: {lines}}}\n  shout: {{path: {shout}}}\ntransforms:\n\
         \x20 - {{name: raw_lines, layer: bronze, kind: ingest, plugin: lines, source: notes.txt}}\n\
         \x20 - {{name: shouted, layer: silver, kind: wasm, plugin: shout, inputs: [bronze.raw_lines], config: {{column: line}}}}\n",
        lines = wasm("lines"),
        shout = wasm("shout"),
    );
    std::fs::write(pipeline.join("floe.yaml"), yaml).unwrap();
    let state = dir.join("state");
    floe_host(&["run", pipeline.to_str().unwrap(), "--state-dir", state.to_str().unwrap()]).expect_code(0);
    let silver = python_json(
        "table_check.py",
        &["--state-dir", state.to_str().unwrap(), "--table", "silver.shouted", "--order-by", "_row"],
    );
    assert_eq!(silver["records"], serde_json::json!([{"line": "FIRST", "_row": 1}, {"line": "SECOND", "_row": 2}]));
}

/// `plugin new --lang js` for a transform and an ingest, each built with
/// `npm ci` (offline: from the cache the toolchain's install filled) and
/// `npm run build`, tried with `plugin test`, then run as a pipeline whose
/// tables pyiceberg reads.
#[test]
fn a_js_plugin_from_plugin_new_builds_and_runs() {
    let dir = temp_dir();
    for (name, kind, input, text, config, expected) in [
        ("shout", "transform", "sample.csv", "id,name\n1,Zoe\n2,\n", vec!["column=name"], "ZOE"),
        ("lines", "ingest", "sample.txt", "first\nsecond\r\nthird", vec![], "second"),
    ] {
        let made =
            floe_host(&["plugin", "new", name, "--kind", kind, "--lang", "js", "--dir", dir.path().to_str().unwrap()])
                .expect_code(0);
        assert!(made.stdout.contains("npm ci && npm run build"), "{}", made.stdout);
        let project = dir.path().join(name);
        let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
        assert!(readme.contains("npm ci && npm run build"), "{readme}");
        npm(&project, &["ci", "--offline", "--no-audit", "--no-fund", "--loglevel=error"]);
        npm(&project, &["run", "build"]);
        let wasm = project.join(format!("{name}.wasm"));
        std::fs::write(project.join(input), text).unwrap();
        let out = project.join("out.parquet");
        let batch = trial(&wasm, &project.join(input), &config, &out);
        let column = batch.column(if kind == "ingest" { 0 } else { 1 });
        let values = arrow_cast::display::ArrayFormatter::try_new(column, &Default::default()).unwrap();
        let shown: Vec<String> = (0..batch.num_rows()).map(|i| values.value(i).to_string()).collect();
        assert!(shown.iter().any(|v| v == expected), "{name}: {shown:?}");
        if kind == "ingest" {
            assert_eq!(shown, ["first", "second", "third"], "the \\r is stripped, the last line kept");
        } else {
            assert_eq!(shown, ["ZOE", ""], "NULL stays NULL");
            assert!(batch.column(1).is_null(1));
        }
        let inspected = floe_host(&["plugin", "inspect", wasm.to_str().unwrap()]).expect_code(0);
        assert!(inspected.stdout.contains("imports  floe:plugin/log@0.1.0"), "{}", inspected.stdout);
    }

    // Both in a pipeline: lines in bronze, upper-cased in silver, read back by pyiceberg.
    run_scaffolded_pipeline(dir.path());
}

/// The JavaScript ports give exactly the Rust plugins' output on the demo
/// data: the same schema (names, types, nullability) and the same values.
#[test]
fn js_ports_match_the_rust_plugins_on_the_demo_data() {
    let dir = temp_dir();
    let data = example("customer-analytics").join("data");
    let pii = ["email=email", "hash=customer_name", "salt=customer-analytics-demo"];
    let rust = trial(&plugin("pii_mask.wasm"), &data.join("customers.csv"), &pii, &dir.path().join("a.parquet"));
    let js = trial(&plugin("pii_mask_js.wasm"), &data.join("customers.csv"), &pii, &dir.path().join("b.parquet"));
    assert_eq!(rust.num_rows(), 1055);
    assert_eq!(js, rust, "pii-mask");
    for file in ["customers.csv", "orders.csv"] {
        let input = data.join(file);
        let rust = trial(&plugin("csv_ingest.wasm"), &input, &[], &dir.path().join("c.parquet"));
        let js = trial(&plugin("csv_ingest_js.wasm"), &input, &[], &dir.path().join("d.parquet"));
        assert!(rust.num_rows() > 1000);
        assert_eq!(js, rust, "csv-ingest on {file}");
    }
}

/// examples/plugins-in-js-and-python: bronze by csv-ingest in JavaScript and
/// in Python, silver by pii-mask in both; the tables pyiceberg reads equal
/// those of the same pipeline on the Rust plugins.
#[test]
fn a_pipeline_of_js_and_python_plugins_commits_what_the_rust_one_does() {
    let dir = temp_dir();
    let mut tables = Vec::new();
    for (variant, rewrite) in [("ported", false), ("rust", true)] {
        // The example as it is, with the plugins where this build put them.
        let project = dir.path().join(variant);
        std::fs::create_dir_all(project.join("data")).unwrap();
        let example = example("plugins-in-js-and-python");
        std::fs::copy(example.join("data/customers.csv"), project.join("data/customers.csv")).unwrap();
        let dist = plugin("csv_ingest.wasm").parent().unwrap().display().to_string();
        let mut yaml = std::fs::read_to_string(example.join("floe.yaml")).unwrap();
        yaml = yaml.replace("../../plugins/dist", &dist);
        if rewrite {
            yaml = yaml.replace("_js.wasm", ".wasm").replace("_py.wasm", ".wasm");
        }
        std::fs::write(project.join("floe.yaml"), yaml).unwrap();
        let state = dir.path().join(format!("state-{variant}"));
        floe_host(&["run", project.to_str().unwrap(), "--state-dir", state.to_str().unwrap()]).expect_code(0);
        let read = |table: &str| {
            python_json(
                "table_check.py",
                &["--state-dir", state.to_str().unwrap(), "--table", table, "--order-by", "_row"],
            )
        };
        let names = [
            "bronze.raw_customers",
            "bronze.raw_customers_py",
            "silver.customer_contacts",
            "silver.customer_contacts_py",
        ];
        tables.push(names.map(|name| (name, read(name))));
    }
    for ((name, ported), (_, rust)) in tables[0].iter().zip(&tables[1]) {
        assert_eq!(ported["rows"], 1055, "{name}");
        assert_eq!((&ported["columns"], &ported["records"]), (&rust["columns"], &rust["records"]), "{name}");
    }
}

/// Hostile JavaScript (an endless loop, a memory hoard, reaching for the
/// network and the environment) fails its step with exit 3, and commits
/// nothing.
#[test]
fn hostile_js_plugins_are_contained() {
    for (name, expected) in [
        ("loop", "exceeded its deadline"),
        ("memory", "memory"),
        // The engine defines `fetch`, and nothing else of the list; with no
        // wasi:http import, calling it traps.
        ("escape", "trapped"),
    ] {
        let dir = temp_dir();
        let run = run_hostile(dir.path(), &format!("evil_{name}_js.wasm"), "{}", &[]).expect_code(3);
        assert!(run.stderr.contains("plugin `evil`") && run.stderr.contains(expected), "{name}:\n{}", run.stderr);
        if name == "escape" {
            assert!(run.stderr.contains("escape: the engine defines fetch\n"), "{}", run.stderr);
        }
        assert!(!hostile_silver_exists(dir.path()), "{name}: a silver table exists");
    }
}
