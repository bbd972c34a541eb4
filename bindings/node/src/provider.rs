//! The OIDC provider: `Provider`, whose `handle` an Express (or any Node
//! HTTP) app calls to mount every provider endpoint.

use crate::error::run;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::sync::Arc;

#[napi(object)]
pub struct ProviderOptions {
    /// Folder that relative flow paths resolve against (JSON text only). Defaults to ".".
    pub base_dir: Option<String>,
    /// A SQLite file, or a `postgres://` URL (several app servers on one
    /// database are one provider); `{project}` in it is replaced by the
    /// project id. In memory when absent.
    pub database: Option<String>,
    /// Overrides the project's baseUrl (the issuer is `{baseUrl}/{projectId}`).
    pub base_url: Option<String>,
}

/// The provider's answer to one request.
#[napi(object)]
pub struct ProviderResponse {
    pub status: u32,
    /// `[name, value]` pairs, in order (a name may repeat).
    pub headers: Vec<Vec<String>>,
    pub body: Buffer,
}

/// The start of a social login by API: where to send the browser, and the
/// PKCE verifier that `oauthExchange` needs (keep it in the user's own
/// session, never in a URL).
#[napi(object)]
pub struct OAuthStart {
    pub url: String,
    pub code_verifier: String,
}

/// The OpenID Connect provider for one project; `handle` returns a Promise.
#[napi]
pub struct Provider {
    inner: Arc<idflow::oidc::provider::Provider>,
}

type Json = serde_json::Value;

/// The request `handle` was given, checked.
fn http_request(
    env: &Env,
    method: &str,
    url: &str,
    headers: Vec<Vec<String>>,
    body: Option<Buffer>,
    peer: Option<String>,
) -> napi::Result<idflow::oidc::provider::HttpRequest> {
    let mut pairs = Vec::with_capacity(headers.len());
    for h in headers {
        match <[String; 2]>::try_from(h) {
            Ok([k, v]) => pairs.push((k, v)),
            Err(_) => return Err(napi::Error::new(Status::InvalidArg, "headers must be [name, value] pairs")),
        }
    }
    idflow::oidc::provider::HttpRequest::new(method, url, pairs, body.map(|b| b.to_vec()).unwrap_or_default())
        .with_peer_text(peer.as_deref())
        .map_err(|e| crate::error::js_err(env, e))
}

impl From<idflow::oidc::provider::HttpResponse> for ProviderResponse {
    fn from(r: idflow::oidc::provider::HttpResponse) -> Self {
        ProviderResponse { status: u32::from(r.status), headers: r.headers.into_iter().map(|(k, v)| vec![k, v]).collect(), body: r.body.into() }
    }
}

/// Several projects in one app, each at its own issuer
/// (`{baseUrl}/{projectId}`) with every endpoint under it; one project is
/// served as `Provider` serves it. With several, `database` names one
/// store per project with `{project}` (`data/{project}.db`).
#[napi]
pub struct Providers {
    inner: Arc<idflow::oidc::provider::Providers>,
}

#[napi]
impl Providers {
    /// `projects` are project files' JSON texts.
    #[napi(constructor)]
    pub fn new(env: Env, projects: Vec<String>, options: Option<ProviderOptions>) -> napi::Result<Providers> {
        let (base_dir, database, base_url) = options.map_or((None, None, None), |o| (o.base_dir, o.database, o.base_url));
        let inner = run(&env, || {
            let dir = std::path::PathBuf::from(base_dir.as_deref().unwrap_or("."));
            let texts: Vec<&str> = projects.iter().map(String::as_str).collect();
            idflow::oidc::provider::Providers::open_json(&texts, &dir, database.as_deref(), base_url.as_deref())
        })?;
        Ok(Providers { inner: Arc::new(inner) })
    }

