//! Table rows as a text table for a terminal (`floe-host show`, `plugin
//! test`). The rows are plugin data: every cell is cut and escaped before
//! the layout. Apart from `sandbox::text`, which the fuzz target compiles
//! without arrow-cast.

/// Longest cell a preview shows, in bytes.
const PREVIEW_CELL_BYTES: usize = 200;

/// The first `limit` rows of `batches` as a text table for a terminal
/// (`floe-host show`, `plugin test`). Every cell is plugin data: each is
/// formatted, cut at 200 bytes and escaped before the table is laid
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
                return format!("(cannot format column `{}`)", crate::sandbox::text::escape(field.name()));
            };
            let cells: arrow_array::StringArray = (0..batch.num_rows())
                .map(|row| {
                    use arrow_array::Array;
                    (!column.is_null(row))
                        .then(|| crate::sandbox::text::quote(&formatter.value(row).to_string(), PREVIEW_CELL_BYTES))
                })
                .collect();
            fields.push(arrow_schema::Field::new(
                crate::sandbox::text::escape(field.name()),
                arrow_schema::DataType::Utf8,
                true,
            ));
            columns.push(Arc::new(cells));
        }
        match arrow_array::RecordBatch::try_new(Arc::new(arrow_schema::Schema::new(fields)), columns) {
            Ok(batch) => shown.push(batch),
            Err(e) => return format!("(cannot format rows: {e})"),
        }
    }
    arrow_cast::pretty::pretty_format_batches(&shown)
        .map(|table| crate::sandbox::text::escaped_lines(&table.to_string()).join("\n"))
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
}
