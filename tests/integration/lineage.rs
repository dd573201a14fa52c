//! OpenLineage: the events of real runs, received over HTTP on 127.0.0.1.
//!
//! The official 2-0-2 JSON schemas are not shipped by any package on the
//! registries this project may use (PyPI, npm, crates.io; the Python client
//! ships only generated classes), so [`check_event`] checks each event against
//! the structure of the 2-0-2 `RunEvent` and of every facet floe-host emits,
//! field by field, with the same required fields and types as those schemas.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Run, example, floe_host_with_env, plugin, temp_dir};

const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";

/// The demo's steps and the tables they write.
const DEMO_STEPS: [(&str, &str); 9] = [
    ("raw_customers", "bronze.raw_customers"),
    ("raw_orders", "bronze.raw_orders"),
    ("stg_customers", "silver.stg_customers"),
    ("stg_orders", "silver.stg_orders"),
    ("customer_totals", "gold.customer_totals"),
    ("daily_revenue", "gold.daily_revenue"),
    ("customer_contacts", "silver.customer_contacts"),
    ("first_orders", "silver.first_orders"),
    ("large_orders", "gold.large_orders"),
];

/// A collector on 127.0.0.1: records every POST body and answers 201.
struct Receiver {
    port: u16,
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(request) = read_request(stream) {
                    shared.lock().unwrap().push(request);
                }
            }
        });
        Receiver { port, requests }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/lineage", self.port)
    }

    fn events(&self) -> Vec<Value> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .map(|(path, body)| {
                assert_eq!(path, "/api/v1/lineage");
                serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
            })
            .collect()
    }
}

/// Reads one HTTP/1.1 POST (request line, headers, Content-Length body) and answers 201.
fn read_request(stream: TcpStream) -> Option<(String, String)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut length = 0;
    let mut json = false;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "content-type" => json = value.trim().starts_with("application/json"),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = reader.into_inner();
    let (status, ok) = if method == "POST" && json { ("201 Created", true) } else { ("400 Bad Request", false) };
    let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    ok.then(|| (path, String::from_utf8_lossy(&body).into_owned()))
}

/// A platform.yaml over `state` (the embedded-style SQL catalog) sending lineage to `endpoint`.
fn platform(dir: &Path, state: &Path, endpoint: &str) -> PathBuf {
    let q = |s: String| serde_json::to_string(&s).unwrap();
    let yaml = format!(
        "catalogs:\n  default:\n    type: sql\n    uri: {uri}\n    warehouse: {warehouse}\n\
         storage:\n  default:\n    type: local\n    root: {warehouse}\n\
         compute:\n  default:\n    type: duckdb\n\
         observability:\n  lineage: true\n  lineage_endpoint: {endpoint}\n",
        uri = q(format!("sqlite:{}", state.join("catalog.db").display())),
        warehouse = q(state.join("warehouse").display().to_string()),
        endpoint = q(endpoint.to_string()),
    );
    let file = dir.join("platform.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

/// A two-step project: csv-ingest into bronze.raw_things, then SQL `sql` into silver.things.
fn small_project(dir: &Path, sql: &str) -> PathBuf {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    std::fs::write(dir.join("things.csv"), "id,label\n1,a\n2,b\n3,c\n").unwrap();
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::write(dir.join("models/things.sql"), sql).unwrap();
    let yaml = format!(
        "name: lineage-small\nversion: \"1.0.0\"\nstorage: default\ncatalog: default\ncompute: default\n\
         plugins:\n  csv-ingest:\n    path: {path}\n\
         transforms:\n  - name: raw_things\n    layer: bronze\n    kind: ingest\n    plugin: csv-ingest\n    source: things.csv\n\
         \x20 - name: things\n    layer: silver\n    kind: sql\n    sql: models/things.sql\n",
        path = q(plugin("csv_ingest.wasm").to_str().unwrap()),
    );
    std::fs::write(dir.join("floe.yaml"), yaml).unwrap();
    // Share compiled components between the runs of this module.
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lineage-compile-cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::os::unix::fs::symlink(&cache, dir.join("state/component-cache")).unwrap();
    dir.to_path_buf()
}

const GOOD_SQL: &str = "SELECT CAST(id AS BIGINT) AS id, label FROM bronze.raw_things\n";
const BAD_SQL: &str = "SELECT CAST(label AS BIGINT) AS id FROM bronze.raw_things\n";

fn run(project: &Path, state: &Path, platform: &Path, env: &[(&str, &str)]) -> (Run, Duration) {
    let started = Instant::now();
    let run = floe_host_with_env(
        &[
            "run",
            project.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--platform",
            platform.to_str().unwrap(),
        ],
        env,
    );
    (run, started.elapsed())
}

/// Rows per table from the run summary table on stdout.
fn summary_rows(stdout: &str) -> BTreeMap<String, u64> {
    stdout
        .lines()
        .skip(2)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            Some((cols.get(1)?.to_string(), cols.get(2)?.parse().ok()?))
        })
        .collect()
}

