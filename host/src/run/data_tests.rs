//! dbt's data tests on a step's output, checked batch by batch as the output
//! streams to its data files, and judged before the step commits: a failed
//! `severity: error` test fails the step (exit 4, nothing committed), a
//! failed `warn` test is logged and reported in the run summary.
//!
//! `unique` keeps a 128-bit hash of every value it has seen: about 32 bytes
//! a row, so 50M rows hold about 1.6 GB (documented in the README).
//! `relationships` keeps a hash and a count per distinct value, then reads
//! the referenced table's current snapshot whole to judge them.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_row::{RowConverter, SortField};
use serde::Serialize;

use futures::TryStreamExt;

use crate::lakehouse::{Lakehouse, LakehouseError};
use crate::plan::model::data_tests::{DataTest, Severity, TestKind};

/// What one test found, for the summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TestOutcome {
    /// `unique(order_id)`.
    pub test: String,
    pub severity: Severity,
    /// Rows that fail it: NULLs, repeated values (each repeat once), or
    /// values outside the accepted ones.
    pub failures: u64,
    /// Up to three failing values, as text.
    pub examples: Vec<String>,
}

impl TestOutcome {
    pub fn passed(&self) -> bool {
        self.failures == 0
    }
}

/// The tests of one step, with what they have seen so far.
pub struct Checks {
    tests: Vec<(DataTest, State)>,
}

enum State {
    Count {
        failures: u64,
        examples: Vec<String>,
    },
    /// How many rows hold each value (hashed, as text), and the text of the
    /// first values seen, for examples.
    References {
        counts: HashMap<u128, u64>,
        samples: HashMap<u128, String>,
        failures: u64,
        examples: Vec<String>,
    },
    Unique {
        seen: HashSet<u128>,
        converter: Option<RowConverter>,
        failures: u64,
        examples: Vec<String>,
    },
}

impl Checks {
    pub fn new(tests: &[DataTest]) -> Self {
        // Singular tests run over the whole output in DuckDB (`singular_tests`).
        let tests = tests
            .iter()
            .filter(|test| !matches!(test.kind, TestKind::Singular { .. }))
            .map(|test| {
                let state = match test.kind {
                    TestKind::Unique => {
                        State::Unique { seen: HashSet::new(), converter: None, failures: 0, examples: Vec::new() }
                    }
                    TestKind::Relationships { .. } => State::References {
                        counts: HashMap::new(),
                        samples: HashMap::new(),
                        failures: 0,
                        examples: Vec::new(),
                    },
                    _ => State::Count { failures: 0, examples: Vec::new() },
                };
                (test.clone(), state)
            })
            .collect();
        Checks { tests }
    }

    pub fn is_empty(&self) -> bool {
        self.tests.is_empty()
    }

    /// Counts the failures in one batch. Errs when a tested column is not
    /// in the output (the message names it).
    pub fn observe(&mut self, batch: &RecordBatch) -> Result<(), String> {
        for (test, state) in &mut self.tests {
            let Some(column) = batch.column_by_name(&test.column) else {
                let columns: Vec<&str> = batch.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
                return Err(format!(
                    "the data test `{}` ({}) names column `{}`, which the output lacks (it has {})",
                    test.name(),
                    test.file.display(),
                    test.column,
                    columns.join(", ")
                ));
            };
            match (&test.kind, state) {
                (TestKind::NotNull, State::Count { failures, .. }) => *failures += column.null_count() as u64,
                (TestKind::AcceptedValues(values), State::Count { failures, examples }) => {
                    for value in as_text(column, test)?.iter().flatten() {
                        if !values.iter().any(|v| v == value) {
                            *failures += 1;
                            if examples.len() < 3 {
                                let value = example(value);
                                if !examples.contains(&value) {
                                    examples.push(value);
                                }
                            }
                        }
                    }
                }
                (TestKind::Unique, State::Unique { seen, converter, failures, examples }) => {
                    if converter.is_none() {
                        *converter =
                            Some(RowConverter::new(vec![SortField::new(column.data_type().clone())]).map_err(|e| {
                                format!("the data test `{}` cannot compare the column: {e}", test.name())
                            })?);
                    }
                    let converter = converter.as_ref().expect("set above");
                    let rows = converter
                        .convert_columns(std::slice::from_ref(column))
                        .map_err(|e| format!("the data test `{}` cannot compare the column: {e}", test.name()))?;
                    for (i, row) in rows.iter().enumerate() {
                        // dbt's unique ignores NULLs (`where x is not null`).
                        if column.is_null(i) {
                            continue;
                        }
                        if !seen.insert(hash128(row.as_ref())) {
                            *failures += 1;
                            if examples.len() < 3 {
                                let value =
                                    example(&arrow_cast::display::array_value_to_string(column, i).unwrap_or_default());
                                if !examples.contains(&value) {
                                    examples.push(value);
                                }
                            }
                        }
                    }
                }
                (TestKind::Relationships { .. }, State::References { counts, samples, .. }) => {
                    for value in as_text(column, test)?.iter().flatten() {
                        let hash = hash128(value.as_bytes());
                        *counts.entry(hash).or_default() += 1;
                        if samples.len() < MAX_SAMPLES {
                            samples.entry(hash).or_insert_with(|| example(value));
                        }
                    }
                }
                _ => unreachable!("each test kind has its state"),
            }
        }
        Ok(())
    }

