//! The same rpath to the shared DuckDB library as host/build.rs: floe-host's
//! link arguments apply to its own targets only, not to this binary.

fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
