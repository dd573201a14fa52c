//! Every shipped example validates and plans, and `init` scaffolds a project
//! that runs. A new example file that no case here covers fails the test.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::{floe_host, repo, temp_dir};

/// (project, platform file relative to examples/ or None, FLOE_PLATFORM_ENV)
const CASES: [(&str, Option<&str>, Option<&str>); 6] = [
    ("customer-analytics", None, None),
    ("customer-analytics", Some("platforms/local/platform.yaml"), None),
    ("customer-analytics", Some("platforms/kubernetes/platform.yaml"), None),
    ("from-floe-platform", None, Some("local")),
    ("from-floe-platform", None, Some("prod")),
    ("plugins-in-js-and-python", None, None),
];

fn run(args: &[&str], env: Option<&str>, secrets: &Path) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_floe-host"));
    command.args(args).current_dir(repo());
    command
        .env("FLOE_SECRETS_DIR", secrets)
        .env("POLARIS_CLIENT_ID", "example-id")
        .env("POLARIS_CLIENT_SECRET", "example-secret");
    command.env("AWS_CREDENTIALS_ACCESS_KEY_ID", "example").env("AWS_CREDENTIALS_SECRET_ACCESS_KEY", "example");
    command.env_remove("FLOE_PLATFORM_FILE").env_remove("FLOE_PLATFORM_ENV");
    if let Some(env) = env {
        command.env("FLOE_PLATFORM_ENV", env);
    }
    let output = command.output().expect("floe-host runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn every_example_validates_and_plans() {
    let secrets = temp_dir();
    let mut covered = BTreeSet::new();
    for (project, platform, env) in CASES {
        let project_dir = format!("examples/{project}");
        let mut args = vec![project_dir.clone()];
        if let Some(platform) = platform {
            args.extend(["--platform".to_string(), format!("examples/{platform}")]);
            covered.insert(format!("{platform}"));
        }
        if let Some(env) = env {
            covered.insert(format!("{project}/platform/{env}/platform.yaml"));
        }
        covered.insert(format!("{project}/floe.yaml"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, text) = run(&[&["validate"][..], &args].concat(), env, secrets.path());
        assert_eq!(code, 0, "validate {args:?} (FLOE_PLATFORM_ENV={env:?})\n{text}");
        let (code, text) = run(&[&["plan", "--json"][..], &args].concat(), env, secrets.path());
        assert_eq!(code, 0, "plan {args:?}\n{text}");
        let plan: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("plan JSON: {e}\n{text}"));
        assert!(plan["steps"].as_array().is_some_and(|s| s.len() >= 2), "{args:?}: {plan}");
        assert!(!text.contains("example-secret"), "plan must mask secrets");
    }

    let mut shipped = BTreeSet::new();
    let examples = repo().join("examples");
    for entry in walk(&examples) {
        let name = entry.strip_prefix(&examples).unwrap().display().to_string();
        if name.ends_with("floe.yaml") || name.ends_with("platform.yaml") {
            shipped.insert(name);
        }
    }
    let untested: Vec<&String> = shipped.difference(&covered).collect();
    assert!(
        untested.is_empty(),
        "examples without a validate/plan case in tests/integration/examples.rs: {untested:?}"
    );
}

/// Every shipped floe.yaml and platform.yaml is valid against the JSON
/// Schema that editors use (`schemas/`), floe-platform's spellings
/// included; and the schema still refuses a step without a kind.
#[test]
fn every_example_fits_the_published_json_schemas() {
    let examples = repo().join("examples");
    for (kind, schema) in [("floe.yaml", "schemas/floe.schema.json"), ("platform.yaml", "schemas/platform.schema.json")]
    {
        let files: Vec<String> = walk(&examples)
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == kind))
            .map(|p| p.display().to_string())
            .collect();
        assert!(files.len() >= 2, "{kind}: {files:?}");
        let schema = repo().join(schema);
        let mut args = vec![schema.to_str().unwrap()];
        args.extend(files.iter().map(String::as_str));
        let report = crate::support::python_json("schema_check.py", &args);
        for file in &files {
            assert_eq!(report[file], serde_json::json!([]), "{file} against {}", schema.display());
        }
    }
    let dir = temp_dir();
    let broken = dir.path().join("floe.yaml");
    std::fs::write(
        &broken,
        "name: x\ntransforms:\n  - {name: a, schema: silver, kind: sql, type: dbt}\n  - {name: b, layer: silver}\n",
    )
    .unwrap();
    let schema = repo().join("schemas/floe.schema.json");
    let report = crate::support::python_json("schema_check.py", &[schema.to_str().unwrap(), broken.to_str().unwrap()]);
    let errors = report[broken.to_str().unwrap()].as_array().unwrap();
    assert_eq!(errors.len(), 2, "both spellings of kind on a, none on b: {errors:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if path.is_dir() && !hidden {
            out.extend(walk(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out
}

#[test]
fn init_scaffolds_a_project_that_runs() {
    let dir = temp_dir();
    let project = dir.path().join("shop");
    let project_arg = project.to_str().unwrap();
    let init = floe_host(&["init", project_arg]).expect_code(0);
    assert!(init.stdout.contains("floe.yaml"), "{}", init.stdout);
    // A second init refuses to overwrite.
    let again = floe_host(&["init", project_arg]).expect_code(2);
    assert!(again.stderr.contains("already has a floe.yaml"), "{}", again.stderr);

    let run = floe_host(&["run", project_arg]).expect_code(0);
    let rows = |table: &str| -> u64 {
        let line = run
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(table))
            .unwrap_or_else(|| panic!("{}", run.stdout));
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    // 5 customer lines (one without id, one duplicate), 6 order lines (one N/A
    // amount, one cancelled, one duplicate id): see init.rs.
    assert_eq!(rows("bronze.raw_customers"), 5);
    assert_eq!(rows("bronze.raw_orders"), 6);
    assert_eq!(rows("silver.stg_customers"), 3);
    assert_eq!(rows("silver.stg_orders"), 3);
    assert_eq!(rows("gold.customer_totals"), 3);
    assert_eq!(rows("gold.daily_revenue"), 3);
    let shown = floe_host(&["show", "gold.daily_revenue", project_arg]).expect_code(0);
    for amount in ["25.00", "13.50", "7.25"] {
        assert!(shown.stdout.contains(amount), "{amount} in\n{}", shown.stdout);
    }
    assert!(!shown.stdout.contains("1000.00"), "the later duplicate of order 102 must be dropped");
}
