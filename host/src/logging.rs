//! Logs on stderr (text on a terminal, with a progress line for the running
//! step, JSON lines elsewhere) and the
//! OpenTelemetry trace layer, with its flush on every exit path.

use crate::cli::LogFormat;

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
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("floe_host=info,warn"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
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
    let events_only = filter_fn(|meta| meta.is_event());
    let logs: Box<dyn tracing_subscriber::Layer<_> + Send + Sync> = if json {
        fmt.json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_filter(FilterExt::and(filter, events_only))
            .boxed()
    } else if progress {
        floe_host::observe::progress::enable();
        fmt.with_writer(floe_host::observe::progress::TerminalWriter)
            .with_filter(FilterExt::and(filter, events_only))
            .boxed()
    } else {
        fmt.with_filter(FilterExt::and(filter, events_only)).boxed()
    };
    tracing_subscriber::registry().with(traces.with_filter(floe_host::observe::traces::targets())).with(logs).init();
    Telemetry { handle, provider: None }
}

/// The trace exporter of this process, if any. [`Telemetry::shutdown`] flushes
/// it; `main` calls it on every path, and dropping it flushes too (a panic).
pub struct Telemetry {
    handle: tracing_subscriber::reload::Handle<Option<TraceLayer>, tracing_subscriber::Registry>,
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Starts exporting spans when the platform asks for traces. A failure
    /// to set up the exporter is reported and the run goes on without it.
    pub fn start(&mut self, observability: &floe_host::config::Observability) {
        if !observability.traces {
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