    /// Reads project files (JSON, or TOML by the name); a folder stands for
    /// every `.json` and `.toml` file in it.
    #[napi(factory, js_name = "fromFiles")]
    pub fn from_files(env: Env, paths: Vec<String>, options: Option<ProviderOptions>) -> napi::Result<Providers> {
        let (database, base_url) = options.map_or((None, None), |o| (o.database, o.base_url));
        let inner = run(&env, || idflow::oidc::provider::Providers::open_files(&paths, database.as_deref(), base_url.as_deref()))?;
        Ok(Providers { inner: Arc::new(inner) })
    }

    /// Each project's issuer, in the order the projects were given.
    #[napi(getter)]
    pub fn issuers(&self) -> Vec<String> {
        self.inner.providers().iter().map(|p| p.issuer().to_owned()).collect()
    }

    /// The provider of project `projectId` (its engine, users, keys), or null.
    #[napi]
    pub fn provider(&self, project_id: String) -> Option<Provider> {
        self.inner.provider(&project_id).map(|p| Provider { inner: p.clone() })
    }

    /// Every project's metrics (Prometheus text), labelled by project.
    #[napi]
    pub fn metrics(&self) -> String {
        self.inner.metrics()
    }

    /// Handles one request (as `Provider.handle`): the project whose issuer
    /// the path is under answers it.
    #[napi(ts_return_type = "Promise<ProviderResponse>")]
    pub fn handle<'env>(
        &self,
        env: &'env Env,
        method: String,
        url: String,
        headers: Vec<Vec<String>>,
        body: Option<Buffer>,
        peer: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, ProviderResponse>> {
        let request = http_request(env, &method, &url, headers, body, peer)?;
        let providers = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(providers.handle(request).await) }, |_, r| Ok(r.into()))
    }
}

#[napi]
impl Provider {
    /// `project` is the project file's JSON text.
    #[napi(constructor)]
    pub fn new(env: Env, project: String, options: Option<ProviderOptions>) -> napi::Result<Provider> {
        let (base_dir, database, base_url) = options.map_or((None, None, None), |o| (o.base_dir, o.database, o.base_url));
        let inner = run(&env, || {
            let dir = std::path::PathBuf::from(base_dir.as_deref().unwrap_or("."));
            idflow::oidc::provider::Provider::open(&project, &dir, database.as_deref(), base_url.as_deref())
        })?;
        Ok(Provider { inner: Arc::new(inner) })
    }

    /// Reads the project file at `path` (JSON, or TOML by its name).
    #[napi(factory, js_name = "fromFile")]
    pub fn from_file(env: Env, path: String, options: Option<ProviderOptions>) -> napi::Result<Provider> {
        let (database, base_url) = options.map_or((None, None), |o| (o.database, o.base_url));
        let inner = run(&env, || idflow::oidc::provider::Provider::open_file(&path, database.as_deref(), base_url.as_deref()))?;
        Ok(Provider { inner: Arc::new(inner) })
    }

    #[napi(getter)]
    pub fn issuer(&self) -> String {
        self.inner.issuer().to_owned()
    }

    /// The provider's metrics in the Prometheus (OpenMetrics) text format:
    /// serve them where only your monitoring reaches.
    #[napi]
    pub fn metrics(&self) -> String {
        self.inner.metrics()
    }

    /// The provider's flow engine: flows and users management on the same store.
    #[napi(getter)]
    pub fn engine(&self) -> crate::flow::FlowEngine {
        crate::flow::FlowEngine::shared(self.inner.engine().clone())
    }

