//! The deployment files (Dockerfile, deploy/kubernetes/, and the Helm chart
//! in deploy/helm/floe-host as `helm template` renders it) agree with the
//! host: exit codes in podFailurePolicy, secret_refs mounted where they
//! resolve, the pipeline's files mounted where floe.yaml refers to them,
//! non-root, limits, and DuckDB's and the plugins' memory inside the pod's
//! limit. Every rendered object is valid for Kubernetes (strict schemas).

use std::collections::BTreeSet;
use std::path::Path;

use floe_host::config::{FloeFile, PlatformFile};
use serde::Deserialize;
use serde_yaml::Value;

use crate::support::{python_json, repo};

/// Every document of every manifest in deploy/kubernetes, each valid
/// against the Kubernetes 1.30 schemas in strict mode.
fn manifests() -> Vec<Value> {
    let dir = repo().join("deploy/kubernetes");
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    let mut args = vec!["--files".to_string(), "1.30".to_string()];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let checked = python_json("helm_check.py", &args);
    let violations = checked["violations"].as_array().unwrap();
    assert!(violations.is_empty(), "deploy/kubernetes is not valid Kubernetes: {violations:#?}");
    let mut docs = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(value.get("apiVersion").is_some() && value.get("kind").is_some(), "{}", path.display());
            docs.push(value);
        }
    }
    docs
}

/// The chart rendered with `values` (JSON): its objects, each valid against
/// the Kubernetes 1.30 schemas in strict mode; or the chart's refusal.
fn helm(values: serde_json::Value) -> Result<Vec<Value>, String> {
    let out = python_json("helm_check.py", &[&values.to_string(), "1.30"]);
    if let Some(error) = out.get("error") {
        return Err(error.as_str().unwrap().to_string());
    }
    let violations = out["violations"].as_array().unwrap();
    assert!(violations.is_empty(), "rendered objects are not valid Kubernetes: {violations:#?}");
    Ok(serde_yaml::from_str(&out["objects"].to_string()).unwrap())
}

/// Both ways to deploy: the plain manifests and the chart with its defaults.
fn deployments() -> [(&'static str, Vec<Value>); 2] {
    [("deploy/kubernetes", manifests()), ("the Helm chart", helm(serde_json::json!({})).expect("the chart renders"))]
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} `{name}` in deploy/kubernetes"))
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value:?}"))
}

fn seq(value: &Value) -> &[Value] {
    value.as_sequence().map(Vec::as_slice).unwrap_or(&[])
}

/// The Job (or a CronJob's job template), its pod spec and its one container.
fn job(docs: &[Value]) -> (&Value, &Value, &Value) {
    let job = match docs.iter().find(|d| d["kind"] == "Job") {
        Some(job) => job,
        None => &docs.iter().find(|d| d["kind"] == "CronJob").expect("a Job or CronJob")["spec"]["jobTemplate"],
    };
    let pod = &job["spec"]["template"]["spec"];
    let containers = seq(&pod["containers"]);
    assert_eq!(containers.len(), 1);
    (job, pod, &containers[0])
}

fn volume<'a>(pod: &'a Value, name: &str) -> &'a Value {
    seq(&pod["volumes"]).iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no volume `{name}`"))
}

/// Files the container sees from `kind` volumes ("secret" or "configMap", or a
/// projected volume of those): (absolute path, object name, key).
fn mounted_files(pod: &Value, container: &Value, kind: &str) -> Vec<(String, String, String)> {
    let mut files = Vec::new();
    for mount in seq(&container["volumeMounts"]) {
        let mount_path = str_of(&mount["mountPath"]).trim_end_matches('/');
        let volume = volume(pod, str_of(&mount["name"]));
        let sources: Vec<&Value> = if volume.get(kind).is_some() {
            vec![&volume[kind]]
        } else {
            seq(&volume["projected"]["sources"]).iter().filter_map(|s| s.get(kind)).collect()
        };
        for source in sources {
            let object = source.get("secretName").or_else(|| source.get("name")).map(str_of).unwrap_or_default();
            for item in seq(&source["items"]) {
                let (key, path) = (str_of(&item["key"]), str_of(&item["path"]));
                match mount.get("subPath").map(str_of) {
                    Some(sub) if sub == path => files.push((mount_path.to_string(), object.into(), key.into())),
                    Some(_) => {}
                    None => files.push((format!("{mount_path}/{path}"), object.into(), key.into())),
                }
            }
        }
    }
    files
}

