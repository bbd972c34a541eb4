//! `idflow.SessionManager`: the core session manager over a storage object
//! the app provides (`load() -> str | None`, `save(str)`, `clear()`), and
//! an optional listener `(event: dict) -> None`.

use crate::error::{guard, IntoPyResult};
use crate::oidc::{authorization_params, none_value, request_arg, PyOidcClient};
use crate::runtime::{awaitable, block};
use idflow::oidc::client::{AuthorizationRequest, TokenSet};
use idflow::oidc::client::session::{self, SessionManager, SessionOptions, StorageFuture};
use idflow::{Error, ErrorCode};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{Map, Value};
use std::sync::Arc;

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySessionManager>()
}

/// The app's storage object, called off the event loop with the GIL.
struct PyStorage(Arc<Py<PyAny>>);

impl PyStorage {
    fn call<T: Send + 'static>(
        &self,
        method: &'static str,
        arg: Option<String>,
        convert: fn(&Bound<'_, PyAny>) -> PyResult<T>,
    ) -> StorageFuture<'static, T> {
        let obj = self.0.clone();
        Box::pin(async move {
            let run = move || {
                Python::attach(|py| {
                    let target = obj.bind(py);
                    let out = match arg {
                        Some(a) => target.call_method1(method, (a,)),
                        None => target.call_method0(method),
                    };
                    out.and_then(|v| convert(&v)).map_err(|e| {
                        Error::new(ErrorCode::Storage, format!("the storage's {method}() failed: {e}"))
                    })
                })
            };
            tokio::task::spawn_blocking(run)
                .await
                .unwrap_or_else(|_| Err(Error::new(ErrorCode::Storage, "the storage callback panicked")))
        })
    }
}

fn loaded(v: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if v.is_none() {
        Ok(None)
    } else {
        v.extract::<String>().map(Some)
    }
}

fn nothing(_: &Bound<'_, PyAny>) -> PyResult<()> {
    Ok(())
}

impl session::SessionStorage for PyStorage {
    fn load(&self) -> StorageFuture<'_, Option<String>> {
        self.call("load", None, loaded)
    }
    fn save(&self, text: String) -> StorageFuture<'_, ()> {
        self.call("save", Some(text), nothing)
    }
    fn clear(&self) -> StorageFuture<'_, ()> {
        self.call("clear", None, nothing)
    }
}

/// The app's listener, called with the event dict (`type` is `refreshed`,
/// `signedOut` or `storageFailed`); what it raises is reported as
/// unraisable, never into the call that caused the event.
struct PyListener(Py<PyAny>);

impl session::SessionListener for PyListener {
    fn on_event(&self, event: &session::SessionEvent) {
        Python::attach(|py| {
            let out = crate::convert::to_py_value(py, &event.to_json()).and_then(|e| self.0.bind(py).call1((e,)));
            if let Err(e) = out {
                e.write_unraisable(py, Some(self.0.bind(py)));
            }
        });
    }
}

fn optional_request(request: Option<&Bound<'_, PyDict>>) -> PyResult<Option<AuthorizationRequest>> {
    request.map(request_arg).transpose()
}

fn session_value<'py>(py: Python<'py>, s: session::Session) -> PyResult<Bound<'py, PyAny>> {
    crate::convert::to_py_value(py, &s.to_json())
}

fn maybe_session<'py>(py: Python<'py>, s: Option<session::Session>) -> PyResult<Bound<'py, PyAny>> {
    match s {
        Some(s) => session_value(py, s),
        None => Ok(py.None().into_bound(py)),
    }
}

