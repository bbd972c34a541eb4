//! `idflow.Key`, `idflow.KeySet`, `idflow.jwt.*` and `idflow.JwksCache`.

use crate::convert::{dict_to_map, json_bytes_to_py, object_arg, to_py_dict};
use crate::error::{guard, guard_py, to_py, IntoPyResult};
use idflow::jose::{self, Algorithm, JwksCache, JwksCacheOptions, Key, KeySet, KeySource, Validation};
use idflow::Error;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use std::sync::Arc;
use std::time::Duration;

fn alg(name: &str) -> PyResult<Algorithm> {
    Algorithm::parse(name).py()
}

/// A signing or verification key. Build with `Key.generate`, `Key.from_jwk`,
/// `Key.from_pem` or `Key.from_secret`.
#[pyclass(frozen, module = "idflow", name = "Key")]
#[derive(Clone)]
pub struct PyKey {
    inner: Key,
}

impl PyKey {
    pub(crate) fn inner(&self) -> &Key {
        &self.inner
    }
}

#[pymethods]
impl PyKey {
    #[staticmethod]
    #[pyo3(signature = (alg, rsa_bits=None))]
    fn generate(py: Python<'_>, alg: &str, rsa_bits: Option<u32>) -> PyResult<PyKey> {
        let a = self::alg(alg)?;
        let inner = py.detach(|| guard(|| Key::generate(a, rsa_bits))).py()?;
        Ok(PyKey { inner })
    }

    #[staticmethod]
    fn from_jwk(jwk: &Bound<'_, PyAny>) -> PyResult<PyKey> {
        let map = object_arg(jwk, "jwk")?;
        Ok(PyKey { inner: guard(|| Key::from_jwk(&map)).py()? })
    }

    #[staticmethod]
    fn from_pem(pem: &str) -> PyResult<PyKey> {
        Ok(PyKey { inner: guard(|| Key::from_pem(pem)).py()? })
    }

    /// An HMAC key from a secret (bytes, or str as UTF-8).
    #[staticmethod]
    fn from_secret(secret: &Bound<'_, PyAny>) -> PyResult<PyKey> {
        let bytes: Vec<u8> = if let Ok(s) = secret.cast::<PyString>() {
            s.to_str()?.as_bytes().to_vec()
        } else {
            secret.extract::<Vec<u8>>()?
        };
        Ok(PyKey { inner: guard(|| Key::from_hmac_secret(&bytes)).py()? })
    }

    #[getter]
    fn kid(&self) -> &str {
        self.inner.kid()
    }
    #[getter]
    fn alg(&self) -> Option<&'static str> {
        self.inner.alg().map(Algorithm::as_str)
    }
    #[getter]
    fn kty(&self) -> &'static str {
        self.inner.key_type().as_str()
    }
    #[getter]
    fn curve(&self) -> Option<&'static str> {
        self.inner.curve().map(|c| c.name())
    }
    #[getter]
    fn has_private(&self) -> bool {
        self.inner.has_private()
    }

    /// Raw JWS primitive: signs `data` with `alg` (no JWT framing).
    fn sign_bytes<'py>(&self, py: Python<'py>, alg: &str, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let a = self::alg(alg)?;
        let key = self.inner.clone();
        let sig = py.detach(|| guard(|| key.sign_bytes(a, data))).py()?;
        Ok(PyBytes::new(py, &sig))
    }

    /// Raw JWS primitive: raises `TokenError` (`invalid_signature`) unless
    /// `signature` is a valid `alg` signature of `data`.
    fn verify_bytes(&self, py: Python<'_>, alg: &str, data: &[u8], signature: &[u8]) -> PyResult<()> {
        let a = self::alg(alg)?;
        let key = self.inner.clone();
        py.detach(|| guard(|| key.verify_bytes(a, data, signature))).py()
    }

    fn thumbprint(&self) -> String {
        self.inner.thumbprint()
    }

    fn with_kid(&self, kid: String) -> PyKey {
        PyKey { inner: self.inner.clone().with_kid(kid) }
    }

    fn public_key(&self) -> PyResult<PyKey> {
        Ok(PyKey { inner: guard(|| self.inner.public_key()).py()? })
    }

    #[pyo3(signature = (private=false))]
    fn to_jwk<'py>(&self, py: Python<'py>, private: bool) -> PyResult<Bound<'py, PyDict>> {
        let jwk = guard(|| self.inner.to_jwk(private)).py()?;
        to_py_dict(py, &jwk)
    }

    #[pyo3(signature = (private=false))]
    fn to_pem(&self, private: bool) -> PyResult<String> {
        guard(|| self.inner.to_pem(private)).py()
    }

    fn __repr__(&self) -> String {
        format!(
            "Key(kty={:?}, kid={:?}, alg={:?}, private={})",
            self.kty(),
            self.inner.kid(),
            self.alg().unwrap_or("None"),
            if self.inner.has_private() { "True" } else { "False" }
        )
    }
}