fn env<'a>(container: &'a Value, name: &str) -> &'a str {
    let var = seq(&container["env"]).iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("no env {name}"));
    str_of(&var["value"])
}

#[test]
fn pod_failure_policy_fails_fast_on_2_3_and_4_and_retries_1() {
    for (_, docs) in deployments() {
        pod_failure_policy(&docs);
    }
    // The CronJob's jobs too.
    pod_failure_policy(&helm(serde_json::json!({"schedule": "0 3 * * *"})).unwrap());
}

fn pod_failure_policy(docs: &[Value]) {
    let (job, pod, container) = job(docs);
    assert_eq!(pod["restartPolicy"], "Never", "podFailurePolicy needs restartPolicy: Never");
    assert!(job["spec"]["backoffLimit"].as_u64().is_some_and(|n| n >= 1), "backoffLimit");
    let rules = seq(&job["spec"]["podFailurePolicy"]["rules"]);
    let codes = |action: &str| -> BTreeSet<i64> {
        rules
            .iter()
            .filter(|r| r["action"] == action && r["onExitCodes"]["operator"] == "In")
            .flat_map(|r| seq(&r["onExitCodes"]["values"]).iter().map(|v| v.as_i64().unwrap()))
            .collect()
    };
    let fail = codes("FailJob");
    assert!([2, 3, 4].iter().all(|code| fail.contains(code)), "FailJob on exit 2, 3 and 4: {fail:?}");
    assert!(!fail.contains(&1) && !fail.contains(&143), "exit 1 and 143 are retryable: {fail:?}");
    assert!(codes("Ignore").is_empty(), "no exit code may retry without counting (it could loop forever)");
    for rule in rules.iter().filter(|r| r.get("onExitCodes").is_some()) {
        assert_eq!(rule["onExitCodes"]["containerName"], container["name"], "the rule names the container");
    }
    assert!(
        rules
            .iter()
            .any(|r| r["action"] == "Ignore"
                && seq(&r["onPodConditions"]).iter().any(|c| c["type"] == "DisruptionTarget")),
        "a node drain or preemption (SIGTERM, exit 143) retries without using up backoffLimit"
    );
    assert!(
        pod["terminationGracePeriodSeconds"].as_u64().is_some_and(|s| s > 30),
        "time to reach a safe point after SIGTERM"
    );
}

#[test]
fn the_container_runs_floe_host_run_as_non_root_with_limits() {
    for (_, docs) in deployments() {
        non_root_with_limits(&docs);
    }
}

