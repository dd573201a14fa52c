//! The demo on every catalog and storage combination, against real services on
//! 127.0.0.1 started by `scripts/services.sh`: rustberg as the Iceberg REST
//! catalog (OAuth2 client credentials from a real IdP, or a static token) and
//! moto as S3. pyiceberg reads every table back, and its figures must match
//! the reference computed from the raw CSV.
//!
//! Each test uses its own namespaces (`<prefix>bronze`, …), so tests sharing
//! a catalog server never see each other's tables.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{example, floe_host_with_env, python_json, service, temp_dir};

#[derive(Clone, Copy, Debug)]
pub(crate) enum Catalog {
    Sql,
    RestOAuth2,
    RestToken,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Storage {
    Local,
    /// S3 with static keys from a secret_ref.
    S3,
    /// S3 with no `credentials`: the AWS chain finds the keys (here in the
    /// standard environment variables).
    S3Ambient,
}

/// A platform file for one combination, the secrets it refers to (as
/// environment variables) and the pyiceberg properties of the same catalog.
pub(crate) struct Platform {
    pub(crate) yaml: String,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) pyiceberg: Value,
}

const CLIENT_SECRET_REF: &str = "rest-client-secret";

pub(crate) fn platform(prefix: &str, catalog: Catalog, storage: Storage, state: &Path) -> Platform {
    let mut env = Vec::new();
    let mut pyiceberg = serde_json::Map::new();
    // The REST catalog instance whose warehouse is on the chosen storage.
    let rest_uri = match storage {
        Storage::Local => service("FLOE_TEST_REST_URI"),
        Storage::S3 | Storage::S3Ambient => service("FLOE_TEST_REST_S3_URI"),
    };
    let catalog_yaml = match catalog {
        Catalog::Sql => {
            format!("{{type: sql, uri: \"sqlite:{0}/catalog.db\", warehouse: \"{0}/warehouse\"}}", state.display())
        }
        Catalog::RestOAuth2 => {
            env.push(("REST_CLIENT_ID".into(), service("FLOE_TEST_OAUTH_CLIENT_ID")));
            env.push(("REST_CLIENT_SECRET".into(), service("FLOE_TEST_OAUTH_CLIENT_SECRET")));
            let token_url = service("FLOE_TEST_OAUTH_TOKEN_URL");
            let scope = service("FLOE_TEST_OAUTH_SCOPE");
            pyiceberg.insert("type".into(), json!("rest"));
            pyiceberg.insert("uri".into(), json!(rest_uri));
            pyiceberg.insert(
                "credential".into(),
                json!(format!("{}:{}", service("FLOE_TEST_OAUTH_CLIENT_ID"), service("FLOE_TEST_OAUTH_CLIENT_SECRET"))),
            );
            pyiceberg.insert("oauth2-server-uri".into(), json!(token_url));
            pyiceberg.insert("scope".into(), json!(scope));
            format!(
                "{{type: rest, uri: \"{rest_uri}\", oauth2_server_uri: \"{token_url}\", credentials: {{mode: oauth2, \
                 client_id: {{secret_ref: rest-client-id}}, client_secret: {{secret_ref: {CLIENT_SECRET_REF}}}, \
                 scope: \"{scope}\"}}}}"
            )
        }
        Catalog::RestToken => {
            env.push(("REST_TOKEN".into(), service("FLOE_TEST_REST_TOKEN")));
            pyiceberg.insert("type".into(), json!("rest"));
            pyiceberg.insert("uri".into(), json!(rest_uri));
            pyiceberg.insert("token".into(), json!(service("FLOE_TEST_REST_TOKEN")));
            // The catalog's `warehouse`, as the server advertises it (rustberg serves one).
            let warehouse = match storage {
                Storage::Local => service("FLOE_TEST_REST_WAREHOUSE"),
                Storage::S3 | Storage::S3Ambient => service("FLOE_TEST_REST_S3_WAREHOUSE"),
            };
            format!(
                "{{type: rest, uri: \"{rest_uri}\", warehouse: \"{warehouse}\", \
                 credentials: {{mode: bearer, token: {{secret_ref: rest-token}}}}}}"
            )
        }
    };
    let storage_yaml = match storage {
        Storage::Local => {
            // A REST catalog's local warehouse is the server's folder on this machine.
            let root = match catalog {
                Catalog::Sql => format!("{}/warehouse", state.display()),
                _ => service("FLOE_TEST_REST_WAREHOUSE").trim_start_matches("file://").to_string(),
            };
            format!("{{type: local, root: \"{root}\"}}")
        }
        Storage::S3 | Storage::S3Ambient => {
            let ambient = matches!(storage, Storage::S3Ambient);
            let prefix = if ambient { "AWS" } else { "S3_KEYS" };
            env.push((format!("{prefix}_ACCESS_KEY_ID"), service("FLOE_TEST_S3_ACCESS_KEY")));
            env.push((format!("{prefix}_SECRET_ACCESS_KEY"), service("FLOE_TEST_S3_SECRET_KEY")));
            pyiceberg.insert("s3.endpoint".into(), json!(service("FLOE_TEST_S3_ENDPOINT")));
            pyiceberg.insert("s3.access-key-id".into(), json!(service("FLOE_TEST_S3_ACCESS_KEY")));
            pyiceberg.insert("s3.secret-access-key".into(), json!(service("FLOE_TEST_S3_SECRET_KEY")));
            pyiceberg.insert("s3.region".into(), json!(service("FLOE_TEST_S3_REGION")));
            pyiceberg.insert("s3.path-style-access".into(), json!("true"));
            format!(
                "{{type: s3, endpoint: \"{}\", bucket: {}, region: {}, path_style_access: true{}}}",
                service("FLOE_TEST_S3_ENDPOINT"),
                service("FLOE_TEST_S3_BUCKET"),
                service("FLOE_TEST_S3_REGION"),
                if ambient { "" } else { ", credentials: {mode: static, secret_ref: s3-keys}" },
            )
        }
    };
    let yaml = format!(
        "version: \"1.1.0\"\n\
         compute:\n  default: {{type: duckdb, properties: {{threads: 2}}}}\n\
         catalogs:\n  default: {catalog_yaml}\n\
         storage:\n  default: {storage_yaml}\n\
         layers:\n\
         \x20 bronze: {{storage_ref: default, catalog_ref: default, namespace: {prefix}bronze}}\n\
         \x20 silver: {{storage_ref: default, catalog_ref: default, namespace: {prefix}silver}}\n\
         \x20 gold: {{storage_ref: default, catalog_ref: default, namespace: {prefix}gold}}\n"
    );
    Platform { yaml, env, pyiceberg: Value::Object(pyiceberg) }
}

