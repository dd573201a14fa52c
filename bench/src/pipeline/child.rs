//! Child processes measured from outside: wall time, peak RSS from the
//! child's own rusage (`wait4`), and optionally its RSS sampled over time, so
//! that a long run can be split by step.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the RSS of a sampled child is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

pub struct Measured {
    pub wall: Duration,
    /// `ru_maxrss` of the child, in bytes.
    pub peak_rss: u64,
    /// The exit code, or 128 + the signal that ended the child.
    pub code: i32,
    pub stdout: Vec<u8>,
    /// Each stderr line with the time it was read, since the start.
    pub stderr_lines: Vec<(Duration, String)>,
    /// `VmRSS` in bytes, read every 10 ms (only when asked for).
    pub rss_samples: Vec<(Duration, u64)>,
}

/// Runs `command` to its end with stdout and stderr captured.
pub fn run(command: &mut Command, sample_rss: bool) -> Result<Measured, String> {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| format!("cannot start {command:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let out_thread = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err_thread = std::thread::spawn(move || {
        BufReader::new(stderr).lines().map_while(Result::ok).map(|line| (started.elapsed(), line)).collect::<Vec<_>>()
    });
    let done = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss.then(|| {
        let done = done.clone();
        std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if let Some(rss) = std::fs::read_to_string(&path).ok().as_deref().and_then(vm_rss) {
                    samples.push((started.elapsed(), rss));
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            samples
        })
    });
    let (status, usage) = wait4(pid).map_err(|e| format!("waiting for {command:?}: {e}"))?;
    let wall = started.elapsed();
    done.store(true, Ordering::Relaxed);
    // The child is reaped; std's handle must not wait for it again.
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    };
    Ok(Measured {
        wall,
        // Linux reports ru_maxrss in kilobytes.
        peak_rss: usage.ru_maxrss.max(0) as u64 * 1024,
        code,
        stdout: out_thread.join().unwrap_or_default(),
        stderr_lines: err_thread.join().unwrap_or_default(),
        rss_samples: sampler.map(|t| t.join().unwrap_or_default()).unwrap_or_default(),
    })
}

fn wait4(pid: libc::pid_t) -> std::io::Result<(libc::c_int, libc::rusage)> {
    loop {
        let mut status = 0;
        // SAFETY: `rusage` is plain old data, and both pointers outlive the call.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            return Ok((status, usage));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// `VmRSS:   123456 kB` → bytes.
fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What floe-host's JSON log says about one step.
#[derive(Default)]
pub struct StepEvents {
    pub start: Duration,
    pub end: Option<Duration>,
    /// `elapsed_ms` of the ingest or streaming-transform log line.
    pub plugin_ms: Option<f64>,
    /// Plugins compiled during the step (a cold component cache).
    pub compile_ms: f64,
}

/// Steps by name, from the lines floe-host logs with `--log-format json`:
/// "Running step.", "Compiled the plugin.", the plugin's own summary line and
/// "Committed step.".
pub fn step_events(lines: &[(Duration, String)]) -> BTreeMap<String, StepEvents> {
    let mut steps: BTreeMap<String, StepEvents> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (at, line) in lines {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let step = event["step"].as_str().map(str::to_owned);
        match event["message"].as_str().unwrap_or_default() {
            "Running step." => {
                if let Some(step) = step {
                    steps.insert(step.clone(), StepEvents { start: *at, ..Default::default() });
                    current = Some(step);
                }
            }
            "Committed step." => {
                if let Some(events) = step.and_then(|s| steps.get_mut(&s)) {
                    events.end = Some(*at);
                }
            }
            "Compiled the plugin." => {
                if let Some(events) = current.as_ref().and_then(|s| steps.get_mut(s)) {
                    events.compile_ms += event["elapsed_ms"].as_f64().unwrap_or(0.0);
                }
            }
            "The plugin ingested a source object." | "The plugin transformed its input." => {
                if let Some(events) = step.and_then(|s| steps.get_mut(&s)) {
                    *events.plugin_ms.get_or_insert(0.0) += event["elapsed_ms"].as_f64().unwrap_or(0.0);
                }
            }
            _ => {}
        }
    }
    steps
}
