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
scripts/build-plugins.sh --demo
echo "==> building floe-host"
cargo build --quiet -p floe-host
floe="$CARGO_TARGET_DIR/debug/floe-host"

echo "==> floe-host run examples/customer-analytics"
"$floe" run examples/customer-analytics
for table in gold.customer_totals gold.daily_revenue; do
    echo "==> floe-host show $table examples/customer-analytics --limit 5"
    "$floe" show "$table" examples/customer-analytics --limit 5
done
echo "==> done. The binary is $floe; the tables are in examples/customer-analytics/.floe/"
