//! `idflow.pkce`: verifiers, challenges, verification (RFC 7636).

use crate::error::{guard, IntoPyResult};
use idflow::pkce::{self, Method};
use pyo3::prelude::*;

/// A code verifier with its challenge.
#[pyclass(frozen, module = "idflow", name = "PkcePair")]
pub struct PyPkcePair {
    #[pyo3(get)]
    verifier: String,
    #[pyo3(get)]
    challenge: String,
    #[pyo3(get)]
    method: &'static str,
}

#[pymethods]
impl PyPkcePair {
    fn __repr__(&self) -> String {
        format!("PkcePair(method={:?}, challenge={:?})", self.method, self.challenge)
    }
}

#[pyfunction]
#[pyo3(signature = (length=None))]
fn pkce_generate(length: Option<usize>) -> PyResult<PyPkcePair> {
    let pair = guard(|| pkce::generate(length)).py()?;
    Ok(PyPkcePair { verifier: pair.verifier, challenge: pair.challenge, method: pair.method.as_str() })
}

#[pyfunction]
#[pyo3(signature = (length=None))]
fn pkce_generate_verifier(length: Option<usize>) -> PyResult<String> {
    guard(|| pkce::generate_verifier(length)).py()
}

#[pyfunction]
#[pyo3(signature = (verifier, method="S256", allow_plain=false))]
fn pkce_challenge(verifier: &str, method: &str, allow_plain: bool) -> PyResult<String> {
    guard(|| pkce::challenge(verifier, Method::parse(method)?, allow_plain)).py()
}

#[pyfunction]
#[pyo3(signature = (verifier, challenge, method="S256", allow_plain=false))]
fn pkce_verify(verifier: &str, challenge: &str, method: &str, allow_plain: bool) -> PyResult<bool> {
    guard(|| pkce::verify(verifier, challenge, Method::parse(method)?, allow_plain)).py()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPkcePair>()?;
    m.add_function(wrap_pyfunction!(pkce_generate, m)?)?;
    m.add_function(wrap_pyfunction!(pkce_generate_verifier, m)?)?;
    m.add_function(wrap_pyfunction!(pkce_challenge, m)?)?;
    m.add_function(wrap_pyfunction!(pkce_verify, m)?)?;
    m.add("PKCE_MIN_VERIFIER_LEN", pkce::MIN_VERIFIER_LEN)?;
    m.add("PKCE_MAX_VERIFIER_LEN", pkce::MAX_VERIFIER_LEN)?;
    Ok(())
}
