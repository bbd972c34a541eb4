//! Flows: `validateFlow`.

/// One problem in a flow: the step (none for the flow's own fields), the
/// dotted field path and what is wrong.
#[derive(Debug, Clone, uniffi::Record)]
pub struct FlowProblem {
    pub step: Option<String>,
    pub field: String,
    pub message: String,
}

/// Every problem in a flow's JSON text (empty when the flow is valid).
#[uniffi::export]
pub fn validate_flow(text: String) -> Vec<FlowProblem> {
    idflow::flow::validate_flow(&text)
        .into_iter()
        .map(|p| FlowProblem { step: p.step, field: p.field, message: p.message })
        .collect()
}