/// A JWK Set; tokens pick their key by `kid`.
#[pyclass(frozen, module = "idflow", name = "KeySet")]
pub struct PyKeySet {
    inner: Arc<KeySet>,
}

impl PyKeySet {
    pub(crate) fn inner(&self) -> &KeySet {
        &self.inner
    }
}

#[pymethods]
impl PyKeySet {
    #[new]
    fn new(keys: Vec<PyRef<'_, PyKey>>) -> PyResult<PyKeySet> {
        let keys = keys.iter().map(|k| k.inner.clone()).collect();
        Ok(PyKeySet { inner: Arc::new(guard(|| KeySet::new(keys)).py()?) })
    }

    #[staticmethod]
    fn from_jwks(jwks: &Bound<'_, PyAny>) -> PyResult<PyKeySet> {
        let map = object_arg(jwks, "jwks")?;
        Ok(PyKeySet { inner: Arc::new(guard(|| KeySet::from_jwks(&map)).py()?) })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    #[getter]
    fn kids(&self) -> Vec<String> {
        self.inner.keys().iter().map(|k| k.kid().to_owned()).collect()
    }

    fn get(&self, kid: &str) -> Option<PyKey> {
        self.inner.get(kid).map(|k| PyKey { inner: k.clone() })
    }

    fn to_jwks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let doc = guard(|| self.inner.to_public_jwks()).py()?;
        to_py_dict(py, &doc)
    }

    fn __repr__(&self) -> String {
        format!("KeySet(kids={:?})", self.kids())
    }
}

enum Keys {
    One(Key),
    Set(Arc<KeySet>),
}

impl Keys {
    fn source(&self) -> &dyn KeySource {
        match self {
            Keys::One(k) => k,
            Keys::Set(s) => &**s,
        }
    }

    /// HMAC verification takes about a microsecond: releasing and retaking
    /// the GIL would cost a good part of that, so only asymmetric work
    /// releases it.
    fn worth_releasing_gil(&self) -> bool {
        !matches!(self, Keys::One(k) if k.key_type() == idflow::jose::KeyType::Oct)
    }

    fn verify<'py>(&self, py: Python<'py>, token: &str, v: &Validation) -> PyResult<Bound<'py, PyAny>> {
        let verified = if self.worth_releasing_gil() {
            py.detach(|| guard(|| jose::verify_payload(token, self.source(), v)))
        } else {
            guard(|| jose::verify_payload(token, self.source(), v))
        }
        .py()?;
        json_bytes_to_py(py, &verified.payload)
    }
}

fn keys_arg(obj: &Bound<'_, PyAny>) -> PyResult<Keys> {
    if let Ok(k) = obj.cast::<PyKey>() {
        return Ok(Keys::One(k.get().inner.clone()));
    }
    if let Ok(s) = obj.cast::<PyKeySet>() {
        return Ok(Keys::Set(s.get().inner.clone()));
    }
    Err(to_py(Error::invalid_key("key must be an idflow.Key or idflow.KeySet")))
}

#[allow(clippy::too_many_arguments)]
fn validation(
    algorithms: Vec<String>,
    issuer: Option<String>,
    audience: Option<&Bound<'_, PyAny>>,
    leeway: u64,
    required_claims: Option<Vec<String>>,
    max_token_size: usize,
    now: Option<u64>,
) -> PyResult<Validation> {
    let audience = match audience {
        None => Vec::new(),
        Some(a) if a.is_none() => Vec::new(),
        Some(a) => match a.cast::<PyString>() {
            Ok(s) => vec![s.to_str()?.to_owned()],
            Err(_) => a.extract::<Vec<String>>()?,
        },
    };
    let options = jose::ValidationOptions {
        algorithms,
        issuer,
        audience,
        leeway: Some(leeway),
        required_claims,
        max_token_size: Some(max_token_size as u64),
        now,
    };
    guard(|| Validation::from_options(options)).py()
}

