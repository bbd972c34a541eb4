//! The OpenID Connect client (relying party): discovery, the authorization
//! request (PKCE S256 by default, or the implicit `id_token` grant with
//! `form_post`), callback parsing (state, RFC 9207 `iss`, `error=`), the
//! token exchange with client authentication, id_token validation, userinfo,
//! refresh, revocation and the end-session URL.
//!
//! IO is async on the caller's tokio runtime; pure steps (building the
//! authorization URL, parsing the callback, validating a token response
//! against a key set) are synchronous, so they can be measured and reused.

use crate::error::{Error, ErrorCode, Result};
use crate::ids::{now_secs, random_id};
use crate::jose::{self, Algorithm, JwksCache, JwksCacheOptions, Key, KeySet, Validation};
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// A public client: `client_id` only.
    None,
    ClientSecretBasic(String),
    ClientSecretPost(String),
    /// RFC 7523 client assertion signed with this private key.
    PrivateKeyJwt(Key),
}

/// The OP's endpoints, from discovery or given by hand.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Endpoints {
    pub issuer: Option<String>,
    pub authorization: String,
    pub token: String,
    pub userinfo: Option<String>,
    pub jwks_uri: Option<String>,
    pub end_session: Option<String>,
    pub revocation: Option<String>,
}

impl From<crate::oidc::discovery::ProviderMetadata> for Endpoints {
    fn from(meta: crate::oidc::discovery::ProviderMetadata) -> Endpoints {
        Endpoints {
            issuer: Some(meta.issuer),
            authorization: meta.authorization_endpoint,
            token: meta.token_endpoint,
            userinfo: meta.userinfo_endpoint,
            jwks_uri: meta.jwks_uri,
            end_session: meta.end_session_endpoint,
            revocation: meta.revocation_endpoint,
        }
    }
}

impl Endpoints {
    /// The discovery document's names for the endpoints in use.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"authorization_endpoint": self.authorization, "token_endpoint": self.token});
        for (k, x) in [
            ("issuer", &self.issuer),
            ("userinfo_endpoint", &self.userinfo),
            ("jwks_uri", &self.jwks_uri),
            ("end_session_endpoint", &self.end_session),
            ("revocation_endpoint", &self.revocation),
        ] {
            if let Some(x) = x {
                v[k] = x.clone().into();
            }
        }
        v
    }
}

/// Client settings; `ClientOptions::new` gives the defaults.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub client_id: String,
    pub auth: ClientAuth,
    pub redirect_uri: String,
    /// Defaults to `["openid"]`.
    pub scopes: Vec<String>,
    /// id_token algorithms accepted. Defaults to RS256, PS256, ES256, EdDSA.
    pub id_token_algorithms: Vec<Algorithm>,
    /// Timeout of every outbound call. Defaults to 10 s.
    pub timeout: Duration,
    /// Clock leeway for id_tokens, seconds. Defaults to 60.
    pub leeway: u64,
    /// How long discovered metadata is trusted. Defaults to 1 h.
    pub metadata_ttl: Duration,
}

impl ClientOptions {
    pub fn new(client_id: impl Into<String>, redirect_uri: impl Into<String>, auth: ClientAuth) -> ClientOptions {
        ClientOptions {
            client_id: client_id.into(),
            auth,
            redirect_uri: redirect_uri.into(),
            scopes: vec!["openid".to_owned()],
            id_token_algorithms: vec![Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA],
            timeout: Duration::from_secs(10),
            leeway: 60,
            metadata_ttl: Duration::from_secs(3600),
        }
    }
}

/// Which grant the authorization request starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseType {
    /// `code` with PKCE S256.
    #[default]
    Code,
    /// The implicit `id_token` grant, answered by `form_post`.
    IdToken,
}

/// Per-request choices for [`OidcClient::authorization_request`].
#[derive(Debug, Clone, Default)]
pub struct AuthorizationParams {
    /// Overrides the client's scopes.
    pub scopes: Option<Vec<String>>,
    /// `login`, `consent`, `select_account`, `none`.
    pub prompt: Vec<String>,
    pub login_hint: Option<String>,
    pub max_age: Option<u64>,
    /// Custom authorization-endpoint parameters (e.g. `access_type=offline`).
    pub extra: Vec<(String, String)>,
    pub response_type: ResponseType,
    /// Overrides the client's redirect URI for this request.
    pub redirect_uri: Option<String>,
}

/// What the caller keeps between the redirect and the callback.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizationRequest {
    pub url: String,
    pub state: String,
    pub nonce: String,
    /// `None` for the implicit grant.
    pub code_verifier: Option<String>,
    pub redirect_uri: String,
}

/// A parsed, state-checked callback.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub code: Option<String>,
    pub id_token: Option<String>,
    pub state: String,
}

/// A token endpoint answer; `claims` are the validated id_token's (merged
/// with userinfo when the OP has no JWKS).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSet {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
    pub claims: Option<Map<String, Value>>,
}

impl TokenSet {
    /// The token response's own field names (RFC 6749 §5.1), plus `claims`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"access_token": self.access_token, "token_type": self.token_type});
        for (k, val) in [("refresh_token", &self.refresh_token), ("id_token", &self.id_token), ("scope", &self.scope)] {
            if let Some(x) = val {
                v[k] = x.clone().into();
            }
        }
        if let Some(e) = self.expires_in {
            v["expires_in"] = e.into();
        }
        if let Some(c) = &self.claims {
            v["claims"] = Value::Object(c.clone());
        }
        v
    }

    /// The inverse of [`TokenSet::to_json`]: a token response by its wire
    /// names, checked as the token endpoint's answer would be.
    pub fn from_json(v: &Map<String, Value>) -> Result<TokenSet> {
        let claims = match v.get("claims") {
            None | Some(Value::Null) => None,
            Some(Value::Object(c)) => Some(c.clone()),
            Some(_) => return Err(Error::invalid_request("claims must be an object")),
        };
        let mut tokens = OidcClient::token_response_fields(200, v)?;
        tokens.claims = claims;
        Ok(tokens)
    }
}

