//! SQL that a plugin returned runs in a worker process, not in the host.
//!
//! Locking the database down (`Session::lock_down`) keeps such SQL away from
//! files, settings and extensions, but not from memory: DuckDB's
//! `memory_limit` covers its buffer manager only, and a one-line query
//! (`SELECT repeat('x', 2000000000)`) took the host past 5 GB. A DuckDB
//! failure that aborts would take the host with it, too. So the host starts
//! `floe-host` again as a worker ([`CHILD_ARG`], see `child.rs`), hands it
//! the step's inputs, and reads its result back as an Arrow IPC stream that
//! it checks like a plugin's own output (`sandbox::OutputStream`): every
//! message bounded by `plugins.max_output_bytes` before it is read, flat
//! types only. The worker's data memory is capped at DuckDB's `memory_limit`
//! plus `plugins.memory_limit`, its spill at `plugins.spill_limit` in a folder
//! of its own that the host removes once the worker has exited (a worker
//! killed at the plugin's time budget cannot delete its spill files); the host
//! kills it at the plugin's time budget.

mod child;
mod protocol;
mod seccomp;

use std::io::{BufWriter, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command as Process, Stdio};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::SchemaRef;

pub use child::{CHILD_ARG, child_main};
use protocol::{Command, FAILURE_PREFIX, Failure, write_command};

use super::{ComputeError, Layout, Setup};

/// Bounds of a worker, from the plugin limits.
#[derive(Clone, Copy, Debug)]
pub struct WorkerLimits {
    /// What the worker may allocate beyond DuckDB's `memory_limit`.
    pub extra_memory: u64,
    /// The largest IPC message of the result.
    pub max_message: u64,
    /// What DuckDB may spill to disk.
    pub spill_bytes: u64,
}

/// A running worker, being handed a step's inputs.
pub struct Worker {
    child: Child,
    stdin: Option<BufWriter<ChildStdin>>,
    stderr: Option<std::thread::JoinHandle<String>>,
    limits: WorkerLimits,
    /// The worker's spill folder, removed when the worker is dropped: after
    /// `Drop for Worker` has reaped it, since fields drop after it.
    _spill: Option<SpillFolder>,
}

/// The most of the worker's stderr the host keeps.
const MAX_STDERR_BYTES: u64 = 64 << 10;

