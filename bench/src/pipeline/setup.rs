//! The work directory: generated data (kept per size and seed), a copy of the
//! demo project that reads it, a platform.yaml, floe-host's state and the
//! baselines' files.
//!
//! ```text
//! WORK/data/c<customers>-o<orders>-s<seed>/{customers,orders}.csv
//! WORK/project/{floe.yaml, models/, data -> ../data/…}
//! WORK/platform.yaml     SQL catalog + local warehouse in WORK/state, DuckDB settings
//! WORK/state/            floe-host --state-dir (component-cache/ is kept between runs)
//! WORK/baseline/         one Parquet file per step (layer.name.parquet)
//! WORK/spill/            DuckDB temp_directory, one folder each for floe-host and the baselines
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use floe_host::sandbox::{Limits, Sandbox};

use super::options::Options;
use super::plan::{Action, Step};

pub struct Data {
    pub dir: PathBuf,
    pub customers_lines: u64,
    pub orders_lines: u64,
    pub bytes: u64,
    /// Seconds floe-datagen took, when it ran now.
    pub generated_in: Option<f64>,
}

pub struct Project {
    pub root: PathBuf,
    pub dir: PathBuf,
    pub platform: PathBuf,
    pub state: PathBuf,
    pub baseline: PathBuf,
    pub spill: PathBuf,
}

impl Project {
    /// Drops the catalog and the warehouse, so that every run starts from
    /// nothing; the compiled plugins stay.
    pub fn clear_tables(&self) -> Result<(), String> {
        for name in ["catalog.db", "catalog.db-wal", "catalog.db-shm", "warehouse"] {
            remove(&self.state.join(name))?;
        }
        remove(&self.spill)?;
        create_dir(&self.spill.join("floe-host"))?;
        create_dir(&self.spill.join("duckdb"))
    }
}

fn remove(path: &Path) -> Result<(), String> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
    result.map_err(|e| format!("cannot remove {}: {e}", path.display()))
}

fn create_dir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

