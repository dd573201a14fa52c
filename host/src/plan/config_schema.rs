//! A step's plugin `config` checked against the JSON Schema its plugin
//! declares (`meta.info().config-schema`), so a wrong key or value fails at
//! `validate` (and before a run's first step) with file:line:col and exit 2,
//! not in the middle of a run.
//!
//! The config is what floe.yaml says, as JSON (YAML strings, numbers,
//! booleans, null); the plugin later receives each value as a string.
//! Checked, for the config object: `required`, `properties`,
//! `patternProperties`, `additionalProperties` (`false` or a schema); for each
//! value: `type`, `enum`, `const`, `minLength`, `maxLength`, `pattern`,
//! `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`. Other
//! keywords (`anyOf`, `$ref`, `if`, …) are not checked: a schema that uses
//! them is checked less, never refused. The plugin still checks its config
//! itself when it runs.
//!
//! The schema is plugin text: it is bounded ([`MAX_SCHEMA_BYTES`]), its
//! patterns compile with a size limit (the `regex` crate matches in linear
//! time), and every string of it that reaches a message is escaped and cut.

use serde_json::{Map, Value};

use crate::sandbox::text::escape;

/// The largest schema checked, in bytes; a larger one is reported and not checked.
pub const MAX_SCHEMA_BYTES: usize = 64 << 10;
/// Compiled size limit of one `pattern` (the regex crate's `size_limit`).
const MAX_PATTERN_BYTES: usize = 1 << 20;
/// Plugin text quoted in a message (a description, a pattern) is cut here.
const MAX_QUOTED_CHARS: usize = 200;

/// One problem with a step's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The config key at fault; `None` for the config as a whole (a missing key).
    pub key: Option<String>,
    pub message: String,
    /// What the plugin says the key is for (its `description`), when it says.
    pub help: Option<String>,
}

/// Parses a declared schema. `Err` says why it cannot be used to check a
/// config (too large, not JSON, not a schema).
pub fn parse(text: &str) -> Result<Value, String> {
    if text.len() > MAX_SCHEMA_BYTES {
        return Err(format!("it has {} bytes, more than the {MAX_SCHEMA_BYTES} checked", text.len()));
    }
    let schema: Value = serde_json::from_str(text).map_err(|e| format!("it is not JSON ({e})"))?;
    match schema {
        Value::Object(_) | Value::Bool(_) => Ok(schema),
        _ => Err("it is neither a JSON object nor a boolean".into()),
    }
}

/// Every way `config` breaks `schema`, in key order (missing keys first).
pub fn check(schema: &Value, config: &Map<String, Value>) -> Vec<Violation> {
    let mut out = Vec::new();
    let schema = match schema {
        Value::Bool(true) => return out,
        Value::Bool(false) => {
            for key in config.keys() {
                out.push(violation(Some(key), "the plugin accepts no config".into(), None));
            }
            return out;
        }
        Value::Object(schema) => schema,
        _ => return out,
    };
    let properties = schema.get("properties").and_then(Value::as_object);
    let description = |key: &str| {
        properties
            .and_then(|p| p.get(key))
            .and_then(|p| p.get("description"))
            .and_then(Value::as_str)
            .map(|d| format!("`{key}`: {}", quote(d)))
    };
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for key in required.iter().filter_map(Value::as_str) {
            if !config.contains_key(key) {
                let message = format!("missing `{}`, which the plugin requires", quote(key));
                out.push(violation(None, message, description(key)));
            }
        }
    }
    let patterns: Vec<(regex::Regex, &Value)> = schema
        .get("patternProperties")
        .and_then(Value::as_object)
        .map(|map| map.iter().filter_map(|(p, s)| Some((compile(p).ok()?, s))).collect())
        .unwrap_or_default();
    for (key, value) in config {
        let mut governed = false;
        let mut problems = Vec::new();
        if let Some(property) = properties.and_then(|p| p.get(key)) {
            governed = true;
            problems.extend(check_value(property, value));
        }
        for (pattern, property) in &patterns {
            if pattern.is_match(key) {
                governed = true;
                problems.extend(check_value(property, value));
            }
        }
        if !governed {
            match schema.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    let known: Vec<String> =
                        properties.map(|p| p.keys().map(|k| quote(k)).collect()).unwrap_or_default();
                    let help = if known.is_empty() {
                        "the plugin accepts no other keys".to_string()
                    } else {
                        format!("the plugin accepts: {}", known.join(", "))
                    };
                    out.push(violation(Some(key), format!("unknown key `{key}`"), Some(help)));
                    continue;
                }
                Some(additional) => problems.extend(check_value(additional, value)),
                None => {}
            }
        }
        for message in problems {
            out.push(violation(Some(key), message, description(key)));
        }
    }
    out
}