impl Worker {
    /// Starts `exe` as a worker and opens its database with `setup`, spilling
    /// to a fresh folder under its `temp_directory`.
    pub fn start(exe: &Path, setup: &Setup, limits: WorkerLimits) -> Result<Self, ComputeError> {
        let spill = match &setup.properties.temp_directory {
            Some(dir) => Some(spill_folder(Path::new(dir))?),
            None => None,
        };
        let temp_directory = spill.as_ref().map(|d| d.0.display().to_string());
        // Its own process group: the deadline kills the group, so that
        // whatever the worker started goes with it.
        let mut child = Process::new(exe)
            .arg(CHILD_ARG)
            .env_clear()
            .current_dir("/")
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ComputeError::Setup(format!("cannot start the SQL worker {}: {e}", exe.display())))?;
        let mut stderr = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = (&mut stderr).take(MAX_STDERR_BYTES).read_to_string(&mut text);
            // Drain the rest, so the worker never blocks on a full pipe.
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            text
        });
        let stdin = child.stdin.take().map(|s| BufWriter::with_capacity(1 << 20, s));
        let mut worker = Worker { child, stdin, stderr: Some(stderr), limits, _spill: spill };
        let properties = &setup.properties;
        worker.send(&Command::Open {
            memory_limit: properties.memory_limit.clone(),
            threads: properties.threads,
            temp_directory,
            variables: setup.variables.iter().map(|(n, v)| (n.to_string(), v.clone())).collect(),
            extra_memory: limits.extra_memory,
            spill_bytes: limits.spill_bytes,
        })?;
        Ok(worker)
    }

    fn input(&mut self) -> Result<&mut BufWriter<ChildStdin>, ComputeError> {
        self.stdin.as_mut().ok_or_else(|| ComputeError::Setup("the SQL worker's input is closed".to_owned()))
    }

    fn send(&mut self, command: &Command) -> Result<(), ComputeError> {
        let sent = write_command(self.input()?, command);
        sent.map_err(|e| self.failed(e))
    }

    /// Sends `schema` and `batches` as one IPC stream.
    fn send_stream(&mut self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<(), ComputeError> {
        let input = self.input()?;
        let sent = (|| {
            let mut writer = StreamWriter::try_new(&mut *input, schema)?;
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()
        })();
        sent.map_err(|e| self.failed(e))
    }

    /// The error for a write the worker did not take: its own failure if it
    /// reported one (it stops reading when it fails), else `error`.
    fn failed(&mut self, error: impl std::fmt::Display) -> ComputeError {
        self.stdin = None;
        let _ = self.child.wait();
        self.reported().unwrap_or_else(|| ComputeError::Setup(format!("cannot hand the SQL worker its input: {error}")))
    }

    /// The failure the worker reported on stderr, once it has exited.
    fn reported(&mut self) -> Option<ComputeError> {
        let text = self.stderr.take()?.join().ok()?;
        let line = text.lines().rev().find_map(|l| l.strip_prefix(FAILURE_PREFIX))?;
        Some(match serde_json::from_str(line).ok()? {
            Failure::Refused(message) => ComputeError::Refused(message),
            Failure::Setup(message) => ComputeError::Setup(message),
            Failure::Query(message) => ComputeError::Worker(message),
        })
    }

    /// Defines `schema.table` as a view over Parquet files (`Session::register_parquet`).
    pub fn register_parquet(
        &mut self,
        schema: &str,
        table: &str,
        arrow_schema: &SchemaRef,
        paths: &[String],
        layout: Layout,
    ) -> Result<(), ComputeError> {
        let by_field_id = layout == Layout::ByFieldId;
        self.send(&Command::Parquet {
            schema: schema.into(),
            table: table.into(),
            paths: paths.to_vec(),
            by_field_id,
        })?;
        self.send_stream(arrow_schema, &[])
    }

    /// Starts `schema.table`, to be filled with [`Worker::append`] and ended
    /// with [`Worker::end_table`].
    pub fn begin_table(&mut self, schema: &str, table: &str, arrow_schema: &SchemaRef) -> Result<(), ComputeError> {
        self.send(&Command::Table { schema: schema.into(), table: table.into() })?;
        let options = arrow_ipc::writer::IpcWriteOptions::default();
        let mut tracker = arrow_ipc::writer::DictionaryTracker::new(false);
        let message = arrow_ipc::writer::IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
            arrow_schema,
            &mut tracker,
            &options,
        );
        let input = self.input()?;
        let written = arrow_ipc::writer::write_message(input, message, &options);
        written.map(drop).map_err(|e| self.failed(e))
    }

    /// Appends a batch to the table begun last.
    pub fn append(&mut self, batch: &RecordBatch) -> Result<(), ComputeError> {
        let input = self.input()?;
        let written = (|| {
            let options = arrow_ipc::writer::IpcWriteOptions::default();
            let mut tracker = arrow_ipc::writer::DictionaryTracker::new(false);
            let (dictionaries, message) = arrow_ipc::writer::IpcDataGenerator::default().encode(
                batch,
                &mut tracker,
                &options,
                &mut Default::default(),
            )?;
            for message in dictionaries.into_iter().chain([message]) {
                arrow_ipc::writer::write_message(&mut *input, message, &options)?;
            }
            Ok::<_, arrow_schema::ArrowError>(())
        })();
        written.map_err(|e| self.failed(e))
    }

    /// Ends the table begun last.
    pub fn end_table(&mut self) -> Result<(), ComputeError> {
        let input = self.input()?;
        let ended = input.write_all(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        ended.map_err(|e| self.failed(e))
    }

    /// Locks the database down to `allowed_files`, runs `sql` and hands its
    /// result to `on_batch`, checked and bounded; returns its schema. Past
    /// `timeout`, the worker is killed.
    pub fn select(
        mut self,
        sql: &str,
        allowed_files: &[String],
        timeout: Duration,
        on_batch: &mut dyn FnMut(RecordBatch) -> Result<(), String>,
    ) -> Result<SchemaRef, ComputeError> {
        self.send(&Command::Select { sql: sql.to_owned(), allowed_files: allowed_files.to_vec() })?;
        if let Some(mut input) = self.stdin.take() {
            input.flush().map_err(|e| self.failed(e))?;
        }
        let mut stdout = self.child.stdout.take().expect("piped");
        let deadline = Deadline::start(self.child.id(), timeout);
        // The host stops reading shortly after the deadline, whether or not
        // the pipe has closed: a process that left the worker's group could
        // hold its write end open for ever.
        let give_up = Instant::now() + timeout + READ_GRACE;
        let mut stream = crate::sandbox::OutputStream::new(self.limits.max_message);
        let mut chunk = vec![0u8; 256 << 10];
        let read = (|| {
            loop {
                if !readable_before(&stdout, give_up) {
                    return Err(Ended::Io);
                }
                let n = stdout.read(&mut chunk).map_err(|_| Ended::Io)?;
                if n == 0 {
                    return Ok(());
                }
                for batch in stream.push(chunk[..n].to_vec()).map_err(|e| Ended::Refused(e.to_string()))? {
                    on_batch(batch).map_err(Ended::Sink)?;
                }
            }
        })();
        if read.is_err() {
            // Stop the worker at once: what it still sends is not wanted.
            kill_group(self.child.id());
        }
        // Stopped before the worker is reaped, so that it never signals a
        // reused pid. The worker's stdout is closed: it has exited or is
        // exiting.
        let timed_out = deadline.stop();
        let status = self.child.wait();
        if timed_out {
            return Err(ComputeError::TimedOut(timeout));
        }
        match read {
            Err(Ended::Sink(message)) => return Err(ComputeError::Sink(message)),
            Err(Ended::Refused(message)) => {
                return Err(ComputeError::Refused(format!("its result is not accepted: {message}")));
            }
            Err(Ended::Io) | Ok(()) => {}
        }
        let status = status.map_err(|e| ComputeError::Setup(format!("waiting for the SQL worker: {e}")))?;
        if !status.success() {
            return Err(self.reported().unwrap_or_else(|| ComputeError::Worker(died(status))));
        }
        stream.finish().map_err(|e| ComputeError::Worker(format!("the SQL worker's result is incomplete: {e}")))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A worker dropped before its query (an input failed to load).
        if self.child.try_wait().ok().flatten().is_none() {
            kill_group(self.child.id());
            let _ = self.child.wait();
        }
    }
}