impl Platform {
    fn write(&self, dir: &Path) -> String {
        let path = dir.join("platform.yaml");
        std::fs::write(&path, &self.yaml).unwrap();
        path.display().to_string()
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }
}

/// The per-table figures that both the reference and pyiceberg report.
fn figures(report: &Value, table: &str) -> Value {
    let mut entry = report["tables"][table].clone();
    let object = entry.as_object_mut().unwrap_or_else(|| panic!("no entry for {table} in {report}"));
    object.retain(|key, _| key == "rows" || key.starts_with("sum_"));
    entry
}

/// `floe-host run` of the demo on `platform_file`, with `env`.
fn run_demo(platform_file: &str, state: &Path, env: &[(&str, &str)]) -> crate::support::Run {
    let project = example("customer-analytics");
    let args = ["run", project.to_str().unwrap(), "--platform", platform_file, "--state-dir", state.to_str().unwrap()];
    floe_host_with_env(&args, env)
}

/// Runs the demo on one combination and compares every table, read by
/// pyiceberg, with the reference.
fn demo_on(prefix: &str, catalog: Catalog, storage: Storage) {
    let state = temp_dir();
    let platform = platform(prefix, catalog, storage, state.path());
    let platform_file = platform.write(state.path());
    let run = run_demo(&platform_file, state.path(), &platform.env()).expect_code(0);
    for (_, secret) in &platform.env {
        assert!(
            !run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()),
            "a secret reached the output"
        );
    }

    assert_demo_tables(prefix, catalog, storage, state.path(), &platform);
}

