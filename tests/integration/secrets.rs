//! Secrets never leak: with known secret values set (environment and mounted
//! files), validate, plan, plan --json and a full run with trace logging print
//! none of them, and no file the run writes contains them.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{example, temp_dir};

const CLIENT_ID: &str = "canary-client-id-4c1d";
const CLIENT_SECRET: &str = "canary-client-secret-9b7e";
const ACCESS_KEY: &str = "canary-access-key-2f60";
const SECRET_KEY: &str = "canary-secret-key-e813";
const CANARIES: [&str; 4] = [CLIENT_ID, CLIENT_SECRET, ACCESS_KEY, SECRET_KEY];

fn platform(state: &Path) -> String {
    format!(
        "catalogs:
  default: {{type: sql, uri: 'sqlite:{state}/catalog.db', warehouse: '{state}/warehouse'}}
  prod:
    type: polaris
    uri: http://127.0.0.1:1/api/catalog
    credentials:
      mode: oauth2
      client_id: {{secret_ref: polaris-client-id}}
      client_secret: {{secret_ref: polaris-client-secret}}
storage:
  default: {{type: local, root: '{state}/warehouse'}}
  lake:
    type: s3
    bucket: lake
    credentials: {{mode: static, secret_ref: aws-credentials}}
compute:
  default: {{type: duckdb}}
",
        state = state.display()
    )
}

fn floe_host(args: &[&str], secrets_dir: &Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_floe-host"))
        .args(args)
        .env("POLARIS_CLIENT_ID", CLIENT_ID)
        .env("FLOE_SECRETS_DIR", secrets_dir)
        // Everything of ours at trace, every dependency at info (cranelift at trace
        // logs gigabytes).
        .env("FLOE_LOG", "floe_host=trace,info")
        .env_remove("POLARIS_CLIENT_SECRET")
        .output()
        .expect("floe-host runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

fn assert_no_canary(what: &str, bytes: &[u8]) {
    for canary in CANARIES {
        let found = bytes.windows(canary.len()).any(|w| w == canary.as_bytes());
        assert!(!found, "{what} contains the secret value {canary}");
    }
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { files(&path, out) } else { out.push(path) }
    }
}

#[test]
fn no_secret_value_reaches_output_logs_or_files() {
    let dir = temp_dir();
    let secrets = dir.path().join("secrets");
    fs::create_dir_all(secrets.join("aws-credentials")).unwrap();
    // As Kubernetes mounts them: one file per key, with a trailing newline.
    fs::write(secrets.join("polaris-client-secret"), format!("{CLIENT_SECRET}\n")).unwrap();
    fs::write(secrets.join("aws-credentials/access_key_id"), ACCESS_KEY).unwrap();
    fs::write(secrets.join("aws-credentials/secret_access_key"), SECRET_KEY).unwrap();
    let state = dir.path().join("state");
    let platform_file = dir.path().join("platform.yaml");
    fs::write(&platform_file, platform(&state)).unwrap();
    let project = example("customer-analytics");
    let floe = project.join("floe.yaml");
    let common = ["-f", floe.to_str().unwrap(), "--platform", platform_file.to_str().unwrap()];

    let mut transcript = String::new();
    for command in [&["validate"][..], &["plan"], &["plan", "--json"], &["run"]] {
        let args: Vec<&str> = command.iter().chain(common.iter()).copied().collect();
        let (code, text) = floe_host(&args, &secrets);
        assert_eq!(code, 0, "floe-host {args:?}\n{text}");
        assert_no_canary(&format!("output of {command:?}"), text.as_bytes());
        transcript.push_str(&text);
    }
    // The secrets were resolved and carried through the plan, shown masked.
    assert!(transcript.contains("\"client_secret\": \"***\""), "plan --json shows secrets as ***");
    assert!(transcript.contains("Resolved the plan"), "trace logging printed the plan (with its secrets masked)");
    assert!(transcript.contains("client_secret: ***"), "the logged plan shows the secret masked");

    let mut written = Vec::new();
    files(&state, &mut written);
    assert!(written.len() > 10, "the run wrote its tables under {}", state.display());
    for file in written {
        assert_no_canary(&file.display().to_string(), &fs::read(&file).unwrap());
    }
}
