//! `floe-host plugin inspect | test | new`, on real components.

use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::{floe_host, floe_host_with_env, plugin, temp_dir};

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn inspect_names_world_metadata_imports_and_refuses_foreign_imports() {
    let csv = plugin("csv_ingest.wasm");
    let out = floe_host(&["plugin", "inspect", csv.to_str().unwrap()]).expect_code(0);
    assert!(out.stdout.contains("world    floe:plugin/ingest-chunks-plugin\n"), "{}", out.stdout);
    assert!(out.stdout.contains("plugin   csv-ingest 0.1.0 (Ingest)"), "{}", out.stdout);
    // The order of the exports is the toolchain's, not the contract's.
    let exports = out.stdout.lines().find_map(|l| l.strip_prefix("  exports  ")).unwrap_or_default();
    let mut exports: Vec<&str> = exports.split(", ").collect();
    exports.sort();
    assert_eq!(
        exports,
        ["floe:plugin/ingest-chunks@0.1.0", "floe:plugin/ingest@0.1.0", "floe:plugin/meta@0.1.0"],
        "{}",
        out.stdout
    );

    let evil = plugin("evil_missing_import.wasm");
    let out = floe_host(&["plugin", "inspect", evil.to_str().unwrap()]).expect_code(3);
    assert!(out.stdout.contains("imports `evil:probe/exfil`, which the host does not provide"), "{}", out.stdout);
}

#[test]
fn test_runs_ingest_streaming_and_sql_plugins_on_a_local_file() {
    let dir = temp_dir();
    let input = dir.path().join("people.csv");
    std::fs::write(&input, "id,email,name\n1, Zoe@Example.COM ,Zoe\n2,ben@example.org,Ben\n").unwrap();
    let input = input.to_str().unwrap();

    let pii = plugin("pii_mask.wasm");
    let args = ["plugin", "test", pii.to_str().unwrap(), "--input", input, "--config", "email=email"];
    let out = floe_host(&[&args[..], &["--config", "hash=name", "--config", "salt=pepper"]].concat()).expect_code(0);
    assert!(out.stdout.contains("-> 2 rows"), "{}", out.stdout);
    assert!(out.stdout.contains(&hex_sha256("pepperZoe")), "{}", out.stdout);
    assert!(out.stdout.contains("| zoe@example.com |"), "{}", out.stdout);

    let filter = plugin("sql_filter.wasm");
    let out = floe_host(&["plugin", "test", filter.to_str().unwrap(), "--input", input, "--config", "where=id > 1"])
        .expect_code(0);
    assert!(out.stdout.contains("sql: SELECT * FROM trial.input WHERE (id > 1)"), "{}", out.stdout);
    assert!(out.stdout.contains("-> 1 rows"), "{}", out.stdout);

    let parquet = dir.path().join("out.parquet");
    let csv = plugin("csv_ingest.wasm");
    floe_host(&["plugin", "test", csv.to_str().unwrap(), "--input", input, "--out", parquet.to_str().unwrap()])
        .expect_code(0);
    let reader = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&parquet).unwrap()).unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
    let columns: Vec<String> =
        reader.metadata().file_metadata().schema_descr().columns().iter().map(|c| c.name().to_string()).collect();
    assert_eq!(columns, ["id", "email", "name", "_row"]);
}

