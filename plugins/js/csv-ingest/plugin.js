// csv-ingest in JavaScript: the Rust plugin's rules (plugins/csv-ingest), on
// the JavaScript SDK.
//
// - The first line is the header (a UTF-8 byte-order mark before it is
//   dropped). A record is one `\n`-terminated line; one `\r` before the `\n`
//   is stripped. Quoted fields (RFC 4180, `""` for a quote) may not span lines.
// - Empty lines are skipped; they count for line numbers in errors only.
// - Every column is a nullable Utf8; an empty field (`a,,b`, `a,"",b`) is NULL.
// - The last column (`row_number_column`, default `_row`) is the Int64 1-based
//   record number. Batches hold `batch_rows` rows (default 65,536).

import { Field, Int64, Schema, Utf8, makeVector, vectorFromArray } from "apache-arrow";
import { batchOf, ingestPlugin, invalidConfig, invalidInput, log } from "floe-plugin";

const CONFIG_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  title: "csv-ingest config",
  type: "object",
  additionalProperties: false,
  properties: {
    batch_rows: { description: "Maximum number of rows per output batch.", type: ["integer", "string"], minimum: 1, pattern: "^[1-9][0-9]*$", default: 65536 },
    row_number_column: { description: "Name of the Int64 column that holds the 1-based record number.", type: "string", minLength: 1, default: "_row" },
  },
};

const MAX_HEADER_BYTES = 1 << 20;
const MAX_COLUMNS = 4096;
const MAX_NAME_BYTES = 1024;

function options(config) {
  for (const key of config.keys()) {
    if (!["batch_rows", "row_number_column"].includes(key)) {
      throw invalidConfig(`unknown config key \`${key}\` (known keys: batch_rows, row_number_column)`);
    }
  }
  const rows = config.get("batch_rows") ?? "65536";
  if (!/^[1-9][0-9]*$/.test(rows)) throw invalidConfig(`\`batch_rows\` must be a positive integer, not \`${rows}\``);
  const rowColumn = config.get("row_number_column") ?? "_row";
  if (rowColumn.length === 0) throw invalidConfig("`row_number_column` must not be empty");
  return { batchRows: Number(rows), rowColumn };
}

/// The fields of one line (without its line end); `where` names it in errors.
function split(line, where) {
  const fields = [];
  let i = 0;
  for (;;) {
    let value = "";
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw invalidInput(`${where}: a quoted field is not closed before the end of the line`);
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += line[i++];
      }
      if (i < line.length && line[i] !== ",") throw invalidInput(`${where}: text after a closing quote`);
    } else {
      const end = line.indexOf(",", i);
      value = line.slice(i, end < 0 ? line.length : end);
      i = end < 0 ? line.length : end;
    }
    fields.push(value);
    if (i >= line.length) return fields;
    i++; // the comma
    if (i === line.length) {
      fields.push("");
      return fields;
    }
  }
}

class CsvParser {
  constructor(config, source) {
    this.options = options(config);
    this.source = source;
    this.pending = [];
    this.pendingBytes = 0;
    // A BOM is data except before the header (dropped there by hand).
    this.decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    this.line = 0;
    this.records = 0;
    this.schemaValue = null;
    this.columns = [];
    this.rows = [];
  }

  push(chunk) {
    const out = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== 0x0a) continue;
      this.pending.push(chunk.subarray(start, i));
      this.take(out);
      start = i + 1;
    }
    if (start < chunk.length) {
      this.pending.push(chunk.slice(start));
      this.pendingBytes += chunk.length - start;
      if (this.schemaValue === null && this.pendingBytes > MAX_HEADER_BYTES) {
        throw invalidInput(`\`${this.source}\`: the header line is longer than ${MAX_HEADER_BYTES} bytes`);
      }
    }
    return out;
  }

  finish() {
    const out = [];
    if (this.pending.length) this.take(out);
    if (this.schemaValue === null) throw invalidInput(`\`${this.source}\` is empty: it has no header line`);
    this.flush(out);
    log.info(`parsed ${this.records} records from \`${this.source}\``);
    return out;
  }

  schema() {
    return this.schemaValue;
  }

  /// The pending bytes as one line.
  take(out) {
    let bytes;
    if (this.pending.length === 1) bytes = this.pending[0];
    else {
      bytes = new Uint8Array(this.pending.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const part of this.pending) {
        bytes.set(part, at);
        at += part.length;
      }
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.line++;
    const where = `\`${this.source}\` line ${this.line}`;
    let text;
    try {
      text = this.decoder.decode(bytes);
    } catch {
      throw invalidInput(`${where} is not valid UTF-8`);
    }
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (this.schemaValue === null) {
      if (text.startsWith("\uFEFF")) text = text.slice(1);
      return this.header(text, where);
    }
    if (text.length === 0) return;
    const fields = split(text, where);
    if (fields.length !== this.columns.length) {
      throw invalidInput(`${where} has ${fields.length} fields, but the header has ${this.columns.length}`);
    }
    this.records++;
    this.rows.push(fields);
    if (this.rows.length >= this.options.batchRows) this.flush(out);
  }

  header(text, where) {
    const names = split(text, where);
    if (names.length > MAX_COLUMNS) throw invalidInput(`${where}: the header has more than ${MAX_COLUMNS} columns`);
    names.forEach((name, i) => {
      if (name.length === 0) throw invalidInput(`${where}: column ${i + 1} of the header has no name`);
      if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) {
        throw invalidInput(`${where}: a column name is longer than ${MAX_NAME_BYTES} bytes`);
      }
      if (name === this.options.rowColumn || names.indexOf(name) !== i) {
        throw invalidInput(`${where}: column \`${name}\` appears twice (or is the row number column)`);
      }
    });
    this.columns = names;
    const fields = names.map((name) => new Field(name, new Utf8(), true));
    fields.push(new Field(this.options.rowColumn, new Int64(), false));
    this.schemaValue = new Schema(fields);
  }

  flush(out) {
    if (this.rows.length === 0) return;
    const first = this.records - this.rows.length + 1;
    const columns = this.columns.map((_, c) =>
      vectorFromArray(this.rows.map((row) => (row[c] === "" ? null : row[c])), new Utf8()),
    );
    const numbers = new BigInt64Array(this.rows.length);
    for (let i = 0; i < numbers.length; i++) numbers[i] = BigInt(first + i);
    columns.push(makeVector(numbers));
    out.push(batchOf(this.schemaValue, columns));
    this.rows = [];
  }
}

export const { meta, ingest } = ingestPlugin({
  name: "csv-ingest-js",
  version: "0.1.0",
  configSchema: CONFIG_SCHEMA,
  open: (config, source) => new CsvParser(config, source),
});
