//! floe's log lines in Dagster's event log: a `tracing` layer that sends
//! every event it sees (the host's and its plugins', as `FLOE_LOG` filters
//! them) as a Dagster Pipes `log` message at the matching level, once
//! [`forward_to`] has named the session's channel. Before that, and when
//! Dagster did not launch the process, it does nothing.

use std::fmt::Write as _;
use std::sync::OnceLock;

use serde_json::json;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::pipes::Channel;

/// The Pipes channel of this process, set once when a session starts.
static CHANNEL: OnceLock<Channel> = OnceLock::new();

/// From now on, log events go to Dagster through `channel` too.
pub(super) fn forward_to(channel: Channel) {
    let _ = CHANNEL.set(channel);
}

/// The layer; give it the same filter as the log output.
pub struct PipesLogs;

impl<S: Subscriber> Layer<S> for PipesLogs {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(channel) = CHANNEL.get() else { return };
        let target = event.metadata().target();
        // Not the forwarder's own failures (they would loop), nor the span
        // markers that only traces take.
        if matches!(target, "floe_host::observe::pipes" | "floe_host::observe::pipes_log")
            || target == super::traces::EXCEPTION_TARGET
        {
            return;
        }
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            Level::DEBUG | Level::TRACE => "DEBUG",
        };
        let mut text = Text::default();
        event.record(&mut text);
        // A failed write is the Pipes observer's to report; this layer stays quiet.
        let _ = channel.send("log", json!({"message": text.finish(), "level": level}));
    }
}

/// `message key=value ...`, as the text log shows an event.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(self) -> String {
        if self.fields.is_empty() { self.message } else { format!("{}{}", self.message, self.fields) }
    }
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}
