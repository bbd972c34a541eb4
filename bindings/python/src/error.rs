//! Maps `idflow::Error` to Python exceptions: `IdflowError` with `.code` and
//! `.message`, subclassed per error family. Panics become `InternalError`.

use idflow::{Error, ErrorCode, ErrorFamily};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};

create_exception!(idflow, IdflowError, PyException, "Base class of every idflow error; `.code` is the stable error code.");
create_exception!(idflow, OAuthError, IdflowError, "OAuth 2.0 / OpenID Connect protocol errors.");
create_exception!(idflow, TokenError, IdflowError, "Token and key errors.");
create_exception!(idflow, FlowError, IdflowError, "Flow engine errors.");
create_exception!(idflow, ConfigError, IdflowError, "Invalid configuration or options.");
create_exception!(idflow, NetworkError, IdflowError, "Outbound network failures.");
create_exception!(idflow, StorageError, IdflowError, "Store failures.");
create_exception!(idflow, InternalError, IdflowError, "A bug in idflow; please report it.");

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("IdflowError", py.get_type::<IdflowError>())?;
    m.add("OAuthError", py.get_type::<OAuthError>())?;
    m.add("TokenError", py.get_type::<TokenError>())?;
    m.add("FlowError", py.get_type::<FlowError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("NetworkError", py.get_type::<NetworkError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    m.add("ERROR_CODES", codes)?;
    m.add_function(wrap_pyfunction!(_debug_panic, m)?)?;
    m.add_function(wrap_pyfunction!(_debug_raise, m)?)?;
    Ok(())
}

/// Converts a core error into the family's exception with `.code` set.
pub(crate) fn to_py(err: Error) -> PyErr {
    let message = err.message.clone();
    let py_err = match err.code.family() {
        ErrorFamily::OAuth => OAuthError::new_err(message.clone()),
        ErrorFamily::Token => TokenError::new_err(message.clone()),
        ErrorFamily::Flow => FlowError::new_err(message.clone()),
        ErrorFamily::Config => ConfigError::new_err(message.clone()),
        ErrorFamily::Network => NetworkError::new_err(message.clone()),
        ErrorFamily::Storage => StorageError::new_err(message.clone()),
        ErrorFamily::Internal => InternalError::new_err(message.clone()),
    };
    Python::attach(|py| {
        let value = py_err.value(py);
        let _ = value.setattr("code", err.code.as_str());
        let _ = value.setattr("message", message);
    });
    py_err
}

pub(crate) use idflow::error::guard;

/// Like [`guard`] for functions that already return `PyResult`.
pub(crate) fn guard_py<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(to_py(Error::internal("idflow panicked; this is a bug"))))
}

pub(crate) trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// Test hook: panics inside the guard, to prove panics surface as InternalError.
#[pyfunction]
#[allow(clippy::panic)]
fn _debug_panic() -> PyResult<()> {
    guard(|| -> Result<(), Error> { panic!("deliberate panic for the binding test") }).py()
}

/// Test hook: raises the exception for `code`, to check the family mapping.
#[pyfunction]
fn _debug_raise(code: &str) -> PyResult<()> {
    let code = ErrorCode::parse(code).ok_or_else(|| to_py(Error::invalid_request("unknown error code")))?;
    Err(to_py(Error::new(code, "raised by _debug_raise")))
}
