//! Plugin output the host keeps: log lines from the `floe:plugin/log` import
//! (forwarded to `tracing`, bounded, escaped, and kept in a ring for error
//! reports) and the tail of the plugin's stdout/stderr.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::error::PluginReport;

/// Log lines kept for error reports.
const RING_LINES: usize = 20;
/// Longest log line kept or forwarded, in bytes; longer lines are cut.
const MAX_LINE_BYTES: usize = 2048;
/// Lines and bytes forwarded to `tracing` per store; once either is reached,
/// later lines only reach the ring. The byte budget keeps a plugin that logs
/// long lines at error level from flooding the host's stderr.
const MAX_FORWARDED_LINES: u64 = 10_000;
const MAX_FORWARDED_BYTES: u64 = 1 << 20;
/// Bytes of stdout/stderr kept (the last ones).
const OUTPUT_TAIL_BYTES: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// The log of one plugin store.
pub(super) struct PluginLog {
    step: String,
    plugin: String,
    ring: VecDeque<String>,
    forwarded: u64,
    forwarded_bytes: u64,
    dropping: bool,
    output: OutputTail,
}

impl PluginLog {
    pub(super) fn new(step: &str, plugin: &str) -> Self {
        Self {
            step: step.to_owned(),
            plugin: plugin.to_owned(),
            ring: VecDeque::with_capacity(RING_LINES),
            forwarded: 0,
            forwarded_bytes: 0,
            dropping: false,
            output: OutputTail::default(),
        }
    }

    /// Where the plugin's stdout and stderr go.
    pub(super) fn output(&self) -> OutputTail {
        self.output.clone()
    }

    pub(super) fn log(&mut self, level: Level, message: &str) {
        // Cut first (bounded work), then escape: one printable line.
        let message = super::text::quote(message, MAX_LINE_BYTES);
        let (step, plugin) = (self.step.as_str(), self.plugin.as_str());
        if !self.dropping
            && (self.forwarded >= MAX_FORWARDED_LINES
                || self.forwarded_bytes + message.len() as u64 > MAX_FORWARDED_BYTES)
        {
            self.dropping = true;
            tracing::warn!(target: "floe::plugin", step, plugin, lines = MAX_FORWARDED_LINES,
                bytes = MAX_FORWARDED_BYTES, "The plugin logs too much; further lines are dropped.");
        }
        if !self.dropping {
            self.forwarded += 1;
            self.forwarded_bytes += message.len() as u64;
            match level {
                Level::Trace => tracing::trace!(target: "floe::plugin", step, plugin, "{message}"),
                Level::Debug => tracing::debug!(target: "floe::plugin", step, plugin, "{message}"),
                Level::Info => tracing::info!(target: "floe::plugin", step, plugin, "{message}"),
                Level::Warn => tracing::warn!(target: "floe::plugin", step, plugin, "{message}"),
                Level::Error => tracing::error!(target: "floe::plugin", step, plugin, "{message}"),
            }
        }
        if self.ring.len() == RING_LINES {
            self.ring.pop_front();
        }
        self.ring.push_back(format!("{}: {message}", level_name(level)));
    }

    pub(super) fn report(&self) -> PluginReport {
        PluginReport { log_lines: self.ring.iter().cloned().collect(), output_tail: self.output.text() }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "TRACE",
        Level::Debug => "DEBUG",
        Level::Info => "INFO",
        Level::Warn => "WARN",
        Level::Error => "ERROR",
    }
}

/// Keeps the last `OUTPUT_TAIL_BYTES` bytes written to it and accepts every
/// write, so a chatty plugin neither blocks nor fails on stdout/stderr.
#[derive(Clone, Default)]
pub(super) struct OutputTail(Arc<Mutex<VecDeque<u8>>>);

impl OutputTail {
    fn append(&self, bytes: &[u8]) {
        let mut tail = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = &bytes[bytes.len().saturating_sub(OUTPUT_TAIL_BYTES)..];
        let overflow = (tail.len() + bytes.len()).saturating_sub(OUTPUT_TAIL_BYTES);
        tail.drain(..overflow);
        tail.extend(bytes);
    }

    pub(super) fn text(&self) -> String {
        let tail = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = tail.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).into_owned()
    }
}

impl wasmtime_wasi::cli::IsTerminal for OutputTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for OutputTail {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for OutputTail {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_and_cuts_long_ones() {
        let mut log = PluginLog::new("s", "p");
        for i in 0..30 {
            log.log(Level::Info, &format!("line {i}"));
        }
        log.log(Level::Warn, &"é".repeat(MAX_LINE_BYTES));
        let report = log.report();
        assert_eq!(report.log_lines.len(), RING_LINES);
        assert_eq!(report.log_lines[0], "INFO: line 11");
        let last = report.log_lines.last().unwrap();
        assert!(last.starts_with("WARN: é") && last.ends_with("bytes cut)"), "{last}");
    }

    #[test]
    fn forwarding_stops_at_the_byte_budget() {
        let mut log = PluginLog::new("s", "p");
        let line = "x".repeat(MAX_LINE_BYTES);
        for _ in 0..(MAX_FORWARDED_BYTES as usize / MAX_LINE_BYTES + 10) {
            log.log(Level::Error, &line);
        }
        assert!(log.dropping);
        assert_eq!(log.forwarded_bytes, MAX_FORWARDED_BYTES);
        assert_eq!(log.report().log_lines.len(), RING_LINES);
    }

    #[test]
    fn output_tail_keeps_the_end() {
        let tail = OutputTail::default();
        tail.append(&vec![b'a'; OUTPUT_TAIL_BYTES]);
        tail.append(b"panicked at src/lib.rs");
        let text = tail.text();
        assert_eq!(text.len(), OUTPUT_TAIL_BYTES);
        assert!(text.ends_with("aapanicked at src/lib.rs"));
    }
}