/// Every demo table, read by pyiceberg, equals the reference.
fn assert_demo_tables(prefix: &str, catalog: Catalog, storage: Storage, state: &Path, platform: &Platform) {
    let project = example("customer-analytics");
    let expected = python_json("demo_check.py", &["expected", "--data", project.join("data").to_str().unwrap()]);
    let mut args = vec!["actual".to_string(), "--catalog-name".into(), "default".into()];
    if let Catalog::Sql = catalog {
        args.extend([
            "--catalog-uri".into(),
            format!("sqlite:///{}", state.join("catalog.db").display()),
            "--warehouse".into(),
            format!("file://{}", state.join("warehouse").display()),
        ]);
    }
    args.extend(["--props".into(), platform.pyiceberg.to_string(), "--namespace-prefix".into(), prefix.into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let actual = python_json("demo_check.py", &args);
    let tables = expected["tables"].as_object().unwrap();
    assert_eq!(tables.len(), 9, "the reference covers every demo table");
    for table in tables.keys() {
        assert_eq!(figures(&actual, table), figures(&expected, table), "{table} on {catalog:?} + {storage:?}");
    }
}

#[test]
fn demo_on_sql_catalog_over_s3_with_ambient_credentials() {
    demo_on("sql_s3_", Catalog::Sql, Storage::S3Ambient);
}

#[test]
fn demo_on_rest_catalog_with_oauth2_over_local_storage() {
    demo_on("rest_local_", Catalog::RestOAuth2, Storage::Local);
}

#[test]
fn demo_on_rest_catalog_with_a_static_token_over_s3() {
    demo_on("rest_s3_", Catalog::RestToken, Storage::S3);
}

/// `maintain` on the REST catalog over S3: after two runs, each table's
/// older snapshot expires (the storage's `retention`, floe-platform's key)
/// through the server's `remove-snapshots`, its files are deleted from S3,
/// and pyiceberg still reads every table equal to the reference. The S3
/// listing finds no file that a snapshot does not reference, but one that
/// pyiceberg planted, which is younger than the orphan age and stays.
#[test]
fn maintain_on_the_rest_catalog_over_s3_expires_old_snapshots_and_keeps_the_data() {
    let state = temp_dir();
    let prefix = &format!("maintained_{}_", std::process::id());
    let mut platform = platform(prefix, Catalog::RestToken, Storage::S3, state.path());
    platform.yaml = platform.yaml.replacen("path_style_access: true", "path_style_access: true, retention: 1ms", 1);
    // Every table's overwrite snapshot lists two manifests: merged into one.
    platform.yaml = platform.yaml.replace(
        "catalog_ref: default, namespace:",
        "catalog_ref: default, maintenance: {max_manifests: 1}, namespace:",
    );
    let platform_file = platform.write(state.path());
    for _ in 0..2 {
        run_demo(&platform_file, state.path(), &platform.env()).expect_code(0);
    }
    let project = example("customer-analytics");
    let args = [
        "maintain",
        project.to_str().unwrap(),
        "--platform",
        &platform_file,
        "--state-dir",
        state.path().to_str().unwrap(),
    ];
    let rows = |stdout: &str| -> Vec<Vec<String>> {
        stdout.lines().skip(1).map(|l| l.split_whitespace().map(str::to_string).collect()).collect()
    };
    let orders = format!("{prefix}silver.stg_orders");
    let props = platform.pyiceberg.to_string();
    let planted =
        python_json("iceberg_peer.py", &["plant", "--props", &props, "--table", &orders, "--file", "x.parquet"]);
    let planted = planted["path"].as_str().unwrap().to_string();
    let time_travel = |ids: &[&str]| {
        let mut args = vec!["--props", &props, "--table", &orders, "--time-travel"];
        args.extend(ids);
        python_json("table_check.py", &args)["snapshot_rows"].clone()
    };
    // Both runs' snapshots read whole before.
    let before = time_travel(&[]);
    let runs: Vec<&str> = before.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(runs.len(), 2, "{before}");
    assert!(before.as_object().unwrap().values().all(Value::is_u64), "{before}");
    let first = floe_host_with_env(&args, &platform.env()).expect_code(0);
    let tables = rows(&first.stdout);
    assert_eq!(tables.len(), 9, "{}", first.stdout);
    for table in &tables {
        // table, snapshots, expired, files deleted (n, size), orphans deleted (n, size), young,
        // compacted, manifests (before → after)
        assert_eq!(table[11..], ["2", "→", "1"], "{}", first.stdout);
        // The two runs' snapshots expire; the merge's is current.
        assert_eq!((&table[1], &table[2]), (&"3".to_string(), &"2".to_string()), "{}", first.stdout);
        assert_ne!(table[3], "0", "the expired snapshot's files are deleted: {}", first.stdout);
        let young = if table[0] == "silver.stg_orders" { "1" } else { "0" };
        assert_eq!((&table[6], table[9].as_str()), (&"0".to_string(), young), "{}", first.stdout);
    }
    // Time travel to the expired snapshots fails: the catalog no longer has them.
    let after = time_travel(&runs);
    for run in &runs {
        let error = after[*run].as_str().unwrap_or_else(|| panic!("snapshot {run} still reads: {after}"));
        assert!(error.contains("no snapshot") && error.contains(run), "{after}");
    }
    let exists = python_json("iceberg_peer.py", &["exists", "--props", &props, "--table", &orders, "--path", &planted]);
    assert_eq!(exists["exists"], true, "a young orphan stays");
    assert_demo_tables(prefix, Catalog::RestToken, Storage::S3, state.path(), &platform);
    let second = floe_host_with_env(&args, &platform.env()).expect_code(0);
    for table in rows(&second.stdout) {
        assert_eq!((&table[1], &table[2]), (&"1".to_string(), &"0".to_string()), "{}", second.stdout);
    }
}

#[test]
fn a_table_pyiceberg_wrote_to_the_rest_catalog_is_read_by_floe_host() {
    let state = temp_dir();
    let prefix = "peer_";
    let platform = platform(prefix, Catalog::RestOAuth2, Storage::S3, state.path());
    let platform_file = platform.write(state.path());
    let written = python_json(
        "iceberg_peer.py",
        &["write", "--props", &platform.pyiceberg.to_string(), "--table", &format!("{prefix}silver.stg_orders")],
    );
    let project = example("customer-analytics");
    let shown = floe_host_with_env(
        &["show", "silver.stg_orders", project.to_str().unwrap(), "--platform", &platform_file],
        &platform.env(),
    )
    .expect_code(0);
    let header = format!("{prefix}silver.stg_orders (3 rows, snapshot {})", written["snapshot_id"]);
    assert!(shown.stdout.starts_with(&header), "expected `{header}`:\n{}", shown.stdout);
    for value in ["20.25", "| c "] {
        assert!(shown.stdout.contains(value), "row value {value} missing:\n{}", shown.stdout);
    }
}

/// On the REST catalog, a new table is staged (`stage-create`) and created
/// by its first commit (`assert-create`): a process killed right before that
/// commit leaves no table, and the rerun creates it with its snapshot.
#[test]
fn a_new_table_on_the_rest_catalog_appears_only_with_its_first_snapshot() {
    let state = temp_dir();
    // Its own namespaces in every run of the suite: the run id is fixed
    // (`fault-1`), and the test services may outlive a run.
    let prefix = &format!("staged_{}_", std::process::id());
    let platform = platform(prefix, Catalog::RestToken, Storage::Local, state.path());
    let platform_file = platform.write(state.path());
    let project = example("customer-analytics");
    let args = demo_args(&project, Path::new(&platform_file), state.path());
    let mut env = platform.env();
    env.push(("FLOE_FAILPOINT", "create-table:abort"));
    let crashed = floe_host_with_env(&args, &env);
    assert_eq!(crashed.code, -1, "killed by SIGABRT at the failpoint:\n{}", crashed.stderr);
    assert!(crashed.stderr.contains("failpoint create-table: aborting"), "{}", crashed.stderr);
    let show = |env: &[(&str, &str)]| {
        floe_host_with_env(
            &["show", "bronze.raw_customers", project.to_str().unwrap(), "--platform", &platform_file],
            env,
        )
    };
    let missing = show(&platform.env());
    assert_ne!(missing.code, 0, "the table must not exist:\n{}", missing.stdout);
    assert!(missing.stderr.contains(&format!("{prefix}bronze.raw_customers")), "{}", missing.stderr);

    floe_host_with_env(&args, &platform.env()).expect_code(0);
    let shown = show(&platform.env()).expect_code(0);
    assert!(shown.stdout.starts_with(&format!("{prefix}bronze.raw_customers (")), "{}", shown.stdout);
    assert!(!shown.stdout.contains("(0 rows"), "{}", shown.stdout);
}

#[test]
fn a_wrong_oauth2_client_secret_exits_2_naming_the_token_endpoint_and_never_printing_the_secret() {
    let state = temp_dir();
    let mut platform = platform("badauth_", Catalog::RestOAuth2, Storage::Local, state.path());
    let wrong = "not-the-writer-secret-5f2c";
    for (key, value) in &mut platform.env {
        if key == "REST_CLIENT_SECRET" {
            *value = wrong.to_string();
        }
    }
    let platform_file = platform.write(state.path());
    let run = run_demo(&platform_file, state.path(), &platform.env()).expect_code(2);
    let token_url = service("FLOE_TEST_OAUTH_TOKEN_URL");
    let expected = format!("the OAuth2 token endpoint {token_url} rejected the client credentials (401 Unauthorized");
    assert!(run.stderr.contains(&expected), "expected `{expected}` in:\n{}", run.stderr);
    assert!(run.stderr.contains("invalid_client"), "{}", run.stderr);
    assert!(run.stderr.contains("catalog `default`"), "{}", run.stderr);
    assert!(!run.stderr.contains(wrong) && !run.stdout.contains(wrong), "the secret was printed");
}

/// A private set of services in its own directory, stopped when dropped, for
/// tests that take a service away (the shared set serves the other tests).
struct PrivateServices {
    dir: tempfile::TempDir,
}

impl PrivateServices {
    fn start(names: &[&str]) -> Self {
        let dir = temp_dir();
        let services = PrivateServices { dir };
        services.run(&[&["start"], names].concat());
        services
    }

    fn run(&self, args: &[&str]) {
        let status = std::process::Command::new("bash")
            .arg(crate::support::repo().join("scripts/services.sh"))
            .args(args)
            .env("FLOE_SERVICES_DIR", self.dir.path())
            .status()
            .expect("scripts/services.sh runs");
        assert!(status.success(), "scripts/services.sh {args:?} failed");
    }

    fn get(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("services.env")).unwrap();
        text.lines()
            .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.trim_matches('\'').to_string())
            .unwrap_or_else(|| panic!("{name} missing from services.env"))
    }
}

