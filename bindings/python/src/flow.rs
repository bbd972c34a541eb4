//! Flows: `idflow.validate_flow`.

use crate::error::guard;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Every problem in a flow's JSON text, as dicts with `step`, `field` and
/// `message` (an empty list when the flow is valid).
#[pyfunction]
fn validate_flow<'py>(py: Python<'py>, text: &str) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let problems = guard(|| Ok(idflow::flow::validate_flow(text))).map_err(crate::error::to_py)?;
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
    m.add_function(wrap_pyfunction!(validate_flow, m)?)
}
