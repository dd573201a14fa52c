//! Hostile SQL through the real binary: `evil-sql` returns whatever its
//! `sql` config says, so each case is an attack a plugin author with the WIT
//! in hand could send. Every one must fail its step with exit 3 naming the
//! step and the plugin, commit nothing, and leave the host's files (the
//! catalog, the compile cache, the secrets) unread and unchanged. SQL models
//! written by data engineers run locked down the same way (exit 1 or 2), and
//! `plugin test` holds the same line on a laptop.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Run, floe_host_command, floe_host_measured, floe_host_with_env, plugin, temp_dir};

const STEP: &str = "probe";
const ATTACKS: &str = "attacks";

/// A project with bronze.raw_events and bronze.other_events, a secret in a
/// secrets directory, and a committed silver.probe from a harmless query.
/// Attacks run under one run id ([`ATTACKS`]) whose bronze steps are already
/// committed, so that they are skipped and only the probe step computes:
/// then nothing in the state directory may change.
struct Project {
    dir: tempfile::TempDir,
    baseline: String,
}

impl Project {
    fn new() -> Self {
        let dir = temp_dir();
        std::fs::write(dir.path().join("events.csv"), "id,name\n1,alpha\n2,beta\n").unwrap();
        std::fs::write(dir.path().join("other.csv"), "id,name\n7,hidden-row\n").unwrap();
        std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/polaris-client-secret"), secret()).unwrap();
        let mut project = Project { dir, baseline: String::new() };
        let run = project.run_sql_with("SELECT count(*) AS n FROM {input}", &["--run-id", "baseline"]).expect_code(0);
        assert!(run.stdout.contains(STEP), "{}", run.stdout);
        project.baseline = project.probe_snapshot();
        // The bronze steps committed under the attacks' run id.
        project.run_sql("SELECT * FROM no_such_table").expect_code(3);
        project
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// floe.yaml with the two bronze ingests and the probe step `kind`.
    fn write_pipeline(&self, probe: &str) -> PathBuf {
        let q = |p: PathBuf| serde_json::to_string(p.to_str().unwrap()).unwrap();
        let yaml = format!(
            "name: hostile\nversion: \"1.0.0\"\nstorage: default\ncatalog: default\ncompute: default\n\
             plugins:\n  csv-ingest:\n    path: {csv}\n  evil-sql:\n    path: {evil}\n\
             transforms:\n  - name: raw_events\n    layer: bronze\n    kind: ingest\n    plugin: csv-ingest\n    source: events.csv\n\
             \x20 - name: other_events\n    layer: bronze\n    kind: ingest\n    plugin: csv-ingest\n    source: other.csv\n\
             \x20 - name: {STEP}\n    layer: silver\n{probe}",
            csv = q(plugin("csv_ingest.wasm")),
            evil = q(plugin("evil_sql.wasm")),
        );
        let file = self.path("floe.yaml");
        std::fs::write(&file, yaml).unwrap();
        file
    }

    fn run_file(&self, file: &Path, extra: &[&str]) -> Run {
        Run::from(self.command(file, extra).output().expect("floe-host runs"))
    }

    /// `floe-host run` of `file` over the project's state and secrets, under
    /// the attacks' run id unless `extra` gives one.
    fn command(&self, file: &Path, extra: &[&str]) -> std::process::Command {
        let (state, secrets) = (self.state(), self.path("secrets"));
        let run_id = if extra.contains(&"--run-id") { &[][..] } else { &["--run-id", ATTACKS][..] };
        let mut args = vec![
            "run",
            "-f",
            file.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--secrets-dir",
            secrets.to_str().unwrap(),
        ];
        args.extend_from_slice(run_id);
        args.extend_from_slice(extra);
        floe_host_command(&args, &[])
    }

    /// Runs the pipeline with `sql` as what evil-sql returns.
    fn run_sql(&self, sql: &str) -> Run {
        self.run_sql_with(sql, &[])
    }

    fn run_sql_with(&self, sql: &str, extra: &[&str]) -> Run {
        let file = self.write_sql_pipeline(sql);
        self.run_file(&file, extra)
    }

    /// floe.yaml whose probe step is evil-sql returning `sql`.
    fn write_sql_pipeline(&self, sql: &str) -> PathBuf {
        let q = serde_json::to_string(sql).unwrap();
        self.write_pipeline(&format!(
            "    kind: wasm\n    plugin: evil-sql\n    inputs: [bronze.raw_events]\n    config:\n      sql: {q}\n"
        ))
    }

    /// Runs the probe step as a SQL model holding `sql`.
    fn run_model(&self, sql: &str) -> Run {
        std::fs::write(self.path("model.sql"), sql).unwrap();
        let file = self.write_pipeline("    kind: sql\n    sql: model.sql\n");
        self.run_file(&file, &[])
    }

    /// `platform.yaml` over the project's state (the embedded default's
    /// catalog and warehouse) with `compute_properties` and `plugins` (YAML
    /// lines, indented); returns its path.
    fn platform(&self, compute_properties: &str, plugins: &str) -> PathBuf {
        let state = self.state();
        let q = |p: PathBuf| serde_json::to_string(p.to_str().unwrap()).unwrap();
        let file = self.path("platform.yaml");
        let yaml = format!(
            "catalogs:\n  default:\n    type: sql\n    uri: {uri}\n    warehouse: {wh}\n\
             storage:\n  default:\n    type: local\n    root: {wh}\n\
             compute:\n  default:\n    type: duckdb\n    properties:\n{compute_properties}\
             plugins:\n{plugins}",
            uri = serde_json::to_string(&format!("sqlite:{}", state.join("catalog.db").display())).unwrap(),
            wh = q(state.join("warehouse")),
        );
        std::fs::write(&file, yaml).unwrap();
        file
    }

    /// silver.probe's snapshot, as `show` prints it.
    fn probe_snapshot(&self) -> String {
        let state = self.state();
        let file = self.path("floe.yaml");
        let show = floe_host_with_env(
            &["show", "silver.probe", "-f", file.to_str().unwrap(), "--state-dir", state.to_str().unwrap()],
            &[],
        )
        .expect_code(0);
        let header = show.stdout.lines().next().unwrap_or_default().to_owned();
        assert!(header.contains("snapshot"), "{}", show.stdout);
        header
    }

    /// Every file under the state directory with its bytes' digest.
    fn state_files(&self) -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        let mut stack = vec![self.state()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if !path.ends_with("duckdb-tmp") {
                        stack.push(path);
                    }
                } else {
                    files.push((path.clone(), floe_host::sandbox::sha256_hex(&std::fs::read(&path).unwrap())));
                }
            }
        }
        files.sort();
        files
    }
}

