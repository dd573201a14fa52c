//! OpenTelemetry traces: the demo run in-process with the host's OTel layer
//! over the SDK's in-memory exporter. One trace; a span for the run, each
//! step, each plugin compile, each table read, each plugin invocation and each commit; their
//! attributes agree with the run report and the plan.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use floe_host::config::{ConfigSource, SecretSource};
use floe_host::observe::{Observers, traces};
use floe_host::plan::Action;
use floe_host::run::{self, RunOptions};
use opentelemetry::Value;
use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::prelude::*;

use crate::support::{example, temp_dir};

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

fn int(span: &SpanData, key: &str) -> i64 {
    match attr(span, key) {
        Some(Value::I64(v)) => *v,
        other => panic!("span `{}` attribute `{key}`: expected an integer, got {other:?}", span.name),
    }
}

fn text(span: &SpanData, key: &str) -> String {
    match attr(span, key) {
        Some(Value::String(v)) => v.to_string(),
        other => panic!("span `{}` attribute `{key}`: expected a string, got {other:?}", span.name),
    }
}

#[test]
fn demo_run_exports_one_trace_with_run_step_read_plugin_and_commit_spans() {
    let state = temp_dir();
    let source = ConfigSource {
        floe: example("customer-analytics"),
        state_dir: Some(state.path().to_path_buf()),
        ..Default::default()
    };
    let project = floe_host::config::load(&source).expect("the demo configuration loads");
    let plan = floe_host::plan::build(&project, &SecretSource::default()).expect("the demo plan builds");

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    // Thread-local, so other tests running in parallel do not leak spans in;
    // the run's spans live on this thread and its steps' threads (the driver
    // hands them the subscriber).
    let subscriber = tracing_subscriber::registry().with(traces::layer(&provider).with_filter(traces::targets()));
    let options = RunOptions { run_id: Some("traces-test".into()), ..Default::default() };
    let report =
        tracing::subscriber::with_default(subscriber, || run::run(&plan, &options, &mut Observers(Vec::new())))
            .expect("the demo runs");
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("finished spans");
    provider.shutdown().expect("shutdown");

    // One trace.
    let trace_ids: HashSet<_> = spans.iter().map(|s| s.span_context.trace_id()).collect();
    assert_eq!(trace_ids.len(), 1, "spans in more than one trace: {trace_ids:?}");

    let named = |name: &str| spans.iter().filter(|s| s.name == name).collect::<Vec<_>>();
    let ids = |list: &[&SpanData]| list.iter().map(|s| s.span_context.span_id()).collect::<HashSet<SpanId>>();

    // The run: the root, with its id.
    let runs = named(traces::RUN);
    assert_eq!(runs.len(), 1, "run spans");
    let run_span = runs[0];
    assert_eq!(run_span.parent_span_id, SpanId::INVALID, "the run span is the root");
    assert_eq!(text(run_span, "run_id"), "traces-test");
    assert_eq!(int(run_span, "committed"), 9);

    // One span per step, children of the run, carrying the summary's rows and snapshot.
    let steps = named(traces::STEP);
    assert_eq!(steps.len(), 9, "step spans");
    assert_eq!(report.steps.len(), 9);
    let by_step: BTreeMap<String, &SpanData> = steps.iter().map(|s| (text(s, "step"), *s)).collect();
    for step in &report.steps {
        let span = by_step.get(&step.step).unwrap_or_else(|| panic!("no span for step `{}`", step.step));
        assert_eq!(span.parent_span_id, run_span.span_context.span_id(), "step `{}` parent", step.step);
        assert_eq!(text(span, "table"), step.table);
        assert_eq!(int(span, "rows") as u64, step.rows, "step `{}` rows", step.step);
        assert_eq!(int(span, "bytes") as u64, step.bytes, "step `{}` bytes", step.step);
        assert_eq!(int(span, "snapshot_id"), step.snapshot_id, "step `{}` snapshot", step.step);
    }
    let step_ids = ids(&steps);

    // One commit per step, inside it, with the committed snapshot.
    let commits = named(traces::COMMIT);
    assert_eq!(commits.len(), 9, "commit spans");
    let committed: BTreeMap<String, (i64, u64)> =
        report.steps.iter().map(|s| (s.table.clone(), (s.snapshot_id, s.rows))).collect();
    for span in &commits {
        assert!(step_ids.contains(&span.parent_span_id), "a commit span outside a step");
        let table = text(span, "table");
        let (snapshot, rows) = committed[&table];
        assert_eq!(int(span, "snapshot_id"), snapshot, "commit of `{table}`");
        assert_eq!(int(span, "rows") as u64, rows, "commit of `{table}`");
    }

    // Every input read is a span, inside its step, of the snapshot this run committed.
    let expected_reads: usize =
        plan.steps.iter().filter(|s| !matches!(s.action, Action::Ingest { .. })).map(|s| s.inputs.len()).sum();
    let reads = named(traces::READ);
    assert!(expected_reads > 0);
    assert_eq!(reads.len(), expected_reads, "read spans");
    for span in &reads {
        assert!(step_ids.contains(&span.parent_span_id), "a read span outside a step");
        let table = text(span, "table");
        let (snapshot, rows) = committed[&table];
        assert_eq!(int(span, "snapshot_id"), snapshot, "read of `{table}`");
        assert_eq!(int(span, "rows") as u64, rows, "read of `{table}`");
        assert!(int(span, "bytes") > 0, "read of `{table}`: bytes");
    }

    // Plugin invocations: inside their step, with the plugin's name and sha256.
    let digests: BTreeMap<String, String> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Ingest { plugin, .. } | Action::Wasm { plugin, .. } => {
                Some((s.name.to_string(), plugin.sha256.clone()))
            }
            Action::Sql { .. } => None,
        })
        .collect();
    let plugins = named(traces::PLUGIN);
    let plugin_steps: BTreeSet<String> = plugins.iter().map(|s| text(s, "step")).collect();
    assert_eq!(plugin_steps, digests.keys().cloned().collect(), "steps with plugin spans");
    for span in &plugins {
        let step = text(span, "step");
        assert_eq!(span.parent_span_id, by_step[&step].span_context.span_id(), "plugin span of `{step}`");
        let digest = text(span, "plugin_digest");
        assert_eq!(digest.len(), 64, "a sha256 in hex");
        assert_eq!(digest, digests[&step], "plugin digest in step `{step}`");
        assert!(!text(span, "plugin").is_empty());
        // Streaming calls carry their counters; the output rows are the step's.
        let call = text(span, "call");
        if call == "ingest" || call == "transform" {
            let rows = report.steps.iter().find(|s| s.step == step).unwrap().rows;
            assert_eq!(int(span, "rows_out") as u64, rows, "plugin rows out in `{step}`");
            assert!(int(span, "bytes_out") > 0, "plugin bytes out in `{step}`");
        }
    }
    // Each plugin made ready once, before the first step: a child of the run
    // (no step's span, so no step's duration, includes it), with its digest.
    let compiles = named(traces::COMPILE);
    let compiled: Vec<String> = compiles.iter().map(|s| text(s, "plugin")).collect();
    let mut expected: Vec<String> = report.plugins.iter().map(|p| p.plugin.clone()).collect();
    assert_eq!(compiled.len(), expected.len(), "compile spans: {compiled:?}");
    expected.sort();
    assert_eq!(compiled.iter().cloned().collect::<BTreeSet<_>>(), expected.iter().cloned().collect(), "compile spans");
    assert_eq!(expected, ["csv-ingest", "dedup", "pii-mask", "sql-filter"]);
    let first_step = steps.iter().map(|s| s.start_time).min().unwrap();
    for span in &compiles {
        assert_eq!(span.parent_span_id, run_span.span_context.span_id(), "compile span parent");
        assert!(span.end_time <= first_step, "compiled before the first step");
        assert_eq!(text(span, "plugin_digest").len(), 64);
        assert!(matches!(attr(span, "from_cache"), Some(Value::Bool(false))), "no cache in this test: {span:?}");
    }

    // Both streaming kinds ran: an ingest and a streaming transform.
    let calls: BTreeSet<String> = plugins.iter().map(|s| text(s, "call")).collect();
    for call in ["ingest", "sql", "transform"] {
        assert!(calls.contains(call), "no `{call}` plugin span: {calls:?}");
    }

    // `maintain` (a dry run) on the same tables: a trace of its own, a
    // `maintain` root and one `maintain_table` span per table with its figures.
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let subscriber = tracing_subscriber::registry().with(traces::layer(&provider).with_filter(traces::targets()));
    let info = floe_host::observe::RunInfo {
        run_id: "maintain-traces-test".into(),
        pipeline: plan.pipeline.clone(),
        started_at: std::time::SystemTime::now(),
        partition: None,
        parent: None,
    };
    let maintained = tracing::subscriber::with_default(subscriber, || {
        floe_host::maintain::maintain(&plan, &[], true, &info, &mut Observers(Vec::new()))
    })
    .expect("the demo's tables are maintained");
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("finished spans");
    provider.shutdown().expect("shutdown");
    let named = |name: &str| spans.iter().filter(|s| s.name == name).collect::<Vec<_>>();
    let roots = named(traces::MAINTAIN);
    assert_eq!(roots.len(), 1, "maintain spans");
    assert_eq!((text(roots[0], "run_id"), int(roots[0], "tables")), ("maintain-traces-test".into(), 9));
    let tables = named(traces::MAINTAIN_TABLE);
    assert_eq!(tables.len(), 9, "maintain_table spans");
    for span in &tables {
        assert_eq!(span.parent_span_id, roots[0].span_context.span_id());
        let table = text(span, "table");
        let report = maintained.iter().find(|m| m.table == table).unwrap_or_else(|| panic!("{table}"));
        assert_eq!(int(span, "snapshots") as usize, report.snapshots, "{table}");
        assert_eq!(int(span, "expired") as usize, report.expired.len(), "{table}");
        assert_eq!(int(span, "manifests_after") as usize, report.manifests_after, "{table}");
    }
}