impl Drop for PrivateServices {
    fn drop(&mut self) {
        self.run(&["stop"]);
    }
}

/// Runs the demo on `platform`, calls `fault` once step `raw_orders` has
/// committed, and returns the exit code and stderr; `args` are `run`'s.
fn run_with_fault(args: &[&str], env: &[(&str, &str)], fault: impl FnOnce()) -> (Option<i32>, String) {
    use std::io::BufRead;

    let mut child = crate::support::floe_host_command(args, env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    let mut fault = Some(fault);
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        stderr.push_str(&line);
        stderr.push('\n');
        if line.contains("Committed step.") && line.contains("\"raw_orders\"") {
            if let Some(fault) = fault.take() {
                fault();
            }
        }
    }
    (child.wait().unwrap().code(), stderr)
}

/// After a fault: every table pyiceberg finds is a whole commit, some are
/// missing, and a rerun of `args` finishes the pipeline.
fn only_whole_commits_then_a_rerun_finishes(pyiceberg: &[&str], args: &[&str], env: &[(&str, &str)]) {
    let project = example("customer-analytics");
    let expected = python_json("demo_check.py", &["expected", "--data", project.join("data").to_str().unwrap()]);
    let read_back = |extra: &[&str]| {
        let mut all = vec!["actual", "--catalog-name", "default"];
        all.extend_from_slice(pyiceberg);
        all.extend_from_slice(extra);
        python_json("demo_check.py", &all)
    };
    let partial = read_back(&["--allow-missing"]);
    // A table is created before its step writes, so the failed step's table
    // may exist without a snapshot: no data of it is visible.
    let present: Vec<&String> = partial["tables"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, t)| !t["snapshot_id"].is_null())
        .map(|(n, _)| n)
        .collect();
    assert!(present.len() >= 2 && present.len() < 9, "the run stopped partway: {present:?}");
    for table in present {
        assert_eq!(figures(&partial, table), figures(&expected, table), "{table} is a whole commit");
    }
    floe_host_with_env(args, env).expect_code(0);
    let after = read_back(&[]);
    for table in expected["tables"].as_object().unwrap().keys() {
        assert_eq!(figures(&after, table), figures(&expected, table), "{table} after the rerun");
    }
}

