# syntax=docker/dockerfile:1
# floe-host release image: the static binary (DuckDB compiled in, `--features
# bundled`) and the bundled plugin components, on a small Debian base, running
# as a non-root user.
#
#   docker build -t floe-host:dev .
#   docker run --rm floe-host:dev --help
#
# Plugins are found at /usr/local/share/floe-host/plugins (`floe-host init`
# looks there, next to the binary). Pipelines may instead refer to components
# mounted from a volume (any absolute path in floe.yaml); pin them with sha256.
#
# Building the bundled DuckDB compiles its C++ sources: expect ~2,100
# CPU-seconds for the builder stage on a cold cache.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
ENV CARGO_TARGET_DIR=/build/target \
    FLOE_PLUGINS_TARGET_DIR=/build/plugins-target \
    FLOE_CACHE=/build/cache
RUN rustup target add wasm32-wasip2
COPY . .
# The plugins (a separate wasm32-wasip2 workspace) into plugins/dist; only the
# real ones ship, not the adversarial test components (evil_*).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/plugins-target \
    scripts/build-plugins.sh --locked \
    && mkdir -p /out/plugins \
    && cp plugins/dist/*.wasm /out/plugins/ \
    && rm -f /out/plugins/evil_*.wasm
# The host with DuckDB linked statically: no libduckdb.so at run time.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --locked --release -p floe-host --features bundled \
    && install -D -m 0755 /build/target/release/floe-host /out/floe-host

FROM debian:bookworm-slim AS runtime
# ca-certificates: TLS to catalogs and object stores. libstdc++ (DuckDB) and
# glibc come with the base image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 floe \
    && useradd --system --uid 10001 --gid floe --home-dir /nonexistent --shell /usr/sbin/nologin floe
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
