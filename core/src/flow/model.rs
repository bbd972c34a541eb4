//! The typed flow model that [`super::parse_flow`] produces.
pub use super::steps::StepKind;
use super::context::Context;
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

impl ClaimValue {
    /// The value now: the literal, or what the context holds at the path
    /// (`null` when nothing is there).
    pub fn read(&self, ctx: &Context) -> Value {
        match self {
            ClaimValue::Static(v) => v.clone(),
            ClaimValue::Dynamic(path) => ctx.get(path).cloned().unwrap_or(Value::Null),
        }
    }
}