/// Client settings by name, as the bindings and the project file give them:
/// `clientId`, `redirectUri`, `clientSecret`, `clientAuth`
/// (`client_secret_basic` — the default with a secret —, `client_secret_post`,
/// `private_key_jwt`, `none` — the default without), `scopes`, `timeout`
/// (seconds), `leeway`, `idTokenAlgorithms`, and either `discoveryUrl`
/// (with an optional expected `issuer`) or the endpoints by hand: `issuer`,
/// `authorizationEndpoint`, `tokenEndpoint`, `userinfoEndpoint`, `jwksUri`,
/// `endSessionEndpoint`, `revocationEndpoint`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub options: ClientOptions,
    pub discovery_url: Option<String>,
    pub issuer: Option<String>,
    pub endpoints: Option<Endpoints>,
}

const CONFIG_FIELDS: [&str; 16] = [
    "clientId", "redirectUri", "clientSecret", "clientAuth", "scopes", "timeout", "leeway", "idTokenAlgorithms",
    "discoveryUrl", "issuer", "authorizationEndpoint", "tokenEndpoint", "userinfoEndpoint", "jwksUri",
    "endSessionEndpoint", "revocationEndpoint",
];

impl ClientConfig {
    /// Parses settings; `private_key` signs `private_key_jwt` assertions.
    pub fn from_json(config: &Map<String, Value>, private_key: Option<Key>) -> Result<ClientConfig> {
        if let Some(k) = config.keys().find(|k| !CONFIG_FIELDS.contains(&k.as_str())) {
            return Err(Error::config(format!("unknown client setting {k:?}")));
        }
        let text = |k: &str| -> Result<Option<String>> {
            match config.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(Error::config(format!("{k} must be a non-empty string"))),
            }
        };
        let client_id = text("clientId")?.ok_or_else(|| Error::config("clientId is required"))?;
        let redirect_uri = text("redirectUri")?.ok_or_else(|| Error::config("redirectUri is required"))?;
        let secret = text("clientSecret")?.map(|s| crate::env::resolve_env(&s)).transpose()?;
        let method = text("clientAuth")?;
        let auth = match (method.as_deref(), secret, private_key) {
            (None | Some("client_secret_basic"), Some(s), None) => ClientAuth::ClientSecretBasic(s),
            (Some("client_secret_post"), Some(s), None) => ClientAuth::ClientSecretPost(s),
            (None | Some("private_key_jwt"), None, Some(k)) => {
                if !k.has_private() {
                    return Err(Error::config("private_key_jwt needs a private key"));
                }
                ClientAuth::PrivateKeyJwt(k)
            }
            (None | Some("none"), None, None) => ClientAuth::None,
            (Some(m @ ("client_secret_basic" | "client_secret_post")), None, _) => {
                return Err(Error::config(format!("{m} needs clientSecret")))
            }
            (Some("private_key_jwt"), _, None) => return Err(Error::config("private_key_jwt needs a private key")),
            (Some(m), _, _) if !["client_secret_basic", "client_secret_post", "private_key_jwt", "none"].contains(&m) => {
                return Err(Error::config(format!("clientAuth {m:?} is not client_secret_basic, client_secret_post, private_key_jwt or none")))
            }
            _ => return Err(Error::config("give exactly one of clientSecret and a private key, matching clientAuth")),
        };
        let mut options = ClientOptions::new(client_id, redirect_uri, auth);
        match config.get("scopes") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                options.scopes = a
                    .iter()
                    .map(|v| v.as_str().filter(|s| !s.is_empty() && !s.contains(' ')).map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| Error::config("scopes must be an array of scope names"))?;
            }
            Some(Value::String(s)) => options.scopes = s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect(),
            Some(_) => return Err(Error::config("scopes must be an array of scope names")),
        }
        match config.get("timeout") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let secs = v.as_f64().filter(|s| *s > 0.0 && *s <= 120.0).ok_or_else(|| Error::config("timeout must be seconds in (0, 120]"))?;
                options.timeout = Duration::from_secs_f64(secs);
            }
        }
        if let Some(v) = config.get("leeway").filter(|v| !v.is_null()) {
            options.leeway = v.as_u64().filter(|l| *l <= 300).ok_or_else(|| Error::config("leeway must be 0 to 300 seconds"))?;
        }
        if let Some(v) = config.get("idTokenAlgorithms").filter(|v| !v.is_null()) {
            let names = v.as_array().ok_or_else(|| Error::config("idTokenAlgorithms must be an array"))?;
            options.id_token_algorithms = names
                .iter()
                .map(|n| n.as_str().ok_or_else(|| Error::config("idTokenAlgorithms must be names")).and_then(Algorithm::parse))
                .collect::<Result<_>>()?;
        }
        let discovery_url = text("discoveryUrl")?;
        let issuer = text("issuer")?;
        let endpoints = match (text("authorizationEndpoint")?, text("tokenEndpoint")?) {
            (Some(authorization), Some(token)) => Some(Endpoints {
                issuer: issuer.clone(),
                authorization,
                token,
                userinfo: text("userinfoEndpoint")?,
                jwks_uri: text("jwksUri")?,
                end_session: text("endSessionEndpoint")?,
                revocation: text("revocationEndpoint")?,
            }),
            (None, None) => None,
            _ => return Err(Error::config("give both authorizationEndpoint and tokenEndpoint, or a discoveryUrl")),
        };
        match (&discovery_url, &endpoints) {
            (Some(_), Some(_)) => Err(Error::config("give a discoveryUrl or the endpoints by hand, not both")),
            (None, None) => Err(Error::config("give a discoveryUrl or authorizationEndpoint and tokenEndpoint")),
            _ => Ok(ClientConfig { options, discovery_url, issuer, endpoints }),
        }
    }
}

