//! Shared test helpers: running the real `floe-host` binary, locating the
//! repository, the built plugins and the Python test peers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

/// A built plugin component, e.g. `csv_ingest.wasm`.
pub fn plugin(file: &str) -> PathBuf {
    let dist = std::env::var_os("FLOE_PLUGIN_DIST").map(PathBuf::from).unwrap_or_else(|| repo().join("plugins/dist"));
    let path = dist.join(file);
    assert!(path.is_file(), "{} is missing: run scripts/build-plugins.sh (scripts/test.sh does)", path.display());
    path
}

/// The Python of the test venv (pyiceberg), set up by scripts/setup.sh.
pub fn python() -> PathBuf {
    let venv = std::env::var_os("FLOE_VENV").expect("FLOE_VENV is not set: run the tests with scripts/test.sh");
    let python = PathBuf::from(venv).join("bin/python");
    assert!(python.is_file(), "{} is missing: run scripts/setup.sh", python.display());
    python
}

/// The outcome of one `floe-host` invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
}

/// Runs `floe-host` with `args`, with no platform variables leaking in from
/// the environment.
pub fn floe_host(args: &[&str]) -> Run {
    floe_host_with_env(args, &[])
}

/// [`floe_host`] with extra environment variables.
pub fn floe_host_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    Run::from(floe_host_command(args, env).output().expect("floe-host runs"))
}

/// The `floe-host` command with `args` and `env`, and no platform variables
/// from the test's own environment; for runs a test spawns and watches.
pub fn floe_host_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_floe-host"));
    // Text logs unless a test asks for JSON (`--log-format json` or `env`):
    // error texts read as users see them at a terminal.
    command.env("FLOE_LOG_FORMAT", "text");
    command
        .args(args)
        .env_remove("FLOE_PLATFORM_FILE")
        .env_remove("FLOE_PLATFORM_ENV")
        .env_remove("FLOE_STATE_DIR")
        .env_remove("FLOE_RUN_ID")
        .envs(env.iter().copied());
    command
}

/// Runs a Python test peer script from `tests/py` and parses its JSON output.
pub fn python_json(script: &str, args: &[&str]) -> serde_json::Value {
    let output =
        Command::new(python()).arg(repo().join("tests/py").join(script)).args(args).output().expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} {args:?} failed\n--- stdout\n{stdout}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stdout}"))
}

/// The official OpenLineage 2-0-2 JSON schemas: `$FLOE_OPENLINEAGE_SCHEMAS`
/// (scripts/test.sh sets it), else `../shared/openlineage/2-0-2` next to
/// the repository.
pub fn openlineage_schemas() -> PathBuf {
    let dir = std::env::var_os("FLOE_OPENLINEAGE_SCHEMAS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/openlineage/2-0-2"));
    assert!(
        dir.join("OpenLineage.json").is_file(),
        "no OpenLineage schemas at {}: set FLOE_OPENLINEAGE_SCHEMAS to the shared 2-0-2 folder",
        dir.display()
    );
    dir
}

/// A fresh temporary directory.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("floe-test-").tempdir().expect("temp dir")
}

/// The Parquet files under `dir`, at any depth (none if it does not exist):
/// a table's data files, committed or orphaned.
pub fn parquet_files(dir: &Path) -> usize {
    parquet_paths(dir).len()
}

/// What a step left of its data: the `.parquet` files of `table`
/// (`silver.stg_customers`) in the warehouse under `state`, and any DuckDB
/// scratch file in the state directory.
pub fn step_files(state: &Path, table: &str) -> Vec<PathBuf> {
    let (namespace, name) = table.split_once('.').unwrap();
    let mut found = parquet_paths(&state.join("warehouse").join(namespace).join(name));
    found.extend(parquet_paths(&state.join("duckdb-out")));
    found
}

/// The paths of the Parquet files under `dir`, at any depth.
pub fn parquet_paths(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found = Vec::new();
    for path in entries.flatten().map(|entry| entry.path()) {
        if path.is_dir() {
            found.extend(parquet_paths(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            found.push(path);
        }
    }
    found
}

/// The values of a Utf8 column across batches.
pub fn strings(batches: &[arrow_array::RecordBatch], name: &str) -> Vec<Option<String>> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name(name).expect(name).as_string::<i32>().clone();
            (0..col.len()).map(move |i| col.is_valid(i).then(|| col.value(i).to_owned()))
        })
        .collect()
}

