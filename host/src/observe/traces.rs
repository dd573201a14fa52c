//! OpenTelemetry traces: the host's `tracing` spans (run → compile, and
//! run → step → read / plugin / commit) exported over OTLP when the platform
//! sets `observability.traces: true` (with the `otlp` feature; without it
//! only the span names below are built).
//!
//! The spans are ordinary `tracing` spans in the driver, the lakehouse and
//! the step code, named by the constants below. [`layer`] turns them into
//! OpenTelemetry spans for a tracer provider; `main` installs that layer into
//! the process subscriber once the plan says traces are wanted ([`otlp_provider`]),
//! and tests install it with the SDK's in-memory exporter.
//!
//! On or off: `observability.traces`, overridden by `OTEL_SDK_DISABLED` and
//! `OTEL_TRACES_EXPORTER` ([`enabled`]).
//!
//! Transport: OTLP/HTTP with protobuf bodies (`opentelemetry-otlp`'s
//! `http-proto`), sent by reqwest's blocking client with rustls, so
//! `https://` collectors work (see `docs/design.md`, "Traces"). gRPC is not
//! compiled in: collectors take OTLP/HTTP on port 4318.
//!
//! Endpoint: `observability.otlp_endpoint` (a base URL; `/v1/traces` is
//! appended) when set, else the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! then `OTEL_EXPORTER_OTLP_ENDPOINT`, then `http://localhost:4318`. The
//! exporter also reads `OTEL_EXPORTER_OTLP_HEADERS`, `…_TIMEOUT`, and the
//! resource reads `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
//! (`service.name` defaults to `floe-host`).

#[cfg(feature = "otlp")]
use opentelemetry::trace::TracerProvider as _;
#[cfg(feature = "otlp")]
use opentelemetry_sdk::trace::SdkTracerProvider;

/// Span names. Attributes are the span fields (`table`, `rows`, `bytes`,
/// `snapshot_id`, `plugin`, `plugin_digest`, ...). Record counters as `i64`:
/// tracing-opentelemetry 0.34 exports a `u64` or `usize` field as a string.
pub const RUN: &str = "run";
pub const STEP: &str = "step";
pub const READ: &str = "read";
pub const COMMIT: &str = "commit";
/// One span per plugin a run loads, before its first step: compiled, or
/// taken from the compile cache (`from_cache`, `elapsed_ms`).
pub const COMPILE: &str = "compile";
/// One span per plugin invocation (a whole ingest stream, a whole transform
/// stream, or a SQL-mode `sql` call), with its counters as attributes.
pub const PLUGIN: &str = "plugin";
/// `floe-host maintain`: the root span (`run_id`, `pipeline`, `dry_run`,
/// `tables`), and one span per table with the counts of `Maintained`.
pub const MAINTAIN: &str = "maintain";
pub const MAINTAIN_TABLE: &str = "maintain_table";

/// The instrumentation scope of every span.
pub const SCOPE: &str = "floe-host";

/// The target of the events that [`fail`] records: exported as span events,
/// never logged (the log has the error already).
pub const EXCEPTION_TARGET: &str = "floe_host::exception";

/// Marks `span` failed: status ERROR with the error as its message, and an
/// `exception` event (the OpenTelemetry conventions for a failed operation).
/// The span must declare `otel.status_code` and `otel.status_description`.
pub fn fail<'s>(span: &'s tracing::Span, error: &dyn std::fmt::Display) -> &'s tracing::Span {
    let message = error.to_string();
    // An event with an `error` field and no message is what
    // tracing-opentelemetry turns into an `exception` event (the span
    // extension API cannot reach the layer through the reload slot).
    tracing::error!(target: EXCEPTION_TARGET, parent: span, error = %message);
    span.record("otel.status_code", "ERROR").record("otel.status_description", message)
}

/// The `tracing` layer that turns the host's spans into OpenTelemetry spans
/// of `provider`. Only `floe_host` spans and events are exported (events
/// become span events); give the layer that filter, e.g. [`targets`].
#[cfg(feature = "otlp")]
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SCOPE))
        .with_tracked_inactivity(false)
        .with_threads(false)
}

/// What the OpenTelemetry layer sees: the host's own spans and events at
/// `info` and above, whatever `FLOE_LOG` says.
pub fn targets() -> tracing_subscriber::filter::Targets {
    tracing_subscriber::filter::Targets::new().with_target("floe_host", tracing::Level::INFO)
}