    /// Judges the `relationships` tests once the output is complete: reads
    /// the field of each referenced table (that one column of its current
    /// snapshot, streamed) and counts the rows whose value it lacks.
    pub async fn check_references(&mut self, lakehouse: &Lakehouse) -> Result<(), String> {
        for (test, state) in &mut self.tests {
            let (
                TestKind::Relationships { field, table: Some((catalog, table)), .. },
                State::References { counts, samples, failures, examples },
            ) = (&test.kind, state)
            else {
                continue;
            };
            let unreadable = |e: LakehouseError| {
                format!("the data test `{}` cannot read `{table}`, the table it refers to: {e}", test.name())
            };
            let Some(mut batches) = lakehouse.read_column(catalog, table, field).await.map_err(unreadable)? else {
                return Err(format!(
                    "the data test `{}` ({}) names column `{field}` of `{table}`, which has no such column",
                    test.name(),
                    test.file.display()
                ));
            };
            // Only the values this output holds matter: the referenced table may be far larger.
            let mut known = HashSet::new();
            while let Some(batch) = batches.try_next().await.map_err(unreadable)? {
                for value in as_text(batch.column(0), test)?.iter().flatten() {
                    let hash = hash128(value.as_bytes());
                    if counts.contains_key(&hash) {
                        known.insert(hash);
                    }
                }
            }
            let mut missing: Vec<&String> = Vec::new();
            for (hash, count) in counts.iter() {
                if !known.contains(hash) {
                    *failures += count;
                    if let Some(sample) = samples.get(hash) {
                        missing.push(sample);
                    }
                }
            }
            missing.sort();
            examples.extend(missing.into_iter().take(3).cloned());
        }
        Ok(())
    }

    /// Every test's outcome, in the order of the schema files.
    pub fn finish(self) -> Vec<TestOutcome> {
        self.tests
            .into_iter()
            .map(|(test, state)| {
                let (failures, examples) = match state {
                    State::Count { failures, examples }
                    | State::Unique { failures, examples, .. }
                    | State::References { failures, examples, .. } => (failures, examples),
                };
                TestOutcome { test: test.name(), severity: test.severity, failures, examples }
            })
            .collect()
    }
}

/// Values whose text a `relationships` test keeps, to show a few that fail.
const MAX_SAMPLES: usize = 10_000;
/// The most characters of one failing value that an example shows.
const MAX_EXAMPLE_CHARS: usize = 64;

/// A failing value as an example: the data is anyone's (a plugin's output, a
/// source file's bytes), and examples reach stderr, logs, lineage and Pipes,
/// so control characters are escaped and a long value is cut.
fn example(value: &str) -> String {
    let cut: String = value.chars().take(MAX_EXAMPLE_CHARS).collect();
    let more = if cut.len() < value.len() { "…" } else { "" };
    format!("{}{more}", crate::sandbox::text::escape(&cut))
}

/// A column as text, as dbt's tests compare values.
fn as_text(column: &ArrayRef, test: &DataTest) -> Result<arrow_array::StringArray, String> {
    let text = arrow_cast::cast(column, &arrow_schema::DataType::Utf8)
        .map_err(|e| format!("the data test `{}` cannot read the column as text: {e}", test.name()))?;
    Ok(text.as_any().downcast_ref::<arrow_array::StringArray>().expect("cast to Utf8").clone())
}

/// Two 64-bit SipHashes of the bytes, with different prefixes: a collision
/// among 50M values is about as likely as 50M² / 2^129.
fn hash128(bytes: &[u8]) -> u128 {
    let half = |salt: u8| {
        let mut hasher = std::hash::DefaultHasher::new();
        salt.hash(&mut hasher);
        bytes.hash(&mut hasher);
        hasher.finish() as u128
    };
    (half(0) << 64) | half(1)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn test(column: &str, kind: TestKind) -> DataTest {
        DataTest { column: column.into(), kind, severity: Severity::Error, file: "schema.yml".into() }
    }

    #[test]
    fn counts_failures_across_batches() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("status", DataType::Utf8, true),
        ]));
        let batch = |ids: Vec<Option<i64>>, statuses: Vec<Option<&str>>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(statuses))],
            )
            .unwrap()
        };
        let mut checks = Checks::new(&[
            test("id", TestKind::NotNull),
            test("id", TestKind::Unique),
            test("status", TestKind::AcceptedValues(vec!["placed".into(), "shipped".into()])),
        ]);
        checks.observe(&batch(vec![Some(1), Some(2), None], vec![Some("placed"), Some("lost"), None])).unwrap();
        checks.observe(&batch(vec![Some(2), Some(3), None], vec![Some("shipped"), Some("lost"), Some("x")])).unwrap();
        let outcomes: Vec<(String, u64, Vec<String>)> =
            checks.finish().into_iter().map(|o| (o.test, o.failures, o.examples)).collect();
        assert_eq!(
            outcomes,
            vec![
                ("not_null(id)".into(), 2, vec![]),
                ("unique(id)".into(), 1, vec!["2".into()]),
                ("accepted_values(status)".into(), 3, vec!["lost".into(), "x".into()]),
            ]
        );
        let mut missing = Checks::new(&[test("nope", TestKind::NotNull)]);
        let error = missing.observe(&batch(vec![Some(1)], vec![Some("placed")])).unwrap_err();
        assert!(error.contains("names column `nope`, which the output lacks (it has id, status)"), "{error}");
    }
}
