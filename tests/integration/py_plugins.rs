//! Plugins written in Python (the SDK in plugins/python/sdk, componentize-py):
//! the ports of pii-mask and csv-ingest give exactly the Rust plugins'
//! output (examples/plugins-in-js-and-python runs them as a pipeline, in
//! `js_plugins`), `plugin new --lang python` builds and runs, and hostile
//! Python is contained like hostile Rust: an endless loop and a memory
//! hoard fail their step with exit 3 and no table; `open()`, `os.environ`
//! and `socket` find nothing to reach.
//!
//! scripts/build-py-plugins.sh builds them into plugins/dist (`*_py.wasm`).

use std::io::ErrorKind;
use std::net::TcpListener;

use crate::js_plugins::trial;
use crate::support::{example, hostile_silver_exists, plugin, python_json, run_hostile, temp_dir};

/// The Python ports give exactly the Rust plugins' output on the demo data:
/// the same schema (names, types, nullability) and the same values.
#[test]
fn python_ports_match_the_rust_plugins_on_the_demo_data() {
    let dir = temp_dir();
    let data = example("customer-analytics").join("data");
    let customers = data.join("customers.csv");
    let pii = ["email=email", "hash=customer_name", "salt=customer-analytics-demo"];
    let rust = trial(&plugin("pii_mask.wasm"), &customers, &pii, &dir.path().join("a.parquet"));
    let python = trial(&plugin("pii_mask_py.wasm"), &customers, &pii, &dir.path().join("b.parquet"));
    assert_eq!(rust.num_rows(), 1055);
    assert_eq!(python, rust, "pii-mask");
    for file in ["customers.csv", "orders.csv"] {
        let input = data.join(file);
        let rust = trial(&plugin("csv_ingest.wasm"), &input, &[], &dir.path().join("c.parquet"));
        let python = trial(&plugin("csv_ingest_py.wasm"), &input, &[], &dir.path().join("d.parquet"));
        assert!(rust.num_rows() > 1000);
        assert_eq!(python, rust, "csv-ingest on {file}");
    }
}

#[test]
fn hostile_python_plugins_are_contained() {
    for (name, expected) in [("loop", "exceeded its deadline"), ("memory", "memory")] {
        let dir = temp_dir();
        let run = run_hostile(dir.path(), &format!("evil_{name}_py.wasm"), "{}", &[]).expect_code(3);
        assert!(run.stderr.contains("plugin `evil`") && run.stderr.contains(expected), "{name}:\n{}", run.stderr);
        assert!(!hostile_silver_exists(dir.path()), "{name}: a silver table exists");
    }

    // open(), os.environ and socket: each attempt is refused, nothing leaks,
    // and the batches pass through.
    let dir = temp_dir();
    let secret = format!("floe-py-secret-{}", std::process::id());
    let secret_file = dir.path().join("token");
    std::fs::write(&secret_file, &secret).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config =
        format!("{{probe_path: {}, addr: \"{addr}\"}}", serde_json::to_string(secret_file.to_str().unwrap()).unwrap());
    let run = run_hostile(dir.path(), "evil_escape_py.wasm", &config, &[("FLOE_TEST_SECRET", &secret)]).expect_code(0);
    assert!(!run.stderr.contains(&secret) && !run.stdout.contains(&secret), "the secret leaked:\n{}", run.stderr);
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(!run.stderr.contains(passwd.lines().next().unwrap()), "/etc/passwd leaked:\n{}", run.stderr);
    for attempt in [
        "read /etc/passwd: refused",
        "read secret: refused",
        "env FLOE_TEST_SECRET: got 'unset'",
        "env count: got 0",
        "tcp connect: refused",
    ] {
        assert!(run.stderr.contains(&format!("escape {attempt}")), "lacks {attempt:?}:\n{}", run.stderr);
    }
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the listener got a connection: {other:?}"),
    }
    let state = dir.path().join("state");
    let silver = python_json("table_check.py", &["--state-dir", state.to_str().unwrap(), "--table", "silver.events"]);
    assert_eq!(silver["rows"], 2);
}

/// `plugin new --lang python` for a transform, an ingest and a SQL-mode
/// plugin, each built with its README's commands (componentize-py from the
/// test venv stands in for `pip install -r requirements.txt`) and tried with
/// `plugin test`; the first two then run as a pipeline pyiceberg reads.
#[test]
fn a_python_plugin_from_plugin_new_builds_and_runs() {
    let dir = temp_dir();
    let venv_bin = crate::support::python().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default());
    for (name, kind, input, text, config, shown) in [
        ("shout", "transform", "sample.csv", "id,name\n1,Zoe\n2,\n", vec!["column=name"], vec!["1", "ZOE", "2", ""]),
        ("lines", "ingest", "sample.txt", "first\nsecond\r\nthird", vec![], vec!["first", "second", "third"]),
        ("large", "sql", "sample.csv", "id,amount\n1,5\n2,50\n", vec!["where=amount > 10"], vec!["2", "50"]),
    ] {
        let made = crate::support::floe_host(&[
            "plugin",
            "new",
            name,
            "--kind",
            kind,
            "--lang",
            "python",
            "--dir",
            dir.path().to_str().unwrap(),
        ])
        .expect_code(0);
        assert!(made.stdout.contains("pip install -r requirements.txt && sh build.sh"), "{}", made.stdout);
        let project = dir.path().join(name);
        let requirements = std::fs::read_to_string(project.join("requirements.txt")).unwrap();
        assert!(requirements.contains("componentize-py==0.25.1"), "{requirements}");
        let built =
            std::process::Command::new("sh").arg("build.sh").current_dir(&project).env("PATH", &path).output().unwrap();
        assert!(built.status.success(), "{name}: {}", String::from_utf8_lossy(&built.stderr));
        std::fs::write(project.join(input), text).unwrap();
        let wasm = project.join(format!("{name}.wasm"));
        let batch = trial(&wasm, &project.join(input), &config, &project.join("out.parquet"));
        let mut values = Vec::new();
        for row in 0..batch.num_rows() {
            for column in batch.columns().iter().take(2) {
                let formatter = arrow_cast::display::ArrayFormatter::try_new(column, &Default::default()).unwrap();
                values.push(formatter.value(row).to_string());
            }
        }
        if kind == "ingest" {
            let lines: Vec<&String> = values.iter().step_by(2).collect();
            assert_eq!(lines, shown.iter().collect::<Vec<_>>(), "{name}");
        } else {
            assert_eq!(values, shown, "{name}");
        }
    }
    crate::js_plugins::run_scaffolded_pipeline(dir.path());
}
