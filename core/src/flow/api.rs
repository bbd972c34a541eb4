//! The flow API's shapes: an execution's status, the screen it waits on,
//! and what a completed flow returns (`authInfo`), as JSON for every
//! binding and `/v1/flow`.

use super::steps::ScreenStep;
use crate::error::Error;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowStatus {
    Waiting,
    Completed,
    Failed,
}

impl FlowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowStatus::Waiting => "waiting",
            FlowStatus::Completed => "completed",
            FlowStatus::Failed => "failed",
        }
    }
}

/// What a completed, authenticated flow issues.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthInfo {
    pub session_jwt: String,
    pub refresh_jwt: String,
    pub user: Value,
}

impl AuthInfo {
    /// `{sessionJwt, refreshJwt, user}`, as the flow API answers it.
    pub fn to_json(&self) -> Value {
        json!({"sessionJwt": self.session_jwt, "refreshJwt": self.refresh_jwt, "user": self.user})
    }
}

/// Who a completed flow authenticated, for the OIDC provider: a flow that
/// runs for an authorization request (`request` in its context) issues no
/// session JWT itself; the provider turns this into a code.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated {
    /// The flow that ran.
    pub flow_id: String,
    pub user_id: String,
    pub amr: Value,
    /// What the provider's tokens name as `acr`: the flow's id when a step
    /// of this execution verified the user, else none.
    pub acr: Option<String>,
    /// The flow's custom claims (`claims.*`).
    pub custom_claims: Map<String, Value>,
    /// The flow's `request` context (the authorization request).
    pub request: Option<Value>,
}

/// The answer to `start` and `next` (the flow API's JSON, see `to_json`).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowResponse {
    pub execution_id: String,
    pub step_id: Option<String>,
    pub status: FlowStatus,
    /// The screen to show when waiting: `{id, title, inputs, interactions}`.
    pub screen: Option<Value>,
    pub redirect: Option<String>,
    pub auth_info: Option<AuthInfo>,
    /// Why the flow failed, or why a screen answer was refused.
    pub error: Option<Error>,
    /// Set when the flow completed with an authenticated user.
    pub authenticated: Option<Authenticated>,
}

impl FlowResponse {
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("executionId".into(), self.execution_id.clone().into());
        if let Some(s) = &self.step_id {
            out.insert("stepId".into(), s.clone().into());
        }
        out.insert("status".into(), self.status.as_str().into());
        if let Some(screen) = &self.screen {
            out.insert("screen".into(), screen.clone());
        }
        if let Some(url) = &self.redirect {
            out.insert("redirect".into(), json!({ "url": url }));
        }
        if let Some(a) = &self.auth_info {
            out.insert("authInfo".into(), a.to_json());
        }
        if let Some(e) = &self.error {
            // A store's or a bug's own words stay on the server.
            let message = match e.code {
                crate::error::ErrorCode::Storage | crate::error::ErrorCode::Internal => "the server could not complete the request",
                _ => e.message.as_str(),
            };
            out.insert("error".into(), json!({"code": e.code.as_str(), "message": message}));
        }
        Value::Object(out)
    }
}

/// The screen as the flow API shows it.
pub(super) fn screen_view(step_id: &str, screen: &ScreenStep) -> Value {
    let inputs: Vec<Value> = screen
        .inputs
        .iter()
        .map(|i| {
            let mut v = json!({"name": i.name, "type": i.input_type.as_str(), "label": i.label, "required": i.required});
            if !i.options.is_empty() {
                v["options"] = json!(i.options);
            }
            v
        })
        .collect();
    let interactions: Vec<Value> = screen.interactions.iter().map(|i| json!({"id": i.id, "label": i.label})).collect();
    json!({"id": step_id, "title": screen.title, "inputs": inputs, "interactions": interactions})
}
