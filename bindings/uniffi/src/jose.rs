//! Keys, key sets, JWT sign/verify and the JWKS cache.

use crate::error::{guard, IdflowError};
use idflow::jose::{self, Algorithm, JwksCacheOptions, KeySource, Validation};
use idflow::Error;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

fn alg(name: &str) -> Result<Algorithm, Error> {
    Algorithm::parse(name)
}


fn to_json(map: &Map<String, Value>) -> String {
    Value::Object(map.clone()).to_string()
}

/// A signing or verification key.
#[derive(uniffi::Object)]
pub struct Key {
    inner: jose::Key,
}

impl Key {
    pub(crate) fn inner(&self) -> &jose::Key {
        &self.inner
    }
}

#[uniffi::export]
impl Key {
    #[uniffi::constructor(default(rsa_bits = None))]
    pub fn generate(alg: String, rsa_bits: Option<u32>) -> Result<Arc<Key>, IdflowError> {
        Ok(Arc::new(Key { inner: guard(|| jose::Key::generate(self::alg(&alg)?, rsa_bits))? }))
    }

    /// Imports a JWK given as JSON text.
    #[uniffi::constructor]
    pub fn from_jwk(jwk: String) -> Result<Arc<Key>, IdflowError> {
        Ok(Arc::new(Key { inner: guard(|| jose::Key::from_jwk_json(&jwk))? }))
    }

    #[uniffi::constructor]
    pub fn from_pem(pem: String) -> Result<Arc<Key>, IdflowError> {
        Ok(Arc::new(Key { inner: guard(|| jose::Key::from_pem(&pem))? }))
    }

    #[uniffi::constructor]
    pub fn from_secret(secret: Vec<u8>) -> Result<Arc<Key>, IdflowError> {
        Ok(Arc::new(Key { inner: guard(|| jose::Key::from_hmac_secret(&secret))? }))
    }

    pub fn kid(&self) -> String {
        self.inner.kid().to_owned()
    }
    pub fn alg(&self) -> Option<String> {
        self.inner.alg().map(|a| a.as_str().to_owned())
    }
    pub fn kty(&self) -> String {
        self.inner.key_type().as_str().to_owned()
    }
    pub fn has_private(&self) -> bool {
        self.inner.has_private()
    }
    pub fn thumbprint(&self) -> String {
        self.inner.thumbprint()
    }
    pub fn with_kid(&self, kid: String) -> Arc<Key> {
        Arc::new(Key { inner: self.inner.clone().with_kid(kid) })
    }
    pub fn public_key(&self) -> Result<Arc<Key>, IdflowError> {
        Ok(Arc::new(Key { inner: guard(|| self.inner.public_key())? }))
    }
    /// The JWK as JSON text.
    #[uniffi::method(default(include_private = false))]
    pub fn to_jwk(&self, include_private: bool) -> Result<String, IdflowError> {
        guard(|| self.inner.to_jwk(include_private).map(|m| to_json(&m)))
    }
    #[uniffi::method(default(include_private = false))]
    pub fn to_pem(&self, include_private: bool) -> Result<String, IdflowError> {
        guard(|| self.inner.to_pem(include_private))
    }
    /// Raw JWS primitive: signs `data` with `alg`.
    pub fn sign_bytes(&self, alg: String, data: Vec<u8>) -> Result<Vec<u8>, IdflowError> {
        guard(|| self.inner.sign_bytes(self::alg(&alg)?, &data))
    }
    /// Raw JWS primitive: fails with `InvalidSignature` unless valid.
    pub fn verify_bytes(&self, alg: String, data: Vec<u8>, signature: Vec<u8>) -> Result<(), IdflowError> {
        guard(|| self.inner.verify_bytes(self::alg(&alg)?, &data, &signature))
    }
}

/// A JWK Set; tokens pick their key by `kid`.
#[derive(uniffi::Object)]
pub struct KeySet {
    inner: Arc<jose::KeySet>,
}

#[uniffi::export]
impl KeySet {
    #[uniffi::constructor]
    pub fn new(keys: Vec<Arc<Key>>) -> Result<Arc<KeySet>, IdflowError> {
        let keys = keys.iter().map(|k| k.inner.clone()).collect();
        Ok(Arc::new(KeySet { inner: Arc::new(guard(|| jose::KeySet::new(keys))?) }))
    }
    /// Parses JWKS JSON text.
    #[uniffi::constructor]
    pub fn from_jwks(jwks: String) -> Result<Arc<KeySet>, IdflowError> {
        Ok(Arc::new(KeySet { inner: Arc::new(guard(|| jose::KeySet::from_jwks_json(&jwks))?) }))
    }
    pub fn size(&self) -> u32 {
        self.inner.len() as u32
    }
    pub fn kids(&self) -> Vec<String> {
        self.inner.keys().iter().map(|k| k.kid().to_owned()).collect()
    }
    pub fn get(&self, kid: String) -> Option<Arc<Key>> {
        self.inner.get(&kid).map(|k| Arc::new(Key { inner: k.clone() }))
    }
    /// The public JWKS as JSON text.
    pub fn to_jwks(&self) -> Result<String, IdflowError> {
        guard(|| self.inner.to_public_jwks().map(|m| to_json(&m)))
    }
}

