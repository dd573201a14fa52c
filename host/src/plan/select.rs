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

    /// The plan with the steps `select` names (all when it is empty), less
    /// those `exclude` names, in plan order (`run --select/--exclude`). Each
    /// selector must match a step.
    pub fn select_steps(&self, select: &[Selector], exclude: &[Selector]) -> Result<Plan, SelectorError> {
        let chosen = |flag, selectors: &[Selector]| -> Result<Vec<bool>, SelectorError> {
            let mut chosen = vec![false; self.steps.len()];
            for selector in selectors {
                let matched: Vec<usize> = (0..self.steps.len()).filter(|&i| selector.matches(&self.steps[i])).collect();
                if matched.is_empty() {
                    return Err(self.no_match(flag, selector));
                }
                for i in matched {
                    chosen[i] = true;
                    if selector.upstream {
                        self.walk(i, true, &mut chosen);
                    }
                    if selector.downstream {
                        self.walk(i, false, &mut chosen);
                    }
                }
            }
            Ok(chosen)
        };
        let selected = if select.is_empty() { vec![true; self.steps.len()] } else { chosen("--select", select)? };
        let excluded = chosen("--exclude", exclude)?;
        let mut keep = selected.iter().zip(&excluded).map(|(s, e)| *s && !*e);
        let mut plan = self.clone();
        plan.steps.retain(|_| keep.next().unwrap_or(false));
        if plan.steps.is_empty() {
            return Err(SelectorError::Empty(self.pipeline.clone()));
        }
        Ok(plan)
    }

    /// Marks every step upstream (or downstream) of step `from`.
    fn walk(&self, from: usize, upstream: bool, chosen: &mut [bool]) {
        let mut stack = vec![from];
        while let Some(i) = stack.pop() {
            for j in 0..self.steps.len() {
                let linked = if upstream { self.reads(i, j) } else { self.reads(j, i) };
                if linked && !chosen[j] {
                    chosen[j] = true;
                    stack.push(j);
                }
            }
        }
        chosen[from] = true;
    }

    /// Whether step `reader` reads the table step `writer` writes.
    fn reads(&self, reader: usize, writer: usize) -> bool {
        let target = &self.steps[writer];
        self.steps[reader].inputs.iter().any(|input| input.catalog == target.catalog && input.table == target.target)
    }

    fn no_match(&self, flag: &'static str, selector: &Selector) -> SelectorError {
        let (text, known) = match &selector.pattern {
            Pattern::Name(name) => (
                name.clone(),
                format!(
                    "its tables are: {}",
                    self.steps.iter().map(|s| s.target.to_string()).collect::<Vec<_>>().join(", ")
                ),
            ),
            Pattern::Tag(tag) => {
                let mut tags: Vec<&str> = self.steps.iter().flat_map(|s| s.tags.iter().map(String::as_str)).collect();
                tags.sort();
                tags.dedup();
                let known = if tags.is_empty() {
                    "no step has tags (`tags:` in floe.yaml)".to_string()
                } else {
                    format!("its tags are: {}", tags.join(", "))
                };
                (format!("tag:{tag}"), known)
            }
            Pattern::Layer(layer) => {
                let mut layers: Vec<&str> = Vec::new();
                for step in &self.steps {
                    if !layers.contains(&step.layer.as_str()) {
                        layers.push(step.layer.as_str());
                    }
                }
                (format!("layer:{layer}"), format!("its layers are: {}", layers.join(", ")))
            }
        };
        SelectorError::NoMatch { flag, selector: text, pipeline: self.pipeline.clone(), known }
    }
}

/// A `--select` or `--exclude` term that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SelectorError {
    #[error(
        "`{0}` is not a selector floe-host understands; write a step name (`stg_orders`), a table \
         (`silver.stg_orders` or `silver/stg_orders`), `tag:NAME` or `layer:NAME`, with `+` before for \
         its upstream steps or after for its downstream steps"
    )]
    Syntax(String),
    #[error("{flag} `{selector}` matches no step of pipeline `{pipeline}`; {known}")]
    NoMatch { flag: &'static str, selector: String, pipeline: String, known: String },
    #[error("--select and --exclude leave no step of pipeline `{0}` to run")]
    Empty(String),
}

/// What one selector names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// A step name or its table (`layer.name`, or Dagster's `layer/name`).
    Name(String),
    Tag(String),
    Layer(String),
}

/// One term of `--select`/`--exclude`, in dbt's and Dagster's forms: a
/// pattern, with `+` before (and every step upstream of it) and/or after
/// (and every step downstream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pattern: Pattern,
    upstream: bool,
    downstream: bool,
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let syntax = || SelectorError::Syntax(text.to_string());
        let (upstream, rest) = match text.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (downstream, core) = match rest.strip_suffix('+') {
            Some(core) => (true, core),
            None => (false, rest),
        };
        let word =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        let pattern = if let Some(tag) = core.strip_prefix("tag:") {
            Pattern::Tag(tag.to_string())
        } else if let Some(layer) = core.strip_prefix("layer:") {
            Pattern::Layer(layer.to_string())
        } else {
            Pattern::Name(core.replacen('/', ".", 1))
        };
        let name = match &pattern {
            Pattern::Name(n) | Pattern::Tag(n) | Pattern::Layer(n) => n,
        };
        if !word(name) || name.matches('.').count() > 1 {
            return Err(syntax());
        }
        Ok(Selector { pattern, upstream, downstream })
    }

    fn matches(&self, step: &super::Step) -> bool {
        match &self.pattern {
            Pattern::Name(name) => step.name.as_str() == name || step.target.to_string() == *name,
            Pattern::Tag(tag) => step.tags.iter().any(|t| t == tag),
            Pattern::Layer(layer) => step.layer.as_str() == layer,
        }
    }
}
