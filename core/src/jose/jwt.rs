//! Compact JWS (RFC 7515) and JWT (RFC 7519): sign, verify, decode.
//!
//! Verification is strict by default and every refusal has its own code:
//! the token's size, shape and base64url are checked first (`invalid_token`),
//! then the header: `alg` must be in the caller's allowed list
//! (`unsupported_algorithm`, `none` never), `crit` may name nothing (idflow
//! understands no extension), and embedded `jwk`/`jku`/`x5u`/`x5c` are never
//! used to find a key. The key comes from the caller's key or key set only
//! (`invalid_key` when none fits), the signature is checked
//! (`invalid_signature`), and then the claims (`expired_token`,
//! `immature_token`, `invalid_issuer`, `invalid_audience`, `invalid_token`).

use super::alg::{truncate, Algorithm};
use super::keyset::KeySource;
use crate::error::{Error, Result};
use crate::{b64, json};
use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// Default clock leeway in seconds.
pub const DEFAULT_LEEWAY: u64 = 60;
/// Largest leeway a caller may set, in seconds.
pub const MAX_LEEWAY: u64 = 300;
/// Default maximum size of a compact token, in bytes.
pub const DEFAULT_MAX_TOKEN_SIZE: usize = 16 * 1024;

/// What a JWT must satisfy. Build with [`Validation::new`], which needs the
/// allowed algorithms: there is no default of "whatever the header says".
#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    /// Algorithms accepted. Required, non-empty.
    pub algorithms: Vec<Algorithm>,
    /// Expected `iss`. Defaults to none (not checked).
    pub issuer: Option<String>,
    /// Accepted audiences: the token's `aud` (string or array) must contain
    /// one. Defaults to none; a token that carries `aud` is then refused,
    /// since it was meant for someone the caller did not name.
    pub audience: Vec<String>,
    /// Clock leeway in seconds. Defaults to 60; at most 300.
    pub leeway: u64,
    /// Claims that must be present. Defaults to `["exp"]`.
    pub required_claims: Vec<String>,
    /// Largest token accepted, in bytes. Defaults to 16 KiB.
    pub max_token_size: usize,
    /// A fixed "now" (seconds since the epoch), for tests. Defaults to the clock.
    pub now: Option<u64>,
}

impl Validation {
    pub fn new(algorithms: &[Algorithm]) -> Validation {
        Validation {
            algorithms: algorithms.to_vec(),
            issuer: None,
            audience: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            required_claims: vec!["exp".to_owned()],
            max_token_size: DEFAULT_MAX_TOKEN_SIZE,
            now: None,
        }
    }

    /// Checks the options themselves.
    pub fn check(&self) -> Result<()> {
        if self.algorithms.is_empty() {
            return Err(Error::config("validation needs at least one allowed algorithm"));
        }
        if self.leeway > MAX_LEEWAY {
            return Err(Error::config(format!("leeway must be at most {MAX_LEEWAY} seconds")));
        }
        if self.max_token_size == 0 {
            return Err(Error::config("max_token_size must be positive"));
        }
        Ok(())
    }
}

/// A verified (or, from [`decode_unverified`], merely decoded) JWT.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

/// A verified JWS whose payload need not be JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Jws {
    pub header: Map<String, Value>,
    pub payload: Vec<u8>,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Signs `claims` as a compact JWT with `key`.
///
/// The algorithm is `extra_header["alg"]` when given, else the key's default
/// (see [`super::Key::default_algorithm`]). The header is `alg`, `typ: "JWT"`,
/// the key's `kid`, then the rest of `extra_header` (which may override `typ`
/// or `kid`).
pub fn sign(claims: &Map<String, Value>, key: &super::Key, extra_header: Option<&Map<String, Value>>) -> Result<String> {
    let payload = serde_json::to_vec(claims).map_err(|_| Error::invalid_request("claims could not be serialized"))?;
    sign_payload(&payload, key, extra_header)
}