fn demo_args<'a>(project: &'a Path, platform_file: &'a Path, state: &'a Path) -> Vec<&'a str> {
    vec![
        "run",
        project.to_str().unwrap(),
        "--platform",
        platform_file.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--run-id",
        "fault-1",
        "--log-format",
        "json",
    ]
}

/// The final error of a JSON-logging run, as `error: MESSAGE`.
fn error_line(stderr: &str) -> String {
    let last = stderr.lines().last().and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok());
    match last {
        Some(record) if record["level"] == "ERROR" && record["exit_code"].is_i64() => {
            format!("error: {}", record["message"].as_str().unwrap())
        }
        _ => panic!("no final error record:\n{stderr}"),
    }
}

#[test]
fn a_catalog_stopped_mid_run_fails_the_step_naming_it_leaves_only_whole_commits_and_a_rerun_finishes() {
    // The IdP only keeps the set alive, so that `rest` restarts at the same address.
    let services = PrivateServices::start(&["rest", "idp"]);
    let uri = services.get("FLOE_TEST_REST_URI");
    let token = services.get("FLOE_TEST_REST_TOKEN");
    let root = services.get("FLOE_TEST_REST_WAREHOUSE").trim_start_matches("file://").to_string();
    let state = temp_dir();
    let yaml = format!(
        "version: \"1.1.0\"\n\
         compute:\n  default: {{type: duckdb}}\n\
         catalogs:\n  default: {{type: rest, uri: \"{uri}\", credentials: {{mode: bearer, token: {{secret_ref: rest-token}}}}}}\n\
         storage:\n  default: {{type: local, root: \"{root}\"}}\n"
    );
    let platform_file = state.path().join("platform.yaml");
    std::fs::write(&platform_file, yaml).unwrap();
    let project = example("customer-analytics");
    let args = demo_args(&project, &platform_file, state.path());
    let env = [("REST_TOKEN", token.as_str())];

    let (code, stderr) = run_with_fault(&args, &env, || services.run(&["stop", "rest"]));
    assert_eq!(code, Some(1), "a lost catalog is a retryable step failure:\n{stderr}");
    let error = error_line(&stderr);
    assert!(error.contains(&format!("the REST catalog at {uri} is unreachable")), "names the catalog: {error}");
    assert!(error.starts_with("error: step `"), "the error names the step: {error}");

    // Back at the same address.
    services.run(&["start", "rest"]);
    let pyiceberg = json!({"type": "rest", "uri": uri, "token": token}).to_string();
    only_whole_commits_then_a_rerun_finishes(&["--props", &pyiceberg], &args, &env);
}