/// The resource of the exported spans: `service.name` from
/// `OTEL_SERVICE_NAME` (else `floe-host`), plus `OTEL_RESOURCE_ATTRIBUTES`
/// and the SDK's defaults.
#[cfg(feature = "otlp")]
pub fn resource() -> opentelemetry_sdk::Resource {
    let builder = opentelemetry_sdk::Resource::builder();
    let named_by_env = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    let builder = if named_by_env { builder } else { builder.with_service_name(SCOPE) };
    builder.with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))).build()
}

/// The trace endpoint for a configured base URL: `/v1/traces` appended
/// unless it is already there.
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") { base.to_string() } else { format!("{base}/v1/traces") }
}

/// Whether this process exports traces: the platform's `observability.traces`,
/// overridden by the OpenTelemetry SDK's environment conventions:
/// `OTEL_SDK_DISABLED=true` turns them off, `OTEL_TRACES_EXPORTER=none` too,
/// and `OTEL_TRACES_EXPORTER=otlp` turns them on with no platform change.
pub fn enabled(platform: bool) -> bool {
    let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty());
    if var("OTEL_SDK_DISABLED").as_deref() == Some("true") {
        return false;
    }
    match var("OTEL_TRACES_EXPORTER").as_deref() {
        None => platform,
        Some("none") => false,
        Some("otlp") => true,
        Some(other) => {
            tracing::warn!(
                exporter = other,
                "OTEL_TRACES_EXPORTER names an exporter floe-host does not have; it exports `otlp` (HTTP) or `none`."
            );
            platform
        }
    }
}

/// A tracer provider exporting to OTLP/HTTP in batches. `endpoint` is the
/// plan's `otlp_endpoint`; `None` leaves it to the `OTEL_*` variables.
/// Spans are sent in the background; call `shutdown` to flush. A collector
/// that cannot be reached or refuses the spans is warned about once.
#[cfg(feature = "otlp")]
pub fn otlp_provider(endpoint: Option<&str>) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};

    if std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .is_ok_and(|p| p.trim() == "grpc")
    {
        tracing::warn!("OTEL_EXPORTER_OTLP_PROTOCOL asks for gRPC; floe-host exports OTLP/HTTP (protobuf) only.");
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("floe-host/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut builder =
        opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
    let resolved = match endpoint {
        Some(endpoint) => {
            let url = traces_url(endpoint);
            builder = builder.with_endpoint(url.clone());
            url
        }
        None => std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").map(|base| traces_url(&base)))
            .unwrap_or_else(|_| "http://localhost:4318/v1/traces".into()),
    };
    if resolved.contains(":4317") {
        tracing::warn!(endpoint = %resolved,
            "Port 4317 is OTLP/gRPC; floe-host sends OTLP/HTTP, which collectors take on port 4318.");
    }
    let client = BlockingClient { client, endpoint: resolved.clone(), warned: Default::default() };
    let exporter = builder
        .with_http_client(client)
        .build()
        .map_err(|e| format!("cannot build the OTLP exporter for {resolved}: {e}"))?;
    tracing::debug!(endpoint = %resolved, "Exporting traces over OTLP/HTTP.");
    Ok(SdkTracerProvider::builder().with_resource(resource()).with_batch_exporter(exporter).build())
}

/// `opentelemetry_http::HttpClient` over reqwest's blocking client. The
/// batch span processor exports on its own thread, outside any async
/// runtime, so blocking there is what it expects. The first failed export
/// is logged as a warning (the SDK itself reports nothing); later ones are not.
#[cfg(feature = "otlp")]
#[derive(Debug)]
struct BlockingClient {
    client: reqwest::blocking::Client,
    endpoint: String,
    warned: std::sync::atomic::AtomicBool,
}

#[cfg(feature = "otlp")]
impl BlockingClient {
    fn warn_once(&self, why: &str) {
        if !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(endpoint = %self.endpoint, "Cannot send traces to the OTLP collector ({why}); the run goes on, and spans that cannot be sent are dropped.");
        }
    }
}

#[cfg(feature = "otlp")]
#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for BlockingClient {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<opentelemetry_http::Response<opentelemetry_http::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let response = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body.to_vec())
            .send()
            .inspect_err(|error| self.warn_once(&error.to_string()))?;
        if !response.status().is_success() {
            self.warn_once(&format!("it answered {}", response.status()));
        }
        let mut out = opentelemetry_http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            out = out.header(name, value);
        }
        // Responses are tiny (an ExportTraceServiceResponse); cap what is read anyway.
        let body = response.bytes()?;
        let body = body.slice(..body.len().min(1 << 20));
        Ok(out.body(body)?)
    }
}
