//! What `plugin new --lang js` writes: a JavaScript plugin project that
//! builds into a component with `npm ci && npm run build`, on the
//! JavaScript SDK (`plugins/js/sdk/floe-plugin.js`, written under
//! `vendor/`), its build script, the WIT, and the toolchain's lockfile, all
//! embedded in the binary so the project builds anywhere Node.js does.

use super::templates::Kind;

/// The SDK module the plugin imports as `floe-plugin`.
pub const SDK: &str = include_str!("../../../plugins/js/sdk/floe-plugin.js");
/// Bundles (esbuild) and componentizes (componentize-js) the plugin.
pub const BUILD: &str = include_str!("../../../plugins/js/sdk/build.mjs");
/// The toolchain's versions, as floe-host's own JavaScript plugins build with.
const PACKAGE: &str = include_str!("../../../plugins/js/package.json");
const LOCK: &str = include_str!("../../../plugins/js/package-lock.json");

/// The world a plugin of `kind` builds for (`node build.mjs … <world>`).
fn world(kind: Kind) -> &'static str {
    match kind {
        Kind::Ingest => "ingest",
        Kind::Transform | Kind::Sql => "transform",
    }
}

fn wasm_name(name: &str) -> String {
    format!("{}.wasm", name.replace('-', "_"))
}

/// `package.json`: the toolchain's pinned dependencies and a `build` script.
pub fn package_json(name: &str, kind: Kind) -> String {
    let toolchain: serde_json::Value = serde_json::from_str(PACKAGE).expect("plugins/js/package.json is JSON");
    let package = serde_json::json!({
        "name": name,
        "private": true,
        "type": "module",
        "scripts": { "build": format!("node build.mjs src/plugin.js {} {}", wasm_name(name), world(kind)) },
        "dependencies": toolchain["dependencies"],
    });
    serde_json::to_string_pretty(&package).expect("serializes") + "\n"
}

/// `package-lock.json`: the toolchain's own, under the plugin's name, so
/// `npm ci` installs exactly what floe-host's plugins were tested with.
pub fn package_lock(name: &str) -> String {
    LOCK.replace("\"name\": \"floe-js-plugins\"", &format!("\"name\": \"{name}\""))
}

/// `src/plugin.js` for a plugin of `kind`.
pub fn plugin_js(kind: Kind) -> &'static str {
    match kind {
        Kind::Ingest => INGEST_JS,
        Kind::Transform => TRANSFORM_JS,
        Kind::Sql => SQL_JS,
    }
}

/// The project's README: the two commands to build and try it.
pub fn readme(name: &str, kind: Kind) -> String {
    let wasm = wasm_name(name);
    let (sample, try_it) = super::templates::sample(kind);
    let what = match kind {
        Kind::Ingest => {
            "A floe ingest plugin in JavaScript: each line of a source object becomes a row (a `line` column and \
             `_row`, the line number)."
        }
        Kind::Transform => {
            "A floe transform plugin in JavaScript: it upper-cases the column named by its `column` config, batch \
             by batch."
        }
        Kind::Sql => {
            "A floe SQL-mode transform plugin in JavaScript: it returns a DuckDB query that keeps the rows of its \
             input matching the `where` config."
        }
    };
    format!(
        "# {name}\n\n{what}\n\n\
         Build it (Node.js 20.11 or newer), then try it on a sample in the same sandbox a pipeline uses:\n\n\
         ```sh\nnpm ci && npm run build\n{sample}\nfloe-host plugin test {wasm} {try_it}\n```\n\n\
         `src/plugin.js` is the plugin. `vendor/floe-plugin.js` is the SDK (it does the Arrow IPC framing, \
         the config map and the errors: a plugin sees apache-arrow `RecordBatch`es), `wit/` the contract, and \
         `build.mjs` bundles the plugin with esbuild and makes a component of it with componentize-js. The \
         component imports nothing but the host's log: no files, network, environment or clock, like every \
         floe plugin. `floe-host plugin inspect {wasm}` shows what the host sees.\n\n\
         In floe.yaml:\n\n```yaml\nplugins:\n  {name}:\n    path: path/to/{wasm}\n```\n"
    )
}