// ---------- structural validation (the 2-0-2 RunEvent and the facets' schemas) ----------

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// JSON Schema `format: date-time` (RFC 3339) for what floe-host writes, with a zone.
fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
}

fn is_uri(s: &str) -> bool {
    s.split_once(':').is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme.chars().next().unwrap().is_ascii_alphabetic()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !rest.is_empty()
            && !s.contains(char::is_whitespace)
    })
}

struct Checker<'a> {
    errors: Vec<String>,
    event: &'a str,
}

impl Checker<'_> {
    fn fail(&mut self, at: &str, what: impl std::fmt::Display) {
        self.errors.push(format!("{} at {at}: {what}", self.event));
    }

    fn string<'v>(&mut self, v: &'v Value, at: &str, key: &str) -> Option<&'v str> {
        match v.get(key) {
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.fail(&format!("{at}.{key}"), format!("not a string: {other}"));
                None
            }
            None => {
                self.fail(at, format!("missing required `{key}`"));
                None
            }
        }
    }

    fn object<'v>(&mut self, v: &'v Value, at: &str) -> Option<&'v serde_json::Map<String, Value>> {
        let object = v.as_object();
        if object.is_none() {
            self.fail(at, format!("not an object: {v}"));
        }
        object
    }

    fn integer(&mut self, v: &Value, at: &str, key: &str, required: bool) {
        match v.get(key) {
            Some(n) if n.is_i64() || n.is_u64() => {}
            Some(other) => self.fail(&format!("{at}.{key}"), format!("not an integer: {other}")),
            None if required => self.fail(at, format!("missing required `{key}`")),
            None => {}
        }
    }

    /// BaseFacet: `_producer` (uri) and `_schemaURL` (uri) required; the URL
    /// must name the facet's own schema.
    fn facet(&mut self, v: &Value, at: &str, schema: &str) {
        if self.object(v, at).is_none() {
            return;
        }
        if let Some(p) = self.string(v, at, "_producer") {
            if !is_uri(p) {
                self.fail(&format!("{at}._producer"), "not a URI");
            }
        }
        if let Some(url) = self.string(v, at, "_schemaURL") {
            let expected = format!("/{schema}.json#/$defs/{schema}");
            if !is_uri(url) || !url.starts_with("https://openlineage.io/spec/facets/") || !url.ends_with(&expected) {
                self.fail(&format!("{at}._schemaURL"), format!("`{url}` is not the {schema} schema"));
            }
        }
        if let Some(deleted) = v.get("_deleted") {
            if !deleted.is_boolean() {
                self.fail(&format!("{at}._deleted"), "not a boolean");
            }
        }
    }

    fn run_facet(&mut self, name: &str, v: &Value, at: &str) {
        match name {
            "parent" => {
                self.facet(v, at, "ParentRunFacet");
                match v.get("run") {
                    Some(run) => {
                        if let Some(id) = self.string(run, &format!("{at}.run"), "runId") {
                            if !is_uuid(id) {
                                self.fail(&format!("{at}.run.runId"), "not a UUID");
                            }
                        }
                    }
                    None => self.fail(at, "missing required `run`"),
                }
                match v.get("job") {
                    Some(job) => {
                        self.string(job, &format!("{at}.job"), "namespace");
                        self.string(job, &format!("{at}.job"), "name");
                    }
                    None => self.fail(at, "missing required `job`"),
                }
            }
            "processing_engine" => {
                self.facet(v, at, "ProcessingEngineRunFacet");
                self.string(v, at, "version");
                if v.get("name").is_some_and(|n| !n.is_string()) {
                    self.fail(at, "`name` is not a string");
                }
            }
            "errorMessage" => {
                self.facet(v, at, "ErrorMessageRunFacet");
                self.string(v, at, "message");
                self.string(v, at, "programmingLanguage");
            }
            other => self.fail(at, format!("unexpected run facet `{other}`")),
        }
    }

    fn job_facet(&mut self, name: &str, v: &Value, at: &str) {
        match name {
            "jobType" => {
                self.facet(v, at, "JobTypeJobFacet");
                self.string(v, at, "processingType");
                self.string(v, at, "integration");
            }
            "sql" => {
                self.facet(v, at, "SQLJobFacet");
                self.string(v, at, "query");
            }
            other => self.fail(at, format!("unexpected job facet `{other}`")),
        }
    }

    fn dataset(&mut self, v: &Value, at: &str, output: bool) {
        if self.object(v, at).is_none() {
            return;
        }
        self.string(v, at, "namespace");
        self.string(v, at, "name");
        if let Some(facets) = v.get("facets") {
            for (name, facet) in self.object(facets, &format!("{at}.facets")).into_iter().flatten() {
                let at = format!("{at}.facets.{name}");
                match name.as_str() {
                    "dataSource" => {
                        self.facet(facet, &at, "DatasourceDatasetFacet");
                        self.string(facet, &at, "name");
                        if let Some(uri) = self.string(facet, &at, "uri") {
                            if !is_uri(uri) {
                                self.fail(&format!("{at}.uri"), format!("`{uri}` is not a URI"));
                            }
                        }
                    }
                    "schema" => {
                        self.facet(facet, &at, "SchemaDatasetFacet");
                        match facet.get("fields").and_then(Value::as_array) {
                            Some(fields) => {
                                for (i, field) in fields.iter().enumerate() {
                                    let at = format!("{at}.fields[{i}]");
                                    self.string(field, &at, "name");
                                    if field.get("type").is_some_and(|t| !t.is_string()) {
                                        self.fail(&at, "`type` is not a string");
                                    }
                                }
                            }
                            None => self.fail(&at, "`fields` is not an array"),
                        }
                    }
                    other => self.fail(&at, format!("unexpected dataset facet `{other}`")),
                }
            }
        }
        if let Some(facets) = v.get("outputFacets") {
            if !output {
                self.fail(at, "outputFacets on an input");
            }
            for (name, facet) in self.object(facets, &format!("{at}.outputFacets")).into_iter().flatten() {
                let at = format!("{at}.outputFacets.{name}");
                match name.as_str() {
                    "outputStatistics" => {
                        self.facet(facet, &at, "OutputStatisticsOutputDatasetFacet");
                        self.integer(facet, &at, "rowCount", false);
                        self.integer(facet, &at, "size", false);
                        self.integer(facet, &at, "fileCount", false);
                    }
                    other => self.fail(&at, format!("unexpected output facet `{other}`")),
                }
            }
        }
        if v.get("inputFacets").is_some() && output {
            self.fail(at, "inputFacets on an output");
        }
    }
}

