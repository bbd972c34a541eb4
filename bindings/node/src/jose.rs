//! `Key`, `KeySet`, `JwksCache` and the `jwt*` functions.

use crate::error::{js_err, run};
use idflow::jose::{self, Algorithm, JwksCache as CoreCache, JwksCacheOptions, Key as CoreKey, KeySet as CoreKeySet, KeySource, Validation};
use idflow::Error;
use napi::bindgen_prelude::*;
use std::result::Result;
use napi_derive::napi;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

fn alg(name: &str) -> Result<Algorithm, Error> {
    Algorithm::parse(name)
}

/// A JSON object given as an object or as JSON text.
fn object(value: Value, what: &str) -> Result<Map<String, Value>, Error> {
    match value {
        Value::Object(map) => Ok(map),
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(Error::invalid_request(format!("{what} must be a JSON object"))),
        },
        _ => Err(Error::invalid_request(format!("{what} must be an object or JSON text"))),
    }
}

/// A signing or verification key.
#[napi]
pub struct Key {
    inner: CoreKey,
}

impl Key {
    pub(crate) fn inner(&self) -> &CoreKey {
        &self.inner
    }
}

#[napi]
impl Key {
    #[napi(factory)]
    pub fn generate(env: Env, alg: String, rsa_bits: Option<u32>) -> napi::Result<Key> {
        Ok(Key { inner: run(&env, || CoreKey::generate(self::alg(&alg)?, rsa_bits))? })
    }

    #[napi(factory, js_name = "fromJwk")]
    pub fn from_jwk(env: Env, jwk: Value) -> napi::Result<Key> {
        Ok(Key { inner: run(&env, || CoreKey::from_jwk(&object(jwk, "jwk")?))? })
    }

    #[napi(factory, js_name = "fromPem")]
    pub fn from_pem(env: Env, pem: String) -> napi::Result<Key> {
        Ok(Key { inner: run(&env, || CoreKey::from_pem(&pem))? })
    }

    #[napi(factory, js_name = "fromSecret")]
    pub fn from_secret(env: Env, secret: Either<String, Buffer>) -> napi::Result<Key> {
        let bytes: Vec<u8> = match secret {
            Either::A(s) => s.into_bytes(),
            Either::B(b) => b.to_vec(),
        };
        Ok(Key { inner: run(&env, || CoreKey::from_hmac_secret(&bytes))? })
    }

    #[napi(getter)]
    pub fn kid(&self) -> String {
        self.inner.kid().to_owned()
    }
    #[napi(getter)]
    pub fn alg(&self) -> Option<&'static str> {
        self.inner.alg().map(Algorithm::as_str)
    }
    #[napi(getter)]
    pub fn kty(&self) -> &'static str {
        self.inner.key_type().as_str()
    }
    #[napi(getter)]
    pub fn curve(&self) -> Option<&'static str> {
        self.inner.curve().map(|c| c.name())
    }
    #[napi(getter, js_name = "hasPrivate")]
    pub fn has_private(&self) -> bool {
        self.inner.has_private()
    }

    #[napi]
    pub fn thumbprint(&self) -> String {
        self.inner.thumbprint()
    }

    #[napi(js_name = "withKid")]
    pub fn with_kid(&self, kid: String) -> Key {
        Key { inner: self.inner.clone().with_kid(kid) }
    }

    #[napi(js_name = "publicKey")]
    pub fn public_key(&self, env: Env) -> napi::Result<Key> {
        Ok(Key { inner: run(&env, || self.inner.public_key())? })
    }

    #[napi(js_name = "toJwk")]
    pub fn to_jwk(&self, env: Env, private: Option<bool>) -> napi::Result<Map<String, Value>> {
        run(&env, || self.inner.to_jwk(private.unwrap_or(false)))
    }

    #[napi(js_name = "toPem")]
    pub fn to_pem(&self, env: Env, private: Option<bool>) -> napi::Result<String> {
        run(&env, || self.inner.to_pem(private.unwrap_or(false)))
    }

    /// Raw JWS primitive: signs `data` with `alg`.
    #[napi(js_name = "signBytes")]
    pub fn sign_bytes(&self, env: Env, alg: String, data: Buffer) -> napi::Result<Buffer> {
        run(&env, || self.inner.sign_bytes(self::alg(&alg)?, &data)).map(Buffer::from)
    }

    /// Raw JWS primitive: throws `invalid_signature` unless `signature` is valid.
    #[napi(js_name = "verifyBytes")]
    pub fn verify_bytes(&self, env: Env, alg: String, data: Buffer, signature: Buffer) -> napi::Result<()> {
        run(&env, || self.inner.verify_bytes(self::alg(&alg)?, &data, &signature))
    }
}

/// A JWK Set; tokens pick their key by `kid`.
#[napi]
pub struct KeySet {
    inner: Arc<CoreKeySet>,
}

impl KeySet {
    pub(crate) fn inner(&self) -> &CoreKeySet {
        &self.inner
    }
}

