// pii-mask in JavaScript: the Rust plugin's rules (plugins/pii-mask), on the
// JavaScript SDK, with the same output byte for byte.
//
// - Every column in `email` is normalised: lower(trim(value)), trimming
//   Unicode White_Space (as Rust's `str::trim`) and lower-casing by Unicode.
// - Every column in `hash` is replaced by hex(sha256(salt || value)).
// - NULL stays NULL; other columns pass through. The output schema is the input's.

import { Utf8, vectorFromArray } from "apache-arrow";
import { batchOf, invalidConfig, transformPlugin } from "floe-plugin";
import { sha256Hex } from "./sha256.js";

const CONFIG_SCHEMA = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  title: "pii-mask config",
  type: "object",
  additionalProperties: false,
  properties: {
    email: { description: "Comma-separated Utf8 columns to normalise with lower(trim()).", type: "string" },
    hash: { description: "Comma-separated Utf8 columns to replace with hex(sha256(salt || value)).", type: "string" },
    salt: { description: "The salt for `hash`. Keep it stable to keep hashes joinable across runs.", type: "string", minLength: 1 },
  },
};

// Unicode White_Space, the set Rust's `str::trim` removes (JavaScript's
// `trim` also removes U+FEFF and keeps U+0085).
const WHITE_SPACE =
  "\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";
const TRIM = new RegExp(`^[${WHITE_SPACE}]+|[${WHITE_SPACE}]+$`, "g");

function list(config, key) {
  const value = config.get(key);
  if (value === undefined) return [];
  return value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/// One action per input column: "keep", "email" or "hash".
function plan(config, schema) {
  for (const key of config.keys()) {
    if (!["email", "hash", "salt"].includes(key)) {
      throw invalidConfig(`unknown config key \`${key}\` (known keys: email, hash, salt)`);
    }
  }
  const email = list(config, "email");
  const hash = list(config, "hash");
  if (email.length === 0 && hash.length === 0) {
    throw invalidConfig("set `email`, `hash` or both: there is nothing to mask");
  }
  const salt = config.get("salt") ?? "";
  if (hash.length > 0 && salt.length === 0) throw invalidConfig("`salt` is required");
  const actions = schema.fields.map(() => "keep");
  for (const [key, names] of [["email", email], ["hash", hash]]) {
    for (const name of names) {
      const i = schema.fields.findIndex((f) => f.name === name);
      if (i < 0) {
        const have = schema.fields.map((f) => f.name).join(", ");
        throw invalidConfig(`\`${key}\`: column \`${name}\` is not in the input (columns: ${have})`);
      }
      if (!(schema.fields[i].type instanceof Utf8)) {
        throw invalidConfig(`\`${key}\`: column \`${name}\` is ${schema.fields[i].type}, not Utf8`);
      }
      if (actions[i] !== "keep") throw invalidConfig(`column \`${name}\` is named twice in \`email\`/\`hash\``);
      actions[i] = key;
    }
  }
  return { actions, salt };
}

const masks = {
  email: (value) => value.replace(TRIM, "").toLowerCase(),
  hash: (value, salt) => sha256Hex(salt + value),
};

export const { meta, transform } = transformPlugin({
  name: "pii-mask-js",
  version: "0.1.0",
  configSchema: CONFIG_SCHEMA,
  outputSchema(config, input) {
    plan(config, input);
    return input;
  },
  transform(config, batch) {
    const { actions, salt } = plan(config, batch.schema);
    const columns = batch.schema.fields.map((field, i) => {
      const column = batch.getChildAt(i);
      const action = actions[i];
      if (action === "keep") return column;
      const values = new Array(column.length);
      for (let row = 0; row < column.length; row++) {
        const value = column.get(row);
        values[row] = value === null ? null : masks[action](value, salt);
      }
      return vectorFromArray(values, new Utf8());
    });
    return batchOf(batch.schema, columns);
  },
});
