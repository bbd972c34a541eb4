//! Flows: the JSON model of an identity flow (screens, connectors,
//! conditions, user provisioning, custom claims) and its validation.
//!
//! A flow is `{"id", "name", "start", "steps": {"<id>": step}}`. Parsing
//! walks the whole document and reports every problem at once, each with the
//! step id and the field it concerns, so a flow author fixes a file in one
//! pass. The engine runs only flows that parsed.
//!
//! - `model.rs`: the flow, its steps and the values they share.
//! - `parser.rs`: reading a flow file, with every problem at once.
//! - `steps/`: one file per step type, its settings, parsing and run.
//! - `engine.rs`: executions: start, next, the run loop, resuming after an
//!   upstream provider.
//! - `api.rs`: the flow API's shapes; `issue.rs`: the tokens a completed
//!   flow issues.

pub mod condition;
pub mod context;
mod api;
mod engine;
mod issue;
mod model;
mod parser;
mod steps;
pub mod template;

pub use model::{Branch, ClaimSpec, ClaimValue, Condition, Flow, Operator, Step, StepKind};
pub use steps::{
    ConditionStep, ConnectorStep, CustomClaimsStep, EmailCodeAction, EmailCodeStep, EndStep, GenerateJwtStep, Input, InputType, Interaction, OAuthStep,
    PasskeyAction, PasskeyStep, PasswordAction, PasswordStep, ScreenStep, TotpAction, TotpStep, UpdateUserStep,
};
/// The HTTP method of a `connector` step (the connectors' own type).
pub use crate::connectors::Method;
pub use context::Context;
pub use api::{AuthInfo, Authenticated, FlowResponse, FlowStatus};
pub use engine::{EngineConfig, FlowEngine, OAuthStarter};
pub use parser::{parse_flow, validate_flow, FlowProblem, RESERVED_CLAIMS};
