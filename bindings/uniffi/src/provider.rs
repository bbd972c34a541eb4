//! The OpenID Connect provider for JVM (Kotlin) and Swift servers: requests
//! in, responses out (`handle`), plus social login by API and the kept
//! upstream tokens. JSON results cross as text.

use idflow::oidc::provider::{HttpRequest, Provider as CoreProvider};
use std::sync::Arc;

/// One header.
#[derive(Debug, Clone, uniffi::Record)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// What the provider answers.
#[derive(Debug, Clone, uniffi::Record)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<HttpHeader>,
    pub body: Vec<u8>,
}

/// The start of a social login by API: where to send the browser, and the
/// PKCE verifier that [`Provider::oauth_exchange`] needs (the core's record).
pub use idflow::oidc::provider::OAuthStart;

/// Opens a project: `project` is the project file's JSON text (flow paths
/// relative to `base_dir`); `database` a SQLite file, or null for memory;
/// `base_url` overrides the project's.
#[uniffi::export(async_runtime = "tokio", default(base_dir = ".", database = None, base_url = None))]
pub async fn provider_open(project: String, base_dir: String, database: Option<String>, base_url: Option<String>) -> Result<Arc<Provider>, crate::IdflowError> {
    let p = CoreProvider::open(&project, std::path::Path::new(&base_dir), database.as_deref(), base_url.as_deref())?;
    Ok(Arc::new(Provider { inner: Arc::new(p) }))
}

/// An OpenID Connect provider for one project.
#[derive(uniffi::Object)]
pub struct Provider {
    inner: Arc<CoreProvider>,
}

#[uniffi::export(async_runtime = "tokio")]
impl Provider {
    pub fn issuer(&self) -> String {
        self.inner.issuer().to_owned()
    }

    /// The discovery document (JSON).
    pub fn discovery(&self) -> String {
        self.inner.discovery().to_string()
    }

    /// Adds a signing key that every provider on this database publishes
    /// within seconds and signs with after `prepublish` seconds (defaults:
    /// the project's `signing.alg` and `signing.prepublish`); returns
    /// `{"kid", "alg", "signsFrom"}` as JSON.
    #[uniffi::method(default(alg = None, prepublish = None))]
    pub fn rotate_keys(&self, alg: Option<String>, prepublish: Option<u64>) -> Result<String, crate::IdflowError> {
        crate::error::guard(|| self.inner.rotate_keys(alg.as_deref(), prepublish).map(|r| r.to_json().to_string()))
    }

    /// The provider's metrics in the Prometheus (OpenMetrics) text format:
    /// serve them where only your monitoring reaches.
    pub fn metrics(&self) -> String {
        self.inner.metrics()
    }

    /// Handles one request; `url` is the path with its query, or an absolute
    /// URL. `peer` is the client's IP address, for the per-address rate
    /// limits (`rateLimits`); without it nothing is counted per address. A
    /// `peer` that is not an IP address is `InvalidRequest`.
    #[uniffi::method(default(peer = None))]
    pub async fn handle(&self, method: String, url: String, headers: Vec<HttpHeader>, body: Vec<u8>, peer: Option<String>) -> Result<HttpResponse, crate::IdflowError> {
        let headers = headers.into_iter().map(|h| (h.name, h.value)).collect();
        let request = HttpRequest::new(&method, &url, headers, body).with_peer_text(peer.as_deref())?;
        let r = self.inner.handle(request).await;
        Ok(HttpResponse {
            status: r.status,
            headers: r.headers.into_iter().map(|(name, value)| HttpHeader { name, value }).collect(),
            body: r.body,
        })
    }

    /// Social login by API, step 1: the upstream authorization URL of custom
    /// OAuth provider `provider` and a fresh PKCE verifier to keep; after the
    /// callback the browser lands on `redirect_url?code=...` (or
    /// `?error=...`). `redirect_url` must be approved: listed (or its origin)
    /// in the project's `redirectUrls`, or the provider's own `redirectUrl`.
    #[uniffi::method(default(redirect_url = None, prompt = None, login_hint = None))]
    pub async fn oauth_authorize(
        &self,
        provider: String,
        redirect_url: Option<String>,
        prompt: Option<Vec<String>>,
        login_hint: Option<String>,
    ) -> Result<OAuthStart, crate::IdflowError> {
        Ok(self.inner.oauth_begin(&provider, redirect_url.as_deref(), prompt, login_hint.as_deref()).await?)
    }

    /// Social login by API, step 2: the one-time code and the verifier that
    /// `oauth_authorize` returned → JSON `{sessionJwt, refreshJwt, user}`.
    pub fn oauth_exchange(&self, code: String, code_verifier: String) -> Result<String, crate::IdflowError> {
        crate::error::guard(|| Ok(self.inner.oauth_exchange_code(&code, &code_verifier)?.to_json().to_string()))
    }

    /// The upstream access token kept for a user (`manageProviderTokens`),
    /// refreshed first when expired: JSON `{provider, accessToken, expiresAt, scope}`.
    pub async fn provider_token(&self, user_id: String, provider: String) -> Result<String, crate::IdflowError> {
        Ok(self.inner.provider_token(&user_id, &provider).await?.to_string())
    }
}
