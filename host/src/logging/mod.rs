//! Logs on stderr (text on a terminal, with a progress line for the running
//! step, JSON lines elsewhere), the final error of a command and panics in
//! the same format, and the OpenTelemetry trace layer, with its flush on
//! every exit path.

mod json;

use std::sync::atomic::{AtomicBool, Ordering};

use floe_host::exit::ExitCode;
use serde_json::{Map, Value};

use crate::cli::LogFormat;

/// Whether stderr carries JSON lines (set once by [`init_logging`]).
static JSON: AtomicBool = AtomicBool::new(false);

/// The OpenTelemetry layer slot: empty until a run's plan asks for traces.
type TraceLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// Installs the stderr log subscriber, with an (empty) slot for the
/// OpenTelemetry layer that [`Telemetry::start`] fills.
pub fn init_logging(format: LogFormat) -> Telemetry {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{
        filter::{FilterExt, filter_fn},
        reload,
    };
    let directives = std::env::var("FLOE_LOG").or_else(|_| std::env::var("RUST_LOG")).ok();
    let mut directives = filter_directives(directives.as_deref());
    if let Err(error) = tracing_subscriber::EnvFilter::try_new(&directives) {
        eprintln!("warning: FLOE_LOG/RUST_LOG is not a valid filter ({error}); logging at the default level");
        directives = filter_directives(None);
    }
    let filter = tracing_subscriber::EnvFilter::new(&directives);
    // The same filter for the lines that go to Dagster's event log.
    let dagster_filter = tracing_subscriber::EnvFilter::new(&directives);
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    JSON.store(json, Ordering::Relaxed);
    if json {
        install_json_panic_hook();
    }
    // A status line with the running step's progress, on a terminal only.
    let progress = !json && std::io::stderr().is_terminal();
    // The OpenTelemetry layer sees the host's spans whatever FLOE_LOG says;
    // the log layer sees events only, so log lines carry no span context.
    let (traces, handle) = reload::Layer::new(None::<TraceLayer>);
    // Colours only for a person at a terminal, not in files or pipes.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    // Events only, but not the ones that mark a failed span (they are for traces).
    let events_only =
        filter_fn(|meta| meta.is_event() && meta.target() != floe_host::observe::traces::EXCEPTION_TARGET);
    let logs: Box<dyn tracing_subscriber::Layer<_> + Send + Sync> = if json {
        // JSON records carry their run's and step's context (logging/json.rs),
        // so this layer also sees the host's spans, whatever the filter says.
        let host_spans = filter_fn(|meta| meta.is_span() && meta.target().starts_with("floe_host"));
        fmt.fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(json::FlatJson)
            .with_filter(FilterExt::or(FilterExt::and(filter, events_only), host_spans))
            .boxed()
    } else if progress {
        floe_host::observe::progress::enable();
        fmt.with_writer(floe_host::observe::progress::TerminalWriter)
            .with_filter(FilterExt::and(filter, events_only))
            .boxed()
    } else {
        fmt.with_filter(FilterExt::and(filter, events_only)).boxed()
    };
    let dagster = floe_host::observe::pipes_log::PipesLogs
        .with_filter(FilterExt::and(dagster_filter, filter_fn(|meta| meta.is_event())));
    tracing_subscriber::registry()
        .with(traces.with_filter(floe_host::observe::traces::targets()))
        .with(logs)
        .with(dagster)
        .init();
    Telemetry {
        handle,
        #[cfg(feature = "otlp")]
        provider: None,
    }
}

