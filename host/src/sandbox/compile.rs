//! Turning a component's bytes into a loaded `Component`: from the compile
//! cache when it holds a tagged artifact, else compiled, within bounds.
//!
//! Compilation runs before any sandbox limit applies, and Cranelift's cost
//! is not bounded by the input's size: a small, never-executed function can
//! make it use gigabytes and minutes. So the host compiles in a child process
//! of its own (`floe-host` re-executed with [`CHILD_ARG`]) under an address-
//! space limit (`compile_memory_bytes` above the child's size at start), a
//! CPU-time limit and a wall-clock deadline (`compile_timeout`), with no core
//! dump. The child writes the serialized artifact to its stdout; the parent
//! caches it and deserializes it. Embedders without a host binary (the
//! library's tests) compile in process, bounded only by the size check.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::cache::CompileCache;
use super::{Limits, SandboxError};

/// The first argument that makes `floe-host` a compile child.
pub const CHILD_ARG: &str = "__floe-compile-plugin";

/// Where components are compiled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Compiler {
    /// In this process: only the component's size is bounded.
    #[default]
    InProcess,
    /// In a child process of this executable (the `floe-host` binary), bounded.
    Child(PathBuf),
}

/// How a component was made ready: taken from the compile cache or
/// compiled, and how long that took (reported apart from step time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compiled {
    pub from_cache: bool,
    pub elapsed: Duration,
}

/// Loads `wasm` as a component: from `cache`, or compiled by `compiler`.
pub(super) fn load_component(
    engine: &Engine,
    compiler: &Compiler,
    cache: Option<&CompileCache>,
    limits: &Limits,
    plugin: &str,
    wasm: &[u8],
) -> Result<(Component, Compiled), SandboxError> {
    let started = Instant::now();
    if wasm.len() as u64 > limits.max_component_bytes {
        return Err(SandboxError::CompileLimit {
            plugin: plugin.to_owned(),
            message: format!(
                "the component has {} bytes, over `plugins.max_component_size` ({} bytes)",
                wasm.len(),
                limits.max_component_bytes
            ),
        });
    }
    let sha256 = super::sha256_hex(wasm);
    if let Some(artifact) = cache.and_then(|c| c.load(&sha256)) {
        // SAFETY: the artifact carries this host's tag (cache.rs): this host
        // serialized it, with this wasmtime and engine configuration (which
        // wasmtime checks again from the artifact's header).
        match unsafe { Component::deserialize(engine, &artifact) } {
            Ok(component) => {
                tracing::debug!(plugin, sha256, "Loaded the compiled plugin from the cache.");
                return Ok((component, Compiled { from_cache: true, elapsed: started.elapsed() }));
            }
            Err(err) => tracing::warn!(plugin, error = %format!("{err:#}"),
                "Ignoring an unusable compiled plugin in the cache; recompiling."),
        }
    }

    let (component, artifact) = match compiler {
        Compiler::InProcess => {
            let component =
                Component::new(engine, wasm).map_err(|e| compile_error(plugin, super::call::error_text(&e)))?;
            let artifact = cache.and_then(|_| component.serialize().ok());
            (component, artifact)
        }
        Compiler::Child(exe) => {
            let artifact = compile_in_child(exe, limits, plugin, wasm)?;
            // SAFETY: the child is this same executable, which serialized the
            // artifact with the same engine configuration a moment ago.
            let component = unsafe { Component::deserialize(engine, &artifact) }.map_err(|e| {
                compile_error(
                    plugin,
                    format!("cannot load what the compiler produced: {}", super::call::error_text(&e)),
                )
            })?;
            (component, Some(artifact))
        }
    };
    tracing::info!(
        plugin,
        sha256,
        bytes = wasm.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Compiled the plugin."
    );
    if let (Some(cache), Some(artifact)) = (cache, artifact)
        && let Err(err) = cache.store(&sha256, &artifact)
    {
        tracing::warn!(plugin, error = %err,
            "Cannot write the compiled plugin to the cache; it will be compiled again next time.");
    }
    Ok((component, Compiled { from_cache: false, elapsed: started.elapsed() }))
}

fn compile_error(plugin: &str, message: String) -> SandboxError {
    SandboxError::Compile { plugin: plugin.to_owned(), message }
}

