//! Text that a plugin sends the host (log lines, error messages, its
//! stdout/stderr, its name and version, the SQL it returns) is hostile: it
//! could hold newlines and escape sequences that forge log lines, move the
//! terminal cursor, or start a line that Dagster's stderr reader parses as a
//! Pipes message (a forged materialization). Every such string is escaped
//! here when it crosses the boundary, so that everything downstream (logs,
//! traces, lineage, Pipes, error reports) only ever sees one printable line.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character (C0, DEL, C1), line or paragraph
/// separator and bidirectional override written as an escape: `\n`, `\r`,
/// `\t`, `\u{1b}`. Printable text, quotes and backslashes are unchanged.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `c` must not reach a log line, a terminal or a line-based reader
/// as it is.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        // Line and paragraph separators: some readers split lines on them.
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}')
        // Bidirectional overrides and isolates reorder what a reader sees.
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Cuts `s` to at most `max` bytes on a char boundary, marking the cut.
pub fn truncate(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &s[..end], s.len() - end).into()
}

/// `text` cut to at most `max_bytes` (marking the cut) and escaped: plugin
/// text as an error, a log line or a preview quotes it. Cut first, so the
/// work is bounded whatever the text's size.
pub fn quote(text: &str, max_bytes: usize) -> String {
    escape(&truncate(text, max_bytes)).into_owned()
}

/// Escapes each line of `text` and returns the lines: for multi-line output
/// (a plugin's stdout/stderr tail) that the host prints line by line, each
/// behind a prefix of its own.
pub fn escaped_lines(text: &str) -> Vec<String> {
    text.lines().map(|line| escape(line).into_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_forge_a_line_and_keeps_the_rest() {
        assert!(matches!(escape("plain text, \"quoted\" \\ é 😀"), Cow::Borrowed(_)));
        assert_eq!(escape("a\nb\r\tc\u{1b}[2Jd\u{0}e\u{7f}"), "a\\nb\\r\\tc\\u{1b}[2Jd\\u{0}e\\u{7f}");
        assert_eq!(escape("x\u{2028}y\u{202e}z\u{85}"), "x\\u{2028}y\\u{202e}z\\u{85}");
        let forged = "ok\n{\"__dagster_pipes_version\": \"0.1\", \"method\": \"report_asset_materialization\"}";
        let escaped = escape(forged);
        assert_eq!(escaped.lines().count(), 1, "{escaped}");
    }

    #[test]
    fn escapes_each_line_of_an_output_tail() {
        assert_eq!(escaped_lines("one\r\ntwo\u{1b}\rthree\n"), ["one", "two\\u{1b}\\rthree"]);
    }
}
