//! The one tokio runtime of the Python module (pyo3-async-runtimes' shared
//! one), and the two ways Python calls core futures on it: blocking with the
//! GIL released, or as an asyncio awaitable.

use crate::error::{guard, IntoPyResult};
use pyo3::prelude::*;

pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Runs a core future to completion without holding the GIL.
pub(crate) fn block<T: Send>(py: Python<'_>, fut: impl std::future::Future<Output = idflow::Result<T>> + Send) -> PyResult<T> {
    py.detach(|| guard(|| runtime().block_on(fut))).py()
}

/// A Rust value of a `#[pyclass]` as a Python object (for `awaitable`'s
/// conversions).
pub(crate) fn object<'py, T>(py: Python<'py>, value: T) -> PyResult<Bound<'py, PyAny>>
where
    T: pyo3::PyClass + Into<pyo3::PyClassInitializer<T>>,
{
    Ok(Bound::new(py, value)?.into_any())
}

/// Runs a core future on the shared runtime as a Python awaitable; every
/// `_async` twin of a blocking method is this over the same future.
pub(crate) fn awaitable<'py, T: Send + 'static>(
    py: Python<'py>,
    fut: impl std::future::Future<Output = idflow::Result<T>> + Send + 'static,
    convert: impl for<'a> FnOnce(Python<'a>, T) -> PyResult<Bound<'a, PyAny>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>> {
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let out = fut.await.py()?;
        Python::attach(|py| convert(py, out).map(|v| v.unbind()))
    })
}

