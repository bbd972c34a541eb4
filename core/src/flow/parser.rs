//! Flow parsing that reports every problem at once.

use super::model::*;
use super::steps::STEP_TYPES;
use crate::error::{Error, ErrorCode, Result};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

/// Claims idflow sets itself: a `customClaims` key may not replace them.
pub const RESERVED_CLAIMS: [&str; 14] =
    ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "amr", "acr", "azp", "auth_time", "nonce", "sid", "tenants"];

/// Roots a context path may start with.
const PATH_ROOTS: [&str; 9] = ["form", "connectors", "connectorResponses", "user", "request", "claims", "oauth", "emailCode", "auth"];

/// One problem in a flow: where (step id, field) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct FlowProblem {
    /// The step concerned; `None` for the flow's own fields.
    pub step: Option<String>,
    /// The field, as a dotted path inside the step (e.g. `inputs.0.type`).
    pub field: String,
    pub message: String,
}

impl fmt::Display for FlowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.step, self.field.is_empty()) {
            (Some(step), true) => write!(f, "step {step:?}: {}", self.message),
            (Some(step), false) => write!(f, "step {step:?}, {}: {}", self.field, self.message),
            (None, true) => f.write_str(&self.message),
            (None, false) => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// Every problem in `text` (empty when the flow is valid).
pub fn validate_flow(text: &str) -> Vec<FlowProblem> {
    analyze(text).1
}

/// Parses and validates a flow; any problem is an `invalid_flow` error whose
/// message lists them all.
pub fn parse_flow(text: &str) -> Result<Flow> {
    match analyze(text) {
        (Some(flow), problems) if problems.is_empty() => Ok(flow),
        (_, problems) => {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            Err(Error::new(
                ErrorCode::InvalidFlow,
                format!("the flow has {} problem(s): {}", list.len(), list.join("; ")),
            ))
        }
    }
}

pub(crate) struct Problems {
    list: Vec<FlowProblem>,
}

impl Problems {
    pub(crate) fn add(&mut self, step: Option<&str>, field: impl Into<String>, message: impl Into<String>) {
        self.list.push(FlowProblem { step: step.map(str::to_owned), field: field.into(), message: message.into() });
    }
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads one JSON object's fields, remembering which were used so unknown
/// fields can be reported.
pub(crate) struct Fields<'a> {
    pub(crate) step: Option<&'a str>,
    pub(crate) prefix: String,
    pub(crate) map: &'a Map<String, Value>,
    pub(crate) used: HashSet<&'static str>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(step: Option<&'a str>, prefix: impl Into<String>, map: &'a Map<String, Value>) -> Self {
        Fields { step, prefix: prefix.into(), map, used: HashSet::new() }
    }

    pub(crate) fn path(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }

    pub(crate) fn get(&mut self, field: &'static str) -> Option<&'a Value> {
        self.used.insert(field);
        self.map.get(field)
    }

    pub(crate) fn string(&mut self, p: &mut Problems, field: &'static str, required: bool) -> Option<String> {
        match self.get(field) {
            None | Some(Value::Null) if !required => None,
            None | Some(Value::Null) => {
                p.add(self.step, self.path(field), "is required");
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() && required => {
                p.add(self.step, self.path(field), "must not be empty");
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                p.add(self.step, self.path(field), format!("must be a string, not {}", kind_of(other)));
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, p: &mut Problems, field: &'static str) -> Option<bool> {
        match self.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                p.add(self.step, self.path(field), format!("must be true or false, not {}", kind_of(other)));
                None
            }
        }
    }

    pub(crate) fn array(&mut self, p: &mut Problems, field: &'static str, required: bool) -> Option<&'a Vec<Value>> {
        match self.get(field) {
            None | Some(Value::Null) => {
                if required {
                    p.add(self.step, self.path(field), "is required");
                }
                None
            }
            Some(Value::Array(items)) => Some(items),
            Some(other) => {
                p.add(self.step, self.path(field), format!("must be an array, not {}", kind_of(other)));
                None
            }
        }
    }

    pub(crate) fn object(&mut self, p: &mut Problems, field: &'static str) -> Option<&'a Map<String, Value>> {
        match self.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                p.add(self.step, self.path(field), format!("must be an object, not {}", kind_of(other)));
                None
            }
        }
    }

    /// Reports fields that were never read.
    pub(crate) fn finish(self, p: &mut Problems) {
        for key in self.map.keys() {
            if !self.used.contains(key.as_str()) {
                p.add(self.step, self.path(key), "is not a known field");
            }
        }
    }
}

pub(crate) fn check_path(p: &mut Problems, step: &str, field: &str, path: &str) {
    let mut segments = path.split('.');
    let root = segments.next().unwrap_or("");
    if !PATH_ROOTS.contains(&root) {
        p.add(
            Some(step),
            field,
            format!("context path {path:?} must start with one of {}", PATH_ROOTS.join(", ")),
        );
    } else if path.split('.').any(str::is_empty) || !path.contains('.') {
        p.add(Some(step), field, format!("context path {path:?} needs a name after {root:?}, e.g. {root}.email"));
    }
}

/// Collected edges: (from step, field, target).
pub(crate) type Edges = Vec<(String, String, String)>;

pub(crate) struct StepParser<'p> {
    pub(crate) p: &'p mut Problems,
    pub(crate) edges: Edges,
}

impl StepParser<'_> {
    pub(crate) fn target(&mut self, f: &mut Fields<'_>, field: &'static str, required: bool) -> String {
        let step = f.step.unwrap_or("").to_owned();
        match f.string(self.p, field, required) {
            Some(t) => {
                self.edges.push((step, f.path(field), t.clone()));
                t
            }
            None => String::new(),
        }
    }
    pub(crate) fn step(&mut self, id: &str, value: &Value) -> Option<Step> {
        let Value::Object(map) = value else {
            self.p.add(Some(id), "", format!("a step must be an object, not {}", kind_of(value)));
            return None;
        };
        let mut f = Fields::new(Some(id), "", map);
        let type_name = f.string(self.p, "type", true)?;
        let Some(takes_on_error) = StepKind::takes_on_error(&type_name) else {
            self.p.add(Some(id), "type", format!("unknown step type {type_name:?}; expected one of {}", STEP_TYPES.join(", ")));
            return None;
        };
        let on_error = match takes_on_error {
            false => None,
            true => match f.string(self.p, "onError", false) {
                Some(t) => {
                    self.edges.push((id.to_owned(), "onError".into(), t.clone()));
                    Some(t)
                }
                None => None,
            },
        };
        let kind = StepKind::parse(&type_name, self, &mut f);
        f.finish(self.p);
        Some(Step { id: id.to_owned(), kind: kind?, on_error })
    }
    pub(crate) fn values(&mut self, id: &str, field: &str, map: Option<&Map<String, Value>>) -> Vec<ClaimSpec> {
        let mut out = Vec::new();
        for (key, v) in map.into_iter().flatten() {
            let path = format!("{field}.{key}");
            let value = match v {
                Value::Object(m) if m.contains_key("type") => self.claim_value(id, &path, m),
                other => Some(ClaimValue::Static(other.clone())),
            };
            if let Some(value) = value {
                out.push(ClaimSpec { key: key.clone(), value });
            }
        }
        out
    }
    pub(crate) fn claim_value(&mut self, id: &str, field: &str, m: &Map<String, Value>) -> Option<ClaimValue> {
        let mut g = Fields::new(Some(id), field, m);
        let kind = g.string(self.p, "type", true);
        let value = g.get("value").cloned();
        g.finish(self.p);
        match (kind.as_deref(), value) {
            (Some("static"), Some(v)) => Some(ClaimValue::Static(v)),
            (Some("dynamic"), Some(Value::String(path))) => {
                check_path(self.p, id, &format!("{field}.value"), &path);
                Some(ClaimValue::Dynamic(path))
            }
            (Some("dynamic"), Some(_)) => {
                self.p.add(Some(id), format!("{field}.value"), "a dynamic value is a context path string");
                None
            }
            (Some("static" | "dynamic"), None) => {
                self.p.add(Some(id), format!("{field}.value"), "is required");
                None
            }
            (Some(other), _) => {
                self.p.add(Some(id), format!("{field}.type"), format!("unknown value type {other:?}; expected static or dynamic"));
                None
            }
            (None, _) => None,
        }
    }
}