/// Every way `event` departs from the 2-0-2 RunEvent (required fields, types,
/// formats, the eventType enum) and from the schemas of its facets.
fn check_event(event: &Value) -> Vec<String> {
    let label = format!(
        "{} {}",
        event.get("eventType").and_then(Value::as_str).unwrap_or("?"),
        event.pointer("/job/name").and_then(Value::as_str).unwrap_or("?")
    );
    let mut c = Checker { errors: Vec::new(), event: &label };
    if c.object(event, "$").is_none() {
        return c.errors;
    }
    if let Some(kind) = c.string(event, "$", "eventType") {
        if !["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"].contains(&kind) {
            c.fail("$.eventType", format!("`{kind}` is not in the enum"));
        }
    }
    if let Some(time) = c.string(event, "$", "eventTime") {
        if !is_date_time(time) {
            c.fail("$.eventTime", format!("`{time}` is not a date-time"));
        }
    }
    if let Some(producer) = c.string(event, "$", "producer") {
        if !is_uri(producer) || !producer.starts_with("https://") {
            c.fail("$.producer", format!("`{producer}` is not a URL"));
        }
    }
    if let Some(url) = c.string(event, "$", "schemaURL") {
        if url != SCHEMA_URL {
            c.fail("$.schemaURL", format!("`{url}`"));
        }
    }
    match event.get("run") {
        Some(run) => {
            if let Some(id) = c.string(run, "$.run", "runId") {
                if !is_uuid(id) {
                    c.fail("$.run.runId", format!("`{id}` is not a UUID"));
                }
            }
            if let Some(facets) = run.get("facets") {
                for (name, facet) in c.object(facets, "$.run.facets").into_iter().flatten() {
                    c.run_facet(name, facet, &format!("$.run.facets.{name}"));
                }
            }
        }
        None => c.fail("$", "missing required `run`"),
    }
    match event.get("job") {
        Some(job) => {
            c.string(job, "$.job", "namespace");
            c.string(job, "$.job", "name");
            if let Some(facets) = job.get("facets") {
                for (name, facet) in c.object(facets, "$.job.facets").into_iter().flatten() {
                    c.job_facet(name, facet, &format!("$.job.facets.{name}"));
                }
            }
        }
        None => c.fail("$", "missing required `job`"),
    }
    for (key, output) in [("inputs", false), ("outputs", true)] {
        if let Some(list) = event.get(key) {
            match list.as_array() {
                Some(list) => {
                    for (i, dataset) in list.iter().enumerate() {
                        c.dataset(dataset, &format!("$.{key}[{i}]"), output);
                    }
                }
                None => c.fail(&format!("$.{key}"), "not an array"),
            }
        }
    }
    c.errors
}

