//! Renders one model's Jinja into DuckDB SQL, as dbt does, with
//! `ref`, `source`, `config`, `var`, `env_var`, `is_incremental`, `this`,
//! `target` and the project's macros. Rendering is bounded: fuel per
//! template, a deadline and a depth for macro calls, a size for the SQL.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minijinja::value::{Kwargs, Object, ObjectRepr, Rest, Serde};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

use super::source_map::Stretch;
// The largest SQL a model may render to: the most DuckDB is handed to run.
use crate::compute::MAX_SQL_BYTES;

/// Template instructions one template (a model, or one macro call) may run.
const FUEL: u64 = 5_000_000;
/// How long one model may take to render, its macros included.
const DEADLINE: Duration = Duration::from_secs(10);
/// Macro calls nested in each other (a macro calling itself ends here).
const MAX_MACRO_DEPTH: usize = 64;

/// Names a model's Jinja may not define as macros: floe-host provides them.
pub const BUILTINS: &[&str] =
    &["ref", "source", "config", "var", "env_var", "is_incremental", "this", "target", "log", "exceptions"];

/// What a model is rendered against.
pub struct Context<'a> {
    /// The step (and its table's name).
    pub name: &'a str,
    pub layer: &'a str,
    /// Every table of the pipeline: step name to layer.
    pub tables: &'a BTreeMap<String, String>,
    /// Layers a `source('layer', 'table')` may name.
    pub layers: &'a [&'a str],
    /// `var()` values, the first map that has a name wins.
    pub vars: &'a [&'a BTreeMap<String, serde_yaml::Value>],
    /// Environment variables `env_var()` may read.
    pub env_vars: &'a [String],
    pub target_name: &'a str,
    /// Macro templates: (template name, source, macro names).
    pub macros: &'a [(String, String, Vec<String>)],
    /// The model's configuration from `dbt_project.yml`, which `config()` overrides.
    pub preset: &'a BTreeMap<String, serde_yaml::Value>,
}

/// What one rendering found besides the SQL.
#[derive(Debug, Default)]
pub struct Recorded {
    /// `config(...)` keyword arguments, later calls overriding earlier ones.
    pub config: BTreeMap<String, Value>,
    /// Whether the model called `is_incremental()`.
    pub asked_incremental: bool,
}

/// A failed rendering: which template (a model's or a macro file's name),
/// where, and what.
#[derive(Debug)]
pub struct RenderError {
    pub kind: Option<ErrorKind>,
    pub template: Option<String>,
    pub line: Option<usize>,
    pub byte_range: Option<std::ops::Range<usize>>,
    pub message: String,
}

/// Renders `source` (named `name`) with `is_incremental()` answering
/// `incremental` (for a model materialized as incremental).
pub fn render(
    ctx: &Context<'_>,
    template_name: &str,
    source: &str,
    incremental: bool,
) -> Result<(String, Recorded, Vec<Stretch>), RenderError> {
    // The folder configuration first: the model's config() overrides it.
    let preset = Recorded {
        config: ctx.preset.iter().map(|(k, v)| (k.clone(), Value::from(Serde(v.clone())))).collect(),
        ..Recorded::default()
    };
    let recorded = Arc::new(Mutex::new(preset));
    let mut env = environment(ctx, &recorded, incremental).map_err(|e| convert(&e))?;
    env.add_template_owned(template_name.to_string(), source.to_string()).map_err(|e| convert(&e))?;
    let template = env.get_template(template_name).map_err(|e| convert(&e))?;
    let mut out = Capped(Vec::new());
    template.render_captured_to((), &mut out).map_err(|e| {
        if out.0.len() > MAX_SQL_BYTES {
            RenderError {
                kind: None,
                template: Some(template_name.to_string()),
                line: None,
                byte_range: None,
                message: format!("renders to more than {} MiB of SQL, the most a step may run", MAX_SQL_BYTES >> 20),
            }
        } else {
            convert(&e)
        }
    })?;
    let sql = String::from_utf8(out.0).map_err(|_| RenderError {
        kind: None,
        template: Some(template_name.to_string()),
        line: None,
        byte_range: None,
        message: "renders to text that is not UTF-8".into(),
    })?;
    // Where each stretch of the SQL comes from, for DuckDB's errors: a second
    // rendering (the first one proved it bounded) that records spans.
    let mut stretches = Vec::new();
    if sql != source
        && let Ok((again, spans)) = template.render_with_spans(())
        && again == sql
    {
        stretches = spans
            .iter()
            .filter(|span| span.name() == template_name)
            .map(|span| Stretch {
                output: span.output_range(),
                source: span.source_range(),
                verbatim: span.kind() == minijinja::OutputSpanKind::Raw,
            })
            .collect();
    }
    drop(env);
    let recorded = Arc::try_unwrap(recorded).map(|m| m.into_inner().unwrap_or_default()).unwrap_or_default();
    Ok((sql, recorded, stretches))
}

