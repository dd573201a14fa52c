// The floe plugin SDK for JavaScript: a plugin is a function from an Arrow
// RecordBatch (apache-arrow) to a RecordBatch, or, for an ingest, from the
// bytes of a source object to batches. This module does the rest of the
// contract (wit/floe-plugin.wit): the IPC stream fragments in and out, the
// config map, the error variants and the host's log.
//
// A transform plugin's entry module:
//
//   import { transformPlugin } from "floe-plugin";
//   export const { meta, transform } = transformPlugin({
//     name: "upper-case", version: "0.1.0",
//     configSchema: { type: "object", properties: { column: { type: "string" } } },
//     outputSchema: (config, input) => input,          // an apache-arrow Schema
//     transform: (config, batch) => batch,             // RecordBatch -> RecordBatch | null
//   });
//
// A SQL-mode transform gives `sql: (config, inputs) => "SELECT ... FROM " + inputs[0]`
// instead of `transform` (the host then runs the query in DuckDB).
//
// An ingest plugin's:
//
//   import { ingestPlugin } from "floe-plugin";
//   export const { meta, ingest } = ingestPlugin({
//     name: "lines", version: "0.1.0", configSchema: { type: "object" },
//     open: (config, sourceName) => ({
//       push: (bytes) => [/* RecordBatch, ... */],     // Uint8Array chunk -> batches
//       finish: () => [/* RecordBatch, ... */],
//       schema: () => schema,                           // the output schema, once known
//     }),
//   });
//
// `config` is a Map of the step's `config` (string keys and values). Throw
// `invalidConfig(message)` or `invalidInput(message)` to refuse; any other
// exception becomes an `internal` error with its message. The component
// runs in the host's sandbox: no files, no network, no environment, no
// clock; `log.info(...)` and friends write to the host's log.

import { log as hostLog } from "floe:plugin/log@0.1.0";
import { RecordBatch, RecordBatchReader, Schema, Table, makeData, Struct, tableToIPC } from "apache-arrow";

/// The end-of-stream marker of an IPC stream.
const EOS = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/// An error the host reports as a bad `config` (exit 2).
export function invalidConfig(message) {
  return { tag: "invalid-config", val: String(message) };
}

/// An error the host reports as bad input data (exit 4).
export function invalidInput(message) {
  return { tag: "invalid-input", val: String(message) };
}

/// The host's log, tagged with the step and plugin.
export const log = {
  trace: (message) => hostLog("trace", String(message)),
  debug: (message) => hostLog("debug", String(message)),
  info: (message) => hostLog("info", String(message)),
  warn: (message) => hostLog("warn", String(message)),
  error: (message) => hostLog("error", String(message)),
};

/// Runs `f`, turning anything it throws into a `plugin-error` variant.
function guarded(f) {
  try {
    return f();
  } catch (error) {
    if (error && typeof error === "object" && ["invalid-config", "invalid-input", "internal"].includes(error.tag)) {
      throw error;
    }
    const message = error && error.stack ? `${error}\n${error.stack}` : String(error);
    throw { tag: "internal", val: message };
  }
}

function configMap(config) {
  return new Map(config);
}

/// A RecordBatch of `schema` from one column vector per field (each made
/// with apache-arrow's `vectorFromArray` or taken from an input batch).
export function batchOf(schema, columns) {
  const length = columns.length ? columns[0].length : 0;
  const children = columns.map((column) => (column.data.length === 1 ? column.data[0] : column.concat().data[0]));
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length, nullCount: 0, children }));
}

/// Encodes batches of one schema as IPC stream fragments: the first
/// fragment carries the schema message, `end()` the end-of-stream marker.
class StreamEncoder {
  constructor() {
    this.schema = null;
    this.prefix = 0;
    this.started = false;
  }

  /// `batches` as the next fragment (empty when there are none).
  encode(schema, batches) {
    if (this.schema === null) {
      this.schema = schema;
      this.prefix = schemaOnly(schema).length - EOS.length;
    }
    const parts = [];
    for (const batch of batches) {
      if (batch.numRows === 0) continue;
      // Each stream is schema + batch + marker: keep the batch, and the schema once.
      const stream = tableToIPC(new Table([batch]), "stream");
      parts.push(stream.subarray(this.started ? this.prefix : 0, stream.length - EOS.length));
      this.started = true;
    }
    return concat(parts);
  }

