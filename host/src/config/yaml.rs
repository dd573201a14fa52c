//! YAML parsing that keeps positions: serde errors carry line, column and key
//! path, and [`locate`] finds the line of a key path for errors found after
//! parsing (an unknown profile, a missing file).

use std::path::Path;

use serde::de::DeserializeOwned;

use super::error::ConfigError;

/// Parses `text` (the content of `file`) as a YAML document, reporting a
/// syntax error with its position.
pub fn parse_value(file: &Path, text: &str) -> Result<serde_yaml::Value, ConfigError> {
    serde_yaml::from_str(text).map_err(|error| {
        let position = error.location().map(|l| (l.line(), l.column()));
        ConfigError::new(file, "", format!("invalid YAML: {}", clean_message(&error.to_string(), "")))
            .at(position)
            .help("check the indentation and quoting around this position")
    })
}

/// Deserializes an already parsed document into `T`, reporting the first
/// type error with its key path and (found through `locate`) its position.
pub fn from_value<T: DeserializeOwned>(file: &Path, text: &str, value: serde_yaml::Value) -> Result<T, ConfigError> {
    from_value_at(file, text, value, "")
}

/// [`from_value`] for the node at key path `at` of the document (`transforms[2]`):
/// the error's key and position are the document's.
fn from_value_at<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    value: serde_yaml::Value,
    at: &str,
) -> Result<T, ConfigError> {
    let document = value.clone();
    serde_path_to_error::deserialize(value).map_err(|error| {
        let key = error.path().to_string();
        let key = if key == "." { String::new() } else { key };
        let message = clean_message(&error.into_inner().to_string(), &key);
        // Inside tagged enums serde loses the innermost key; the message names it.
        let key = match unknown_field(&message) {
            Some(field) if !key.ends_with(&format!(".{field}")) && key != field => {
                if key.is_empty() {
                    field.to_string()
                } else {
                    format!("{key}.{field}")
                }
            }
            _ if message.starts_with(LITERAL_SECRET) => literal_secret_key(&document, &key).unwrap_or(key),
            _ => key,
        };
        let key = match (at, key.as_str()) {
            ("", _) => key,
            (_, "") => at.to_string(),
            (_, rest) if rest.starts_with('[') => format!("{at}{rest}"),
            (_, rest) => format!("{at}.{rest}"),
        };
        let position = locate_or_parent(text, &key);
        let help = help_for(&message, &key);
        let mut error = ConfigError::new(file, key, message).at(position);
        error.help = help;
        error
    })
}

/// Checks one member of a section alone: [`member`]`::<E>` for the type `E`
/// of the section's members.
pub type MemberCheck = fn(&Path, &str, serde_yaml::Value, &str) -> Option<ConfigError>;

/// The type error of `value`, the member at key path `at`, as an `E`.
pub fn member<E: DeserializeOwned>(file: &Path, text: &str, value: serde_yaml::Value, at: &str) -> Option<ConfigError> {
    from_value_at::<E>(file, text, value, at).err()
}

/// The type error of one field of a struct section, checked alone as an
/// `E` whose other fields take their defaults: `at` is `section.field`. A
/// section of settings (`plugins:`) thus reports each bad setting.
pub fn field<E: DeserializeOwned>(file: &Path, text: &str, value: serde_yaml::Value, at: &str) -> Option<ConfigError> {
    let (section, name) = at.rsplit_once('.')?;
    let mut alone = serde_yaml::Mapping::new();
    alone.insert(name.into(), value);
    from_value_at::<E>(file, text, serde_yaml::Value::Mapping(alone), section).err()
}