/// An output that refuses to grow past [`MAX_SQL_BYTES`].
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_SQL_BYTES {
            self.0.resize(MAX_SQL_BYTES + 1, 0);
            return Err(std::io::Error::other("the rendered SQL is too large"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn convert(error: &Error) -> RenderError {
    // The innermost cause names the template that failed (a macro's, say).
    // Our own functions' errors say all; minijinja's need their kind.
    let mut message = match (error.kind(), error.detail()) {
        (ErrorKind::InvalidOperation, Some(detail)) => detail.to_string(),
        (kind, Some(detail)) => format!("{kind}: {detail}"),
        (kind, None) => kind.to_string(),
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(" ({cause})"));
        source = cause.source();
    }
    RenderError {
        kind: Some(error.kind()),
        template: error.name().map(str::to_string),
        line: error.line(),
        byte_range: error.range(),
        message,
    }
}

/// Shared by every macro call of one rendering.
struct Budget {
    started: Instant,
    depth: Mutex<usize>,
}

fn environment<'s>(
    ctx: &Context<'_>,
    recorded: &Arc<Mutex<Recorded>>,
    incremental: bool,
) -> Result<Environment<'s>, Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(100);
    // dbt keeps the newline at the end of a model; it matters to nobody, but
    // the rendered SQL then equals the file for a model without Jinja.
    let mut syntax = minijinja::syntax::SyntaxConfig::builder();
    env.set_syntax(syntax.keep_trailing_newline(true).build()?);
    let budget = Arc::new(Budget { started: Instant::now(), depth: Mutex::new(0) });
    for (template, source, names) in ctx.macros {
        env.add_template_owned(template.clone(), source.clone())?;
        for name in names {
            let call = MacroCall { template: template.clone(), name: name.clone(), budget: budget.clone() };
            env.add_global(name.clone(), Value::from_object(call));
        }
    }

    let this = Relation { schema: ctx.layer.to_string(), name: ctx.name.to_string() };
    env.add_global("this", Value::from_object(this));
    env.add_global(
        "target",
        Value::from(Serde(BTreeMap::from([
            ("name", ctx.target_name.to_string()),
            ("type", "duckdb".to_string()),
            ("schema", ctx.layer.to_string()),
        ]))),
    );

    let tables = ctx.tables.clone();
    env.add_function("ref", move |args: Rest<String>| -> Result<Value, Error> {
        let name = match args.as_slice() {
            [name] | [_, name] => name,
            _ => {
                return Err(invalid(
                    "ref() takes a model name, and optionally a package name first: ref('stg_orders')",
                ));
            }
        };
        let Some(layer) = tables.get(name) else {
            let known: Vec<&str> = tables.keys().map(String::as_str).collect();
            return Err(invalid(format!(
                "ref('{name}'): no step of this pipeline is named `{name}` (the steps are {})",
                known.join(", ")
            )));
        };
        Ok(Value::from_object(Relation { schema: layer.clone(), name: name.clone() }))
    });

    let tables = ctx.tables.clone();
    let layers: Vec<String> = ctx.layers.iter().map(|l| l.to_string()).collect();
    env.add_function("source", move |source: String, table: String| -> Result<Value, Error> {
        if !layers.contains(&source) {
            return Err(invalid(format!(
                "source('{source}', '{table}'): `{source}` is not a layer of this pipeline ({}); a source is a table \
                 of another step, named by its layer",
                layers.join(", ")
            )));
        }
        if tables.get(&table) != Some(&source) {
            return Err(invalid(format!(
                "source('{source}', '{table}'): no step writes `{source}.{table}`; add an `ingest` step named \
                 `{table}` in layer `{source}`"
            )));
        }
        Ok(Value::from_object(Relation { schema: source, name: table }))
    });

    let seen = recorded.clone();
    env.add_function("config", move |kwargs: Kwargs| -> Result<String, Error> {
        let mut recorded = lock(&seen);
        for key in kwargs.args() {
            let value: Value = kwargs.get(key)?;
            recorded.config.insert(key.to_string(), value);
        }
        Ok(String::new())
    });

    let seen = recorded.clone();
    env.add_function("is_incremental", move || -> bool {
        let mut recorded = lock(&seen);
        recorded.asked_incremental = true;
        incremental
            && recorded.config.get("materialized").and_then(|v| v.as_str().map(str::to_string)).as_deref()
                == Some("incremental")
    });

    let vars: Vec<BTreeMap<String, serde_yaml::Value>> = ctx.vars.iter().map(|m| (*m).clone()).collect();
    env.add_function("var", move |name: String, default: Option<Value>| -> Result<Value, Error> {
        match vars.iter().find_map(|m| m.get(&name)) {
            Some(value) => Ok(Value::from(Serde(value.clone()))),
            None => default.ok_or_else(|| {
                invalid(format!(
                    "var('{name}') is not defined: set it under `vars:` in floe.yaml, pass `--vars '{{{name}: …}}'`, \
                     or give a default: var('{name}', 'value')"
                ))
            }),
        }
    });

    let allowed = ctx.env_vars.to_vec();
    env.add_function("env_var", move |name: String, default: Option<Value>| -> Result<Value, Error> {
        if !allowed.contains(&name) {
            return Err(invalid(format!(
                "env_var('{name}'): the platform does not let models read `{name}`; the platform team lists the \
                 variables models may read under `models.env_vars` in platform.yaml (never a secret)"
            )));
        }
        match (std::env::var(&name), default) {
            (Ok(value), _) => Ok(Value::from(value)),
            (Err(_), Some(default)) => Ok(default),
            (Err(_), None) => Err(invalid(format!(
                "env_var('{name}') is not set in the environment and has no default: env_var('{name}', 'value')"
            ))),
        }
    });
    env.add_function("log", |_message: Value, _kwargs: Kwargs| -> String { String::new() });
    env.add_global("exceptions", Value::from_object(Exceptions));
    Ok(env)
}

