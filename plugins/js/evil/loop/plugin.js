// Hostile: never returns from `push`. The host's deadline must stop it.
import { transformPlugin } from "floe-plugin";

export const { meta, transform } = transformPlugin({
  name: "evil-loop-js",
  transform() {
    for (;;) {}
  },
});