#[test]
fn s3_hanging_mid_run_fails_the_step_naming_s3_leaves_only_whole_commits_and_a_rerun_finishes() {
    // moto keeps objects in memory, so S3 is paused (requests hang until
    // opendal's timeouts give up) rather than stopped.
    let services = PrivateServices::start(&["s3"]);
    let endpoint = services.get("FLOE_TEST_S3_ENDPOINT");
    let bucket = services.get("FLOE_TEST_S3_BUCKET");
    let state = temp_dir();
    let yaml = format!(
        "version: \"1.1.0\"\n\
         compute:\n  default: {{type: duckdb}}\n\
         catalogs:\n  default: {{type: sql, uri: \"sqlite:{0}/catalog.db\", warehouse: \"{0}/warehouse\"}}\n\
         storage:\n  default: {{type: s3, endpoint: \"{endpoint}\", bucket: {bucket}, region: us-east-1, \
         path_style_access: true, credentials: {{mode: static, secret_ref: s3-keys}}}}\n",
        state.path().display()
    );
    let platform_file = state.path().join("platform.yaml");
    std::fs::write(&platform_file, yaml).unwrap();
    let project = example("customer-analytics");
    let args = demo_args(&project, &platform_file, state.path());
    let env = [("S3_KEYS_ACCESS_KEY_ID", "testing"), ("S3_KEYS_SECRET_ACCESS_KEY", "testing")];

    let (code, stderr) = run_with_fault(&args, &env, || services.run(&["pause", "s3"]));
    services.run(&["resume", "s3"]);
    assert_eq!(code, Some(1), "a lost object store is a retryable step failure:\n{stderr}");
    let error = error_line(&stderr);
    assert!(error.starts_with("error: step `"), "the error names the step: {error}");
    assert!(error.contains(&format!("S3 at {endpoint} (bucket `{bucket}`) failed")), "the error names S3: {error}");

    let pyiceberg = json!({
        "s3.endpoint": endpoint, "s3.access-key-id": "testing", "s3.secret-access-key": "testing",
        "s3.region": "us-east-1", "s3.path-style-access": "true",
    })
    .to_string();
    let catalog_uri = format!("sqlite:///{}", state.path().join("catalog.db").display());
    let warehouse = format!("file://{}", state.path().join("warehouse").display());
    only_whole_commits_then_a_rerun_finishes(
        &["--catalog-uri", &catalog_uri, "--warehouse", &warehouse, "--props", &pyiceberg],
        &args,
        &env,
    );
}

