//! Python binding: the `idflow._idflow` extension module. Only conversion of
//! types and errors lives here; behaviour is in the `idflow` core crate.

use pyo3::prelude::*;

mod convert;
mod error;
mod flow;
mod jose;
mod oidc;
mod pkce;
mod provider;
mod runtime;
mod session;

#[pymodule]
fn _idflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    error::register(m)?;
    pkce::register(m)?;
    jose::register(m)?;
    flow::register(m)?;
    provider::register(m)?;
    oidc::register(m)?;
    session::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