impl AuthorizationParams {
    /// Parses `{scopes, prompt, loginHint, maxAge, params, responseType, redirectUri}`.
    pub fn from_json(v: &Map<String, Value>) -> Result<AuthorizationParams> {
        let known = ["scopes", "prompt", "loginHint", "maxAge", "params", "responseType", "redirectUri"];
        if let Some(k) = v.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Error::invalid_request(format!("unknown authorization option {k:?}")));
        }
        let words = |k: &str| -> Result<Option<Vec<String>>> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect())),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .map(Some)
                    .ok_or_else(|| Error::invalid_request(format!("{k} must be strings"))),
                Some(_) => Err(Error::invalid_request(format!("{k} must be a string or an array of strings"))),
            }
        };
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let extra = match v.get("params") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, x)| match x {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Number(n) => Ok((k.clone(), n.to_string())),
                    Value::Bool(b) => Ok((k.clone(), b.to_string())),
                    _ => Err(Error::invalid_request(format!("params.{k} must be a string"))),
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(Error::invalid_request("params must be an object of strings")),
        };
        let response_type = match text("responseType").as_deref() {
            None | Some("code") => ResponseType::Code,
            Some("id_token") => ResponseType::IdToken,
            Some(other) => return Err(Error::invalid_request(format!("responseType {other:?} is not code or id_token"))),
        };
        Ok(AuthorizationParams {
            scopes: words("scopes")?,
            prompt: words("prompt")?.unwrap_or_default(),
            login_hint: text("loginHint"),
            max_age: v.get("maxAge").and_then(Value::as_u64),
            extra,
            response_type,
            redirect_uri: text("redirectUri"),
        })
    }
}

impl AuthorizationRequest {
    pub fn to_json(&self) -> Value {
        json!({"url": self.url, "state": self.state, "nonce": self.nonce, "codeVerifier": self.code_verifier, "redirectUri": self.redirect_uri})
    }

    /// The object `to_json` made (kept by the app between redirect and callback).
    pub fn from_json(v: &Map<String, Value>) -> Result<AuthorizationRequest> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let need = |k: &str| text(k).ok_or_else(|| Error::invalid_request(format!("the authorization request lacks {k}")));
        Ok(AuthorizationRequest {
            url: text("url").unwrap_or_default(),
            state: need("state")?,
            nonce: need("nonce")?,
            code_verifier: text("codeVerifier"),
            redirect_uri: need("redirectUri")?,
        })
    }
}

struct Metadata {
    endpoints: Endpoints,
    fetched: Instant,
}

/// An OIDC client for one OP (see the module doc).
pub struct OidcClient {
    options: ClientOptions,
    discovery_url: Option<String>,
    metadata: Mutex<Metadata>,
    http: reqwest::Client,
    jwks: Mutex<Option<Arc<JwksCache>>>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient").field("client_id", &self.options.client_id).finish_non_exhaustive()
    }
}

