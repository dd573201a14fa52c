//! Golden tests for configuration errors: every `tests/ui/invalid/<case>.floe.yaml`
//! (with `<case>.platform.yaml` when present) must fail validation with exit
//! code 2 and exactly the message in `<case>.err`. Re-record with `BLESS=1`.

use std::path::Path;
use std::process::Command;

use crate::support::{repo, temp_dir};

#[test]
fn invalid_configurations_match_their_golden_errors() {
    let root = repo();
    let dir = root.join("tests/ui/invalid");
    let bless = std::env::var_os("BLESS").is_some();
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".floe.yaml").map(str::to_string))
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "expected at least 20 fixtures, found {}", cases.len());

    // The digest of the built plugin changes with every rebuild; goldens name it.
    let plugin_digest: String = {
        use sha2::Digest;
        // The fixtures name the repository's build, whatever FLOE_PLUGIN_DIST says.
        let wasm = std::fs::read(root.join("plugins/dist/csv_ingest.wasm")).expect("run scripts/build-plugins.sh");
        sha2::Sha256::digest(&wasm).iter().map(|b| format!("{b:02x}")).collect()
    };
    let mut failures = Vec::new();
    for case in &cases {
        let state = temp_dir();
        let floe = format!("tests/ui/invalid/{case}.floe.yaml");
        let platform = format!("tests/ui/invalid/{case}.platform.yaml");
        let mut command = Command::new(env!("CARGO_BIN_EXE_floe-host"));
        // A clean environment: no secrets, platform variables or log settings leak in.
        command.env_clear().current_dir(&root).args(["validate", "-f", &floe, "--log-format", "text"]);
        command.args(["--secrets-dir", "tests/ui/secrets", "--state-dir", state.path().to_str().unwrap()]);
        if root.join(&platform).exists() {
            command.args(["--platform", &platform]);
        }
        let output = command.output().expect("floe-host runs");
        let stderr = String::from_utf8_lossy(&output.stderr)
            .replace(state.path().to_str().unwrap(), "$STATE")
            .replace(&plugin_digest, "$CSV_INGEST_SHA256");
        let golden = dir.join(format!("{case}.err"));
        if output.status.code() != Some(2) {
            failures.push(format!("{case}: exit code {:?}, expected 2\n{stderr}", output.status.code()));
            continue;
        }
        if std::fs::read_dir(state.path()).unwrap().next().is_some() {
            failures.push(format!("{case}: validation wrote into the state directory"));
        }
        if bless {
            std::fs::write(&golden, stderr.as_bytes()).unwrap();
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(expected) if expected == stderr => {}
            Ok(expected) => {
                failures.push(format!("{case}: stderr differs\n--- expected\n{expected}--- actual\n{stderr}"))
            }
            Err(_) => failures.push(format!("{case}: no golden file {} (run with BLESS=1)", relative(&golden, &root))),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// The JSON Schemas in `schemas/` (for editors) are what `schema export` prints.
#[test]
fn committed_json_schemas_are_current() {
    let root = repo();
    let bless = std::env::var_os("BLESS").is_some();
    for file in ["floe", "platform"] {
        let output = Command::new(env!("CARGO_BIN_EXE_floe-host")).args(["schema", "export", file]).output().unwrap();
        assert!(output.status.success());
        let exported: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(exported["additionalProperties"], false, "{file}: unknown keys are rejected");
        let path = root.join(format!("schemas/{file}.schema.json"));
        if bless {
            std::fs::write(&path, serde_json::to_string_pretty(&exported).unwrap() + "\n").unwrap();
            continue;
        }
        let committed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(committed, exported, "{} is stale: run the tests with BLESS=1", path.display());
    }
}