    /// Handles one request: `url` is the path with its query (or an absolute
    /// URL), `headers` `[name, value]` pairs, `body` the raw bytes, `peer`
    /// the client's IP address (for the per-address rate limits).
    #[napi(ts_return_type = "Promise<ProviderResponse>")]
    pub fn handle<'env>(
        &self,
        env: &'env Env,
        method: String,
        url: String,
        headers: Vec<Vec<String>>,
        body: Option<Buffer>,
        peer: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, ProviderResponse>> {
        let request = http_request(env, &method, &url, headers, body, peer)?;
        let provider = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(provider.handle(request).await) }, |_, r| Ok(r.into()))
    }

    /// Social login by API, step 1: the upstream authorization URL for the
    /// custom OAuth provider `provider` (`options`: redirectUrl, prompt,
    /// loginHint) and a fresh PKCE verifier to keep: `{url, codeVerifier}`.
    /// `redirectUrl` must be approved (the project's `redirectUrls`, or the
    /// provider's own `redirectUrl`).
    #[napi(js_name = "oauthAuthorize", ts_return_type = "Promise<OAuthStart>")]
    pub fn oauth_authorize<'env>(&self, env: &'env Env, provider: String, options: Option<serde_json::Map<String, Json>>) -> napi::Result<PromiseRaw<'env, OAuthStart>> {
        let o = options.unwrap_or_default();
        let p = self.inner.clone();
        env.spawn_future_with_callback(
            // A bad option rejects the promise, as a refused start does.
            async move {
                Ok(async {
                    let o = idflow::options::Options::new(&o, "oauthAuthorize", &["redirectUrl", "prompt", "loginHint"])?;
                    let (redirect, prompt, hint) = (o.string("redirectUrl")?, o.words("prompt")?, o.string("loginHint")?);
                    p.oauth_begin(&provider, redirect.as_deref(), prompt, hint.as_deref()).await
                }
                .await)
            },
            |env, r| r.map(|s| OAuthStart { url: s.url, code_verifier: s.code_verifier }).map_err(|e| crate::error::js_err(env, e)),
        )
    }

    /// Social login by API, step 2: the one-time code and the `codeVerifier`
    /// that `oauthAuthorize` returned → `{sessionJwt, refreshJwt, user}`.
    #[napi(js_name = "oauthExchange", ts_return_type = "Record<string, unknown>")]
    pub fn oauth_exchange(&self, env: Env, code: String, code_verifier: String) -> napi::Result<Json> {
        run(&env, || {
            let info = self.inner.oauth_exchange_code(&code, &code_verifier)?;
            Ok(info.to_json())
        })
    }

    /// The upstream access token kept for a user (`manageProviderTokens`),
    /// refreshed first when expired: `{provider, accessToken, expiresAt, scope}`.
    #[napi(js_name = "providerToken", ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn provider_token<'env>(&self, env: &'env Env, user_id: String, provider: String) -> napi::Result<PromiseRaw<'env, Json>> {
        let p = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(p.provider_token(&user_id, &provider).await) }, |env, r| {
            r.map_err(|e| crate::error::js_err(env, e))
        })
    }

    /// Adds a signing key that every provider on this database publishes
    /// within seconds and signs with after `prepublish` seconds (defaults:
    /// the project's `signing.alg` and `signing.prepublish`); returns
    /// `{kid, alg, signsFrom}`.
    #[napi(js_name = "rotateKeys", ts_return_type = "{ kid: string, alg: string, signsFrom: number }")]
    pub fn rotate_keys(&self, env: Env, alg: Option<String>, prepublish: Option<u32>) -> napi::Result<Json> {
        crate::error::run(&env, || self.inner.rotate_keys(alg.as_deref(), prepublish.map(u64::from)).map(|r| r.to_json()))
    }

    /// The discovery document.
    #[napi(ts_return_type = "Record<string, unknown>")]
    pub fn discovery(&self) -> Json {
        self.inner.discovery()
    }

    /// The configured applications (OIDC clients), without secrets.
    #[napi(ts_return_type = "Record<string, unknown>[]")]
    pub fn applications(&self) -> Json {
        Json::Array(self.inner.applications().iter().map(|a| a.to_json()).collect())
    }

    /// The configured access keys (client_credentials), without secrets.
    #[napi(js_name = "accessKeys", ts_return_type = "Record<string, unknown>[]")]
    pub fn access_keys(&self) -> Json {
        Json::Array(self.inner.access_keys().iter().map(|k| k.to_json()).collect())
    }
}
