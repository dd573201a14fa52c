//! Progress of the running steps on a terminal: one status line under the
//! logs (step, rows produced and bytes read so far, a bar when the total is
//! known, elapsed time), redrawn four times a second once a step has run for a second.
//! Steps that compute at once share the line: their names joined by `+`,
//! the rows and bytes of all of them since the first started, no bar.
//! Before the first step, the same line says which plugins are compiling.
//!
//! Steps only bump counters (relaxed atomic adds, per batch or read buffer,
//! never per row). Drawing happens on a thread of its own, and only after
//! [`enable`], which `main` calls when stderr is a terminal with text logs:
//! JSON logs (pipes, Kubernetes) never get a status line. Log lines go
//! through [`TerminalWriter`], which clears the status line first, so the two
//! never mix.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static ROWS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static ENABLED: AtomicBool = AtomicBool::new(false);
/// The running step, and the terminal: whoever writes to stderr holds it.
static TERMINAL: Mutex<Terminal> = Mutex::new(Terminal { steps: Vec::new(), shown: false });

struct Terminal {
    /// The running steps, or the one phase.
    steps: Vec<Running>,
    /// A status line is on screen (the cursor is at its end).
    shown: bool,
}

struct Running {
    name: String,
    started: Instant,
    /// The bytes the step will read, when known (an ingest's source file).
    total_bytes: Option<u64>,
    /// A step, with rows and bytes; else a phase with a name and a time only.
    counters: bool,
}

/// Show a step only once it has run this long.
const QUIET_START: Duration = Duration::from_secs(1);
const REDRAW: Duration = Duration::from_millis(250);
const CLEAR_LINE: &[u8] = b"\r\x1b[2K";

fn terminal() -> MutexGuard<'static, Terminal> {
    TERMINAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A step starts: the counters restart unless other steps are running.
pub fn step_started(name: &str, total_bytes: Option<u64>) {
    let mut terminal = terminal();
    terminal.steps.retain(|running| running.counters);
    if terminal.steps.is_empty() {
        ROWS.store(0, Ordering::Relaxed);
        BYTES.store(0, Ordering::Relaxed);
    }
    terminal.steps.push(Running { name: name.to_string(), started: Instant::now(), total_bytes, counters: true });
}

/// A phase that is not a step starts (`compiling plugins csv-ingest`): the
/// line shows its name and elapsed time. [`phase_finished`] ends it.
pub fn phase_started(name: &str) {
    terminal().steps =
        vec![Running { name: name.to_string(), started: Instant::now(), total_bytes: None, counters: false }];
}

/// The step ended (committed, skipped or failed): it leaves the line, and
/// the line goes away with the last step.
pub fn step_finished(name: &str) {
    let mut terminal = terminal();
    terminal.steps.retain(|running| running.name != name);
    clear_when_idle(&mut terminal);
}

/// The phase ended: its line goes away.
pub fn phase_finished() {
    let mut terminal = terminal();
    terminal.steps.clear();
    clear_when_idle(&mut terminal);
}

fn clear_when_idle(terminal: &mut Terminal) {
    if terminal.steps.is_empty() && terminal.shown {
        let _ = std::io::stderr().write_all(CLEAR_LINE);
        terminal.shown = false;
    }
}

pub fn add_rows(rows: u64) {
    ROWS.fetch_add(rows, Ordering::Relaxed);
}

pub fn add_bytes(bytes: u64) {
    BYTES.fetch_add(bytes, Ordering::Relaxed);
}

