//! The OpenID Connect provider, sans-IO: [`Provider::handle`] takes an
//! [`HttpRequest`] and returns an [`HttpResponse`], so the `idflow serve`
//! server, a Python web app and a Node web app mount the same endpoints.
//!
//! Paths (README, "OpenID Connect provider") are relative to the
//! base URL's path: discovery and JWKS under the issuer
//! (`{base}/{project_id}/.well-known/...`), the OAuth endpoints under
//! `/oauth2/v1/`, the flow API under `/v1/flow/`, the hosted login page at
//! `/login/{project_id}`.
//!
//! State lives in the [`Store`] as typed records, one type per kind
//! (`state.rs`): pending authorization requests, codes (by the SHA-256 of
//! the code), grants (one per authorization: every token issued from it is
//! revoked together), refresh tokens (by digest), the provider's browser
//! sessions, revoked access tokens, social-login states, signing keys and
//! rate-limit counters.

mod authorize;
mod client_auth;
mod completion;
mod claims;
pub mod config;
mod endpoints;
mod flow_api;
pub mod http;
pub mod keys;
pub mod limits;
mod minting;
mod pages;
mod request_object;
mod routes;
mod several;
mod state;
mod metrics;
mod management;
mod social_login;
mod token;

pub use config::{AccessKey, Application, AuthMethod, STANDARD_SCOPES};
pub use http::{HttpRequest, HttpResponse};
pub use keys::SigningKeys;
pub use several::Providers;
pub use social_login::OAuthStart;
use crate::vault::Vault;
use keys::Live;
use routes::{with_cors, Route};

use crate::error::{Error, ErrorCode, Result};
use crate::flow::FlowEngine;
use crate::oidc::discovery::ProviderMetadata;
use crate::jose::JwksCache;
use crate::project::Project;
use crate::store::Store;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The name of the provider's session cookie.
pub const SESSION_COOKIE: &str = "idflow_session";
/// The cookie that binds authorization requests and flow executions to
/// the browser that started them.
pub const BROWSER_COOKIE: &str = "idflow_browser";
/// How long the browser binding lives (seconds); renewed on every use.
const BROWSER_TTL: u64 = 24 * 3600;

/// A browser's binding: the digest kept with what it started, and the
/// `Set-Cookie` value that (re)sets it.
pub(crate) struct BrowserBinding {
    pub digest: String,
    pub cookie: String,
}
/// How long an authorization request waits for its flow to finish.
pub const AUTH_REQUEST_TTL: u64 = 600;


/// The provider: configuration, keys, the flow engine and the store.
pub struct Provider {
    project: Project,
    issuer: String,
    /// The base URL's path without a trailing slash ("" at the root).
    base_path: String,
    base_url: String,
    /// Where the endpoints are below the base URL: "" for a provider
    /// serving alone, `/{projectId}` (its issuer's path) for one of
    /// several projects in one process ([`Providers`]).
    mount: String,
    /// `base_path` and `mount`: the path every endpoint is below.
    route_base: String,
    apps: HashMap<String, Application>,
    access_keys: HashMap<String, AccessKey>,
    engine: Arc<FlowEngine>,
    store: Arc<dyn Store>,
    /// The signing keys and the discovery document made with them,
    /// reloaded from the store every [`keys::KEY_REFRESH_SECS`].
    live: std::sync::RwLock<Arc<Live>>,
    /// When the keys were last loaded (seconds).
    keys_loaded: std::sync::atomic::AtomicU64,
    /// Held from reading the keys to installing them, so an older read
    /// never replaces a newer one.
    keys_reload: std::sync::Mutex<()>,
    /// How long a superseded key stays published (seconds).
    max_token_ttl: u64,
    client_jwks: HashMap<String, JwksCache>,
    secure_cookies: bool,
    social: Arc<social_login::SocialLogin>,
    vault: Vault,
    limits: limits::RateLimits,
    proxies: limits::TrustedProxies,
    metrics: metrics::Metrics,
    management_keys: Vec<management::ManagementKey>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

/// Hash-keyed store ids, so a leaked database does not leak usable tokens.
pub(crate) fn token_digest(token: &str) -> String {
    crate::b64::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref())
}