#[test]
fn a_run_longer_than_its_oauth2_token_refreshes_the_token_and_finishes() {
    // `floe-short` tokens live 3 seconds (tests/services/idp/idp.mjs). The
    // first token is fetched once the plugins are compiled; every step then
    // waits 400 ms before its commit, so the demo's nine steps outlast it
    // however fast the machine is.
    let services = PrivateServices::start(&["rest", "idp"]);
    let state = temp_dir();
    let yaml = format!(
        "version: \"1.1.0\"\n\
         compute:\n  default: {{type: duckdb}}\n\
         catalogs:\n  default: {{type: rest, uri: \"{}\", oauth2_server_uri: \"{}\", credentials: {{mode: oauth2, \
         client_id: floe-short, client_secret: {{secret_ref: short-secret}}}}}}\n\
         storage:\n  default: {{type: local, root: \"{}\"}}\n",
        services.get("FLOE_TEST_REST_URI"),
        services.get("FLOE_TEST_OAUTH_TOKEN_URL"),
        services.get("FLOE_TEST_REST_WAREHOUSE").trim_start_matches("file://"),
    );
    let platform_file = state.path().join("platform.yaml");
    std::fs::write(&platform_file, yaml).unwrap();
    let run = run_demo(
        platform_file.to_str().unwrap(),
        state.path(),
        &[("SHORT_SECRET", "short-secret"), ("FLOE_FAILPOINT", "before-commit:sleep-400")],
    )
    .expect_code(0);
    assert!(run.stdout.contains("gold.daily_revenue"), "{}", run.stdout);
    let log = std::fs::read_to_string(services.dir.path().join("idp.log")).unwrap();
    let tokens = log.matches("idp: token for client 'floe-short'").count();
    // Without refresh the run would hold one token for its whole length; a
    // token is due for refresh halfway through its life, on the next request.
    assert!(tokens >= 2, "the token was never refreshed ({tokens} fetched):\n{log}");
}

#[test]
fn concurrent_partition_runs_on_the_rest_catalog_all_land() {
    // A catalog of its own: the project's tables are `bronze.raw_orders` and
    // `silver.orders`, in namespaces other tests do not use on it.
    let services = PrivateServices::start(&["rest"]);
    let uri = services.get("FLOE_TEST_REST_URI");
    let token = services.get("FLOE_TEST_REST_TOKEN");
    let root = services.get("FLOE_TEST_REST_WAREHOUSE").trim_start_matches("file://").to_string();
    let dir = temp_dir();
    let platform_file = dir.path().join("platform.yaml");
    std::fs::write(
        &platform_file,
        format!(
            "version: \"1.1.0\"\n\
             compute:\n  default: {{type: duckdb}}\n\
             catalogs:\n  default: {{type: rest, uri: \"{uri}\", credentials: {{mode: bearer, token: {{secret_ref: rest-token}}}}}}\n\
             storage:\n  default: {{type: local, root: \"{root}\"}}\n"
        ),
    )
    .unwrap();
    let pyiceberg = json!({"type": "rest", "uri": uri, "token": token}).to_string();
    crate::partitions::concurrent_partition_runs(
        dir.path(),
        &["--platform", platform_file.to_str().unwrap()],
        &[("REST_TOKEN", &token)],
        |tables| {
            let mut args = vec!["--props", &pyiceberg];
            for table in tables {
                args.extend(["--table", table]);
            }
            python_json("partitions_check.py", &args)["tables"].clone()
        },
    );
}

