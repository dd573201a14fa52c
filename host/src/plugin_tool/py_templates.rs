//! What `plugin new --lang python` writes: a Python plugin project that
//! builds into a component with componentize-py, on the Python SDK
//! (`plugins/python/sdk/floe_plugin.py`, written under `vendor/`) and the
//! WIT, both embedded in the binary.

use super::templates::Kind;

/// The SDK module the plugin imports as `floe_plugin`.
pub const SDK: &str = include_str!("../../../plugins/python/sdk/floe_plugin.py");
/// The componentize-py version floe-host's own Python plugins build with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

fn world(kind: Kind) -> &'static str {
    match kind {
        Kind::Ingest => "ingest-plugin",
        Kind::Transform | Kind::Sql => "transform-plugin",
    }
}

/// `requirements.txt`: the build tool, pinned.
pub fn requirements() -> String {
    format!("# The build tool: CPython, this app and the SDK into one WebAssembly component.\n{COMPONENTIZE_PY}\n")
}

/// `build.sh`: the one build command.
pub fn build_sh(name: &str, kind: Kind) -> String {
    let wasm = format!("{}.wasm", name.replace('-', "_"));
    format!(
        "#!/bin/sh\n# Builds {wasm}: CPython, app.py and vendor/floe_plugin.py in one component.\nset -e\n\
         cd \"$(dirname \"$0\")\"\ncomponentize-py -d wit -w {world} componentize -p . -p vendor app -o {wasm}\n",
        world = world(kind)
    )
}

/// `app.py` for a plugin of `kind`.
pub fn app_py(kind: Kind) -> &'static str {
    match kind {
        Kind::Ingest => INGEST_PY,
        Kind::Transform => TRANSFORM_PY,
        Kind::Sql => SQL_PY,
    }
}

/// The project's README: the two commands to build and try it.
pub fn readme(name: &str, kind: Kind) -> String {
    let wasm = format!("{}.wasm", name.replace('-', "_"));
    let (sample, try_it) = super::templates::sample(kind);
    let what = match kind {
        Kind::Ingest => {
            "A floe ingest plugin in Python: each line of a source object becomes a row (a `line` column and \
             `_row`, the line number)."
        }
        Kind::Transform => {
            "A floe transform plugin in Python: it upper-cases the column named by its `column` config, batch by \
             batch."
        }
        Kind::Sql => {
            "A floe SQL-mode transform plugin in Python: it returns a DuckDB query that keeps the rows of its \
             input matching the `where` config."
        }
    };
    format!(
        "# {name}\n\n{what}\n\n\
         Build it (Python 3.10 or newer, in a virtual environment), then try it on a sample in the same \
         sandbox a pipeline uses:\n\n\
         ```sh\npip install -r requirements.txt && sh build.sh\n{sample}\nfloe-host plugin test {wasm} {try_it}\n```\n\n\
         `app.py` is the plugin. `vendor/floe_plugin.py` is the SDK: it reads and writes the Arrow data \
         (pyarrow does not run in WebAssembly), so a plugin sees a `Batch` whose `column(name)` is a list \
         of Python values. `wit/` is the contract. The component carries CPython; the host gives it no \
         files, network, environment or clock, like every floe plugin. \
         `floe-host plugin inspect {wasm}` shows what the host sees.\n\n\
         In floe.yaml:\n\n```yaml\nplugins:\n  {name}:\n    path: path/to/{wasm}\n```\n"
    )
}

const TRANSFORM_PY: &str = r#""""A floe transform plugin: upper-cases one string column, batch by batch.
Replace the logic in `transform`; the SDK handles Arrow IPC, config and errors."""

from floe_plugin import Utf8, invalid_config, transform_plugin


def column(config, schema):
    name = config.get("column")
    if not name:
        raise invalid_config("set `column`: the string column to upper-case")
    i = schema.index(name)
    if i < 0:
        raise invalid_config(f"`column`: `{name}` is not in the input")
    if schema.fields[i].type != Utf8:
        raise invalid_config(f"`column`: `{name}` is not a string")
    return name


def output_schema(config, schema):
    column(config, schema)
    return schema


def transform(config, batch):
    name = column(config, batch.schema)
    return batch.replace(name, [None if v is None else v.upper() for v in batch.column(name)])


Meta, Transform = transform_plugin(
    name="NAME",
    version="0.1.0",
    # What `floe-host validate` checks each step's `config` against.
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["column"],
        "properties": {"column": {"type": "string", "description": "The string column to upper-case."}},
    },
    output_schema=output_schema,
    transform=transform,
)
"#;

const SQL_PY: &str = r#""""A floe SQL-mode transform plugin: returns a DuckDB query; no data passes
through the plugin."""

from floe_plugin import invalid_config, sql_plugin


def sql(config, inputs):
    where = config.get("where")
    if not where:
        raise invalid_config("set `where`: the condition rows must meet")
    return f"SELECT * FROM {inputs[0]} WHERE {where}"


Meta, Transform = sql_plugin(
    name="NAME",
    version="0.1.0",
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["where"],
        "properties": {"where": {"type": "string", "description": "A DuckDB condition on the input's columns."}},
    },
    sql=sql,
)
"#;

const INGEST_PY: &str = r#""""A floe ingest plugin: each line of the source becomes a row (`line`, and
`_row`, its 1-based number). Chunks may split a line anywhere."""

from floe_plugin import Batch, Field, Int64, Schema, Utf8, encode_column, ingest_plugin, invalid_input

SCHEMA = Schema([Field("line", Utf8, True), Field("_row", Int64, False)])


class Lines:
    def __init__(self, source):
        self.source = source
        self.rest = b""
        self.rows = 0

    def push(self, chunk):
        data = self.rest + chunk
        end = data.rfind(b"\n")
        if end < 0:
            self.rest = data
            return []
        self.rest = data[end + 1 :]
        return [self.batch(data[:end])]

    def finish(self):
        return [self.batch(self.rest)] if self.rest else []

    def schema(self):
        return SCHEMA

    def batch(self, data):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_input(f"`{self.source}` is not valid UTF-8") from None
        lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
        numbers = list(range(self.rows + 1, self.rows + len(lines) + 1))
        self.rows += len(lines)
        return Batch(SCHEMA, [encode_column(Utf8, lines), encode_column(Int64, numbers)], len(lines))


Meta, Ingest = ingest_plugin(
    name="NAME",
    version="0.1.0",
    config_schema={"type": "object", "additionalProperties": False},
    open=lambda config, source: Lines(source),
)
"#;
