//! Flows: `idflow.validate_flow`.

use crate::error::{guard, IntoPyResult};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Every problem in a flow's JSON text, as dicts with `step`, `field` and
/// `message` (an empty list when the flow is valid).
#[pyfunction]
fn validate_flow<'py>(py: Python<'py>, text: &str) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let problems = guard(|| Ok(idflow::flow::validate_flow(text))).py()?;
    problems
        .into_iter()
        .map(|p| {
            let d = PyDict::new(py);
            d.set_item("step", p.step)?;
            d.set_item("field", p.field)?;
            d.set_item("message", p.message)?;
            Ok(d)
        })
        .collect()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyFlowEngine>()?;
    m.add_function(wrap_pyfunction!(password_hash, m)?)?;
    m.add_function(wrap_pyfunction!(password_verify, m)?)?;
    m.add_function(wrap_pyfunction!(validate_flow, m)?)
}

fn hashing(memory_kib: u32, iterations: u32, parallelism: u32) -> idflow::credentials::password::PasswordHashing {
    idflow::credentials::password::PasswordHashing { memory_kib, iterations, parallelism }
}

/// An Argon2id PHC string for `password` (a fresh salt each time), as idflow
/// stores it; for seeding users or comparing with other libraries.
#[pyfunction]
#[pyo3(signature = (password, *, memory_kib=19456, iterations=2, parallelism=1))]
fn password_hash(py: Python<'_>, password: &str, memory_kib: u32, iterations: u32, parallelism: u32) -> PyResult<String> {
    let h = hashing(memory_kib, iterations, parallelism);
    py.detach(|| guard(|| h.hash(password))).py()
}

/// Whether `password` matches `hash` (Argon2, bcrypt, PBKDF2 PHC or Django's
/// pbkdf2_sha256), compared in constant time; a malformed hash raises.
#[pyfunction]
fn password_verify(py: Python<'_>, password: &str, hash: &str) -> PyResult<bool> {
    guard(|| idflow::credentials::password::check_hash(hash)).py()?;
    py.detach(|| guard(|| hashing(8192, 1, 1).verify(password, hash).map(|c| c.matches))).py()
}

/// A flow engine for one project (see the core `FlowEngine`). IO methods
/// block without holding the GIL; the `_async` twins return awaitables.
#[pyclass(frozen, module = "idflow", name = "FlowEngine")]
pub struct PyFlowEngine {
    inner: std::sync::Arc<idflow::flow::FlowEngine>,
}

impl PyFlowEngine {
    /// Wraps an engine shared with its owner (a `Provider`).
    pub(crate) fn shared(inner: std::sync::Arc<idflow::flow::FlowEngine>) -> PyFlowEngine {
        PyFlowEngine { inner }
    }
}

use idflow::store::open as store;

fn input_map(input: Option<&Bound<'_, PyDict>>) -> PyResult<serde_json::Map<String, serde_json::Value>> {
    input.map(crate::convert::dict_to_map).transpose().map(Option::unwrap_or_default)
}

#[pymethods]
impl PyFlowEngine {
    /// `project` is the project file's JSON text; flow paths in it resolve
    /// against `base_dir`. `database`: a SQLite file path, or None for memory.
    #[new]
    #[pyo3(signature = (project, *, key, base_dir=".", database=None))]
    fn new(project: &str, key: PyRef<'_, crate::jose::PyKey>, base_dir: &str, database: Option<&str>) -> PyResult<Self> {
        let key = key.inner().clone();
        let _enter = crate::runtime::runtime().enter();
        let engine = guard(|| {
            let project = idflow::project::Project::from_json(project, std::path::Path::new(base_dir))?;
            project.engine(key, store(database)?)
        })
        .py()?;
        Ok(PyFlowEngine { inner: std::sync::Arc::new(engine) })
    }

    /// Reads the project file at `path` (flow paths relative to it).
    #[staticmethod]
    #[pyo3(signature = (path, *, key, database=None))]
    fn from_file(path: &str, key: PyRef<'_, crate::jose::PyKey>, database: Option<&str>) -> PyResult<Self> {
        let key = key.inner().clone();
        let _enter = crate::runtime::runtime().enter();
        let engine = guard(|| idflow::project::Project::from_file(path)?.engine(key, store(database)?))
            .py()?;
        Ok(PyFlowEngine { inner: std::sync::Arc::new(engine) })
    }

