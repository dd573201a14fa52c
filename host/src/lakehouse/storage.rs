//! Object storage as the table files see it: the `FileIO` that reads and
//! writes a layer's data and metadata files, with the host's credentials.
//! Plugins never get any of this.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::io::{
    FileIO, FileIOBuilder, LocalFsStorageFactory, S3_ACCESS_KEY_ID, S3_ENDPOINT, S3_PATH_STYLE_ACCESS, S3_REGION,
    S3_SECRET_ACCESS_KEY, StorageFactory,
};

use crate::plan::StorageSpec;

/// The storage factory and FileIO properties for a storage profile; a
/// catalog's FileIO is built from them.
pub(super) fn factory(spec: &StorageSpec) -> iceberg::Result<(Arc<dyn StorageFactory>, HashMap<String, String>)> {
    Ok(match spec {
        StorageSpec::Local { .. } => (Arc::new(LocalFsStorageFactory), HashMap::new()),
        StorageSpec::S3 { endpoint, region, path_style_access, keys, .. } => {
            let mut props = HashMap::new();
            if let Some(endpoint) = endpoint {
                props.insert(S3_ENDPOINT.to_string(), endpoint.clone());
            }
            if let Some(region) = region {
                props.insert(S3_REGION.to_string(), region.clone());
            }
            props.insert(S3_PATH_STYLE_ACCESS.to_string(), path_style_access.to_string());
            // Without keys, opendal's loader finds ambient credentials (env, web
            // identity, instance profile) as the AWS SDKs do.
            if let Some(keys) = keys {
                props.insert(S3_ACCESS_KEY_ID.to_string(), keys.access_key_id.expose().to_string());
                props.insert(S3_SECRET_ACCESS_KEY.to_string(), keys.secret_access_key.expose().to_string());
            }
            (s3_factory()?, props)
        }
    })
}

#[cfg(feature = "s3")]
fn s3_factory() -> iceberg::Result<Arc<dyn StorageFactory>> {
    Ok(Arc::new(iceberg_storage_opendal::OpenDalStorageFactory::S3 { customized_credential_load: None }))
}

/// Building the plan already refuses S3 storage in a build without the `s3`
/// feature (`plan/features.rs`); this is the backstop. No local factory may
/// stand in: iceberg's would take `s3://bucket/key` for a relative path.
#[cfg(not(feature = "s3"))]
fn s3_factory() -> iceberg::Result<Arc<dyn StorageFactory>> {
    Err(iceberg::Error::new(
        iceberg::ErrorKind::FeatureUnsupported,
        "S3 storage needs a floe-host built with the `s3` feature (`cargo build -p floe-host`)",
    ))
}

/// A FileIO over a storage profile's `factory` and properties.
pub(super) fn file_io(factory: Arc<dyn StorageFactory>, props: HashMap<String, String>) -> FileIO {
    FileIOBuilder::new(factory).with_props(props).build()
}

/// The storage as messages name it.
pub(super) fn describe(spec: &StorageSpec) -> String {
    match spec {
        StorageSpec::Local { root } => format!("the local folder {}", root.display()),
        StorageSpec::S3 { endpoint, bucket, .. } => match endpoint {
            Some(endpoint) => format!("S3 at {endpoint} (bucket `{bucket}`)"),
            None => format!("S3 (bucket `{bucket}`)"),
        },
    }
}

/// Whether an iceberg error is a failed read or write of a file (opendal's
/// errors, as iceberg-storage-opendal wraps them, at any depth: a Parquet
/// read reports its own message first), rather than a catalog or data error.
pub(super) fn is_io_failure(error: &iceberg::Error) -> bool {
    error.to_string().contains("Failure in doing io operation")
}
