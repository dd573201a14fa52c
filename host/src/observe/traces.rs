//! OpenTelemetry traces: the host's `tracing` spans (run → step → read /
//! plugin / commit) exported over OTLP when the platform sets
//! `observability.traces: true`.
//!
//! The spans are ordinary `tracing` spans in the driver, the lakehouse and
//! the step code, named by the constants below. [`layer`] turns them into
//! OpenTelemetry spans for a tracer provider; `main` installs that layer into
//! the process subscriber once the plan says traces are wanted ([`otlp_provider`]),
//! and tests install it with the SDK's in-memory exporter.
//!
//! Transport: OTLP/HTTP with protobuf bodies (`opentelemetry-otlp`'s
//! `http-proto`), sent by the reqwest 0.12 blocking client that iceberg's
//! reqwest already builds (see `docs/design.md`, "Traces"). gRPC is not
//! compiled in: collectors take OTLP/HTTP on port 4318.
//!
//! Endpoint: `observability.otlp_endpoint` (a base URL; `/v1/traces` is
//! appended) when set, else the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! then `OTEL_EXPORTER_OTLP_ENDPOINT`, then `http://localhost:4318`. The
//! exporter also reads `OTEL_EXPORTER_OTLP_HEADERS`, `…_TIMEOUT`, and the
//! resource reads `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`
//! (`service.name` defaults to `floe-host`).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// Span names. Attributes are the span fields (`table`, `rows`, `bytes`,
/// `snapshot_id`, `plugin`, `plugin_digest`, ...). Record counters as `i64`:
/// tracing-opentelemetry 0.34 exports a `u64` or `usize` field as a string.
pub const RUN: &str = "run";
pub const STEP: &str = "step";
pub const READ: &str = "read";
pub const COMMIT: &str = "commit";
/// One span per plugin invocation (a whole ingest stream, a whole transform
/// stream, or a SQL-mode `sql` call), with its counters as attributes.
pub const PLUGIN: &str = "plugin";

/// The instrumentation scope of every span.
pub const SCOPE: &str = "floe-host";

/// The `tracing` layer that turns the host's spans into OpenTelemetry spans
/// of `provider`. Only `floe_host` spans and events are exported (events
/// become span events); give the layer that filter, e.g. [`targets`].
pub fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
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

/// A tracer provider exporting to OTLP/HTTP in batches. `endpoint` is the
/// plan's `otlp_endpoint`; `None` leaves it to the `OTEL_*` variables.
/// Spans are sent in the background; call `shutdown` to flush.
#[cfg(feature = "otlp")]
pub fn otlp_provider(endpoint: Option<&str>) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};

    if std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .is_ok_and(|p| p.trim() == "grpc")
    {
        tracing::warn!("OTEL_EXPORTER_OTLP_PROTOCOL asks for gRPC; floe-host exports OTLP/HTTP (protobuf) only.");
    }
    let client = reqwest_012::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(BlockingClient(client));
    let resolved = match endpoint {
        Some(endpoint) => {
            let url = traces_url(endpoint);
            builder = builder.with_endpoint(url.clone());
            url
        }
        None => std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .unwrap_or_else(|_| "http://localhost:4318".into()),
    };
    if resolved.contains(":4317") {
        tracing::warn!(endpoint = %resolved,
            "Port 4317 is OTLP/gRPC; floe-host sends OTLP/HTTP, which collectors take on port 4318.");
    }
    let exporter = builder.build().map_err(|e| format!("cannot build the OTLP exporter for {resolved}: {e}"))?;
    tracing::debug!(endpoint = %resolved, "Exporting traces over OTLP/HTTP.");
    Ok(SdkTracerProvider::builder().with_resource(resource()).with_batch_exporter(exporter).build())
}

/// `opentelemetry_http::HttpClient` over reqwest 0.12's blocking client
/// (opentelemetry-http's own reqwest integration needs reqwest 0.13, a
/// second copy). The batch span processor exports on its own thread, outside
/// any async runtime, so blocking there is what it expects.
#[cfg(feature = "otlp")]
#[derive(Debug)]
struct BlockingClient(reqwest_012::blocking::Client);

#[cfg(feature = "otlp")]
#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for BlockingClient {
    async fn send_bytes(
        &self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> Result<opentelemetry_http::Response<opentelemetry_http::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let response =
            self.0.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body.to_vec()).send()?;
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
