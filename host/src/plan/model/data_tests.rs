//! dbt's data tests. Generic ones are read from the `schema.yml` files of
//! the model paths: `not_null`, `unique`, `accepted_values` and
//! `relationships` on a model's columns, each with its `severity`. Singular
//! ones are the `*.sql` files of the test paths, rendered like models when
//! the plan is built. The run checks them on the step's output before it
//! commits (`run::data_tests`, `run::singular_tests`). Tests floe-host does
//! not run (a package's tests, custom generic tests) are named in a warning,
//! never skipped in silence.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_yaml::Value;

/// One test on one column of a model's output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataTest {
    pub column: String,
    pub kind: TestKind,
    pub severity: Severity,
    /// The schema file that declares it.
    pub file: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    NotNull,
    Unique,
    /// The values, as text: a value passes when its text is one of them.
    AcceptedValues(Vec<String>),
    /// Every non-NULL value is a value of `field` in the table of step
    /// `to` (`to: ref('stg_customers')`), compared as text.
    Relationships {
        to: String,
        field: String,
        /// The catalog and table of step `to`, set when the plan is built.
        #[serde(skip_serializing_if = "Option::is_none")]
        table: Option<(String, crate::plan::TableRef)>,
    },
    /// A singular test (`tests/<name>.sql`): a query over the step's output
    /// and other tables, each row of which is a failure. It belongs to the
    /// last step of the plan that it refers to.
    Singular {
        /// The file's stem, as dbt names the test.
        name: String,
        /// The rendered query.
        #[serde(skip)]
        query: String,
        /// The other tables it reads (committed ones), besides the step's output.
        #[serde(skip)]
        inputs: Vec<crate::plan::Input>,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A failure fails the step: nothing is committed.
    #[default]
    Error,
    /// A failure is logged and reported; the step commits.
    Warn,
}

impl DataTest {
    /// `not_null(order_id)`, as dbt names a test in its output.
    pub fn name(&self) -> String {
        let kind = match &self.kind {
            TestKind::NotNull => "not_null",
            TestKind::Unique => "unique",
            TestKind::AcceptedValues(_) => "accepted_values",
            TestKind::Relationships { .. } => "relationships",
            TestKind::Singular { name, .. } => return name.clone(),
        };
        format!("{kind}({})", self.column)
    }
}

/// The tests of every model, by model name; and warnings about the tests
/// and files floe-host does not run or cannot read.
pub fn read(files: &[PathBuf]) -> (BTreeMap<String, Vec<DataTest>>, Vec<String>) {
    let mut tests: BTreeMap<String, Vec<DataTest>> = BTreeMap::new();
    let mut warnings = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(error) => {
                warnings.push(format!("{}: cannot read it, so its data tests are not run: {error}", file.display()));
                continue;
            }
        };
        let document: Value = match serde_yaml::from_str(&text) {
            Ok(document) => document,
            Err(error) => {
                warnings.push(format!("{}: not YAML, so its data tests are not run: {error}", file.display()));
                continue;
            }
        };
        let Some(models) = document.get("models").and_then(Value::as_sequence) else { continue };
        for model in models {
            let Some(name) = model.get("name").and_then(Value::as_str) else { continue };
            let columns = model.get("columns").and_then(Value::as_sequence).map(Vec::as_slice).unwrap_or_default();
            for column in columns {
                let Some(column_name) = column.get("name").and_then(Value::as_str) else { continue };
                for test in tests_of(column) {
                    match parse_test(test, column_name, file) {
                        Ok(test) => tests.entry(name.to_string()).or_default().push(test),
                        Err(what) => warnings.push(format!(
                            "{}: the data test `{what}` on `{name}.{column_name}` is not run by floe-host (it runs \
                             not_null, unique, accepted_values and relationships)",
                            file.display()
                        )),
                    }
                }
            }
            for test in tests_of(model) {
                let what = test_name(test).unwrap_or("?");
                warnings.push(format!(
                    "{}: the model-level data test `{what}` on `{name}` is not run by floe-host",
                    file.display()
                ));
            }
        }
    }
    (tests, warnings)
}

