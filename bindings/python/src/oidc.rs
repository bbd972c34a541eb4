//! The OpenID Connect client: `idflow.OidcClient`. Settings and per-request
//! options arrive as keyword arguments and are handed to the core's parsers
//! (`ClientConfig::from_json`, `AuthorizationParams::from_json`).

use crate::error::{guard, to_py, IntoPyResult};
use crate::runtime::{awaitable, block};
use idflow::oidc::client::{AuthorizationParams, AuthorizationRequest, ClientConfig, OidcClient};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOidcClient>()
}

/// An OpenID Connect client for one provider. Network methods block
/// without the GIL; each has an `_async` twin returning an awaitable.
#[pyclass(frozen, module = "idflow", name = "OidcClient")]
pub struct PyOidcClient {
    inner: Arc<OidcClient>,
}

#[allow(clippy::too_many_arguments)]
fn config(
    client_id: &str,
    redirect_uri: &str,
    discovery_url: Option<&str>,
    issuer: Option<&str>,
    endpoints: Option<&Bound<'_, PyDict>>,
    client_secret: Option<&str>,
    client_auth: Option<&str>,
    private_key: Option<PyRef<'_, crate::jose::PyKey>>,
    scopes: Option<Vec<String>>,
    timeout: Option<f64>,
) -> PyResult<ClientConfig> {
    let mut m = Map::new();
    m.insert("clientId".into(), client_id.into());
    m.insert("redirectUri".into(), redirect_uri.into());
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put("discoveryUrl", discovery_url.map(Into::into));
    put("issuer", issuer.map(Into::into));
    put("clientSecret", client_secret.map(Into::into));
    put("clientAuth", client_auth.map(Into::into));
    put("scopes", scopes.map(|s| json!(s)));
    put("timeout", timeout.map(|t| json!(t)));
    if let Some(e) = endpoints {
        // Endpoint names as in a discovery document, mapped to the settings.
        for (k, v) in crate::convert::dict_to_map(e)? {
            let name = match k.as_str() {
                "authorization_endpoint" => "authorizationEndpoint",
                "token_endpoint" => "tokenEndpoint",
                "userinfo_endpoint" => "userinfoEndpoint",
                "jwks_uri" => "jwksUri",
                "end_session_endpoint" => "endSessionEndpoint",
                "revocation_endpoint" => "revocationEndpoint",
                "issuer" => "issuer",
                other => return Err(to_py(idflow::Error::config(format!("unknown endpoint {other:?}")))),
            };
            m.insert(name.into(), v);
        }
    }
    let key = private_key.map(|k| k.inner().clone());
    ClientConfig::from_json(&m, key).py()
}

/// `authorization_request`'s keyword arguments as the core's
/// `AuthorizationParams` (also `SessionManager.begin`'s).
#[allow(clippy::too_many_arguments)]
pub(crate) fn authorization_params(
    scopes: Option<Vec<String>>,
    prompt: Option<&Bound<'_, PyAny>>,
    login_hint: Option<String>,
    max_age: Option<u64>,
    params: Option<&Bound<'_, PyDict>>,
    response_type: Option<&str>,
    redirect_uri: Option<String>,
) -> PyResult<AuthorizationParams> {
    let mut m = Map::new();
    if let Some(s) = scopes {
        m.insert("scopes".into(), json!(s));
    }
    if let Some(p) = prompt {
        m.insert("prompt".into(), crate::convert::from_py(p)?);
    }
    if let Some(h) = login_hint {
        m.insert("loginHint".into(), h.into());
    }
    if let Some(a) = max_age {
        m.insert("maxAge".into(), a.into());
    }
    if let Some(p) = params {
        m.insert("params".into(), Value::Object(crate::convert::dict_to_map(p)?));
    }
    if let Some(t) = response_type {
        m.insert("responseType".into(), t.into());
    }
    if let Some(r) = redirect_uri {
        m.insert("redirectUri".into(), r.into());
    }
    guard(|| AuthorizationParams::from_json(&m)).py()
}

