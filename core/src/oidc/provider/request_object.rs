//! Request objects (OIDC Core §6.1, RFC 9101): the authorization request's
//! parameters as a JWT in `request`.
//!
//! - Signed objects are verified with the application's registered keys
//!   (`jwks` or `jwksUri`) and one of [`client_signing_algs`] (or the
//!   application's `requestObjectSigningAlg`), and must name the client as
//!   `iss` and this provider's issuer in `aud`.
//! - Unsigned objects (`alg: none`) are taken only from an application whose
//!   `requestObjectSigningAlg` is `"none"`, and such an application may send
//!   no signed one (OpenID Connect Dynamic Client Registration §2).
//! - Symmetric algorithms (HS256 with the client secret) are not offered:
//!   idflow keeps only a digest of each secret.
//! - `request_uri` stays unsupported (no pushed authorization requests).

use super::config::ClientKeys;
use super::{Application, Provider};
use crate::error::{Error, Result};
use crate::jose::{self, Algorithm, KeyType, Validation};
use serde_json::Value;

/// The algorithms a client may sign with, for client assertions and
/// request objects: the asymmetric ones (secrets are kept as digests, so
/// there is no key to check an HMAC with).
pub fn client_signing_algs() -> Vec<Algorithm> {
    Algorithm::ALL.into_iter().filter(|a| a.key_type() != KeyType::Oct).collect()
}

/// Claims of a request object that are about the JWT, not parameters.
const JWT_CLAIMS: [&str; 6] = ["iss", "aud", "exp", "iat", "nbf", "jti"];

/// How far ahead a request object's `exp` may be: it travels through the
/// browser (history, logs), so a captured one must not live long.
const MAX_OBJECT_LIFETIME: u64 = 3600;

/// Clock leeway for an unsigned object's `exp` and `nbf`.
const LEEWAY: u64 = 60;

impl Provider {
    /// Verifies a JWT an application signed (a client assertion or a
    /// request object) with its registered keys (`jwks` or `jwksUri`).
    pub(super) async fn verify_client_jwt(&self, app: &Application, jwt: &str, v: &Validation) -> Result<jose::Token> {
        match &app.keys {
            Some(ClientKeys::Inline(set)) => jose::verify(jwt, set, v),
            Some(ClientKeys::Uri(_)) => match self.client_jwks.get(&app.client_id) {
                Some(cache) => cache.verify(jwt, v).await,
                None => Err(Error::internal("no JWKS cache for this client")),
            },
            None => Err(Error::invalid_request("this application has no registered keys (jwks or jwksUri)")),
        }
    }

    /// Verifies the request object `jwt` of `app` and returns its
    /// authorization parameters as text (objects such as `claims` as JSON)
    /// and whether it was signed. `Err` says why it was refused
    /// (`invalid_request_object`).
    pub(super) async fn request_object(&self, app: &Application, jwt: &str) -> std::result::Result<(Vec<(String, String)>, bool), String> {
        let unverified = jose::decode_unverified(jwt).map_err(|e| format!("request is not a JWT ({})", e.message))?;
        let alg = unverified.header.get("alg").and_then(Value::as_str).unwrap_or_default();
        // RFC 9101 §10.8: a request object is typed as one (or untyped),
        // never as another kind of JWT.
        if let Some(typ) = unverified.header.get("typ") {
            let t = typ.as_str().unwrap_or_default().to_ascii_lowercase();
            if !matches!(t.as_str(), "oauth-authz-req+jwt" | "jwt") {
                return Err(format!("a request object's typ is oauth-authz-req+jwt, not {typ}"));
            }
        }
        let now = crate::ids::now_secs();
        let unsigned_only = app.request_object_alg.as_deref() == Some("none");
        let claims = if alg == "none" {
            if !unsigned_only {
                return Err("unsigned request objects are not accepted from this application (its requestObjectSigningAlg is not \"none\")".into());
            }
            if !jwt.ends_with('.') {
                return Err("an unsigned request object has an empty signature".into());
            }
            let time = |k: &str| unverified.claims.get(k).map(|v| v.as_u64().ok_or(format!("{k} must be a number of seconds")));
            if let Some(exp) = time("exp").transpose()? {
                if exp + LEEWAY <= now {
                    return Err("the request object has expired".into());
                }
            }
            if let Some(nbf) = time("nbf").transpose()? {
                if nbf > now + LEEWAY {
                    return Err("the request object is not valid yet (nbf)".into());
                }
            }
            unverified.claims
        } else {
            if unsigned_only {
                return Err("this application's request objects are unsigned (requestObjectSigningAlg: none)".into());
            }
            let algs: Vec<Algorithm> = match &app.request_object_alg {
                Some(a) => vec![Algorithm::parse(a).map_err(|e| e.message)?],
                None => client_signing_algs(),
            };
            let mut v = Validation::new(&algs);
            v.issuer = Some(app.client_id.clone());
            v.audience = vec![self.issuer.clone()];
            v.required_claims = vec!["iss".into(), "aud".into(), "exp".into()];
            let claims = self.verify_client_jwt(app, jwt, &v).await.map_err(|e| format!("the request object was refused: {}", e.message))?.claims;
            if claims.get("exp").and_then(Value::as_u64).is_some_and(|exp| exp > now + MAX_OBJECT_LIFETIME + LEEWAY) {
                return Err(format!("the request object lives too long (exp at most {MAX_OBJECT_LIFETIME} s ahead)"));
            }
            claims
        };
        let signed = alg != "none";
        let mut out = Vec::with_capacity(claims.len());
        for (name, value) in claims {
            if name == "request" || name == "request_uri" {
                return Err(format!("a request object must not contain {name}"));
            }
            if JWT_CLAIMS.contains(&name.as_str()) {
                continue;
            }
            let text = match value {
                Value::Null => continue,
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => other.to_string(),
            };
            out.push((name, text));
        }
        Ok((out, signed))
    }
}