/// The inner loop: `inspect` and `test` keep compiled components in the
/// user's cache (`$XDG_CACHE_HOME/floe-host/component-cache`), so a second
/// call compiles nothing, and `test` checks its arguments before compiling.
#[test]
fn inspect_and_test_reuse_the_compile_cache_and_check_arguments_first() {
    let dir = temp_dir();
    let xdg = dir.path().join("xdg");
    let env = [("XDG_CACHE_HOME", xdg.to_str().unwrap())];
    let cache = xdg.join("floe-host/component-cache");
    let pii = plugin("pii_mask.wasm");
    let pii = pii.to_str().unwrap();
    let input = dir.path().join("people.csv");
    std::fs::write(&input, "id,email\n1, Zoe@Example.COM \n").unwrap();
    let input = input.to_str().unwrap();

    // Wrong arguments: exit 2 naming them, and nothing compiled.
    let missing = dir.path().join("missing.csv");
    let out = floe_host_with_env(&["plugin", "test", pii, "--input", missing.to_str().unwrap()], &env).expect_code(2);
    assert!(out.stderr.contains(&format!("cannot read {}", missing.display())), "{}", out.stderr);
    let nowhere = dir.path().join("no/such/out.parquet");
    let args = ["plugin", "test", pii, "--input", input, "--out", nowhere.to_str().unwrap()];
    let out = floe_host_with_env(&args, &env).expect_code(2);
    assert!(out.stderr.contains("no/such does not exist; create it first"), "{}", out.stderr);
    let out =
        floe_host_with_env(&["plugin", "test", pii, "--input", dir.path().to_str().unwrap()], &env).expect_code(2);
    assert!(out.stderr.contains("it is a directory; pass a file"), "{}", out.stderr);
    assert!(!xdg.exists(), "nothing was compiled");

    // The first inspect compiles and caches; the second and `test` load it.
    let out = floe_host_with_env(&["plugin", "inspect", pii], &env).expect_code(0);
    assert!(out.stdout.contains("\n  compiled in "), "{}", out.stdout);
    assert!(out.stderr.contains("Compiled the plugin."), "{}", out.stderr);
    let entries = || {
        std::fs::read_dir(&cache)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "cwasm"))
            .count()
    };
    assert_eq!(entries(), 1, "one compiled component in {}", cache.display());
    let out = floe_host_with_env(&["plugin", "inspect", pii], &env).expect_code(0);
    assert!(out.stdout.contains("\n  compiled from the cache in "), "{}", out.stdout);
    let args = ["plugin", "test", pii, "--input", input, "--config", "email=email"];
    let out = floe_host_with_env(&args, &env).expect_code(0);
    assert!(out.stdout.contains("| 1  | zoe@example.com |"), "{}", out.stdout);
    assert!(!out.stderr.contains("Compiled the plugin."), "compiled again:\n{}", out.stderr);
    assert_eq!(entries(), 1);

    // A config the plugin refuses is a usage error, as in `run`.
    let args = ["plugin", "test", pii, "--input", input, "--config", "email=nope"];
    let out = floe_host_with_env(&args, &env).expect_code(2);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
}

