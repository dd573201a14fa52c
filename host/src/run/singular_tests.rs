//! dbt's singular tests (`tests/*.sql`) on a step's output, before it
//! commits. Each is a query whose rows are failures; it may read the step's
//! output and other tables of the pipeline. The output is copied, batch by
//! batch as it streams to its data files, into a DuckDB database of the
//! step's own (in memory, spilling to DuckDB's temp directory beyond half of
//! the compute profile's memory limit); the other tables are read as any
//! step reads its inputs. The queries are locked down like a plugin's: they
//! read those tables and nothing else.

use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::SchemaRef;

use super::RunError;
use super::data_tests::TestOutcome;
use super::steps::{Target, load_inputs};
use crate::compute::{Loader, Reads, Session, Setup};
use crate::lakehouse::Lakehouse;
use crate::plan::model::data_tests::{DataTest, TestKind};
use crate::plan::{Input, Step};

/// A database for the step's singular tests; `None` when it has none.
pub fn database(compute: &Setup, step: &Step) -> Result<Option<Session>, RunError> {
    if !step.data_tests.iter().any(is_singular) {
        return Ok(None);
    }
    let mut setup = compute.clone();
    // The step's own database runs beside this one.
    let limit = setup
        .properties
        .memory_limit
        .as_deref()
        .and_then(|l| crate::config::parse_bytes(l).ok())
        .or_else(crate::compute::default_memory_limit);
    if let Some(bytes) = limit {
        setup.properties.memory_limit = Some(format!("{}MB", (bytes / 2 / 1_000_000).max(64)));
    }
    setup.properties.path = None;
    // The step's own database runs beside this one.
    let session = setup.spilling_apart("singular-tests").open().map_err(|source| RunError::Compute {
        step: step.name.to_string(),
        what: "opening DuckDB for the singular tests".into(),
        source,
    })?;
    Ok(Some(session))
}

fn is_singular(test: &DataTest) -> bool {
    matches!(test.kind, TestKind::Singular { .. })
}

/// Copies the step's output into the tests' database as it streams.
pub struct Collector<'s> {
    session: &'s Session,
    step: &'s Step,
    loader: Option<Loader<'s>>,
}

impl<'s> Collector<'s> {
    pub fn new(session: &'s Session, step: &'s Step) -> Self {
        Collector { session, step, loader: None }
    }

    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let loader = match &mut self.loader {
            Some(loader) => loader,
            None => self.loader.insert(self.create(batch.schema_ref()).map_err(|e| self.failed(e))?),
        };
        loader.append(batch.clone()).map_err(|e| self.failed(e))
    }

    fn create(&self, schema: &SchemaRef) -> Result<Loader<'s>, crate::compute::ComputeError> {
        self.session.loader(self.step.layer.as_str(), self.step.name.as_str(), schema)
    }

    fn failed(&self, error: impl std::fmt::Display) -> String {
        format!("cannot keep the output for the singular tests: {error}")
    }

    /// Runs every singular test of the step over its complete output
    /// (`schema`: the output's columns, for an output with no batch).
    pub async fn judge(mut self, lakehouse: &Lakehouse, schema: &SchemaRef) -> Result<Vec<TestOutcome>, RunError> {
        let step = self.step;
        let config = |message: String| RunError::Config(format!("step `{}`: {message}", step.name));
        let loaded = match self.loader.take() {
            Some(loader) => loader.finish(),
            None => self.create(schema).and_then(Loader::finish),
        };
        loaded.map_err(|e| config(self.failed(e)))?;
        // The other tables the tests read, each loaded once.
        let mut reading = step.clone();
        reading.inputs = Vec::new();
        for test in &step.data_tests {
            if let TestKind::Singular { inputs, .. } = &test.kind {
                for input in inputs {
                    if !reading.inputs.contains(input) {
                        reading.inputs.push(Input::clone(input));
                    }
                }
            }
        }
        let (_, files) = load_inputs(lakehouse, self.session, &reading, Target::Session(self.session)).await?;
        self.session.lock_down(&files, &[]).map_err(|source| RunError::Compute {
            step: step.name.to_string(),
            what: "locking DuckDB down for the singular tests".into(),
            source,
        })?;
        let mut outcomes = Vec::new();
        for test in &step.data_tests {
            let TestKind::Singular { name, query, .. } = &test.kind else { continue };
            let counted = format!("SELECT count(*) AS failures FROM (\n{query}\n) AS failing_rows");
            let mut failures = 0u64;
            let result = tokio::task::block_in_place(|| {
                self.session.stream_select(&counted, Reads::InputsOnly, None, &mut |batch| {
                    let count = batch.column(0).as_any().downcast_ref::<Int64Array>();
                    if let Some(count) = count.filter(|c| !c.is_empty()) {
                        failures = count.value(0).max(0) as u64;
                    }
                    Ok(())
                })
            });
            result.map_err(|error| {
                config(format!(
                    "the singular test `{name}` ({}) does not run: {error}; fix its SQL (it reads the step's \
                     output and the tables it refers to, nothing else)",
                    test.file.display()
                ))
            })?;
            outcomes.push(TestOutcome { test: name.clone(), severity: test.severity, failures, examples: Vec::new() });
        }
        Ok(outcomes)
    }
}