#[napi]
impl KeySet {
    #[napi(constructor)]
    pub fn new(env: Env, keys: Vec<&Key>) -> napi::Result<KeySet> {
        let keys = keys.iter().map(|k| k.inner.clone()).collect();
        Ok(KeySet { inner: Arc::new(run(&env, || CoreKeySet::new(keys))?) })
    }

    #[napi(factory, js_name = "fromJwks")]
    pub fn from_jwks(env: Env, jwks: Value) -> napi::Result<KeySet> {
        Ok(KeySet { inner: Arc::new(run(&env, || CoreKeySet::from_jwks(&object(jwks, "jwks")?))?) })
    }

    #[napi(getter)]
    pub fn size(&self) -> u32 {
        self.inner.len() as u32
    }

    #[napi(getter)]
    pub fn kids(&self) -> Vec<String> {
        self.inner.keys().iter().map(|k| k.kid().to_owned()).collect()
    }

    #[napi]
    pub fn get(&self, kid: String) -> Option<Key> {
        self.inner.get(&kid).map(|k| Key { inner: k.clone() })
    }

    #[napi(js_name = "toJwks")]
    pub fn to_jwks(&self, env: Env) -> napi::Result<Map<String, Value>> {
        run(&env, || self.inner.to_public_jwks())
    }
}

#[napi(object)]
pub struct VerifyOptions {
    /// Required: the accepted algorithms.
    pub algorithms: Vec<String>,
    pub issuer: Option<String>,
    pub audience: Option<Either<String, Vec<String>>>,
    /// Seconds; defaults to 60, at most 300.
    pub leeway: Option<u32>,
    /// Defaults to `["exp"]`.
    pub required_claims: Option<Vec<String>>,
    /// Bytes; defaults to 16384.
    pub max_token_size: Option<u32>,
    /// Pinned clock (seconds since the epoch), for tests.
    pub now: Option<i64>,
}

fn validation(o: &VerifyOptions) -> Result<Validation, Error> {
    Validation::from_options(jose::ValidationOptions {
        algorithms: o.algorithms.clone(),
        issuer: o.issuer.clone(),
        audience: match &o.audience {
            None => Vec::new(),
            Some(Either::A(s)) => vec![s.clone()],
            Some(Either::B(list)) => list.clone(),
        },
        leeway: o.leeway.map(u64::from),
        required_claims: o.required_claims.clone(),
        max_token_size: o.max_token_size.map(u64::from),
        now: o.now.map(|n| u64::try_from(n).map_err(|_| Error::config("now must not be negative"))).transpose()?,
    })
}

type KeyArg<'a> = Either<&'a Key, &'a KeySet>;

/// A key or key set held by a `Verifier`.
enum Keys {
    One(CoreKey),
    Set(Arc<CoreKeySet>),
}

impl Keys {
    fn from_arg(key: &KeyArg<'_>) -> Keys {
        match key {
            Either::A(k) => Keys::One(k.inner.clone()),
            Either::B(s) => Keys::Set(s.inner.clone()),
        }
    }
    fn source(&self) -> &dyn KeySource {
        match self {
            Keys::One(k) => k,
            Keys::Set(s) => &**s,
        }
    }
}

fn source<'a>(key: &'a KeyArg<'a>) -> &'a dyn KeySource {
    match key {
        Either::A(k) => &k.inner,
        Either::B(s) => &*s.inner,
    }
}

/// The verified payload as JSON text: `index.js` hands it to `JSON.parse`,
/// which builds the claims object straight from the JSON.
fn payload_text(payload: Vec<u8>) -> Result<String, Error> {
    String::from_utf8(payload).map_err(|_| Error::invalid_token("payload is not UTF-8"))
}

/// Claims arrive as JSON text (`index.js` runs `JSON.stringify`, which is
/// faster than walking the object through N-API).
#[napi(js_name = "jwtSign")]
pub fn sign(env: Env, claims_json: Option<String>, key: &Key, header: Option<Map<String, Value>>) -> napi::Result<String> {
    run(&env, || {
        let claims = claims_json.ok_or_else(|| Error::invalid_request("claims must be an object"))?;
        jose::sign_json(&claims, &key.inner, header.as_ref())
    })
}

/// Returns the claims as JSON text (see `payload_text`).
#[napi(js_name = "jwtVerify")]
pub fn verify(env: Env, token: String, key: KeyArg<'_>, options: VerifyOptions) -> napi::Result<String> {
    run(&env, || payload_text(jose::verify_payload(&token, source(&key), &validation(&options)?)?.payload))
}

/// A key (or key set) and validation options bound once.
#[napi]
pub struct Verifier {
    keys: Keys,
    validation: Validation,
}

#[napi]
impl Verifier {
    #[napi(constructor)]
    pub fn new(env: Env, key: KeyArg<'_>, options: VerifyOptions) -> napi::Result<Verifier> {
        let validation = run(&env, || validation(&options))?;
        Ok(Verifier { keys: Keys::from_arg(&key), validation })
    }