/// A `floe-host init` project in `dir`, with a platform.yaml (embedded-style
/// SQL catalog under `dir/state`) whose `observability` is `observability`.
fn traced_project(dir: &std::path::Path, observability: &str) -> (String, String) {
    let project = dir.join("demo");
    crate::support::floe_host(&["init", project.to_str().unwrap()]).expect_code(0);
    let state = dir.join("state");
    let platform = dir.join("platform.yaml");
    let q = |s: String| serde_json::to_string(&s).unwrap();
    let yaml = format!(
        "catalogs:\n  default:\n    type: sql\n    uri: {uri}\n    warehouse: {warehouse}\n\
         storage:\n  default:\n    type: local\n    root: {warehouse}\n\
         compute:\n  default:\n    type: duckdb\n\
         observability:\n{observability}",
        uri = q(format!("sqlite:{}", state.join("catalog.db").display())),
        warehouse = q(state.join("warehouse").display().to_string()),
    );
    std::fs::write(&platform, yaml).unwrap();
    (project.display().to_string(), platform.display().to_string())
}

fn traced_run(project: &str, platform: &str, state: &std::path::Path, env: &[(&str, &str)]) -> crate::support::Run {
    let args = ["run", project, "--platform", platform, "--state-dir", state.to_str().unwrap()];
    crate::support::floe_host_with_env(&args, env)
}