#[pyfunction]
#[pyo3(signature = (claims, key, header=None))]
fn jwt_sign(py: Python<'_>, claims: &Bound<'_, PyDict>, key: PyRef<'_, PyKey>, header: Option<&Bound<'_, PyDict>>) -> PyResult<String> {
    let claims = dict_to_map(claims)?;
    let header = header.map(dict_to_map).transpose()?;
    let key = key.inner.clone();
    py.detach(|| guard(|| jose::sign(&claims, &key, header.as_ref()))).py()
}

#[pyfunction]
#[pyo3(signature = (token, key, *, algorithms, issuer=None, audience=None, leeway=60, required_claims=None, max_token_size=16384, now=None))]
#[allow(clippy::too_many_arguments)]
fn jwt_verify<'py>(
    py: Python<'py>,
    token: &str,
    key: &Bound<'py, PyAny>,
    algorithms: Vec<String>,
    issuer: Option<String>,
    audience: Option<&Bound<'py, PyAny>>,
    leeway: u64,
    required_claims: Option<Vec<String>>,
    max_token_size: usize,
    now: Option<u64>,
) -> PyResult<Bound<'py, PyAny>> {
    let v = validation(algorithms, issuer, audience, leeway, required_claims, max_token_size, now)?;
    keys_arg(key)?.verify(py, token, &v)
}

/// A key (or key set) and validation options bound once; `verify(token)`
/// then does only the per-token work.
#[pyclass(frozen, module = "idflow", name = "Verifier")]
pub struct PyVerifier {
    keys: Keys,
    validation: Validation,
}

#[pymethods]
impl PyVerifier {
    #[new]
    #[pyo3(signature = (key, *, algorithms, issuer=None, audience=None, leeway=60, required_claims=None, max_token_size=16384, now=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        key: &Bound<'_, PyAny>,
        algorithms: Vec<String>,
        issuer: Option<String>,
        audience: Option<&Bound<'_, PyAny>>,
        leeway: u64,
        required_claims: Option<Vec<String>>,
        max_token_size: usize,
        now: Option<u64>,
    ) -> PyResult<PyVerifier> {
        let validation = validation(algorithms, issuer, audience, leeway, required_claims, max_token_size, now)?;
        Ok(PyVerifier { keys: keys_arg(key)?, validation })
    }

    /// Verifies `token` and returns its claims.
    fn verify<'py>(&self, py: Python<'py>, token: &str) -> PyResult<Bound<'py, PyAny>> {
        self.keys.verify(py, token, &self.validation)
    }

    fn __repr__(&self) -> String {
        let algs: Vec<&str> = self.validation.algorithms.iter().map(|a| a.as_str()).collect();
        format!("Verifier(algorithms={algs:?})")
    }
}

#[pyfunction]
#[pyo3(signature = (token, key, *, algorithms, max_token_size=16384))]
fn jwt_verify_jws<'py>(
    py: Python<'py>,
    token: &str,
    key: &Bound<'py, PyAny>,
    algorithms: Vec<String>,
    max_token_size: usize,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyBytes>)> {
    let algs = algorithms.iter().map(|a| alg(a)).collect::<PyResult<Vec<_>>>()?;
    let keys = keys_arg(key)?;
    let jws = py.detach(|| guard(|| jose::verify_jws(token, keys.source(), &algs, max_token_size))).py()?;
    Ok((to_py_dict(py, &jws.header)?, PyBytes::new(py, &jws.payload)))
}

#[pyfunction]
fn jwt_decode_unverified<'py>(py: Python<'py>, token: &str) -> PyResult<Bound<'py, PyDict>> {
    let t = guard(|| jose::decode_unverified(token)).py()?;
    let out = PyDict::new(py);
    out.set_item("header", to_py_dict(py, &t.header)?)?;
    out.set_item("claims", to_py_dict(py, &t.claims)?)?;
    Ok(out)
}

/// A cached remote JWKS (see the core's `JwksCache`).
#[pyclass(frozen, module = "idflow", name = "JwksCache")]
pub struct PyJwksCache {
    inner: Arc<JwksCache>,
}

fn secs(v: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| to_py(Error::config(format!("{what} must be a non-negative number of seconds"))))
}