/// `plugin new` for each kind, in a directory outside the repository: the
/// crate depends on nothing but its vendored SDK and crates.io, builds into a
/// component of the right world, and `plugin test` runs it as its README says.
#[test]
fn new_scaffolds_crates_of_each_kind_that_build_anywhere_and_work() {
    let dir = temp_dir();
    // Share compiled dependencies with scripts/build-plugins.sh when possible.
    let shared_target = std::env::var_os("FLOE_PLUGINS_TARGET_DIR");
    let build = |name: &str, kind: &str| -> std::path::PathBuf {
        let out =
            floe_host(&["plugin", "new", name, "--kind", kind, "--dir", dir.path().to_str().unwrap()]).expect_code(0);
        assert!(out.stdout.contains("the plugin is src/lib.rs"), "{}", out.stdout);
        let krate = dir.path().join(name);
        let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
        assert!(manifest.contains(r#"floe-plugin-sdk = { path = "vendor/floe-plugin-sdk" }"#), "{manifest}");
        let repo = crate::support::repo().display().to_string();
        for file in ["Cargo.toml", "vendor/floe-plugin-sdk/Cargo.toml", "README.md"] {
            let text = std::fs::read_to_string(krate.join(file)).unwrap();
            assert!(!text.contains(&repo), "{file} refers to the repository: {text}");
        }
        let readme = std::fs::read_to_string(krate.join("README.md")).unwrap();
        assert!(readme.contains("cargo build --release --target wasm32-wasip2"), "{readme}");
        let target = shared_target.clone().map_or_else(|| krate.join("target"), Into::into);
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--target", "wasm32-wasip2"])
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "the scaffolded {kind} crate builds");
        target.join(format!("wasm32-wasip2/debug/{}.wasm", name.replace('-', "_")))
    };

    let transform = build("shout", "transform");
    let out = floe_host(&["plugin", "inspect", transform.to_str().unwrap()]).expect_code(0);
    assert!(out.stdout.contains("plugin   shout 0.1.0 (Transform)"), "{}", out.stdout);
    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "id,name\n1,Zoe\n").unwrap();
    let (csv, transform) = (csv.to_str().unwrap(), transform.to_str().unwrap());
    let out = floe_host(&["plugin", "test", transform, "--input", csv, "--config", "column=name"]).expect_code(0);
    assert!(out.stdout.contains("| 1  | ZOE  |"), "{}", out.stdout);

    let ingest = build("lines-in", "ingest");
    let text = dir.path().join("notes.txt");
    // A multi-byte character and a CRLF: the lines come back whole.
    std::fs::write(&text, "first\r\nsécond\nthird").unwrap();
    let ingest = ingest.to_str().unwrap();
    let out = floe_host(&["plugin", "inspect", ingest]).expect_code(0);
    // The SDK exports `ingest-chunks` for every ingest plugin.
    assert!(out.stdout.contains("world    floe:plugin/ingest-chunks-plugin\n"), "{}", out.stdout);
    let out = floe_host(&["plugin", "test", ingest, "--input", text.to_str().unwrap(), "--config", "column=note"])
        .expect_code(0);
    assert!(out.stdout.contains("-> 3 rows"), "{}", out.stdout);
    assert!(out.stdout.contains("| note   | _row |") && out.stdout.contains("| sécond | 2    |"), "{}", out.stdout);
    assert!(out.stderr.contains("read 3 lines"), "the plugin's log line: {}", out.stderr);

    let sql = build("big-only", "sql");
    let amounts = dir.path().join("amounts.csv");
    std::fs::write(&amounts, "id,amount\n1,5\n2,50\n").unwrap();
    let args = ["plugin", "test", sql.to_str().unwrap(), "--input", amounts.to_str().unwrap()];
    let out = floe_host(&[&args[..], &["--config", "where=amount > 10"]].concat()).expect_code(0);
    assert!(out.stdout.contains("sql: SELECT * FROM trial.input WHERE (amount > 10)"), "{}", out.stdout);
    assert!(out.stdout.contains("-> 1 rows"), "{}", out.stdout);
    // The schema it declares is what validate checks: `where` is required.
    let out = floe_host(&args).expect_code(2);
    assert!(out.stderr.contains("where"), "{}", out.stderr);

    // The three in one pipeline, bronze to gold, read back through pyiceberg.
    let project = dir.path().join("pipeline");
    std::fs::create_dir_all(project.join("data")).unwrap();
    std::fs::copy(&text, project.join("data/notes.txt")).unwrap();
    let yaml = format!(
        "name: scaffolded\nplugins:\n  lines-in: {{path: {ingest}}}\n  shout: {{path: {transform}}}\n  \
         big-only: {{path: {sql}}}\ntransforms:\n\
         \x20 - {{name: raw_notes, layer: bronze, kind: ingest, plugin: lines-in, source: data/notes.txt, config: {{column: note}}}}\n\
         \x20 - {{name: loud_notes, layer: silver, kind: wasm, plugin: shout, inputs: [bronze.raw_notes], config: {{column: note}}}}\n\
         \x20 - {{name: long_notes, layer: gold, kind: wasm, plugin: big-only, inputs: [silver.loud_notes], \
         config: {{where: \"length(note) > 5\"}}}}\n",
        sql = sql.display()
    );
    std::fs::write(project.join("floe.yaml"), yaml).unwrap();
    let state = dir.path().join("state");
    let (project, state) = (project.to_str().unwrap(), state.to_str().unwrap());
    floe_host(&["validate", project, "--state-dir", state]).expect_code(0);
    floe_host(&["run", project, "--state-dir", state]).expect_code(0);
    let read = |table: &str| {
        crate::support::python_json("table_check.py", &["--state-dir", state, "--table", table, "--order-by", "_row"])
    };
    let loud = read("silver.loud_notes");
    assert_eq!(loud["rows"], 3, "{loud}");
    let notes: Vec<&str> = loud["records"].as_array().unwrap().iter().map(|r| r["note"].as_str().unwrap()).collect();
    assert_eq!(notes, ["FIRST", "SÉCOND", "THIRD"]);
    let long = read("gold.long_notes");
    assert_eq!(long["records"], serde_json::json!([{"note": "SÉCOND", "_row": 2}]), "{long}");
}
