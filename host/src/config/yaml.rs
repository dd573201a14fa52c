//! YAML parsing that keeps positions: serde errors carry line, column and key
//! path, and [`locate`] finds the line of a key path for errors found after
//! parsing (an unknown profile, a missing file).

use std::path::Path;

use serde::de::DeserializeOwned;

use super::error::ConfigError;

/// Parses `text` (the content of `file`) into `T`, reporting the first
/// syntax or type error with its position and key path.
pub fn parse<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let key = error.path().to_string();
        let inner = error.into_inner();
        let position = inner.location().map(|l| (l.line(), l.column()));
        let key = if key == "." { String::new() } else { key };
        let message = clean_message(&inner.to_string(), &key);
        let help = help_for(&message);
        let mut error = ConfigError::new(file, key, message).at(position);
        error.help = help;
        error
    })
}

/// serde_yaml prefixes the path (or its parent's) and appends "at line L
/// column C"; we print both ourselves, in one place.
fn clean_message(message: &str, key: &str) -> String {
    let mut message = message;
    if let Some((prefix, rest)) = message.split_once(": ")
        && !prefix.is_empty()
        && key.starts_with(prefix)
    {
        message = rest;
    }
    let message = match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    };
    message.to_string()
}

fn help_for(message: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        Some("remove the key or fix its spelling (the accepted keys are listed)".into())
    } else if message.starts_with("missing field") {
        Some("add the key; see the README's configuration reference".into())
    } else {
        None
    }
}

/// One segment of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits a key path such as `transforms[2].source` into segments.
pub fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(close) = rest.find(']') {
            if let Ok(index) = rest[1..close].parse() {
                out.push(Segment::Index(index));
            }
            rest = &rest[close + 1..];
        }
    }
    out
}

/// Finds the 1-based (line, column) of a key path in block-style YAML.
///
/// A heuristic over indentation, not a YAML parser: it is used only to point
/// at errors found after parsing, and returns `None` rather than guess when
/// the layout is unusual (flow style, anchors).
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0usize;
    let mut parent_indent: isize = -1;
    let mut found = None;
    for segment in segments(path) {
        match segment {
            Segment::Key(key) => {
                let (line, indent) = find_key(&lines, start, parent_indent, key)?;
                found = Some((line + 1, indent + 1));
                parent_indent = indent as isize;
                start = line + 1;
            }
            Segment::Index(index) => {
                let line = find_item(&lines, start, parent_indent, index)?;
                let indent = indent_of(lines[line]);
                found = Some((line + 1, indent + 1));
                parent_indent = indent as isize;
                // The item's first key sits on the dash line.
                start = line;
            }
        }
    }
    found
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_content(line: &str) -> bool {
    let trimmed = line.trim();
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

/// The indentation and text of a line's first key, looking through `- `.
fn effective(line: &str) -> (usize, &str) {
    let mut indent = indent_of(line);
    let mut rest = &line[indent..];
    while let Some(after) = rest.strip_prefix("- ") {
        let spaces = after.len() - after.trim_start_matches(' ').len();
        indent += 2 + spaces;
        rest = &after[spaces..];
    }
    (indent, rest)
}

fn find_key(lines: &[&str], start: usize, parent_indent: isize, key: &str) -> Option<(usize, usize)> {
    let mut child_indent = None;
    for (i, line) in lines.iter().enumerate().skip(start) {
        if !is_content(line) {
            continue;
        }
        let (indent, rest) = effective(line);
        if (indent as isize) <= parent_indent && i > start {
            return None;
        }
        if (indent as isize) <= parent_indent {
            continue;
        }
        let child = *child_indent.get_or_insert(indent);
        if indent != child {
            continue;
        }
        let name = rest.split(':').next().unwrap_or("").trim().trim_matches(|c| c == '"' || c == '\'');
        if name == key && rest.contains(':') {
            return Some((i, indent));
        }
    }
    None
}

fn find_item(lines: &[&str], start: usize, parent_indent: isize, index: usize) -> Option<usize> {
    let mut item_indent = None;
    let mut seen = 0usize;
    for (i, line) in lines.iter().enumerate().skip(start) {
        if !is_content(line) {
            continue;
        }
        let indent = indent_of(line);
        let is_item = line[indent..].starts_with('-');
        if (indent as isize) < parent_indent || ((indent as isize) == parent_indent && !is_item) {
            return None;
        }
        if !is_item {
            continue;
        }
        let item = *item_indent.get_or_insert(indent);
        if indent != item {
            continue;
        }
        if seen == index {
            return Some(i);
        }
        seen += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
name: demo
plugins:
  csv:
    path: a.wasm
transforms:
  - name: one
    kind: ingest
    source: data/one.csv
  # a comment
  - name: two
    kind: sql
    sql: models/two.sql
";

    #[test]
    fn locates_keys_and_list_items() {
        assert_eq!(locate(DOC, "name"), Some((1, 1)));
        assert_eq!(locate(DOC, "plugins.csv.path"), Some((4, 5)));
        assert_eq!(locate(DOC, "transforms[0].source"), Some((8, 5)));
        assert_eq!(locate(DOC, "transforms[1].name"), Some((10, 5)));
        assert_eq!(locate(DOC, "transforms[1].sql"), Some((12, 5)));
        assert_eq!(locate(DOC, "transforms[2].sql"), None);
        assert_eq!(locate(DOC, "plugins.nope"), None);
    }

    #[test]
    fn parse_errors_carry_position_and_path() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct Item {
            #[allow(dead_code)]
            name: String,
        }
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct Doc {
            #[allow(dead_code)]
            items: Vec<Item>,
        }
        let err = parse::<Doc>(Path::new("f.yaml"), "items:\n  - name: a\n  - nme: b\n").unwrap_err();
        assert_eq!(err.key, "items[1].nme");
        assert_eq!(err.position, Some((3, 5)));
        assert!(err.message.starts_with("unknown field `nme`, expected `name`"), "{}", err.message);
    }
}
