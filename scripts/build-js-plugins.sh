#!/usr/bin/env bash
# Builds the plugins written in JavaScript into components in $FLOE_PLUGIN_DIST:
# plugins/js/<name>/plugin.js -> <name>_js.wasm (pii-mask -> pii_mask_js.wasm),
# plugins/js/evil/<name>/plugin.js -> evil_<name>_js.wasm. An entry that calls
# `ingestPlugin(` builds for the ingest world, any other for the transform world.
#
# The toolchain (esbuild, componentize-js, apache-arrow, pinned by
# plugins/js/package-lock.json) is installed with `npm ci` into
# $FLOE_CACHE/js-toolchain when the lockfile changes. A component is rebuilt
# only when its sources, the SDK, the WIT or the lockfile change (~20 s each).
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if ! command -v node >/dev/null; then
    echo "build-js-plugins: node is not installed (Node.js 20.11 or newer builds JavaScript plugins)" >&2
    exit 1
fi
js="$FLOE_REPO/plugins/js"
tools="$FLOE_CACHE/js-toolchain"
if ! cmp -s "$js/package-lock.json" "$tools/package-lock.json" || [[ ! -d "$tools/node_modules" ]]; then
    echo "build-js-plugins: installing the JavaScript toolchain into $tools"
    rm -rf "$tools"
    mkdir -p "$tools"
    cp "$js/package.json" "$js/package-lock.json" "$tools/"
    (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
fi
# build.mjs finds the toolchain next to itself.
cp -f "$js/sdk/build.mjs" "$tools/build.mjs"
mkdir -p "$FLOE_PLUGIN_DIST" "$tools/built"

shared="$(cat "$js"/sdk/*.js "$FLOE_REPO"/wit/*.wit "$js/package-lock.json" | sha256sum | cut -c1-16)"
for entry in "$js"/*/plugin.js "$js"/evil/*/plugin.js; do
    [[ -f "$entry" ]] || continue
    dir="$(dirname "$entry")"
    name="$(basename "$dir")"
    lib="${name//-/_}_js"
    [[ "$(basename "$(dirname "$dir")")" == evil ]] && lib="evil_$lib"
    kind=transform
    grep -q 'ingestPlugin(' "$entry" && kind=ingest
    hash="$(cat "$dir"/*.js | sha256sum | cut -c1-16)-$shared"
    out="$FLOE_PLUGIN_DIST/$lib.wasm"
    if [[ -f "$out" && -f "$tools/built/$lib.$hash" ]]; then
        echo "build-js-plugins: $out is up to date"
        continue
    fi
    rm -f "$tools/built/$lib".*
    node "$tools/build.mjs" "$entry" "$out.tmp" "$kind" "$FLOE_REPO/wit" "$js/sdk/floe-plugin.js" >/dev/null
    mv -f "$out.tmp" "$out"
    touch "$tools/built/$lib.$hash"
    echo "build-js-plugins: $out ($(wc -c <"$out") bytes, $kind)"
done
