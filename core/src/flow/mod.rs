//! Flows: the JSON model of an identity flow (screens, connectors,
//! conditions, user provisioning, custom claims) and its validation.
//!
//! A flow is `{"id", "name", "start", "steps": {"<id>": step}}`. Parsing
//! walks the whole document and reports every problem at once, each with the
//! step id and the field it concerns, so a flow author fixes a file in one
//! pass. The engine runs only flows that parsed.

pub mod condition;
pub mod context;
mod engine;
mod model;
pub mod template;
mod validate;

pub use model::{
    Branch, ClaimSpec, ClaimValue, Condition, ConnectorStep, Flow, GenerateJwtStep, Input,
    InputType, Interaction, Operator, ScreenStep, Step, StepKind, UpdateUserStep,
};
/// The HTTP method of a `connector` step (the connectors' own type).
pub use crate::connectors::Method;
pub use context::Context;
pub use engine::{AuthInfo, Authenticated, EngineConfig, FlowEngine, FlowResponse, FlowStatus, OAuthStarter};
pub use validate::{parse_flow, validate_flow, FlowProblem, RESERVED_CLAIMS};
