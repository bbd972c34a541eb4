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
use super::scan::{self, Audience, ClaimsScan, HeaderScan};
use crate::error::{Error, Result};
use crate::{b64, json};
use serde_json::{Map, Value};

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

/// [`Validation`] settings by wire name, as every binding receives them
/// (Swift and Kotlin see this record as `VerifyOptions`); every `None`
/// keeps the default. [`Validation::from_options`] checks them.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record), uniffi(name = "VerifyOptions"))]
pub struct ValidationOptions {
    /// Algorithm names; required, non-empty.
    pub algorithms: Vec<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub issuer: Option<String>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub audience: Vec<String>,
    /// Seconds; defaults to 60, at most 300.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub leeway: Option<u64>,
    /// Defaults to `["exp"]`.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub required_claims: Option<Vec<String>>,
    /// Bytes; defaults to 16384.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub max_token_size: Option<u64>,
    /// Pinned clock (seconds since the epoch), for tests.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub now: Option<u64>,
}

impl Validation {
    /// Builds and checks a validation from options given by name.
    pub fn from_options(o: ValidationOptions) -> Result<Validation> {
        let algs = o.algorithms.iter().map(|a| Algorithm::parse(a)).collect::<Result<Vec<_>>>()?;
        let mut v = Validation::new(&algs);
        v.issuer = o.issuer;
        v.audience = o.audience;
        if let Some(l) = o.leeway {
            v.leeway = l;
        }
        if let Some(r) = o.required_claims {
            v.required_claims = r;
        }
        if let Some(m) = o.max_token_size {
            v.max_token_size = usize::try_from(m).unwrap_or(usize::MAX);
        }
        v.now = o.now;
        v.check()?;
        Ok(v)
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

use crate::ids::now_secs;

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

/// Signs claims given as JSON text (a JSON object; duplicate member names and
/// over-deep nesting are refused), for bindings whose language serialises
/// JSON faster than it can hand over a tree.
pub fn sign_json(claims_json: &str, key: &super::Key, extra_header: Option<&Map<String, Value>>) -> Result<String> {
    scan::check_object(claims_json.as_bytes()).map_err(|e| Error::invalid_request(format!("claims {e}")))?;
    sign_payload(claims_json.as_bytes(), key, extra_header)
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
    header_bytes: Vec<u8>,
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
    Ok(Parts { signing_input: &token[..h.len() + 1 + p.len()], header_bytes, payload_b64: p, signature_b64: s })
}

fn check_header(header: &HeaderScan<'_>, allowed: &[Algorithm]) -> Result<Algorithm> {
    let alg = match &header.alg {
        Some(Ok(name)) => Algorithm::parse(name)?,
        Some(Err(())) => return Err(Error::invalid_token("header alg must be a string")),
        None => return Err(Error::invalid_token("header has no alg")),
    };
    if !allowed.contains(&alg) {
        return Err(Error::unsupported_algorithm(format!("alg {alg} is not in the allowed algorithms")));
    }
    if let Some(names) = &header.crit {
        // RFC 7515 §4.1.11: a recipient must reject a crit it does not
        // understand; idflow implements no extension, so any crit is refused.
        return Err(Error::invalid_token(format!("unsupported critical header parameter(s): {}", truncate(names))));
    }
    if header.b64_not_true {
        return Err(Error::invalid_token("unencoded payloads (RFC 7797 b64) are not supported"));
    }
    Ok(alg)
}

/// Checks the signature of `parts`; returns the algorithm and payload bytes.
fn verify_parts(parts: &Parts<'_>, keys: &dyn KeySource, algorithms: &[Algorithm]) -> Result<(Algorithm, Vec<u8>)> {
    let header = scan::scan_header(&parts.header_bytes).map_err(|e| Error::invalid_token(format!("header {e}")))?;
    let alg = check_header(&header, algorithms)?;
    let kid = match &header.kid {
        None => None,
        Some(Ok(kid)) => Some(&**kid),
        Some(Err(())) => return Err(Error::invalid_token("header kid must be a string")),
    };
    // Only the caller's keys are candidates: jwk/jku/x5u/x5c in the header
    // are attacker-controlled and deliberately never looked at.
    let key = keys.select_key(kid)?;
    // Every segment's encoding is checked before any cryptography, so a
    // malformed token is `invalid_token` whatever its signature.
    let payload = b64::decode(parts.payload_b64)
        .ok_or_else(|| Error::invalid_token("payload is not unpadded base64url"))?;
    let signature = b64::decode(parts.signature_b64)
        .ok_or_else(|| Error::invalid_token("signature is not unpadded base64url"))?;
    key.verify_bytes(alg, parts.signing_input.as_bytes(), &signature)?;
    Ok((alg, payload))
}

fn header_map(parts: &Parts<'_>) -> Result<Map<String, Value>> {
    json::parse_object(&parts.header_bytes).map_err(|e| Error::invalid_token(format!("header {e}")))
}

/// Verifies a compact JWS and returns its header and payload bytes, without
/// any JWT claim checks (for non-JWT payloads). `max_size` bounds the token.
pub fn verify_jws(token: &str, keys: &dyn KeySource, algorithms: &[Algorithm], max_size: usize) -> Result<Jws> {
    if algorithms.is_empty() {
        return Err(Error::config("verification needs at least one allowed algorithm"));
    }
    let parts = split(token, max_size)?;
    let (_, payload) = verify_parts(&parts, keys, algorithms)?;
    Ok(Jws { header: header_map(&parts)?, payload })
}

/// A JWT whose signature and claims passed: the algorithm and the payload
/// bytes, a strict JSON object. Bindings build their own objects straight
/// from these bytes; [`verify`] builds JSON maps.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedPayload {
    pub alg: Algorithm,
    pub payload: Vec<u8>,
}

fn verify_jwt<'t>(token: &'t str, keys: &dyn KeySource, validation: &Validation) -> Result<(Parts<'t>, VerifiedPayload)> {
    validation.check()?;
    let parts = split(token, validation.max_token_size)?;
    let (alg, payload) = verify_parts(&parts, keys, &validation.algorithms)?;
    let claims = scan::scan_claims(&payload, &validation.required_claims)
        .map_err(|e| Error::invalid_token(format!("payload {e}")))?;
    check_claims(&claims, validation)?;
    drop(claims);
    Ok((parts, VerifiedPayload { alg, payload }))
}

