//! A client for the Iceberg REST catalog protocol (Polaris, rustberg, and
//! other servers of the spec): the few calls a run needs, with errors that
//! name the catalog's URL and what to do.
//!
//! Written here rather than taken from `iceberg-catalog-rest` because a run
//! commits its own snapshots (see `commit`), and that crate can only commit
//! through its transaction actions; this client POSTs the same
//! requirements and updates the SQL catalog applies locally.
//!
//! Table files are read and written through the FileIO of the layer's
//! storage profile (the host's credentials); credentials the catalog may
//! vend are not used.

mod auth;

use std::collections::HashMap;
use std::time::Duration;

use iceberg::io::FileIO;
use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use iceberg::{Error, ErrorKind, NamespaceIdent, TableCreation, TableIdent, TableRequirement, TableUpdate};
use reqwest::{Client, Method, StatusCode};
use serde::{Deserialize, Serialize};

use auth::Auth;
pub use auth::AuthError;

use crate::plan::RestSpec;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// An open connection to one REST catalog.
pub(super) struct RestCatalog {
    http: Client,
    auth: Auth,
    /// `<uri>/v1/<prefix>`: where the namespace and table routes start.
    base: String,
    /// The catalog's own URL, for messages.
    uri: String,
    file_io: FileIO,
}

/// Why a REST catalog could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The catalog answered its config request with a 4xx: a wrong token or
    /// warehouse, which retrying will not fix.
    #[error("{0}")]
    Refused(Error),
    #[error("{0}")]
    Other(Error),
}

#[derive(Deserialize)]
struct ConfigResponse {
    #[serde(default)]
    defaults: HashMap<String, String>,
    #[serde(default)]
    overrides: HashMap<String, String>,
}

#[derive(Deserialize)]
struct LoadTableResponse {
    #[serde(rename = "metadata-location")]
    metadata_location: Option<String>,
    metadata: TableMetadata,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: ErrorModel,
}

#[derive(Deserialize)]
struct ErrorModel {
    message: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Serialize)]
struct CreateTableRequest<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'a str>,
    schema: &'a iceberg::spec::Schema,
    #[serde(rename = "partition-spec", skip_serializing_if = "Option::is_none")]
    partition_spec: Option<&'a iceberg::spec::UnboundPartitionSpec>,
    #[serde(rename = "write-order", skip_serializing_if = "Option::is_none")]
    write_order: Option<&'a iceberg::spec::SortOrder>,
    #[serde(rename = "stage-create")]
    stage_create: bool,
    properties: &'a HashMap<String, String>,
}

#[derive(Serialize)]
struct CommitRequest<'a> {
    identifier: Identifier<'a>,
    requirements: &'a [TableRequirement],
    updates: &'a [TableUpdate],
}

#[derive(Serialize)]
struct Identifier<'a> {
    namespace: Vec<&'a str>,
    name: &'a str,
}

