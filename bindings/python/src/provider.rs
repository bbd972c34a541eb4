//! The OIDC provider: `idflow.Provider`, whose `handle` a WSGI/ASGI app
//! (Flask, FastAPI, ...) calls to mount every provider endpoint.

use crate::error::{guard, IntoPyResult};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use std::sync::Arc;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyProvider>()?;
    m.add_class::<PyProviders>()?;
    m.add_class::<PyHttpResponse>()?;
    m.add_class::<PyOAuthStart>()
}

/// The start of a social login by API: where to send the browser, and the
/// PKCE verifier that `Provider.oauth_exchange` needs. Keep the verifier in
/// the user's own session (never in a URL).
#[pyclass(frozen, module = "idflow", name = "OAuthStart")]
pub struct PyOAuthStart {
    #[pyo3(get)]
    url: String,
    #[pyo3(get)]
    code_verifier: String,
}

#[pymethods]
impl PyOAuthStart {
    fn __repr__(&self) -> String {
        // The verifier is a secret: never in a repr.
        "<idflow.OAuthStart>".to_owned()
    }
}

impl From<idflow::oidc::provider::OAuthStart> for PyOAuthStart {
    fn from(s: idflow::oidc::provider::OAuthStart) -> Self {
        PyOAuthStart { url: s.url, code_verifier: s.code_verifier }
    }
}

/// The provider's answer to one request.
#[pyclass(frozen, module = "idflow", name = "HttpResponse")]
pub struct PyHttpResponse {
    #[pyo3(get)]
    status: u16,
    #[pyo3(get)]
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[pymethods]
impl PyHttpResponse {
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.body)
    }

    /// The first header named `name` (case-insensitive), or None.
    fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }

    fn __repr__(&self) -> String {
        format!("<idflow.HttpResponse status={}>", self.status)
    }
}

impl From<idflow::oidc::provider::HttpResponse> for PyHttpResponse {
    fn from(r: idflow::oidc::provider::HttpResponse) -> Self {
        PyHttpResponse { status: r.status, headers: r.headers, body: r.body }
    }
}

/// The OpenID Connect provider for one project (see the README, "OpenID
/// Connect provider", and docs/configuration.md). `handle` blocks without holding the GIL;
/// `handle_async` returns an awaitable.
#[pyclass(frozen, module = "idflow", name = "Provider")]
pub struct PyProvider {
    inner: Arc<idflow::oidc::provider::Provider>,
}

/// Headers as a mapping or as (name, value) pairs.
fn headers_arg(headers: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let Some(h) = headers else { return Ok(Vec::new()) };
    if h.is_none() {
        return Ok(Vec::new());
    }
    let items: Vec<(String, String)> = if let Ok(d) = h.cast::<PyDict>() {
        d.iter().map(|(k, v)| Ok((k.extract()?, v.extract()?))).collect::<PyResult<_>>()?
    } else if h.hasattr("items")? {
        h.call_method0("items")?.try_iter()?.map(|kv| kv?.extract()).collect::<PyResult<_>>()?
    } else {
        h.try_iter()?.map(|kv| kv?.extract()).collect::<PyResult<_>>()?
    };
    Ok(items)
}

