#!/usr/bin/env bash
# Builds the plugins written in Python into components in $FLOE_PLUGIN_DIST:
# plugins/python/<name>/app.py -> <name>_py.wasm (pii-mask -> pii_mask_py.wasm),
# plugins/python/evil/<name>/app.py -> evil_<name>_py.wasm. An app that calls
# `ingest_plugin(` builds for the ingest world, any other for the transform world.
#
# componentize-py (pinned in tests/py/requirements.txt, in $FLOE_VENV) puts
# CPython, the app, the SDK (plugins/python/sdk) and the bindings it
# generates from wit/ into one component. A component is rebuilt only when
# its sources, the SDK or the WIT change (~10 s each).
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

componentize="$FLOE_VENV/bin/componentize-py"
if [[ ! -x "$componentize" ]]; then
    echo "build-py-plugins: $componentize is missing; run scripts/setup.sh" >&2
    exit 1
fi
py="$FLOE_REPO/plugins/python"
stamps="$FLOE_CACHE/py-plugins-built"
mkdir -p "$FLOE_PLUGIN_DIST" "$stamps"
shared="$(cat "$py"/sdk/*.py "$FLOE_REPO"/wit/*.wit "$FLOE_REPO/tests/py/requirements.txt" | sha256sum | cut -c1-16)"
for app in "$py"/*/app.py "$py"/evil/*/app.py; do
    [[ -f "$app" ]] || continue
    dir="$(dirname "$app")"
    name="$(basename "$dir")"
    lib="${name//-/_}_py"
    [[ "$(basename "$(dirname "$dir")")" == evil ]] && lib="evil_$lib"
    world=transform-plugin
    grep -q 'ingest_plugin(' "$app" && world=ingest-plugin
    hash="$(cat "$dir"/*.py | sha256sum | cut -c1-16)-$shared"
    out="$FLOE_PLUGIN_DIST/$lib.wasm"
    if [[ -f "$out" && -f "$stamps/$lib.$hash" ]]; then
        echo "build-py-plugins: $out is up to date"
        continue
    fi
    rm -f "$stamps/$lib".*
    "$componentize" -d "$FLOE_REPO/wit" -w "$world" componentize -p "$dir" -p "$py/sdk" app -o "$out.tmp" >/dev/null
    mv -f "$out.tmp" "$out"
    touch "$stamps/$lib.$hash"
    echo "build-py-plugins: $out ($(wc -c <"$out") bytes, $world)"
done
