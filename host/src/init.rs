//! `floe-host init <dir>`: scaffolds a small working project (the demo's
//! pipeline on a handful of rows) that runs on the embedded default as is.

use std::path::{Path, PathBuf};

const MODELS: [(&str, &str); 4] = [
    ("stg_customers.sql", include_str!("../../examples/customer-analytics/models/stg_customers.sql")),
    ("stg_orders.sql", include_str!("../../examples/customer-analytics/models/stg_orders.sql")),
    ("customer_totals.sql", include_str!("../../examples/customer-analytics/models/customer_totals.sql")),
    ("daily_revenue.sql", include_str!("../../examples/customer-analytics/models/daily_revenue.sql")),
];

const CUSTOMERS: &str = "customer_id,customer_name,email,region,signup_date
1,\"Ueda, Zoe\",zoe.ueda@example.org,north,2023-11-02
2,\"Okafor, Ben\",  BEN.OKAFOR@example.com ,south,2023-12-14
,\"Nobody, No\",no@example.com,east,2024-01-01
3,\"Silva, Ana\",ana.silva@example.net,west,2024-01-20
3,\"Silva, Ana\",ana.silva@example.net,west,2024-01-20
";

const ORDERS: &str = "order_id,customer_id,order_date,amount,status
100,1,2024-01-03,25.00,completed
101,2,2024-01-03,N/A,completed
102,2,2024-01-04,13.50,shipped
103,3,2024-01-04,99.99,cancelled
104,3,2024-01-05,7.25,pending
102,1,2024-01-06,1000.00,completed
";

/// Why a project could not be created.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{} already has a floe.yaml; choose an empty or new directory", .0.display())]
    Exists(PathBuf),
    #[error(
        "cannot find the csv-ingest plugin (csv_ingest.wasm); pass --plugin PATH, set FLOE_PLUGIN_DIST, \
         or build it with scripts/build-plugins.sh"
    )]
    NoPlugin,
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where a csv-ingest component may be found, in order: the flag,
/// `$FLOE_PLUGIN_DIST`, next to the binary (container images), the source tree.
fn find_plugin(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return path.is_file().then(|| path.to_path_buf());
    }
    let mut candidates = Vec::new();
    if let Some(dist) = std::env::var_os("FLOE_PLUGIN_DIST") {
        candidates.push(PathBuf::from(dist).join("csv_ingest.wasm"));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("../share/floe-host/plugins/csv_ingest.wasm"));
        candidates.push(dir.join("plugins/csv_ingest.wasm"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist/csv_ingest.wasm"));
    candidates.into_iter().find(|p| p.is_file())
}

/// Writes the project and returns the files created.
pub fn init(dir: &Path, plugin: Option<&Path>) -> Result<Vec<PathBuf>, InitError> {
    if dir.join("floe.yaml").exists() {
        return Err(InitError::Exists(dir.to_path_buf()));
    }
    let plugin_source = find_plugin(plugin).ok_or(InitError::NoPlugin)?;
    let wasm =
        std::fs::read(&plugin_source).map_err(|source| InitError::Write { path: plugin_source.clone(), source })?;
    let digest = crate::sandbox::sha256_hex(&wasm);
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("pipeline").to_string();

    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![
        (dir.join("floe.yaml"), floe_yaml(&name, &digest).into_bytes()),
        (dir.join("data/customers.csv"), CUSTOMERS.as_bytes().to_vec()),
        (dir.join("data/orders.csv"), ORDERS.as_bytes().to_vec()),
        (dir.join("plugins/csv_ingest.wasm"), wasm),
        (dir.join(".gitignore"), b".floe/\n".to_vec()),
    ];
    for (file, sql) in MODELS {
        files.push((dir.join("models").join(file), sql.as_bytes().to_vec()));
    }
    for (path, bytes) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| InitError::Write { path: parent.to_path_buf(), source })?;
        }
        std::fs::write(path, bytes).map_err(|source| InitError::Write { path: path.clone(), source })?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

fn floe_yaml(name: &str, digest: &str) -> String {
    format!(
        "# A medallion pipeline: raw CSV -> bronze (WASM ingest) -> silver -> gold (DuckDB SQL).
# Run it with `floe-host run .`; see the README of floe-host for every key.
name: {name}
version: \"0.1.0\"
storage: default
catalog: default
compute: default

plugins:
  csv-ingest:
    path: plugins/csv_ingest.wasm
    sha256: {digest}

transforms:
  - name: raw_customers
    layer: bronze
    kind: ingest
    plugin: csv-ingest
    source: data/customers.csv
  - name: raw_orders
    layer: bronze
    kind: ingest
    plugin: csv-ingest
    source: data/orders.csv
  - name: stg_customers
    layer: silver
    kind: sql
    sql: models/stg_customers.sql
  - name: stg_orders
    layer: silver
    kind: sql
    sql: models/stg_orders.sql
  - name: customer_totals
    layer: gold
    kind: sql
    sql: models/customer_totals.sql
  - name: daily_revenue
    layer: gold
    kind: sql
    sql: models/daily_revenue.sql
"
    )
}