fn body_arg(body: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<u8>> {
    match body {
        None => Ok(Vec::new()),
        Some(b) if b.is_none() => Ok(Vec::new()),
        Some(b) => {
            if let Ok(bytes) = b.cast::<PyBytes>() {
                Ok(bytes.as_bytes().to_vec())
            } else if let Ok(s) = b.cast::<PyString>() {
                Ok(s.to_str()?.as_bytes().to_vec())
            } else {
                Err(PyTypeError::new_err("body must be bytes, str or None"))
            }
        }
    }
}

/// The request `handle` was given, checked.
fn http_request(
    method: &str,
    url: &str,
    headers: Option<&Bound<'_, PyAny>>,
    body: Option<&Bound<'_, PyAny>>,
    peer: Option<&str>,
) -> PyResult<idflow::oidc::provider::HttpRequest> {
    idflow::oidc::provider::HttpRequest::new(method, url, headers_arg(headers)?, body_arg(body)?).with_peer_text(peer).py()
}

/// Several projects in one app, each at its own issuer
/// (`{base_url}/{projectId}`) with every endpoint under it and a store of
/// its own; one project is served as `Provider` serves it.
#[pyclass(frozen, module = "idflow", name = "Providers")]
pub struct PyProviders {
    inner: Arc<idflow::oidc::provider::Providers>,
}

#[pymethods]
impl PyProviders {
    /// `projects` are project files' JSON texts (flow paths relative to
    /// `base_dir`); with several, `database` holds `{project}`
    /// (`data/{project}.db`); None keeps each in memory.
    #[new]
    #[pyo3(signature = (projects, *, base_dir=".", database=None, base_url=None))]
    fn new(projects: Vec<String>, base_dir: &str, database: Option<&str>, base_url: Option<&str>) -> PyResult<Self> {
        let _enter = crate::runtime::runtime().enter();
        let texts: Vec<&str> = projects.iter().map(String::as_str).collect();
        let p = guard(|| idflow::oidc::provider::Providers::open_json(&texts, std::path::Path::new(base_dir), database, base_url)).py()?;
        Ok(PyProviders { inner: Arc::new(p) })
    }

    /// Reads project files (JSON, or TOML by the name); a folder stands for
    /// every `.json` and `.toml` file in it.
    #[staticmethod]
    #[pyo3(signature = (paths, *, database=None, base_url=None))]
    fn from_files(paths: Vec<String>, database: Option<&str>, base_url: Option<&str>) -> PyResult<Self> {
        let _enter = crate::runtime::runtime().enter();
        let p = guard(|| idflow::oidc::provider::Providers::open_files(&paths, database, base_url)).py()?;
        Ok(PyProviders { inner: Arc::new(p) })
    }

    /// Each project's issuer, in the order the projects were given.
    #[getter]
    fn issuers(&self) -> Vec<String> {
        self.inner.providers().iter().map(|p| p.issuer().to_owned()).collect()
    }

    /// The provider of project `project_id` (its engine, keys,
    /// applications), or None.
    fn provider(&self, project_id: &str) -> Option<PyProvider> {
        self.inner.provider(project_id).map(|p| PyProvider { inner: p.clone() })
    }

    /// Every project's metrics (Prometheus text), labelled by project.
    fn metrics(&self) -> String {
        self.inner.metrics()
    }

    /// Handles one request, as `Provider.handle`: the project whose issuer
    /// the path is under answers it.
    #[pyo3(signature = (method, url, headers=None, body=None, *, peer=None))]
    fn handle(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
        peer: Option<&str>,
    ) -> PyResult<PyHttpResponse> {
        let request = http_request(method, url, headers, body, peer)?;
        let providers = self.inner.clone();
        let r = crate::runtime::block(py, async move { Ok(providers.handle(request).await) })?;
        Ok(r.into())
    }

    /// `handle` as an awaitable for asyncio apps.
    #[pyo3(signature = (method, url, headers=None, body=None, *, peer=None))]
    fn handle_async<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        url: &str,
        headers: Option<&Bound<'py, PyAny>>,
        body: Option<&Bound<'py, PyAny>>,
        peer: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = http_request(method, url, headers, body, peer)?;
        let providers = self.inner.clone();
        crate::runtime::awaitable(py, async move { Ok(providers.handle(request).await) }, |py, r| {
            crate::runtime::object(py, PyHttpResponse::from(r))
        })
    }

    fn __repr__(&self) -> String {
        format!("<idflow.Providers issuers={:?}>", self.issuers())
    }
}

#[pymethods]
impl PyProvider {
    /// `project` is the project file's JSON text (flow paths relative to
    /// `base_dir`); `database` a SQLite file or a `postgres://` URL
    /// (`{project}` replaced by the project id), or None for memory; `base_url`
    /// overrides the project's (the issuer is `{base_url}/{projectId}`).
    #[new]
    #[pyo3(signature = (project, *, base_dir=".", database=None, base_url=None))]
    fn new(project: &str, base_dir: &str, database: Option<&str>, base_url: Option<&str>) -> PyResult<Self> {
        let _enter = crate::runtime::runtime().enter();
        let p = guard(|| idflow::oidc::provider::Provider::open(project, std::path::Path::new(base_dir), database, base_url))
            .py()?;
        Ok(PyProvider { inner: Arc::new(p) })
    }

    /// Reads the project file at `path` (JSON, or TOML by its name).
    #[staticmethod]
    #[pyo3(signature = (path, *, database=None, base_url=None))]
    fn from_file(path: &str, database: Option<&str>, base_url: Option<&str>) -> PyResult<Self> {
        let _enter = crate::runtime::runtime().enter();
        let p = guard(|| idflow::oidc::provider::Provider::open_file(path, database, base_url)).py()?;
        Ok(PyProvider { inner: Arc::new(p) })
    }

    #[getter]
    fn issuer(&self) -> String {
        self.inner.issuer().to_owned()
    }

    /// The provider's metrics in the Prometheus (OpenMetrics) text format:
    /// serve them where only your monitoring reaches.
    fn metrics(&self) -> String {
        self.inner.metrics()
    }

    /// The provider's flow engine: flows and users management on the same store.
    #[getter]
    fn engine(&self) -> crate::flow::PyFlowEngine {
        crate::flow::PyFlowEngine::shared(self.inner.engine().clone())
    }

    /// Handles one request. `url` is a path with its query (or an absolute
    /// URL); `headers` a mapping or (name, value) pairs; `body` bytes or str;
    /// `peer` the client's IP address (for the per-address rate limits).
    #[pyo3(signature = (method, url, headers=None, body=None, *, peer=None))]
    fn handle(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
        peer: Option<&str>,
    ) -> PyResult<PyHttpResponse> {
        let request = http_request(method, url, headers, body, peer)?;
        let provider = self.inner.clone();
        let r = crate::runtime::block(py, async move { Ok(provider.handle(request).await) })?;
        Ok(r.into())
    }