/// Signs arbitrary payload bytes as a compact JWS (see [`sign`] for the header).
pub fn sign_payload(payload: &[u8], key: &super::Key, extra_header: Option<&Map<String, Value>>) -> Result<String> {
    let alg = match extra_header.and_then(|h| h.get("alg")) {
        None => key.default_algorithm(),
        Some(Value::String(name)) => Algorithm::parse(name)?,
        Some(_) => return Err(Error::invalid_request("header alg must be a string")),
    };
    let mut header = Map::new();
    header.insert("alg".into(), alg.as_str().into());
    header.insert("typ".into(), "JWT".into());
    header.insert("kid".into(), key.kid().into());
    if let Some(extra) = extra_header {
        for (k, v) in extra {
            if k == "crit" || k == "b64" {
                return Err(Error::invalid_request(format!("header {k:?} is not supported by idflow")));
            }
            if k != "alg" {
                header.insert(k.clone(), v.clone());
            }
        }
    }
    let header_json = serde_json::to_vec(&header).map_err(|_| Error::invalid_request("header could not be serialized"))?;
    let mut out = String::with_capacity((header_json.len() + payload.len()) * 4 / 3 + 400);
    b64::encode_into(&header_json, &mut out);
    out.push('.');
    b64::encode_into(payload, &mut out);
    let signature = key.sign_bytes(alg, out.as_bytes())?;
    out.push('.');
    b64::encode_into(&signature, &mut out);
    Ok(out)
}

struct Parts<'a> {
    signing_input: &'a str,
    header: Map<String, Value>,
    payload_b64: &'a str,
    signature_b64: &'a str,
}

fn split(token: &str, max_size: usize) -> Result<Parts<'_>> {
    if token.len() > max_size {
        return Err(Error::invalid_token(format!("token is larger than the {max_size}-byte limit")));
    }
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(Error::invalid_token("a compact JWS has exactly three dot-separated parts"));
    };
    let header_bytes = b64::decode(h).ok_or_else(|| Error::invalid_token("header is not unpadded base64url"))?;
    let header = json::parse_object(&header_bytes).map_err(|e| Error::invalid_token(format!("header {e}")))?;
    Ok(Parts { signing_input: &token[..h.len() + 1 + p.len()], header, payload_b64: p, signature_b64: s })
}

fn header_algorithm(header: &Map<String, Value>) -> Result<Algorithm> {
    match header.get("alg") {
        Some(Value::String(name)) => Algorithm::parse(name),
        Some(_) => Err(Error::invalid_token("header alg must be a string")),
        None => Err(Error::invalid_token("header has no alg")),
    }
}

fn check_header(header: &Map<String, Value>, allowed: &[Algorithm]) -> Result<Algorithm> {
    let alg = header_algorithm(header)?;
    if !allowed.contains(&alg) {
        return Err(Error::unsupported_algorithm(format!("alg {alg} is not in the allowed algorithms")));
    }
    if let Some(crit) = header.get("crit") {
        // RFC 7515 §4.1.11: a recipient must reject a crit it does not
        // understand; idflow implements no extension, so any crit is refused.
        let names = match crit {
            Value::Array(items) if !items.is_empty() => {
                items.iter().map(|v| v.as_str().unwrap_or("?")).collect::<Vec<_>>().join(", ")
            }
            _ => String::from("(malformed)"),
        };
        return Err(Error::invalid_token(format!("unsupported critical header parameter(s): {}", truncate(&names))));
    }
    if let Some(b64) = header.get("b64") {
        if b64 != &Value::Bool(true) {
            return Err(Error::invalid_token("unencoded payloads (RFC 7797 b64) are not supported"));
        }
    }
    Ok(alg)
}

fn header_kid(header: &Map<String, Value>) -> Result<Option<&str>> {
    match header.get("kid") {
        None => Ok(None),
        Some(Value::String(kid)) => Ok(Some(kid)),
        Some(_) => Err(Error::invalid_token("header kid must be a string")),
    }
}

/// Verifies a compact JWS and returns its header and payload bytes, without
/// any JWT claim checks (for non-JWT payloads). `max_size` bounds the token.
pub fn verify_jws(token: &str, keys: &dyn KeySource, algorithms: &[Algorithm], max_size: usize) -> Result<Jws> {
    if algorithms.is_empty() {
        return Err(Error::config("verification needs at least one allowed algorithm"));
    }
    let parts = split(token, max_size)?;
    let payload = verify_parts(&parts, keys, algorithms)?;
    Ok(Jws { header: parts.header, payload })
}