/// A node's `data_tests` (dbt 1.8+) or `tests`.
fn tests_of(node: &Value) -> &[Value] {
    node.get("data_tests")
        .or_else(|| node.get("tests"))
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn test_name(test: &Value) -> Option<&str> {
    match test {
        Value::String(name) => Some(name),
        Value::Mapping(map) if map.len() == 1 => map.keys().next()?.as_str(),
        _ => None,
    }
}

/// `not_null`, or `{accepted_values: {values: [...], config: {severity: warn}}}`.
fn parse_test(test: &Value, column: &str, file: &Path) -> Result<DataTest, String> {
    let name = test_name(test).ok_or_else(|| "?".to_string())?;
    let arguments = test.get(name).cloned().unwrap_or(Value::Null);
    // dbt takes `severity` in the test's `config`, or (older) beside its arguments.
    let severity = arguments
        .get("config")
        .and_then(|c| c.get("severity"))
        .or_else(|| arguments.get("severity"))
        .and_then(Value::as_str)
        .map(|s| if s.eq_ignore_ascii_case("warn") { Severity::Warn } else { Severity::Error })
        .unwrap_or_default();
    let kind = match name {
        "not_null" => TestKind::NotNull,
        "unique" => TestKind::Unique,
        "accepted_values" => {
            let values = arguments
                .get("arguments")
                .and_then(|a| a.get("values"))
                .or_else(|| arguments.get("values"))
                .and_then(Value::as_sequence)
                .ok_or_else(|| "accepted_values without `values`".to_string())?;
            TestKind::AcceptedValues(values.iter().map(text).collect())
        }
        "relationships" => {
            let argument = |key: &str| {
                arguments
                    .get("arguments")
                    .and_then(|a| a.get(key))
                    .or_else(|| arguments.get(key))
                    .and_then(Value::as_str)
            };
            let (Some(to), Some(field)) = (argument("to"), argument("field")) else {
                return Err("relationships without `to` and `field`".to_string());
            };
            // `ref('name')`, `ref("name")`, or `source('layer', 'name')`: the step's name.
            let inner = to.trim().split_once('(').map(|(_, rest)| rest.trim_end_matches(')')).unwrap_or(to);
            let name = inner.rsplit(',').next().unwrap_or(inner).trim().trim_matches(['\'', '"']).to_string();
            TestKind::Relationships { to: name, field: field.to_string(), table: None }
        }
        other => return Err(other.to_string()),
    };
    Ok(DataTest { column: column.to_string(), kind, severity, file: file.to_path_buf() })
}

/// A YAML scalar as the text a column value is compared with.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_generic_tests_and_names_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("schema.yml");
        std::fs::write(
            &file,
            "version: 2\nmodels:\n  - name: stg_orders\n    data_tests: [dbt_utils.expression_is_true]\n    columns:\n\
             \x20     - name: order_id\n        data_tests: [unique, not_null]\n\
             \x20     - name: status\n        tests:\n          - accepted_values:\n              values: [placed, 1]\n\
             \x20             config: {severity: warn}\n          - relationships: {to: \"ref('x')\", field: id}\n\
             \x20         - dbt_utils.not_constant\n",
        )
        .unwrap();
        let (tests, warnings) = read(&[file]);
        let names: Vec<String> = tests["stg_orders"].iter().map(DataTest::name).collect();
        assert_eq!(
            names,
            ["unique(order_id)", "not_null(order_id)", "accepted_values(status)", "relationships(status)"]
        );
        assert_eq!(
            tests["stg_orders"][3].kind,
            TestKind::Relationships { to: "x".into(), field: "id".into(), table: None }
        );
        assert_eq!(tests["stg_orders"][2].kind, TestKind::AcceptedValues(vec!["placed".into(), "1".into()]));
        assert_eq!(tests["stg_orders"][2].severity, Severity::Warn);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("`dbt_utils.not_constant` on `stg_orders.status` is not run"), "{warnings:?}");
    }
}
