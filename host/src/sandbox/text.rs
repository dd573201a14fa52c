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

/// Escapes each line of `text` and returns the lines: for multi-line output
/// (a plugin's stdout/stderr tail) that the host prints line by line, each
/// behind a prefix of its own.
pub fn escaped_lines(text: &str) -> Vec<String> {
    text.lines().map(|line| escape(line).into_owned()).collect()
}

/// Longest cell a preview shows, in characters.
const PREVIEW_CELL_CHARS: usize = 200;

/// The first `limit` rows of `batches` as a text table for a terminal
/// (`floe-host show`, `plugin test`). Every cell is plugin data: each is
/// formatted, cut at 200 characters and escaped before the table is laid
/// out, so that no value moves the cursor or forges a line, and no value's
/// newlines make the layout pad every line of a row to the widest cell.
pub fn preview(batches: &[arrow_array::RecordBatch], limit: usize) -> String {
    use std::sync::Arc;
    let mut shown = Vec::new();
    let mut remaining = limit;
    for batch in batches {
        if remaining == 0 {
            break;
        }
        let take = remaining.min(batch.num_rows());
        let batch = batch.slice(0, take);
        remaining -= take;
        let options = arrow_cast::display::FormatOptions::default();
        let mut fields = Vec::new();
        let mut columns: Vec<arrow_array::ArrayRef> = Vec::new();
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let Ok(formatter) = arrow_cast::display::ArrayFormatter::try_new(column.as_ref(), &options) else {
                return format!("(cannot format column `{}`)", escape(field.name()));
            };
            let cells: arrow_array::StringArray = (0..batch.num_rows())
                .map(|row| {
                    use arrow_array::Array;
                    (!column.is_null(row)).then(|| {
                        let text = formatter.value(row).to_string();
                        let cut: String = text.chars().take(PREVIEW_CELL_CHARS).collect();
                        let cut = if cut.len() < text.len() { format!("{cut}…") } else { cut };
                        escape(&cut).into_owned()
                    })
                })
                .collect();
            fields.push(arrow_schema::Field::new(escape(field.name()), arrow_schema::DataType::Utf8, true));
            columns.push(Arc::new(cells));
        }
        match arrow_array::RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns) {
            Ok(batch) => shown.push(batch),
            Err(e) => return format!("(cannot format rows: {e})"),
        }
    }
    arrow_cast::pretty::pretty_format_batches(&shown)
        .map(|table| escaped_lines(&table.to_string()).join("\n"))
        .unwrap_or_else(|e| format!("(cannot format rows: {e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preview_cuts_and_escapes_every_cell_before_the_layout() {
        use std::sync::Arc;
        let long_lines = "\n".repeat(100_000);
        let wide = "w".repeat(1 << 20);
        let batch = arrow_array::RecordBatch::try_from_iter([
            (
                "a",
                Arc::new(arrow_array::StringArray::from(vec![long_lines.as_str(), "\u{1b}[2Jx"]))
                    as arrow_array::ArrayRef,
            ),
            ("b", Arc::new(arrow_array::StringArray::from(vec![Some(wide.as_str()), None]))),
        ])
        .unwrap();
        let text = preview(&[batch], 10);
        assert!(text.len() < 4096, "{} bytes", text.len());
        assert_eq!(text.lines().count(), 6, "{text}");
        assert!(text.contains("\\u{1b}[2Jx") && !text.contains('\u{1b}'), "{text}");
        assert!(text.contains(&format!("{}…", "w".repeat(200))), "{text}");
    }

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
