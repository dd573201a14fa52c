//! JSON `POST`s for the OpenLineage sender, over reqwest's blocking client
//! with rustls (the host's one HTTP stack), so `http://` and `https://`
//! collectors both work (`https://` in builds with the `tls` feature).
//! Every request has a deadline: connecting, and the whole exchange, time
//! out.

use std::fmt;
use std::time::Duration;

/// A collector's URL, checked: `http://` or `https://`, with a host and no
/// credentials (those go in `OPENLINEAGE_API_KEY`, never in a URL that is logged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint(reqwest::Url);

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("`{url}` is not an http:// or https:// URL"));
        }
        if parsed.scheme() == "https" && !cfg!(feature = "tls") {
            return Err(format!(
                "`{url}` needs TLS, and this floe-host was built without it (Cargo feature `tls`); \
                 use a full build (`cargo build -p floe-host`) or an http:// collector"
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("`{url}` has no host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!("`{url}`: credentials in the URL are not supported; set OPENLINEAGE_API_KEY"));
        }
        Ok(Endpoint(parsed))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a POST did not get a 2xx answer.
#[derive(Debug)]
pub enum PostError {
    /// Connecting, sending or reading failed or timed out: worth a retry.
    Transport(String),
    /// The server answered with this status.
    Status(u16, String),
}

impl PostError {
    /// Whether another attempt may succeed (transport errors, 429 and 5xx).
    pub fn retryable(&self) -> bool {
        match self {
            PostError::Transport(_) => true,
            PostError::Status(code, _) => *code == 429 || *code >= 500,
        }
    }
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Transport(e) => write!(f, "{e}"),
            PostError::Status(code, reason) => write!(f, "HTTP {code} ({reason})"),
        }
    }
}

/// A client that POSTs JSON with a bearer token when one is given.
pub struct Poster {
    client: reqwest::blocking::Client,
    api_key: Option<String>,
}

impl Poster {
    /// `connect` bounds each connection attempt, `total` each whole request.
    /// Build it on the thread that uses it: reqwest's blocking client must
    /// not be created or dropped inside an async runtime.
    pub fn new(connect: Duration, total: Duration, api_key: Option<String>) -> Result<Poster, String> {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(connect)
            .timeout(total)
            .user_agent(concat!("floe-host/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Poster { client, api_key })
    }

    pub fn post_json(&self, endpoint: &Endpoint, body: &str) -> Result<u16, PostError> {
        let mut request = self
            .client
            .post(endpoint.0.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().map_err(|e| PostError::Transport(transport_error(&e)))?;
        let status = response.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(PostError::Status(status.as_u16(), status.canonical_reason().unwrap_or("").to_string()))
        }
    }
}

/// reqwest's error with its causes (the useful part is often the innermost).
fn transport_error(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() { "timed out".to_string() } else { error.to_string() };
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

    #[test]
    fn parses_endpoints() {
        let e = Endpoint::parse("http://marquez:5000/api/v1/lineage").unwrap();
        assert_eq!(e.to_string(), "http://marquez:5000/api/v1/lineage");
        assert!(Endpoint::parse("https://marquez/api/v1/lineage").is_ok());
        assert!(Endpoint::parse("marquez:5000").unwrap_err().contains("not an http"), "a bare host:port");
        assert!(Endpoint::parse("ftp://marquez/x").is_err());
        assert!(Endpoint::parse("http://user:secret@marquez/x").unwrap_err().contains("OPENLINEAGE_API_KEY"));
    }
}
