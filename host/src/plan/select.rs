//! Narrowing a plan to some of its steps (for orchestrators that materialize a
//! subset of the tables, like Dagster's asset selection).

use super::Plan;

/// Names that match no step of the plan.
#[derive(Debug, thiserror::Error)]
#[error(
    "pipeline `{pipeline}` has no step or table named {}; its tables are: {}",
    quoted(unknown),
    known.join(", ")
)]
pub struct SelectError {
    pub pipeline: String,
    pub unknown: Vec<String>,
    /// Every target table of the plan, `layer.name`.
    pub known: Vec<String>,
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

impl Plan {
    /// The plan with only the steps named in `names`, each given as the step
    /// name (`customer_totals`) or its target table (`gold.customer_totals`),
    /// kept in plan order. Inputs of the kept steps are not added: tables they
    /// read must already exist in the catalog.
    pub fn select<S: AsRef<str>>(&self, names: &[S]) -> Result<Plan, SelectError> {
        let matches = |step: &super::Step, name: &str| step.name.as_str() == name || step.target.to_string() == name;
        let unknown: Vec<String> = names
            .iter()
            .map(AsRef::as_ref)
            .filter(|name| !self.steps.iter().any(|step| matches(step, name)))
            .map(str::to_string)
            .collect();
        if !unknown.is_empty() {
            return Err(SelectError {
                pipeline: self.pipeline.clone(),
                unknown,
                known: self.steps.iter().map(|s| s.target.to_string()).collect(),
            });
        }
        let mut plan = self.clone();
        plan.steps.retain(|step| names.iter().any(|name| matches(step, name.as_ref())));
        Ok(plan)
    }
}
