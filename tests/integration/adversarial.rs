//! The adversarial suite: every plugin in `plugins/evil` breaks one sandbox
//! rule or limit. Through the real binary, a violation must fail its step with
//! exit code 3 and an error naming the step, the plugin and the rule, and must
//! leave the target table at its previous snapshot. Probes that are not
//! violations by themselves (environment, files, network) must see nothing,
//! and nothing they find may reach the table, stdout or stderr. In process,
//! one `Sandbox` must survive all of them and then still ingest a CSV exactly.
//!
//! Without a platform file the binary runs plugins under `Limits::default()`
//! (1 GiB, 60 s per call, 256 MiB per output). The plugins that only stop at a
//! limit (loop, sleep, alloc, huge-output) run through the binary with a
//! platform.yaml whose `plugins:` limits are tight, and in process under the
//! same limits.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use floe_host::sandbox::{IngestPlugin, Limits, Sandbox, SandboxError};

use crate::crafted_wasm;
use crate::support::{Run, floe_host_measured, floe_host_with_env, plugin, temp_dir};

const STEP: &str = "raw_events";
const CSV: &str = "id,name\n1,alpha\n2,beta\n";

/// `plugins/dist/evil_<name>.wasm` for `evil-<name>`.
fn evil(name: &str) -> PathBuf {
    plugin(&format!("evil_{}.wasm", name.replace('-', "_")))
}