/// The type errors of a document that does not deserialize as `T`: one per
/// bad member of each of its top-level `sections` (the elements of a list,
/// the entries of a map, each checked alone), then the first error of the
/// rest of the document without them. So a file with three broken steps
/// reports all three, not the first. Empty when no member is at fault (the
/// caller reports the document's own error).
pub fn errors_by_member<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    document: &serde_yaml::Value,
    sections: &[(&str, MemberCheck)],
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut rest = document.clone();
    for &(section, check) in sections {
        let Some(node) = rest.as_mapping_mut().and_then(|m| m.get_mut(section)) else { continue };
        match node {
            serde_yaml::Value::Sequence(elements) => {
                let mut good = Vec::new();
                for (i, element) in elements.drain(..).enumerate() {
                    match check(file, text, element.clone(), &format!("{section}[{i}]")) {
                        Some(error) => errors.push(error),
                        None => good.push(element),
                    }
                }
                *elements = good;
            }
            serde_yaml::Value::Mapping(entries) => {
                let bad: Vec<serde_yaml::Value> = entries
                    .iter()
                    .filter_map(|(key, value)| {
                        let name = key.as_str()?;
                        let error = check(file, text, value.clone(), &format!("{section}.{name}"))?;
                        errors.push(error);
                        Some(key.clone())
                    })
                    .collect();
                for key in bad {
                    entries.remove(&key);
                }
            }
            _ => {}
        }
    }
    if errors.is_empty() {
        return errors;
    }
    if let Err(error) = from_value::<T>(file, text, rest) {
        errors.push(error);
    }
    errors.sort_by_key(|e| e.position.unwrap_or((usize::MAX, 0)));
    errors
}

/// Parses `text` straight into `T` (for tests and simple callers).
pub fn parse<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let value = parse_value(file, text)?;
    from_value(file, text, value)
}

/// How platform.rs rejects a literal in a secret field.
const LITERAL_SECRET: &str = "a literal credential is not allowed here";

/// Inside tagged enums serde reports a literal secret at the enum's key; find
/// the string-valued secret field below it.
fn literal_secret_key(document: &serde_yaml::Value, key: &str) -> Option<String> {
    let mut node = document;
    for segment in segments(key) {
        node = match segment {
            Segment::Key(k) => node.get(k)?,
            Segment::Index(i) => node.get(i)?,
        };
    }
    fn search(node: &serde_yaml::Value, path: String) -> Option<String> {
        let map = node.as_mapping()?;
        for (k, v) in map {
            let name = k.as_str()?;
            let child = if path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
            if matches!(name, "client_secret" | "token") && v.is_string() {
                return Some(child);
            }
            if let Some(found) = search(v, child) {
                return Some(found);
            }
        }
        None
    }
    search(node, key.to_string())
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn parent(key: &str) -> Option<&str> {
    key.rfind(['.', '[']).map(|i| &key[..i])
}

/// The position of `key`, or of its nearest ancestor that can be found (flow
/// mappings such as `{a: 1}` keep their keys on the parent's line).
pub fn locate_or_parent(text: &str, key: &str) -> Option<(usize, usize)> {
    let mut key = key;
    loop {
        if let Some(position) = locate(text, key) {
            return Some(position);
        }
        key = parent(key)?;
    }
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
    // Drop every " at line L column C" (libyaml adds one per context).
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" at line ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + " at line ".len()..];
        let skip =
            after.find(|c: char| !(c.is_ascii_digit() || c == ' ' || "column".contains(c))).unwrap_or(after.len());
        rest = &after[skip..];
    }
    out.push_str(rest);
    out
}

fn help_for(message: &str, key: &str) -> Option<String> {
    if message.starts_with("unknown field") {
        return Some("remove the key or fix its spelling (the accepted keys are listed)".into());
    }
    // For a missing field the path is its parent's and the message names it.
    let field = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
    let full_key = match field {
        Some(field) if key.is_empty() => field.to_string(),
        Some(field) => format!("{key}.{field}"),
        None => key.to_string(),
    };
    match (example_for(&full_key), field) {
        (Some(example), Some(_)) => Some(format!("add it, for example {example}")),
        (Some(example), None) => Some(format!("for example {example}")),
        (None, Some(_)) => Some("add the key; see the README's configuration reference".into()),
        (None, None) => None,
    }
}

