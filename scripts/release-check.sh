#!/usr/bin/env bash
# Builds the release binary the way the image does and checks, with no
# network at all, that it runs the demo:
#   - the image's layout: the binary and DuckDB's official shared library
#     (the one the tests run against; parquet, json and icu compiled in), in
#     a directory of their own;
#   - `floe-host version` shows parquet, json and icu loaded and every
#     extension compiled in (STATICALLY_LINKED): nothing to install;
#   - `floe-host init` + `run` + `show` in a network namespace (no interface
#     but a down loopback), with an empty HOME, so no extension cache either.
# `--bundled` checks the single-file variant instead (`--features bundled`:
# DuckDB compiled from source with parquet and json; no icu, see the README).
#
# Too slow for CI: a cold release build takes about 20 minutes on 2 cores
# (`--bundled`: about 40, DuckDB's C++ included). Run it before a release and
# record the result in docs/release-check.md. Needs `unshare --net` (root, or
# unprivileged user namespaces).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FLOE_REPO"

say() { echo "release-check: $*"; }
bundled=false
[[ "${1:-}" == "--bundled" ]] && bundled=true
started=$SECONDS

scripts/setup.sh --demo
scripts/build-plugins.sh --demo
export CARGO_TARGET_DIR="${FLOE_RELEASE_TARGET_DIR:-$FLOE_CACHE/release-target}"
features=()
$bundled && features=(--features bundled)
say "cargo build --release -p floe-host ${features[*]} (into $CARGO_TARGET_DIR)"
build_started=$SECONDS
cargo build --locked --release -p floe-host "${features[@]}"
say "build took $((SECONDS - build_started)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The image's layout: /usr/local/bin/floe-host and /usr/local/lib/libduckdb.so.
mkdir -p "$work/image/bin" "$work/image/lib" "$work/home"
cp "$CARGO_TARGET_DIR/release/floe-host" "$work/image/bin/floe-host"
floe="$work/image/bin/floe-host"
if $bundled; then
    if ldd "$floe" | grep -q duckdb; then
        say "FAIL: the bundled binary links a shared DuckDB"; ldd "$floe" >&2; exit 1
    fi
    want=(parquet json)
else
    cp "$DUCKDB_LIB_DIR/libduckdb.so" "$work/image/lib/"
    want=(parquet json icu)
fi

offline() {
    # No network, no inherited environment or HOME; DuckDB from the image's lib.
    env -i PATH=/usr/bin:/bin HOME="$work/home" LD_LIBRARY_PATH="$work/image/lib" FLOE_LOG_FORMAT=text \
        unshare --map-root-user --net -- "$@"
}
if offline ldd "$floe" | grep duckdb | grep -qv "$work/image/lib"; then
    say "FAIL: DuckDB does not come from the image's lib"; offline ldd "$floe" >&2; exit 1
fi
if offline getent hosts registry.npmjs.org >/dev/null 2>&1 || offline ping -c1 -W1 1.1.1.1 >/dev/null 2>&1; then
    say "FAIL: the check's namespace has a network"; exit 1
fi

say "floe-host version (offline)"
offline "$floe" version | tee "$work/version.txt"
for extension in "${want[@]}"; do
    if ! grep -Eq "^  $extension +loaded +STATICALLY_LINKED" "$work/version.txt"; then
        say "FAIL: $extension is not loaded and compiled in"; exit 1
    fi
done
if tail -n +4 "$work/version.txt" | grep -v "STATICALLY_LINKED" | grep -q .; then
    say "FAIL: an extension that is not compiled in"; exit 1
fi

say "floe-host init + run + show (offline)"
cp "$FLOE_PLUGIN_DIST/csv_ingest.wasm" "$work/csv_ingest.wasm"
offline "$floe" init "$work/demo" --plugin "$work/csv_ingest.wasm"
run_started=$SECONDS
offline "$floe" run "$work/demo" | tee "$work/run.txt"
say "offline run took $((SECONDS - run_started)) s (cold compile cache)"
run_started=$SECONDS
offline "$floe" run "$work/demo" >/dev/null
say "second offline run took $((SECONDS - run_started)) s (warm compile cache)"
offline "$floe" show gold.customer_totals "$work/demo" --limit 3
grep -q "gold.customer_totals" "$work/run.txt" || { say "FAIL: the demo did not commit gold.customer_totals"; exit 1; }
say "OK: $($floe --version 2>/dev/null || true) at $(git rev-parse --short HEAD) on $(date -u +%Y-%m-%d), $((SECONDS - started)) s in all"