impl RestCatalog {
    /// Connects: fetches a token if the catalog uses OAuth2, then the
    /// catalog's config (its route prefix for `warehouse`).
    pub async fn connect(spec: &RestSpec, file_io: FileIO) -> Result<Self, OpenError> {
        let uri = spec.uri.trim_end_matches('/').to_string();
        let http =
            Client::builder().connect_timeout(CONNECT_TIMEOUT).timeout(REQUEST_TIMEOUT).build().map_err(|e| {
                OpenError::Other(Error::new(ErrorKind::Unexpected, format!("cannot build an HTTP client: {e}")))
            })?;
        let token_endpoint = spec.oauth2_server_uri.clone().unwrap_or_else(|| format!("{uri}/v1/oauth/tokens"));
        let auth = Auth::new(&spec.auth, token_endpoint);
        // Fetch the first token now, so bad credentials fail before any step runs.
        auth.header(&http).await?;
        let mut catalog = RestCatalog { http, auth, base: format!("{uri}/v1"), uri: uri.clone(), file_io };
        let query = spec.warehouse.as_deref().map(|w| format!("?warehouse={}", encode(w))).unwrap_or_default();
        let (status, body) =
            catalog.call(Method::GET, &format!("{uri}/v1/config{query}"), None).await.map_err(OpenError::Other)?;
        if status.is_client_error() {
            return Err(OpenError::Refused(catalog.error(status, &body, "the catalog refused its config request")));
        }
        if !status.is_success() {
            return Err(OpenError::Other(catalog.error(status, &body, "cannot read the catalog's config")));
        }
        let config: ConfigResponse = catalog.parse(&body, "config").map_err(OpenError::Other)?;
        let prefix = config.overrides.get("prefix").or_else(|| config.defaults.get("prefix"));
        if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
            catalog.base = format!("{uri}/v1/{}", prefix.trim_matches('/'));
        }
        Ok(catalog)
    }

    /// One request with the catalog's authentication; on a 401 with OAuth2,
    /// once more with a fresh token.
    async fn call(&self, method: Method, url: &str, body: Option<Vec<u8>>) -> iceberg::Result<(StatusCode, Vec<u8>)> {
        let mut retried = false;
        loop {
            let mut request = self.http.request(method.clone(), url);
            if let Some(header) = self.auth.header(&self.http).await.map_err(|e| {
                let retryable = matches!(e, AuthError::Failed { .. });
                Error::new(ErrorKind::Unexpected, e.to_string()).with_retryable(retryable)
            })? {
                request = request.header(reqwest::header::AUTHORIZATION, header);
            }
            if let Some(body) = &body {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone());
            }
            let response = request.send().await.map_err(|e| {
                Error::new(
                    ErrorKind::Unexpected,
                    format!("the REST catalog at {} is unreachable: {}", self.uri, describe(&e)),
                )
                .with_retryable(true)
            })?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !retried && self.auth.invalidate().await {
                retried = true;
                continue;
            }
            let bytes = response.bytes().await.map_err(|e| {
                Error::new(ErrorKind::Unexpected, format!("the REST catalog at {} broke off its answer: {e}", self.uri))
                    .with_retryable(true)
            })?;
            return Ok((status, bytes.to_vec()));
        }
    }

    fn parse<T: for<'de> Deserialize<'de>>(&self, body: &[u8], what: &str) -> iceberg::Result<T> {
        serde_json::from_slice(body).map_err(|e| {
            Error::new(ErrorKind::DataInvalid, format!("the REST catalog at {} sent an invalid {what}: {e}", self.uri))
        })
    }

    /// An error for a non-success answer: the catalog's own message, the
    /// status, and whether trying again may help.
    fn error(&self, status: StatusCode, body: &[u8], doing: &str) -> Error {
        let detail = match serde_json::from_slice::<ErrorResponse>(body) {
            Ok(e) if e.error.kind.is_empty() => e.error.message,
            Ok(e) => format!("{}: {}", e.error.kind, e.error.message),
            Err(_) => String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        };
        let hint = match status {
            StatusCode::UNAUTHORIZED => "; the catalog refused the credentials: check the catalog's `credentials`",
            StatusCode::FORBIDDEN => "; the principal lacks the privilege: ask the catalog's administrator",
            _ => "",
        };
        let kind = match status {
            StatusCode::NOT_FOUND if detail.contains("Namespace") => ErrorKind::NamespaceNotFound,
            StatusCode::NOT_FOUND => ErrorKind::TableNotFound,
            _ => ErrorKind::Unexpected,
        };
        let retryable = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::BAD_GATEWAY
                | StatusCode::GATEWAY_TIMEOUT
        );
        Error::new(kind, format!("{doing}: the REST catalog at {} answered {status}: {detail}{hint}", self.uri))
            .with_retryable(retryable)
    }

    fn table_url(&self, table: &TableIdent) -> String {
        format!("{}/namespaces/{}/tables/{}", self.base, namespace_path(table.namespace()), encode(table.name()))
    }

    fn table(&self, ident: TableIdent, loaded: LoadTableResponse) -> iceberg::Result<Table> {
        let mut builder = Table::builder()
            .identifier(ident)
            .metadata(loaded.metadata)
            .file_io(self.file_io.clone())
            .runtime(iceberg::Runtime::try_current()?);
        if let Some(location) = loaded.metadata_location {
            builder = builder.metadata_location(location);
        }
        builder.build()
    }

    pub async fn load_table(&self, ident: &TableIdent) -> iceberg::Result<Table> {
        let (status, body) = self.call(Method::GET, &self.table_url(ident), None).await?;
        if !status.is_success() {
            return Err(self.error(status, &body, &format!("cannot load table {ident}")));
        }
        let loaded = self.parse(&body, "table")?;
        self.table(ident.clone(), loaded)
    }

    pub async fn namespace_exists(&self, namespace: &NamespaceIdent) -> iceberg::Result<bool> {
        let url = format!("{}/namespaces/{}", self.base, namespace_path(namespace));
        let (status, body) = self.call(Method::GET, &url, None).await?;
        match status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(self.error(s, &body, &format!("cannot look up namespace {}", namespace.join(".")))),
        }
    }

    pub async fn create_namespace(&self, namespace: &NamespaceIdent) -> iceberg::Result<()> {
        let body = serde_json::json!({ "namespace": namespace.as_ref(), "properties": {} });
        let url = format!("{}/namespaces", self.base);
        let (status, response) = self.call(Method::POST, &url, Some(body.to_string().into_bytes())).await?;
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::CONFLICT => Err(Error::new(ErrorKind::NamespaceAlreadyExists, "namespace already exists")),
            s => Err(self.error(s, &response, &format!("cannot create namespace {}", namespace.join(".")))),
        }
    }

    pub async fn create_table(&self, namespace: &NamespaceIdent, creation: TableCreation) -> iceberg::Result<Table> {
        self.post_table(namespace, creation, false).await
    }

    /// Asks the catalog to place and describe a new table without creating
    /// it (`stage-create`): the table has metadata and a location, and no
    /// metadata file; a commit with `assert-create` creates it
    /// (`OpenCatalog::commit`).
    pub async fn stage_table(&self, namespace: &NamespaceIdent, creation: TableCreation) -> iceberg::Result<Table> {
        self.post_table(namespace, creation, true).await
    }

    async fn post_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
        stage_create: bool,
    ) -> iceberg::Result<Table> {
        let request = CreateTableRequest {
            name: &creation.name,
            location: creation.location.as_deref(),
            schema: &creation.schema,
            partition_spec: creation.partition_spec.as_ref(),
            write_order: creation.sort_order.as_ref(),
            stage_create,
            properties: &creation.properties,
        };
        let body = serde_json::to_vec(&request).map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
        let url = format!("{}/namespaces/{}/tables", self.base, namespace_path(namespace));
        let (status, response) = self.call(Method::POST, &url, Some(body)).await?;
        let ident = TableIdent::new(namespace.clone(), creation.name.clone());
        match status {
            s if s.is_success() => {
                let loaded = self.parse(&response, "table")?;
                self.table(ident, loaded)
            }
            StatusCode::CONFLICT => Err(Error::new(ErrorKind::TableAlreadyExists, "table already exists")),
            s => Err(self.error(s, &response, &format!("cannot create table {ident}"))),
        }
    }

    /// POSTs a commit. A 409 is a lost race (retryable conflict); a 5xx
    /// leaves the outcome unknown, so it is not retried blindly.
    pub async fn commit(
        &self,
        table: &TableIdent,
        requirements: &[TableRequirement],
        updates: &[TableUpdate],
    ) -> iceberg::Result<()> {
        let request = CommitRequest {
            identifier: Identifier {
                namespace: table.namespace().iter().map(String::as_str).collect(),
                name: table.name(),
            },
            requirements,
            updates,
        };
        let body = serde_json::to_vec(&request).map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
        let (status, response) = self.call(Method::POST, &self.table_url(table), Some(body)).await?;
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::CONFLICT => {
                Err(Error::new(ErrorKind::CatalogCommitConflicts, format!("commit conflicted for table {table}"))
                    .with_retryable(true))
            }
            // A create whose staged table is gone while the table is not
            // there yet: another writer's create of the same name is being
            // committed (rustberg 0.3 reads the table and the staged record
            // outside its transaction, and answers 404 "not staged" in that
            // window; CI hit it with four writers). A lost race too: the
            // retry reloads the table that writer created.
            StatusCode::NOT_FOUND if requirements.iter().any(|r| matches!(r, TableRequirement::NotExist)) => {
                Err(Error::new(
                    ErrorKind::CatalogCommitConflicts,
                    format!("the create of table {table} lost its staged table to another writer"),
                )
                .with_retryable(true))
            }
            s if s.is_server_error() && s != StatusCode::SERVICE_UNAVAILABLE => {
                let error = self.error(s, &response, &format!("commit of table {table}"));
                Err(Error::new(
                    ErrorKind::Unexpected,
                    format!(
                        "{error}; whether the commit landed is unknown: rerun with the same --run-id, \
                         which skips the step if it did"
                    ),
                ))
            }
            s => Err(self.error(s, &response, &format!("cannot commit table {table}"))),
        }
    }
}

