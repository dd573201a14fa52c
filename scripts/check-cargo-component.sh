#!/usr/bin/env bash
# Opt-in check (not run by CI: the first install of cargo-component compiles
# ~500 crates, about 700 CPU-seconds): every plugin crate also builds with
# `cargo component build`, and the host loads and runs the result.
#
# cargo-component 0.21.1 builds for wasm32-wasip1 and adapts the module to a
# component with the WASI preview1 adapter; it adds the wasm32-wasip1 target
# with rustup if it is missing. Verified 2026-11-26: all 21 plugin crates build,
# and the sandbox, transform and adversarial tests pass on the results.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

version=0.21.1
tools="$FLOE_CACHE/tools"
if [[ "$("$tools/bin/cargo-component" --version 2>/dev/null)" != "cargo-component $version"* ]]; then
    CARGO_TARGET_DIR="$FLOE_CACHE/tools-target" nice -n 19 \
        cargo install cargo-component --version "$version" --locked --root "$tools"
fi
rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

target="$FLOE_CACHE/cc-plugins-target"
out="$FLOE_CACHE/cc-dist"
rm -rf "$out" && mkdir -p "$out"
(cd "$FLOE_REPO/plugins" && PATH="$tools/bin:$PATH" CARGO_TARGET_DIR="$target" \
    cargo component build --release --workspace)
for wasm in "$target"/wasm32-wasip1/release/*.wasm; do
    # Bytes 4-7 of a component's header are 0d 00 01 00 (a core module has 01 00 00 00).
    if [[ "$(od -An -tx1 -j4 -N4 "$wasm" | tr -d ' \n')" != "0d000100" ]]; then
        echo "check-cargo-component: $wasm is not a component" >&2
        exit 1
    fi
    cp "$wasm" "$out/"
done
echo "check-cargo-component: $(ls "$out" | wc -l) components built; running the plugin tests on them"
cd "$FLOE_REPO"
FLOE_PLUGIN_DIST="$out" cargo test -p floe-host --test integration -- sandbox:: transform:: adversarial:: plugin_tool::