/// Compiled components, shared by every project of this module: without it,
/// each temporary state directory would compile csv-ingest again.
fn shared_compile_cache() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("adversarial-compile-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A temporary project whose state directory already holds
/// `bronze.raw_events`, written by csv-ingest from [`CSV`].
struct Project {
    dir: tempfile::TempDir,
    baseline: i64,
}

impl Project {
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes `<file>` with one ingest step into bronze.raw_events.
    fn write_pipeline(&self, file: &str, plugin: &str, path: &Path, config: &[(&str, &str)]) -> PathBuf {
        let q = |s: &str| serde_json::to_string(s).unwrap();
        let config: Vec<String> = config.iter().map(|(k, v)| format!("{}: {}", q(k), q(v))).collect();
        let yaml = format!(
            "name: adversarial\nversion: \"1.0.0\"\nstorage: default\ncatalog: default\ncompute: default\n\
             plugins:\n  {plugin}:\n    path: {path}\n\
             transforms:\n  - name: {STEP}\n    layer: bronze\n    kind: ingest\n    plugin: {plugin}\n    \
             source: events.csv\n    config: {{{config}}}\n",
            path = q(path.to_str().unwrap()),
            config = config.join(", "),
        );
        let file = self.dir.path().join(file);
        std::fs::write(&file, yaml).unwrap();
        file
    }

    /// A project whose state directory holds no table yet.
    fn empty() -> Self {
        let dir = temp_dir();
        std::fs::write(dir.path().join("events.csv"), CSV).unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        std::os::unix::fs::symlink(shared_compile_cache(), dir.path().join("state/component-cache")).unwrap();
        Project { dir, baseline: 0 }
    }

    fn new() -> Self {
        let mut project = Project::empty();
        let good = project.write_pipeline("good.yaml", "csv-ingest", &plugin("csv_ingest.wasm"), &[]);
        let run = project.run(&good, &[]).expect_code(0);
        project.baseline = summary_snapshot(&run.stdout);
        project
    }

    fn run(&self, file: &Path, env: &[(&str, &str)]) -> Run {
        let state = self.state();
        floe_host_with_env(&["run", "-f", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()], env)
    }

    /// `floe-host run` of `file` under the platform file `platform`.
    fn run_on(&self, file: &Path, platform: &Path) -> Run {
        let (file, platform, state) = (file.to_str().unwrap(), platform.to_str().unwrap(), self.state());
        floe_host_with_env(&["run", "-f", file, "--platform", platform, "--state-dir", state.to_str().unwrap()], &[])
    }

    /// `floe-host show bronze.raw_events` for the pipeline `file`.
    fn show(&self, file: &Path) -> Run {
        let state = self.state();
        floe_host_with_env(
            &[
                "show",
                "bronze.raw_events",
                "-f",
                file.to_str().unwrap(),
                "--state-dir",
                state.to_str().unwrap(),
                "--limit",
                "1000",
            ],
            &[],
        )
        .expect_code(0)
    }

    /// Runs `evil-<name>` as the step's plugin; returns the run.
    fn run_evil(&self, name: &str, config: &[(&str, &str)], env: &[(&str, &str)]) -> (PathBuf, Run) {
        let file = self.write_pipeline("evil.yaml", &format!("evil-{name}"), &evil(name), config);
        let run = self.run(&file, env);
        (file, run)
    }

    /// The table's current snapshot id, read back through `show`.
    fn snapshot(&self, file: &Path) -> i64 {
        show_snapshot(&self.show(file).stdout)
    }
}

/// The snapshot id of `raw_events` in a run summary.
fn summary_snapshot(stdout: &str) -> i64 {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(STEP))
        .unwrap_or_else(|| panic!("no summary line for {STEP}:\n{stdout}"));
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// The snapshot id in `show`'s header: "bronze.raw_events (N rows, snapshot S)".
fn show_snapshot(stdout: &str) -> i64 {
    let at = stdout.find("snapshot ").unwrap_or_else(|| panic!("no snapshot in:\n{stdout}")) + "snapshot ".len();
    let digits: String = stdout[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
    digits.parse().unwrap_or_else(|_| panic!("bad snapshot in:\n{stdout}"))
}

/// Runs `evil-<name>` after a good run and checks the violation: exit code,
/// error text (step, plugin, every `expected` piece) and an untouched table.
fn assert_violation(name: &str, config: &[(&str, &str)], code: i32, expected: &[&str]) -> Run {
    let project = Project::new();
    let (file, run) = project.run_evil(name, config, &[]);
    let run = run.expect_code(code);
    let plugin = format!("plugin `evil-{name}`");
    for piece in [format!("step `{STEP}`").as_str(), plugin.as_str()].into_iter().chain(expected.iter().copied()) {
        assert!(run.stderr.contains(piece), "stderr lacks {piece:?}:\n{}", run.stderr);
    }
    assert_eq!(project.snapshot(&file), project.baseline, "evil-{name} must not commit a snapshot");
    run
}

/// The step's first batch starts writing data files before the plugin fails:
/// the new table still never appears, because it is created only in the
/// commit of its first snapshot.
#[test]
fn a_failed_first_step_leaves_no_table() {
    let project = Project::empty();
    let (file, run) = project.run_evil("schema-lie", &[], &[]);
    run.expect_code(3);
    let state = project.state();
    let show = floe_host_with_env(
        &["show", "bronze.raw_events", "-f", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()],
        &[],
    );
    assert!(
        show.stderr.contains("table `bronze.raw_events` does not exist"),
        "exit {:?}, stderr:\n{}",
        show.code,
        show.stderr
    );
}

#[test]
fn stack_overflow_is_a_trap() {
    assert_violation("stack", &[], 3, &["trapped"]);
}

#[test]
fn panic_is_a_trap_with_the_panic_message() {
    assert_violation("panic", &[], 3, &["trapped", "evil-panic: deliberate panic in push"]);
}

#[test]
fn exit_is_a_trap_not_the_end_of_the_host() {
    // std::process::exit(7): WASI 0.2 only carries failure, hence exit(1).
    assert_violation("exit", &[], 3, &["trapped", "the plugin called exit(1)"]);
}

#[test]
fn non_ipc_output_is_malformed() {
    assert_violation("bad-ipc", &[], 3, &["returned malformed Arrow IPC", "invalid message metadata"]);
    assert_violation("bad-ipc", &[("mode", "text")], 3, &["returned malformed Arrow IPC"]);
}

#[test]
fn schema_change_mid_stream_is_refused() {
    assert_violation(
        "schema-lie",
        &[],
        3,
        &["changed its output schema mid-stream", "first (id: Int64 not null), then (id: Utf8 not null)"],
    );
    assert_violation("schema-lie", &[("mode", "batch-mismatch")], 3, &["returned malformed Arrow IPC"]);
}

#[test]
fn output_over_the_default_limit_is_refused() {
    // One byte over the default 256 MiB max_output_bytes.
    assert_violation(
        "huge-output",
        &[],
        3,
        &["returned 268435457 bytes from one call", "output limit (268435456 bytes)"],
    );
}

#[test]
fn missing_import_fails_the_load_and_names_the_interface() {
    let project = Project::new();
    let (file, run) = project.run_evil("missing-import", &[], &[]);
    let run = run.expect_code(3);
    for piece in ["plugin `evil-missing-import`", "imports `evil:probe/exfil`", "which the host does not provide"] {
        assert!(run.stderr.contains(piece), "stderr lacks {piece:?}:\n{}", run.stderr);
    }
    assert_eq!(project.snapshot(&file), project.baseline);
}

#[test]
fn floods_stay_bounded() {
    // 8 MiB to stdout and to stderr, 20 000 log lines of 4 KiB at error level.
    let run = assert_violation("flood", &[], 3, &["trapped", "evil-flood: done flooding", "logs too much"]);
    assert!(run.stderr.len() < 2 << 20, "stderr is {} bytes", run.stderr.len());
    assert!(run.stdout.len() < 64 << 10, "stdout is {} bytes", run.stdout.len());
}

#[test]
fn a_huge_error_message_is_cut() {
    // A plugin that rejects its input is not a contract violation: the data
    // is refused (exit code 4). Its 64 MiB message must not reach stderr whole.
    let run = assert_violation("big-error", &[], 4, &["rejected its input: evil-big-error: xxx", "bytes cut"]);
    assert!(run.stderr.len() < 64 << 10, "stderr is {} bytes", run.stderr.len());
    assert!(!run.stderr.contains("END-OF-BIG-ERROR"));
}

/// A platform.yaml over the project's state directory (the same catalog and
/// warehouse as the embedded default) with tight limits: a 500 ms deadline
/// ([`TIGHT`]),
/// 64 MiB of memory and 1 MiB of output per call.
fn tight_platform(project: &Project) -> PathBuf {
    let state = project.state();
    let q = |s: String| serde_json::to_string(&s).unwrap();
    let yaml = format!(
        "catalogs:\n  default:\n    type: sql\n    uri: {uri}\n    warehouse: {warehouse}\n\
         storage:\n  default:\n    type: local\n    root: {warehouse}\n\
         compute:\n  default:\n    type: duckdb\n\
         plugins:\n  memory_limit: 64MiB\n  call_timeout: 500ms\n  max_output_bytes: 1MiB\n",
        uri = q(format!("sqlite:{}", state.join("catalog.db").display())),
        warehouse = q(state.join("warehouse").display().to_string()),
    );
    let file = project.dir.path().join("platform.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

#[test]
fn platform_limits_stop_loops_sleeps_hoards_and_floods_of_output() {
    // One project (one good run) for every case: each violation must leave
    // the table at the same baseline snapshot.
    let project = Project::new();
    let platform = tight_platform(&project);
    let bound = TIGHT + Duration::from_secs(10);
    let cases: [(&str, &[(&str, &str)], &[&str]); 5] = [
        ("loop", &[], &["exceeded its deadline (500ms per call)"]),
        ("sleep", &[("mode", "sleep")], &["exceeded its deadline (500ms per call)"]),
        ("sleep", &[("mode", "poll")], &["exceeded its deadline (500ms per call)"]),
        ("alloc", &[], &["exceeded its memory limit (67108864 bytes)"]),
        (
            "huge-output",
            &[("bytes", "1048577")],
            &["returned 1048577 bytes from one call", "output limit (1048576 bytes)"],
        ),
    ];
    for (name, config, expected) in cases {
        let file = project.write_pipeline("evil.yaml", &format!("evil-{name}"), &evil(name), config);
        let started = Instant::now();
        let run = project.run_on(&file, &platform);
        let took = started.elapsed();
        let run = run.expect_code(3);
        let plugin = format!("plugin `evil-{name}`");
        for piece in [format!("step `{STEP}`").as_str(), plugin.as_str()].into_iter().chain(expected.iter().copied()) {
            assert!(run.stderr.contains(piece), "evil-{name} {config:?}: stderr lacks {piece:?}:\n{}", run.stderr);
        }
        // A sleep of an hour ends at the deadline, not with the process.
        assert!(took < bound, "evil-{name} {config:?} took {took:?}");
        assert_eq!(project.snapshot(&file), project.baseline, "evil-{name} {config:?} must not commit a snapshot");
    }
}

/// Runs a probe into a fresh table, which it may write (its findings are the
/// rows); returns the run and the table as `show` prints it.
fn probe(name: &str, config: &[(&str, &str)], env: &[(&str, &str)]) -> (Run, String) {
    let project = Project::new();
    let file = project.write_pipeline("probe.yaml", &format!("evil-{name}"), &evil(name), config);
    // Own table: the findings have another schema than raw_events.
    let yaml = std::fs::read_to_string(&file).unwrap().replace(&format!("name: {STEP}"), "name: probe_findings");
    std::fs::write(&file, yaml).unwrap();
    let run = project.run(&file, env).expect_code(0);
    let state = project.state();
    let show = floe_host_with_env(
        &[
            "show",
            "bronze.probe_findings",
            "-f",
            file.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--limit",
            "1000",
        ],
        &[],
    )
    .expect_code(0);
    (run, show.stdout)
}

fn assert_absent(what: &str, needle: &str, run: &Run, table: &str) {
    for (place, text) in [("stdout", &run.stdout), ("stderr", &run.stderr), ("the table", &table.to_owned())] {
        assert!(!text.contains(needle), "{what} leaked into {place}:\n{text}");
    }
}

#[test]
fn environment_is_invisible() {
    let secret = format!("floe-env-secret-{}", std::process::id());
    let (run, table) = probe("env", &[], &[("FLOE_TEST_SECRET", &secret), ("FLOE_LOG", "warn,floe::plugin=trace")]);
    assert_absent("the secret", &secret, &run, &table);
    // The probe ran and reported: the variable is unset, there are no variables
    // and no arguments (a leak would put them in the table).
    for piece in ["env FLOE_TEST_SECRET", "unset: ", "env count", "args count"] {
        assert!(table.contains(piece), "table lacks {piece:?}:\n{table}");
    }
    assert!(!table.contains("env PATH") && !table.contains("env HOME"), "{table}");
    // The log lines are forwarded (at error level), so a leak there would show.
    assert!(run.stderr.contains("env FLOE_TEST_SECRET: unset"), "{}", run.stderr);
}

#[test]
fn files_are_invisible() {
    let secrets = temp_dir();
    let secret = format!("floe-file-secret-{}", std::process::id());
    let path = secrets.path().join("token");
    std::fs::write(&path, &secret).unwrap();
    let (run, table) = probe("file", &[("probe_path", path.to_str().unwrap())], &[]);
    assert_absent("the secret file", &secret, &run, &table);
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let first = passwd.lines().next().unwrap();
    assert_absent("/etc/passwd", first, &run, &table);
    for piece in ["read /etc/passwd", "read /var/run/secrets/kubernetes.io/serviceaccount/token", "list /"] {
        assert!(table.contains(piece), "table lacks {piece:?}:\n{table}");
    }
    assert!(!table.contains(" bytes: "), "a read succeeded:\n{table}");
    assert!(!table.contains("listed:") && !table.contains("wrote"), "a listing or write succeeded:\n{table}");
    assert!(!Path::new(&format!("{}.evil", path.display())).exists(), "the plugin wrote next to the secret");
}

#[test]
fn network_is_unreachable() {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let addr = tcp.local_addr().unwrap().to_string();
    // The same port on UDP, for the datagram the probe sends to `addr`.
    let udp = UdpSocket::bind(&addr).unwrap();
    udp.set_nonblocking(true).unwrap();

    let (run, table) = probe("socket", &[("addr", &addr)], &[]);
    match tcp.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the listener got a connection: {other:?}"),
    }
    let mut buf = [0u8; 64];
    match udp.recv_from(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the UDP socket got a datagram: {other:?}"),
    }
    for piece in [format!("tcp connect {addr}"), format!("udp send {addr}"), "resolve localhost:80".to_owned()] {
        assert!(table.contains(&piece), "table lacks {piece:?}:\n{table}");
    }
    // The attempts reached the host's (denying) socket checks, not a stub.
    assert!(!table.to_lowercase().contains("unsupported"), "{table}");
    for leak in ["connected", "sent ", "resolved:"] {
        assert!(!table.contains(leak), "the probe reports {leak:?}:\n{table}\n{}", run.stderr);
    }
}

// ---------------------------------------------------------------------------
// In process: one sandbox, every evil plugin, then a good run.

fn wasm(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(sandbox: &Sandbox, name: &str, path: &Path) -> Result<IngestPlugin, SandboxError> {
    // Compiling is the slow part under load; do it once per component.
    static FIRST_LOAD: Mutex<()> = Mutex::new(());
    let _guard = FIRST_LOAD.lock().unwrap_or_else(|e| e.into_inner());
    sandbox.load_ingest(name, &wasm(path))
}

fn ingest(plugin: &IngestPlugin, config: &[(&str, &str)], input: &[u8]) -> Result<Vec<RecordBatch>, SandboxError> {
    let config: BTreeMap<String, String> = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut batches = Vec::new();
    plugin.ingest(STEP, &config, "events.csv", &mut &input[..], &mut |b| {
        batches.push(b);
        Ok(())
    })?;
    Ok(batches)
}

const TIGHT: Duration = Duration::from_millis(500);

fn tight_sandbox() -> Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX
        .get_or_init(|| {
            let limits =
                Limits { memory_bytes: 64 << 20, call_timeout: TIGHT, max_output_bytes: 1 << 20, ..Limits::default() };
            Sandbox::new(limits, Some(shared_compile_cache())).unwrap()
        })
        .clone()
}

/// Runs `evil-<name>` in `sandbox`; returns the error, which must be a
/// contract violation naming the step and plugin, and how long it took.
fn violation(sandbox: &Sandbox, name: &str, config: &[(&str, &str)]) -> (SandboxError, Duration) {
    let plugin_name = format!("evil-{name}");
    let plugin = load(sandbox, &plugin_name, &evil(name)).unwrap_or_else(|e| panic!("load {plugin_name}: {e}"));
    let started = Instant::now();
    let err = ingest(&plugin, config, CSV.as_bytes()).expect_err(&plugin_name);
    let elapsed = started.elapsed();
    let text = err.to_string();
    assert!(err.is_contract_violation(), "{plugin_name}: {err:?}");
    assert!(text.starts_with(&format!("step `{STEP}`: plugin `{plugin_name}` ")), "{text}");
    (err, elapsed)
}

#[test]
fn one_sandbox_survives_every_evil_plugin() {
    let sandbox = tight_sandbox();
    let bound = TIGHT + Duration::from_secs(3);

    let (err, took) = violation(&sandbox, "loop", &[]);
    assert!(matches!(err, SandboxError::Deadline { limit: TIGHT, .. }), "{err:?}");
    assert!(err.to_string().contains("exceeded its deadline (500ms per call)"), "{err}");
    assert!(took < bound, "{took:?}");

    // A blocking host call (wasi:io/poll) must end at the deadline too.
    for mode in ["sleep", "poll"] {
        let (err, took) = violation(&sandbox, "sleep", &[("mode", mode)]);
        assert!(matches!(err, SandboxError::Deadline { .. }), "{mode}: {err:?}");
        assert!(err.to_string().contains("exceeded its deadline (500ms per call)"), "{err}");
        assert!(took < bound, "{mode}: {took:?}");
    }

    let (err, _) = violation(&sandbox, "alloc", &[]);
    assert!(matches!(err, SandboxError::Memory { limit: 67108864, .. }), "{err:?}");
    assert!(err.to_string().contains("exceeded its memory limit (67108864 bytes)"), "{err}");

    let (err, _) = violation(&sandbox, "huge-output", &[("bytes", "1048577")]);
    assert!(matches!(err, SandboxError::OutputTooLarge { size: 1048577, limit: 1048576, .. }), "{err:?}");

    let (err, _) = violation(&sandbox, "stack", &[]);
    assert!(matches!(err, SandboxError::Trap { .. }), "{err:?}");

    let (err, _) = violation(&sandbox, "panic", &[]);
    assert!(
        matches!(&err, SandboxError::Trap { report, .. } if report.output_tail.contains("evil-panic: deliberate panic")),
        "{err:?}"
    );

    let (err, _) = violation(&sandbox, "exit", &[]);
    assert!(matches!(&err, SandboxError::Trap { message, .. } if message == "the plugin called exit(1)"), "{err:?}");

    for config in [&[][..], &[("mode", "text")][..]] {
        let (err, _) = violation(&sandbox, "bad-ipc", config);
        assert!(matches!(err, SandboxError::MalformedOutput { .. }), "{err:?}");
    }

    let (err, _) = violation(&sandbox, "schema-lie", &[]);
    assert!(matches!(err, SandboxError::SchemaChanged { .. }), "{err:?}");
    let (err, _) = violation(&sandbox, "schema-lie", &[("mode", "batch-mismatch")]);
    assert!(matches!(err, SandboxError::MalformedOutput { .. }), "{err:?}");

    // Under the tight deadline a debug build may not finish flooding: either
    // way, what the error quotes stays bounded.
    let (err, _) = violation(&sandbox, "flood", &[]);
    assert!(matches!(err, SandboxError::Trap { .. } | SandboxError::Deadline { .. }), "{err:?}");
    assert!(err.to_string().len() < 64 << 10, "the report is {} bytes", err.to_string().len());

    let err = load(&sandbox, "evil-missing-import", &evil("missing-import")).err().expect("missing import");
    assert!(
        matches!(&err, SandboxError::MissingImport { import, .. } if import.starts_with("evil:probe/exfil")),
        "{err:?}"
    );
    assert!(err.is_contract_violation());

    // A plugin error with a 1.5 MiB message: reported, not a violation, cut.
    // One of 4 MiB is more than a call may pass (1 MiB of output here, plus
    // 1 MiB): refused before the host copies it, a violation.
    let big_error = load(&sandbox, "evil-big-error", &evil("big-error")).unwrap();
    let err = ingest(&big_error, &[("bytes", "1572864")], CSV.as_bytes()).unwrap_err();
    assert!(matches!(err, SandboxError::InvalidInput { .. }), "{err:?}");
    assert!(!err.is_contract_violation());
    assert!(err.to_string().len() < 16 << 10, "{} bytes", err.to_string().len());
    let err = ingest(&big_error, &[("bytes", "4194304")], CSV.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("it passed more than 2097152 bytes to the host in one call"), "{err}");
    assert!(err.is_contract_violation());

    // A log string outside the plugin's memory fails in wasmtime's copy,
    // whose error would carry a backtrace of the plugin's own function names
    // (any text, any length): the host reports the failure, not the names.
    let (err, _) = violation(&sandbox, "flood", &[("mode", "bad-log")]);
    let text = err.to_string();
    assert!(matches!(err, SandboxError::Trap { .. }) && text.contains("out of bounds"), "{err:?}");
    assert!(!text.contains("forged_frame_name") && !text.contains("backtrace"), "{text}");

    // The probes see nothing and say so.
    for name in ["env", "file", "socket"] {
        let probe = load(&sandbox, &format!("evil-{name}"), &evil(name)).unwrap();
        let batches = ingest(&probe, &[("addr", "127.0.0.1:9")], CSV.as_bytes()).unwrap();
        assert!(batches.iter().map(|b| b.num_rows()).sum::<usize>() > 0, "evil-{name} reported nothing");
    }

    // The same sandbox still runs a good plugin, exactly.
    let csv = load(&sandbox, "csv-ingest", &plugin("csv_ingest.wasm")).unwrap();
    let batches = ingest(&csv, &[], CSV.as_bytes()).unwrap();
    let column = |name: &str| -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| {
                let col = b.column_by_name(name).unwrap().as_string::<i32>().clone();
                (0..col.len()).map(move |i| col.value(i).to_owned())
            })
            .collect()
    };
    assert_eq!(column("id"), ["1", "2"]);
    assert_eq!(column("name"), ["alpha", "beta"]);
    let rows: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column_by_name("_row").unwrap().as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(rows, [1, 2]);
}

// ---------------------------------------------------------------------------
// Crafted Arrow: small on the wire, huge or broken once decoded or cast.

/// `evil-ipc-bomb` sends one crafted stream per `attack`: each must be
/// refused with exit 3 before the host decodes it into anything large, in
/// seconds, and leave the table at its snapshot.
#[test]
fn crafted_arrow_is_refused_before_it_costs_anything() {
    let project = Project::new();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("attack", "view-bomb")], "view types are not accepted"),
        (&[("attack", "binary-view-bomb")], "view types are not accepted"),
        (&[("attack", "dictionary")], "dictionary-encoded columns are not accepted"),
        (&[("attack", "delta-dictionary")], "dictionary-encoded columns are not accepted"),
        (&[("attack", "null-rows")], "columns of type Null are not accepted"),
        (&[("attack", "empty-struct")], "nested types are not accepted"),
        (&[("attack", "fsl-zero")], "nested types are not accepted"),
        // arrow's flatbuffer verifier stops at 64 levels, before any check of ours.
        (
            &[("attack", "deep")],
            "returned malformed Arrow IPC: invalid message metadata: Nested table depth limit reached",
        ),
        (&[("attack", "names"), ("names", "id,id")], "columns 1 and 2 are both named `id`"),
        (&[("attack", "names"), ("names", "ID,id")], "both named `id` (names must be unique, ignoring case)"),
        (&[("attack", "names"), ("names", ",x")], "column 1 has an empty name"),
        (&[("attack", "names"), ("names", "a\\0b")], "control character: `a\\u{0}b`"),
        (&[("attack", "names"), ("names", "a\\nb")], "control character: `a\\nb`"),
        (&[("attack", "many-columns")], "more than the 4096 accepted"),
        // 4,096 columns over one 1 MiB buffer: 16 GiB once cast to Int32.
        (
            &[("attack", "aliased")],
            "returned malformed Arrow IPC: a record batch's buffers add up to 4294967296 bytes, more than its \
             1048576-byte body: buffers may not share bytes",
        ),
    ];
    for (config, expected) in cases {
        let started = Instant::now();
        let file = project.write_pipeline("evil.yaml", "evil-ipc-bomb", &evil("ipc-bomb"), config);
        let state = project.state();
        let (run, peak) =
            floe_host_measured(&["run", "-f", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()], &[]);
        let took = started.elapsed();
        let run = run.expect_code(3);
        // What the host may hold: the plugin's output (17 MB here), its
        // instance and the host's own few hundred MiB; far below what any of
        // these streams costs once decoded or cast (from gigabytes to a TiB).
        assert!(peak < 1 << 30, "{config:?}: the host peaked at {} MiB", peak >> 20);
        let refused = if expected.contains("malformed") { "" } else { "returned output the host does not accept" };
        for piece in [&format!("step `{STEP}`"), "plugin `evil-ipc-bomb`", refused, expected] {
            assert!(run.stderr.contains(piece), "{config:?}: stderr lacks {piece:?}:\n{}", run.stderr);
        }
        assert!(took < Duration::from_secs(60), "{config:?} took {took:?}");
        assert_eq!(project.snapshot(&file), project.baseline, "{config:?} must not commit a snapshot");
    }
}

