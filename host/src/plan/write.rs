//! Checks of how a step writes its table: `mode` and the keys that go with it.

use crate::config::{Transform, WriteMode};

/// A problem with a transform's write settings: key path (under
/// `transforms[i]`), message and help.
pub(super) struct Problem {
    pub field: String,
    pub message: String,
    pub help: String,
}

/// `merge_keys` is required for `mode: merge` and only allowed there; each key
/// is a non-empty column name, listed once. Whether the keys are columns of
/// the output is only known when the step has run.
pub(super) fn check(transform: &Transform) -> Vec<Problem> {
    let mut problems = Vec::new();
    let keys = &transform.merge_keys;
    match transform.mode {
        WriteMode::Merge if keys.is_empty() => problems.push(Problem {
            field: "mode".into(),
            message: "`mode: merge` needs `merge_keys`, the columns that identify a row".into(),
            help: "add for example `merge_keys: [order_id]`".into(),
        }),
        WriteMode::Merge => {}
        mode if !keys.is_empty() => problems.push(Problem {
            field: "merge_keys".into(),
            message: format!("`merge_keys` applies only to `mode: merge`, and this step's mode is `{}`", mode.as_str()),
            help: "set `mode: merge` to upsert by these keys, or remove `merge_keys`".into(),
        }),
        _ => {}
    }
    for (n, key) in keys.iter().enumerate() {
        if key.trim().is_empty() {
            problems.push(Problem {
                field: format!("merge_keys[{n}]"),
                message: "a merge key is empty".into(),
                help: "name a column of the step's output, for example `merge_keys: [order_id]`".into(),
            });
        } else if keys[..n].contains(key) {
            problems.push(Problem {
                field: format!("merge_keys[{n}]"),
                message: format!("merge key `{key}` is listed twice"),
                help: "list each key column once".into(),
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transform(yaml: &str) -> Transform {
        serde_yaml::from_str(&format!("{{name: t, layer: silver, kind: sql, sql: t.sql, {yaml}}}")).unwrap()
    }

    fn messages(yaml: &str) -> Vec<String> {
        check(&transform(yaml)).into_iter().map(|p| format!("{}: {}", p.field, p.message)).collect()
    }

    #[test]
    fn merge_needs_keys_and_keys_need_merge() {
        assert!(messages("mode: merge, merge_keys: [id, region]").is_empty());
        assert!(messages("mode: append").is_empty());
        assert_eq!(
            messages("mode: merge"),
            ["mode: `mode: merge` needs `merge_keys`, the columns that identify a row"]
        );
        assert_eq!(
            messages("merge_keys: [id]"),
            ["merge_keys: `merge_keys` applies only to `mode: merge`, and this step's mode is `overwrite`"]
        );
        assert_eq!(
            messages("mode: merge, merge_keys: [id, '', id]"),
            ["merge_keys[1]: a merge key is empty", "merge_keys[2]: merge key `id` is listed twice"]
        );
    }
}
