#!/usr/bin/env bash
# Builds and installs the test services under $FLOE_CACHE/services (called by
# scripts/setup.sh; idempotent, one line per item). moto_server comes with the
# Python venv (tests/py/requirements.txt).
#
#   floe-rustberg  tests/services/rustberg -> $FLOE_CACHE/services/bin/floe-rustberg,
#                  built in $FLOE_CACHE/services-target; rebuilt only when the
#                  hash of its Cargo.toml, Cargo.lock, src/ and rustc changes.
#   IdP modules    tests/services/idp/package*.json -> $FLOE_CACHE/services/idp
#                  (npm ci there; node_modules never lands in the repo).
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/env.sh"

say() { printf 'setup: %s\n' "$*"; }
SRC="$FLOE_REPO/tests/services"
OUT="$FLOE_CACHE/services"
mkdir -p "$OUT/bin"

# --- rustberg (the REST catalog fixture) ------------------------------------------
crate="$SRC/rustberg"
want="$( (
    cd "$crate"
    rustc -V
    find Cargo.toml Cargo.lock src -type f | LC_ALL=C sort | xargs sha256sum
) | sha256sum | cut -d' ' -f1)"
bin="$OUT/bin/floe-rustberg"
stamp="$bin.sha256"
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    say "floe-rustberg (rustberg 0.3.0): up to date at $bin"
else
    log="$OUT/floe-rustberg-build.log"
    target="${FLOE_SERVICES_TARGET_DIR:-$FLOE_CACHE/services-target}"
    say "floe-rustberg (rustberg 0.3.0): building in $target (cold: ~440 CPU-s, 6-11 min on 2 cores; log $log)"
    start=$SECONDS
    if ! CARGO_TARGET_DIR="$target" cargo build --locked --manifest-path "$crate/Cargo.toml" \
        --bin floe-rustberg >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "setup: building floe-rustberg failed (log $log)" >&2
        exit 1
    fi
    cp "$target/debug/floe-rustberg" "$bin.part"
    mv -f "$bin.part" "$bin"
    printf '%s\n' "$want" >"$stamp"
    say "floe-rustberg (rustberg 0.3.0): built in $((SECONDS - start)) s, installed at $bin"
fi

# --- IdP (oauth2-mock-server) --------------------------------------------------------
idp="$OUT/idp"
want="$(cat "$SRC/idp/package.json" "$SRC/idp/package-lock.json" | sha256sum | cut -d' ' -f1)"
stamp="$idp/.floe-package.sha256"
if [[ -d "$idp/node_modules/oauth2-mock-server" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    say "idp node_modules (oauth2-mock-server): up to date in $idp"
else
    rm -rf "$idp"
    mkdir -p "$idp"
    cp "$SRC/idp/package.json" "$SRC/idp/package-lock.json" "$idp/"
    # The package asks for Node 22+, and runs on the machine's Node 20: its
    # engine warning is expected.
    npm ci --prefix "$idp" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
    printf '%s\n' "$want" >"$stamp"
    say "idp node_modules (oauth2-mock-server): installed into $idp"
fi
