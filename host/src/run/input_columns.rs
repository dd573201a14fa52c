//! The columns of the tables a plan reads, from their catalogs, for binding
//! models before any data is read (`model_check`): at the start of a run,
//! the tables it reads and does not write (which must exist); for
//! `validate`, every table that no model writes, where it exists already.

use std::collections::BTreeMap;

use arrow_schema::SchemaRef;

use super::RunError;
use crate::lakehouse::Lakehouse;
use crate::plan::{Action, Plan};

/// Columns by (catalog, table).
pub type Columns = BTreeMap<(String, String), SchemaRef>;

/// Every table a step reads that no earlier step of this run writes (a
/// `--select` or a Dagster selection left its step out) must exist with a
/// snapshot: otherwise the run stops before its first step, naming each
/// such table and the steps that read it (exit 2). Returns their columns,
/// each table loaded from its catalog once.
pub async fn external_inputs(lakehouse: &Lakehouse, plan: &Plan) -> Result<Columns, RunError> {
    let mut found: BTreeMap<(String, String), Option<SchemaRef>> = BTreeMap::new();
    let mut missing: Vec<String> = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        for input in &step.inputs {
            let written_before = plan.steps[..i].iter().any(|s| s.catalog == input.catalog && s.target == input.table);
            if written_before {
                continue;
            }
            let key = (input.catalog.clone(), input.table.to_string());
            let schema = match found.get(&key) {
                Some(schema) => schema.clone(),
                None => {
                    let schema = lakehouse
                        .current_schema(&input.catalog, &input.table)
                        .await
                        .map_err(|source| RunError::Lakehouse { step: step.name.to_string(), source })?;
                    found.insert(key, schema.clone());
                    schema
                }
            };
            if schema.is_none() {
                missing.push(format!("`{}` (read by `{}`)", input.table, step.name));
            }
        }
    }
    if missing.is_empty() {
        return Ok(found.into_iter().filter_map(|(key, schema)| Some((key, schema?))).collect());
    }
    Err(RunError::Config(format!(
        "this run does not write {}, and the table does not exist yet or has no data; select the steps that write it \
         too (`--select +STEP` adds every step upstream of STEP) or run them first",
        missing.join(", ")
    )))
}

/// For `validate`: the current columns of every table a model reads and no
/// model writes (ingested tables included: their last run's columns), where
/// the table exists. Reads metadata only and writes nothing: an embedded
/// catalog whose file does not exist yet has no tables. A catalog that
/// refuses the credentials is an error; one that cannot be reached is a
/// note (its readers are then parsed only), returned with the columns.
pub fn for_validate(plan: &Plan) -> Result<(Columns, Vec<String>), RunError> {
    let model_targets: Vec<(&str, String)> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Sql { .. }))
        .map(|s| (s.catalog.as_str(), s.target.to_string()))
        .collect();
    let mut wanted: BTreeMap<&str, Vec<&crate::plan::Input>> = BTreeMap::new();
    for step in plan.steps.iter().filter(|s| matches!(s.action, Action::Sql { .. })) {
        for input in &step.inputs {
            if !model_targets.contains(&(input.catalog.as_str(), input.table.to_string())) {
                wanted.entry(input.catalog.as_str()).or_default().push(input);
            }
        }
    }
    if wanted.is_empty() {
        return Ok(Default::default());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Setup(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let (mut columns, mut notes) = (Columns::new(), Vec::new());
        for (catalog, inputs) in wanted {
            if !crate::lakehouse::catalog_exists(plan.catalogs.get(catalog).expect("the plan's catalogs are defined")) {
                continue;
            }
            let storage = plan.steps.iter().find(|s| s.catalog == catalog).map(|s| s.storage.clone());
            let used = storage.map(|storage| (catalog.to_string(), storage));
            let lakehouse = match Lakehouse::open(&plan.catalogs, &plan.storage, used).await {
                Ok(lakehouse) => lakehouse,
                Err(error) if !error.is_retryable() => return Err(RunError::opening(error)),
                Err(error) => {
                    notes.push(format!(
                        "{error}; the models that read its tables are parsed, not bound (`--offline` skips the \
                         catalogs)"
                    ));
                    continue;
                }
            };
            for input in inputs {
                let key = (catalog.to_string(), input.table.to_string());
                if columns.contains_key(&key) {
                    continue;
                }
                let schema = lakehouse
                    .current_schema(catalog, &input.table)
                    .await
                    .map_err(|error| RunError::Setup(error.to_string()))?;
                if let Some(schema) = schema {
                    columns.insert(key, schema);
                }
            }
        }
        Ok((columns, notes))
    })
}
