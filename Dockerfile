# syntax=docker/dockerfile:1
# floe-host release image: the release binary, DuckDB's official shared
# library (the build the test suite runs against, with its parquet, json and
# icu extensions compiled in, so nothing is ever installed at run time) and
# the bundled plugin components, on a small Debian base, running as a
# non-root user. scripts/release-check.sh checks this layout offline.
#
#   docker build -t floe-host:dev .
#   docker run --rm floe-host:dev --help
#
# Plugins are found at /usr/local/share/floe-host/plugins (`floe-host init`
# looks there, next to the binary). Pipelines may instead refer to components
# mounted from a volume (any absolute path in floe.yaml); pin them with sha256.
#
# `--features bundled` would compile DuckDB from source into one static file
# (~2,100 CPU-seconds more) but without icu: libduckdb-sys ships no ICU
# source.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
ENV CARGO_TARGET_DIR=/build/target \
    FLOE_PLUGINS_TARGET_DIR=/build/plugins-target \
    FLOE_CACHE=/build/cache
RUN rustup target add wasm32-wasip2 \
    && apt-get update \
    && apt-get install -y --no-install-recommends npm \
    && rm -rf /var/lib/apt/lists/*
COPY . .
# The plugins (a separate wasm32-wasip2 workspace) into plugins/dist; only the
# real ones ship, not the adversarial test components (evil_*).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/plugins-target \
    scripts/build-plugins.sh --locked \
    && mkdir -p /out/plugins \
    && cp plugins/dist/*.wasm /out/plugins/ \
    && rm -f /out/plugins/evil_*.wasm
# DuckDB's official libduckdb.so (from npm, pinned in scripts/env.sh), then
# the host linked against it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    scripts/setup.sh --demo \
    && cargo build --locked --release -p floe-host \
    && install -D -m 0755 /build/target/release/floe-host /out/floe-host \
    && install -D -m 0644 /build/cache/duckdb/*/libduckdb.so /out/lib/libduckdb.so

FROM debian:bookworm-slim AS runtime
# ca-certificates: TLS to catalogs and object stores. libstdc++ (DuckDB) and
# glibc come with the base image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 floe \
    && useradd --system --uid 10001 --gid floe --home-dir /nonexistent --shell /usr/sbin/nologin floe
COPY --from=builder /out/lib/libduckdb.so /usr/local/lib/libduckdb.so
RUN ldconfig
COPY --from=builder /out/floe-host /usr/local/bin/floe-host
COPY --from=builder /out/plugins/ /usr/local/share/floe-host/plugins/
# Writable places: mount emptyDirs here when the root filesystem is read-only.
# FLOE_STATE_DIR holds the compiled-component cache (and the embedded catalog
# when no platform file is given); DuckDB spills to its temp_directory (/tmp).
ENV FLOE_STATE_DIR=/var/lib/floe \
    FLOE_PLUGIN_DIST=/usr/local/share/floe-host/plugins
RUN mkdir -p /var/lib/floe /pipeline && chown floe:floe /var/lib/floe
WORKDIR /pipeline
# Numeric, so that Kubernetes `runAsNonRoot` can verify it.
USER 10001:10001
# Exit codes (stable): 0 ok, 1 step failed (retry), 2 config (no retry),
# 3 plugin violation (no retry), 130 SIGINT / 143 SIGTERM (stopped at a safe point).
ENTRYPOINT ["/usr/local/bin/floe-host"]
CMD ["run", "/pipeline"]