    /// `handle` as an awaitable for asyncio apps.
    #[pyo3(signature = (method, url, headers=None, body=None, *, peer=None))]
    fn handle_async<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        url: &str,
        headers: Option<&Bound<'py, PyAny>>,
        body: Option<&Bound<'py, PyAny>>,
        peer: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = http_request(method, url, headers, body, peer)?;
        let provider = self.inner.clone();
        crate::runtime::awaitable(py, async move { Ok(provider.handle(request).await) }, |py, r| {
            crate::runtime::object(py, PyHttpResponse::from(r))
        })
    }

    /// Social login by API, step 1: the upstream authorization URL for the
    /// custom OAuth provider `provider` and a fresh PKCE verifier to keep.
    /// After the callback the browser lands on `redirect_url?code=...` (or
    /// `?error=...`); `redirect_url` must be approved (the project's
    /// `redirectUrls`, or the provider's own `redirectUrl`).
    #[pyo3(signature = (provider, *, redirect_url=None, prompt=None, login_hint=None))]
    fn oauth_authorize(
        &self,
        py: Python<'_>,
        provider: &str,
        redirect_url: Option<&str>,
        prompt: Option<Vec<String>>,
        login_hint: Option<&str>,
    ) -> PyResult<PyOAuthStart> {
        let p = self.inner.clone();
        let start = crate::runtime::block(py, p.oauth_begin(provider, redirect_url, prompt, login_hint))?;
        Ok(start.into())
    }

    /// `oauth_authorize` as an awaitable.
    #[pyo3(signature = (provider, *, redirect_url=None, prompt=None, login_hint=None))]
    fn oauth_authorize_async<'py>(
        &self,
        py: Python<'py>,
        provider: String,
        redirect_url: Option<String>,
        prompt: Option<Vec<String>>,
        login_hint: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let p = self.inner.clone();
        crate::runtime::awaitable(py, async move { p.oauth_begin(&provider, redirect_url.as_deref(), prompt, login_hint.as_deref()).await }, |py, s| {
            crate::runtime::object(py, PyOAuthStart::from(s))
        })
    }

    /// Social login by API, step 2: the one-time code from the redirect and
    /// the `code_verifier` that `oauth_authorize` returned →
    /// `{sessionJwt, refreshJwt, user}` (the flow API's `authInfo`).
    fn oauth_exchange<'py>(&self, py: Python<'py>, code: &str, code_verifier: &str) -> PyResult<Bound<'py, PyAny>> {
        let p = self.inner.clone();
        let info = py.detach(|| guard(|| p.oauth_exchange_code(code, code_verifier))).py()?;
        let v = info.to_json();
        crate::convert::to_py_value(py, &v)
    }

    /// The upstream access token kept for a user (`manageProviderTokens`),
    /// refreshed first when expired: `{provider, accessToken, expiresAt, scope}`.
    fn provider_token<'py>(&self, py: Python<'py>, user_id: &str, provider: &str) -> PyResult<Bound<'py, PyAny>> {
        let p = self.inner.clone();
        let v = crate::runtime::block(py, p.provider_token(user_id, provider))?;
        crate::convert::to_py_value(py, &v)
    }

    /// `provider_token` as an awaitable.
    fn provider_token_async<'py>(&self, py: Python<'py>, user_id: String, provider: String) -> PyResult<Bound<'py, PyAny>> {
        let p = self.inner.clone();
        crate::runtime::awaitable(py, async move { p.provider_token(&user_id, &provider).await }, |py, v| crate::convert::to_py_value(py, &v))
    }

    /// Adds a signing key that every provider on this database publishes
    /// within seconds and signs with after `prepublish` seconds (defaults:
    /// the project's `signing.alg` and `signing.prepublish`); returns
    /// `{"kid", "alg", "signsFrom"}`.
    #[pyo3(signature = (alg=None, prepublish=None))]
    fn rotate_keys<'py>(&self, py: Python<'py>, alg: Option<&str>, prepublish: Option<u64>) -> PyResult<Bound<'py, PyAny>> {
        let rotated = py.detach(|| guard(|| self.inner.rotate_keys(alg, prepublish))).py()?;
        crate::convert::to_py_value(py, &rotated.to_json())
    }

    /// The discovery document.
    fn discovery<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::convert::to_py_value(py, &self.inner.discovery())
    }

    /// The configured applications (OIDC clients), without secrets.
    fn applications<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.inner.applications().iter().map(|a| crate::convert::to_py_value(py, &a.to_json())).collect()
    }

    /// The configured access keys (client_credentials), without secrets.
    fn access_keys<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.inner.access_keys().iter().map(|k| crate::convert::to_py_value(py, &k.to_json())).collect()
    }

    fn __repr__(&self) -> String {
        format!("<idflow.Provider issuer={:?}>", self.inner.issuer())
    }
}