    /// Returns the claims as JSON text (see `payload_text`).
    #[napi]
    pub fn verify(&self, env: Env, token: String) -> napi::Result<String> {
        run(&env, || payload_text(jose::verify_payload(&token, self.keys.source(), &self.validation)?.payload))
    }
}

#[napi(object)]
pub struct VerifiedJws {
    pub header: Map<String, Value>,
    pub payload: Buffer,
}

#[napi(object)]
pub struct JwsOptions {
    pub algorithms: Vec<String>,
    pub max_token_size: Option<u32>,
}

#[napi(js_name = "jwtVerifyJws")]
pub fn verify_jws(env: Env, token: String, key: KeyArg<'_>, options: JwsOptions) -> napi::Result<VerifiedJws> {
    let jws = run(&env, || {
        let algs = options.algorithms.iter().map(|a| alg(a)).collect::<Result<Vec<_>, _>>()?;
        let max = options.max_token_size.map_or(jose::jwt::DEFAULT_MAX_TOKEN_SIZE, |m| m as usize);
        jose::verify_jws(&token, source(&key), &algs, max)
    })?;
    Ok(VerifiedJws { header: jws.header, payload: jws.payload.into() })
}

#[napi(object)]
pub struct DecodedToken {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

#[napi(js_name = "jwtDecodeUnverified")]
pub fn decode_unverified(env: Env, token: String) -> napi::Result<DecodedToken> {
    let t = run(&env, || jose::decode_unverified(&token))?;
    Ok(DecodedToken { header: t.header, claims: t.claims })
}

#[napi(object)]
pub struct JwksCacheConfig {
    /// Seconds; defaults to 5.
    pub timeout: Option<f64>,
    pub min_ttl: Option<f64>,
    pub max_ttl: Option<f64>,
    pub default_ttl: Option<f64>,
    pub refetch_cooldown: Option<f64>,
    pub max_response_bytes: Option<u32>,
}

fn secs(v: Option<f64>, default: Duration, what: &str) -> Result<Duration, Error> {
    match v {
        None => Ok(default),
        Some(s) => Duration::try_from_secs_f64(s)
            .map_err(|_| Error::config(format!("{what} must be a non-negative number of seconds"))),
    }
}

/// A cached remote JWKS; IO methods return Promises.
#[napi]
pub struct JwksCache {
    inner: Arc<CoreCache>,
}

#[napi]
impl JwksCache {
    #[napi(constructor)]
    pub fn new(env: Env, url: String, config: Option<JwksCacheConfig>) -> napi::Result<JwksCache> {
        let inner = run(&env, || {
            let d = JwksCacheOptions::default();
            let options = match config {
                None => d,
                Some(c) => JwksCacheOptions {
                    timeout: secs(c.timeout, d.timeout, "timeout")?,
                    min_ttl: secs(c.min_ttl, d.min_ttl, "minTtl")?,
                    max_ttl: secs(c.max_ttl, d.max_ttl, "maxTtl")?,
                    default_ttl: secs(c.default_ttl, d.default_ttl, "defaultTtl")?,
                    refetch_cooldown: secs(c.refetch_cooldown, d.refetch_cooldown, "refetchCooldown")?,
                    max_response_bytes: c.max_response_bytes.map_or(d.max_response_bytes, |m| m as usize),
                },
            };
            CoreCache::new(&url, options)
        })?;
        Ok(JwksCache { inner: Arc::new(inner) })
    }

    #[napi(getter)]
    pub fn url(&self) -> String {
        self.inner.url().to_owned()
    }

    #[napi(js_name = "keySet", ts_return_type = "Promise<KeySet>")]
    pub fn key_set<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, KeySet>> {
        let cache = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(cache.key_set().await) }, |env, res| {
            res.map(|inner| KeySet { inner }).map_err(|e| js_err(env, e))
        })
    }

    #[napi(ts_return_type = "Promise<KeySet>")]
    pub fn refresh<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, KeySet>> {
        let cache = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(cache.refresh().await) }, |env, res| {
            res.map(|inner| KeySet { inner }).map_err(|e| js_err(env, e))
        })
    }

    #[napi(ts_return_type = "Promise<Record<string, unknown>>")]
    pub fn verify<'env>(&self, env: &'env Env, token: String, options: VerifyOptions) -> napi::Result<PromiseRaw<'env, Map<String, Value>>> {
        let v = run(env, || validation(&options))?;
        let cache = self.inner.clone();
        env.spawn_future_with_callback(async move { Ok(cache.verify(&token, &v).await) }, |env, res| {
            res.map(|t| t.claims).map_err(|e| js_err(env, e))
        })
    }
}

#[napi(js_name = "algorithms")]
pub fn algorithms() -> Vec<&'static str> {
    Algorithm::ALL.iter().map(|a| a.as_str()).collect()
}