/// Field ids and schema metadata from a plugin do not reach the writer: the
/// column lands under its own name with the plugin's values.
#[test]
fn plugin_metadata_is_dropped_at_the_boundary() {
    let project = Project::empty();
    let (file, run) = project.run_evil("ipc-bomb", &[("attack", "field-id")], &[]);
    run.expect_code(0);
    let show = project.show(&file).stdout;
    assert!(show.contains("(3 rows,"), "{show}");
    let values: Vec<&str> = show.lines().skip(1).flat_map(|l| l.split('|')).map(str::trim).collect();
    for value in ["id", "1", "2", "3"] {
        assert!(values.contains(&value), "{value} missing:\n{show}");
    }
}

/// In process, the same stream bombs end as `OutputRefused` naming the
/// plugin, and the sandbox goes on to ingest a CSV exactly.
#[test]
fn one_sandbox_refuses_every_crafted_stream() {
    // Room for the full-size bombs (17 MB on the wire), so that the guard,
    // not the output limit, is what stops them.
    let limits = Limits { max_output_bytes: 64 << 20, ..Limits::default() };
    let sandbox = Sandbox::new(limits, Some(shared_compile_cache())).unwrap();
    let bomb = load(&sandbox, "evil-ipc-bomb", &evil("ipc-bomb")).unwrap();
    for attack in ["view-bomb", "dictionary", "delta-dictionary", "null-rows", "empty-struct", "run-end"] {
        let err = ingest(&bomb, &[("attack", attack)], CSV.as_bytes()).expect_err(attack);
        assert!(err.is_contract_violation(), "{attack}: {err:?}");
        assert!(matches!(err, SandboxError::OutputRefused { .. }), "{attack}: {err:?}");
        assert!(err.to_string().starts_with(&format!("step `{STEP}`: plugin `evil-ipc-bomb` ")), "{err}");
    }
    let csv = load(&sandbox, "csv-ingest", &plugin("csv_ingest.wasm")).unwrap();
    let rows: usize = ingest(&csv, &[], CSV.as_bytes()).unwrap().iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 2);
}