/// The values of an Int64 column across batches.
pub fn ints(batches: &[arrow_array::RecordBatch], name: &str) -> Vec<i64> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    batches
        .iter()
        .flat_map(|b| b.column_by_name(name).expect(name).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

/// `Some(v.to_owned())`, for expected string columns.
pub fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// The real test services (rustberg, the OAuth2 IdP, moto) started by
/// `scripts/services.sh`: their settings from the environment that
/// `scripts/test.sh` exports, or else from the env file of a running set.
pub fn service(name: &str) -> String {
    static FILE: std::sync::OnceLock<std::collections::HashMap<String, String>> = std::sync::OnceLock::new();
    if let Ok(value) = std::env::var(name) {
        return value;
    }
    let file = FILE.get_or_init(|| {
        let dir = std::env::var_os("FLOE_SERVICES_DIR").map(PathBuf::from).unwrap_or_else(|| {
            let cache = std::env::var_os("FLOE_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/floe-host"));
            cache.join("run/services")
        });
        let text = std::fs::read_to_string(dir.join("services.env")).unwrap_or_default();
        text.lines()
            .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect()
    });
    file.get(name).cloned().unwrap_or_else(|| {
        panic!("{name} is not set: the test services are not running; start them with `scripts/services.sh start` (scripts/test.sh does)")
    })
}

/// Runs `floe-host` like [`floe_host_with_env`] and also returns the peak
/// resident memory of that process, or of the largest of its own children
/// (compile children, SQL workers), in bytes. `wait4`'s rusage is the one
/// process's, with what it reaped, unlike `getrusage(RUSAGE_CHILDREN)`.
pub fn floe_host_measured(args: &[&str], env: &[(&str, &str)]) -> (Run, u64) {
    use std::io::Read;
    use std::process::Stdio;
    let mut child =
        floe_host_command(args, env).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("floe-host runs");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    let run = Run { code, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() };
    // ru_maxrss is in KiB on Linux.
    (run, usage.ru_maxrss as u64 * 1024)
}

/// An HTTP/1.1 server on 127.0.0.1 that records every request and answers
/// `200 OK` to each (one request per connection): a stand-in collector for
/// lineage and OTLP senders, which only need a listener that answers.
pub struct HttpReceiver {
    pub port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<HttpRequest>>>,
}

/// One request as [`HttpReceiver`] saw it.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

impl HttpReceiver {
    pub fn start() -> HttpReceiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let shared = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(request) = read_request(stream) {
                    shared.lock().unwrap().push(request);
                }
            }
        });
        HttpReceiver { port, requests }
    }

    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// Reads one request (request line, headers, Content-Length body) and answers 200.
fn read_request(stream: std::net::TcpStream) -> Option<HttpRequest> {
    use std::io::{BufRead, Read, Write};
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut length, mut content_type, mut authorization) = (0, None, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim().to_string();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok()?,
            "content-type" => content_type = Some(value),
            "authorization" => authorization = Some(value),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = reader.into_inner();
    let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    Some(HttpRequest { method, path, content_type, authorization, body })
}

/// A project in `dir`: bronze by the Rust csv-ingest, silver by the hostile
/// component `wasm` (a file of plugins/dist) with `config`, under tight
/// plugin limits (256 MiB, 3 s a call). Runs it with `env`.
pub fn run_hostile(dir: &Path, wasm: &str, config: &str, env: &[(&str, &str)]) -> Run {
    let state = dir.join("state");
    std::fs::write(dir.join("events.csv"), "id,name\n1,a\n2,b\n").unwrap();
    let q = |p: &Path| serde_json::to_string(p.to_str().unwrap()).unwrap();
    let platform = dir.join("platform.yaml");
    std::fs::write(
        &platform,
        format!(
            "catalogs:\n  default: {{type: sql, uri: {uri}, warehouse: {wh}}}\n\
             storage:\n  default: {{type: local, root: {wh}}}\n\
             compute:\n  default: {{type: duckdb}}\n\
             plugins:\n  memory_limit: 256MiB\n  call_timeout: 3s\n",
            uri = q(&PathBuf::from(format!("sqlite:{}", state.join("catalog.db").display()))),
            wh = q(&state.join("warehouse")),
        ),
    )
    .unwrap();
    let floe = dir.join("hostile.yaml");
    std::fs::write(
        &floe,
        format!(
            "name: hostile\nplugins:\n  csv-ingest: {{path: {csv}}}\n  evil: {{path: {evil}}}\ntransforms:\n\
             \x20 - {{name: raw_events, layer: bronze, kind: ingest, plugin: csv-ingest, source: {source}}}\n\
             \x20 - {{name: events, layer: silver, kind: wasm, plugin: evil, inputs: [bronze.raw_events], config: {config}}}\n",
            csv = q(&plugin("csv_ingest.wasm")),
            evil = q(&plugin(wasm)),
            source = q(&dir.join("events.csv")),
        ),
    )
    .unwrap();
    let args = ["run", "-f", floe.to_str().unwrap(), "--platform", platform.to_str().unwrap()];
    floe_host_with_env(&[&args[..], &["--state-dir", state.to_str().unwrap()]].concat(), env)
}

/// Whether `run_hostile`'s project in `dir` has a silver.events table, as
/// pyiceberg sees it.
pub fn hostile_silver_exists(dir: &Path) -> bool {
    let state = dir.join("state");
    let check = Command::new(python())
        .arg(repo().join("tests/py/table_check.py"))
        .args(["--state-dir", state.to_str().unwrap(), "--table", "silver.events"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() || stdout.contains("NoSuchTable"), "table_check.py failed: {stdout}");
    check.status.success()
}