/// The trace exporter of this process, if any. [`Telemetry::shutdown`] flushes
/// it; `main` calls it on every path, and dropping it flushes too (a panic).
pub struct Telemetry {
    // The slot stays empty in a build without `otlp`.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    handle: tracing_subscriber::reload::Handle<Option<TraceLayer>, tracing_subscriber::Registry>,
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Starts exporting spans when the platform or the `OTEL_*` environment
    /// asks for traces (`traces::enabled`). A failure
    /// to set up the exporter is reported and the run goes on without it.
    pub fn start(&mut self, observability: &floe_host::config::Observability) {
        if !floe_host::observe::traces::enabled(observability.traces) {
            return;
        }
        #[cfg(feature = "otlp")]
        match floe_host::observe::traces::otlp_provider(observability.otlp_endpoint.as_deref()) {
            Ok(provider) => {
                let layer: TraceLayer = Box::new(floe_host::observe::traces::layer(&provider));
                match self.handle.reload(Some(layer)) {
                    Ok(()) => self.provider = Some(provider),
                    Err(error) => {
                        tracing::warn!(%error, "Cannot install the trace exporter; the run goes on without traces.")
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "Cannot export traces; the run goes on without them."),
        }
        #[cfg(not(feature = "otlp"))]
        tracing::warn!(
            "`observability.traces` is set, but this floe-host was built without the `otlp` feature; no traces are sent."
        );
    }

    /// Flushes and stops the exporter (waits for the last batch to be sent).
    pub fn shutdown(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take() {
            let _ = self.handle.reload(None);
            if let Err(error) = provider.shutdown() {
                tracing::warn!(%error, "Cannot flush the last traces.");
            }
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The `EnvFilter` directives for `FLOE_LOG` (or `RUST_LOG`): the usual
/// syntax, except that a bare level (`info`, `debug`) is floe's own level
/// (the host and its plugins' log lines), and every other crate stays at
/// `warn` unless a directive names it (`FLOE_LOG=debug,iceberg=debug`).
pub fn filter_directives(directives: Option<&str>) -> String {
    let mut out = Vec::new();
    let mut own_level = None;
    for directive in directives.unwrap_or("").split(',').map(str::trim).filter(|d| !d.is_empty()) {
        if directive.parse::<tracing_subscriber::filter::LevelFilter>().is_ok() {
            own_level = Some(directive);
        } else {
            out.push(directive.to_string());
        }
    }
    // `floe` covers the `floe_host` target and the plugins' `floe::plugin`.
    out.insert(0, format!("floe={}", own_level.unwrap_or("info")));
    out.push("warn".to_string());
    out.join(",")
}

/// What is known about a failed command, for its final error record.
#[derive(Default)]
pub struct Failure<'a> {
    pub run_id: Option<&'a str>,
    pub pipeline: Option<&'a str>,
    pub step: Option<&'a str>,
    pub table: Option<&'a str>,
}

/// Reports the error a command ends with: `error: MESSAGE` on a text
/// stderr; in JSON mode one ERROR record with the message (whole, however
/// many lines), the exit code and what `failure` knows. Written whatever
/// `FLOE_LOG` says: it is why the process failed.
pub fn report_error(message: &str, code: ExitCode, failure: Failure<'_>) {
    if !JSON.load(Ordering::Relaxed) {
        if message.starts_with("error: ") {
            eprintln!("{message}");
        } else {
            eprintln!("error: {message}");
        }
        return;
    }
    let mut fields = Map::new();
    fields.insert("exit_code".into(), code.code().into());
    for (key, value) in
        [("run_id", failure.run_id), ("pipeline", failure.pipeline), ("step", failure.step), ("table", failure.table)]
    {
        if let Some(value) = value {
            fields.insert(key.into(), Value::from(value));
        }
    }
    let message = message.strip_prefix("error: ").unwrap_or(message);
    json::write_record("ERROR", message.trim_end(), fields);
}

/// In JSON mode a panic is one ERROR record too (message, location), not
/// Rust's plain-text report.
fn install_json_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a panic with no message)".to_string());
        let mut fields = Map::new();
        fields.insert("panic".into(), true.into());
        if let Some(location) = info.location() {
            fields.insert("location".into(), format!("{}:{}", location.file(), location.line()).into());
        }
        fields.insert("thread".into(), std::thread::current().name().unwrap_or("unnamed").into());
        json::write_record("ERROR", &format!("floe-host panicked: {message}"), fields);
    }));
}

#[cfg(test)]
mod tests {
    use super::filter_directives;

    #[test]
    fn a_bare_level_is_floe_s_own_and_dependencies_stay_at_warn() {
        assert_eq!(filter_directives(None), "floe=info,warn");
        assert_eq!(filter_directives(Some("")), "floe=info,warn");
        assert_eq!(filter_directives(Some("debug")), "floe=debug,warn");
        assert_eq!(filter_directives(Some("info, iceberg=debug")), "floe=info,iceberg=debug,warn");
        assert_eq!(filter_directives(Some("floe_host=trace,info")), "floe=info,floe_host=trace,warn");
        assert_eq!(filter_directives(Some("warn,floe::plugin=trace")), "floe=warn,floe::plugin=trace,warn");
    }
}