fn lines_and_bytes(path: &Path) -> Result<(u64, u64), String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut lines, mut bytes, mut buffer) = (0u64, 0u64, vec![0u8; 1 << 20]);
    loop {
        let n = file.read(&mut buffer).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += buffer[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    // Records, without the header line.
    Ok((lines.saturating_sub(1), bytes))
}

/// The generated CSVs, made now unless an earlier run left them complete.
pub fn data(options: &Options) -> Result<Data, String> {
    let dir = options.work.join("data").join(format!("c{}-o{}-s{}", options.customers, options.orders, options.seed));
    let marker = dir.join(".complete");
    let mut generated_in = None;
    if !marker.exists() {
        eprintln!("floe-bench pipeline: generating data into {}", dir.display());
        create_dir(&dir)?;
        let started = Instant::now();
        let output = Command::new(&options.datagen)
            .args(["--customers", &options.customers.to_string(), "--orders", &options.orders.to_string()])
            .args(["--seed", &options.seed.to_string(), "--out"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", options.datagen.display()))?;
        if !output.status.success() {
            return Err(format!("floe-datagen failed: {}", String::from_utf8_lossy(&output.stderr)));
        }
        generated_in = Some(started.elapsed().as_secs_f64());
        std::fs::write(&marker, &output.stderr).map_err(|e| format!("{}: {e}", marker.display()))?;
    }
    let (customers_lines, customers_bytes) = lines_and_bytes(&dir.join("customers.csv"))?;
    let (orders_lines, orders_bytes) = lines_and_bytes(&dir.join("orders.csv"))?;
    Ok(Data { dir, customers_lines, orders_lines, bytes: customers_bytes + orders_bytes, generated_in })
}

/// A fresh copy of the demo project whose `data/` is the generated data.
pub fn project(options: &Options, data: &Path) -> Result<Project, String> {
    let root = options.work.clone();
    let source = options.project.canonicalize().map_err(|e| format!("{}: {e}", options.project.display()))?;
    let dir = root.join("project");
    remove(&dir)?;
    copy_project(&source, &dir)?;
    std::os::unix::fs::symlink(data, dir.join("data")).map_err(|e| format!("cannot link {}: {e}", data.display()))?;
    let floe_yaml = dir.join("floe.yaml");
    let text = std::fs::read_to_string(source.join("floe.yaml")).map_err(|e| format!("{}: {e}", source.display()))?;
    std::fs::write(&floe_yaml, absolute_paths(&text, &source)).map_err(|e| format!("{}: {e}", floe_yaml.display()))?;

    let state = root.join("state");
    let spill = root.join("spill");
    create_dir(&state)?;
    let platform = root.join("platform.yaml");
    std::fs::write(&platform, platform_yaml(options, &state, &spill.join("floe-host"), data))
        .map_err(|e| format!("{}: {e}", platform.display()))?;
    let project = Project { baseline: root.join("baseline"), root, dir, platform, state, spill };
    project.clear_tables()?;
    Ok(project)
}

/// Copies the project but its data and state.
fn copy_project(from: &Path, to: &Path) -> Result<(), String> {
    create_dir(to)?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| format!("{}: {e}", from.display()))?;
        let name = entry.file_name();
        if name == "data" || name == ".floe" || name == "floe.yaml" {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        if source.is_dir() {
            copy_project(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).map_err(|e| format!("{}: {e}", source.display()))?;
        }
    }
    Ok(())
}

/// floe.yaml with every relative `path:` value (the plugins) made absolute,
/// since the copy lives elsewhere.
fn absolute_paths(floe_yaml: &str, project: &Path) -> String {
    let mut out = String::with_capacity(floe_yaml.len());
    for line in floe_yaml.lines() {
        let trimmed = line.trim_start();
        if let Some(value) = trimmed.strip_prefix("path:") {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            if !value.is_empty() && !Path::new(value).is_absolute() {
                let indent = &line[..line.len() - trimmed.len()];
                let absolute = project.join(value);
                let absolute = absolute.canonicalize().unwrap_or(absolute);
                out.push_str(&format!("{indent}path: \"{}\"\n", absolute.display()));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The generated data lives outside the project (`data/` links to it), so
/// the platform allows its folder as a source root.
fn platform_yaml(options: &Options, state: &Path, spill: &Path, data: &Path) -> String {
    let data = data.canonicalize().unwrap_or_else(|_| data.to_path_buf());
    let (state, spill, data) = (state.display(), spill.display(), data.display());
    format!(
        r#"# Written by floe-bench pipeline: the embedded default, in the bench's work directory.
version: "1.1.0"
compute:
  default:
    type: duckdb
    properties: {{path: ":memory:", threads: {threads}, memory_limit: "{memory}", temp_directory: "{spill}"}}
{concurrent}
catalogs:
  default: {{type: sql, uri: "sqlite:{state}/catalog.db", warehouse: "{state}/warehouse"}}
storage:
  default: {{type: local, root: "{state}/warehouse"}}
layers:
  bronze: {{storage_ref: default, catalog_ref: default, namespace: bronze}}
  silver: {{storage_ref: default, catalog_ref: default, namespace: silver}}
  gold: {{storage_ref: default, catalog_ref: default, namespace: gold}}
sources:
  allowed_roots: ["{data}"]
{plugins}"#,
        threads = options.threads,
        memory = options.memory_limit,
        concurrent = options.concurrent_steps.map_or_else(String::new, |n| format!("    concurrent_steps: {n}")),
        plugins = options
            .plugin_memory_limit
            .as_ref()
            .map_or_else(String::new, |limit| format!("plugins: {{memory_limit: \"{limit}\"}}\n")),
    )
}

/// Compiles every plugin of the plan into floe-host's component cache (the
/// same library, so the same cache format), so that the timed run measures
/// the steps and not Cranelift.
pub fn warm_component_cache(steps: &[Step], cache: &Path) -> Result<(), String> {
    let sandbox = Sandbox::new(Limits::default(), Some(cache.to_owned())).map_err(|e| e.to_string())?;
    for step in steps {
        let loaded = match &step.action {
            Action::Ingest { plugin, path, .. } => {
                read(path).and_then(|wasm| sandbox.load_ingest(plugin, &wasm).map(drop).map_err(|e| e.to_string()))
            }
            Action::Wasm { plugin, path, .. } => {
                read(path).and_then(|wasm| sandbox.load_transform(plugin, &wasm).map(drop).map_err(|e| e.to_string()))
            }
            Action::Sql { .. } => Ok(()),
        };
        loaded.map_err(|e| format!("step `{}`: cannot compile its plugin: {e}", step.name))?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}