const TRANSFORM_JS: &str = r#"// A floe transform plugin: upper-cases one string column, batch by batch.
// Replace the logic in `transform`; the SDK handles Arrow IPC, config and errors.

import { Utf8, vectorFromArray } from "apache-arrow";
import { batchOf, invalidConfig, transformPlugin } from "floe-plugin";

function column(config, schema) {
  const name = config.get("column");
  if (!name) throw invalidConfig("set `column`: the string column to upper-case");
  const index = schema.fields.findIndex((f) => f.name === name);
  if (index < 0) throw invalidConfig(`\`column\`: \`${name}\` is not in the input`);
  if (!(schema.fields[index].type instanceof Utf8)) throw invalidConfig(`\`column\`: \`${name}\` is not a string`);
  return index;
}

export const { meta, transform } = transformPlugin({
  name: "NAME",
  version: "0.1.0",
  // What `floe-host validate` checks each step's `config` against.
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["column"],
    properties: { column: { type: "string", description: "The string column to upper-case." } },
  },
  // The output has the input's columns; refuse a config that cannot work here.
  outputSchema(config, input) {
    column(config, input);
    return input;
  },
  transform(config, batch) {
    const index = column(config, batch.schema);
    const columns = batch.schema.fields.map((_, i) => batch.getChildAt(i));
    const values = Array.from(columns[index], (v) => (v === null ? null : v.toUpperCase()));
    columns[index] = vectorFromArray(values, new Utf8());
    return batchOf(batch.schema, columns);
  },
});
"#;

const SQL_JS: &str = r#"// A floe SQL-mode transform plugin: returns a DuckDB query; no data passes
// through the plugin.

import { invalidConfig, transformPlugin } from "floe-plugin";

export const { meta, transform } = transformPlugin({
  name: "NAME",
  version: "0.1.0",
  configSchema: {
    type: "object",
    additionalProperties: false,
    required: ["where"],
    properties: { where: { type: "string", description: "A DuckDB condition on the input's columns." } },
  },
  sql(config, inputs) {
    const where = config.get("where");
    if (!where) throw invalidConfig("set `where`: the condition rows must meet");
    return `SELECT * FROM ${inputs[0]} WHERE ${where}`;
  },
});
"#;

const INGEST_JS: &str = r#"// A floe ingest plugin: each line of the source becomes a row (`line`, and
// `_row`, its 1-based number). Chunks may split a line anywhere.

import { Field, Int64, Schema, Utf8, makeVector, vectorFromArray } from "apache-arrow";
import { batchOf, ingestPlugin, invalidInput } from "floe-plugin";

const SCHEMA = new Schema([new Field("line", new Utf8(), true), new Field("_row", new Int64(), false)]);

class Lines {
  constructor(source) {
    this.source = source;
    this.rest = new Uint8Array(0);
    this.decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    this.rows = 0;
  }

  push(chunk) {
    const bytes = new Uint8Array(this.rest.length + chunk.length);
    bytes.set(this.rest);
    bytes.set(chunk, this.rest.length);
    const end = bytes.lastIndexOf(0x0a);
    if (end < 0) {
      this.rest = bytes;
      return [];
    }
    this.rest = bytes.slice(end + 1);
    return [this.batch(bytes.subarray(0, end))];
  }

  finish() {
    return this.rest.length ? [this.batch(this.rest)] : [];
  }

  schema() {
    return SCHEMA;
  }

  batch(bytes) {
    let text;
    try {
      text = this.decoder.decode(bytes);
    } catch {
      throw invalidInput(`\`${this.source}\` is not valid UTF-8`);
    }
    const lines = text.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
    const numbers = BigInt64Array.from(lines, (_, i) => BigInt(this.rows + i + 1));
    this.rows += lines.length;
    return batchOf(SCHEMA, [vectorFromArray(lines, new Utf8()), makeVector(numbers)]);
  }
}

export const { meta, ingest } = ingestPlugin({
  name: "NAME",
  version: "0.1.0",
  configSchema: { type: "object", additionalProperties: false },
  open: (config, source) => new Lines(source),
});
"#;
