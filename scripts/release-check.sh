#!/usr/bin/env bash
# Builds the release binary as the image ships it (`--release --features
# bundled`: DuckDB compiled in, with its parquet and json extensions) and
# checks, with no network at all, that it runs the demo:
#   - the binary links no libduckdb.so;
#   - `floe-host version` shows parquet and json loaded and statically linked,
#     and no extension installed;
#   - `floe-host init` + `run` + `show` work in a network namespace with an
#     empty HOME (so no extension cache either).
# Too slow for CI (a cold build compiles DuckDB's C++: about 40 minutes on
# 2 cores); run it before a release and record the result in
# docs/release-check.md. Needs `unshare` with network namespaces (root, or
# unprivileged user namespaces).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FLOE_REPO"

say() { echo "release-check: $*"; }
started=$SECONDS

scripts/setup.sh --demo
scripts/build-plugins.sh --demo
export CARGO_TARGET_DIR="${FLOE_RELEASE_TARGET_DIR:-$FLOE_CACHE/release-target}"
say "cargo build --release -p floe-host --features bundled (into $CARGO_TARGET_DIR)"
build_started=$SECONDS
cargo build --locked --release -p floe-host --features bundled
say "build took $((SECONDS - build_started)) s"
floe="$CARGO_TARGET_DIR/release/floe-host"

if ldd "$floe" | grep -q duckdb; then
    say "FAIL: $floe links a shared DuckDB:"; ldd "$floe" >&2; exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home"
offline() {
    # No network (only a down loopback), no inherited HOME, no shared DuckDB.
    env -i PATH=/usr/bin:/bin HOME="$work/home" FLOE_LOG_FORMAT=text \
        unshare --map-root-user --net -- "$@"
}

say "floe-host version (offline)"
offline "$floe" version | tee "$work/version.txt"
for extension in parquet json; do
    if ! grep -Eq "^  $extension +loaded +STATICALLY_LINKED" "$work/version.txt"; then
        say "FAIL: $extension is not loaded and statically linked"; exit 1
    fi
done
if grep -q "installed" "$work/version.txt"; then
    say "FAIL: an extension is installed"; exit 1
fi

say "floe-host init + run + show (offline)"
cp "$FLOE_PLUGIN_DIST/csv_ingest.wasm" "$work/csv_ingest.wasm"
offline "$floe" init "$work/demo" --plugin "$work/csv_ingest.wasm"
run_started=$SECONDS
offline "$floe" run "$work/demo" | tee "$work/run.txt"
say "offline run took $((SECONDS - run_started)) s (cold compile cache)"
offline "$floe" show gold.customer_totals "$work/demo" --limit 3
grep -q "gold.customer_totals" "$work/run.txt" || { say "FAIL: the demo did not commit gold.customer_totals"; exit 1; }
"$floe" version | head -2
say "OK at $(git rev-parse --short HEAD) on $(date -u +%Y-%m-%d), $((SECONDS - started)) s in all"