/// A valid value for the key a type or value error is about.
fn example_for(key: &str) -> Option<&'static str> {
    let last = key.rsplit('.').next().unwrap_or(key);
    let last = last.split('[').next().unwrap_or(last);
    let section = key.split('.').next().unwrap_or("");
    Some(match (section, last) {
        ("catalogs", "type") => "`type: sql` (or `rest`, `polaris`)",
        ("storage", "type") => "`type: local` (or `s3`)",
        ("compute", "type") => "`type: duckdb`",
        (_, "mode") if key.contains("credentials") => "`mode: oauth2` (or `bearer`; for storage `static` or `ambient`)",
        (_, "transforms") => {
            "a list of steps: `- {name: stg_orders, layer: silver, kind: sql, sql: models/stg_orders.sql}`"
        }
        (_, "kind") => "`kind: sql` (or `ingest`, `wasm`)",
        (_, "mode") => {
            "`mode: overwrite` (or `append`, `partition_overwrite`, or `merge` with `merge_keys: [order_id]`)"
        }
        (_, "partition_by") => "`partition_by: [order_date]` or `partition_by: [\"day(order_ts)\"]`",
        (_, "merge_keys") => "`merge_keys: [order_id]`",
        (_, "schema_evolution") => "`schema_evolution: add_columns` (or `fail`)",
        (_, "layer") => "`layer: silver`",
        ("name", "name") => "`name: customer-analytics` (the pipeline's name)",
        (_, "name") => "`name: stg_orders`",
        (_, "plugins") if section == "plugins" && key == "plugins" => {
            "`plugins: {csv-ingest: {path: plugins/csv_ingest.wasm}}`"
        }
        (_, "path") => "`path: plugins/csv_ingest.wasm`",
        (_, "source") => "`source: data/orders.csv`",
        (_, "sql") => "`sql: models/stg_orders.sql`",
        (_, "inputs") => "`inputs: [silver.stg_orders]`",
        (_, "config") => "`config: {batch_rows: 65536}`",
        (_, "memory_limit") if section == "plugins" => "`memory_limit: 512MiB`",
        (_, "memory_limit") => "`memory_limit: 2GB`",
        (_, "call_timeout") => "`call_timeout: 30s`",
        (_, "max_output_bytes") => "`max_output_bytes: 64MiB`",
        (_, "spill_limit") => "`spill_limit: 4GiB` (0 never spills)",
        (_, "ingest_parallelism") => "`ingest_parallelism: 2` (1 parses every source in one piece)",
        (_, "ingest_chunk_size") => "`ingest_chunk_size: 8MiB`",
        (_, "threads") => "`threads: 4`",
        (_, "concurrent_steps") => "`concurrent_steps: 2` (1 runs the steps one by one)",
        (_, "client_secret" | "token") => "`{secret_ref: polaris-client-secret}`",
        (_, "client_id") => "`{secret_ref: polaris-client-id}` or a plain string",
        (_, "credentials") => {
            "`credentials: {mode: oauth2, client_id: {secret_ref: id}, client_secret: {secret_ref: secret}}`"
        }
        (_, "uri") => "`uri: http://polaris:8181/api/catalog`",
        (_, "warehouse") => "`warehouse: demo_catalog`",
        (_, "bucket") => "`bucket: lakehouse`",
        (_, "root") => "`root: /data/warehouse`",
        (_, "storage_ref" | "catalog_ref") => "`catalog_ref: default`",
        (_, "namespace") => "`namespace: silver`",
        (_, "version") => "`version: \"1.0.0\"`",
        (_, "traces" | "lineage" | "path_style_access") => "`true` or `false`",
        _ => return None,
    })
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
        // `[n]` pairs, in order; a key may itself hold brackets (`a]b[`), so
        // anything that is not one is skipped.
        while let Some(open) = rest.find('[') {
            let after = &rest[open + 1..];
            let Some(close) = after.find(']') else { break };
            if let Ok(index) = after[..close].parse() {
                out.push(Segment::Index(index));
            }
            rest = &after[close + 1..];
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

    /// Key paths come from what users wrote: a key with brackets in it must
    /// not make the error report panic (found by the config_files fuzz target).
    #[test]
    fn splits_key_paths_whatever_their_brackets() {
        assert_eq!(
            segments("transforms[2].source"),
            [Segment::Key("transforms"), Segment::Index(2), Segment::Key("source")]
        );
        assert_eq!(segments("a[1][3]"), [Segment::Key("a"), Segment::Index(1), Segment::Index(3)]);
        assert_eq!(segments("a[x]b]c[4]"), [Segment::Key("a"), Segment::Index(4)]);
        assert_eq!(segments("[[[[][[]]]]]]] s[[a[["), []);
        assert_eq!(segments("]"), [Segment::Key("]")]);
        assert_eq!(locate("a: 1\n", "[]]]x[[."), None);
    }

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
