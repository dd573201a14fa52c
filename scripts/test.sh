#!/usr/bin/env bash
# Runs every test: installs what is missing, builds the plugins the tests load,
# then the Rust unit and integration tests (which start their own real peers:
# pyiceberg from the venv that setup.sh made).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FLOE_REPO"

scripts/setup.sh
scripts/build-plugins.sh
scripts/build-js-plugins.sh
scripts/build-py-plugins.sh

# Real services on 127.0.0.1 (REST catalog, OAuth2 IdP, S3), stopped on any exit.
# Their URLs and credentials reach the tests as FLOE_TEST_* (tests/services/README.md).
export FLOE_SERVICES_DIR="${FLOE_SERVICES_DIR:-$FLOE_CACHE/run/services}"
trap 'scripts/services.sh stop >/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo "==> test services"
scripts/services.sh start
set -a
source "$FLOE_SERVICES_DIR/services.env"
set +a
"$FLOE_VENV/bin/python" tests/py/services_smoke.py

# The official OpenLineage 2-0-2 schemas (test data, not in the repository):
# ../shared next to this checkout, or next to the repository it was cloned from.
if [[ -z "${FLOE_OPENLINEAGE_SCHEMAS:-}" ]]; then
    for base in "$FLOE_REPO/.." "$(git config --get remote.origin.url 2>/dev/null || true)/.."; do
        if [[ -f "$base/shared/openlineage/2-0-2/OpenLineage.json" ]]; then
            export FLOE_OPENLINEAGE_SCHEMAS="$(cd "$base/shared/openlineage/2-0-2" && pwd)"
            break
        fi
    done
fi
echo "==> OpenLineage schemas: ${FLOE_OPENLINEAGE_SCHEMAS:-not found (the lineage tests will say so)}"

echo "==> cargo test (plugin SDK and csv-ingest's parser with its fuzz corpus, on the host target)"
CARGO_TARGET_DIR="$FLOE_CACHE/plugins-host-target" \
    cargo test --manifest-path plugins/Cargo.toml -p floe-plugin-sdk -p csv-ingest
echo "==> cargo test"
cargo test --workspace --no-fail-fast "$@"

# The pipeline benchmark at a small size, so that it cannot rot: it runs the demo
# with floe-host and, stage by stage, with raw DuckDB and native Rust, and fails if
# any floe-host table differs from its baseline. Times are printed, never asserted
# (BENCHMARKS.md). Data and compiled plugins are kept in $FLOE_CACHE/bench/ci.
echo "==> pipeline benchmark check (20k orders, debug build)"
cargo build -p floe-bench -p floe-datagen -p floe-host
"$CARGO_TARGET_DIR/debug/floe-bench" pipeline --orders 20k --validate-runs 3 --work "$FLOE_CACHE/bench/ci"

# The README's first command, as a new user runs it: its own build (the `demo`
# profile without S3, TLS and OTLP) must keep building, and its run must write
# the gold tables the integration tests check in depth.
echo "==> the demo command (scripts/demo.sh)"
demo_log="$FLOE_CACHE/demo.log"
scripts/demo.sh | tee "$demo_log"
for expected in 'customer_totals +gold\.customer_totals +989 ' 'daily_revenue +gold\.daily_revenue +455 ' \
    'large_orders +gold\.large_orders +366 '; do
    if ! grep -Eq "^$expected" "$demo_log"; then
        echo "test: the demo's summary has no line matching /$expected/ (see $demo_log)" >&2
        exit 1
    fi
done

# The demo's floe-host lacks S3 and TLS: a platform that needs them fails
# `validate` (exit 2) naming each key, not a run at its first request.
echo "==> the demo build refuses what it was built without"
check_platform="$FLOE_CACHE/demo-needs-s3-and-tls.platform.yaml"
sed 's#"http://floe-infra-polaris#"https://floe-infra-polaris#' \
    examples/platforms/kubernetes/platform.yaml >"$check_platform"
set +e
refusal="$("$CARGO_TARGET_DIR/demo/floe-host" validate examples/customer-analytics \
    --platform "$check_platform" --log-format text 2>&1)"
code=$?
set -e
for expected in '`storage.default.type`: needs S3 storage' '`catalogs.default.uri`: needs TLS'; do
    if [[ $code -ne 2 ]] || ! grep -qF "$expected" <<<"$refusal"; then
        echo "test: expected exit 2 and \"$expected\" from the demo build, got exit $code:" >&2
        echo "$refusal" >&2
        exit 1
    fi
done
