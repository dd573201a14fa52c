#!/usr/bin/env bash
# One command on a fresh machine: installs what is missing, builds floe-host and
# the demo's plugins, runs the demo pipeline on the embedded default (a SQLite
# Iceberg catalog and warehouse in examples/customer-analytics/.floe/) and
# prints a few rows of each gold table.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FLOE_REPO"

# Only what the demo uses: no Python venv, no test services, no adversarial
# plugins (scripts/test.sh installs and builds all of those).
scripts/setup.sh --demo

# floe-host as the demo needs it: the `demo` profile (dependencies unoptimised
# but the WebAssembly compiler) and no S3, TLS or OTLP exporter, which halves a
# cold build (Cargo.toml, docs/ci-times.md). `cargo build -p floe-host` is the
# full build. It compiles while the plugins do: each build leaves a core idle
# at times (a long crate, a link), and the other fills it.
echo "==> building floe-host (demo profile) and the demo's plugins"
log="$(mktemp "${TMPDIR:-/tmp}/floe-demo-build.XXXXXX")"
trap 'rm -f "$log"' EXIT
cargo build --quiet -p floe-host --profile demo --no-default-features 2>"$log" &
host_build=$!
if ! scripts/build-plugins.sh --demo; then
    kill "$host_build" 2>/dev/null || true
    wait "$host_build" 2>/dev/null || true
    exit 1
fi
if ! wait "$host_build"; then
    cat "$log" >&2
    echo "demo: building floe-host failed (above)" >&2
    exit 1
fi
floe="$CARGO_TARGET_DIR/demo/floe-host"

echo "==> floe-host run examples/customer-analytics"
"$floe" run examples/customer-analytics
for table in gold.customer_totals gold.daily_revenue; do
    echo "==> floe-host show $table examples/customer-analytics --limit 5"
    "$floe" show "$table" examples/customer-analytics --limit 5
done
echo "==> done. The binary is $floe (built for the demo: no S3, TLS or OTLP; \`cargo build -p floe-host\` builds them in);"
echo "    the tables are in examples/customer-analytics/.floe/"
