# Sourced by every script: where caches live and how the host links DuckDB.
# Everything heavy lives outside the clone so that a fresh clone (CI) reuses it.
FLOE_CACHE="${FLOE_CACHE:-$HOME/.cache/floe-host}"
FLOE_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FLOE_CACHE FLOE_REPO

# DuckDB 1.5.6, the version duckdb-rs 1.10506.x wraps. Dev and CI link the official
# shared library (from the npm package that ships it) instead of compiling the bundled
# C++ sources, which costs ~2,100 CPU-seconds. `cargo build --features bundled` gives
# the static single-file binary for release images.
FLOE_DUCKDB_VERSION="1.5.6"
FLOE_DUCKDB_NPM="@duckdb/node-bindings-linux-x64@1.5.6-r.1"
export DUCKDB_LIB_DIR="${DUCKDB_LIB_DIR:-$FLOE_CACHE/duckdb/$FLOE_DUCKDB_VERSION}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FLOE_CACHE/target}"
export FLOE_PLUGINS_TARGET_DIR="${FLOE_PLUGINS_TARGET_DIR:-$FLOE_CACHE/plugins-target}"
export FLOE_VENV="${FLOE_VENV:-$FLOE_CACHE/venv}"
# Built plugin components land here; examples refer to them by this path.
export FLOE_PLUGIN_DIST="$FLOE_REPO/plugins/dist"