#[pymethods]
impl PyJwksCache {
    #[new]
    #[pyo3(signature = (url, *, timeout=5.0, min_ttl=60.0, max_ttl=86400.0, default_ttl=600.0, refetch_cooldown=30.0, max_response_bytes=262144))]
    fn new(
        url: &str,
        timeout: f64,
        min_ttl: f64,
        max_ttl: f64,
        default_ttl: f64,
        refetch_cooldown: f64,
        max_response_bytes: usize,
    ) -> PyResult<PyJwksCache> {
        let options = JwksCacheOptions {
            timeout: secs(timeout, "timeout")?,
            min_ttl: secs(min_ttl, "min_ttl")?,
            max_ttl: secs(max_ttl, "max_ttl")?,
            default_ttl: secs(default_ttl, "default_ttl")?,
            refetch_cooldown: secs(refetch_cooldown, "refetch_cooldown")?,
            max_response_bytes,
        };
        // reqwest's client needs a runtime context to be built.
        let _enter = crate::runtime::runtime().enter();
        Ok(PyJwksCache { inner: Arc::new(guard(|| JwksCache::new(url, options)).py()?) })
    }

    #[getter]
    fn url(&self) -> &str {
        self.inner.url()
    }

    /// Fetches (or serves the cached) key set; blocks without holding the GIL.
    fn key_set(&self, py: Python<'_>) -> PyResult<PyKeySet> {
        let cache = self.inner.clone();
        let inner = crate::runtime::block(py, cache.key_set())?;
        Ok(PyKeySet { inner })
    }

    fn key_set_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let cache = self.inner.clone();
        crate::runtime::awaitable(py, async move { cache.key_set().await }, |py, inner| crate::runtime::object(py, PyKeySet { inner }))
    }

    fn refresh(&self, py: Python<'_>) -> PyResult<PyKeySet> {
        let cache = self.inner.clone();
        let inner = crate::runtime::block(py, cache.refresh())?;
        Ok(PyKeySet { inner })
    }

    fn refresh_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let cache = self.inner.clone();
        crate::runtime::awaitable(py, async move { cache.refresh().await }, |py, inner| crate::runtime::object(py, PyKeySet { inner }))
    }

    #[pyo3(signature = (token, *, algorithms, issuer=None, audience=None, leeway=60, required_claims=None, max_token_size=16384, now=None))]
    #[allow(clippy::too_many_arguments)]
    fn verify<'py>(
        &self,
        py: Python<'py>,
        token: &str,
        algorithms: Vec<String>,
        issuer: Option<String>,
        audience: Option<&Bound<'py, PyAny>>,
        leeway: u64,
        required_claims: Option<Vec<String>>,
        max_token_size: usize,
        now: Option<u64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let v = validation(algorithms, issuer, audience, leeway, required_claims, max_token_size, now)?;
        let cache = self.inner.clone();
        let t = crate::runtime::block(py, cache.verify(token, &v))?;
        to_py_dict(py, &t.claims)
    }

    #[pyo3(signature = (token, *, algorithms, issuer=None, audience=None, leeway=60, required_claims=None, max_token_size=16384, now=None))]
    #[allow(clippy::too_many_arguments)]
    fn verify_async<'py>(
        &self,
        py: Python<'py>,
        token: String,
        algorithms: Vec<String>,
        issuer: Option<String>,
        audience: Option<&Bound<'py, PyAny>>,
        leeway: u64,
        required_claims: Option<Vec<String>>,
        max_token_size: usize,
        now: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let v = validation(algorithms, issuer, audience, leeway, required_claims, max_token_size, now)?;
        let cache = self.inner.clone();
        crate::runtime::awaitable(py, async move { cache.verify(&token, &v).await }, |py, t| {
            guard_py(|| Ok(to_py_dict(py, &t.claims)?.into_any()))
        })
    }

    fn __repr__(&self) -> String {
        "JwksCache(...)".to_owned()
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKey>()?;
    m.add_class::<PyKeySet>()?;
    m.add_class::<PyJwksCache>()?;
    m.add_class::<PyVerifier>()?;
    m.add_function(wrap_pyfunction!(jwt_sign, m)?)?;
    m.add_function(wrap_pyfunction!(jwt_verify, m)?)?;
    m.add_function(wrap_pyfunction!(jwt_verify_jws, m)?)?;
    m.add_function(wrap_pyfunction!(jwt_decode_unverified, m)?)?;
    let algs: Vec<&str> = Algorithm::ALL.iter().map(|a| a.as_str()).collect();
    m.add("ALGORITHMS", algs)?;
    Ok(())
}