/// A working plugin (csv-ingest) with core instances appended: many
/// memories that each fit the limit and together do not, a memory count over
/// the cap, and tables that look small one by one. Each run ends in exit 3
/// naming the plugin, before the memories cost the host their size, and
/// commits nothing.
#[test]
fn many_memories_and_tables_share_one_limit() {
    let project = Project::new();
    let platform = tight_platform(&project); // 64 MiB for all memories and tables
    let csv_ingest = std::fs::read(plugin("csv_ingest.wasm")).unwrap();
    let cases = [
        // 15 memories of 128 MiB, each touched page by page as it is
        // instantiated: 1.9 GiB of resident memory if nothing counted them.
        (
            "memories",
            crafted_wasm::with_instances(&csv_ingest, &crafted_wasm::memory_toucher(2048), 15),
            "exceeded its memory limit (67108864 bytes)",
        ),
        // 100 memories of one page: within the limit, over the count.
        (
            "memory-count",
            crafted_wasm::with_instances(&csv_ingest, &crafted_wasm::memory_toucher(1), 100),
            "memory count too high",
        ),
        // 8 tables of a million elements: 128 MiB of bookkeeping at 16 bytes each.
        (
            "tables",
            crafted_wasm::with_instances(&csv_ingest, &crafted_wasm::table_holder(1 << 20), 8),
            "exceeded its memory limit (67108864 bytes)",
        ),
    ];
    for (name, component, expected) in cases {
        let wasm = project.dir.path().join(format!("{name}.wasm"));
        std::fs::write(&wasm, &component).unwrap();
        let file = project.write_pipeline("evil.yaml", &format!("evil-{name}"), &wasm, &[]);
        let (file_arg, platform_arg, state) = (file.to_str().unwrap(), platform.to_str().unwrap(), project.state());
        let args = ["run", "-f", file_arg, "--platform", platform_arg, "--state-dir", state.to_str().unwrap()];
        // Twice: the first run also compiles the component (in a child
        // whose peak counts here too); the second loads it from the cache,
        // so its peak is the instance's and the host's.
        let mut peak = 0;
        for _ in 0..2 {
            let (run, measured) = floe_host_measured(&args, &[]);
            let run = run.expect_code(3);
            let plugin = format!("plugin `evil-{name}`");
            for piece in [format!("step `{STEP}`").as_str(), plugin.as_str(), expected] {
                assert!(run.stderr.contains(piece), "{name}: stderr lacks {piece:?}:\n{}", run.stderr);
            }
            peak = measured;
        }
        // The 64 MiB of the instance and the host's own (about 70 MiB here
        // in all). With the limit raised to 8 GiB, the 15 memories took the
        // host past 650 MiB before the 500 ms deadline stopped them.
        assert!(peak < 256 << 20, "{name}: the host peaked at {} MiB", peak >> 20);
        assert_eq!(project.snapshot(&file), project.baseline, "{name} must not commit a snapshot");
    }
}

