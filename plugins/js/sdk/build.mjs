// Builds a floe plugin written in JavaScript into a WebAssembly component:
// esbuild bundles the entry module with the SDK and apache-arrow into one
// ES module, and componentize-js (StarlingMonkey) makes a component of it
// for the world the plugin's kind names in wit/.
//
//   node build.mjs ENTRY.js OUT.wasm ingest|transform [WIT_DIR] [SDK_FILE]
//
// WIT_DIR defaults to ./wit and SDK_FILE (the `floe-plugin` module) to
// ./vendor/floe-plugin.js, the layout `floe-host plugin new --lang js` writes.
// Every WASI interface is left out: the host gives plugins none.

import { componentize } from "@bytecodealliance/componentize-js";
import { build } from "esbuild";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const [entry, out, kind, wit = "wit", sdk = "vendor/floe-plugin.js"] = process.argv.slice(2);
if (!entry || !out || !["ingest", "transform"].includes(kind)) {
  console.error("usage: node build.mjs ENTRY.js OUT.wasm ingest|transform [WIT_DIR] [SDK_FILE]");
  process.exit(2);
}
const work = await mkdtemp(join(tmpdir(), "floe-js-"));
try {
  const bundle = join(work, "plugin.js");
  await build({
    entryPoints: [resolve(entry)],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    outfile: bundle,
    alias: { "floe-plugin": resolve(sdk) },
    external: ["floe:plugin/*"],
    // The bundle's own node_modules first, then the ones next to this script.
    nodePaths: [join(import.meta.dirname, "node_modules")],
    mainFields: ["module", "main"],
    logLevel: "warning",
  });
  const { component } = await componentize({
    sourcePath: bundle,
    witPath: resolve(wit),
    worldName: `${kind}-plugin`,
    disableFeatures: ["random", "clocks", "http", "stdio", "fetch-event"],
  });
  await writeFile(out, component);
  console.log(`wrote ${out} (${(component.length / 1048576).toFixed(1)} MiB)`);
} finally {
  await rm(work, { recursive: true, force: true });
}
