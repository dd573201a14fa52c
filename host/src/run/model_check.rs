//! Checks every SQL model of a plan with DuckDB before it reads any data.
//! Every model is parsed by DuckDB's parser. A model is also bound, so that
//! a wrong column or an unknown function is found, against the columns of
//! its inputs:
//! - at the start (`check`): when all its inputs' columns are known, from
//!   the catalog (tables `run` does not write; for `validate`, every table
//!   no model writes) or from the output of models bound before it;
//! - otherwise just before its step (`bind_step`), against the inputs that
//!   earlier steps of the run have just committed: an ingest's columns are
//!   known only once it has run.

use std::collections::{BTreeMap, BTreeSet};

use arrow_schema::SchemaRef;

use crate::compute::bind::{BindProblem, Binder, Position};
use crate::plan::model::data_tests::TestKind;
use crate::plan::model::{SourceMap, offset_of};
use crate::plan::{Action, Plan, Step};

/// How many models were parsed, and which were bound.
#[derive(Debug, Default, PartialEq)]
pub struct Checked {
    pub parsed: usize,
    /// The names of the steps whose models bound.
    pub bound: BTreeSet<String>,
}

/// `external`: the columns of tables that no model of the plan writes, by
/// (catalog, table). Returns every problem, each naming the model's file,
/// line and column.
pub fn check(plan: &Plan, external: &BTreeMap<(String, String), SchemaRef>) -> Result<Checked, Vec<String>> {
    let binder = match Binder::open() {
        Ok(binder) => binder,
        // Checking is a service to the user; a DuckDB that cannot start
        // fails the run's first step with a better error.
        Err(error) => {
            tracing::warn!(%error, "Cannot open DuckDB to check the models; they are not checked before the run.");
            return Ok(Checked::default());
        }
    };
    // Tables whose columns the binder holds, by (catalog, table).
    let mut known: Vec<(String, String)> = Vec::new();
    for (key, schema) in external {
        let (catalog, table) = key;
        let Some(input) =
            plan.steps.iter().flat_map(|s| &s.inputs).find(|i| &i.catalog == catalog && &i.table.to_string() == table)
        else {
            continue;
        };
        match binder.add_arrow_table(input.layer.as_str(), input.table.name.as_str(), schema) {
            Ok(()) => known.push(key.clone()),
            Err(error) => {
                tracing::debug!(%error, %table, "Cannot shape an input for binding; its readers are parsed only.")
            }
        }
    }
    let mut checked = Checked::default();
    let mut problems = Vec::new();
    for step in &plan.steps {
        // Singular tests: parsed (they run over the step's output, so they
        // bind only once it exists).
        for test in &step.data_tests {
            if let TestKind::Singular { name, query, .. } = &test.kind
                && let Err(problem) = binder.parse(query)
            {
                let at = match problem.at {
                    Some(Position::Offset(offset)) => {
                        let (line, column) = crate::plan::model::line_column(query, offset);
                        format!(":{line}:{column}")
                    }
                    _ => String::new(),
                };
                problems.push(format!("{}{at}: singular test `{name}`: {}", test.file.display(), problem.message));
            }
        }
        let Action::Sql { file, query, incremental, source_map } = &step.action else { continue };
        let report = |problem: BindProblem, sql: &str| describe(step, file, sql, source_map, problem);
        checked.parsed += 1;
        let mut parsed = true;
        for sql in std::iter::once(query).chain(incremental) {
            if let Err(problem) = binder.parse(sql) {
                problems.push(report(problem, sql));
                parsed = false;
            }
        }
        let inputs_known =
            step.inputs.iter().all(|input| known.contains(&(input.catalog.clone(), input.table.to_string())));
        if !parsed || !inputs_known {
            continue;
        }
        match binder.bind(query) {
            // Files (`allowed_directories`) are out of the binder's reach:
            // such a model is checked when it runs.
            Err(problem) if problem.message.starts_with("Permission Error") => {}
            Err(problem) => problems.push(report(problem, query)),
            Ok(columns) => {
                if binder.add_table(step.layer.as_str(), step.name.as_str(), &columns).is_ok() {
                    known.push((step.catalog.clone(), step.target.to_string()));
                }
                // The incremental SQL reads the table itself, shaped as the model makes it.
                if let Some(sql) = incremental
                    && let Err(problem) = binder.bind(sql)
                    && !problem.message.starts_with("Permission Error")
                {
                    problems.push(report(problem, sql));
                    continue;
                }
                checked.bound.insert(step.name.to_string());
            }
        }
    }
    if problems.is_empty() { Ok(checked) } else { Err(problems) }
}

/// Binds the model `query` of `step` (its base or its incremental SQL)
/// against `inputs`: each input's layer, name and current columns. `Ok`
/// when DuckDB cannot start, or the model reads files: the step's own run
/// then reports what is wrong.
pub fn bind_step(step: &Step, query: &str, inputs: &[(&str, &str, SchemaRef)]) -> Result<(), String> {
    let Action::Sql { file, source_map, .. } = &step.action else { return Ok(()) };
    let Ok(binder) = Binder::open() else { return Ok(()) };
    for (layer, name, schema) in inputs {
        if binder.add_arrow_table(layer, name, schema).is_err() {
            return Ok(());
        }
    }
    match binder.bind(query) {
        Err(problem) if !problem.message.starts_with("Permission Error") => {
            Err(describe(step, file, query, source_map, problem))
        }
        _ => Ok(()),
    }
}

/// `file:line:col: model `name`: DuckDB's message`, the position mapped from
/// the rendered SQL back to the model file.
fn describe(step: &Step, file: &std::path::Path, sql: &str, map: &SourceMap, problem: BindProblem) -> String {
    let offset = match problem.at {
        Some(Position::Offset(offset)) => Some(offset),
        Some(Position::LineColumn(line, column)) => Some(offset_of(sql, line, column)),
        None => None,
    };
    let at = match offset.filter(|_| sql == query_of(step)) {
        Some(offset) => {
            let (line, column) = map.locate(offset);
            format!(":{line}:{column}")
        }
        // The incremental rendering has no map of its own; its line is the SQL's.
        None => match problem.at {
            Some(Position::LineColumn(line, _)) => format!(" (line {line} of its incremental SQL)"),
            _ => String::new(),
        },
    };
    format!(
        "{}{at}: model `{}`: {}\n  help: fix the model; `floe-host validate` checks every model this way, before \
         any data is read",
        file.display(),
        step.name,
        problem.message
    )
}

fn query_of(step: &Step) -> &str {
    match &step.action {
        Action::Sql { query, .. } => query,
        _ => "",
    }
}
