//! A remote JWKS cache: fetches a `jwks_uri` over HTTP(S) with reqwest.
//!
//! - Freshness follows `Cache-Control: max-age`, clamped to
//!   [`JwksCacheOptions::min_ttl`, `max_ttl`]; without it, `default_ttl`.
//! - A token whose `kid` is unknown triggers one refetch, at most once per
//!   `refetch_cooldown`, so forged kids cannot make us hammer the issuer.
//! - When a fetch fails, the last good set keeps being served.
//! - Fetches time out (default 5 s), bodies are capped (default 256 KiB),
//!   redirects are not followed. Concurrent callers share one fetch.
//!
//! Core never starts a runtime: callers run these futures on their own tokio
//! runtime (the bindings keep one per process).

use super::jwt::{self, Token, Validation};
use super::keyset::KeySet;
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tuning for [`JwksCache`]; every field has a safe default.
#[derive(Debug, Clone, PartialEq)]
pub struct JwksCacheOptions {
    /// Per-fetch timeout. Defaults to 5 s.
    pub timeout: Duration,
    /// Lower bound on freshness. Defaults to 60 s.
    pub min_ttl: Duration,
    /// Upper bound on freshness. Defaults to 24 h.
    pub max_ttl: Duration,
    /// Freshness when the response has no usable max-age. Defaults to 10 min.
    pub default_ttl: Duration,
    /// Least time between two fetches caused by unknown kids. Defaults to 30 s.
    pub refetch_cooldown: Duration,
    /// Largest response body accepted. Defaults to 256 KiB.
    pub max_response_bytes: usize,
}

impl Default for JwksCacheOptions {
    fn default() -> Self {
        JwksCacheOptions {
            timeout: Duration::from_secs(5),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            default_ttl: Duration::from_secs(600),
            refetch_cooldown: Duration::from_secs(30),
            max_response_bytes: 256 * 1024,
        }
    }
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    fresh_until: Option<Instant>,
    /// When an unknown `kid` last caused a fetch (the cool-down's start).
    last_kid_refetch: Option<Instant>,
}

/// A cached remote key set (see the module doc).
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    options: JwksCacheOptions,
    state: Mutex<State>,
    fetch_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache").field("url", &self.url).finish()
    }
}