fn assert_all_valid(events: &[Value]) {
    let errors: Vec<String> = events.iter().flat_map(check_event).collect();
    assert!(errors.is_empty(), "invalid OpenLineage events:\n{}", errors.join("\n"));
}

/// The events of job `name` with type `kind`.
fn of<'e>(events: &'e [Value], name: &str, kind: &str) -> Vec<&'e Value> {
    events.iter().filter(|e| e["job"]["name"] == name && e["eventType"] == kind).collect()
}

#[test]
fn lineage_demo_run_emits_valid_start_and_complete_per_step() {
    let receiver = Receiver::start();
    let dir = temp_dir();
    let state = dir.path().join("state");
    let platform = platform(dir.path(), &state, &receiver.url());
    let file = dir.path().join("events.jsonl");
    let (run, _) =
        run(&example("customer-analytics"), &state, &platform, &[("FLOE_LINEAGE_FILE", file.to_str().unwrap())]);
    let run = run.expect_code(0);
    let rows = summary_rows(&run.stdout);
    assert_eq!(rows.len(), 9, "{}", run.stdout);

    let events = receiver.events();
    // 9 × (START, COMPLETE) + the pipeline run's START and COMPLETE, all delivered before exit.
    assert_eq!(events.len(), 20, "{events:#?}\n--- stderr\n{}", run.stderr);
    assert_all_valid(&events);
    // The debug file holds the same events, in order.
    let lines: Vec<Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines, events);

    let pipeline_start = of(&events, "customer-analytics", "START");
    let pipeline_complete = of(&events, "customer-analytics", "COMPLETE");
    assert_eq!((pipeline_start.len(), pipeline_complete.len()), (1, 1));
    let parent_run = pipeline_start[0]["run"]["runId"].as_str().unwrap();
    assert_eq!(pipeline_complete[0]["run"]["runId"], parent_run);
    assert_eq!(events.first().unwrap()["eventType"], "START");
    assert_eq!(events.last().unwrap()["job"]["name"], "customer-analytics");

    let warehouse = format!("file://{}", state.join("warehouse").display());
    for (step, table) in DEMO_STEPS {
        let job = format!("customer-analytics.{step}");
        let starts = of(&events, &job, "START");
        let completes = of(&events, &job, "COMPLETE");
        assert_eq!((starts.len(), completes.len()), (1, 1), "{job}: {events:#?}");
        let (start, complete) = (starts[0], completes[0]);
        assert_eq!(start["job"]["namespace"], "customer-analytics");
        assert_eq!(start["run"]["runId"], complete["run"]["runId"], "{job}: one run per step");
        assert_ne!(start["run"]["runId"], parent_run);
        assert_eq!(complete["run"]["facets"]["parent"]["run"]["runId"], parent_run, "{job}");
        assert_eq!(complete["run"]["facets"]["parent"]["job"]["name"], "customer-analytics");
        assert!(start["eventTime"].as_str() <= complete["eventTime"].as_str());

        let outputs = complete["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), 1, "{job}");
        let output = &outputs[0];
        assert_eq!(output["namespace"], warehouse.as_str(), "{job}");
        assert_eq!(output["name"], table, "{job}");
        let stats = &output["outputFacets"]["outputStatistics"];
        assert_eq!(stats["rowCount"].as_u64(), Some(rows[table]), "{job}: rowCount vs the run summary");
        assert!(stats["size"].as_u64().unwrap() > 0, "{job}");
        assert!(stats["fileCount"].as_u64().unwrap() >= 1, "{job}");
        let fields = output["facets"]["schema"]["fields"].as_array().unwrap();
        assert!(!fields.is_empty(), "{job}");
        assert_eq!(start["outputs"][0]["name"], table, "{job}: START names the output too");
    }

    // Inputs: source files for ingest steps, tables (named as their producers name them) for the rest.
    let inputs = |step: &str| -> Vec<(String, String)> {
        of(&events, &format!("customer-analytics.{step}"), "COMPLETE")[0]["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["namespace"].as_str().unwrap().to_string(), d["name"].as_str().unwrap().to_string()))
            .collect()
    };
    let csv = std::path::absolute(example("customer-analytics").join("data/customers.csv")).unwrap();
    assert_eq!(inputs("raw_customers"), [("file".to_string(), csv.display().to_string())]);
    assert_eq!(inputs("stg_customers"), [(warehouse.clone(), "bronze.raw_customers".to_string())]);
    assert_eq!(inputs("stg_orders"), [(warehouse.clone(), "bronze.raw_orders".to_string())]);
    let mut totals = inputs("customer_totals");
    totals.sort();
    assert!(totals.contains(&(warehouse.clone(), "silver.stg_orders".to_string())), "{totals:?}");
    assert_eq!(inputs("first_orders"), [(warehouse.clone(), "bronze.raw_orders".to_string())]);
    // SQL steps carry their query.
    let stg = of(&events, "customer-analytics.stg_customers", "COMPLETE")[0];
    assert!(stg["job"]["facets"]["sql"]["query"].as_str().unwrap().contains("bronze.raw_customers"));
}

#[test]
fn lineage_failing_step_emits_fail_with_error_message() {
    let receiver = Receiver::start();
    let dir = temp_dir();
    let project = small_project(dir.path(), BAD_SQL);
    let state = dir.path().join("state");
    let platform = platform(dir.path(), &state, &receiver.url());
    let (run, _) = run(&project, &state, &platform, &[]);
    run.expect_code(1);

    let events = receiver.events();
    assert_all_valid(&events);
    assert_eq!(of(&events, "lineage-small.raw_things", "COMPLETE").len(), 1, "{events:#?}");
    assert_eq!(of(&events, "lineage-small.things", "START").len(), 1, "{events:#?}");
    assert!(of(&events, "lineage-small.things", "COMPLETE").is_empty());
    let fails = of(&events, "lineage-small.things", "FAIL");
    assert_eq!(fails.len(), 1, "{events:#?}");
    let message = fails[0]["run"]["facets"]["errorMessage"]["message"].as_str().unwrap();
    assert!(message.contains("things"), "{message}");
    assert_eq!(fails[0]["run"]["facets"]["errorMessage"]["programmingLanguage"], "Rust");
    assert_eq!(fails[0]["outputs"][0]["name"], "silver.things");
    // The pipeline run fails too, with the same error.
    let pipeline = of(&events, "lineage-small", "FAIL");
    assert_eq!(pipeline.len(), 1, "{events:#?}");
    assert_eq!(pipeline[0]["run"]["facets"]["errorMessage"]["message"], message);
}

/// Runs the small project without lineage (the baseline, which also warms the
/// compile cache), then with lineage sent to `endpoint`.
fn dead_endpoint_run(endpoint: &str) -> (Run, Duration, Duration) {
    let dir = temp_dir();
    let project = small_project(dir.path(), GOOD_SQL);
    let state = dir.path().join("state");
    // Baseline without lineage (also warms the compile cache).
    let quiet = {
        let p = dir.path().join("quiet.yaml");
        let text = std::fs::read_to_string(platform(dir.path(), &state, endpoint)).unwrap();
        std::fs::write(&p, text.replace("lineage: true", "lineage: false")).unwrap();
        p
    };
    let (baseline, baseline_time) = run(&project, &state, &quiet, &[]);
    baseline.expect_code(0);
    let platform = platform(dir.path(), &state, endpoint);
    let (run, time) = run(&project, &state, &platform, &[]);
    (run, time, baseline_time)
}

#[test]
fn lineage_refused_endpoint_does_not_fail_the_run() {
    // A port with nothing listening.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (run, time, baseline) = dead_endpoint_run(&format!("http://127.0.0.1:{port}/api/v1/lineage"));
    let run = run.expect_code(0);
    assert!(run.stderr.contains("delivered 0 of 6 events"), "{}", run.stderr);
    // Two events fail every attempt, then the endpoint is given up on.
    assert_eq!(run.stderr.matches("not delivered").count(), 2, "{}", run.stderr);
    assert!(run.stderr.contains("after 3 attempt(s)"), "{}", run.stderr);
    assert!(run.stderr.contains("gave up on the endpoint"), "{}", run.stderr);
    assert!(time < baseline + Duration::from_secs(30), "{time:?} vs {baseline:?} without lineage");
}

#[test]
fn lineage_silent_endpoint_does_not_stall_the_run() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let (run, time, baseline) = dead_endpoint_run(&format!("http://127.0.0.1:{port}/api/v1/lineage"));
    let run = run.expect_code(0);
    // The flush deadline (5 s) ends the wait, whatever is left in the queue.
    assert!(run.stderr.contains("delivered 0 of 6 events"), "{}", run.stderr);
    assert!(run.stderr.contains("unsent at the 5s flush deadline"), "{}", run.stderr);
    assert!(!run.stderr.contains(" 0 unsent"), "events were still in flight: {}", run.stderr);
    assert!(time < baseline + Duration::from_secs(30), "{time:?} vs {baseline:?} without lineage");
}