#[test]
fn a_wrong_token_or_warehouse_exits_2_naming_the_catalog_and_what_it_answered() {
    let uri = service("FLOE_TEST_REST_URI");
    let token = service("FLOE_TEST_REST_TOKEN");
    for (warehouse, secret, expected) in [
        (
            service("FLOE_TEST_REST_WAREHOUSE"),
            "rb_not-a-key-7d1e",
            format!("the REST catalog at {uri} answered 401 Unauthorized"),
        ),
        ("no-such-warehouse".to_string(), token.as_str(), "Unknown warehouse 'no-such-warehouse'".to_string()),
    ] {
        let state = temp_dir();
        let platform_file = state.path().join("platform.yaml");
        std::fs::write(
            &platform_file,
            format!(
                "version: \"1.1.0\"\n\
                 compute:\n  default: {{type: duckdb}}\n\
                 catalogs:\n  default: {{type: rest, uri: \"{uri}\", warehouse: \"{warehouse}\", \
                 credentials: {{mode: bearer, token: {{secret_ref: rest-token}}}}}}\n\
                 storage:\n  default: {{type: local, root: \"{}\"}}\n",
                state.path().display()
            ),
        )
        .unwrap();
        let run = run_demo(platform_file.to_str().unwrap(), state.path(), &[("REST_TOKEN", secret)]).expect_code(2);
        assert!(run.stderr.contains("catalog `default`: the catalog refused its config request"), "{}", run.stderr);
        assert!(run.stderr.contains(&expected), "expected `{expected}` in:\n{}", run.stderr);
        assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret), "the token was printed");
        assert!(!run.stdout.contains("Committed step"), "nothing ran");
        // `show` reads through the same catalog, and says the same.
        let project = example("customer-analytics");
        let shown = floe_host_with_env(
            &["show", "gold.daily_revenue", project.to_str().unwrap(), "--platform", platform_file.to_str().unwrap()],
            &[("REST_TOKEN", secret)],
        )
        .expect_code(2);
        assert!(shown.stderr.contains(&expected), "expected `{expected}` in:\n{}", shown.stderr);
    }
}

/// Two writers append to one table that does not exist yet, on the REST
/// catalog: both stage it, and the one held at the `create-table` failpoint
/// commits its create after the other created the table. Its create
/// conflicts, so it reloads the table and appends on top: both land. (A
/// create that reaches rustberg while another is committing can also get a
/// 404, "not staged": rustberg reads the table and the staged record outside
/// its transaction. The host takes that as a lost race too; the window is
/// too narrow to hit on demand, and CI hit it once with four writers.)
#[test]
fn two_writers_creating_one_table_on_the_rest_catalog_both_land() {
    use std::io::BufRead;

    let state = temp_dir();
    let prefix = &format!("race_{}_", std::process::id());
    let platform = platform(prefix, Catalog::RestToken, Storage::Local, state.path());
    let platform_file = platform.write(state.path());
    let dir = state.path();
    for writer in ["a", "b"] {
        let floe = format!(
            "name: race\nplugins:\n  csv-ingest:\n    path: {}\ntransforms:\n\
             \x20 - {{name: events, layer: bronze, kind: ingest, plugin: csv-ingest, source: {writer}.csv, mode: append}}\n",
            serde_json::to_string(crate::support::plugin("csv_ingest.wasm").to_str().unwrap()).unwrap(),
        );
        std::fs::write(dir.join(format!("{writer}.yaml")), floe).unwrap();
        std::fs::write(dir.join(format!("{writer}.csv")), format!("id,who\n1,{writer}\n2,{writer}\n")).unwrap();
    }
    let args = |writer: &str| -> Vec<String> {
        let file = dir.join(format!("{writer}.yaml")).display().to_string();
        let state = dir.join("state").display().to_string();
        ["run", "-f", &file, "--platform", &platform_file, "--state-dir", &state].map(String::from).to_vec()
    };
    let args_a = args("a");
    let mut env_a = platform.env();
    env_a.push(("FLOE_FAILPOINT", "create-table:sleep-8000"));
    let mut held = crate::support::floe_host_command(&args_a.iter().map(String::as_str).collect::<Vec<_>>(), &env_a)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its log, line by line: B starts once A has written its data file.
    let (lines, seen) = std::sync::mpsc::channel();
    let stderr = held.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("The plugin ingested a source object.") {
                let _ = lines.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    seen.recv_timeout(std::time::Duration::from_secs(120)).expect("writer a ingests its source");
    let args_b = args("b");
    floe_host_with_env(&args_b.iter().map(String::as_str).collect::<Vec<_>>(), &platform.env()).expect_code(0);
    let status = held.wait().unwrap();
    let log = reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "writer a:\n{log}");
    assert!(log.contains("Commit conflicted with another writer"), "writer a lost the race:\n{log}");
    let table = python_json(
        "table_check.py",
        &[
            "--props",
            &platform.pyiceberg.to_string(),
            "--table",
            &format!("{prefix}bronze.events"),
            "--order-by",
            "who",
        ],
    );
    assert_eq!(table["rows"], 4, "{table}");
    let who: Vec<&str> = table["records"].as_array().unwrap().iter().map(|r| r["who"].as_str().unwrap()).collect();
    assert_eq!(who, ["a", "a", "b", "b"]);
    assert_eq!(table["snapshots"].as_array().unwrap().len(), 2, "b created the table, a appended");
}