fn verify_parts(parts: &Parts<'_>, keys: &dyn KeySource, algorithms: &[Algorithm]) -> Result<Vec<u8>> {
    let alg = check_header(&parts.header, algorithms)?;
    // Only the caller's keys are candidates: jwk/jku/x5u/x5c in the header
    // are attacker-controlled and deliberately never looked at.
    let key = keys.select_key(header_kid(&parts.header)?)?;
    // Every segment's encoding is checked before any cryptography, so a
    // malformed token is `invalid_token` whatever its signature.
    let payload = b64::decode(parts.payload_b64)
        .ok_or_else(|| Error::invalid_token("payload is not unpadded base64url"))?;
    let signature = b64::decode(parts.signature_b64)
        .ok_or_else(|| Error::invalid_token("signature is not unpadded base64url"))?;
    key.verify_bytes(alg, parts.signing_input.as_bytes(), &signature)?;
    Ok(payload)
}

/// Verifies a JWT: signature (see [`verify_jws`]) and then claims.
pub fn verify(token: &str, keys: &dyn KeySource, validation: &Validation) -> Result<Token> {
    validation.check()?;
    let parts = split(token, validation.max_token_size)?;
    let payload = verify_parts(&parts, keys, &validation.algorithms)?;
    let claims = json::parse_object(&payload).map_err(|e| Error::invalid_token(format!("payload {e}")))?;
    validate_claims(&claims, validation)?;
    Ok(Token { header: parts.header, claims })
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| Error::invalid_token(format!("claim {name} is not a valid NumericDate"))),
        Some(_) => Err(Error::invalid_token(format!("claim {name} must be a number (NumericDate)"))),
    }
}

/// Checks the registered claims against `validation` (the signature is
/// assumed verified).
pub fn validate_claims(claims: &Map<String, Value>, validation: &Validation) -> Result<()> {
    for name in &validation.required_claims {
        if !claims.contains_key(name) {
            return Err(Error::invalid_token(format!("required claim {:?} is missing", truncate(name))));
        }
    }
    let now = validation.now.unwrap_or_else(now_secs) as f64;
    let leeway = validation.leeway as f64;
    let exp = numeric_date(claims, "exp")?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    if let Some(exp) = exp {
        if now - leeway >= exp {
            return Err(Error::new(crate::ErrorCode::ExpiredToken, "the token has expired (exp)"));
        }
    }
    if let Some(nbf) = nbf {
        if now + leeway < nbf {
            return Err(Error::new(crate::ErrorCode::ImmatureToken, "the token is not valid yet (nbf)"));
        }
    }
    if let Some(iat) = iat {
        if iat > now + leeway {
            return Err(Error::new(crate::ErrorCode::ImmatureToken, "the token was issued in the future (iat)"));
        }
    }
    if let Some(expected) = &validation.issuer {
        match claims.get("iss") {
            Some(Value::String(iss)) if iss == expected => {}
            Some(Value::String(_)) => {
                return Err(Error::new(crate::ErrorCode::InvalidIssuer, "iss does not match the expected issuer"))
            }
            Some(_) => return Err(Error::new(crate::ErrorCode::InvalidIssuer, "iss must be a string")),
            None => return Err(Error::new(crate::ErrorCode::InvalidIssuer, "the token has no iss claim")),
        }
    }
    let aud_err = |m: &str| Error::new(crate::ErrorCode::InvalidAudience, m.to_owned());
    match claims.get("aud") {
        None if validation.audience.is_empty() => {}
        None => return Err(aud_err("the token has no aud claim")),
        Some(aud) => {
            if validation.audience.is_empty() {
                return Err(aud_err("the token has an aud claim but no audience was expected"));
            }
            let matches = |s: &str| validation.audience.iter().any(|a| a == s);
            let ok = match aud {
                Value::String(s) => matches(s),
                Value::Array(items) => {
                    if items.iter().any(|v| !v.is_string()) {
                        return Err(aud_err("aud must be a string or an array of strings"));
                    }
                    items.iter().filter_map(Value::as_str).any(matches)
                }
                _ => return Err(aud_err("aud must be a string or an array of strings")),
            };
            if !ok {
                return Err(aud_err("aud does not contain an expected audience"));
            }
        }
    }
    Ok(())
}

/// Decodes a JWT WITHOUT verifying its signature or claims: for display and
/// debugging only. Never trust what it returns.
pub fn decode_unverified(token: &str) -> Result<Token> {
    let parts = split(token, DEFAULT_MAX_TOKEN_SIZE * 4)?;
    header_algorithm(&parts.header)?;
    let payload = b64::decode(parts.payload_b64)
        .ok_or_else(|| Error::invalid_token("payload is not unpadded base64url"))?;
    let claims = json::parse_object(&payload).map_err(|e| Error::invalid_token(format!("payload {e}")))?;
    Ok(Token { header: parts.header, claims })
}
