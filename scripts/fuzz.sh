#!/usr/bin/env bash
# Runs one cargo-fuzz target of fuzz/boundary for a while (default 60 s),
# growing fuzz/corpus/<target>. Installs a nightly toolchain and cargo-fuzz
# if they are missing. Usage: scripts/fuzz.sh <guest_output|csv_parser> [seconds] [jobs]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

target="${1:?usage: scripts/fuzz.sh <guest_output|csv_parser> [seconds] [jobs]}"
seconds="${2:-60}"
jobs="${3:-1}"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# New inputs go to corpus/ (minimize it with `cargo fuzz cmin`); seeds/ holds
# the hand-made starting points, which stay as they are.
corpus="$FLOE_REPO/fuzz/corpus/$target"
seeds="$FLOE_REPO/fuzz/seeds/$target"
mkdir -p "$corpus"
cd "$FLOE_REPO"
# Its own target directory: sanitizer builds share nothing with the host's.
parallel=()
if [[ "$jobs" -gt 1 ]]; then
    # libFuzzer's job mode writes fuzz-<n>.log into the working directory.
    mkdir -p "$FLOE_CACHE/fuzz-logs/$target"
    cd "$FLOE_CACHE/fuzz-logs/$target"
    parallel=(-jobs="$jobs" -workers="$jobs")
fi
CARGO_TARGET_DIR="$FLOE_CACHE/fuzz-target" cargo +nightly fuzz run --fuzz-dir "$FLOE_REPO/fuzz/boundary" "$target" "$corpus" "$seeds" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$FLOE_REPO/fuzz/boundary/artifacts/$target/" "${parallel[@]}"
