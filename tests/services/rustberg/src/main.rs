//! floe-rustberg: the rustberg 0.3.0 Iceberg REST catalog for floe-host's tests.
//!
//! Usage: `floe-rustberg CONFIG.toml` (rustberg's own TOML format; see
//! tests/services/README.md and the files scripts/services.sh writes).
//!
//! It does what rustberg's `main.rs` does on its authenticated path, with three
//! differences that make it a usable test service:
//!
//! - JWTs are verified with RS256 only. 0.3.0's default list (RS256, ES256,
//!   EdDSA) mixes key families, which jsonwebtoken 11 rejects for every token
//!   ("InvalidAlgorithm"); the test IdP (oauth2-mock-server) signs with RS256.
//!   The crypto backend that 0.3.0 forgot comes from Cargo.toml (`rust_crypto`).
//! - API keys from `[[server.auth.api_keys]]` and the JWT authenticator are both
//!   installed, so one instance accepts the static token and IdP tokens.
//! - Rate limiting is always off: a few rejected tokens (which the auth tests
//!   send on purpose) would otherwise lock 127.0.0.1 out for minutes.
#![forbid(unsafe_code)]

use std::sync::Arc;

use jsonwebtoken::Algorithm;
use rustberg::auth::{Auditor, JwtConfig, RateLimitConfig};
use rustberg::config::RustbergConfig;
use rustberg::server::ServerConfig;
use rustberg::{App, start_server};

fn fail(msg: impl std::fmt::Display) -> ! {
    tracing::error!("floe-rustberg: {msg}");
    eprintln!("floe-rustberg: {msg}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();

    let mut args = std::env::args().skip(1);
    let path = match (args.next(), args.next()) {
        (Some(p), None) if p != "-h" && p != "--help" => p,
        _ => {
            eprintln!("usage: floe-rustberg CONFIG.toml");
            std::process::exit(2);
        }
    };
    let config = RustbergConfig::from_file(&path)
        .unwrap_or_else(|e| fail(format!("cannot load {path}: {e}")));

    // Object-store properties (s3.endpoint, keys, region, path style) before any
    // catalog opens: the FileIO captures them when it is built.
    let props = config
        .storage
        .resolved_properties()
        .unwrap_or_else(|e| fail(format!("[storage.properties]: {e}")));
    if !props.is_empty() {
        let mut keys: Vec<&String> = props.keys().collect();
        keys.sort();
        tracing::info!(properties = ?keys, "Configured object storage");
        rustberg::catalog::file_io::set_storage_properties(props);
    }

    let warehouse = config
        .storage
        .warehouse_location
        .clone()
        .unwrap_or_else(|| fail("storage.warehouse_location is required"));
    let scope = rustberg::location::LocationScope::parse(&config.storage.location_scope)
        .unwrap_or_else(|e| fail(e));

    let mut builder = App::builder()
        .with_default_tenant_id("default")
        .with_auditor(Arc::new(Auditor::stdout()))
        .with_catalog_url(&config.storage.catalog_url)
        .with_warehouse_location(&warehouse)
        .with_location_scope(scope)
        .with_rate_limit_config(RateLimitConfig::disabled())
        .with_cors_config(config.server.cors.clone());

    let auth = &config.server.auth;
    if auth.jwt_enabled {
        let Some(jwt) = auth.jwt.clone() else {
            fail("server.auth.jwt_enabled = true needs a [server.auth.jwt] table");
        };
        if let Some(uri) = jwt.oauth2_server_uri.as_ref() {
            builder = builder.with_oauth2_server_uri(uri);
        }
        let mut jwt: JwtConfig = jwt.into();
        jwt.allowed_algorithms = vec![Algorithm::RS256];
        tracing::info!(issuer = %jwt.issuer, audiences = ?jwt.audiences, "JWT authentication (RS256)");
        builder = builder.with_jwt_config(jwt);
    }
    if let Some(policies) = auth.policy_file.as_ref() {
        let src = std::fs::read_to_string(policies)
            .unwrap_or_else(|e| fail(format!("policy file {}: {e}", policies.display())));
        builder = builder.with_policies(src);
    }
    let keys: Vec<_> = auth
        .api_keys
        .iter()
        .map(|k| k.to_api_key().unwrap_or_else(|e| fail(e)))
        .collect();
    if keys.is_empty() && !auth.jwt_enabled {
        fail("configure [[server.auth.api_keys]] or [server.auth.jwt]: nobody could authenticate");
    }
    tracing::info!(count = keys.len(), "API keys");
    builder = builder.with_api_keys(keys);

    let (app, _keys) = builder
        .build_with_api_keys()
        .await
        .unwrap_or_else(|e| fail(format!("cannot start: {e}")));

    let server = ServerConfig {
        host: config.server.host.clone(),
        port: config.server.port,
        tls: None,
        shutdown_delay: std::time::Duration::ZERO,
    };
    tracing::info!(host = %server.host, port = server.port, %warehouse, "floe-rustberg serving");
    if let Err(e) = start_server(app.into_router(), server).await {
        fail(format!("server error: {e}"));
    }
}
