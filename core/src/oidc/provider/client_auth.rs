//! Client authentication at the token endpoint (RFC 6749 §2.3, OIDC Core
//! §9): client_secret_basic and _post, private_key_jwt and
//! client_secret_jwt assertions (one use per `jti`), and access keys.

use super::config::{secret_matches, AuthMethod};
use crate::oidc::params::Params;
use super::http::HttpRequest;
use super::{AccessKey, Application, Provider};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::now_secs;
use crate::jose::{self, Validation};
use serde_json::Value;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest lifetime a client assertion may claim: one hour, which
/// common clients (authlib signs for 3600 s) stay within; its `jti` is
/// remembered for all of it.
const MAX_ASSERTION_LIFETIME: u64 = 3600;

/// An authenticated client.
pub(crate) enum Client<'a> {
    App(&'a Application),
    Key(&'a AccessKey),
}

impl Client<'_> {
    pub fn id(&self) -> &str {
        match self {
            Client::App(a) => &a.client_id,
            Client::Key(k) => &k.id,
        }
    }
}

/// The client id a request claims (before anything is verified): the
/// Basic user, `client_id`, or a client assertion's `iss`.
fn claimed_client_id(req: &HttpRequest, params: &Params) -> String {
    let basic = req.header("authorization").filter(|h| h.len() > 6 && h[..6].eq_ignore_ascii_case("basic ")).and_then(|h| {
        let raw = crate::b64::decode_std(h[6..].trim())?;
        let text = String::from_utf8(raw).ok()?;
        text.split_once(':').map(|(id, _)| id.to_owned())
    });
    basic
        .or_else(|| params.get("client_id").map(str::to_owned))
        .or_else(|| {
            let assertion = params.get("client_assertion")?;
            let claims = jose::decode_unverified(assertion).ok()?.claims;
            claims.get("iss").and_then(Value::as_str).map(str::to_owned)
        })
        .unwrap_or_default()
}

pub(super) fn invalid_client(m: &str) -> Error {
    Error::new(ErrorCode::InvalidClient, m)
}