pub(crate) fn request_arg(request: &Bound<'_, PyDict>) -> PyResult<AuthorizationRequest> {
    let mut m = Map::new();
    for (py_key, core_key) in [("url", "url"), ("state", "state"), ("nonce", "nonce"), ("code_verifier", "codeVerifier"), ("redirect_uri", "redirectUri")] {
        if let Some(v) = request.get_item(py_key)? {
            m.insert(core_key.into(), crate::convert::from_py(&v)?);
        }
    }
    AuthorizationRequest::from_json(&m).py()
}

fn request_dict<'py>(py: Python<'py>, r: &AuthorizationRequest) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("url", &r.url)?;
    d.set_item("state", &r.state)?;
    d.set_item("nonce", &r.nonce)?;
    d.set_item("code_verifier", r.code_verifier.as_deref())?;
    d.set_item("redirect_uri", &r.redirect_uri)?;
    Ok(d)
}

fn extra_params(extra: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, String)>> {
    extra.map_or(Ok(Vec::new()), |d| d.iter().map(|(k, v)| Ok((k.extract()?, v.extract()?))).collect())
}

fn tokens<'py>(py: Python<'py>, t: &idflow::oidc::client::TokenSet) -> PyResult<Bound<'py, PyAny>> {
    crate::convert::to_py_value(py, &t.to_json())
}

fn claims_value<'py>(py: Python<'py>, m: Map<String, Value>) -> PyResult<Bound<'py, PyAny>> {
    crate::convert::to_py_value(py, &Value::Object(m))
}

fn token_value<'py>(py: Python<'py>, t: idflow::oidc::client::TokenSet) -> PyResult<Bound<'py, PyAny>> {
    tokens(py, &t)
}