fn analyze(text: &str) -> (Option<Flow>, Vec<FlowProblem>) {
    let mut p = Problems { list: Vec::new() };
    let doc = match crate::json::parse_strict(text.as_bytes()) {
        Ok(Value::Object(m)) => m,
        Ok(other) => {
            p.add(None, "", format!("a flow must be a JSON object, not {}", kind_of(&other)));
            return (None, p.list);
        }
        Err(e) => {
            p.add(None, "", format!("the flow is not valid JSON: {e}"));
            return (None, p.list);
        }
    };
    let mut top = Fields::new(None, "", &doc);
    let id = top.string(&mut p, "id", true).unwrap_or_default();
    let name = top.string(&mut p, "name", false).unwrap_or_else(|| id.clone());
    let start = top.string(&mut p, "start", true).unwrap_or_default();
    let steps_map = top.object(&mut p, "steps");
    if steps_map.is_none() && !doc.contains_key("steps") {
        p.add(None, "steps", "is required");
    }
    top.finish(&mut p);
    let steps_map = steps_map.cloned().unwrap_or_default();
    if steps_map.is_empty() && doc.contains_key("steps") {
        p.add(None, "steps", "must not be empty");
    }
    let mut parser = StepParser { p: &mut p, edges: Vec::new() };
    let mut steps = Vec::new();
    for (sid, value) in &steps_map {
        if sid.trim().is_empty() {
            parser.p.add(Some(sid), "", "step ids must not be empty");
        }
        if let Some(step) = parser.step(sid, value) {
            steps.push(step);
        }
    }
    let edges = parser.edges;
    // Targets must exist.
    for (from, field, to) in &edges {
        if !steps_map.contains_key(to) {
            p.add(Some(from), field.clone(), format!("target {to:?} is not a step of this flow"));
        }
    }
    if !start.is_empty() && !steps_map.contains_key(&start) {
        p.add(None, "start", format!("start step {start:?} is not a step of this flow"));
    }
    // Every step must be reachable from start.
    if steps_map.contains_key(&start) {
        let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
        for (from, _, to) in &edges {
            out.entry(from.as_str()).or_default().push(to.as_str());
        }
        let mut seen: HashSet<&str> = HashSet::from([start.as_str()]);
        let mut queue = VecDeque::from([start.as_str()]);
        while let Some(s) = queue.pop_front() {
            for &t in out.get(s).into_iter().flatten() {
                if steps_map.contains_key(t) && seen.insert(t) {
                    queue.push_back(t);
                }
            }
        }
        for sid in steps_map.keys() {
            if !seen.contains(sid.as_str()) {
                p.add(Some(sid), "", format!("step {sid:?} cannot be reached from start {start:?}"));
            }
        }
        if !steps.iter().any(|s| matches!(s.kind, StepKind::End(_))) {
            p.add(None, "steps", "the flow has no end step");
        }
    }
    check_password_inputs(&mut p, &steps);
    let mut form_inputs = form_names(text, &steps);
    // A password input is never filled from a flow start's input.
    for step in &steps {
        if let StepKind::Screen(screen) = &step.kind {
            for i in screen.inputs.iter().filter(|i| i.input_type == super::steps::InputType::Password) {
                form_inputs.remove(&i.name);
            }
        }
    }
    let flow = Flow { id, name, start, steps, form_inputs };
    (Some(flow), p.list)
}

/// A `password` step reads its passwords from screen inputs of type
/// `password`, the only inputs never stored with the execution.
fn check_password_inputs(p: &mut Problems, steps: &[Step]) {
    use super::steps::{InputType, PasswordStep};
    // Every input of that name, on every screen, is a password input.
    let inputs = |name: &str| -> Vec<InputType> {
        steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Screen(screen) => Some(screen.inputs.iter().filter(|i| i.name == name).map(|i| i.input_type).collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect()
    };
    let is_password_input = |name: &str| {
        let types = inputs(name);
        !types.is_empty() && types.iter().all(|t| *t == InputType::Password)
    };
    for step in steps {
        let StepKind::Password(ps) = &step.kind else { continue };
        let PasswordStep { password, new_password, .. } = ps;
        for path in ps.password_paths() {
            let field = if path == password.as_str() { "password" } else if path == new_password.as_str() { "newPassword" } else { continue };
            if path.strip_prefix("form.").is_some_and(|name| !is_password_input(name)) {
                p.add(Some(&step.id), field, format!("{path} must be an input of type password on every screen that has it (other inputs are stored with the execution)"));
            }
        }
    }
}

/// The `form.*` names a flow can read: its screens' inputs, every
/// `form.<name>` written anywhere in it (paths, templates), and `email` /
/// `externalId` when a `generateJwt` takes its login id from them.
fn form_names(text: &str, steps: &[Step]) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("form.") {
        let after = &rest[i + 5..];
        let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(after.len());
        if end > 0 && (i == 0 || !rest[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')) {
            names.insert(after[..end].to_owned());
        }
        rest = after;
    }
    for step in steps {
        step.kind.form_inputs(&mut names);
    }
    names
}