impl Provider {
    /// Client authentication, rate limited: a client id or an address
    /// with too many failures this window is refused before its secret is
    /// even checked, so secrets cannot be guessed at speed.
    pub(crate) async fn authenticate_client(&self, req: &HttpRequest, params: &Params) -> Result<Client<'_>> {
        let claimed = claimed_client_id(req, params);
        let ip = self.client_ip(req);
        let (per_client, per_ip) = (self.limits.client_auth_failures_per_client, self.limits.client_auth_failures_per_ip);
        let over_ip = match &ip {
            Some(ip) => self.at_limit("auth_ip", ip, per_ip)?,
            None => false,
        };
        if over_ip || self.at_limit("auth_client", &claimed, per_client)? {
            return Err(super::limits::rate_limited("failed client authentications"));
        }
        let result = self.authenticate_client_once(req, params).await;
        if matches!(&result, Err(e) if e.code == ErrorCode::InvalidClient) {
            self.count("auth_client", &claimed, u64::MAX, "failed client authentications")?;
            if let Some(ip) = &ip {
                self.count("auth_ip", ip, u64::MAX, "failed client authentications")?;
            }
        }
        result
    }
    /// Client authentication (RFC 6749 §2.3, RFC 7523 §2.2). A client uses
    /// exactly one method, and it must be its registered one.
    async fn authenticate_client_once(&self, req: &HttpRequest, params: &Params) -> Result<Client<'_>> {
        let basic = match req.header("authorization") {
            Some(h) if h.len() > 6 && h[..6].eq_ignore_ascii_case("basic ") => {
                let raw = crate::b64::decode_std(h[6..].trim()).ok_or_else(|| invalid_client("the Basic credentials are not base64"))?;
                let text = String::from_utf8(raw).map_err(|_| invalid_client("the Basic credentials are not UTF-8"))?;
                let (id, secret) = text.split_once(':').ok_or_else(|| invalid_client("the Basic credentials need id:secret"))?;
                // RFC 6749 §2.3.1: both halves are form-urlencoded.
                let decode = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
                Some((decode(id).unwrap_or_default(), decode(secret).unwrap_or_default()))
            }
            _ => None,
        };
        let assertion = params.get("client_assertion");
        let post_secret = params.get("client_secret");
        let methods = [basic.is_some(), assertion.is_some(), post_secret.is_some()].iter().filter(|b| **b).count();
        if methods > 1 {
            return Err(Error::invalid_request("use exactly one client authentication method"));
        }
        if let Some(assertion) = assertion {
            if params.get("client_assertion_type") != Some(ASSERTION_TYPE) {
                return Err(invalid_client("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
            }
            return self.assertion_client(assertion, params.get("client_id")).await;
        }
        let (client_id, secret, method) = match (&basic, post_secret) {
            (Some((id, s)), _) => (id.clone(), Some(s.clone()), AuthMethod::ClientSecretBasic),
            (None, Some(s)) => (
                params.get("client_id").ok_or_else(|| invalid_client("client_id is missing"))?.to_owned(),
                Some(s.to_owned()),
                AuthMethod::ClientSecretPost,
            ),
            (None, None) => (
                params.get("client_id").ok_or_else(|| invalid_client("client authentication is missing"))?.to_owned(),
                None,
                AuthMethod::None,
            ),
        };
        if let Some(id) = params.get("client_id") {
            if id != client_id {
                return Err(invalid_client("client_id does not match the authenticated client"));
            }
        }
        if let Some(app) = self.apps.get(&client_id) {
            if app.auth_method != method {
                return Err(invalid_client(&format!("this application authenticates with {}", app.auth_method.as_str())));
            }
            if let (Some(secret), Some(stored)) = (&secret, &app.secret_digest) {
                if !secret_matches(secret, stored) {
                    return Err(invalid_client("client authentication failed"));
                }
            }
            return Ok(Client::App(app));
        }
        if let Some(key) = self.access_keys.get(&client_id) {
            let secret = secret.ok_or_else(|| invalid_client("an access key authenticates with its secret"))?;
            if !secret_matches(&secret, &key.secret_digest) {
                return Err(invalid_client("client authentication failed"));
            }
            if key.expires_at.is_some_and(|t| t <= now_secs()) {
                return Err(invalid_client("this access key has expired"));
            }
            return Ok(Client::Key(key));
        }
        Err(invalid_client("client authentication failed"))
    }
    async fn assertion_client(&self, assertion: &str, client_id: Option<&str>) -> Result<Client<'_>> {
        let unverified = jose::decode_unverified(assertion).map_err(|_| invalid_client("client_assertion is not a JWT"))?;
        let iss = unverified.claims.get("iss").and_then(Value::as_str).unwrap_or_default();
        let sub = unverified.claims.get("sub").and_then(Value::as_str).unwrap_or_default();
        if iss.is_empty() || iss != sub {
            return Err(invalid_client("client_assertion needs iss = sub = the client id"));
        }
        if client_id.is_some_and(|c| c != iss) {
            return Err(invalid_client("client_id does not match the client_assertion"));
        }
        // A request object (signed with the same keys) is not a client
        // assertion, even when it carries sub and jti (RFC 9101 §10.8).
        let typ = unverified.header.get("typ").and_then(Value::as_str).unwrap_or_default();
        if typ.eq_ignore_ascii_case("oauth-authz-req+jwt") || ["response_type", "redirect_uri"].iter().any(|k| unverified.claims.contains_key(*k)) {
            return Err(invalid_client("client_assertion is a request object, not a client assertion"));
        }
        let app = self.apps.get(iss).ok_or_else(|| invalid_client("client authentication failed"))?;
        if app.auth_method != AuthMethod::PrivateKeyJwt {
            return Err(invalid_client("this application does not authenticate with private_key_jwt"));
        }
        let mut v = Validation::new(&super::request_object::client_signing_algs());
        v.issuer = Some(app.client_id.clone());
        v.audience = vec![self.url("/oauth2/v1/token"), self.issuer.clone()];
        v.required_claims = vec!["exp".into(), "jti".into(), "sub".into(), "aud".into()];
        let token = self.verify_client_jwt(app, assertion, &v).await.map_err(|e| match e.code {
            ErrorCode::Network => Error::new(ErrorCode::InvalidClient, "the client's JWKS could not be fetched"),
            _ => invalid_client(&format!("client_assertion refused: {}", e.message)),
        })?;
        let now = now_secs();
        let exp = token.claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        if exp > now + MAX_ASSERTION_LIFETIME + 60 {
            return Err(invalid_client("client_assertion lives too long (exp at most one hour ahead)"));
        }
        let jti = token.claims.get("jti").and_then(Value::as_str).unwrap_or_default();
        // Remember the jti until the assertion could no longer be accepted.
        if !self.records().redeem(&format!("{}:{jti}", app.client_id), &super::state::ClientJti, Some(exp + 61))? {
            return Err(invalid_client("client_assertion was already used (jti replay)"));
        }
        Ok(Client::App(app))
    }
}