fn status_value(py: Python<'_>, s: session::SessionStatus) -> PyResult<Bound<'_, PyAny>> {
    Ok(pyo3::types::PyString::new(py, s.as_str()).into_any())
}

fn text_value(py: Python<'_>, s: String) -> PyResult<Bound<'_, PyAny>> {
    Ok(pyo3::types::PyString::new(py, &s).into_any())
}

fn bool_value(py: Python<'_>, b: bool) -> PyResult<Bound<'_, PyAny>> {
    Ok(pyo3::types::PyBool::new(py, b).to_owned().into_any())
}

fn token_set(tokens: &Bound<'_, PyDict>) -> PyResult<TokenSet> {
    TokenSet::from_json(&crate::convert::dict_to_map(tokens)?).py()
}

/// Holds a signed-in user's session: validity checked on device, refresh
/// before expiry (one refresh for concurrent callers), `invalid_grant`
/// signs out, persisted through `storage`. Blocking methods release the
/// GIL; each has an `_async` twin.
#[pyclass(frozen, module = "idflow", name = "SessionManager")]
pub struct PySessionManager {
    inner: Arc<SessionManager>,
}

#[pymethods]
impl PySessionManager {
    #[new]
    #[pyo3(signature = (client, storage, *, refresh_margin=None, revoke_on_sign_out=None, pending_ttl=None, lock_path=None, lock_timeout=None))]
    fn new(
        client: PyRef<'_, PyOidcClient>,
        storage: Py<PyAny>,
        refresh_margin: Option<f64>,
        revoke_on_sign_out: Option<bool>,
        pending_ttl: Option<f64>,
        lock_path: Option<std::path::PathBuf>,
        lock_timeout: Option<f64>,
    ) -> PyResult<Self> {
        let mut o = Map::new();
        for (k, v) in [("refreshMargin", refresh_margin), ("pendingTtl", pending_ttl), ("lockTimeout", lock_timeout)] {
            if let Some(v) = v {
                // JSON has no NaN or infinity: those reach the core as text, a wrong type.
                o.insert(k.into(), serde_json::Number::from_f64(v).map_or_else(|| Value::String(v.to_string()), Value::Number));
            }
        }
        if let Some(r) = revoke_on_sign_out {
            o.insert("revokeOnSignOut".into(), Value::Bool(r));
        }
        if let Some(p) = lock_path {
            o.insert("lockPath".into(), p.to_string_lossy().into_owned().into());
        }
        let options = guard(|| SessionOptions::from_json(&o)).py()?;
        let storage = Arc::new(PyStorage(Arc::new(storage)));
        Ok(PySessionManager { inner: Arc::new(SessionManager::new(client.core(), storage, options)) })
    }

    /// Starts a sign-in: returns the URL to open and keeps the pending
    /// request (state, nonce, PKCE verifier, redirect URI, expiry) in the
    /// storage, so `complete(callback)` works in another process.
    #[pyo3(signature = (*, scopes=None, prompt=None, login_hint=None, max_age=None, params=None, redirect_uri=None))]
    #[allow(clippy::too_many_arguments)]
    fn begin(
        &self,
        py: Python<'_>,
        scopes: Option<Vec<String>>,
        prompt: Option<&Bound<'_, PyAny>>,
        login_hint: Option<String>,
        max_age: Option<u64>,
        params: Option<&Bound<'_, PyDict>>,
        redirect_uri: Option<String>,
    ) -> PyResult<String> {
        let params = authorization_params(scopes, prompt, login_hint, max_age, params, None, redirect_uri)?;
        let m = self.inner.clone();
        block(py, async move { m.begin(&params).await })
    }

    #[pyo3(signature = (*, scopes=None, prompt=None, login_hint=None, max_age=None, params=None, redirect_uri=None))]
    #[allow(clippy::too_many_arguments)]
    fn begin_async<'py>(
        &self,
        py: Python<'py>,
        scopes: Option<Vec<String>>,
        prompt: Option<&Bound<'py, PyAny>>,
        login_hint: Option<String>,
        max_age: Option<u64>,
        params: Option<&Bound<'py, PyDict>>,
        redirect_uri: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = authorization_params(scopes, prompt, login_hint, max_age, params, None, redirect_uri)?;
        let m = self.inner.clone();
        awaitable(py, async move { m.begin(&params).await }, text_value)
    }

    /// Checks the callback, exchanges the code and signs in; returns the
    /// session. Without `request`, the pending request `begin` stored is
    /// used once (none pending, another state or too late: `InvalidRequest`).
    #[pyo3(signature = (callback, request=None))]
    fn complete<'py>(&self, py: Python<'py>, callback: String, request: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let request = optional_request(request)?;
        let m = self.inner.clone();
        let s = block(py, async move { m.complete(&callback, request.as_ref()).await })?;
        session_value(py, s)
    }

    #[pyo3(signature = (callback, request=None))]
    fn complete_async<'py>(&self, py: Python<'py>, callback: String, request: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let request = optional_request(request)?;
        let m = self.inner.clone();
        awaitable(py, async move { m.complete(&callback, request.as_ref()).await }, session_value)
    }

    /// `listener(event)` hears `{"type": "refreshed", "session"}`,
    /// `{"type": "signedOut", "reason", "message"}` and
    /// `{"type": "storageFailed", "code", "message"}`; None stops.
    fn set_listener(&self, listener: Option<Py<PyAny>>) {
        self.inner.set_listener(listener.map(|l| Arc::new(PyListener(l)) as Arc<dyn session::SessionListener>));
    }

    /// Signs in with a token response (`handle_callback`'s); the id_token is verified.
    fn sign_in<'py>(&self, py: Python<'py>, tokens: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
        let tokens = token_set(tokens)?;
        let m = self.inner.clone();
        let s = block(py, async move { m.sign_in(tokens).await })?;
        session_value(py, s)
    }

    fn sign_in_async<'py>(&self, py: Python<'py>, tokens: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
        let tokens = token_set(tokens)?;
        let m = self.inner.clone();
        awaitable(py, async move { m.sign_in(tokens).await }, session_value)
    }

    /// The session (`access_token`, `refresh_token`, `id_token`, `expires_at`, `claims`, ...) or None.
    fn session<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.inner.clone();
        let s = block(py, async move { m.session().await })?;
        maybe_session(py, s)
    }

    fn session_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.inner.clone();
        awaitable(py, async move { m.session().await }, maybe_session)
    }

    /// `"signed_out"`, `"valid"`, `"expired"` or `"invalid"`; the id_token's
    /// signature is checked against the provider's JWKS.
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.inner.clone();
        let s = block(py, async move { m.status().await })?;
        status_value(py, s)
    }

    fn status_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.inner.clone();
        awaitable(py, async move { m.status().await }, status_value)
    }

    fn is_valid(&self, py: Python<'_>) -> PyResult<bool> {
        let m = self.inner.clone();
        block(py, async move { m.is_valid().await })
    }

    fn is_valid_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.inner.clone();
        awaitable(py, async move { m.is_valid().await }, bool_value)
    }

    /// A fresh access token, refreshed first when due.
    fn access_token(&self, py: Python<'_>) -> PyResult<String> {
        let m = self.inner.clone();
        block(py, async move { m.access_token().await })
    }

    fn access_token_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.inner.clone();
        awaitable(py, async move { m.access_token().await }, text_value)
    }

    /// Refreshes now; returns the session.
    fn refresh<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.inner.clone();
        let s = block(py, async move { m.refresh().await })?;
        session_value(py, s)
    }

    fn refresh_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.inner.clone();
        awaitable(py, async move { m.refresh().await }, session_value)
    }

    /// Revokes the refresh token (best effort) and clears the storage.
    fn sign_out(&self, py: Python<'_>) -> PyResult<()> {
        let m = self.inner.clone();
        block(py, async move { m.sign_out().await })
    }

    fn sign_out_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.inner.clone();
        awaitable(py, async move { m.sign_out().await }, none_value)
    }
}
