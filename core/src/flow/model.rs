//! The typed flow model that [`super::parse_flow`] produces.

use crate::users::provision::SignUpMode;
use crate::connectors::Method;
use serde_json::Value;

/// A parsed, validated flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    pub id: String,
    pub name: String,
    pub start: String,
    /// Steps in document order.
    pub steps: Vec<Step>,
    /// The `form.*` names the flow reads: a start's input keeps only these.
    pub form_inputs: std::collections::BTreeSet<String>,
}

impl Flow {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// One step: its id, the kind with its settings, and where an error goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
    /// Target when the step fails; without one the flow ends `failed`.
    pub on_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Screen(ScreenStep),
    Connector(ConnectorStep),
    Condition { branches: Vec<Branch>, otherwise: String },
    GenerateJwt(GenerateJwtStep),
    UpdateUser(UpdateUserStep),
    CustomClaims { claims: Vec<ClaimSpec>, next: String },
    OAuth { provider: String, prompt: Option<String>, next: String },
    End,
}

impl StepKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            StepKind::Screen(_) => "screen",
            StepKind::Connector(_) => "connector",
            StepKind::Condition { .. } => "condition",
            StepKind::GenerateJwt(_) => "generateJwt",
            StepKind::UpdateUser(_) => "updateUser",
            StepKind::CustomClaims { .. } => "customClaims",
            StepKind::OAuth { .. } => "oauth",
            StepKind::End => "end",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScreenStep {
    pub title: String,
    pub inputs: Vec<Input>,
    pub interactions: Vec<Interaction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    Text,
    Email,
    Phone,
    Password,
    Hidden,
    Select,
}

impl InputType {
    pub fn parse(s: &str) -> Option<InputType> {
        Some(match s {
            "text" => InputType::Text,
            "email" => InputType::Email,
            "phone" => InputType::Phone,
            "password" => InputType::Password,
            "hidden" => InputType::Hidden,
            "select" => InputType::Select,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::Text => "text",
            InputType::Email => "email",
            InputType::Phone => "phone",
            InputType::Password => "password",
            InputType::Hidden => "hidden",
            InputType::Select => "select",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    pub input_type: InputType,
    pub label: String,
    pub required: bool,
    /// Choices of a `select` input.
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub id: String,
    pub label: String,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorStep {
    /// The project connector's id.
    pub connector: String,
    pub method: Method,
    /// Path and query, appended to the connector's base URL; may hold templates.
    pub endpoint: String,
    /// Seconds; defaults to 5.
    pub timeout: f64,
    /// Extra headers (templates allowed).
    pub headers: Vec<(String, String)>,
    /// A JSON body template.
    pub body: Option<Value>,
    /// Where the response lands: the body at `connectors.<context_key>`, the
    /// HTTP status, headers and body at `connectorResponses.<context_key>`.
    pub context_key: String,
    pub next: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    Contains,
    StartsWith,
    EndsWith,
    GreaterThan,
    LessThan,
    In,
    Exists,
    NotExists,
    IsTrue,
    IsFalse,
}

impl Operator {
    pub const ALL: [(&'static str, Operator); 12] = [
        ("equals", Operator::Equals),
        ("notEquals", Operator::NotEquals),
        ("contains", Operator::Contains),
        ("startsWith", Operator::StartsWith),
        ("endsWith", Operator::EndsWith),
        ("greaterThan", Operator::GreaterThan),
        ("lessThan", Operator::LessThan),
        ("in", Operator::In),
        ("exists", Operator::Exists),
        ("notExists", Operator::NotExists),
        ("isTrue", Operator::IsTrue),
        ("isFalse", Operator::IsFalse),
    ];
    pub fn parse(s: &str) -> Option<Operator> {
        Operator::ALL.iter().find(|(n, _)| *n == s).map(|(_, o)| *o)
    }
    /// Whether the operator compares against a `value`.
    pub fn takes_value(self) -> bool {
        !matches!(self, Operator::Exists | Operator::NotExists | Operator::IsTrue | Operator::IsFalse)
    }
}

/// A condition tree: a comparison, or an `and` / `or` group.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare { key: String, operator: Operator, value: Option<Value> },
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub when: Condition,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateJwtStep {
    pub mode: SignUpMode,
    /// Context path of the login id; `None`: `form.email`, else `form.externalId`.
    pub login_id: Option<String>,
    pub next: String,
}

/// A value set by a step: a literal, or a context path read at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimValue {
    Static(Value),
    Dynamic(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimSpec {
    pub key: String,
    pub value: ClaimValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateUserStep {
    /// Built-in fields (`name`, `givenName`, ...) to set.
    pub fields: Vec<ClaimSpec>,
    pub custom_attributes: Vec<ClaimSpec>,
    pub next: String,
}