fn violation(key: Option<&str>, message: String, help: Option<String>) -> Violation {
    Violation { key: key.map(str::to_string), message, help }
}

/// Why `value` does not fit `schema` (a property's), one message per keyword.
fn check_value(schema: &Value, value: &Value) -> Vec<String> {
    let schema = match schema {
        Value::Bool(true) => return Vec::new(),
        Value::Bool(false) => return vec!["the plugin accepts no value here".into()],
        Value::Object(schema) => schema,
        _ => return Vec::new(),
    };
    let shown = show(value);
    let mut out = Vec::new();
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.is_empty() && !names.iter().any(|t| has_type(value, t)) {
            let names: Vec<String> = names.iter().map(|t| type_name(t)).collect();
            out.push(format!("{shown} is {}; the plugin takes {}", json_type(value), names.join(" or ")));
            // The other keywords would only repeat it.
            return out;
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.iter().any(|a| a == value)
    {
        let list: Vec<String> = allowed.iter().take(20).map(show).collect();
        out.push(format!("{shown} is not one of {}", list.join(", ")));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        out.push(format!("{shown} is not {}", show(constant)));
    }
    if let Value::String(text) = value {
        let chars = text.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && chars < min
        {
            out.push(if min == 1 { "it is empty".into() } else { format!("{shown} is shorter than {min} characters") });
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && chars > max
        {
            out.push(format!("{shown} is longer than {max} characters"));
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            match compile(pattern) {
                Ok(regex) if !regex.is_match(text) => {
                    out.push(format!("{shown} does not match the pattern `{}`", quote(pattern)));
                }
                _ => {}
            }
        }
    }
    if let Some(number) = value.as_f64() {
        let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
        let checks: [(&str, fn(f64, f64) -> bool, &str); 4] = [
            ("minimum", |v, b| v >= b, "less than"),
            ("maximum", |v, b| v <= b, "more than"),
            ("exclusiveMinimum", |v, b| v > b, "at most"),
            ("exclusiveMaximum", |v, b| v < b, "at least"),
        ];
        for (key, holds, relation) in checks {
            if let Some(b) = bound(key)
                && !holds(number, b)
            {
                out.push(format!("{shown} is {relation} {b}"));
            }
        }
    }
    out
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => true,
    }
}

/// A JSON Schema type name as the messages say it: `an integer`.
fn type_name(name: &str) -> String {
    match name {
        "string" | "number" | "boolean" => format!("a {name}"),
        "integer" => "an integer".into(),
        "array" => "a list".into(),
        "object" => "a map".into(),
        "null" => "null".into(),
        other => format!("`{}`", quote(other)),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn compile(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern).size_limit(MAX_PATTERN_BYTES).build()
}

/// A config value as the message shows it: `"abc"`, `42`, `true`.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("\"{}\"", quote(s)),
        other => quote(&other.to_string()),
    }
}