/// Starts drawing the status line on stderr. Call once, and only when stderr
/// is a terminal with text logs.
pub fn enable() {
    if ENABLED.swap(true, Ordering::Relaxed) {
        return;
    }
    let spawned = std::thread::Builder::new().name("progress".into()).spawn(|| {
        loop {
            std::thread::sleep(REDRAW);
            let mut terminal = terminal();
            let Some(first) = terminal.steps.first() else { continue };
            let elapsed = first.started.elapsed();
            if elapsed < QUIET_START {
                continue;
            }
            let line = if !first.counters {
                format!("  {}  {}s", first.name, elapsed.as_secs())
            } else {
                let steps: Vec<(&str, Option<u64>)> =
                    terminal.steps.iter().map(|s| (s.name.as_str(), s.total_bytes)).collect();
                render_steps(&steps, ROWS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed), elapsed)
            };
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(CLEAR_LINE);
            let _ = stderr.write_all(line.as_bytes());
            let _ = stderr.flush();
            terminal.shown = true;
        }
    });
    if spawned.is_err() {
        ENABLED.store(false, Ordering::Relaxed);
    }
}

/// The status line of the running steps (name, total bytes): one step as
/// [`render`] draws it; several share the counters, named `a + b`, with no
/// bar (no one total applies).
pub fn render_steps(steps: &[(&str, Option<u64>)], rows: u64, bytes: u64, elapsed: Duration) -> String {
    match steps {
        [(name, total)] => render(name, rows, bytes, *total, elapsed),
        _ => {
            let names: Vec<&str> = steps.iter().map(|(name, _)| *name).collect();
            render(&names.join(" + "), rows, bytes, None, elapsed)
        }
    }
}

/// The status line: `raw_orders  [#######-------]  42%  1,204,311 rows  45.6 MB  12s`.
pub fn render(step: &str, rows: u64, bytes: u64, total_bytes: Option<u64>, elapsed: Duration) -> String {
    const WIDTH: usize = 20;
    let mut line = format!("  {step}  ");
    if let Some(total) = total_bytes.filter(|t| *t > 0) {
        let fraction = (bytes as f64 / total as f64).clamp(0.0, 1.0);
        let filled = (fraction * WIDTH as f64).round() as usize;
        line.push_str(&format!(
            "[{}{}] {:>3}%  ",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            (fraction * 100.0) as u32
        ));
    }
    line.push_str(&format!("{} rows  {}  {}s", thousands(rows), human_bytes(bytes), elapsed.as_secs()));
    line
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// stderr for log lines while a status line may be on screen: each log line
/// clears it first (the drawing thread puts it back).
#[derive(Clone, Copy, Debug, Default)]
pub struct TerminalWriter;

/// One log line's write, holding the terminal.
pub struct LogLine {
    terminal: MutexGuard<'static, Terminal>,
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut stderr = std::io::stderr().lock();
        if self.terminal.shown {
            stderr.write_all(CLEAR_LINE)?;
            self.terminal.shown = false;
        }
        stderr.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for TerminalWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine { terminal: terminal() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_at_once_share_one_line_without_a_bar() {
        let elapsed = Duration::from_secs(3);
        assert_eq!(
            render_steps(&[("raw_orders", Some(1_000)), ("stg_customers", None)], 1_000, 500, elapsed),
            "  raw_orders + stg_customers  1,000 rows  500 B  3s"
        );
        assert_eq!(
            render_steps(&[("raw_orders", Some(1_000))], 1_000, 500, elapsed),
            render("raw_orders", 1_000, 500, Some(1_000), elapsed)
        );
    }

    #[test]
    fn renders_rows_bytes_and_a_bar_when_the_total_is_known() {
        let elapsed = Duration::from_millis(12_400);
        assert_eq!(
            render("stg_orders", 1_204_311, 45_600_000, None, elapsed),
            "  stg_orders  1,204,311 rows  45.6 MB  12s"
        );
        assert_eq!(
            render("raw_orders", 999, 50, Some(200), elapsed),
            "  raw_orders  [#####---------------]  25%  999 rows  50 B  12s"
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
    }

    #[test]
    fn a_log_line_clears_the_status_line_first() {
        terminal().shown = true;
        let mut line = TerminalWriter.make_writer_for_test();
        line.write_all(b"\n").unwrap();
        assert!(!line.terminal.shown, "the status line is cleared before the log line");
    }

    impl TerminalWriter {
        fn make_writer_for_test(&self) -> LogLine {
            use tracing_subscriber::fmt::MakeWriter;
            self.make_writer()
        }
    }
}
