//! The OpenID Connect client (relying party): discovery, the authorization
//! request (PKCE S256 by default, or the implicit `id_token` grant with
//! `form_post`), callback parsing (state, RFC 9207 `iss`, `error=`), the
//! token exchange with client authentication, id_token validation, userinfo,
//! refresh, revocation and the end-session URL.
//!
//! IO is async on the caller's tokio runtime; pure steps (building the
//! authorization URL, parsing the callback, validating a token response
//! against a key set) are synchronous, so they can be measured and reused.

mod authorization;
mod claims;
pub mod session;
mod settings;
mod token;

pub use settings::{ClientAuth, ClientConfig, ClientOptions, ClientSettings, Endpoints};
use settings::{check_redirect_uri, check_url};
pub use authorization::{AuthorizationParams, AuthorizationRequest, Callback, ResponseType};
pub use token::TokenSet;

use crate::error::{Error, ErrorCode, Result};
use crate::ids::{now_secs, random_id};
use crate::jose::{self, Algorithm, JwksCache, JwksCacheOptions, Key, KeySet, Validation};
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