fn non_root_with_limits(docs: &[Value]) {
    let (_, pod, container) = job(docs);
    let command: Vec<&str> = seq(&container["command"]).iter().chain(seq(&container["args"])).map(str_of).collect();
    assert!(command[0].ends_with("floe-host") && command[1] == "run", "{command:?}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(pod["securityContext"]["runAsUser"].as_u64().is_some_and(|u| u != 0));
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    for resource in ["cpu", "memory"] {
        assert!(container["resources"]["limits"].get(resource).is_some(), "limits.{resource}");
        assert!(container["resources"]["requests"].get(resource).is_some(), "requests.{resource}");
    }
    // The writable places of a read-only root: /tmp (DuckDB spills) and the state dir.
    let empty_dirs: Vec<&str> = seq(&container["volumeMounts"])
        .iter()
        .filter(|m| volume(pod, str_of(&m["name"])).get("emptyDir").is_some())
        .map(|m| str_of(&m["mountPath"]))
        .collect();
    assert!(empty_dirs.contains(&"/tmp"), "{empty_dirs:?}");
    assert!(empty_dirs.contains(&env(container, "FLOE_STATE_DIR")), "FLOE_STATE_DIR on an emptyDir: {empty_dirs:?}");
}

#[test]
fn every_secret_ref_of_the_platform_file_is_mounted_where_it_resolves() {
    for (name, docs) in deployments() {
        let platform = secret_refs_are_mounted(&docs);
        if name == "deploy/kubernetes" {
            let example = std::fs::read_to_string(repo().join("examples/platforms/kubernetes/platform.yaml")).unwrap();
            assert_eq!(
                serde_yaml::from_str::<Value>(&platform).unwrap(),
                serde_yaml::from_str::<Value>(&example).unwrap(),
                "the ConfigMap carries examples/platforms/kubernetes/platform.yaml"
            );
        }
    }
}

/// Checks the secret refs of the platform file the Job mounts; returns that file.
fn secret_refs_are_mounted(docs: &[Value]) -> String {
    let (_, pod, container) = job(docs);
    // FLOE_PLATFORM_FILE points at the ConfigMap's platform.yaml.
    let platform_file = env(container, "FLOE_PLATFORM_FILE");
    let configs = mounted_files(pod, container, "configMap");
    let (_, configmap, key) = configs
        .iter()
        .find(|(path, _, _)| path == platform_file)
        .unwrap_or_else(|| panic!("FLOE_PLATFORM_FILE={platform_file} is not a mounted ConfigMap file: {configs:?}"));
    let text = str_of(&find(docs, "ConfigMap", configmap)["data"][key.as_str()]);
    let platform: PlatformFile = serde_yaml::from_str(text).expect("the ConfigMap holds a valid platform.yaml");

    let refs = platform.secret_refs();
    assert!(refs.len() >= 3, "{refs:?}");
    let secrets = mounted_files(pod, container, "secret");
    for (key_path, reference) in refs {
        // The default secrets dir, since the Job does not set FLOE_SECRETS_DIR.
        let file = reference.file(Path::new(floe_host::config::DEFAULT_SECRETS_DIR)).display().to_string();
        let found = secrets.iter().find(|(path, _, _)| *path == file);
        let (_, secret, _) = found.unwrap_or_else(|| {
            panic!("{key_path} ({}) resolves from {file}, which no Secret mounts: {secrets:?}", reference.secret_ref)
        });
        assert_eq!(secret, reference.secret_ref.split('/').next().unwrap(), "the Secret is named like the ref");
    }
    text.to_string()
}

/// MiB in a Kubernetes quantity (`8Gi`, `8192Mi`) or a floe size (`4GiB`, `4096MiB`).
fn mebibytes(quantity: &str) -> u64 {
    let floe = if quantity.ends_with('i') { format!("{quantity}B") } else { quantity.to_string() };
    let bytes = floe_host::config::parse_bytes(&floe).unwrap_or_else(|e| panic!("{quantity}: {e}"));
    bytes >> 20
}

/// DuckDB's memory_limit, one plugin's memory_limit and 1 GiB for the host
/// fit inside the container's memory limit, in both deployments; the chart
/// sets them from one budget and refuses one that does not fit.
#[test]
fn duckdb_and_plugin_memory_are_budgeted_inside_the_pod_limit() {
    for (name, docs) in deployments() {
        let (_, pod, container) = job(&docs);
        let platform_file = env(container, "FLOE_PLATFORM_FILE");
        let configs = mounted_files(pod, container, "configMap");
        let (_, configmap, key) = configs.iter().find(|(path, _, _)| path == platform_file).unwrap();
        let platform: Value =
            serde_yaml::from_str(str_of(&find(&docs, "ConfigMap", configmap)["data"][key.as_str()])).unwrap();
        let duckdb = platform["compute"]["default"]["properties"]["memory_limit"].as_str().unwrap_or_else(|| {
            panic!("{name}: set DuckDB's memory_limit: its default (67% of the limit) leaves no room for plugins")
        });
        let plugins = str_of(&platform["plugins"]["memory_limit"]);
        let limit = str_of(&container["resources"]["limits"]["memory"]);
        let need = mebibytes(duckdb) + mebibytes(plugins) + 1024;
        assert!(need <= mebibytes(limit), "{name}: DuckDB {duckdb} + plugins {plugins} + 1GiB host > limit {limit}");
    }
    let over = serde_json::json!({"resources": {"memoryMiB": 4096}});
    let error = helm(over).expect_err("a budget over the limit is refused");
    assert!(error.contains("= 7168 MiB, more than the pod's memoryMiB (4096)"), "{error}");
    // A bigger pod moves DuckDB's share with it.
    let docs = helm(serde_json::json!({"resources": {"memoryMiB": 16384, "duckdbMemoryMiB": 12288}})).unwrap();
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    assert!(str_of(&config["data"]["platform.yaml"]).contains("memory_limit: 12288MiB"));
}

#[test]
fn the_pipeline_files_are_mounted_where_floe_yaml_refers_to_them() {
    let docs = manifests();
    let (_, pod, container) = job(&docs);
    let project = str_of(&seq(&container["args"])[1]);
    let files = mounted_files(pod, container, "configMap");
    let has = |path: &str| files.iter().any(|(p, _, _)| p == path);
    let floe_path = format!("{project}/floe.yaml");
    let (_, configmap, key) = files.iter().find(|(p, _, _)| *p == floe_path).expect("floe.yaml is mounted");
    let floe: FloeFile = serde_yaml::from_str(str_of(&find(&docs, "ConfigMap", configmap)["data"][key.as_str()]))
        .expect("valid floe.yaml");
    for transform in &floe.transforms {
        for file in [&transform.sql, &transform.source].into_iter().flatten() {
            let path = format!("{project}/{}", file.display());
            assert!(has(&path), "step `{}` needs {path}, which is not mounted", transform.name);
        }
    }
    for (name, plugin) in &floe.plugins {
        let path = plugin.path.display().to_string();
        let file = path.strip_prefix("/usr/local/share/floe-host/plugins/").unwrap_or_else(|| panic!("{name}: {path}"));
        let crate_dir = file.trim_end_matches(".wasm").replace('_', "-");
        assert!(repo().join("plugins").join(&crate_dir).join("Cargo.toml").is_file(), "{name}: the image ships {file}");
    }
}

#[test]
fn the_dockerfile_ships_the_tested_duckdb_and_runs_as_non_root() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).expect("FROM");
    let runtime = &lines[last_from..];
    let user = runtime.iter().rev().find_map(|l| l.strip_prefix("USER ")).expect("USER in the runtime stage").trim();
    let uid = user.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "USER {user}");
    let docs = manifests();
    let (_, pod, _) = job(&docs);
    assert_eq!(
        pod["securityContext"]["runAsUser"].as_u64().map(|u| u.to_string()).as_deref(),
        Some(uid),
        "USER and runAsUser agree"
    );
    assert!(uid.parse::<u32>().is_ok(), "a numeric USER, so runAsNonRoot can verify it");
    assert!(runtime.iter().any(|l| l.starts_with("COPY") && l.ends_with("/usr/local/share/floe-host/plugins/")));
    assert!(runtime.iter().any(|l| l.starts_with("COPY") && l.ends_with("/usr/local/bin/floe-host")));
    assert!(runtime.iter().any(|l| l.starts_with("ENTRYPOINT") && l.contains("/usr/local/bin/floe-host")));
    // DuckDB's official library, the one the tests link (parquet, json, icu compiled in).
    assert!(text.contains("scripts/setup.sh --demo") && text.contains("rustup target add wasm32-wasip2"));
    assert!(runtime.iter().any(|l| l.starts_with("COPY") && l.ends_with("/usr/local/lib/libduckdb.so")));
    assert!(runtime.iter().any(|l| *l == "RUN ldconfig"));
    assert!(text.contains("scripts/build-plugins.sh"));
}