// ---------------------------------------------------------------------------
// Compilation happens before any sandbox limit: the binary compiles in a
// bounded child process, and every bound ends in exit 3 naming the plugin.

#[test]
fn compilation_is_bounded_in_size_memory_and_time() {
    let cases = [
        ("max_component_size: 1KiB", "over `plugins.max_component_size` (1024 bytes)"),
        ("compile_memory_limit: 1MiB", "cannot be compiled within its limits"),
        ("compile_timeout: 1ms", "compiling took longer than `plugins.compile_timeout` (1ms)"),
    ];
    for (limit, expected) in cases {
        // A state directory of its own: nothing is in its compile cache.
        let dir = temp_dir();
        std::fs::write(dir.path().join("events.csv"), CSV).unwrap();
        let project = Project { dir, baseline: 0 };
        let file = project.write_pipeline("good.yaml", "csv-ingest", &plugin("csv_ingest.wasm"), &[]);
        let platform = tight_platform(&project);
        let yaml = std::fs::read_to_string(&platform).unwrap().replace("plugins:\n", &format!("plugins:\n  {limit}\n"));
        std::fs::write(&platform, yaml).unwrap();
        let state = project.state();
        let run = project.run_on(&file, &platform).expect_code(3);
        for piece in ["plugin `csv-ingest`", expected] {
            assert!(run.stderr.contains(piece), "{limit}: stderr lacks {piece:?}:\n{}", run.stderr);
        }
        // Nothing was cached for a compile that did not finish.
        let cached = std::fs::read_dir(state.join("component-cache"))
            .map(|d| d.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "cwasm")).count())
            .unwrap_or(0);
        assert_eq!(cached, 0, "{limit}");
    }
}