/// Space-separated scope string → deduplicated list in order.
pub(crate) fn split_scope(scope: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

impl Provider {
    /// Builds the provider for `project` over `store`, creating the signing
    /// key on first start.
    pub fn new(project: Project, store: Arc<dyn Store>) -> Result<Provider> {
        Provider::build(project, store, None)
    }

    /// Builds the provider with every endpoint under its issuer's path
    /// (`{base}/{projectId}/oauth2/v1/...`) and its cookies scoped to it,
    /// as one of several projects served together ([`Providers`]), its
    /// metrics in `shared`'s families.
    fn new_mounted(project: Project, store: Arc<dyn Store>, shared: &metrics::Metrics) -> Result<Provider> {
        Provider::build(project, store, Some(shared))
    }

    fn build(project: Project, store: Arc<dyn Store>, mounted: Option<&metrics::Metrics>) -> Result<Provider> {
        // A retired key stays published (and trusted, here and by relying
        // parties) as long as the tokens the provider itself verifies and
        // relying parties keep: access and ID tokens (sessionTtl), codes. Not
        // for the flow API's refresh JWTs (refreshTtl, 30 days by default):
        // a key retired because it leaked must not stay trusted that long,
        // and idflow never verifies those JWTs itself.
        let max_ttl = project.session_ttl.max(project.code_ttl);
        let vault = Vault::open(project.extra.get("encryption"), &*store)?;
        let keys = keys::load_or_create(&*store, &vault, project.signing_alg, max_ttl)?;
        Provider::with_keys(project, store, keys, vault, max_ttl, mounted)
    }

    fn with_keys(
        project: Project,
        store: Arc<dyn Store>,
        keys: SigningKeys,
        vault: Vault,
        max_token_ttl: u64,
        mounted: Option<&metrics::Metrics>,
    ) -> Result<Provider> {
        let base = url::Url::parse(&project.base_url).map_err(|_| Error::config("baseUrl is not a URL"))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::config("baseUrl must be an http or https URL"));
        }
        let base_url = project.base_url.trim_end_matches('/').to_owned();
        let base_path = base.path().trim_end_matches('/').to_owned();
        let mount = match mounted {
            Some(_) => format!("/{}", crate::store::safe_project_id(&project.project_id)?),
            None => String::new(),
        };
        let mut apps = HashMap::new();
        for (i, v) in project.extra.get("applications").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let mut app = Application::from_json(v, i)?;
            // `flows` defaults to the application's `flow` alone, which
            // defaults to the project's first flow.
            if app.flows.is_empty() {
                app.flows.extend(app.flow.clone().or_else(|| project.flows.first().map(|f| f.id.clone())));
            }
            if app.flow.is_none() {
                app.flow = app.flows.first().cloned();
            }
            for f in app.flows.iter().chain(app.flow.iter()) {
                if !project.flows.iter().any(|x| &x.id == f) {
                    return Err(Error::config(format!("application {:?} names flow {f:?}, which the project does not have", app.client_id)));
                }
            }
            if let Some(f) = app.flow.as_ref().filter(|f| !app.flows.contains(f)) {
                return Err(Error::config(format!("application {:?}: its flow {f:?} is not one of its flows", app.client_id)));
            }
            if apps.contains_key(&app.client_id) {
                return Err(Error::config(format!("application {:?} is declared twice", app.client_id)));
            }
            apps.insert(app.client_id.clone(), app);
        }
        // The project file checked the type of `applications` (an array, or null).
        let mut access_keys = HashMap::new();
        for (i, v) in project.extra.get("accessKeys").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let key = AccessKey::from_json(v, i)?;
            if apps.contains_key(&key.id) || access_keys.contains_key(&key.id) {
                return Err(Error::config(format!("access key id {:?} is already used by an application or key", key.id)));
            }
            access_keys.insert(key.id.clone(), key);
        }
        let mut client_jwks = HashMap::new();
        for app in apps.values() {
            if let Some(config::ClientKeys::Uri(uri)) = &app.keys {
                client_jwks.insert(app.client_id.clone(), JwksCache::new(uri, Default::default())?);
            }
        }
        // Every store call the provider and its flows make is timed.
        let metrics = match mounted {
            Some(shared) => shared.for_project(&project.project_id),
            None => metrics::Metrics::new(),
        };
        let store: Arc<dyn Store> = Arc::new(crate::store::Metered::new(store, metrics.store_observer()));
        let oauth = crate::oidc::upstream::OAuthProviders::from_json(project.extra.get("oauthProviders"), &format!("{base_url}{mount}"), &keys.active)?;
        let social = Arc::new(social_login::SocialLogin::new(oauth, store.clone()));
        let mut engine = project.engine(keys.active.clone(), store.clone())?;
        engine.set_oauth(social.clone());
        let engine = Arc::new(engine);
        let issuer = project.issuer();
        let mut provider = Provider {
            secure_cookies: base.scheme() == "https",
            issuer,
            route_base: format!("{base_path}{mount}"),
            base_path,
            base_url,
            mount,
            apps,
            access_keys,
            engine,
            store,
            live: std::sync::RwLock::new(Arc::new(Live { keys: Arc::new(keys), discovery_json: String::new() })),
            keys_loaded: std::sync::atomic::AtomicU64::new(crate::ids::now_secs()),
            keys_reload: std::sync::Mutex::new(()),
            max_token_ttl,
            client_jwks,
            social,
            vault,
            limits: limits::RateLimits::from_json(project.extra.get("rateLimits"))?,
            proxies: limits::TrustedProxies::from_json(project.extra.get("trustedProxies"))?,
            metrics,
            management_keys: management::keys_from_json(project.extra.get("management"))?,
            project,
        };
        let keys = provider.keys();
        let discovery_json = provider.metadata_for(&keys).to_json().to_string();
        provider.live = std::sync::RwLock::new(Arc::new(Live { keys, discovery_json }));
        Ok(provider)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The provider's flow engine (shared: flows and users management run
    /// on the same store and keys).
    pub fn engine(&self) -> &Arc<FlowEngine> {
        &self.engine
    }

    /// Opens a provider from project JSON text (flow paths relative to
    /// `base_dir`), on the store `database` names (a SQLite file or a
    /// PostgreSQL URL, `{project}` replaced by the project id) or in memory, with
    /// `base_url` overriding the project's. What the bindings construct.
    pub fn open(project_json: &str, base_dir: &std::path::Path, database: Option<&str>, base_url: Option<&str>) -> Result<Provider> {
        let mut project = Project::from_json(project_json, base_dir)?;
        project.override_base_url(base_url);
        let store = crate::store::open_for_project(database, &project.project_id)?;
        Provider::new(project, store)
    }

    /// Like [`Provider::open`], reading a project file (JSON or TOML).
    pub fn open_file(path: &str, database: Option<&str>, base_url: Option<&str>) -> Result<Provider> {
        let mut project = Project::from_file(path)?;
        project.override_base_url(base_url);
        let store = crate::store::open_for_project(database, &project.project_id)?;
        Provider::new(project, store)
    }

    pub fn application(&self, client_id: &str) -> Option<&Application> {
        self.apps.get(client_id)
    }

    /// Applications ordered by client id.
    pub fn applications(&self) -> Vec<&Application> {
        let mut apps: Vec<&Application> = self.apps.values().collect();
        apps.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        apps
    }

    /// Access keys ordered by id.
    pub fn access_keys(&self) -> Vec<&AccessKey> {
        let mut keys: Vec<&AccessKey> = self.access_keys.values().collect();
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        keys
    }

    /// An absolute URL for a provider path (`/oauth2/v1/token`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.base_url, self.mount)
    }


    /// The discovery document (OpenID Connect Discovery 1.0 §3), as JSON.
    pub fn discovery(&self) -> Value {
        self.metadata().to_json()
    }

    /// What the discovery document says about this provider.
    pub fn metadata(&self) -> ProviderMetadata {
        self.metadata_for(&self.keys())
    }

    fn metadata_for(&self, keys: &SigningKeys) -> ProviderMetadata {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
        let mut response_types = vec!["code"];
        for t in ["id_token", "id_token token"] {
            if self.apps.values().any(|a| a.response_types.iter().any(|r| r == t)) {
                response_types.push(t);
            }
        }
        let signing: Vec<&str> = request_object::client_signing_algs().iter().map(|a| a.as_str()).collect();
        let auth_methods = strings(&["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]);
        ProviderMetadata {
            issuer: self.issuer.clone(),
            authorization_endpoint: self.url("/oauth2/v1/authorize"),
            token_endpoint: self.url("/oauth2/v1/token"),
            userinfo_endpoint: Some(self.url("/oauth2/v1/userinfo")),
            jwks_uri: Some(format!("{}/.well-known/jwks.json", self.issuer)),
            end_session_endpoint: Some(self.url("/oauth2/v1/logout")),
            revocation_endpoint: Some(self.url("/oauth2/v1/revoke")),
            response_types_supported: strings(&response_types),
            response_modes_supported: strings(&["query", "form_post"]),
            subject_types_supported: strings(&["public"]),
            // The signing key's first, then those of published keys: tokens of
            // a superseded key stay valid, and a prepublished key's are coming.
            id_token_signing_alg_values_supported: {
                let mut algs = vec![keys.alg.as_str().to_owned()];
                for a in keys.published.keys().iter().filter_map(|k| k.alg()) {
                    if !algs.iter().any(|x| x == a.as_str()) {
                        algs.push(a.as_str().to_owned());
                    }
                }
                algs
            },
            scopes_supported: strings(&STANDARD_SCOPES),
            claims_supported: self.supported_claims(),
            grant_types_supported: strings(&["authorization_code", "refresh_token", "client_credentials"]),
            code_challenge_methods_supported: strings(&["S256"]),
            token_endpoint_auth_methods_supported: auth_methods.clone(),
            token_endpoint_auth_signing_alg_values_supported: strings(&signing),
            revocation_endpoint_auth_methods_supported: auth_methods,
            prompt_values_supported: strings(&["none", "login", "consent", "select_account"]),
            acr_values_supported: self.project.flows.iter().map(|f| f.id.clone()).collect(),
            claims_parameter_supported: Some(true),
            request_parameter_supported: Some(true),
            request_object_signing_alg_values_supported: ["none"].into_iter().chain(signing.iter().copied()).map(str::to_owned).collect(),
            request_uri_parameter_supported: Some(false),
            authorization_response_iss_parameter_supported: Some(true),
        }
    }

    /// Handles one HTTP request.
    pub async fn handle(&self, req: HttpRequest) -> HttpResponse {
        let started = std::time::Instant::now();
        let base = &self.route_base;
        let path = match req.path.strip_prefix(base.as_str()) {
            Some(rest) if !base.is_empty() => rest.to_owned(),
            _ => req.path.clone(),
        };
        let path = if path.is_empty() { "/".to_owned() } else { path };
        let Some(route) = Route::at(&path, &self.project.project_id, !self.mount.is_empty()) else {
            self.metrics.request("unknown", 404, started.elapsed().as_secs_f64());
            return HttpResponse::json(404, &json!({"error": "not_found", "error_description": "no such endpoint"}));
        };
        let response = self.answer(route, &path, req).await;
        self.metrics.request(route.name(), response.status, started.elapsed().as_secs_f64());
        response
    }

    /// The provider's metrics in the Prometheus text format (version
    /// 0.0.4 / OpenMetrics text): requests by route and status, their
    /// latency, tokens by grant type, flow answers by outcome, store calls
    /// by operation and the store's pool. Serve it
    /// where only your monitoring reaches (`idflow serve --metrics-addr`).
    pub fn metrics(&self) -> String {
        self.metrics.set_pool(self.store.pool_use());
        self.metrics.encode()
    }

    async fn answer(&self, route: Route, path: &str, req: HttpRequest) -> HttpResponse {
        let method = req.method.as_str();
        if method == "OPTIONS" && route.cors() {
            return with_cors(HttpResponse::new(204).with_header("Access-Control-Max-Age", "600"));
        }
        let response = if !route.methods().contains(&method) {
            HttpResponse::json_no_store(405, &json!({"error": "invalid_request", "error_description": "method not allowed"}))
                .with_header("Allow", route.methods().join(", "))
        } else {
            match route {
                Route::Favicon => HttpResponse::new(204).with_header("Cache-Control", "public, max-age=86400"),
                Route::Health => HttpResponse::json(200, &json!({"status": "ok"})).with_header("Cache-Control", "no-store"),
                Route::Discovery => {
                    HttpResponse::json_text(200, self.live().discovery_json.clone()).with_header("Cache-Control", "public, max-age=300")
                }
                Route::Jwks => HttpResponse::json_text(200, self.keys().jwks_json.clone()).with_header("Cache-Control", "public, max-age=300"),
                Route::Authorize => self.authorize(&req).await,
                Route::AuthorizeComplete => self.complete_page(&req),
                Route::Token => self.token(&req).await,
                Route::Userinfo => self.userinfo(&req),
                Route::Revoke => self.revoke(&req).await,
                Route::Logout => self.logout(&req),
                Route::FlowStart => self.flow_start(&req).await,
                Route::FlowNext => self.flow_next(&req).await,
                Route::FlowLink => self.flow_link(&req),
                Route::OAuthAuthorize => self.oauth_authorize(&req).await,
                Route::OAuthExchange => self.oauth_exchange(&req).await,
                Route::OAuthCallback => self.oauth_callback(&req).await,
                Route::LoginPage => pages::login_page(),
                Route::Management => self.management(&req, path).await,
            }
        };
        let response = if response.status == 429 {
            response.with_header("Retry-After", self.limits.retry_after().to_string())
        } else {
            response
        };
        if route.cors() {
            with_cors(response)
        } else {
            response
        }
    }

    /// The provider's records in its store.
    pub(crate) fn records(&self) -> state::Records<'_> {
        state::Records(self.store.as_ref())
    }

    /// Revokes a grant: every refresh token and access token issued from it.
    pub(crate) fn revoke_grant(&self, grant_id: &str) -> Result<()> {
        if let Some(mut g) = self.records().get::<state::Grant>(grant_id)? {
            g.revoked = true;
            self.records().put(grant_id, &g, g.expires_at)?;
        }
        Ok(())
    }

    pub(crate) fn grant_live(&self, grant_id: &str) -> Result<bool> {
        Ok(self.live_grant(grant_id)?.is_some())
    }

    /// The grant, unless it is gone or revoked, or the user was signed out
    /// everywhere after the sign-in behind it.
    pub(crate) fn live_grant(&self, grant_id: &str) -> Result<Option<state::Grant>> {
        match self.records().get::<state::Grant>(grant_id)? {
            Some(g) if !g.revoked && !self.sign_in_ended(&g.user_id, g.signed_in_ms())? => Ok(Some(g)),
            _ => Ok(None),
        }
    }

    /// Whether `user_id` was signed out everywhere since a sign-in made at
    /// `signed_in_ms` ([`crate::users::sessions`]).
    pub(crate) fn sign_in_ended(&self, user_id: &str, signed_in_ms: u64) -> Result<bool> {
        crate::users::sessions::sign_in_ended(self.store.as_ref(), user_id, signed_in_ms)
    }

    /// The digest of the browser binding `req` carries, if any.
    pub(crate) fn browser_digest(&self, req: &HttpRequest) -> Option<String> {
        req.cookie(BROWSER_COOKIE).filter(|v| (20..=64).contains(&v.len())).map(token_digest)
    }

    /// The browser binding of `req`: its cookie's, or a new one.
    pub(crate) fn browser_binding(&self, req: &HttpRequest) -> Result<BrowserBinding> {
        let value = match req.cookie(BROWSER_COOKIE).filter(|v| (20..=64).contains(&v.len())) {
            Some(v) => v.to_owned(),
            None => crate::ids::random_id("B")?,
        };
        Ok(BrowserBinding { digest: token_digest(&value), cookie: self.cookie(BROWSER_COOKIE, &value, BROWSER_TTL) })
    }

    fn session_cookie(&self, sid: &str, max_age: u64) -> String {
        self.cookie(SESSION_COOKIE, sid, max_age)
    }

    fn cookie(&self, name: &str, value: &str, max_age: u64) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let path = if self.route_base.is_empty() { "/" } else { &self.route_base };
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }
}

/// An RFC 6749 §5.2 error response for `e`.
pub(crate) fn oauth_error(e: &Error) -> HttpResponse {
    let (status, code) = match e.code {
        ErrorCode::InvalidClient => (401, "invalid_client"),
        ErrorCode::InvalidGrant => (400, "invalid_grant"),
        ErrorCode::UnauthorizedClient => (400, "unauthorized_client"),
        ErrorCode::UnsupportedGrantType => (400, "unsupported_grant_type"),
        ErrorCode::InvalidScope => (400, "invalid_scope"),
        ErrorCode::AccessDenied => (403, "access_denied"),
        ErrorCode::InvalidRequest => (400, "invalid_request"),
        ErrorCode::RateLimited => (429, "rate_limited"),
        ErrorCode::Storage | ErrorCode::Internal | ErrorCode::Network | ErrorCode::Config => {
            return HttpResponse::json_no_store(500, &json!({"error": "server_error", "error_description": "the server could not complete the request"}))
        }
        _ => (400, "invalid_request"),
    };
    HttpResponse::json_no_store(status, &json!({"error": code, "error_description": e.message}))
}
