//! Embeds an rpath to the shared DuckDB library when linking it dynamically, so that
//! `floe-host` and its tests run without LD_LIBRARY_PATH (see scripts/env.sh).

fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_BUNDLED").is_some() {
        return;
    }
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
