//! Where a place in a rendered model comes from in the model's file, so that
//! DuckDB's complaint about rendered SQL points at the line the user wrote.

use std::ops::Range;

/// One stretch of rendered SQL and the template text that produced it.
#[derive(Clone, Debug)]
pub struct Stretch {
    pub output: Range<usize>,
    pub source: Range<usize>,
    /// Template text copied verbatim (offsets map one to one); else the
    /// output of a `{{ … }}` (it maps to the expression's start).
    pub verbatim: bool,
}

/// The model's own text and the stretches of its rendering.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    pub source: String,
    /// Empty when the rendered SQL is the file itself.
    pub stretches: Vec<Stretch>,
}

impl SourceMap {
    /// The 1-based line and column in the model file of byte `offset` of
    /// the rendered SQL.
    pub fn locate(&self, offset: usize) -> (usize, usize) {
        let in_source = if self.stretches.is_empty() {
            offset
        } else {
            match self.stretches.iter().find(|s| s.output.contains(&offset)).or(self.stretches.last()) {
                Some(s) if s.verbatim => s.source.start + offset.saturating_sub(s.output.start),
                Some(s) => s.source.start,
                None => 0,
            }
        };
        line_column(&self.source, in_source)
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The byte offset of 1-based `line` and `column` (in characters) of `text`.
pub fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let rest = &text[start.min(text.len())..];
    start + rest.char_indices().nth(column.saturating_sub(1)).map_or(rest.len(), |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_rendered_offsets_to_the_template() {
        // "SELECT {{ x }} FROM t" rendered to "SELECT a_long_value FROM t".
        let map = SourceMap {
            source: "SELECT {{ x }}\nFROM t".into(),
            stretches: vec![
                Stretch { output: 0..7, source: 0..7, verbatim: true },
                Stretch { output: 7..19, source: 7..14, verbatim: false },
                Stretch { output: 19..26, source: 14..21, verbatim: true },
            ],
        };
        assert_eq!(map.locate(10), (1, 8));
        assert_eq!(map.locate(25), (2, 6));
        assert_eq!(offset_of("ab\ncd", 2, 2), 4);
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