#[test]
fn lineage_https_endpoint_is_reported_and_the_run_goes_on() {
    let dir = temp_dir();
    let project = small_project(dir.path(), GOOD_SQL);
    let state = dir.path().join("state");
    let platform = platform(dir.path(), &state, "https://127.0.0.1:9/api/v1/lineage");
    let (run, _) = run(&project, &state, &platform, &[]);
    let run = run.expect_code(0);
    assert!(run.stderr.contains("https:// lineage endpoints are not supported yet"), "{}", run.stderr);
}

#[test]
fn lineage_checker_rejects_broken_events() {
    let facet = |schema: &str| {
        serde_json::json!({
            "_producer": "https://example.com/p",
            "_schemaURL": format!("https://openlineage.io/spec/facets/1-0-0/{schema}.json#/$defs/{schema}"),
        })
    };
    let mut stats = facet("OutputStatisticsOutputDatasetFacet");
    stats["rowCount"] = 3.into();
    let valid = serde_json::json!({
        "eventType": "COMPLETE",
        "eventTime": "2026-11-26T15:42:34.123Z",
        "producer": "https://example.com/p",
        "schemaURL": SCHEMA_URL,
        "run": { "runId": "a1b89c32-efcb-4810-a5af-102eb31aed7d", "facets": {} },
        "job": { "namespace": "n", "name": "n.s" },
        "inputs": [],
        "outputs": [{ "namespace": "file", "name": "/x", "outputFacets": { "outputStatistics": stats } }],
    });
    assert_eq!(check_event(&valid), Vec::<String>::new());
    let broken: [(&str, Value); 6] = [
        ("/eventType", "DONE".into()),
        ("/eventTime", "yesterday".into()),
        ("/run/runId", "run-1".into()),
        ("/schemaURL", "https://openlineage.io/spec/1-0-0/OpenLineage.json".into()),
        ("/outputs/0/outputFacets/outputStatistics/rowCount", "3".into()),
        ("/outputs/0/outputFacets/outputStatistics/_producer", Value::Null),
    ];
    for (pointer, value) in broken {
        let mut event = valid.clone();
        *event.pointer_mut(pointer).unwrap() = value;
        assert!(!check_event(&event).is_empty(), "{pointer} accepted");
    }
    let mut event = valid.clone();
    event.as_object_mut().unwrap().remove("job");
    assert!(!check_event(&event).is_empty(), "missing job accepted");
}