/// JWT validation options (the core's `ValidationOptions`); only
/// `algorithms` is required.
pub type VerifyOptions = jose::ValidationOptions;

fn validation(o: &VerifyOptions) -> Result<Validation, Error> {
    Validation::from_options(o.clone())
}

/// Signs JSON claims (text) as a compact JWT; `header` adds JSON header members.
#[uniffi::export(default(header = None))]
pub fn jwt_sign(claims: String, key: Arc<Key>, header: Option<String>) -> Result<String, IdflowError> {
    guard(|| {
        let claims = crate::json_object(&claims, "claims")?;
        let header = header.as_deref().map(|h| crate::json_object(h, "header")).transpose()?;
        jose::sign(&claims, &key.inner, header.as_ref())
    })
}

fn verify_with(token: &str, keys: &dyn KeySource, options: &VerifyOptions) -> Result<String, IdflowError> {
    guard(|| {
        let verified = jose::verify_payload(token, keys, &validation(options)?)?;
        String::from_utf8(verified.payload).map_err(|_| Error::invalid_token("payload is not UTF-8"))
    })
}

/// Verifies a JWT with one key; returns the claims as JSON text.
#[uniffi::export]
pub fn jwt_verify(token: String, key: Arc<Key>, options: VerifyOptions) -> Result<String, IdflowError> {
    verify_with(&token, &key.inner, &options)
}

/// Verifies a JWT against a key set (by `kid`); returns the claims as JSON text.
#[uniffi::export]
pub fn jwt_verify_with_key_set(token: String, keys: Arc<KeySet>, options: VerifyOptions) -> Result<String, IdflowError> {
    verify_with(&token, &*keys.inner, &options)
}

#[derive(Debug, Clone, uniffi::Record)]
pub struct VerifiedJws {
    /// The protected header as JSON text.
    pub header: String,
    pub payload: Vec<u8>,
}

/// Verifies a compact JWS without JWT claim checks.
#[uniffi::export]
pub fn jwt_verify_jws(token: String, key: Arc<Key>, algorithms: Vec<String>) -> Result<VerifiedJws, IdflowError> {
    guard(|| {
        let algs = algorithms.iter().map(|a| alg(a)).collect::<Result<Vec<_>, _>>()?;
        let jws = jose::verify_jws(&token, &key.inner, &algs, jose::jwt::DEFAULT_MAX_TOKEN_SIZE)?;
        Ok(VerifiedJws { header: to_json(&jws.header), payload: jws.payload })
    })
}

/// Decodes WITHOUT verifying: `{"header":…,"claims":…}` as JSON text. Debugging only.
#[uniffi::export]
pub fn jwt_decode_unverified(token: String) -> Result<String, IdflowError> {
    guard(|| {
        let t = jose::decode_unverified(&token)?;
        let mut out = Map::new();
        out.insert("header".into(), Value::Object(t.header));
        out.insert("claims".into(), Value::Object(t.claims));
        Ok(Value::Object(out).to_string())
    })
}

/// A cached remote JWKS. Close it (Kotlin `close()` / `use {}`) to free it early.
#[derive(uniffi::Object)]
pub struct JwksCache {
    inner: Arc<jose::JwksCache>,
}

#[uniffi::export(async_runtime = "tokio")]
impl JwksCache {
    /// Durations are in seconds; `None` keeps the default.
    #[uniffi::constructor(default(timeout_secs = None, min_ttl_secs = None, refetch_cooldown_secs = None))]
    pub fn new(
        url: String,
        timeout_secs: Option<f64>,
        min_ttl_secs: Option<f64>,
        refetch_cooldown_secs: Option<f64>,
    ) -> Result<Arc<JwksCache>, IdflowError> {
        guard(|| {
            let d = JwksCacheOptions::default();
            let secs = |v: Option<f64>, default: Duration| -> Result<Duration, Error> {
                v.map_or(Ok(default), |s| {
                    Duration::try_from_secs_f64(s).map_err(|_| Error::config("durations must be non-negative seconds"))
                })
            };
            let options = JwksCacheOptions {
                timeout: secs(timeout_secs, d.timeout)?,
                min_ttl: secs(min_ttl_secs, d.min_ttl)?,
                refetch_cooldown: secs(refetch_cooldown_secs, d.refetch_cooldown)?,
                ..d
            };
            Ok(Arc::new(JwksCache { inner: Arc::new(jose::JwksCache::new(&url, options)?) }))
        })
    }

    pub fn url(&self) -> String {
        self.inner.url().to_owned()
    }

    pub async fn key_set(&self) -> Result<Arc<KeySet>, IdflowError> {
        Ok(Arc::new(KeySet { inner: self.inner.key_set().await? }))
    }

    pub async fn refresh(&self) -> Result<Arc<KeySet>, IdflowError> {
        Ok(Arc::new(KeySet { inner: self.inner.refresh().await? }))
    }

    /// Verifies a JWT against the remote set; returns the claims as JSON text.
    pub async fn verify(&self, token: String, options: VerifyOptions) -> Result<String, IdflowError> {
        let v = validation(&options)?;
        Ok(to_json(&self.inner.verify(&token, &v).await?.claims))
    }
}

#[uniffi::export]
pub fn algorithms() -> Vec<String> {
    Algorithm::ALL.iter().map(|a| a.as_str().to_owned()).collect()
}
