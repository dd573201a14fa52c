#!/usr/bin/env bash
# Prepare a fresh machine (dev or CI) for floe-host. Idempotent: each step checks
# first and prints one line saying what it ensured. Needs only what the machine
# kind ships: rustup/cargo, python3 (with venv), node/npm.
#
#   (a) the wasm32-wasip2 Rust target (plugins);
#   (b) the DuckDB shared library libduckdb.so in $DUCKDB_LIB_DIR (from npm);
#   (c) the Python venv $FLOE_VENV with tests/py/requirements.txt installed;
#   (d) the test services (tests/services/install.sh): the rustberg REST catalog
#       fixture, built once per source change (6-11 min cold), and the IdP's npm
#       modules; moto_server came with (c).
#
# `setup.sh --demo` stops after (b): the demo needs neither the venv nor the
# test services (scripts/demo.sh).
set -euo pipefail
demo_only=false
[[ "${1:-}" == "--demo" ]] && demo_only=true

# shellcheck source=scripts/env.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"

say() { printf 'setup: %s\n' "$*"; }

# --- (a) Rust target for the plugins ---------------------------------------
if rustup target list --installed 2>/dev/null | grep -qx 'wasm32-wasip2'; then
    say "rust target wasm32-wasip2: present"
else
    rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
    say "rust target wasm32-wasip2: installed"
fi

# --- (b) DuckDB shared library ----------------------------------------------
if [[ -f "$DUCKDB_LIB_DIR/libduckdb.so" ]]; then
    say "libduckdb.so $FLOE_DUCKDB_VERSION: present in $DUCKDB_LIB_DIR"
else
    mkdir -p "$DUCKDB_LIB_DIR"
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/floe-duckdb.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    # npm pack prints the tarball name on its last stdout line.
    tgz="$(cd "$tmp" && npm pack --silent "$FLOE_DUCKDB_NPM" 2>/dev/null | tail -n 1)"
    if [[ -z "$tgz" || ! -f "$tmp/$tgz" ]]; then
        echo "setup: npm pack $FLOE_DUCKDB_NPM failed" >&2
        exit 1
    fi
    tar -xzf "$tmp/$tgz" -C "$tmp" package/libduckdb.so
    # Same filesystem as the target, so the final mv is an atomic rename.
    part="$DUCKDB_LIB_DIR/.libduckdb.so.$$"
    cp "$tmp/package/libduckdb.so" "$part"
    mv -f "$part" "$DUCKDB_LIB_DIR/libduckdb.so"
    rm -rf "$tmp"
    trap - EXIT
    say "libduckdb.so $FLOE_DUCKDB_VERSION: installed from npm $FLOE_DUCKDB_NPM into $DUCKDB_LIB_DIR"
fi

if $demo_only; then
    exit 0
fi

# --- (c) Python venv for the cross-engine checks ----------------------------
req="$FLOE_REPO/tests/py/requirements.txt"
want="$(sha256sum "$req" | cut -d' ' -f1)"
stamp="$FLOE_VENV/.floe-requirements.sha256"
if [[ -x "$FLOE_VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    say "python venv: up to date at $FLOE_VENV"
else
    if [[ ! -x "$FLOE_VENV/bin/python" ]] || ! "$FLOE_VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf "$FLOE_VENV"
        mkdir -p "$(dirname "$FLOE_VENV")"
        if python3 -c 'import ensurepip' >/dev/null 2>&1; then
            python3 -m venv "$FLOE_VENV"
        elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
            # Debian's python3 splits ensurepip into python3-venv.
            pyver="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            apt-get update -qq >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${pyver}-venv" >/dev/null 2>&1 \
                || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            python3 -m venv "$FLOE_VENV"
        else
            # Last resort: virtualenv from PyPI brings its own pip.
            python3 -m pip install --quiet --user virtualenv
            python3 -m virtualenv --quiet "$FLOE_VENV"
        fi
    fi
    "$FLOE_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    printf '%s\n' "$want" >"$stamp"
    say "python venv: installed $(basename "$req") into $FLOE_VENV"
fi

# --- (d) Test services (REST catalog, IdP; S3 is in the venv) ----------------
"$FLOE_REPO/tests/services/install.sh"