pub(crate) fn none_value(py: Python<'_>, _: ()) -> PyResult<Bound<'_, PyAny>> {
    Ok(py.None().into_bound(py))
}

impl PyOidcClient {
    pub(crate) fn core(&self) -> Arc<OidcClient> {
        self.inner.clone()
    }
}

#[pymethods]
impl PyOidcClient {
    /// A client with its endpoints given by hand (`endpoints` uses the
    /// discovery document's names: `authorization_endpoint`, `token_endpoint`,
    /// `userinfo_endpoint`, `jwks_uri`, `end_session_endpoint`,
    /// `revocation_endpoint`, `issuer`).
    #[new]
    #[pyo3(signature = (*, client_id, redirect_uri, endpoints, client_secret=None, client_auth=None, private_key=None, scopes=None, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        client_id: &str,
        redirect_uri: &str,
        endpoints: &Bound<'_, PyDict>,
        client_secret: Option<&str>,
        client_auth: Option<&str>,
        private_key: Option<PyRef<'_, crate::jose::PyKey>>,
        scopes: Option<Vec<String>>,
        timeout: Option<f64>,
    ) -> PyResult<Self> {
        let c = config(client_id, redirect_uri, None, None, Some(endpoints), client_secret, client_auth, private_key, scopes, timeout)?;
        let _enter = crate::runtime::runtime().enter();
        let inner = guard(|| OidcClient::new(c.options, c.endpoints.unwrap_or_default())).py()?;
        Ok(PyOidcClient { inner: Arc::new(inner) })
    }

    /// Discovers the provider at `discovery_url`; its issuer must equal
    /// `issuer` (default: the URL without `/.well-known/openid-configuration`).
    #[staticmethod]
    #[pyo3(signature = (discovery_url, *, client_id, redirect_uri, issuer=None, client_secret=None, client_auth=None, private_key=None, scopes=None, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn discover(
        py: Python<'_>,
        discovery_url: &str,
        client_id: &str,
        redirect_uri: &str,
        issuer: Option<&str>,
        client_secret: Option<&str>,
        client_auth: Option<&str>,
        private_key: Option<PyRef<'_, crate::jose::PyKey>>,
        scopes: Option<Vec<String>>,
        timeout: Option<f64>,
    ) -> PyResult<Self> {
        let c = config(client_id, redirect_uri, Some(discovery_url), issuer, None, client_secret, client_auth, private_key, scopes, timeout)?;
        let inner = crate::runtime::block(py, OidcClient::from_config(c))?;
        Ok(PyOidcClient { inner: Arc::new(inner) })
    }

    /// `discover` as an awaitable.
    #[staticmethod]
    #[pyo3(signature = (discovery_url, *, client_id, redirect_uri, issuer=None, client_secret=None, client_auth=None, private_key=None, scopes=None, timeout=None))]
    #[allow(clippy::too_many_arguments)]
    fn discover_async<'py>(
        py: Python<'py>,
        discovery_url: &str,
        client_id: &str,
        redirect_uri: &str,
        issuer: Option<&str>,
        client_secret: Option<&str>,
        client_auth: Option<&str>,
        private_key: Option<PyRef<'_, crate::jose::PyKey>>,
        scopes: Option<Vec<String>>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = config(client_id, redirect_uri, Some(discovery_url), issuer, None, client_secret, client_auth, private_key, scopes, timeout)?;
        awaitable(py, async move { OidcClient::from_config(c).await }, |py, inner| {
            crate::runtime::object(py, PyOidcClient { inner: Arc::new(inner) })
        })
    }

    /// The endpoints in use, by their discovery names.
    #[getter]
    fn endpoints<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::convert::to_py_value(py, &self.inner.endpoints().to_json())
    }

    /// A fresh authorization request: `{url, state, nonce, code_verifier,
    /// redirect_uri}`; keep it (server side) until the callback.
    #[pyo3(signature = (*, scopes=None, prompt=None, login_hint=None, max_age=None, params=None, response_type="code", redirect_uri=None))]
    #[allow(clippy::too_many_arguments)]
    fn authorization_request<'py>(
        &self,
        py: Python<'py>,
        scopes: Option<Vec<String>>,
        prompt: Option<&Bound<'py, PyAny>>,
        login_hint: Option<String>,
        max_age: Option<u64>,
        params: Option<&Bound<'py, PyDict>>,
        response_type: &str,
        redirect_uri: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let params = authorization_params(scopes, prompt, login_hint, max_age, params, Some(response_type), redirect_uri)?;
        let inner = self.inner.clone();
        let r = guard(|| inner.authorization_request(&params)).py()?;
        request_dict(py, &r)
    }

    /// Checks a callback (redirect URL, query or form_post body) against the
    /// expected state; returns `{code, id_token, state}`.
    fn parse_callback<'py>(&self, py: Python<'py>, callback: &str, expected_state: &str) -> PyResult<Bound<'py, PyDict>> {
        let c = guard(|| self.inner.parse_callback(callback, expected_state)).py()?;
        let d = PyDict::new(py);
        d.set_item("code", c.code)?;
        d.set_item("id_token", c.id_token)?;
        d.set_item("state", c.state)?;
        Ok(d)
    }

    /// The client-side work of a callback without network: state check,
    /// token-response parse and id_token validation against `keys` (for
    /// apps that make the token request themselves, and for measuring).
    fn complete_callback<'py>(
        &self,
        py: Python<'py>,
        callback: &str,
        request: &Bound<'py, PyDict>,
        token_status: u16,
        token_body: &[u8],
        keys: PyRef<'py, crate::jose::PyKeySet>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = request_arg(request)?;
        let out = guard(|| self.inner.complete_with(keys.inner(), callback, &request.state, &request.nonce, token_status, token_body))
            .py()?;
        tokens(py, &out)
    }

    /// The RP-initiated logout URL.
    #[pyo3(signature = (id_token_hint=None, post_logout_redirect_uri=None, state=None))]
    fn end_session_url(&self, id_token_hint: Option<&str>, post_logout_redirect_uri: Option<&str>, state: Option<&str>) -> PyResult<String> {
        guard(|| self.inner.end_session_url(id_token_hint, post_logout_redirect_uri, state)).py()
    }

    /// Checks the callback and exchanges its code (or validates the
    /// implicit id_token); returns the token response plus `claims`.
    fn handle_callback<'py>(&self, py: Python<'py>, callback: String, request: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
        let request = request_arg(request)?;
        let c = self.inner.clone();
        let out = block(py, async move { c.handle_callback(&callback, &request).await })?;
        token_value(py, out)
    }

    fn handle_callback_async<'py>(&self, py: Python<'py>, callback: String, request: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
        let request = request_arg(request)?;
        let c = self.inner.clone();
        awaitable(py, async move { c.handle_callback(&callback, &request).await }, token_value)
    }

    /// Exchanges a code (with its PKCE verifier); validates the id_token.
    #[pyo3(signature = (code, *, code_verifier=None, nonce=None, redirect_uri=None, params=None))]
    fn exchange_code<'py>(&self, py: Python<'py>, code: String, code_verifier: Option<String>, nonce: Option<String>, redirect_uri: Option<String>, params: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let extra = extra_params(params)?;
        let c = self.inner.clone();
        let out = block(py, async move { c.exchange_code(&code, code_verifier.as_deref(), nonce.as_deref(), redirect_uri.as_deref(), &extra).await })?;
        token_value(py, out)
    }

    #[pyo3(signature = (code, *, code_verifier=None, nonce=None, redirect_uri=None, params=None))]
    fn exchange_code_async<'py>(&self, py: Python<'py>, code: String, code_verifier: Option<String>, nonce: Option<String>, redirect_uri: Option<String>, params: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let extra = extra_params(params)?;
        let c = self.inner.clone();
        awaitable(py, async move { c.exchange_code(&code, code_verifier.as_deref(), nonce.as_deref(), redirect_uri.as_deref(), &extra).await }, token_value)
    }

    /// Validates an id_token with the provider's JWKS; returns its claims.
    #[pyo3(signature = (id_token, *, nonce=None, access_token=None))]
    fn validate_id_token<'py>(&self, py: Python<'py>, id_token: String, nonce: Option<String>, access_token: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.inner.clone();
        let out = block(py, async move { c.validate_id_token(&id_token, nonce.as_deref(), access_token.as_deref()).await })?;
        claims_value(py, out)
    }

    #[pyo3(signature = (id_token, *, nonce=None, access_token=None))]
    fn validate_id_token_async<'py>(&self, py: Python<'py>, id_token: String, nonce: Option<String>, access_token: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.inner.clone();
        awaitable(py, async move { c.validate_id_token(&id_token, nonce.as_deref(), access_token.as_deref()).await }, claims_value)
    }

    fn userinfo<'py>(&self, py: Python<'py>, access_token: String) -> PyResult<Bound<'py, PyAny>> {
        let c = self.inner.clone();
        let out = block(py, async move { c.userinfo(&access_token).await })?;
        claims_value(py, out)
    }

    fn userinfo_async<'py>(&self, py: Python<'py>, access_token: String) -> PyResult<Bound<'py, PyAny>> {
        let c = self.inner.clone();
        awaitable(py, async move { c.userinfo(&access_token).await }, claims_value)
    }

    #[pyo3(signature = (refresh_token, *, scopes=None))]
    fn refresh<'py>(&self, py: Python<'py>, refresh_token: String, scopes: Option<Vec<String>>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.inner.clone();
        let out = block(py, async move { c.refresh(&refresh_token, scopes.as_deref()).await })?;
        token_value(py, out)
    }

    #[pyo3(signature = (refresh_token, *, scopes=None))]
    fn refresh_async<'py>(&self, py: Python<'py>, refresh_token: String, scopes: Option<Vec<String>>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.inner.clone();
        awaitable(py, async move { c.refresh(&refresh_token, scopes.as_deref()).await }, token_value)
    }

    /// Revokes a token (RFC 7009).
    #[pyo3(signature = (token, token_type_hint=None))]
    fn revoke(&self, py: Python<'_>, token: String, token_type_hint: Option<String>) -> PyResult<()> {
        let c = self.inner.clone();
        block(py, async move { c.revoke(&token, token_type_hint.as_deref()).await })
    }

    #[pyo3(signature = (token, token_type_hint=None))]
    fn revoke_async<'py>(&self, py: Python<'py>, token: String, token_type_hint: Option<String>) -> PyResult<Bound<'py, PyAny>> {
        let c = self.inner.clone();
        awaitable(py, async move { c.revoke(&token, token_type_hint.as_deref()).await }, none_value)
    }
}
