//! The deployment files (Dockerfile, deploy/kubernetes/) agree with the host:
//! exit codes in podFailurePolicy, secret_refs mounted where they resolve,
//! the pipeline's files mounted where floe.yaml refers to them, non-root, limits.

use std::collections::BTreeSet;
use std::path::Path;

use floe_host::config::{FloeFile, PlatformFile};
use serde::Deserialize;
use serde_yaml::Value;

use crate::support::repo;

/// Every document of every manifest in deploy/kubernetes.
fn manifests() -> Vec<Value> {
    let dir = repo().join("deploy/kubernetes");
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value = Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(value.get("apiVersion").is_some() && value.get("kind").is_some(), "{}", path.display());
                docs.push(value);
            }
        }
    }
    docs
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

/// The Job, its pod spec and its one container.
fn job(docs: &[Value]) -> (&Value, &Value, &Value) {
    let job = docs.iter().find(|d| d["kind"] == "Job").expect("a Job in deploy/kubernetes");
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
    let docs = manifests();
    let (job, pod, container) = job(&docs);
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
    let docs = manifests();
    let (_, pod, container) = job(&docs);
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
    let docs = manifests();
    let (_, pod, container) = job(&docs);
    // FLOE_PLATFORM_FILE points at the ConfigMap's platform.yaml.
    let platform_file = env(container, "FLOE_PLATFORM_FILE");
    let configs = mounted_files(pod, container, "configMap");
    let (_, configmap, key) = configs
        .iter()
        .find(|(path, _, _)| path == platform_file)
        .unwrap_or_else(|| panic!("FLOE_PLATFORM_FILE={platform_file} is not a mounted ConfigMap file: {configs:?}"));
    let text = str_of(&find(&docs, "ConfigMap", configmap)["data"][key.as_str()]);
    let platform: PlatformFile = serde_yaml::from_str(text).expect("the ConfigMap holds a valid platform.yaml");
    let example = std::fs::read_to_string(repo().join("examples/platforms/kubernetes/platform.yaml")).unwrap();
    assert_eq!(
        serde_yaml::from_str::<Value>(text).unwrap(),
        serde_yaml::from_str::<Value>(&example).unwrap(),
        "the ConfigMap carries examples/platforms/kubernetes/platform.yaml"
    );

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
fn the_dockerfile_builds_bundled_and_runs_as_non_root() {
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
    assert!(text.contains("--features bundled") && text.contains("rustup target add wasm32-wasip2"));
    assert!(text.contains("scripts/build-plugins.sh"));
}