fn check_url(url: &str, what: &str) -> Result<()> {
    let u = url::Url::parse(url).map_err(|_| Error::config(format!("{what} is not an absolute URL")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(Error::config(format!("{what} must be http or https")));
    }
    Ok(())
}

/// The parameters of a callback given as a full redirect URL (any scheme:
/// `https://app/cb?...`, `com.example.app:/cb?...`), a path, a query or a
/// `form_post` body (where a `?` is always percent-encoded).
fn callback_query(input: &str) -> &str {
    let is_url = input.starts_with('/') || url::Url::parse(input).is_ok();
    let query = match input.split_once('?') {
        Some((_, q)) if is_url => q,
        _ => input.trim_start_matches('?'),
    };
    query.split('#').next().unwrap_or_default()
}

/// A redirect URI the app gives: RFC 8252 §7's forms, named rule when not.
fn check_redirect_uri(uri: &str, what: &str) -> Result<()> {
    crate::oidc::redirect_uri::classify(uri).map(|_| ()).map_err(|rule| Error::config(format!("{what}: {rule}")))
}

fn net(what: &'static str, timeout: Duration) -> impl Fn(reqwest::Error) -> Error {
    move |e: reqwest::Error| {
        if e.is_timeout() {
            Error::network(format!("{what} timed out after {} s", timeout.as_secs_f64()))
        } else if e.is_connect() {
            Error::network(format!("{what}: could not connect to the server"))
        } else {
            Error::network(format!("{what} failed"))
        }
    }
}

/// Maps an OAuth `error` value (authorization or token response) to a code.
pub fn oauth_error_code(error: &str) -> ErrorCode {
    match error {
        "access_denied" => ErrorCode::AccessDenied,
        "login_required" | "interaction_required" | "account_selection_required" => ErrorCode::LoginRequired,
        "consent_required" => ErrorCode::ConsentRequired,
        "invalid_client" => ErrorCode::InvalidClient,
        "invalid_grant" => ErrorCode::InvalidGrant,
        "unauthorized_client" => ErrorCode::UnauthorizedClient,
        "unsupported_grant_type" => ErrorCode::UnsupportedGrantType,
        "invalid_scope" => ErrorCode::InvalidScope,
        "invalid_token" => ErrorCode::InvalidToken,
        "server_error" | "temporarily_unavailable" => ErrorCode::Network,
        _ => ErrorCode::InvalidRequest,
    }
}

/// An upstream's description, shortened and stripped of control characters.
fn describe(error: &str, description: Option<&str>) -> String {
    let d: String = description.unwrap_or_default().chars().filter(|c| !c.is_control()).take(200).collect();
    if d.is_empty() {
        format!("the provider answered {error}")
    } else {
        format!("the provider answered {error}: {d}")
    }
}

fn str_claim<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

impl OidcClient {
    /// A client for endpoints given by hand.
    pub fn new(options: ClientOptions, endpoints: Endpoints) -> Result<OidcClient> {
        OidcClient::build(options, endpoints, None)
    }

    fn build(options: ClientOptions, endpoints: Endpoints, discovery_url: Option<String>) -> Result<OidcClient> {
        if options.client_id.is_empty() {
            return Err(Error::config("client_id is required"));
        }
        check_redirect_uri(&options.redirect_uri, "redirect_uri")?;
        check_url(&endpoints.authorization, "the authorization endpoint")?;
        check_url(&endpoints.token, "the token endpoint")?;
        for (u, what) in [
            (&endpoints.userinfo, "the userinfo endpoint"),
            (&endpoints.jwks_uri, "jwks_uri"),
            (&endpoints.end_session, "the end-session endpoint"),
            (&endpoints.revocation, "the revocation endpoint"),
        ] {
            if let Some(u) = u {
                check_url(u, what)?;
            }
        }
        if options.id_token_algorithms.is_empty() {
            return Err(Error::config("id_token_algorithms must not be empty"));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .build()
            .map_err(|e| Error::internal(format!("http client could not be built: {e}")))?;
        let jwks = endpoints.jwks_uri.as_deref().map(|u| JwksCache::new(u, JwksCacheOptions { timeout: options.timeout, ..Default::default() })).transpose()?;
        Ok(OidcClient {
            options,
            discovery_url,
            metadata: Mutex::new(Metadata { endpoints, fetched: Instant::now() }),
            http,
            jwks: Mutex::new(jwks.map(Arc::new)),
        })
    }

    /// Discovers the OP from `discovery_url` (`.../.well-known/openid-configuration`).
    /// The document's `issuer` must equal `expected_issuer`, or, when none is
    /// given, the discovery URL without its well-known suffix.
    pub async fn discover(discovery_url: &str, expected_issuer: Option<&str>, options: ClientOptions) -> Result<OidcClient> {
        check_url(discovery_url, "the discovery URL")?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .build()
            .map_err(|e| Error::internal(format!("http client could not be built: {e}")))?;
        let endpoints = fetch_metadata(&http, discovery_url, expected_issuer, options.timeout).await?;
        OidcClient::build(options, endpoints, Some(discovery_url.to_owned()))
    }

    /// A client from [`ClientConfig`]: discovered, or with its endpoints.
    pub async fn from_config(config: ClientConfig) -> Result<OidcClient> {
        match (config.discovery_url, config.endpoints) {
            (Some(url), _) => OidcClient::discover(&url, config.issuer.as_deref(), config.options).await,
            (None, Some(e)) => OidcClient::new(config.options, e),
            (None, None) => Err(Error::config("give a discoveryUrl or the endpoints")),
        }
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// The endpoints in use (discovered or given).
    pub fn endpoints(&self) -> Endpoints {
        self.metadata.lock().unwrap_or_else(|p| p.into_inner()).endpoints.clone()
    }

    /// Re-discovers when the metadata is older than its TTL; a failed fetch
    /// keeps the last good endpoints.
    async fn fresh_endpoints(&self) -> Endpoints {
        let (stale, issuer) = {
            let m = self.metadata.lock().unwrap_or_else(|p| p.into_inner());
            (m.fetched.elapsed() > self.options.metadata_ttl, m.endpoints.issuer.clone())
        };
        if let (true, Some(url)) = (stale, &self.discovery_url) {
            if let Ok(e) = fetch_metadata(&self.http, url, issuer.as_deref(), self.options.timeout).await {
                let mut jwks = self.jwks.lock().unwrap_or_else(|p| p.into_inner());
                let current = jwks.as_ref().map(|j| j.url().to_owned());
                if e.jwks_uri != current {
                    *jwks = e
                        .jwks_uri
                        .as_deref()
                        .and_then(|u| JwksCache::new(u, JwksCacheOptions { timeout: self.options.timeout, ..Default::default() }).ok())
                        .map(Arc::new);
                }
                let mut m = self.metadata.lock().unwrap_or_else(|p| p.into_inner());
                *m = Metadata { endpoints: e, fetched: Instant::now() };
            }
        }
        self.endpoints()
    }

    /// Builds the authorization URL with fresh `state`, `nonce` and (for
    /// `code`) a PKCE S256 verifier, which the caller keeps for the callback.
    pub fn authorization_request(&self, params: &AuthorizationParams) -> Result<AuthorizationRequest> {
        let endpoints = self.endpoints();
        let state = random_id("")?;
        let nonce = random_id("")?;
        let redirect_uri = params.redirect_uri.clone().unwrap_or_else(|| self.options.redirect_uri.clone());
        check_redirect_uri(&redirect_uri, "redirect_uri")?;
        let scopes = params.scopes.clone().unwrap_or_else(|| self.options.scopes.clone());
        let mut pairs: Vec<(String, String)> = vec![
            ("client_id".into(), self.options.client_id.clone()),
            ("redirect_uri".into(), redirect_uri.clone()),
            ("scope".into(), scopes.join(" ")),
            ("state".into(), state.clone()),
            ("nonce".into(), nonce.clone()),
        ];
        let code_verifier = match params.response_type {
            ResponseType::Code => {
                let pair = crate::pkce::generate(None)?;
                pairs.insert(0, ("response_type".into(), "code".into()));
                pairs.push(("code_challenge".into(), pair.challenge));
                pairs.push(("code_challenge_method".into(), "S256".into()));
                Some(pair.verifier)
            }
            ResponseType::IdToken => {
                pairs.insert(0, ("response_type".into(), "id_token".into()));
                pairs.push(("response_mode".into(), "form_post".into()));
                None
            }
        };
        if let Some(p) = params.prompt.iter().find(|p| !["none", "login", "consent", "select_account"].contains(&p.as_str())) {
            return Err(Error::invalid_request(format!("prompt {p:?} is not none, login, consent or select_account")));
        }
        if !params.prompt.is_empty() {
            pairs.push(("prompt".into(), params.prompt.join(" ")));
        }
        if let Some(h) = &params.login_hint {
            pairs.push(("login_hint".into(), h.clone()));
        }
        if let Some(m) = params.max_age {
            pairs.push(("max_age".into(), m.to_string()));
        }
        for (k, v) in &params.extra {
            if pairs.iter().any(|(name, _)| name == k) {
                return Err(Error::invalid_request(format!("custom parameter {k:?} would override a protocol parameter")));
            }
            pairs.push((k.clone(), v.clone()));
        }
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let url = crate::oidc::params::append_query(&endpoints.authorization, &refs);
        Ok(AuthorizationRequest { url, state, nonce, code_verifier, redirect_uri })
    }

    /// Parses a callback: a full redirect URL, its query (`?a=b` or `a=b`)
    /// or a `form_post` body. Checks `state`, maps `error=` to error codes
    /// and checks the RFC 9207 `iss` when present.
    pub fn parse_callback(&self, input: &str, expected_state: &str) -> Result<Callback> {
        let params = self.callback_params(input, expected_state)?;
        if let Some(error) = params.get("error") {
            return Err(Error::new(oauth_error_code(error), describe(error, params.get("error_description"))));
        }
        let state = params.get("state").unwrap_or_default();
        let code = params.get("code").map(str::to_owned);
        let id_token = params.get("id_token").map(str::to_owned);
        if code.is_none() && id_token.is_none() {
            return Err(Error::invalid_request("the callback has neither code nor id_token"));
        }
        Ok(Callback { code, id_token, state: state.to_owned() })
    }

    /// The parameters of a callback that answers the request whose state is
    /// `expected_state`, whatever its outcome: no parameter repeated, the
    /// RFC 9207 `iss` when present, the state (constant time). A callback
    /// refused here is not that request's and must change nothing.
    pub(crate) fn callback_params(&self, input: &str, expected_state: &str) -> Result<crate::oidc::params::Params> {
        let params = crate::oidc::params::Params::parse(callback_query(input).as_bytes());
        if let Some(name) = params.repeated() {
            return Err(Error::invalid_request(format!("callback parameter {name} is repeated")));
        }
        if let Some(iss) = params.get("iss") {
            if self.endpoints().issuer.as_deref().is_some_and(|i| i != iss) {
                return Err(Error::new(ErrorCode::InvalidIssuer, "the callback's iss is not this provider's issuer (mix-up?)"));
            }
        }
        let state = params.get("state").unwrap_or_default();
        if !crate::pkce::constant_time_eq(state.as_bytes(), expected_state.as_bytes()) || expected_state.is_empty() {
            return Err(Error::invalid_request("state mismatch: the callback is not for this authorization request"));
        }
        Ok(params)
    }

    fn validation(&self, issuer: Option<&str>) -> Validation {
        let mut v = Validation::new(&self.options.id_token_algorithms);
        v.issuer = issuer.map(str::to_owned);
        v.audience = vec![self.options.client_id.clone()];
        v.leeway = self.options.leeway;
        v.required_claims = vec!["iss".into(), "sub".into(), "aud".into(), "exp".into(), "iat".into()];
        v
    }

    /// Checks a verified id_token's claims beyond signature, iss, aud and
    /// times: azp, nonce and at_hash.
    fn check_id_token_claims(&self, claims: &Map<String, Value>, alg: Option<Algorithm>, nonce: Option<&str>, access_token: Option<&str>) -> Result<()> {
        let multi_aud = matches!(claims.get("aud"), Some(Value::Array(a)) if a.len() > 1);
        match str_claim(claims, "azp") {
            Some(azp) if azp != self.options.client_id => {
                return Err(Error::new(ErrorCode::InvalidAudience, "id_token azp is another client"))
            }
            None if multi_aud => return Err(Error::new(ErrorCode::InvalidAudience, "id_token has several audiences and no azp")),
            _ => {}
        }
        if let Some(expected) = nonce {
            match str_claim(claims, "nonce") {
                Some(n) if crate::pkce::constant_time_eq(n.as_bytes(), expected.as_bytes()) => {}
                Some(_) => return Err(Error::invalid_token("id_token nonce mismatch (replayed or foreign token)")),
                None => return Err(Error::invalid_token("id_token has no nonce but one was sent")),
            }
        }
        if let (Some(at_hash), Some(at), Some(alg)) = (str_claim(claims, "at_hash"), access_token, alg) {
            if at_hash != alg.half_hash(at) {
                return Err(Error::invalid_token("id_token at_hash does not match the access token"));
            }
        }
        Ok(())
    }

    /// Validates an id_token against `keys` (signature, iss, aud, azp,
    /// exp/iat, nonce, at_hash when present). Synchronous: no IO.
    pub fn validate_id_token_with(&self, keys: &KeySet, id_token: &str, nonce: Option<&str>, access_token: Option<&str>) -> Result<Map<String, Value>> {
        let issuer = self.endpoints().issuer;
        let token = jose::verify(id_token, keys, &self.validation(issuer.as_deref()))?;
        let alg = token.header.get("alg").and_then(Value::as_str).and_then(|a| Algorithm::parse(a).ok());
        self.check_id_token_claims(&token.claims, alg, nonce, access_token)?;
        Ok(token.claims)
    }

    /// Validates an id_token with the OP's JWKS (cached; an unknown `kid`
    /// refetches once).
    pub async fn validate_id_token(&self, id_token: &str, nonce: Option<&str>, access_token: Option<&str>) -> Result<Map<String, Value>> {
        let endpoints = self.fresh_endpoints().await;
        let jwks = self.jwks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let jwks = jwks.ok_or_else(|| Error::config("this provider has no jwks_uri: id_tokens cannot be verified (claims come from userinfo)"))?;
        let token = jwks.verify(id_token, &self.validation(endpoints.issuer.as_deref())).await?;
        let alg = token.header.get("alg").and_then(Value::as_str).and_then(|a| Algorithm::parse(a).ok());
        self.check_id_token_claims(&token.claims, alg, nonce, access_token)?;
        Ok(token.claims)
    }

    /// Verifies a stored id_token: signature through the JWKS cache, iss,
    /// aud and azp. Its expiry is not checked (a session outlives the
    /// id_token it started with); nonce and at_hash were checked at sign-in.
    pub async fn verify_id_token_signature(&self, id_token: &str) -> Result<Map<String, Value>> {
        let endpoints = self.fresh_endpoints().await;
        let jwks = self.jwks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let jwks = jwks.ok_or_else(|| Error::config("this provider has no jwks_uri: id_tokens cannot be verified"))?;
        // The clock is set to the token's own iat, so exp/nbf pass while the
        // signature, issuer and audience are still checked.
        let iat = id_token
            .split('.')
            .nth(1)
            .and_then(crate::b64::decode)
            .and_then(|p| crate::json::parse_object(&p).ok())
            .and_then(|c| c.get("iat").and_then(Value::as_u64))
            .ok_or_else(|| Error::invalid_token("the id_token has no iat"))?;
        let mut validation = self.validation(endpoints.issuer.as_deref());
        validation.now = Some(iat);
        let token = jwks.verify(id_token, &validation).await?;
        self.check_id_token_claims(&token.claims, None, None, None)?;
        Ok(token.claims)
    }

    /// Parses a token endpoint answer (RFC 6749 §5.1/§5.2) without IO.
    pub fn parse_token_response(status: u16, body: &[u8]) -> Result<TokenSet> {
        let doc = crate::json::parse_object(body).map_err(|_| {
            Error::network(format!("the token endpoint answered HTTP {status} without a JSON object"))
        })?;
        OidcClient::token_response_fields(status, &doc)
    }

    /// The checks and fields of a parsed token response.
    fn token_response_fields(status: u16, doc: &Map<String, Value>) -> Result<TokenSet> {
        if let Some(error) = str_claim(doc, "error") {
            return Err(Error::new(oauth_error_code(error), describe(error, str_claim(doc, "error_description"))));
        }
        if !(200..300).contains(&status) {
            return Err(Error::network(format!("the token endpoint answered HTTP {status}")));
        }
        let access_token = str_claim(doc, "access_token")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::invalid_token("the token response has no access_token"))?
            .to_owned();
        let token_type = str_claim(doc, "token_type").unwrap_or_default().to_owned();
        if !token_type.eq_ignore_ascii_case("bearer") && !token_type.eq_ignore_ascii_case("dpop") {
            return Err(Error::invalid_token(format!("unsupported token_type {token_type:?}")));
        }
        let expires_in = match doc.get("expires_in") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            Some(_) => None,
        };
        Ok(TokenSet {
            access_token,
            token_type,
            expires_in,
            refresh_token: str_claim(doc, "refresh_token").map(str::to_owned),
            id_token: str_claim(doc, "id_token").map(str::to_owned),
            scope: str_claim(doc, "scope").map(str::to_owned),
            claims: None,
        })
    }

    /// The client-side work of one callback, network excluded: state check,
    /// token-response parse and id_token validation against `keys`.
    pub fn complete_with(&self, keys: &KeySet, callback_url: &str, expected_state: &str, nonce: &str, token_status: u16, token_body: &[u8]) -> Result<TokenSet> {
        self.parse_callback(callback_url, expected_state)?;
        let mut tokens = OidcClient::parse_token_response(token_status, token_body)?;
        let id_token = tokens.id_token.as_deref().ok_or_else(|| Error::invalid_token("the token response has no id_token"))?;
        tokens.claims = Some(self.validate_id_token_with(keys, id_token, Some(nonce), Some(&tokens.access_token))?);
        Ok(tokens)
    }

    async fn post_token(&self, endpoints: &Endpoints, mut form: Vec<(String, String)>) -> Result<TokenSet> {
        let mut request = self.http.post(&endpoints.token).header(reqwest::header::ACCEPT, "application/json");
        match &self.options.auth {
            ClientAuth::None => form.push(("client_id".into(), self.options.client_id.clone())),
            ClientAuth::ClientSecretBasic(secret) => {
                let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let raw = format!("{}:{}", enc(&self.options.client_id), enc(secret));
                request = request.header(reqwest::header::AUTHORIZATION, format!("Basic {}", crate::b64::encode_std(raw)));
            }
            ClientAuth::ClientSecretPost(secret) => {
                form.push(("client_id".into(), self.options.client_id.clone()));
                form.push(("client_secret".into(), secret.clone()));
            }
            ClientAuth::PrivateKeyJwt(key) => {
                form.push(("client_id".into(), self.options.client_id.clone()));
                form.push(("client_assertion_type".into(), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()));
                form.push(("client_assertion".into(), self.client_assertion(key, endpoints)?));
            }
        }
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&form).finish();
        let timeout = self.options.timeout;
        let response = request
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(net("the token request", timeout))?;
        let status = response.status().as_u16();
        let bytes = read_capped(response, timeout, "the token response").await?;
        OidcClient::parse_token_response(status, &bytes)
    }

    /// An RFC 7523 assertion: iss = sub = client id, aud = [issuer, token
    /// endpoint], a unique jti, exp 5 minutes ahead.
    pub fn client_assertion(&self, key: &Key, endpoints: &Endpoints) -> Result<String> {
        let now = now_secs();
        let aud = match &endpoints.issuer {
            Some(i) => json!([i, endpoints.token]),
            None => json!(endpoints.token),
        };
        let claims = json!({
            "iss": self.options.client_id, "sub": self.options.client_id, "aud": aud,
            "jti": random_id("")?, "iat": now, "exp": now + 300,
        });
        match claims {
            Value::Object(m) => jose::sign(&m, key, None),
            _ => Err(Error::internal("assertion claims are an object")),
        }
    }

    /// Claims for a token set: the id_token's (validated), with userinfo
    /// merged over them when the OP has a userinfo endpoint and profile
    /// claims were asked for (OIDC Core §5.4: with an access token, an OP
    /// may put them in userinfo only); without a JWKS, userinfo alone.
    async fn claims_for(&self, endpoints: &Endpoints, tokens: &TokenSet, nonce: Option<&str>) -> Result<Option<Map<String, Value>>> {
        let has_jwks = self.jwks.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        let mut claims = match (&tokens.id_token, has_jwks) {
            (Some(id), true) => Some(self.validate_id_token(id, nonce, Some(&tokens.access_token)).await?),
            _ => None,
        };
        let granted = tokens.scope.as_deref().map_or_else(
            || self.options.scopes.clone(),
            |s| s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect(),
        );
        let profile_asked = granted.iter().any(|s| matches!(s.as_str(), "email" | "profile" | "phone" | "address"));
        if endpoints.userinfo.is_some() && !tokens.access_token.is_empty() && (claims.is_none() || !has_jwks || profile_asked) {
            let info = self.userinfo(&tokens.access_token).await?;
            if let Some(c) = &claims {
                if str_claim(c, "sub") != str_claim(&info, "sub") {
                    return Err(Error::invalid_token("userinfo sub differs from the id_token's"));
                }
            }
            // The id_token's protocol claims stay as validated.
            const PROTOCOL: [&str; 9] = ["iss", "aud", "exp", "iat", "nonce", "azp", "at_hash", "auth_time", "sid"];
            let mut merged = claims.unwrap_or_default();
            let keep_protocol = !merged.is_empty();
            merged.extend(info.into_iter().filter(|(k, _)| !keep_protocol || !PROTOCOL.contains(&k.as_str())));
            claims = Some(merged);
        }
        Ok(claims)
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens
    /// and validates the id_token (nonce, at_hash).
    pub async fn exchange_code(&self, code: &str, code_verifier: Option<&str>, nonce: Option<&str>, redirect_uri: Option<&str>, extra: &[(String, String)]) -> Result<TokenSet> {
        let endpoints = self.fresh_endpoints().await;
        let mut form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), redirect_uri.unwrap_or(&self.options.redirect_uri).to_owned()),
        ];
        if let Some(v) = code_verifier {
            form.push(("code_verifier".into(), v.to_owned()));
        }
        form.extend(extra.iter().cloned());
        let mut tokens = self.post_token(&endpoints, form).await?;
        if tokens.id_token.is_none() && self.options.scopes.iter().any(|s| s == "openid") && endpoints.userinfo.is_none() {
            return Err(Error::invalid_token("the token response has no id_token (scope openid was requested)"));
        }
        tokens.claims = self.claims_for(&endpoints, &tokens, nonce).await?;
        Ok(tokens)
    }

    /// Parses and checks a callback, then exchanges the code or validates
    /// the implicit id_token.
    pub async fn handle_callback(&self, input: &str, request: &AuthorizationRequest) -> Result<TokenSet> {
        let callback = self.parse_callback(input, &request.state)?;
        match (&callback.code, &callback.id_token) {
            (Some(code), _) => {
                self.exchange_code(code, request.code_verifier.as_deref(), Some(&request.nonce), Some(&request.redirect_uri), &[]).await
            }
            (None, Some(id_token)) => {
                let claims = self.validate_id_token(id_token, Some(&request.nonce), None).await?;
                Ok(TokenSet {
                    access_token: String::new(),
                    token_type: "none".into(),
                    expires_in: None,
                    refresh_token: None,
                    id_token: Some(id_token.clone()),
                    scope: None,
                    claims: Some(claims),
                })
            }
            (None, None) => Err(Error::invalid_request("the callback has neither code nor id_token")),
        }
    }

    /// Refreshes; a new id_token is validated (without nonce).
    pub async fn refresh(&self, refresh_token: &str, scope: Option<&[String]>) -> Result<TokenSet> {
        let endpoints = self.fresh_endpoints().await;
        let mut form = vec![("grant_type".to_owned(), "refresh_token".to_owned()), ("refresh_token".to_owned(), refresh_token.to_owned())];
        if let Some(s) = scope {
            form.push(("scope".into(), s.join(" ")));
        }
        let mut tokens = self.post_token(&endpoints, form).await?;
        if let Some(id) = &tokens.id_token {
            if self.jwks.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                tokens.claims = Some(self.validate_id_token(id, None, Some(&tokens.access_token)).await?);
            }
        }
        Ok(tokens)
    }

    /// The userinfo claims for `access_token` (JSON responses).
    pub async fn userinfo(&self, access_token: &str) -> Result<Map<String, Value>> {
        let endpoints = self.fresh_endpoints().await;
        let url = endpoints.userinfo.ok_or_else(|| Error::config("this provider has no userinfo endpoint"))?;
        let timeout = self.options.timeout;
        let response = self
            .http
            .get(&url)
            .header(reqwest::header::AUTHORIZATION, format!("Bearer {access_token}"))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(net("the userinfo request", timeout))?;
        let status = response.status().as_u16();
        let challenge = response.headers().get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = read_capped(response, timeout, "the userinfo response").await?;
        if status == 401 || status == 403 {
            let error = challenge
                .as_deref()
                .and_then(|c| c.split("error=\"").nth(1))
                .and_then(|r| r.split('"').next())
                .unwrap_or("invalid_token");
            return Err(Error::new(oauth_error_code(error), format!("userinfo refused the token ({error})")));
        }
        if !(200..300).contains(&status) {
            return Err(Error::network(format!("userinfo answered HTTP {status}")));
        }
        let info = crate::json::parse_object(&bytes).map_err(|_| Error::invalid_token("userinfo did not answer a JSON object"))?;
        if str_claim(&info, "sub").is_none_or(str::is_empty) {
            return Err(Error::invalid_token("userinfo has no sub"));
        }
        Ok(info)
    }

    /// Revokes a token (RFC 7009).
    pub async fn revoke(&self, token: &str, hint: Option<&str>) -> Result<()> {
        let endpoints = self.fresh_endpoints().await;
        let url = endpoints.revocation.clone().ok_or_else(|| Error::config("this provider has no revocation endpoint"))?;
        let mut form = vec![("token".to_owned(), token.to_owned())];
        if let Some(h) = hint {
            form.push(("token_type_hint".into(), h.to_owned()));
        }
        let revocation = Endpoints { token: url, ..endpoints };
        match self.post_token(&revocation, form).await {
            Ok(_) => Ok(()),
            // RFC 7009 answers 200 with an empty body.
            Err(e) if e.code == ErrorCode::Network && e.message.contains("HTTP 200") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The RP-initiated logout URL.
    pub fn end_session_url(&self, id_token_hint: Option<&str>, post_logout_redirect_uri: Option<&str>, state: Option<&str>) -> Result<String> {
        let endpoints = self.endpoints();
        let base = endpoints.end_session.ok_or_else(|| Error::config("this provider has no end_session_endpoint"))?;
        let mut pairs = vec![("client_id", self.options.client_id.as_str())];
        if let Some(h) = id_token_hint {
            pairs.push(("id_token_hint", h));
        }
        if let Some(u) = post_logout_redirect_uri {
            check_redirect_uri(u, "post_logout_redirect_uri")?;
            pairs.push(("post_logout_redirect_uri", u));
        }
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        Ok(crate::oidc::params::append_query(&base, &pairs))
    }
}

async fn read_capped(mut response: reqwest::Response, timeout: Duration, what: &'static str) -> Result<Vec<u8>> {
    const LIMIT: usize = 1024 * 1024;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(net(what, timeout))? {
        if body.len() + chunk.len() > LIMIT {
            return Err(Error::network(format!("{what} is larger than 1 MiB")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn fetch_metadata(http: &reqwest::Client, url: &str, expected_issuer: Option<&str>, timeout: Duration) -> Result<Endpoints> {
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(net("discovery", timeout))?;
    let status = response.status().as_u16();
    let bytes = read_capped(response, timeout, "the discovery document").await?;
    if !(200..300).contains(&status) {
        return Err(Error::network(format!("discovery answered HTTP {status}")));
    }
    let meta = crate::oidc::discovery::ProviderMetadata::from_json(&bytes)?;
    let expected = match expected_issuer {
        Some(e) => e.to_owned(),
        None => url.trim_end_matches("/.well-known/openid-configuration").to_owned(),
    };
    if meta.issuer != expected {
        return Err(Error::new(
            ErrorCode::InvalidIssuer,
            format!("the discovery document's issuer {:?} is not the expected {expected:?}", meta.issuer),
        ));
    }
    Ok(Endpoints::from(meta))
}
