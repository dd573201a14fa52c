//! Ingest sources are confined: a `source` reads a regular file inside the
//! project directory or a root platform.yaml allows, after symlinks, and
//! never the secrets or state directory. A refused source is a
//! configuration error (exit 2) named in `validate` and in `run`, before any
//! byte is read, and no table appears.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Run, floe_host, plugin, temp_dir};

const SECRET: &str = "polaris-secret-7f3a";

/// A project in `dir/project` whose one ingest step reads `source`, a
/// secrets directory `dir/secrets` holding [`SECRET`], and a landing folder
/// `dir/landing` outside the project.
fn write_project(dir: &Path, source: &str) -> PathBuf {
    let project = dir.join("project");
    std::fs::create_dir_all(project.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::create_dir_all(dir.join("landing")).unwrap();
    std::fs::write(dir.join("secrets/polaris-client-secret"), format!("id\n{SECRET}\n")).unwrap();
    std::fs::write(dir.join("landing/events.csv"), "id\n1\n2\n3\n").unwrap();
    std::fs::write(project.join("data/events.csv"), "id\n1\n2\n").unwrap();
    let yaml = format!(
        "name: confined\ntransforms:\n  - name: raw_events\n    layer: bronze\n    kind: ingest\n    \
         plugin: csv-ingest\n    source: {}\nplugins:\n  csv-ingest:\n    path: {}\n",
        serde_json::to_string(source).unwrap(),
        serde_json::to_string(plugin("csv_ingest.wasm").to_str().unwrap()).unwrap(),
    );
    std::fs::write(project.join("floe.yaml"), yaml).unwrap();
    project
}

fn floe_host_in(dir: &Path, command: &str, extra: &[&str]) -> Run {
    let (project, state, secrets) = (dir.join("project"), dir.join("state"), dir.join("secrets"));
    let mut args = vec![command, project.to_str().unwrap(), "--secrets-dir", secrets.to_str().unwrap()];
    if command == "run" {
        args.extend(["--state-dir", state.to_str().unwrap()]);
    }
    args.extend_from_slice(extra);
    floe_host(&args)
}

fn assert_refused(dir: &Path, expected: &str) {
    for command in ["validate", "run"] {
        let run = floe_host_in(dir, command, &[]).expect_code(2);
        assert!(run.stderr.contains(expected), "{command}: stderr lacks {expected:?}:\n{}", run.stderr);
        assert!(run.stderr.contains("transforms[0].source"), "{command} names the key:\n{}", run.stderr);
        assert!(!run.stderr.contains(SECRET) && !run.stdout.contains(SECRET), "{command} leaked the secret");
    }
    assert!(!dir.join("state/warehouse/bronze/raw_events").exists(), "no table may appear");
}

#[test]
fn a_source_never_resolves_into_the_secrets_or_outside_the_project() {
    // A symlink in the project's data folder to the mounted secret.
    let dir = temp_dir();
    let project = write_project(dir.path(), "data/token.csv");
    std::os::unix::fs::symlink(dir.path().join("secrets/polaris-client-secret"), project.join("data/token.csv"))
        .unwrap();
    assert_refused(dir.path(), "inside the secrets directory, which no step may read");

    // `..` out of the project, an absolute path, and a symlinked folder.
    for source in ["../landing/events.csv", "/etc/hostname", "data/landing/events.csv"] {
        let dir = temp_dir();
        let project = write_project(dir.path(), source);
        std::os::unix::fs::symlink(dir.path().join("landing"), project.join("data/landing")).unwrap();
        assert_refused(dir.path(), "outside the project directory");
    }

    // Not a regular file.
    let dir = temp_dir();
    write_project(dir.path(), "data");
    assert_refused(dir.path(), "source `");
    let run = floe_host_in(dir.path(), "validate", &[]).expect_code(2);
    assert!(run.stderr.contains("is a directory, not a regular file"), "{}", run.stderr);
}

/// A root that platform.yaml allows is readable, through a symlink too.
#[test]
fn a_root_the_platform_allows_is_readable() {
    let dir = temp_dir();
    let project = write_project(dir.path(), "data/landing/events.csv");
    std::os::unix::fs::symlink(dir.path().join("landing"), project.join("data/landing")).unwrap();
    let state = dir.path().join("state");
    let q = |p: PathBuf| serde_json::to_string(p.to_str().unwrap()).unwrap();
    let platform = dir.path().join("platform.yaml");
    std::fs::write(
        &platform,
        format!(
            "catalogs:\n  default:\n    type: sql\n    uri: {uri}\n    warehouse: {wh}\n\
             storage:\n  default:\n    type: local\n    root: {wh}\n\
             compute:\n  default:\n    type: duckdb\nsources:\n  allowed_roots: [{landing}]\n",
            uri = serde_json::to_string(&format!("sqlite:{}", state.join("catalog.db").display())).unwrap(),
            wh = q(state.join("warehouse")),
            landing = q(dir.path().join("landing")),
        ),
    )
    .unwrap();
    let run = floe_host_in(dir.path(), "run", &["--platform", platform.to_str().unwrap()]).expect_code(0);
    let line = run.stdout.lines().find(|l| l.starts_with("raw_events")).unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(line.split_whitespace().nth(2), Some("3"), "the landing file's three rows: {line}");

    // A root inside the secrets directory allows nothing, and says so.
    let yaml = std::fs::read_to_string(&platform)
        .unwrap()
        .replace(&q(dir.path().join("landing")), &q(dir.path().join("secrets")));
    std::fs::write(&platform, yaml).unwrap();
    let run = floe_host_in(dir.path(), "validate", &["--platform", platform.to_str().unwrap()]).expect_code(2);
    assert!(run.stderr.contains("sources.allowed_roots[0]"), "{}", run.stderr);
    assert!(run.stderr.contains("is inside the secrets directory"), "{}", run.stderr);
}

/// A `{partition}` source that is a FIFO is refused when the run opens it,
/// at once: opening does not wait for a writer that never comes.
#[test]
fn a_fifo_behind_partition_is_refused_without_waiting() {
    let dir = temp_dir();
    let project = write_project(dir.path(), "data/events_{partition}.csv");
    let fifo = project.join("data/events_2024-01-01.csv");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let started = Instant::now();
    let run = floe_host_in(dir.path(), "run", &["--partition", "2024-01-01"]).expect_code(2);
    assert!(
        run.stderr.contains("step `raw_events`: source `")
            && run.stderr.contains("is a FIFO (named pipe), not a regular file"),
        "{}",
        run.stderr
    );
    // A hang check: without the non-blocking open, the run never ends.
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}
