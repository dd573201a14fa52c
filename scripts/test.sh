#!/usr/bin/env bash
# Runs every test: installs what is missing, builds the plugins the tests load,
# then the Rust unit and integration tests (which start their own real peers:
# pyiceberg from the venv that setup.sh made).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FLOE_REPO"

scripts/setup.sh
scripts/build-plugins.sh
echo "==> cargo test (plugin SDK, on the host target)"
CARGO_TARGET_DIR="$FLOE_CACHE/plugins-host-target" \
    cargo test --manifest-path plugins/Cargo.toml -p floe-plugin-sdk
echo "==> cargo test"
cargo test --workspace --no-fail-fast "$@"