/// The OpenTelemetry SDK's environment conventions, against a local OTLP/HTTP
/// receiver: traces on by environment alone, off by `OTEL_SDK_DISABLED` or
/// `OTEL_TRACES_EXPORTER=none` whatever platform.yaml says, the service name
/// from `OTEL_SERVICE_NAME`, and a failed step's span carrying its error.
#[test]
fn otel_environment_switches_and_failed_spans_reach_a_local_collector() {
    let receiver = crate::support::HttpReceiver::start();
    let dir = temp_dir();
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let (project, quiet) = traced_project(dir.path(), "  traces: false\n");
    let state = dir.path().join("state");
    let bodies = || -> Vec<Vec<u8>> {
        let requests = receiver.requests();
        for r in &requests {
            assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/traces"));
            assert_eq!(r.content_type.as_deref(), Some("application/x-protobuf"));
        }
        requests.into_iter().map(|r| r.body).collect()
    };
    let contains = |body: &[u8], text: &str| body.windows(text.len()).any(|w| w == text.as_bytes());

    // platform.yaml says no traces; OTEL_TRACES_EXPORTER=otlp says yes.
    let on = [
        ("OTEL_TRACES_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SERVICE_NAME", "floe-nightly"),
        ("FLOE_RUN_ID", "otel-on"),
    ];
    traced_run(&project, &quiet, &state, &on).expect_code(0);
    let sent = bodies();
    assert!(!sent.is_empty(), "no spans exported");
    let all: Vec<u8> = sent.concat();
    for text in ["floe-nightly", "otel-on", "raw_customers", "gold.daily_revenue"] {
        assert!(contains(&all, text), "`{text}` is not in the exported spans");
    }

    // OTEL_SDK_DISABLED wins over OTEL_TRACES_EXPORTER.
    let mut off = on.to_vec();
    off.push(("OTEL_SDK_DISABLED", "true"));
    traced_run(&project, &quiet, &state, &off).expect_code(0);
    assert_eq!(bodies().len(), sent.len(), "spans sent with OTEL_SDK_DISABLED=true");

    // platform.yaml says traces; OTEL_TRACES_EXPORTER=none says no.
    let (_, loud) = traced_project(&dir.path().join("loud"), &format!("  traces: true\n  otlp_endpoint: {endpoint}\n"));
    traced_run(&project, &loud, &state, &[("OTEL_TRACES_EXPORTER", "none")]).expect_code(0);
    assert_eq!(bodies().len(), sent.len(), "spans sent with OTEL_TRACES_EXPORTER=none");

    // A failed step: its span and the run's carry the error as the status
    // message, and an `exception` event with it.
    let model = std::path::Path::new(&project).join("models/stg_orders.sql");
    let sql = std::fs::read_to_string(&model).unwrap();
    std::fs::write(&model, sql.replace("status\n", "no_such_column\n")).unwrap();
    traced_run(&project, &loud, &state, &[("FLOE_RUN_ID", "otel-fail")]).expect_code(2);
    let failed: Vec<u8> = bodies()[sent.len()..].concat();
    assert!(contains(&failed, "otel-fail"), "the failed run's spans were not exported");
    for text in ["no_such_column", "exception", "exception.message"] {
        assert!(contains(&failed, text), "`{text}` is not in the failed run's spans");
    }
}

#[test]
fn an_unreachable_collector_is_warned_about_once_and_the_run_goes_on() {
    let dir = temp_dir();
    let (project, quiet) = traced_project(dir.path(), "  traces: false\n");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = [("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
    let run = traced_run(&project, &quiet, &dir.path().join("state"), &env).expect_code(0);
    assert_eq!(run.stderr.matches("Cannot send traces to the OTLP collector").count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains(&format!("{endpoint}/v1/traces")), "{}", run.stderr);
}