  /// The last fragment: the schema if nothing was sent yet, then the marker.
  end(schema) {
    if (!this.started) {
      this.started = true;
      return schemaOnly(this.schema ?? schema);
    }
    return EOS;
  }
}

/// A schema-only IPC stream: the schema message and the marker.
function schemaOnly(schema) {
  return tableToIPC(new Table(schema), "stream");
}

function concat(parts) {
  if (parts.length === 0) return new Uint8Array(0);
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/// The schema and batches of IPC stream bytes that start with the schema
/// message (the marker may be missing).
function decode(bytes) {
  const reader = RecordBatchReader.from(bytes).open();
  const schema = reader.schema;
  const batches = [];
  for (const batch of reader) batches.push(batch);
  return { schema, batches };
}

/// The `meta` and `transform` exports of a streaming transform plugin.
export function transformPlugin(plugin) {
  const info = infoOf(plugin, "transform");
  class Transformer {
    constructor(config) {
      this.config = config;
      this.inputSchema = null;
      this.outputSchema = null;
      this.encoder = new StreamEncoder();
    }

    push(fragment) {
      return guarded(() => {
        let bytes = fragment;
        if (this.inputSchema === null) {
          const { schema } = decode(fragment);
          this.inputSchema = schemaOnly(schema).subarray(0, -EOS.length);
          this.outputSchema = plugin.outputSchema ? plugin.outputSchema(this.config, schema) : schema;
        } else {
          bytes = concat([this.inputSchema, fragment]);
        }
        const out = [];
        for (const batch of decode(bytes).batches) {
          const result = plugin.transform(this.config, batch);
          if (result) out.push(result);
        }
        return this.encoder.encode(this.outputSchema, out);
      });
    }

    finish() {
      return guarded(() => {
        const out = plugin.finish ? plugin.finish(this.config) ?? [] : [];
        const tail = this.encoder.encode(this.outputSchema, out);
        return concat([tail, this.encoder.end(this.outputSchema)]);
      });
    }
  }
  return {
    meta: { info: () => info },
    transform: {
      Transformer,
      outputSchema(config, inputSchema) {
        return guarded(() => {
          const schema = decode(inputSchema).schema;
          const output = plugin.outputSchema ? plugin.outputSchema(configMap(config), schema) : schema;
          return schemaOnly(output);
        });
      },
      open(config) {
        return guarded(() => {
          const map = configMap(config);
          if (plugin.check) plugin.check(map);
          return new Transformer(map);
        });
      },
      // SQL mode: the query, or none for a streaming plugin.
      sql(config, inputs) {
        return guarded(() => (plugin.sql ? plugin.sql(configMap(config), inputs) : undefined));
      },
    },
  };
}

/// The `meta` and `ingest` exports of an ingest plugin.
export function ingestPlugin(plugin) {
  const info = infoOf(plugin, "ingest");
  class Parser {
    constructor(inner) {
      this.inner = inner;
      this.encoder = new StreamEncoder();
    }

    push(chunk) {
      return guarded(() => {
        const batches = this.inner.push(chunk) ?? [];
        return batches.length ? this.encoder.encode(batches[0].schema, batches) : new Uint8Array(0);
      });
    }

    finish() {
      return guarded(() => {
        const batches = this.inner.finish() ?? [];
        const schema = batches.length ? batches[0].schema : this.inner.schema();
        const tail = this.encoder.encode(schema, batches);
        return concat([tail, this.encoder.end(schema)]);
      });
    }
  }
  return {
    meta: { info: () => info },
    ingest: {
      Parser,
      open(config, sourceName) {
        return guarded(() => new Parser(plugin.open(configMap(config), sourceName)));
      },
    },
  };
}

function infoOf(plugin, kind) {
  const schema = plugin.configSchema ?? { type: "object" };
  return {
    name: String(plugin.name),
    version: String(plugin.version ?? "0.1.0"),
    kind,
    configSchema: typeof schema === "string" ? schema : JSON.stringify(schema),
  };
}

export { Schema };
