//! Keys that users bring from floe-platform and that floe-host deliberately
//! does not support. Each gets a message that says why and what to do, instead
//! of a generic "unknown field".

use serde_yaml::Value;

/// Which of the two files a rule applies to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Pipeline,
    Platform,
}

struct Rule {
    file: FileKind,
    /// Key path with `*` for any map key or list index.
    path: &'static str,
    message: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        file: FileKind::Pipeline,
        path: "consumption",
        message: "`consumption` is a floe-platform key that floe-host does not support: floe-host has no semantic \
                  or consumption layer; serve gold tables with the query engine of your choice and remove this key",
    },
    Rule {
        file: FileKind::Pipeline,
        path: "governance",
        message: "`governance` is a floe-platform key that floe-host does not support: classification and policies \
                  belong in the catalog; remove this key",
    },
    Rule {
        file: FileKind::Pipeline,
        path: "observability",
        message: "`observability` is not supported in floe.yaml by floe-host: platform engineers configure it in \
                  platform.yaml (`observability`); remove this key",
    },
    Rule {
        file: FileKind::Platform,
        path: "infrastructure",
        message: "`infrastructure` is a floe-platform key that floe-host does not support: resource requests and \
                  limits belong in the Kubernetes Job (see deploy/); DuckDB sizes itself from the container limit",
    },
    Rule {
        file: FileKind::Platform,
        path: "observability.compute_logs",
        message: "`compute_logs` is a floe-platform key that floe-host does not support: floe-host logs to \
                  stdout/stderr and the orchestrator collects them",
    },
];

/// floe-platform's spellings of a step's keys that floe-host accepts, with
/// floe-host's own: a step may use either, not both.
const SPELLINGS: &[(&str, &str, &str)] = &[
    ("type", "kind", "`type` and `kind` are the same key (floe-platform's spelling and floe-host's): keep one"),
    ("schema", "layer", "`schema` and `layer` are the same key (floe-platform's spelling and floe-host's): keep one"),
];

/// Finds the unsupported floe-platform keys, removes them from `value` (so the
/// rest of the file can still be checked) and returns (key path, message).
pub fn take_unsupported(file: FileKind, value: &mut Value) -> Vec<(String, &'static str)> {
    let mut found = Vec::new();
    if file == FileKind::Pipeline
        && let Some(Value::Sequence(steps)) = value.get_mut("transforms")
    {
        for (i, step) in steps.iter_mut().enumerate() {
            let Value::Mapping(step) = step else { continue };
            for (theirs, ours, message) in SPELLINGS {
                if step.contains_key(*theirs) && step.contains_key(*ours) {
                    step.remove(*theirs);
                    found.push((format!("transforms[{i}].{theirs}"), *message));
                }
            }
        }
    }
    for rule in RULES.iter().filter(|r| r.file == file) {
        let parts: Vec<&str> = rule.path.split('.').collect();
        remove(value, &parts, String::new(), rule.message, &mut found);
    }
    found
}

fn remove(
    value: &mut Value,
    parts: &[&str],
    path: String,
    message: &'static str,
    found: &mut Vec<(String, &'static str)>,
) {
    let Some((first, rest)) = parts.split_first() else { return };
    let join = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match value {
        Value::Mapping(map) if rest.is_empty() => {
            if map.remove(*first).is_some() {
                found.push((join(first), message));
            }
        }
        Value::Mapping(map) if *first == "*" => {
            for (k, v) in map.iter_mut() {
                let key = k.as_str().unwrap_or_default().to_string();
                remove(v, rest, join(&key), message, found);
            }
        }
        Value::Mapping(map) => {
            if let Some(v) = map.get_mut(*first) {
                remove(v, rest, join(first), message, found);
            }
        }
        Value::Sequence(items) if *first == "*" => {
            for (i, item) in items.iter_mut().enumerate() {
                remove(item, rest, format!("{path}[{i}]"), message, found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_removes_floe_platform_keys() {
        let mut value: Value =
            serde_yaml::from_str("name: x\nconsumption: {cube: true}\ngovernance: {}\ntransforms:\n  - name: a\n")
                .unwrap();
        let found = take_unsupported(FileKind::Pipeline, &mut value);
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["consumption", "governance"]);
        assert!(value.get("consumption").is_none());
        assert!(value.get("governance").is_none());
    }
}