fn lock(recorded: &Mutex<Recorded>) -> std::sync::MutexGuard<'_, Recorded> {
    recorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// A table, as `ref`, `source` and `this` give it: renders as
/// `layer.name`, with dbt's `schema`, `name`, `identifier` and `table`.
#[derive(Debug)]
struct Relation {
    schema: String,
    name: String,
}

impl Object for Relation {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "schema" => Some(Value::from(self.schema.clone())),
            "name" | "identifier" | "table" => Some(Value::from(self.name.clone())),
            "database" => Some(Value::from("")),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// dbt's `exceptions.raise_compiler_error(message)`: fails the rendering.
#[derive(Debug)]
struct Exceptions;

impl Object for Exceptions {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(self: &Arc<Self>, _: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "raise_compiler_error" => {
                let message = args.first().map(ToString::to_string).unwrap_or_default();
                Err(invalid(format!("the model raised an error: {message}")))
            }
            "warn" => Ok(Value::from("")),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// A macro of the project's `macros/` folder, callable from any model or
/// macro by its name, as in dbt. Each call evaluates the macro's file in
/// its own state, under the rendering's deadline and depth.
#[derive(Debug)]
struct MacroCall {
    template: String,
    name: String,
    budget: Arc<Budget>,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Budget")
    }
}

impl Object for MacroCall {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        if self.budget.started.elapsed() > DEADLINE {
            return Err(invalid(format!(
                "rendering took longer than {} s (at a call of macro `{}`)",
                DEADLINE.as_secs(),
                self.name
            )));
        }
        {
            let mut depth = self.budget.depth.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if *depth >= MAX_MACRO_DEPTH {
                return Err(invalid(format!(
                    "macro `{}`: more than {MAX_MACRO_DEPTH} macro calls nested in each other (does a macro call \
                     itself?)",
                    self.name
                )));
            }
            *depth += 1;
        }
        let result = (|| {
            let template = state.env().get_template(&self.template)?;
            let mut captured = template.render_captured(())?;
            let Some(function) = captured.state().lookup(&self.name) else {
                return Err(invalid(format!("macro `{}` is not defined in {}", self.name, self.template)));
            };
            captured.with_state_mut(|macro_state| function.call(macro_state, args))
        })();
        *self.budget.depth.lock().unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
        result
    }
}

/// The names of the macros a macro file defines (`{% macro name(...) %}`).
pub fn macro_names(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("{%") {
        rest = &rest[at + 2..];
        let tag = rest.trim_start_matches(['-', '+']).trim_start();
        if let Some(after) = tag.strip_prefix("macro")
            && after.starts_with(char::is_whitespace)
        {
            let name: String =
                after.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("raw_orders".to_string(), "bronze".to_string()),
            ("stg_orders".to_string(), "silver".to_string()),
        ])
    }

