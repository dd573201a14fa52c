//! Where a step's batches go on their way to its table: the dbt data tests
//! and the singular tests' database see each one, then the table's sink
//! takes it. Counts the rows, and keeps the first test problem, which fails
//! the step with its own message.

use arrow_array::RecordBatch;

use super::data_tests::Checks;
use super::singular_tests::Collector;
use super::sink::TableSink;

pub(super) struct StepOutput<'a> {
    pub sink: TableSink<'a>,
    pub checks: Checks,
    pub singular: Option<Collector<'a>>,
    /// Rows produced so far.
    pub rows: u64,
    /// Why a test could not see a batch (a tested column is missing).
    pub test_problem: Option<String>,
}

impl<'a> StepOutput<'a> {
    pub fn new(sink: TableSink<'a>, checks: Checks, singular: Option<Collector<'a>>) -> Self {
        StepOutput { sink, checks, singular, rows: 0, test_problem: None }
    }

    /// Takes one batch of the step's output; an error stops the step.
    pub fn push(&mut self, batch: RecordBatch) -> Result<(), String> {
        self.rows += batch.num_rows() as u64;
        let mut observed = if self.checks.is_empty() { Ok(()) } else { self.checks.observe(&batch) };
        if let (Ok(()), Some(singular)) = (&observed, &mut self.singular) {
            observed = singular.push(&batch);
        }
        if let Err(problem) = observed {
            self.test_problem = Some(problem.clone());
            return Err(problem);
        }
        self.sink.push(batch)
    }

    /// The sink, when no test needs to see the batches: DuckDB may then
    /// write the output itself, straight into a data file.
    pub fn unobserved(&mut self) -> Option<&mut TableSink<'a>> {
        (self.checks.is_empty() && self.singular.is_none()).then_some(&mut self.sink)
    }
}