/// Components that are cheap to send and expensive to compile, appended to a
/// working plugin as modules that never run: each compile is stopped at its
/// bound, the run exits 3 naming the plugin, and nothing is cached.
#[test]
fn compile_bombs_are_stopped_at_their_bounds() {
    let csv_ingest = std::fs::read(plugin("csv_ingest.wasm")).unwrap();
    // 200,000 nested blocks: 1.4 MB, and minutes of Cranelift (its time
    // grows with the square of the depth).
    let deep = crafted_wasm::with_module(&csv_ingest, &crafted_wasm::nested_blocks(200_000));
    // Eight functions of two million live values: 48 MB, well under the
    // component size limit, and about 450 MB for the compiler.
    let mut wide = csv_ingest.clone();
    for _ in 0..8 {
        wide = crafted_wasm::with_module(&wide, &crafted_wasm::wide_stack(2_000_000));
    }
    let cases = [
        ("deep", deep, "compile_timeout: 5s", "compiling took longer than `plugins.compile_timeout` (5s)"),
        (
            "wide",
            wide,
            "compile_memory_limit: 128MiB",
            "compiling needed more than `plugins.compile_memory_limit` (134217728 bytes)",
        ),
    ];
    for (name, component, limit, expected) in cases {
        let dir = temp_dir();
        std::fs::write(dir.path().join("events.csv"), CSV).unwrap();
        let project = Project { dir, baseline: 0 };
        let wasm = project.dir.path().join(format!("{name}.wasm"));
        std::fs::write(&wasm, &component).unwrap();
        let file = project.write_pipeline("evil.yaml", &format!("evil-{name}"), &wasm, &[]);
        let platform = tight_platform(&project);
        let yaml = std::fs::read_to_string(&platform).unwrap().replace("plugins:\n", &format!("plugins:\n  {limit}\n"));
        std::fs::write(&platform, yaml).unwrap();
        let started = Instant::now();
        let run = project.run_on(&file, &platform).expect_code(3);
        let took = started.elapsed();
        for piece in [format!("plugin `evil-{name}` cannot be compiled within its limits").as_str(), expected] {
            assert!(run.stderr.contains(piece), "{name}: stderr lacks {piece:?}:\n{}", run.stderr);
        }
        // A hang check only: the bound, not the bomb, ends the compile.
        assert!(took < Duration::from_secs(120), "{name} took {took:?}");
        let cached = std::fs::read_dir(project.state().join("component-cache"))
            .map(|d| d.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "cwasm")).count())
            .unwrap_or(0);
        assert_eq!(cached, 0, "{name}");
        let tables = project.state().join("warehouse/bronze");
        assert!(!tables.join(STEP).exists(), "{name}: no table may appear");
    }
}

/// A compiled artifact that the host did not write (here: csv-ingest's,
/// copied over evil-loop's entry, as a hostile step once could) is not run:
/// the pinned plugin is compiled again from its own bytes.
#[test]
fn a_swapped_cache_entry_is_not_trusted() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("events.csv"), CSV).unwrap();
    let project = Project { dir, baseline: 0 };
    let state = project.state();
    // Both plugins compiled once into this project's own cache.
    let good = project.write_pipeline("good.yaml", "csv-ingest", &plugin("csv_ingest.wasm"), &[]);
    project.run(&good, &[]).expect_code(0);
    let (evil_file, _) = project.run_evil("exit", &[], &[]);
    let cache = state.join("component-cache");
    let entry = |wasm: &Path| {
        let digest = floe_host::sandbox::sha256_hex(&std::fs::read(wasm).unwrap());
        std::fs::read_dir(&cache)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&digest))
            .unwrap_or_else(|| panic!("no cache entry for {}", wasm.display()))
    };
    // evil-exit's entry now holds csv-ingest's compiled code and tag.
    std::fs::copy(entry(&plugin("csv_ingest.wasm")), entry(&evil("exit"))).unwrap();
    let run = project.run(&evil_file, &[]).expect_code(3);
    assert!(run.stderr.contains("the plugin called exit(1)"), "evil-exit must run as itself:\n{}", run.stderr);
    assert!(run.stderr.contains("did not write") || !run.stderr.is_empty());
}

