#!/usr/bin/env bash
# Builds every plugin in plugins/ (its own cargo workspace) as a wasm32-wasip2
# component and copies the components to $FLOE_PLUGIN_DIST as <lib_name>.wasm
# (csv-ingest -> plugins/dist/csv_ingest.wasm). Extra arguments go to cargo.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

target=wasm32-wasip2
if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi

# `--demo`: only the plugins the demo pipeline uses (no adversarial ones).
packages=(--workspace)
if [[ "${1:-}" == "--demo" ]]; then
    shift
    packages=(-p csv-ingest -p pii-mask -p dedup -p sql-filter)
fi
CARGO_TARGET_DIR="$FLOE_PLUGINS_TARGET_DIR" \
    cargo build --manifest-path "$FLOE_REPO/plugins/Cargo.toml" \
    "${packages[@]}" --release --target "$target" "$@"

out="$FLOE_PLUGINS_TARGET_DIR/$target/release"
mkdir -p "$FLOE_PLUGIN_DIST"
copied=0
for manifest in "$FLOE_REPO"/plugins/*/Cargo.toml "$FLOE_REPO"/plugins/evil/*/Cargo.toml; do
    [[ -f "$manifest" ]] || continue
    # The component is named after the crate's lib name: the package name with
    # `-` turned into `_` (no plugin overrides [lib] name).
    package="$(sed -n 's/^name *= *"\([^"]*\)".*/\1/p' "$manifest" | head -n1)"
    lib="${package//-/_}"
    wasm="$out/$lib.wasm"
    [[ -f "$wasm" ]] || continue  # not a cdylib (e.g. a shared helper crate)
    # A component has layer 1 in its header (bytes 6-7); a core module has 0.
    if [[ "$(od -An -tx1 -j6 -N2 "$wasm" | tr -d ' \n')" != "0100" ]]; then
        echo "build-plugins: $wasm is a core module, not a component" >&2
        exit 1
    fi
    cp -f "$wasm" "$FLOE_PLUGIN_DIST/$lib.wasm.tmp"
    mv -f "$FLOE_PLUGIN_DIST/$lib.wasm.tmp" "$FLOE_PLUGIN_DIST/$lib.wasm"
    echo "build-plugins: $FLOE_PLUGIN_DIST/$lib.wasm ($(wc -c <"$wasm") bytes)"
    copied=$((copied + 1))
done

if [[ $copied -eq 0 ]]; then
    echo "build-plugins: no components were built" >&2
    exit 1
fi