/// How long the host reads on after a query's deadline: time for the killed
/// worker's last bytes and its end of file.
const READ_GRACE: Duration = Duration::from_secs(2);

/// SIGKILL to the worker `pid` and its process group (everything it
/// started that did not leave the group).
fn kill_group(pid: u32) {
    // SAFETY: kill takes a pid (negative: a process group) and a signal.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Waits until `pipe` can be read (data or end of file) or `until` passes;
/// whether it can.
fn readable_before(pipe: &impl std::os::fd::AsRawFd, until: Instant) -> bool {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fd = libc::pollfd { fd: pipe.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = left.as_millis().clamp(1, 1000) as libc::c_int;
        // SAFETY: one valid pollfd for the duration of the call.
        match unsafe { libc::poll(&mut fd, 1, ms) } {
            n if n > 0 => return true,
            0 => continue,
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => continue,
            _ => return true, // let `read` report it
        }
    }
}

/// One worker's spill folder, removed with everything in it when dropped.
struct SpillFolder(std::path::PathBuf);

impl Drop for SpillFolder {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.0)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(folder = %self.0.display(), %error, "Cannot remove the SQL worker's spill folder.");
        }
    }
}

/// A fresh spill folder for one worker under `dir`, which is created if
/// missing (DuckDB creates its spill folder, not the folders above it). A
/// folder of the same name (left by a killed host whose pid this one reuses)
/// is emptied first.
fn spill_folder(dir: &Path) -> Result<SpillFolder, ComputeError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let folder = SpillFolder(dir.join(format!("sql-worker-{}-{n}", std::process::id())));
    let _ = std::fs::remove_dir_all(&folder.0);
    std::fs::create_dir_all(&folder.0).map_err(|e| {
        ComputeError::Setup(format!("cannot make the SQL worker's spill folder {}: {e}", folder.0.display()))
    })?;
    Ok(folder)
}

enum Ended {
    /// Reading failed; the worker's exit says why.
    Io,
    Refused(String),
    Sink(String),
}

/// How the worker ended, when it did not say why.
fn died(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(libc::SIGKILL) => "the SQL worker was killed (SIGKILL), most likely for memory".to_owned(),
        Some(libc::SIGABRT) => {
            "DuckDB aborted in the SQL worker (SIGABRT), most likely out of memory under its cap".to_owned()
        }
        Some(signal) => format!("the SQL worker died of signal {signal}"),
        None => format!("the SQL worker failed ({status}) without saying why"),
    }
}

/// Kills the worker (by pid) once `limit` has passed, unless stopped first.
struct Deadline {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<bool>,
}

impl Deadline {
    fn start(pid: u32, limit: Duration) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let fired = matches!(stopped.recv_timeout(limit), Err(std::sync::mpsc::RecvTimeoutError::Timeout));
            if fired {
                // The worker is not reaped before this thread has been
                // joined (`stop`), so the pid is still the worker's.
                kill_group(pid);
            }
            fired
        });
        Deadline { stop, thread }
    }

    /// Stops the deadline; returns whether it had fired.
    fn stop(self) -> bool {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or(false)
    }
}
