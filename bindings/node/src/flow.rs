//! Flows: `validateFlow`.

use crate::error::run;
use napi::bindgen_prelude::*;
use napi_derive::napi;

#[napi(object)]
pub struct FlowProblem {
    pub step: Option<String>,
    pub field: String,
    pub message: String,
}

/// Every problem in a flow's JSON text (empty when the flow is valid).
#[napi(js_name = "validateFlow")]
pub fn validate_flow(env: Env, text: String) -> napi::Result<Vec<FlowProblem>> {
    let problems = run(&env, || Ok(idflow::flow::validate_flow(&text)))?;
    Ok(problems.into_iter().map(|p| FlowProblem { step: p.step, field: p.field, message: p.message }).collect())
}