/// Compiles `wasm` in a child process under `limits`; returns the serialized
/// artifact.
fn compile_in_child(exe: &PathBuf, limits: &Limits, plugin: &str, wasm: &[u8]) -> Result<Vec<u8>, SandboxError> {
    let limit_error = |message: String| SandboxError::CompileLimit { plugin: plugin.to_owned(), message };
    let cpu_seconds = cpu_budget(limits.compile_timeout);
    let mut child = Command::new(exe)
        .arg(CHILD_ARG)
        .arg(limits.compile_memory_bytes.to_string())
        .arg(cpu_seconds.to_string())
        .arg(limits.max_component_bytes.to_string())
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SandboxError::Engine {
            message: format!("cannot start the plugin compiler {}: {e}", exe.display()),
        })?;

    // Feed stdin and drain stdout/stderr on threads, so no pipe fills up.
    let mut stdin = child.stdin.take().expect("piped");
    let input = wasm.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let cap = limits.compile_memory_bytes;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        (&mut stdout).take(cap).read_to_end(&mut out).map(|_| out)
    });
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stderr).take(64 << 10).read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });

    let deadline = Instant::now() + limits.compile_timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(SandboxError::Engine { message: format!("waiting for the plugin compiler: {e}") }),
        }
    };
    let _ = feeder.join();
    let artifact = reader.join().ok().and_then(Result::ok);
    let stderr = errors.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(limit_error(format!(
            "compiling took longer than `plugins.compile_timeout` ({:?})",
            limits.compile_timeout
        )));
    };
    if status.success() {
        return artifact.ok_or_else(|| compile_error(plugin, "the compiler's output could not be read".to_owned()));
    }
    let said = super::text::escape(stderr.trim()).into_owned();
    if status.code() == Some(CHILD_INVALID) {
        return Err(compile_error(plugin, said));
    }
    use std::os::unix::process::ExitStatusExt;
    let ran_out =
        said.contains("memory allocation") || said.contains("out of memory") || said.contains("Cannot allocate");
    Err(limit_error(match status.signal() {
        Some(libc::SIGXCPU) | Some(libc::SIGKILL) => {
            format!("compiling used more than its CPU time ({cpu_seconds} s, from `plugins.compile_timeout`)")
        }
        _ if ran_out => {
            format!("compiling needed more than `plugins.compile_memory_limit` ({} bytes)", limits.compile_memory_bytes)
        }
        Some(signal) => format!("the compiler was killed by signal {signal}: {said}"),
        None => format!("the compiler failed ({status}): {said}"),
    }))
}

/// CPU seconds for a compile: the wall-clock limit on every core the
/// compiler's threads may use, at least one second.
fn cpu_budget(timeout: Duration) -> u64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    timeout.as_secs().max(1).saturating_mul(cores)
}

/// The child's exit code for a component that does not compile.
const CHILD_INVALID: i32 = 65;

/// The compile child: `floe-host __floe-compile-plugin <memory bytes> <cpu
/// seconds> <max component bytes>`. Reads the component from stdin and
/// writes the serialized artifact to stdout; returns the exit code.
pub fn child_main(args: &[String]) -> i32 {
    let parse = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok());
    let (Some(memory), Some(cpu), Some(max_bytes)) = (parse(0), parse(1), parse(2)) else {
        eprintln!("usage: floe-host {CHILD_ARG} <memory bytes> <cpu seconds> <max component bytes>");
        return 2;
    };
    if let Err(e) = confine(memory, cpu) {
        eprintln!("cannot limit the compiler: {e}");
        return 2;
    }
    let mut wasm = Vec::new();
    if let Err(e) = std::io::stdin().lock().take(max_bytes.saturating_add(1)).read_to_end(&mut wasm) {
        eprintln!("cannot read the component: {e}");
        return 2;
    }
    let engine = match Engine::new(&super::engine::config()) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("cannot set up the compiler: {e:#}");
            return 2;
        }
    };
    match engine.precompile_component(&wasm) {
        Ok(artifact) => match std::io::stdout().lock().write_all(&artifact) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("cannot write the compiled component: {e}");
                2
            }
        },
        Err(e) => {
            eprintln!("{}", super::call::error_text(&e));
            CHILD_INVALID
        }
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// Limits this process: no core dump, `cpu_seconds` of CPU, and `memory`
/// bytes of address space on top of what it has mapped now (the executable
/// and its libraries).
fn confine(memory: u64, cpu_seconds: u64) -> std::io::Result<()> {
    let set = |resource, value: u64| {
        let limit = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
        // SAFETY: setrlimit reads the struct and changes only this process's limits.
        if unsafe { libc::setrlimit(resource, &limit) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
    };
    set(libc::RLIMIT_CORE, 0)?;
    set(libc::RLIMIT_CPU, cpu_seconds)?;
    let mapped = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|pages| pages.parse::<u64>().ok()))
        .map_or(0, |pages| pages.saturating_mul(page_size()));
    set(libc::RLIMIT_AS, mapped.saturating_add(memory))
}