/// Verifies a JWT (signature, then claims) without building JSON trees.
pub fn verify_payload(token: &str, keys: &dyn KeySource, validation: &Validation) -> Result<VerifiedPayload> {
    verify_jwt(token, keys, validation).map(|(_, verified)| verified)
}

/// Verifies a JWT: signature (see [`verify_jws`]) and then claims.
pub fn verify(token: &str, keys: &dyn KeySource, validation: &Validation) -> Result<Token> {
    let (parts, verified) = verify_jwt(token, keys, validation)?;
    let claims = json::parse_object(&verified.payload).map_err(|e| Error::invalid_token(format!("payload {e}")))?;
    Ok(Token { header: header_map(&parts)?, claims })
}

fn numeric_date(value: Option<Option<f64>>, name: &str) -> Result<Option<f64>> {
    match value {
        None => Ok(None),
        Some(Some(v)) => Ok(Some(v)),
        Some(None) => Err(Error::invalid_token(format!("claim {name} must be a number (NumericDate)"))),
    }
}

/// Checks the registered claims against `validation` (the signature is
/// assumed verified).
pub fn validate_claims(claims: &Map<String, Value>, validation: &Validation) -> Result<()> {
    let bytes = serde_json::to_vec(claims).map_err(|_| Error::invalid_request("claims could not be serialized"))?;
    let scan = scan::scan_claims(&bytes, &validation.required_claims)
        .map_err(|e| Error::invalid_token(format!("payload {e}")))?;
    check_claims(&scan, validation)
}

fn check_claims(claims: &ClaimsScan<'_>, validation: &Validation) -> Result<()> {
    for (name, present) in validation.required_claims.iter().zip(&claims.required_present) {
        if !present {
            return Err(Error::invalid_token(format!("required claim {:?} is missing", truncate(name))));
        }
    }
    let now = validation.now.unwrap_or_else(now_secs) as f64;
    let leeway = validation.leeway as f64;
    let exp = numeric_date(claims.exp, "exp")?;
    let nbf = numeric_date(claims.nbf, "nbf")?;
    let iat = numeric_date(claims.iat, "iat")?;
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
    let iss_err = |m: &str| Error::new(crate::ErrorCode::InvalidIssuer, m.to_owned());
    if let Some(expected) = &validation.issuer {
        match &claims.iss {
            Some(Ok(iss)) if iss == expected => {}
            Some(Ok(_)) => return Err(iss_err("iss does not match the expected issuer")),
            Some(Err(())) => return Err(iss_err("iss must be a string")),
            None => return Err(iss_err("the token has no iss claim")),
        }
    }
    let aud_err = |m: &str| Error::new(crate::ErrorCode::InvalidAudience, m.to_owned());
    match &claims.aud {
        None if validation.audience.is_empty() => {}
        None => return Err(aud_err("the token has no aud claim")),
        Some(aud) => {
            if validation.audience.is_empty() {
                return Err(aud_err("the token has an aud claim but no audience was expected"));
            }
            let matches = |s: &str| validation.audience.iter().any(|a| a == s);
            let ok = match aud {
                Audience::One(s) => matches(s),
                Audience::Many(items) => items.iter().any(|s| matches(s)),
                Audience::Invalid => return Err(aud_err("aud must be a string or an array of strings")),
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
    let header = header_map(&parts)?;
    match header.get("alg") {
        Some(Value::String(_)) => {}
        _ => return Err(Error::invalid_token("header alg must be a string")),
    }
    let payload = b64::decode(parts.payload_b64)
        .ok_or_else(|| Error::invalid_token("payload is not unpadded base64url"))?;
    let claims = json::parse_object(&payload).map_err(|e| Error::invalid_token(format!("payload {e}")))?;
    Ok(Token { header, claims })
}