    #[pyo3(signature = (flow_id, input=None, request=None))]
    fn start<'py>(&self, py: Python<'py>, flow_id: &str, input: Option<&Bound<'py, PyDict>>, request: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let input = input_map(input)?;
        let request = request.map(crate::convert::dict_to_map).transpose()?.map(serde_json::Value::Object);
        let engine = self.inner.clone();
        let r = crate::runtime::block(py, engine.start(flow_id, input, request))?;
        crate::convert::to_py_value(py, &r.to_json())
    }

    #[pyo3(signature = (flow_id, input=None, request=None))]
    fn start_async<'py>(&self, py: Python<'py>, flow_id: String, input: Option<&Bound<'py, PyDict>>, request: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let input = input_map(input)?;
        let request = request.map(crate::convert::dict_to_map).transpose()?.map(serde_json::Value::Object);
        let engine = self.inner.clone();
        crate::runtime::awaitable(py, async move { engine.start(&flow_id, input, request).await }, |py, r| {
            crate::convert::to_py_value(py, &r.to_json())
        })
    }

    #[pyo3(signature = (execution_id, step_id, interaction_id, input=None))]
    fn next<'py>(&self, py: Python<'py>, execution_id: &str, step_id: &str, interaction_id: &str, input: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let input = input_map(input)?;
        let engine = self.inner.clone();
        let r = crate::runtime::block(py, engine.next(execution_id, step_id, interaction_id, input))?;
        crate::convert::to_py_value(py, &r.to_json())
    }

    #[pyo3(signature = (execution_id, step_id, interaction_id, input=None))]
    fn next_async<'py>(&self, py: Python<'py>, execution_id: String, step_id: String, interaction_id: String, input: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let input = input_map(input)?;
        let engine = self.inner.clone();
        crate::runtime::awaitable(py, async move { engine.next(&execution_id, &step_id, &interaction_id, input).await }, |py, r| {
            crate::convert::to_py_value(py, &r.to_json())
        })
    }

    /// Approves, from another device, the sign-in that mailed a
    /// `crossDevice` link (its `execution` and `link` query parameters).
    fn approve_link(&self, py: Python<'_>, execution_id: &str, token: &str) -> PyResult<()> {
        let engine = self.inner.clone();
        py.detach(|| guard(|| engine.approve_link(execution_id, token))).py()
    }

    /// Creates a user (`fields` use the `/v1` names); returns it.
    #[pyo3(signature = (login_id, fields=None))]
    fn create_user<'py>(&self, py: Python<'py>, login_id: &str, fields: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let fields = input_map(fields)?;
        let store = self.inner.store().clone();
        let user = py.detach(|| guard(|| idflow::users::create_user(store.as_ref(), login_id, &fields))).py()?;
        crate::convert::to_py_value(py, &user.to_json())
    }

    fn get_user<'py>(&self, py: Python<'py>, user_id: &str) -> PyResult<Bound<'py, PyAny>> {
        let store = self.inner.store().clone();
        let user = py.detach(|| guard(|| idflow::users::get_user(store.as_ref(), user_id))).py()?;
        crate::convert::to_py_value(py, &user.to_json())
    }

    fn update_user<'py>(&self, py: Python<'py>, user_id: &str, fields: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
        let fields = crate::convert::dict_to_map(fields)?;
        let store = self.inner.store().clone();
        let user = py.detach(|| guard(|| idflow::users::update_user(store.as_ref(), user_id, &fields))).py()?;
        crate::convert::to_py_value(py, &user.to_json())
    }

    fn delete_user(&self, py: Python<'_>, user_id: &str) -> PyResult<()> {
        let store = self.inner.store().clone();
        py.detach(|| guard(|| idflow::users::delete_user(store.as_ref(), user_id))).py()
    }

    /// Sets a user's password; the project's `passwords` policy applies.
    fn set_password(&self, py: Python<'_>, user_id: &str, password: String) -> PyResult<()> {
        let engine = self.inner.clone();
        crate::runtime::block(py, async move { idflow::users::password::set(engine.store().as_ref(), engine.passwords(), user_id, password).await })
    }

    /// Stores a hash made elsewhere (Argon2, bcrypt, PBKDF2): a migration.
    /// The user's next sign-in replaces it with Argon2id.
    fn import_password_hash(&self, py: Python<'_>, user_id: &str, hash: &str) -> PyResult<()> {
        let store = self.inner.store().clone();
        py.detach(|| guard(|| idflow::users::password::import_hash(store.as_ref(), user_id, hash))).py()
    }

    fn remove_password(&self, py: Python<'_>, user_id: &str) -> PyResult<()> {
        let store = self.inner.store().clone();
        py.detach(|| guard(|| idflow::users::password::remove(store.as_ref(), user_id))).py()
    }

    /// Ends every sign-in of the user made until now: provider sessions,
    /// codes, refresh tokens, and access tokens at userinfo.
    fn sign_out_everywhere(&self, py: Python<'_>, user_id: &str) -> PyResult<()> {
        let store = self.inner.store().clone();
        py.detach(|| guard(|| idflow::users::sessions::sign_out_everywhere(store.as_ref(), user_id))).py()
    }

    /// Whether the user has an authenticator app (TOTP).
    fn has_totp(&self, py: Python<'_>, user_id: &str) -> PyResult<bool> {
        let store = self.inner.store().clone();
        py.detach(|| guard(|| idflow::users::totp::is_enrolled(store.as_ref(), user_id))).py()
    }

    /// Removes the user's authenticator app and its recovery codes.
    fn remove_totp(&self, py: Python<'_>, user_id: &str) -> PyResult<()> {
        let store = self.inner.store().clone();
        py.detach(|| guard(|| idflow::users::totp::remove(store.as_ref(), user_id))).py()
    }

    /// How many unused recovery codes the user has.
    fn recovery_codes_left(&self, py: Python<'_>, user_id: &str) -> PyResult<usize> {
        let store = self.inner.store().clone();
        py.detach(|| guard(|| idflow::users::totp::recovery_codes_left(store.as_ref(), user_id))).py()
    }

    /// The user's passkeys: `[{id, createdAt, lastUsedAt}]`.
    fn list_passkeys<'py>(&self, py: Python<'py>, user_id: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let store = self.inner.store().clone();
        let keys = py.detach(|| guard(|| idflow::users::passkeys::list(store.as_ref(), user_id))).py()?;
        keys.iter().map(|k| crate::convert::to_py_value(py, k)).collect()
    }

    /// Removes one of the user's passkeys by its id.
    fn remove_passkey(&self, py: Python<'_>, user_id: &str, passkey_id: &str) -> PyResult<()> {
        let store = self.inner.store().clone();
        py.detach(|| guard(|| idflow::users::passkeys::remove(store.as_ref(), user_id, passkey_id))).py()
    }

    fn has_password(&self, py: Python<'_>, user_id: &str) -> PyResult<bool> {
        let store = self.inner.store().clone();
        py.detach(|| guard(|| idflow::users::password::has_password(store.as_ref(), user_id))).py()
    }

    /// Clears the failed sign-ins counted against `login_id` (its lockout).
    fn unlock_login_id(&self, py: Python<'_>, login_id: &str) -> PyResult<()> {
        let store = self.inner.store().clone();
        py.detach(|| guard(|| idflow::users::password::unlock(store.as_ref(), login_id))).py()
    }

    /// Users whose login id, email or name contains `text` (case-insensitive).
    #[pyo3(signature = (text=None, status=None, limit=100, offset=0))]
    fn search_users<'py>(&self, py: Python<'py>, text: Option<String>, status: Option<&str>, limit: usize, offset: usize) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let status = status
            .map(|s| idflow::user::UserStatus::parse(s).ok_or_else(|| idflow::Error::invalid_request("status must be \"enabled\" or \"disabled\"")))
            .transpose()
            .py()?;
        let query = idflow::user::UserQuery { text, status, limit, offset };
        let store = self.inner.store().clone();
        let users = py.detach(|| guard(|| idflow::users::search_users(store.as_ref(), &query))).py()?;
        users.iter().map(|u| crate::convert::to_py_value(py, &u.to_json())).collect()
    }

    /// Calls a connector once and reports status, headers, body, duration or the error.
    #[pyo3(signature = (connector_id, method="GET", endpoint="", body=None))]
    fn test_connector<'py>(&self, py: Python<'py>, connector_id: &str, method: &str, endpoint: &str, body: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let body = body.map(crate::convert::from_py).transpose()?;
        let engine = self.inner.clone();
        let r = crate::runtime::block(py, engine.test_connector(connector_id, method, endpoint, body))?;
        crate::convert::to_py_value(py, &r.to_json())
    }
}
