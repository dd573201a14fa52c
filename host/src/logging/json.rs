//! JSON log lines: one object per line, flat, for log collectors. Every
//! record of a run carries its context (`run_id`, `pipeline`, `step`,
//! `table`, `plugin`) from the spans it was logged in, so a collector can
//! filter one run or one step without joining lines. The final error of a
//! failed command and a panic are written here too ([`write_record`]), past
//! the `FLOE_LOG` filter, so the last line of a failed pod always says why.

use std::fmt;
use std::io::Write;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Span fields copied onto every record logged inside the span.
const CONTEXT: [&str; 5] = ["run_id", "pipeline", "step", "table", "plugin"];

/// The event format of `--log-format json` (span fields are kept by
/// [`JsonFields`], which this reads back).
pub struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut record = Map::new();
        record.insert("timestamp".into(), now().into());
        record.insert("level".into(), event.metadata().level().as_str().into());
        // Outermost span first, so that a step's `table` wins over the run's.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() else { continue };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    for (key, value) in fields.into_iter().filter(|(k, _)| CONTEXT.contains(&k.as_str())) {
                        record.insert(key, value);
                    }
                }
            }
        }
        let target = event.metadata().target();
        if !target.starts_with("floe_host") {
            record.insert("target".into(), target.into());
        }
        event.record(&mut Fields(&mut record));
        writeln!(writer, "{}", Value::Object(record))
    }
}

/// Writes one record straight to stderr, whatever the log filter says: the
/// final error of a command, a panic.
pub fn write_record(level: &str, message: &str, fields: Map<String, Value>) {
    let mut record = Map::new();
    record.insert("timestamp".into(), now().into());
    record.insert("level".into(), level.into());
    record.insert("message".into(), message.into());
    record.extend(fields);
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{}", Value::Object(record));
}

fn now() -> String {
    floe_host::observe::rfc3339(std::time::SystemTime::now())
}

/// An event's fields as JSON values, numbers and booleans kept as such.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
}