/// Plugin (or user) text in a message: escaped and cut.
fn quote(text: &str) -> String {
    let cut: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    let suffix = if cut.len() < text.len() { "…" } else { "" };
    format!("{}{suffix}", escape(&cut))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CSV_INGEST: &str = r#"{
      "type": "object", "additionalProperties": false,
      "properties": {
        "batch_rows": {"description": "Maximum number of rows per output batch.",
                       "type": ["integer", "string"], "minimum": 1, "pattern": "^[1-9][0-9]*$"},
        "row_number_column": {"type": "string", "minLength": 1},
        "mode": {"enum": ["strict", "lenient"]}
      },
      "required": ["row_number_column"]
    }"#;

    fn config(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn messages(schema: &str, value: Value) -> Vec<(Option<String>, String)> {
        check(&parse(schema).unwrap(), &config(value)).into_iter().map(|v| (v.key, v.message)).collect()
    }

    #[test]
    fn a_config_that_fits_has_no_violation() {
        let ok = json!({"batch_rows": 1000, "row_number_column": "_row", "mode": "strict"});
        assert_eq!(messages(CSV_INGEST, ok), []);
        assert_eq!(messages(CSV_INGEST, json!({"batch_rows": "64", "row_number_column": "n"})), []);
        assert_eq!(messages("true", json!({"anything": 1})), []);
        assert_eq!(messages(r#"{"type": "object"}"#, json!({"anything": 1})), []);
    }

    #[test]
    fn each_keyword_names_the_key_and_the_value() {
        let got = messages(CSV_INGEST, json!({"batch_rows": 0, "colunm": "x", "mode": "loose"}));
        let key = |k: &str| Some(k.to_string());
        assert_eq!(
            got,
            [
                (None, "missing `row_number_column`, which the plugin requires".to_string()),
                (key("batch_rows"), "0 is less than 1".to_string()),
                (key("colunm"), "unknown key `colunm`".to_string()),
                (key("mode"), "\"loose\" is not one of \"strict\", \"lenient\"".to_string()),
            ]
        );
        let got = messages(CSV_INGEST, json!({"batch_rows": "0", "row_number_column": "", "mode": true}));
        assert_eq!(
            got,
            [
                (key("batch_rows"), "\"0\" does not match the pattern `^[1-9][0-9]*$`".to_string()),
                (key("mode"), "true is not one of \"strict\", \"lenient\"".to_string()),
                (key("row_number_column"), "it is empty".to_string()),
            ]
        );
        assert_eq!(
            messages(CSV_INGEST, json!({"batch_rows": 1.5, "row_number_column": "_row"})),
            [(key("batch_rows"), "1.5 is a number; the plugin takes an integer or a string".to_string())]
        );
        let violations =
            check(&parse(CSV_INGEST).unwrap(), &config(json!({"batch_rows": -3, "row_number_column": "r"})));
        assert_eq!(violations[0].help.as_deref(), Some("`batch_rows`: Maximum number of rows per output batch."));
    }

    #[test]
    fn additional_and_pattern_properties() {
        let schema = r#"{"patternProperties": {"^col_": {"type": "string"}},
                         "additionalProperties": {"type": "integer"}}"#;
        let got = messages(schema, json!({"col_a": 1, "other": "x", "n": 3}));
        assert_eq!(
            got,
            [
                (Some("col_a".into()), "1 is a number; the plugin takes a string".into()),
                (Some("other".into()), "\"x\" is a string; the plugin takes an integer".into()),
            ]
        );
        assert_eq!(messages("false", json!({"a": 1})), [(Some("a".into()), "the plugin accepts no config".into())]);
    }

    #[test]
    fn hostile_schemas_are_bounded_and_their_text_escaped() {
        assert!(parse(&" ".repeat(MAX_SCHEMA_BYTES + 1)).unwrap_err().contains("more than"));
        assert!(parse("{not json").unwrap_err().starts_with("it is not JSON"));
        assert!(parse("[1]").is_err());
        // A pattern too large to compile is not checked (and not a failure).
        let huge = format!(r#"{{"properties": {{"k": {{"pattern": "(a{{1000}}){{1000}}"}}}}}}"#);
        assert_eq!(messages(&huge, json!({"k": "b"})), []);
        // Control characters in plugin text never reach a message as they are.
        let forged = r#"{"properties": {"k": {"enum": ["a\u001b[2J\nERROR forged"]}}}"#;
        let got = messages(forged, json!({"k": "b"}));
        assert_eq!(got[0].1, "\"b\" is not one of \"a\\u{1b}[2J\\nERROR forged\"");
        let long = format!(r#"{{"properties": {{"k": {{"const": "{}"}}}}}}"#, "x".repeat(1000));
        assert!(messages(&long, json!({"k": "b"}))[0].1.ends_with("x…\""));
    }
}
