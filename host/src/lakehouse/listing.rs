//! Listing the files under a folder of a table's location, with their size
//! and age, for orphan cleanup (`maintain`): a local folder is walked, an S3
//! prefix listed through opendal with the storage profile's own settings
//! and credentials. iceberg's `FileIO` reads, writes and deletes but cannot
//! list.

use std::path::Path;
use std::time::SystemTime;

use crate::plan::StorageSpec;

/// One file found.
pub(super) struct Listed {
    /// As manifests name it: a local path without `file://`, or `s3://bucket/key`.
    pub path: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// Lists files on one storage profile.
pub(super) enum Lister {
    Local,
    #[cfg(feature = "s3")]
    S3(StorageSpec),
    /// Storage this build cannot list.
    #[cfg(not(feature = "s3"))]
    Unlisted,
}

impl Lister {
    pub fn new(spec: &StorageSpec) -> Self {
        match spec {
            StorageSpec::Local { .. } => Lister::Local,
            #[cfg(feature = "s3")]
            StorageSpec::S3 { .. } => Lister::S3(spec.clone()),
            #[cfg(not(feature = "s3"))]
            StorageSpec::S3 { .. } => Lister::Unlisted,
        }
    }

    /// Every file under `folder` (a table location's `data` or `metadata`),
    /// at any depth; `None` when it is not on storage this lister can read.
    pub async fn list(&self, folder: &str) -> iceberg::Result<Option<Vec<Listed>>> {
        match self {
            Lister::Local => Ok(super::read::local_path(folder).map(|root| walk(Path::new(root)))),
            #[cfg(feature = "s3")]
            Lister::S3(spec) => s3::list(spec, folder).await,
            #[cfg(not(feature = "s3"))]
            Lister::Unlisted => Ok(None),
        }
    }
}

/// The files under a local folder; one that cannot be read lists nothing.
fn walk(root: &Path) -> Vec<Listed> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                let path = entry.path().display().to_string();
                files.push(Listed { path, size: meta.len(), modified: meta.modified().ok() });
            }
        }
    }
    files
}

#[cfg(feature = "s3")]
mod s3 {
    use std::time::Duration;

    use super::*;

    /// The objects under `folder` (`s3://bucket/prefix`), listed with the
    /// profile's endpoint, region, addressing and keys (ambient credentials
    /// without keys, as the table I/O does).
    pub(super) async fn list(spec: &StorageSpec, folder: &str) -> iceberg::Result<Option<Vec<Listed>>> {
        let StorageSpec::S3 { endpoint, region, path_style_access, keys, .. } = spec else { return Ok(None) };
        let Some((bucket, prefix)) = folder.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) else {
            return Ok(None);
        };
        let mut builder = opendal::services::S3::default().bucket(bucket);
        if let Some(endpoint) = endpoint {
            builder = builder.endpoint(endpoint);
        }
        if let Some(region) = region {
            builder = builder.region(region);
        }
        if !path_style_access {
            builder = builder.enable_virtual_host_style();
        }
        if let Some(keys) = keys {
            builder =
                builder.access_key_id(keys.access_key_id.expose()).secret_access_key(keys.secret_access_key.expose());
        }
        let operator = opendal::Operator::new(builder).map_err(opendal_error)?.finish();
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        let entries = operator.list_with(&prefix).recursive(true).await.map_err(opendal_error)?;
        let files = entries
            .into_iter()
            .filter(|entry| entry.metadata().is_file())
            .map(|entry| {
                let meta = entry.metadata();
                let modified = meta.last_modified().and_then(|t| {
                    let millis = t.into_inner().as_millisecond();
                    SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(u64::try_from(millis).ok()?))
                });
                Listed { path: format!("s3://{bucket}/{}", entry.path()), size: meta.content_length(), modified }
            })
            .collect();
        Ok(Some(files))
    }

    fn opendal_error(error: opendal::Error) -> iceberg::Error {
        // The words `storage::is_io_failure` recognises, as iceberg's own
        // opendal errors carry them.
        iceberg::Error::new(iceberg::ErrorKind::Unexpected, "Failure in doing io operation").with_source(error)
    }
}
