// Hostile: allocates until something stops it. The host's memory limit must.
import { transformPlugin } from "floe-plugin";

export const { meta, transform } = transformPlugin({
  name: "evil-memory-js",
  transform() {
    const hoard = [];
    for (;;) hoard.push(new Uint8Array(16 << 20).fill(1));
  },
});
