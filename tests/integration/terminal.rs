//! What a person at a terminal sees: a status line for the running step
//! (under a real pseudo-terminal, through util-linux `script`), cleared before
//! every log line; and never a status line when stderr is not a terminal.

use std::process::Command;

use crate::support::{example, floe_host, temp_dir};

#[test]
fn a_terminal_shows_the_running_step_and_its_progress_between_clean_log_lines() {
    let state = temp_dir();
    let typescript = state.path().join("typescript");
    let command = format!(
        "{} run {} --state-dir {}",
        env!("CARGO_BIN_EXE_floe-host"),
        example("customer-analytics").display(),
        state.path().join("state").display()
    );
    let status = Command::new("script")
        .args(["-qfec", &command, typescript.to_str().unwrap()])
        .env_remove("FLOE_LOG_FORMAT")
        .env_remove("FLOE_PLATFORM_FILE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("util-linux `script` runs");
    assert!(status.success(), "floe-host under a terminal failed");
    let text = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    // Before the first step the plugins compile, for seconds: the line names
    // the one compiling. (A step's own line, with rows and a bar, is
    // `observe::progress`'s unit test: the demo's steps end within a second.)
    // (dedup, the largest, takes seconds even on a fast machine.)
    let status_line = "\r\x1b[2K  compiling plugin dedup (3/4)  ";
    assert!(text.contains(status_line), "no status line for compiling dedup:\n{text:?}");
    // Every log line starts on a clean line: after a newline, or after the
    // status line was cleared (`\r` + erase line).
    for needle in ["Committed step.", "Compiled the plugin."] {
        for (at, _) in text.match_indices(needle) {
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let line = &text[line_start..at];
            let visible = line.rsplit("\x1b[2K").next().unwrap();
            assert!(
                !visible.contains("rows  ") && !visible.contains("compiling plugin"),
                "a log line was written over a status line: {line:?}"
            );
        }
    }
    assert!(text.contains("gold.large_orders"), "the run finished:\n{text}");
}

#[test]
fn without_a_terminal_there_is_no_status_line() {
    let state = temp_dir();
    let run = floe_host(&[
        "run",
        example("customer-analytics").to_str().unwrap(),
        "--state-dir",
        state.path().to_str().unwrap(),
        "--log-format",
        "text",
    ])
    .expect_code(0);
    assert!(!run.stderr.contains('\x1b'), "escape codes on a non-terminal:\n{}", run.stderr);
    assert!(run.stderr.contains("Committed step."), "{}", run.stderr);
}
