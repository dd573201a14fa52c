// Hostile: reaches for what a plugin must never have: the network, the
// environment, files. The component imports none of them (every WASI
// feature is left out of the build): what the engine still defines fails
// on use, and the step fails with nothing sent, read or committed.
import { log, transformPlugin } from "floe-plugin";

export const { meta, transform } = transformPlugin({
  name: "evil-escape-js",
  transform() {
    const found = ["fetch", "process", "require", "Deno", "XMLHttpRequest", "WebSocket"].filter(
      (name) => typeof globalThis[name] !== "undefined",
    );
    log.warn(`escape: the engine defines ${found.join(", ") || "none of them"}`);
    if (found.includes("process")) log.warn(`escape: env ${JSON.stringify(globalThis.process.env)}`);
    if (found.includes("fetch")) globalThis.fetch("http://127.0.0.1:9/steal");
    throw new Error("sandbox escape failed: nothing to reach");
  },
});