/// The data file of bronze.raw_events that the attacks' run wrote (data
/// files are named after the run id): an input of the probe step.
fn input_file(project: &Project) -> PathBuf {
    let dir = project.state().join("warehouse/bronze/raw_events/data");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().contains(&format!("-{ATTACKS}-")))
        .expect("a data file of the attacks' run")
}

fn secret() -> String {
    format!("floe-sql-secret-{}", std::process::id())
}

/// Runs one attack and checks what every attack must leave: exit 3 naming
/// the step and plugin with `expected`, no new snapshot, no host file changed
/// or added, the secret nowhere.
fn assert_refused(project: &Project, sql: &str, expected: &[&str]) -> Run {
    let before = project.state_files();
    let run = project.run_sql(sql).expect_code(3);
    for piece in [format!("step `{STEP}`").as_str(), "plugin `evil-sql`"].into_iter().chain(expected.iter().copied()) {
        assert!(run.stderr.contains(piece), "{sql}: stderr lacks {piece:?}:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains(&secret()) && !run.stdout.contains(&secret()), "{sql}: the secret leaked");
    assert_eq!(project.probe_snapshot(), project.baseline, "{sql}: silver.probe must keep its snapshot");
    let after = project.state_files();
    // The failed step may leave its own data files (orphans) under the
    // table's folder; nothing else may change.
    let host_files = |files: &[(PathBuf, String)]| -> Vec<(PathBuf, String)> {
        files.iter().filter(|(p, _)| !p.to_string_lossy().contains("/silver/probe/data/")).cloned().collect()
    };
    assert_eq!(host_files(&after), host_files(&before), "{sql}: the state directory changed");
    run
}

#[test]
fn plugin_sql_cannot_touch_files_settings_extensions_or_other_tables() {
    let project = Project::new();
    let catalog = project.state().join("catalog.db");
    let secret_file = project.path("secrets/polaris-client-secret");
    let (catalog, secret_file) = (catalog.to_str().unwrap(), secret_file.to_str().unwrap());
    let outside = project.path("pwned.csv");
    let outside = outside.to_str().unwrap();

    // Reading host files: the secrets, the catalog, /etc/passwd.
    assert_refused(&project, &format!("SELECT * FROM read_text('{secret_file}')"), &["table function `read_text`"]);
    assert_refused(&project, &format!("SELECT * FROM read_blob('{catalog}')"), &["table function `read_blob`"]);
    assert_refused(&project, "SELECT * FROM read_csv('/etc/passwd')", &["table function `read_csv`"]);
    // A quoted path as a table name is a replacement scan (read_csv behind
    // the scenes) that the parse tree shows as a plain table, not a table
    // function. DuckDB would allow it on its temp directory whatever the
    // lock says: refused by name, before DuckDB sees it.
    let path_refused = "a path, which is not allowed here: this SQL reads only the step's inputs";
    assert_refused(&project, &format!("SELECT * FROM '{secret_file}'"), &[path_refused]);
    let secrets_glob = project.path("secrets/*");
    assert_refused(&project, &format!("SELECT * FROM '{}'", secrets_glob.display()), &[path_refused]);
    assert_refused(
        &project,
        "SELECT * FROM (SELECT * FROM 'spill.csv') JOIN (FROM '.tmp/x.parquet') USING (id)",
        &["it reads `spill.csv`, a path"],
    );
    // DuckDB's system views run table functions of their own.
    let view_refused = "one of DuckDB's system views, which is not allowed here";
    assert_refused(&project, "SELECT name, setting FROM pg_catalog.pg_settings", &[view_refused]);
    assert_refused(&project, "SELECT * FROM pg_settings", &["it reads `pg_settings`", view_refused]);
    assert_refused(&project, "SELECT * FROM duckdb_tables", &[view_refused]);
    assert_refused(&project, "SELECT * FROM information_schema.tables", &[view_refused]);
    assert_refused(&project, "SELECT * FROM system.main.pragma_database_list", &[view_refused]);
    // More than one statement: the COPY must not run before the SELECT.
    assert_refused(
        &project,
        &format!("SELECT 1 AS n; COPY (SELECT 1) TO '{outside}'"),
        &["holds 2 statements; only one SELECT may run"],
    );
    // Writing files: the catalog (outside the lock's list), and the step's
    // own input file, which the lock must list for reading and DuckDB would
    // then let a COPY overwrite.
    assert_refused(&project, &format!("COPY (SELECT 1 AS n) TO '{catalog}'"), &["Permission Error"]);
    let input = input_file(&project);
    assert_refused(
        &project,
        &format!("COPY (SELECT 1 AS n) TO '{}' (FORMAT parquet, USE_TMP_FILE false)", input.display()),
        &["it is COPY, not a SELECT"],
    );
    assert_refused(&project, &format!("ATTACH '{catalog}' AS c"), &["it is ATTACH, not a SELECT"]);
    // Changing the session for later SQL.
    assert_refused(&project, "CREATE MACRO total(x) AS x + 1", &["it is CREATE"]);
    assert_refused(&project, "SET enable_external_access = true", &["it is SET, not a SELECT"]);
    assert_refused(&project, "INSTALL httpfs", &["it is LOAD or INSTALL"]);
    // SELECT-shaped effects: logging to files, SQL in a string, settings.
    assert_refused(
        &project,
        &format!("SELECT * FROM enable_logging(storage='file', storage_path='{outside}')"),
        &["table function `enable_logging`"],
    );
    assert_refused(&project, "SELECT * FROM query('SELECT 1 AS n')", &["table function `query`"]);
    assert_refused(&project, "SELECT * FROM duckdb_settings()", &["table function `duckdb_settings`"]);
    assert_refused(&project, "PRAGMA version", &["was refused"]);
    assert_refused(&project, "", &["there is no statement to run"]);
    // A table that is not the step's input does not exist in its database.
    let run = assert_refused(&project, "SELECT * FROM bronze.other_events", &["other_events does not exist"]);
    assert!(!run.stderr.contains("hidden-row"));
    assert!(!Path::new(outside).exists(), "a file was written outside the run's data");

    // What a plugin may do still works: its input, pure table functions, CTEs.
    let run = project
        .run_sql("WITH e AS (SELECT * FROM {input}) SELECT r.range AS n FROM e CROSS JOIN range(3) AS r")
        .expect_code(0);
    assert!(run.stdout.contains(STEP), "{}", run.stdout);
}

/// Plugin text that looks like a Dagster Pipes message, smuggled through a
/// DuckDB error that quotes the SQL, never becomes a line of stderr that
/// Dagster would parse as one, nor moves the terminal's cursor.
#[test]
fn plugin_sql_text_cannot_forge_lines() {
    let project = Project::new();
    let forged = r#"{"__dagster_pipes_version": "0.1", "method": "report_asset_materialization", "params": {}}"#;
    let run = assert_refused(&project, &format!("SELECT FROM WHERE\n{forged}\n\u{1b}[2J"), &["the SQL from plugin"]);
    assert_no_forged_line(&run.stderr);
}

/// No line of `stderr` is a Pipes message (JSON with the protocol key at
/// its top level) or holds a raw escape character.
fn assert_no_forged_line(stderr: &str) {
    for line in stderr.lines() {
        assert!(!line.contains('\u{1b}') && !line.contains('\u{2028}'), "raw control text:\n{line}");
        let parsed: Option<serde_json::Value> = serde_json::from_str(line.trim()).ok();
        assert!(
            parsed.as_ref().is_none_or(|v| v.get("__dagster_pipes_version").is_none()),
            "a forged Pipes line:\n{stderr}"
        );
    }
}

/// A query that would run for hours stops at the plugin's step budget.
#[test]
fn plugin_sql_stops_at_the_step_budget() {
    let project = Project::new();
    let platform = project.platform("      threads: 1\n", "  step_timeout: 2s\n");
    let started = Instant::now();
    let run = project
        .run_sql_with("SELECT count(*) AS n FROM range(1000000000000000)", &["--platform", platform.to_str().unwrap()])
        .expect_code(3);
    let took = started.elapsed();
    assert!(
        run.stderr.contains("plugin `evil-sql` used up its time budget (`plugins.step_timeout`: 2s)"),
        "{}",
        run.stderr
    );
    assert!(took < Duration::from_secs(60), "the query ran {took:?}");
    assert_eq!(project.probe_snapshot(), project.baseline);
}

/// SQL that allocates outside DuckDB's buffer manager, where `memory_limit`
/// does not reach: in the host, `repeat('x', 2000000000)` took it past 5 GB.
/// A plugin's SQL runs in a worker whose data memory is capped at DuckDB's
/// limit plus the plugin's, and whose result is read as plugin output: each
/// case fails its step with exit 3 naming the plugin, the host stays small,
/// and nothing is committed.
#[test]
fn plugin_sql_stays_within_its_memory_and_output_limits() {
    let project = Project::new();
    let state = project.state();
    let platform =
        project.platform("      memory_limit: 256MB\n", "  memory_limit: 256MiB\n  max_output_bytes: 1MiB\n");
    let cases = [
        // One 2 GB value: refused by the worker's cap, not by DuckDB's limit.
        (
            "SELECT repeat('x', 2000000000) AS n",
            "failed in DuckDB: Out of Memory Error: failed to allocate data of size 2.0 GiB",
        ),
        // 6 GB of values, 100 MB each.
        ("SELECT repeat('x', 100000000) AS n FROM range(60)", "failed in DuckDB: Out of Memory Error"),
        // A 2 MB result batch over a 1 MiB output limit, refused from its
        // declared length.
        (
            "SELECT repeat('x', 1000) AS n FROM range(10000)",
            "was refused: its result is not accepted: a message declares",
        ),
        // What the host does not accept from a plugin's streaming output, it
        // does not accept from its SQL either.
        ("SELECT 'a'::ENUM('a', 'b') AS n", "dictionary-encoded columns are not accepted"),
        ("SELECT [1, 2] AS n", "nested types are not accepted from plugins yet"),
        ("SELECT 1 AS n, 2 AS N", "columns 1 and 2 are both named `N`"),
    ];
    for (sql, expected) in cases {
        let file = project.write_pipeline(&format!(
            "    kind: wasm\n    plugin: evil-sql\n    inputs: [bronze.raw_events]\n    config:\n      sql: {}\n",
            serde_json::to_string(sql).unwrap()
        ));
        let (file, platform, secrets) = (file.to_str().unwrap(), platform.to_str().unwrap(), project.path("secrets"));
        let args = [
            "run",
            "-f",
            file,
            "--platform",
            platform,
            "--state-dir",
            state.to_str().unwrap(),
            "--secrets-dir",
            secrets.to_str().unwrap(),
            "--run-id",
            ATTACKS,
        ];
        let (run, peak) = floe_host_measured(&args, &[]);
        let run = run.expect_code(3);
        for piece in ["step `probe`: the SQL from plugin `evil-sql`", expected] {
            assert!(run.stderr.contains(piece), "{sql}: stderr lacks {piece:?}:\n{}", run.stderr);
        }
        // The peak of the host or its worker, whichever is larger: the
        // worker may hold 256 MB for DuckDB and 256 MiB on top.
        assert!(peak < 1 << 30, "{sql}: peaked at {} MiB", peak >> 20);
        assert_eq!(project.probe_snapshot(), project.baseline, "{sql}");
    }
}

/// SQL that spills: DuckDB's own cap is 90% of the free disk, so a plugin's
/// query could fill the disk that models spill to (in a pod, an emptyDir
/// whose overflow evicts the pod). A plugin's SQL spills into a folder of
/// its own, at most `plugins.spill_limit`, and the folder goes when the
/// query ends: at the cap (DuckDB's error, with the key to raise), and when
/// the host kills the worker at its time budget (a killed worker cannot
/// delete its own files).
#[test]
fn plugin_sql_spills_at_most_its_spill_limit_and_leaves_no_spill_file() {
    let project = Project::new();
    let spill = project.state().join("duckdb-tmp");
    // About 3 GB of strings sorted under 64 MB of DuckDB memory.
    let sorting = "SELECT count(*) AS n FROM (SELECT repeat('x', 100) || range::VARCHAR AS s \
                   FROM range(30000000) ORDER BY s DESC)";
    let compute = "      memory_limit: 64MB\n      threads: 1\n";
    let capped = project.platform(compute, "  spill_limit: 32MiB\n");
    let run = project.run_sql_with(sorting, &["--platform", capped.to_str().unwrap()]).expect_code(3);
    for piece in [
        "step `probe`: the SQL from plugin `evil-sql` failed in DuckDB",
        "max_temp_directory_size",
        "a plugin's SQL may spill 32 MiB to disk, `plugins.spill_limit` in platform.yaml",
    ] {
        assert!(run.stderr.contains(piece), "stderr lacks {piece:?}:\n{}", run.stderr);
    }
    assert_eq!(spilled(&spill), (0, 0), "spill files left at the cap");
    assert_eq!(project.probe_snapshot(), project.baseline);

    // Killed at the step budget while it spills (the default cap, 4 GiB).
    let budget = project.platform(compute, "  step_timeout: 4s\n");
    let file = project.write_sql_pipeline(sorting);
    let mut child = project
        .command(&file, &["--platform", budget.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut most = 0;
    while child.try_wait().unwrap().is_none() {
        most = most.max(spilled(&spill).1);
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = Run::from(child.wait_with_output().unwrap()).expect_code(3);
    assert!(run.stderr.contains("`plugins.step_timeout`: 4s"), "{}", run.stderr);
    assert!(most > 0, "the query never spilled before its budget ended:\n{}", run.stderr);
    assert_eq!(spilled(&spill), (0, 0), "spill files left by the killed worker ({most} bytes at most)");
    assert_eq!(project.probe_snapshot(), project.baseline);
}

/// Files under `dir` and their bytes.
fn spilled(dir: &Path) -> (usize, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => stack.push(entry.path()),
                Ok(meta) => (files, bytes) = (files + 1, bytes + meta.len()),
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

/// Models run locked down too: a data engineer's SQL reads its inputs, not
/// the platform's secrets, and runs as exactly one SELECT.
#[test]
fn model_sql_is_locked_down_too() {
    let project = Project::new();
    let secret_file = project.path("secrets/polaris-client-secret");
    // DuckDB's lock refuses the file when the query is checked: a model that
    // reads what it may not is a configuration error, which no retry fixes.
    let run = project.run_model(&format!("SELECT content AS n FROM read_text('{}')", secret_file.display()));
    let run = run.expect_code(2);
    assert!(run.stderr.contains("Permission Error: Cannot access file"), "{}", run.stderr);
    assert!(!run.stderr.contains(&secret()) && !run.stdout.contains(&secret()));
    let run = project.run_model(&format!("SELECT * FROM '{}'", secret_file.display())).expect_code(2);
    assert!(run.stderr.contains("polaris-client-secret does not exist"), "{}", run.stderr);
    assert!(!run.stderr.contains(&secret()) && !run.stdout.contains(&secret()));

    let outside = project.path("model-pwned.csv");
    let run = project.run_model(&format!("SELECT 1 AS n; COPY (SELECT 1) TO '{}'", outside.display())).expect_code(2);
    // Refused before the run reads anything, as every model is checked first.
    assert!(run.stderr.contains("model `probe`: it holds 2 statements; only one SELECT may run"), "{}", run.stderr);
    assert!(!outside.exists());
    assert_eq!(project.probe_snapshot(), project.baseline);

    // A model reads what its inputs are.
    project.run_model("SELECT count(*) AS n FROM bronze.raw_events").expect_code(0);
}

/// `plugin test` on a laptop runs the plugin's SQL as locked down as a run.
#[test]
fn plugin_test_holds_the_same_line() {
    let project = Project::new();
    let outside = project.path("trial-pwned.csv");
    let wasm = plugin("evil_sql.wasm");
    let input = project.path("events.csv");
    let attack = format!("sql=SELECT 1 AS n; COPY (SELECT 1) TO '{}'", outside.display());
    let run = floe_host_with_env(
        &["plugin", "test", wasm.to_str().unwrap(), "--input", input.to_str().unwrap(), "--config", &attack],
        &[],
    )
    .expect_code(3);
    assert!(run.stderr.contains("holds 2 statements"), "{}", run.stderr);
    assert!(!outside.exists());
    let secret_file = project.path("secrets/polaris-client-secret");
    let attack = format!("sql=SELECT * FROM read_text('{}')", secret_file.display());
    let run = floe_host_with_env(
        &["plugin", "test", wasm.to_str().unwrap(), "--input", input.to_str().unwrap(), "--config", &attack],
        &[],
    )
    .expect_code(3);
    assert!(run.stderr.contains("table function `read_text`"), "{}", run.stderr);
    assert!(!run.stdout.contains(&secret()));
}

/// Plugin text (a log line, an error message, stderr before a trap) that
/// holds newlines, escape sequences and a forged Pipes message reaches
/// stderr as one escaped line each, in text and in JSON logs: Dagster's
/// stderr reader never sees a line it would take for a Pipes message.
#[test]
fn plugin_text_cannot_forge_lines_in_logs_errors_or_reports() {
    let project = Project::new();
    let forged = r#"{"__dagster_pipes_version": "0.1", "method": "report_asset_materialization", "params": {}}"#;
    let text = format!("innocent\n{forged}\r\n\u{1b}[31mred\u{2028}{forged}");
    // An error saying the input is invalid refuses the data (exit 4).
    for (key, code) in [("log", 0), ("error", 4), ("stderr", 3)] {
        for format in ["text", "json"] {
            let q = serde_json::to_string(&text).unwrap();
            let file = project.write_pipeline(&format!(
                "    kind: wasm\n    plugin: evil-sql\n    inputs: [bronze.raw_events]\n    config:\n      {key}: {q}\n      sql: \"SELECT count(*) AS n FROM {{input}}\"\n"
            ));
            // A run id per case: a committed probe step would be skipped.
            let run_id = format!("{key}-{format}");
            let run = project.run_file(&file, &["--log-format", format, "--run-id", &run_id]).expect_code(code);
            assert!(run.stderr.contains("innocent"), "{key}/{format}: the text never reached stderr:\n{}", run.stderr);
            assert_no_forged_line(&run.stderr);
            if format == "text" {
                for line in run.stderr.lines() {
                    assert!(!line.trim_start().starts_with('{'), "{key}: a line of plugin text:\n{}", run.stderr);
                }
            }
        }
    }
}

/// A SQL worker that DuckDB no longer controls (a memory-corruption bug a
/// query found) could start processes that keep its output pipe open, one
/// of them outside its process group. No real DuckDB does this on demand,
/// so a shell script stands in for the worker. The host must stop at the
/// query's deadline all the same, and kill what stayed in the group.
#[test]
fn a_worker_that_leaves_processes_behind_is_stopped_at_its_deadline() {
    use floe_host::compute::{ComputeError, Setup, Worker, WorkerLimits};
    let dir = temp_dir();
    let pid_file = dir.path().join("grandchild.pid");
    let script = dir.path().join("worker.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nsleep 60 &\necho $! > {pid}\nsetsid sleep 20 &\nexec sleep 60\n", pid = pid_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let setup = Setup { properties: Default::default(), variables: Vec::new(), scratch: None };
    let limits = WorkerLimits { extra_memory: 1 << 20, max_message: 1 << 20, spill_bytes: 0 };
    let worker = Worker::start(&script, &setup, limits).unwrap();
    let started = Instant::now();
    let result = worker.select("SELECT 1", &[], Duration::from_secs(1), &mut |_| Ok(()));
    let took = started.elapsed();
    assert!(matches!(result, Err(ComputeError::TimedOut(_))), "{:?}", result.err());
    assert!(took < Duration::from_secs(10), "the host waited {took:?} for a pipe a stray process held");
    // The process that stayed in the worker's group is gone (or a zombie).
    let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_owned();
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state.rsplit(')').next().unwrap_or("").split_whitespace().next().unwrap_or("gone").to_owned();
    assert!(state == "gone" || state == "Z", "the worker's child {pid} is still running ({state})");
}

/// The worker that runs a plugin's query, looked at from outside while the
/// query runs: its system-call filter and no-new-privs are on, and it holds
/// no descriptor it inherited (only stdin, stdout, stderr and what DuckDB
/// opened itself: the step's input file, its own pipes and event fds).
#[test]
fn the_sql_worker_runs_filtered_and_holds_no_inherited_file() {
    let project = Project::new();
    let platform = project.platform("      threads: 1\n", "  step_timeout: 4s\n");
    let file = project.write_sql_pipeline("SELECT count(*) AS n FROM {input}, range(1000000000000000)");
    let mut child = project
        .command(&file, &["--platform", platform.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let host = child.id();
    let started = Instant::now();
    let worker = loop {
        let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid: u32 = stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (ppid == host && String::from_utf8_lossy(&cmdline).contains("__floe-sql-worker")).then_some(pid)
        });
        if let Some(pid) = found {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            // Confined before it reads any SQL: wait until it is.
            if status.contains("Seccomp:\t2") {
                break Some((pid, status));
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (pid, status) = worker.expect("no confined SQL worker appeared within 30 s");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|target| target.display().to_string())
        .collect();
    let state = project.state().display().to_string();
    for target in &fds {
        let own = target.starts_with("pipe:") || target.starts_with("anon_inode:") || target == "/dev/null";
        let input = target.contains("/warehouse/bronze/raw_events/data/");
        assert!(own || input || !target.starts_with(&state), "the worker holds {target}: {fds:?}");
        assert!(!target.contains("catalog.db") && !target.contains("component-cache"), "{fds:?}");
    }
    let _ = child.wait();
}