fn parse_max_age(value: &str) -> Option<Option<u64>> {
    // Some(None): explicitly not cacheable; Some(Some(n)): max-age n.
    let mut max_age = None;
    for directive in value.split(',') {
        let directive = directive.trim().to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            return Some(None);
        }
        if let Some(n) = directive.strip_prefix("max-age=") {
            max_age = n.trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age.map(Some)
}

impl JwksCache {
    /// A cache for `url` (http or https). Nothing is fetched until first use.
    pub fn new(url: &str, options: JwksCacheOptions) -> Result<JwksCache> {
        let parsed = reqwest::Url::parse(url).map_err(|_| Error::config("jwks_uri is not a valid URL"))?;
        if parsed.scheme() != "https" && parsed.scheme() != "http" {
            return Err(Error::config("jwks_uri must be an http or https URL"));
        }
        if options.min_ttl > options.max_ttl {
            return Err(Error::config("min_ttl must not exceed max_ttl"));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .build()
            .map_err(|e| Error::internal(format!("http client could not be built: {e}")))?;
        Ok(JwksCache { url: url.to_owned(), client, options, state: Mutex::default(), fetch_lock: tokio::sync::Mutex::new(()) })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn cached(&self) -> (Option<Arc<KeySet>>, bool, Option<Instant>) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = state.fresh_until.is_some_and(|t| Instant::now() < t);
        (state.keys.clone(), fresh, state.last_kid_refetch)
    }

    /// The current key set: cached while fresh, else fetched. A failed fetch
    /// serves the last good set when there is one.
    pub async fn key_set(&self) -> Result<Arc<KeySet>> {
        if let (Some(keys), true, _) = self.cached() {
            return Ok(keys);
        }
        let _guard = self.fetch_lock.lock().await;
        // Another caller may have fetched while we waited.
        if let (Some(keys), true, _) = self.cached() {
            return Ok(keys);
        }
        self.fetch_or_stale().await
    }

    async fn fetch_or_stale(&self) -> Result<Arc<KeySet>> {
        match self.fetch().await {
            Ok(keys) => Ok(keys),
            Err(err) => match self.cached().0 {
                Some(stale) => Ok(stale),
                None => Err(err),
            },
        }
    }

    /// Fetches now, whatever the cache holds; the error is returned (the old
    /// set stays cached).
    pub async fn refresh(&self) -> Result<Arc<KeySet>> {
        let _guard = self.fetch_lock.lock().await;
        self.fetch().await
    }

    async fn fetch(&self) -> Result<Arc<KeySet>> {
        let fetched = self.download().await;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match fetched {
            Ok((keys, ttl)) => {
                let keys = Arc::new(keys);
                state.keys = Some(keys.clone());
                state.fresh_until = Some(Instant::now() + ttl);
                Ok(keys)
            }
            Err(err) => {
                // Retry no sooner than min_ttl, serving what we have meanwhile.
                if state.keys.is_some() {
                    state.fresh_until = Some(Instant::now() + self.options.min_ttl);
                }
                Err(err)
            }
        }
    }

    async fn download(&self) -> Result<(KeySet, Duration)> {
        let timeout_secs = self.options.timeout.as_secs_f64();
        let net = |e: reqwest::Error| {
            if e.is_timeout() {
                Error::network(format!("jwks fetch timed out after {timeout_secs} s"))
            } else if e.is_connect() {
                Error::network("jwks fetch could not connect to the server")
            } else {
                Error::network("jwks fetch failed")
            }
        };
        let mut response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(net)?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::network(format!("jwks fetch answered HTTP {}", status.as_u16())));
        }
        let limit = self.options.max_response_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(Error::network(format!("jwks response is larger than {limit} bytes")));
        }
        let cache_control = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(net)? {
            if body.len() + chunk.len() > limit {
                return Err(Error::network(format!("jwks response is larger than {limit} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let text = std::str::from_utf8(&body).map_err(|_| Error::invalid_key("jwks response is not UTF-8"))?;
        let keys = KeySet::from_jwks_json(text)?;
        let ttl = match cache_control.as_deref().and_then(parse_max_age) {
            Some(Some(secs)) => Duration::from_secs(secs),
            Some(None) => self.options.min_ttl,
            None => self.options.default_ttl,
        }
        .clamp(self.options.min_ttl, self.options.max_ttl);
        Ok((keys, ttl))
    }

    /// Verifies a JWT against the remote set. An unknown `kid` refetches the
    /// set once (rate-limited by `refetch_cooldown`) before failing.
    pub async fn verify(&self, token: &str, validation: &Validation) -> Result<Token> {
        let keys = self.key_set().await?;
        let kid = token_kid(token, validation.max_token_size)?;
        if let Some(kid) = kid.as_deref() {
            if keys.get(kid).is_none() {
                if let Some(newer) = self.refetch_for_unknown_kid(kid).await {
                    return jwt::verify(token, &*newer, validation);
                }
            }
        }
        jwt::verify(token, &*keys, validation)
    }

    async fn refetch_for_unknown_kid(&self, kid: &str) -> Option<Arc<KeySet>> {
        let _guard = self.fetch_lock.lock().await;
        let (current, _, last_kid_refetch) = self.cached();
        if let Some(keys) = &current {
            if keys.get(kid).is_some() {
                return current; // someone else's refetch brought it
            }
        }
        if last_kid_refetch.is_some_and(|t| t.elapsed() < self.options.refetch_cooldown) {
            return None;
        }
        self.state.lock().unwrap_or_else(|p| p.into_inner()).last_kid_refetch = Some(Instant::now());
        self.fetch().await.ok()
    }
}

fn token_kid(token: &str, max: usize) -> Result<Option<String>> {
    if token.len() > max {
        return Err(Error::invalid_token(format!("token is larger than the {max}-byte limit")));
    }
    let header = token.split('.').next().unwrap_or("");
    let bytes = crate::b64::decode(header).ok_or_else(|| Error::invalid_token("header is not unpadded base64url"))?;
    let map = crate::json::parse_object(&bytes).map_err(|e| Error::invalid_token(format!("header {e}")))?;
    match map.get("kid") {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::invalid_token("header kid must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_max_age;

    #[test]
    fn cache_control_parsing() {
        assert_eq!(parse_max_age("public, max-age=300"), Some(Some(300)));
        assert_eq!(parse_max_age("no-store"), Some(None));
        assert_eq!(parse_max_age("private"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }
}