    fn render_with(
        source: &str,
        macros: &[(String, String, Vec<String>)],
        incremental: bool,
    ) -> Result<(String, Recorded), RenderError> {
        let tables = tables();
        let vars = BTreeMap::from([("region".to_string(), serde_yaml::Value::from("EU"))]);
        let ctx = Context {
            name: "stg_orders",
            layer: "silver",
            tables: &tables,
            layers: &["bronze", "silver", "gold"],
            vars: &[&vars],
            env_vars: &[],
            target_name: "prod",
            macros,
            preset: &BTreeMap::new(),
        };
        render(&ctx, "models/stg_orders.sql", source, incremental).map(|(sql, recorded, _)| (sql, recorded))
    }

    #[test]
    fn renders_dbt_functions() {
        let source = "{{ config(materialized='incremental', unique_key='id') }}\
                      select * from {{ source('bronze', 'raw_orders') }} where region = '{{ var('region') }}'\
                      {% if is_incremental() %} and id > (select max(id) from {{ this }}){% endif %}\
                      -- {{ target.name }} {{ ref('stg_orders').schema }}\n";
        let (sql, recorded) = render_with(source, &[], false).unwrap();
        assert_eq!(sql, "select * from bronze.raw_orders where region = 'EU'-- prod silver\n");
        assert!(recorded.asked_incremental);
        assert_eq!(recorded.config["unique_key"].as_str(), Some("id"));
        let (sql, _) = render_with(source, &[], true).unwrap();
        assert!(sql.contains("and id > (select max(id) from silver.stg_orders)"), "{sql}");
    }

    #[test]
    fn macros_call_each_other_across_files() {
        let macros = vec![
            (
                "macros/a.sql".to_string(),
                "{% macro cents(col, scale=2) %}round({{ col }} / 100, {{ scale }}){{ tag() }}{% endmacro %}"
                    .to_string(),
                vec!["cents".to_string()],
            ),
            (
                "macros/b.sql".to_string(),
                "{% macro tag() %} /* {{ this }} */{% endmacro %}".to_string(),
                vec!["tag".to_string()],
            ),
        ];
        let (sql, _) = render_with("select {{ cents('amount', scale=4) }}", &macros, false).unwrap();
        assert_eq!(sql, "select round(amount / 100, 4) /* silver.stg_orders */");
    }

    #[test]
    fn errors_name_the_line_and_what_to_do() {
        let error = render_with("select 1\nfrom {{ ref('nope') }}", &[], false).unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(error.message.contains("no step of this pipeline is named `nope`"), "{}", error.message);
        let error = render_with("select {{ env_var('AWS_SECRET_ACCESS_KEY') }}", &[], false).unwrap_err();
        assert!(error.message.contains("does not let models read"), "{}", error.message);
        let error = render_with("select 1\n\n{% if %}", &[], false).unwrap_err();
        assert_eq!((error.line, error.message.starts_with("syntax error")), (Some(3), true), "{}", error.message);
    }

    #[test]
    fn rendering_is_bounded() {
        // Work without output: the fuel ends it (output would meet the size cap first).
        let forever = "{% for i in range(100000) %}{% for j in range(100000) %}{% set k = j %}{% endfor %}{% endfor %}";
        assert!(render_with(forever, &[], false).unwrap_err().message.contains("fuel"));
        let recursive = vec![(
            "macros/r.sql".to_string(),
            "{% macro r() %}{{ r() }}{% endmacro %}".to_string(),
            vec!["r".to_string()],
        )];
        let error = render_with("{{ r() }}", &recursive, false).unwrap_err();
        assert!(error.message.contains("nested") || error.message.contains("recursion limit"), "{}", error.message);
        let huge = "{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}";
        assert!(render_with(huge, &[], false).unwrap_err().message.contains("MiB of SQL"));
    }

    #[test]
    fn finds_macro_names() {
        assert_eq!(
            macro_names("{% macro a(x) %}{% endmacro %}\n{%- macro b_2() -%}{%- endmacro %}{% macros %}"),
            vec!["a", "b_2"]
        );
    }
}
