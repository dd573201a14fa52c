//! Authentication to a REST catalog: a static bearer token, or the OAuth2
//! client-credentials flow with a token that is refreshed before it expires
//! (and once more if the catalog rejects it), so long runs keep working.
//!
//! Secrets stay in [`Secret`]s: no error or log line carries one.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::Secret;
use crate::plan::RestAuth;

/// Refresh this long before the token's stated expiry.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Assumed lifetime of a token whose response states none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The endpoint answered and refused the credentials: retrying will not help.
    #[error(
        "the OAuth2 token endpoint {endpoint} rejected the client credentials ({status}{detail}); \
         check the catalog's `credentials.client_id` and `credentials.client_secret` secret refs"
    )]
    Rejected { endpoint: String, status: StatusCode, detail: String },
    /// The endpoint could not be reached or answered with something else.
    #[error("the OAuth2 token endpoint {endpoint} failed: {message}")]
    Failed { endpoint: String, message: String },
}

/// How requests to one catalog are authenticated.
pub(super) enum Auth {
    None,
    Bearer(Secret),
    OAuth2(OAuth2),
}

pub(super) struct OAuth2 {
    endpoint: String,
    client_id: Secret,
    client_secret: Secret,
    scope: Option<String>,
    token: Mutex<Option<Token>>,
}

struct Token {
    value: Secret,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl Auth {
    /// `token_endpoint` is the spec's `oauth2_server_uri`, or the catalog's
    /// own `/v1/oauth/tokens` when none is given.
    pub fn new(spec: &RestAuth, token_endpoint: String) -> Self {
        match spec {
            RestAuth::None => Auth::None,
            RestAuth::Bearer { token } => Auth::Bearer(token.clone()),
            RestAuth::Oauth2 { client_id, client_secret, scope } => Auth::OAuth2(OAuth2 {
                endpoint: token_endpoint,
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                scope: scope.clone(),
                token: Mutex::new(None),
            }),
        }
    }

    /// The `Authorization` header value, fetching or refreshing a token as needed.
    pub async fn header(&self, http: &Client) -> Result<Option<String>, AuthError> {
        match self {
            Auth::None => Ok(None),
            Auth::Bearer(token) => Ok(Some(format!("Bearer {}", token.expose()))),
            Auth::OAuth2(oauth) => oauth.header(http).await.map(Some),
        }
    }

    /// Forgets the current OAuth2 token after the catalog refused it; returns
    /// whether a new one can be fetched (a static token cannot).
    pub async fn invalidate(&self) -> bool {
        match self {
            Auth::OAuth2(oauth) => {
                *oauth.token.lock().await = None;
                true
            }
            _ => false,
        }
    }
}

impl OAuth2 {
    async fn header(&self, http: &Client) -> Result<String, AuthError> {
        let mut token = self.token.lock().await;
        if let Some(current) = token.as_ref()
            && Instant::now() < current.refresh_at
        {
            return Ok(format!("Bearer {}", current.value.expose()));
        }
        let fresh = self.fetch(http).await?;
        let header = format!("Bearer {}", fresh.value.expose());
        *token = Some(fresh);
        Ok(header)
    }

    async fn fetch(&self, http: &Client) -> Result<Token, AuthError> {
        let failed = |message: String| AuthError::Failed { endpoint: self.endpoint.clone(), message };
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.expose()),
            ("client_secret", self.client_secret.expose()),
        ];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let started = Instant::now();
        let response = http
            .post(&self.endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| failed(format!("cannot reach it: {}", super::describe(&e))))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| failed(format!("cannot read its answer: {e}")))?;
        if status.is_success() {
            let parsed: TokenResponse = serde_json::from_slice(&body)
                .map_err(|e| failed(format!("its answer is not an OAuth2 token response: {e}")))?;
            let lifetime = parsed.expires_in.map(Duration::from_secs).unwrap_or(DEFAULT_LIFETIME);
            let refresh_at = started + lifetime.saturating_sub(REFRESH_MARGIN).max(lifetime / 2);
            tracing::debug!(endpoint = %self.endpoint, lifetime_s = lifetime.as_secs(), "Fetched an OAuth2 token.");
            return Ok(Token { value: Secret::new(parsed.access_token), refresh_at });
        }
        let detail = match serde_json::from_slice::<TokenError>(&body) {
            Ok(e) => format!(" {}{}", e.error, e.error_description.map(|d| format!(": {d}")).unwrap_or_default()),
            Err(_) => String::new(),
        };
        if matches!(status, StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            Err(AuthError::Rejected { endpoint: self.endpoint.clone(), status, detail })
        } else {
            Err(failed(format!("it answered {status}{detail}")))
        }
    }
}