/// A plugin that spends most of each call's deadline on every call cannot
/// stretch its step: all its calls share `plugins.step_timeout`.
#[test]
fn a_step_ends_at_its_budget_however_the_calls_are_spread() {
    let project = Project::new();
    let platform = tight_platform(&project);
    let yaml = std::fs::read_to_string(&platform).unwrap().replace("plugins:\n", "plugins:\n  step_timeout: 2s\n");
    std::fs::write(&platform, yaml).unwrap();
    // Eight 1 MiB chunks: eight pushes of 400 ms each, under the 500 ms call
    // deadline, 3.2 s in all.
    let line = "1,alpha\n".repeat(1 << 17);
    std::fs::write(project.dir.path().join("events.csv"), format!("id,name\n{}", line.repeat(8))).unwrap();
    let file = project.write_pipeline("evil.yaml", "evil-sleep", &evil("sleep"), &[("ms", "400")]);
    let started = Instant::now();
    let run = project.run_on(&file, &platform).expect_code(3);
    let took = started.elapsed();
    assert!(
        run.stderr.contains("plugin `evil-sleep` used up its time budget (`plugins.step_timeout`: 2s)"),
        "{}",
        run.stderr
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(project.snapshot(&file), project.baseline);

    // In process: the same, with 4-byte chunks (seven pushes of 300 ms), under a 1 s budget.
    let limits =
        Limits { call_timeout: TIGHT, step_timeout: Duration::from_secs(1), chunk_bytes: 4, ..Limits::default() };
    let sandbox = Sandbox::new(limits, Some(shared_compile_cache())).unwrap();
    let sleepy = load(&sandbox, "evil-sleep", &evil("sleep")).unwrap();
    let started = Instant::now();
    let err = ingest(&sleepy, &[("ms", "300")], CSV.as_bytes()).unwrap_err();
    assert!(matches!(err, SandboxError::Budget { budget: "step_timeout", .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

/// `evil-config-schema` declares a schema built to hurt the host that checks
/// configs against it: a pattern exponential for backtracking engines, text
/// that would forge a log line, a Pipes message or a cursor move, and a
/// 60 KB description. `validate` and `run` refuse the step's config (exit
/// 2) in linear time, quote the plugin's text escaped and cut, and commit
/// nothing.
#[test]
fn a_hostile_config_schema_is_checked_in_bounds_and_quoted_escaped() {
    let project = Project::new();
    // `^(a+)+$` against 40 `a`s and a `!`: 2^40 steps for a backtracking engine.
    let attack = format!("{}!", "a".repeat(40));
    let config = [("k", attack.as_str()), ("mode", "off")];
    let file = project.write_pipeline("evil.yaml", "evil-config-schema", &evil("config-schema"), &config);
    let state = project.state();
    let (file_arg, state_arg) = (file.to_str().unwrap(), state.to_str().unwrap());
    let started = Instant::now();
    let validate = floe_host_with_env(&["validate", "-f", file_arg, "--state-dir", state_arg], &[]).expect_code(2);
    let run = project.run(&file, &[]).expect_code(2);
    assert!(started.elapsed() < Duration::from_secs(120), "the checks took {:?}", started.elapsed());
    for out in [&validate, &run] {
        let stderr = &out.stderr;
        assert!(
            stderr.contains("does not match the pattern `^(a+)+$` (plugin `evil-config-schema`'s config schema)"),
            "{stderr}"
        );
        assert!(
            stderr.contains("missing `missing\\n{\"__dagster_pipes_version\""),
            "escaped in the message:\n{stderr}"
        );
        assert!(stderr.contains("is not one of \"on\\n{"), "{stderr}");
        // The 60 KB description is quoted cut, at 200 characters.
        assert!(stderr.contains(&format!("`k`: {}…", "x".repeat(200))), "{stderr}");
        assert!(stderr.len() < 8_000, "{} bytes of stderr", stderr.len());
        for line in stderr.lines() {
            assert!(!line.contains('\u{1b}') && !line.contains('\u{2028}'), "raw control text:\n{line}");
            assert!(!line.trim_start().starts_with("{\"__dagster_pipes_version\""), "a forged Pipes line:\n{stderr}");
            assert!(!line.starts_with("ERROR forged"), "a forged log line:\n{stderr}");
        }
    }
    assert_eq!(project.snapshot(&file), project.baseline, "evil-config-schema must not commit a snapshot");
}

/// `evil-hostile-values` outputs values built to escape wherever the host
/// quotes them. dbt data tests that fail on them (an `error`
/// accepted_values, a `warn` unique) quote failing values as examples in the
/// error, the log, lineage and Pipes: escaped and cut, never raw; the step
/// commits nothing.
#[test]
fn failing_values_are_quoted_escaped_in_data_test_reports() {
    // No table yet: the step's output is new, so only the data tests stop it.
    let project = Project::empty();
    let file = project.write_pipeline("evil.yaml", "evil-hostile-values", &evil("hostile-values"), &[]);
    let schema = project.dir.path().join("models/schema.yml");
    std::fs::create_dir_all(schema.parent().unwrap()).unwrap();
    std::fs::write(
        &schema,
        format!(
            "version: 2\nmodels:\n  - name: {STEP}\n    columns:\n      - name: status\n        data_tests:\n\
             \x20         - unique: {{config: {{severity: warn}}}}\n\
             \x20         - accepted_values: {{arguments: {{values: [ok]}}}}\n"
        ),
    )
    .unwrap();
    let run = project.run(&file, &[]).expect_code(4);
    let stderr = &run.stderr;
    assert!(stderr.contains("accepted_values(status): 10 failing rows (e.g. \\u{1b}[2J"), "{stderr}");
    assert!(stderr.contains("x\\n{\"__dagster_pipes_version\""), "escaped in the message:\n{stderr}");
    assert!(stderr.contains("unique(status)"), "the warn test is logged:\n{stderr}");
    assert!(stderr.len() < 8_000, "{} bytes of stderr: the 100 KB value must be cut", stderr.len());
    for line in stderr.lines() {
        assert!(!line.contains('\u{1b}') && !line.contains('\u{2028}'), "raw control text:\n{line}");
        assert!(!line.trim_start().starts_with("{\"__dagster_pipes_version\""), "a forged Pipes line:\n{stderr}");
        assert!(
            !line.trim_start().starts_with("{\"level\":\"ERROR\",\"message\":\"forged"),
            "a forged record:\n{stderr}"
        );
    }
    let state = project.state();
    let show = floe_host_with_env(
        &["show", "bronze.raw_events", "-f", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()],
        &[],
    );
    assert!(show.stderr.contains("table `bronze.raw_events` does not exist"), "nothing committed:\n{}", show.stderr);
}

/// Arrow carries any bit pattern in a decimal, time, date or timestamp
/// column; DuckDB does not compute with all of them (a time of 24 hours is
/// an INTERNAL error that invalidates its database, a decimal past its
/// precision is stored truncated). `evil-hostile-values` sends each one
/// value past its type's domain: the host refuses it where it enters,
/// naming the column, the row and the value, and commits nothing.
#[test]
fn values_outside_their_types_domain_are_refused_where_they_enter() {
    for (case, expected) in [
        (
            "decimal",
            "column `amount` holds -10000000000.00 in row 1 of a batch: more digits than its type decimal(12,2) holds",
        ),
        ("time", "column `t` holds a time of 86400000000 µs after midnight in row 1 of a batch"),
        (
            "date",
            "column `d` holds day -96465293 since 1970-01-01 in row 0 of a batch, outside the years -262143 to 262142",
        ),
        ("timestamp", "column `ts` holds 8210266876800000000 µs since 1970-01-01 in row 1 of a batch"),
    ] {
        assert_violation(
            "hostile-values",
            &[("values", case)],
            3,
            &["returned output the host does not accept", expected],
        );
    }
}

/// The edges of those domains are values like any other: they are stored,
/// and a model downstream computes with every one of them.
#[test]
fn values_at_the_edges_of_their_domains_reach_a_model_intact() {
    let project = Project::empty();
    let plugin = evil("hostile-values");
    std::fs::create_dir_all(project.dir.path().join("models")).unwrap();
    std::fs::write(
        project.dir.path().join("models/shown.sql"),
        "SELECT id, amount::VARCHAR AS amount, amount * 2 AS doubled, t::VARCHAR AS t, hour(t) AS h, \
         d::VARCHAR AS d, year(d) AS yd, ts::VARCHAR AS ts, year(ts_utc) AS yts FROM bronze.raw_events",
    )
    .unwrap();
    let file = project.dir.path().join("floe.yaml");
    std::fs::write(
        &file,
        format!(
            "name: edges\nplugins:\n  evil-hostile-values:\n    path: {path:?}\n\
             transforms:\n  - {{name: {STEP}, layer: bronze, kind: ingest, plugin: evil-hostile-values, \
             source: events.csv, config: {{values: edges}}}}\n  \
             - {{name: shown, layer: silver, kind: sql, sql: models/shown.sql}}\n",
            path = plugin.to_str().unwrap()
        ),
    )
    .unwrap();
    project.run(&file, &[]).expect_code(0);
    let state = project.state();
    let show = floe_host_with_env(
        &["show", "silver.shown", "-f", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()],
        &[],
    )
    .expect_code(0);
    for piece in [
        "9999999999.99",
        "-9999999999.99",
        "19999999999.98",
        "00:00:00",
        "23:59:59.999999",
        "262142-12-31",
        "262142-12-31 23:59:59.999999",
        "(BC)",
        "262142",
    ] {
        assert!(show.stdout.contains(piece), "show lacks {piece:?}:\n{}", show.stdout);
    }
    assert!(show.stdout.contains("(2 rows"), "{}", show.stdout);
}

/// A Parquet writer holds a row group's pages in memory until the row group
/// is complete. Bounded by rows only, 122,880 rows of 64 KiB would be 7.5 GiB
/// of the host's memory. `evil-hostile-values` returns rows of 64 KiB of
/// random bytes (they do not compress), 1,024 per call: every row group
/// stays within 128 MiB and the one batch that may start it, and twice the
/// output (640 MiB) takes the host no more memory than 320 MiB did.
#[test]
fn wide_rows_are_written_in_row_groups_of_bounded_bytes() {
    let run = |mib: usize| {
        let project = Project::empty();
        // One push per MiB of source, of 1,024 rows of 64 KiB each.
        std::fs::write(project.dir.path().join("events.csv"), vec![b'x'; mib << 20]).unwrap();
        let file = project.write_pipeline(
            "wide.yaml",
            "evil-hostile-values",
            &evil("hostile-values"),
            &[("values", "wide"), ("rows", "1024"), ("bytes", "65536")],
        );
        let state = project.state();
        let (run, peak) =
            floe_host_measured(&["run", "-f", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()], &[]);
        run.expect_code(0);
        let data = project.state().join("warehouse/bronze/raw_events/data");
        let (mut rows, mut groups, mut largest) = (0i64, 0usize, 0i64);
        for path in crate::support::parquet_paths(&data) {
            let file = std::fs::File::open(&path).unwrap();
            let footer = parquet::file::metadata::ParquetMetaDataReader::new().parse_and_finish(&file).unwrap();
            for group in footer.row_groups() {
                rows += group.num_rows();
                groups += 1;
                largest = largest.max(group.compressed_size());
            }
        }
        assert_eq!(rows, mib as i64 * 1024, "every row written");
        assert!(largest <= (128 << 20) + (64 << 20) + (1 << 20), "a row group of {largest} bytes in {groups}");
        assert!(groups >= mib / 3, "{groups} row groups for {mib} pushes of 64 MiB");
        peak
    };
    let (five, ten) = (run(5), run(10));
    assert!(
        ten < five + (128 << 20),
        "the host's peak grew with its output: {} MiB for 320 MiB, {} MiB for 640 MiB",
        five >> 20,
        ten >> 20
    );
}

#[test]
fn a_plugin_cannot_make_the_host_copy_more_than_one_output() {
    // wasmtime copies what a plugin passes to the host (a log line, an
    // error, an output fragment) before the host sees it. One log line of
    // 600 MiB, under the default limits (1 GiB of memory, 256 MiB of output
    // per call): refused before it is copied, so the host's peak is the
    // plugin's memory, not twice it.
    let bytes = (600usize << 20).to_string();
    let run = |mode: &str| {
        let project = Project::empty();
        let file = project.write_pipeline(
            "copy.yaml",
            "evil-flood",
            &evil("flood"),
            &[("mode", mode), ("bytes", bytes.as_str())],
        );
        let state = project.state();
        floe_host_measured(&["run", "-f", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()], &[])
    };
    let (logged, logged_peak) = run("big-log");
    let logged = logged.expect_code(3);
    let limit = (256u64 << 20) + (1 << 20);
    for piece in [
        format!(
            "step `{STEP}`: plugin `evil-flood` trapped: it passed more than {limit} bytes to the host in one call"
        ),
        "`plugins.max_output_bytes` plus 1048576 bytes".to_owned(),
    ] {
        assert!(logged.stderr.contains(&piece), "stderr lacks {piece:?}:\n{}", logged.stderr);
    }
    assert!(!logged.stderr.contains("evil-flood: logged"), "the plugin went on after its log:\n{}", logged.stderr);
    let (held, held_peak) = run("hold");
    assert!(held.stderr.contains(&format!("evil-flood: held {bytes} bytes")), "{}", held.stderr);
    assert!(
        logged_peak < held_peak + (128 << 20),
        "logging 600 MiB took the host to {} MiB, holding them to {} MiB",
        logged_peak >> 20,
        held_peak >> 20
    );

    // An output fragment past the limit and the margin: the same refusal
    // (1 MiB of output per call here), the table untouched.
    let project = Project::new();
    let platform = tight_platform(&project);
    let file = project.write_pipeline("big.yaml", "evil-huge-output", &evil("huge-output"), &[("bytes", "3145728")]);
    let run = project.run_on(&file, &platform).expect_code(3);
    let piece = "plugin `evil-huge-output` trapped: it passed more than 2097152 bytes to the host in one call";
    assert!(run.stderr.contains(piece), "stderr lacks {piece:?}:\n{}", run.stderr);
    assert_eq!(project.snapshot(&file), project.baseline, "a refused output must not commit a snapshot");
}

#[test]
fn a_plugin_cannot_scatter_its_rows_over_unbounded_partitions() {
    // The plugin picks the partition values: `wide` returns ids 0..2000
    // again from every push (one per MiB of source), so with
    // `partition_by: [id]` its rows go round robin over more partitions than
    // a write keeps open (1,024 for two columns). Each push reopens them as
    // new files, until the write stops at 20,000 and deletes them all.
    let project = Project::empty();
    std::fs::write(project.dir.path().join("events.csv"), vec![b'x'; 16 << 20]).unwrap();
    let file = project.write_pipeline(
        "scatter.yaml",
        "evil-hostile-values",
        &evil("hostile-values"),
        &[("values", "wide"), ("rows", "2000"), ("bytes", "8")],
    );
    let yaml = std::fs::read_to_string(&file)
        .unwrap()
        .replace("    source: events.csv\n", "    source: events.csv\n    partition_by: [id]\n");
    std::fs::write(&file, yaml).unwrap();
    let state = project.state();
    let (run, peak) =
        floe_host_measured(&["run", "-f", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()], &[]);
    let run = run.expect_code(4);
    for piece in [
        format!("step `{STEP}`"),
        "table `bronze.raw_events`: the step's rows fall in no order over more partitions than the 1024".to_owned(),
        "it made 20000 data files".to_owned(),
    ] {
        assert!(run.stderr.contains(&piece), "stderr lacks {piece:?}:\n{}", run.stderr);
    }
    let left = crate::support::parquet_paths(&state.join("warehouse/bronze/raw_events/data")).len();
    assert_eq!(left, 0, "data files left");
    let args = ["show", "bronze.raw_events", "-f", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()];
    let shown = floe_host_with_env(&args, &[]).expect_code(1);
    assert!(shown.stderr.contains("table `bronze.raw_events` does not exist"), "{}", shown.stderr);
    // 1,024 open writers of two columns, not 20,000 files' worth.
    assert!(peak < 1 << 30, "the host peaked at {} MiB", peak >> 20);
}
