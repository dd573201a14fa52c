//! The SQL worker process (`floe-host` re-executed with [`CHILD_ARG`]): one
//! step's database, with the step's inputs, locked down before it runs the
//! one query it is given. It holds no credential (the host clears its
//! environment), dies with the host, dumps no core, and its data memory is
//! capped at DuckDB's `memory_limit` plus what the host allows on top, so a
//! query that allocates outside DuckDB's buffer manager (a 2 GB `repeat`, a
//! huge list) fails the worker instead of growing the host.

use std::io::{BufReader, BufWriter, Read, Write};

use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;

use super::protocol::{Command, FAILURE_PREFIX, Failure, read_command};
use crate::compute::{ComputeError, Layout, Reads, Session};
use crate::config::DuckdbProperties;

/// The first argument that makes `floe-host` a SQL worker.
pub const CHILD_ARG: &str = "__floe-sql-worker";

/// The worker: serves the commands on stdin; returns the exit code.
pub fn child_main(_args: &[String]) -> i32 {
    let mut input = BufReader::new(std::io::stdin().lock());
    match serve(&mut input) {
        Ok(()) => 0,
        Err(failure) => {
            let json = serde_json::to_string(&failure).unwrap_or_else(|_| "{}".to_owned());
            eprintln!("{FAILURE_PREFIX}{json}");
            1
        }
    }
}

fn serve(input: &mut impl Read) -> Result<(), Failure> {
    let setup = |what: &str| {
        let what = what.to_owned();
        move |e: &dyn std::fmt::Display| Failure::Setup(format!("{what}: {e}"))
    };
    // Set before anything else: a worker outliving the host would go on
    // holding memory and files.
    die_with_parent().map_err(|e| setup("limiting the worker")(&e))?;
    confine().map_err(|e| setup("confining the worker")(&e))?;
    let mut session: Option<Session> = None;
    loop {
        let command = read_command(input).map_err(|e| setup("reading a command")(&e))?;
        let Some(command) = command else { return Err(Failure::Setup("the host sent no query".to_owned())) };
        if let Command::Open { memory_limit, threads, temp_directory, variables, extra_memory, spill_bytes } = command {
            let properties =
                DuckdbProperties { path: None, threads, memory_limit, temp_directory, allowed_directories: Vec::new() };
            let opened = Session::open(&properties).map_err(compute)?;
            opened.limit_spill(spill_bytes).map_err(compute)?;
            for (name, value) in &variables {
                opened.set_variable(name, value).map_err(compute)?;
            }
            let duckdb_bytes = opened.memory_limit_bytes().map_err(compute)?;
            cap_data(duckdb_bytes.saturating_add(extra_memory)).map_err(|e| setup("limiting the worker")(&e))?;
            session = Some(opened);
            continue;
        }
        let Some(session) = session.as_ref() else {
            return Err(Failure::Setup("the host sent a command before opening the database".to_owned()));
        };
        match command {
            Command::Open { .. } => unreachable!("handled above"),
            Command::Parquet { schema, table, paths, by_field_id } => {
                let reader = StreamReader::try_new(&mut *input, None).map_err(|e| setup("reading a schema")(&e))?;
                let arrow_schema = reader.schema();
                let layout = if by_field_id { Layout::ByFieldId } else { Layout::Same };
                session.register_parquet(&schema, &table, &arrow_schema, &paths, layout).map_err(compute)?;
                for batch in reader {
                    batch.map_err(|e| setup("reading a schema")(&e))?;
                }
            }
            Command::Table { schema, table } => {
                let reader = StreamReader::try_new(&mut *input, None).map_err(|e| setup("reading an input")(&e))?;
                let mut loader = session.loader(&schema, &table, &reader.schema()).map_err(compute)?;
                for batch in reader {
                    loader.append(batch.map_err(|e| setup("reading an input")(&e))?).map_err(compute)?;
                }
                loader.finish().map_err(compute)?;
            }
            Command::Select { sql, allowed_files } => {
                session.lock_down(&allowed_files, &[]).map_err(compute)?;
                return select(session, &sql);
            }
        }
    }
}

/// Runs the query, writing its result to stdout as one IPC stream.
fn select(session: &Session, sql: &str) -> Result<(), Failure> {
    type Writer = StreamWriter<BufWriter<std::io::Stdout>>;
    let open = |schema: &arrow_schema::Schema| -> Result<Writer, String> {
        StreamWriter::try_new(BufWriter::with_capacity(1 << 20, std::io::stdout()), schema).map_err(|e| e.to_string())
    };
    let mut writer: Option<Writer> = None;
    let schema = session
        .stream_select(sql, Reads::InputsOnly, None, &mut |batch| {
            if writer.is_none() {
                writer = Some(open(batch.schema_ref())?);
            }
            writer.as_mut().expect("opened above").write(&batch).map_err(|e| e.to_string())
        })
        .map_err(compute)?;
    let mut writer = match writer {
        Some(writer) => writer,
        None => open(&schema).map_err(Failure::Query)?,
    };
    writer.finish().map_err(|e| Failure::Query(e.to_string()))?;
    writer.get_mut().flush().map_err(|e| Failure::Query(e.to_string()))
}

fn compute(error: ComputeError) -> Failure {
    match error {
        ComputeError::Refused(message) => Failure::Refused(message),
        error @ (ComputeError::Query(_) | ComputeError::Sink(_) | ComputeError::TimedOut(_)) => {
            Failure::Query(error.to_string())
        }
        error => Failure::Setup(error.to_string()),
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let limit = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
    // SAFETY: setrlimit reads the struct and changes only this process's limits.
    if unsafe { libc::setrlimit(resource, &limit) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// The worker gets SIGKILL when the host exits, and dumps no core.
fn die_with_parent() -> std::io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and affects only this process.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    set_limit(libc::RLIMIT_CORE, 0)
}

/// Gives up what the worker inherited and never needs, before it runs any
/// SQL: every descriptor beyond stdin, stdout and stderr (the host's open
/// files that were not close-on-exec: DuckDB opens the files it reads
/// without it, so a model step running beside a plugin's query passed its
/// inputs down), and any way to gain privileges (setuid binaries, file
/// capabilities), then installs the system-call filter (`seccomp`). What
/// DuckDB then does is bounded by the files it can open, not by the
/// host's.
fn confine() -> std::io::Result<()> {
    // SAFETY: close_range closes this process's descriptors from 3 up; the
    // worker holds none of its own yet (Rust's runtime opens none).
    if unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) } != 0 {
        // Kernels before 5.9: one by one.
        let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd| fd > 2)
            .collect();
        for fd in open {
            // SAFETY: closing a descriptor number; the directory's own is
            // already closed, and nothing else uses these.
            unsafe { libc::close(fd) };
        }
    }
    // SAFETY: PR_SET_NO_NEW_PRIVS takes 1 and affects this process and its children.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    super::seccomp::install()
}

/// Caps the process's data (heap and private writable mappings, which is
/// where DuckDB's buffers, strings and Arrow results live) at `allowed`
/// bytes on top of what it holds now.
fn cap_data(allowed: u64) -> std::io::Result<()> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmData:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| std::io::Error::other("no VmData in /proc/self/status"))?;
    set_limit(libc::RLIMIT_DATA, kib.saturating_mul(1024).saturating_add(allowed))
}