/// A namespace as a URL path segment: levels joined by the unit separator.
fn namespace_path(namespace: &NamespaceIdent) -> String {
    encode(&namespace.join("\u{1f}"))
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A reqwest error with its causes (connection refused, timeout, TLS), which
/// its own Display leaves out.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog peer that answers the config request, then every other
    /// request with `status` and `body`. A mock: rustberg answers a create
    /// with 404 "not staged" only inside a window a test cannot hit on
    /// demand (another create of the same name committing).
    fn canned_catalog(status: &'static str, body: &'static str) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Headers, then the body its Content-Length announces.
                loop {
                    let n = stream.read(&mut buffer).unwrap();
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).to_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                            .unwrap_or(0usize);
                        if request.len() >= end + 4 + length || n == 0 {
                            break;
                        }
                    }
                }
                let config = String::from_utf8_lossy(&request).starts_with("GET /v1/config");
                let (status, body) =
                    if config { ("200 OK", r#"{"defaults": {}, "overrides": {}}"#) } else { (status, body) };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(response.as_bytes()).unwrap();
            }
        });
        format!("http://{address}")
    }

    fn commit_against(status: &'static str, body: &'static str, requirements: &[TableRequirement]) -> Error {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let spec = RestSpec {
                uri: canned_catalog(status, body),
                warehouse: None,
                auth: crate::plan::RestAuth::None,
                oauth2_server_uri: None,
            };
            let file_io =
                super::super::storage::file_io(std::sync::Arc::new(iceberg::io::LocalFsStorageFactory), HashMap::new());
            let catalog = RestCatalog::connect(&spec, file_io).await.map_err(|_| "connect").unwrap();
            let table = TableIdent::from_strs(["bronze", "events"]).unwrap();
            catalog.commit(&table, requirements, &[]).await.unwrap_err()
        })
    }

    #[test]
    fn a_create_answered_not_staged_is_a_lost_race_and_other_404s_are_not() {
        let not_staged =
            r#"{"error": {"message": "bronze.events was not staged.", "type": "NoSuchTableException", "code": 404}}"#;
        let create = commit_against("404 Not Found", not_staged, &[TableRequirement::NotExist]);
        assert_eq!(create.kind(), ErrorKind::CatalogCommitConflicts, "{create}");
        assert!(create.retryable(), "{create}");
        let update = commit_against("404 Not Found", not_staged, &[]);
        assert_eq!(update.kind(), ErrorKind::TableNotFound, "{update}");
        let conflict = commit_against("409 Conflict", "{}", &[TableRequirement::NotExist]);
        assert_eq!(conflict.kind(), ErrorKind::CatalogCommitConflicts, "{conflict}");
    }

    #[test]
    fn encodes_path_segments() {
        assert_eq!(encode("demo_catalog"), "demo_catalog");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(namespace_path(&NamespaceIdent::from_strs(["a", "b"]).unwrap()), "a%1Fb");
    }
}
