//! Flow parsing that reports every problem at once.

use crate::users::provision::SignUpMode;
use super::model::*;
use crate::connectors::Method;
use crate::error::{Error, ErrorCode, Result};
use crate::user::USER_FIELDS;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

/// Claims idflow sets itself: a `customClaims` key may not replace them.
pub const RESERVED_CLAIMS: [&str; 14] =
    ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "amr", "acr", "azp", "auth_time", "nonce", "sid", "tenants"];

/// Roots a context path may start with.
const PATH_ROOTS: [&str; 7] = ["form", "connectors", "connectorResponses", "user", "request", "claims", "oauth"];

const STEP_TYPES: [&str; 8] =
    ["screen", "connector", "condition", "generateJwt", "updateUser", "customClaims", "oauth", "end"];


/// One problem in a flow: where (step id, field) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
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

struct Problems {
    list: Vec<FlowProblem>,
}

impl Problems {
    fn add(&mut self, step: Option<&str>, field: impl Into<String>, message: impl Into<String>) {
        self.list.push(FlowProblem { step: step.map(str::to_owned), field: field.into(), message: message.into() });
    }
}

fn kind_of(v: &Value) -> &'static str {
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
struct Fields<'a> {
    step: Option<&'a str>,
    prefix: String,
    map: &'a Map<String, Value>,
    used: HashSet<&'static str>,
}

impl<'a> Fields<'a> {
    fn new(step: Option<&'a str>, prefix: impl Into<String>, map: &'a Map<String, Value>) -> Self {
        Fields { step, prefix: prefix.into(), map, used: HashSet::new() }
    }

    fn path(&self, field: &str) -> String {
        if self.prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.prefix)
        }
    }

    fn get(&mut self, field: &'static str) -> Option<&'a Value> {
        self.used.insert(field);
        self.map.get(field)
    }

    fn string(&mut self, p: &mut Problems, field: &'static str, required: bool) -> Option<String> {
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

    fn boolean(&mut self, p: &mut Problems, field: &'static str) -> Option<bool> {
        match self.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                p.add(self.step, self.path(field), format!("must be true or false, not {}", kind_of(other)));
                None
            }
        }
    }

    fn array(&mut self, p: &mut Problems, field: &'static str, required: bool) -> Option<&'a Vec<Value>> {
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

    fn object(&mut self, p: &mut Problems, field: &'static str) -> Option<&'a Map<String, Value>> {
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
    fn finish(self, p: &mut Problems) {
        for key in self.map.keys() {
            if !self.used.contains(key.as_str()) {
                p.add(self.step, self.path(key), "is not a known field");
            }
        }
    }
}

fn check_path(p: &mut Problems, step: &str, field: &str, path: &str) {
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

/// The strings of a connector body template, with their field paths.
fn body_strings<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((at, s)),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, x)| body_strings(x, format!("{at}[{i}]"), out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| body_strings(x, format!("{at}.{k}"), out)),
        _ => {}
    }
}

/// Collected edges: (from step, field, target).
type Edges = Vec<(String, String, String)>;

struct StepParser<'p> {
    p: &'p mut Problems,
    edges: Edges,
}

impl StepParser<'_> {
    fn target(&mut self, f: &mut Fields<'_>, field: &'static str, required: bool) -> String {
        let step = f.step.unwrap_or("").to_owned();
        match f.string(self.p, field, required) {
            Some(t) => {
                self.edges.push((step, f.path(field), t.clone()));
                t
            }
            None => String::new(),
        }
    }

    fn step(&mut self, id: &str, value: &Value) -> Option<Step> {
        let Value::Object(map) = value else {
            self.p.add(Some(id), "", format!("a step must be an object, not {}", kind_of(value)));
            return None;
        };
        let mut f = Fields::new(Some(id), "", map);
        let type_name = f.string(self.p, "type", true)?;
        let on_error = match type_name.as_str() {
            "end" | "condition" | "screen" | "customClaims" => None,
            _ => match f.string(self.p, "onError", false) {
                Some(t) => {
                    self.edges.push((id.to_owned(), "onError".into(), t.clone()));
                    Some(t)
                }
                None => None,
            },
        };
        let kind = match type_name.as_str() {
            "screen" => self.screen(&mut f),
            "connector" => self.connector(&mut f),
            "condition" => self.condition(&mut f),
            "generateJwt" => self.generate_jwt(&mut f),
            "updateUser" => self.update_user(&mut f),
            "customClaims" => self.custom_claims(&mut f),
            "oauth" => {
                let provider = f.string(self.p, "provider", true).unwrap_or_default();
                let prompt = f.string(self.p, "prompt", false);
                let next = self.target(&mut f, "next", true);
                Some(StepKind::OAuth { provider, prompt, next })
            }
            "end" => Some(StepKind::End),
            other => {
                self.p.add(
                    Some(id),
                    "type",
                    format!("unknown step type {other:?}; expected one of {}", STEP_TYPES.join(", ")),
                );
                return None;
            }
        };
        f.finish(self.p);
        Some(Step { id: id.to_owned(), kind: kind?, on_error })
    }

    fn screen(&mut self, f: &mut Fields<'_>) -> Option<StepKind> {
        let id = f.step.unwrap_or("");
        let title = f.string(self.p, "title", false).unwrap_or_default();
        let default_next = f.string(self.p, "next", false);
        let mut inputs = Vec::new();
        let mut names = HashSet::new();
        for (i, item) in f.array(self.p, "inputs", false).into_iter().flatten().enumerate() {
            let Value::Object(m) = item else {
                self.p.add(Some(id), format!("inputs.{i}"), "must be an object");
                continue;
            };
            let mut g = Fields::new(Some(id), format!("inputs.{i}"), m);
            let name = g.string(self.p, "name", true).unwrap_or_default();
            if !name.is_empty() && !names.insert(name.clone()) {
                self.p.add(Some(id), g.path("name"), format!("input {name:?} is declared twice"));
            }
            let input_type = match g.string(self.p, "type", false).as_deref() {
                None => InputType::Text,
                Some(t) => InputType::parse(t).unwrap_or_else(|| {
                    self.p.add(
                        Some(id),
                        g.path("type"),
                        format!("unknown input type {t:?}; expected text, email, phone, password, hidden or select"),
                    );
                    InputType::Text
                }),
            };
            let label = g.string(self.p, "label", false).unwrap_or_else(|| name.clone());
            let required = g.boolean(self.p, "required").unwrap_or(false);
            let mut options = Vec::new();
            for (j, o) in g.array(self.p, "options", input_type == InputType::Select).into_iter().flatten().enumerate() {
                match o.as_str() {
                    Some(s) => options.push(s.to_owned()),
                    None => self.p.add(Some(id), format!("inputs.{i}.options.{j}"), "must be a string"),
                }
            }
            g.finish(self.p);
            inputs.push(Input { name, input_type, label, required, options });
        }
        let mut interactions = Vec::new();
        for (i, item) in f.array(self.p, "interactions", false).into_iter().flatten().enumerate() {
            let Value::Object(m) = item else {
                self.p.add(Some(id), format!("interactions.{i}"), "must be an object");
                continue;
            };
            let mut g = Fields::new(Some(id), format!("interactions.{i}"), m);
            let iid = g.string(self.p, "id", true).unwrap_or_default();
            let label = g.string(self.p, "label", false).unwrap_or_else(|| iid.clone());
            let next = match g.string(self.p, "next", false) {
                Some(n) => {
                    self.edges.push((id.to_owned(), g.path("next"), n.clone()));
                    n
                }
                None => match &default_next {
                    Some(n) => n.clone(),
                    None => {
                        self.p.add(Some(id), g.path("next"), "is required (or give the screen a next)");
                        String::new()
                    }
                },
            };
            g.finish(self.p);
            interactions.push(Interaction { id: iid, label, next });
        }
        if let Some(n) = &default_next {
            self.edges.push((id.to_owned(), "next".into(), n.clone()));
        }
        if interactions.is_empty() {
            match &default_next {
                Some(n) => interactions.push(Interaction { id: "submit".into(), label: "Continue".into(), next: n.clone() }),
                None => self.p.add(Some(id), "interactions", "a screen needs at least one interaction or a next"),
            }
        }
        Some(StepKind::Screen(ScreenStep { title, inputs, interactions }))
    }

    fn connector(&mut self, f: &mut Fields<'_>) -> Option<StepKind> {
        let id = f.step.unwrap_or("").to_owned();
        let connector = f.string(self.p, "connector", true).unwrap_or_default();
        let method = match f.string(self.p, "method", false).as_deref() {
            None => Method::Get,
            Some(m) => Method::parse(m).unwrap_or_else(|| {
                self.p.add(Some(&id), f.path("method"), format!("unknown method {m:?}; expected GET, POST, PUT, PATCH or DELETE"));
                Method::Get
            }),
        };
        let endpoint = f.string(self.p, "endpoint", false).unwrap_or_default();
        let timeout = match f.get("timeout") {
            None | Some(Value::Null) => 5.0,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(t) if t > 0.0 && t <= 60.0 => t,
                _ => {
                    self.p.add(Some(&id), "timeout", "must be more than 0 and at most 60 seconds");
                    5.0
                }
            },
            Some(other) => {
                self.p.add(Some(&id), "timeout", format!("must be a number of seconds, not {}", kind_of(other)));
                5.0
            }
        };
        let mut headers = Vec::new();
        for (k, v) in f.object(self.p, "headers").into_iter().flatten() {
            match v.as_str() {
                Some(s) => headers.push((k.clone(), s.to_owned())),
                None => self.p.add(Some(&id), format!("headers.{k}"), "must be a string"),
            }
        }
        let body = f.get("body").cloned().filter(|b| !b.is_null());
        let context_key = f.string(self.p, "contextKey", true).unwrap_or_default();
        if !context_key.is_empty() && !context_key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            self.p.add(Some(&id), "contextKey", "may only contain letters, digits, - and _");
        }
        // Every {{path}} names what it reads, as condition keys do: a typo
        // is a problem here, not an empty value at run time, and a flow
        // cannot read the whole `form` past the declared-inputs rule.
        let mut templates: Vec<(String, &str)> = vec![("endpoint".into(), endpoint.as_str())];
        templates.extend(headers.iter().map(|(k, v)| (format!("headers.{k}"), v.as_str())));
        if let Some(b) = &body {
            body_strings(b, "body".into(), &mut templates);
        }
        for (field, text) in templates {
            match super::template::paths(text) {
                Ok(paths) => paths.into_iter().for_each(|path| check_path(self.p, &id, &field, path)),
                Err(e) => self.p.add(Some(&id), field, e.message),
            }
        }
        let next = self.target(f, "next", true);
        Some(StepKind::Connector(ConnectorStep { connector, method, endpoint, timeout, headers, body, context_key, next }))
    }

    fn condition_tree(&mut self, id: &str, field: String, value: &Value) -> Option<Condition> {
        let Value::Object(m) = value else {
            self.p.add(Some(id), field, "a condition must be an object");
            return None;
        };
        for group in ["and", "or"] {
            if let Some(items) = m.get(group) {
                if m.len() != 1 {
                    self.p.add(Some(id), field.clone(), format!("an {group:?} group holds nothing else"));
                }
                let Value::Array(items) = items else {
                    self.p.add(Some(id), format!("{field}.{group}"), "must be an array");
                    return None;
                };
                if items.is_empty() {
                    self.p.add(Some(id), format!("{field}.{group}"), "must not be empty");
                }
                let parts: Vec<Condition> = items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| self.condition_tree(id, format!("{field}.{group}.{i}"), c))
                    .collect();
                return Some(if group == "and" { Condition::And(parts) } else { Condition::Or(parts) });
            }
        }
        let mut g = Fields::new(Some(id), field, m);
        let key = g.string(self.p, "key", true).unwrap_or_default();
        if !key.is_empty() {
            check_path(self.p, id, &g.path("key"), &key);
        }
        let op_name = g.string(self.p, "operator", true);
        let value = g.get("value").cloned();
        let operator = op_name.as_deref().and_then(|o| {
            let parsed = Operator::parse(o);
            if parsed.is_none() {
                let names: Vec<&str> = Operator::ALL.iter().map(|(n, _)| *n).collect();
                self.p.add(Some(id), g.path("operator"), format!("unknown operator {o:?}; expected one of {}", names.join(", ")));
            }
            parsed
        });
        if let Some(op) = operator {
            match (op.takes_value(), &value) {
                (true, None) => self.p.add(Some(id), g.path("value"), format!("operator {:?} needs a value", op_name.unwrap_or_default())),
                (false, Some(_)) => self.p.add(Some(id), g.path("value"), format!("operator {:?} takes no value", op_name.unwrap_or_default())),
                _ => {}
            }
            if op == Operator::In && !matches!(value, Some(Value::Array(_)) | None) {
                self.p.add(Some(id), g.path("value"), "operator \"in\" needs an array value");
            }
        }
        g.finish(self.p);
        Some(Condition::Compare { key, operator: operator?, value })
    }

    fn condition(&mut self, f: &mut Fields<'_>) -> Option<StepKind> {
        let id = f.step.unwrap_or("").to_owned();
        let mut branches = Vec::new();
        let items = f.array(self.p, "branches", true);
        if matches!(items, Some(b) if b.is_empty()) {
            self.p.add(Some(&id), "branches", "must not be empty");
        }
        for (i, item) in items.into_iter().flatten().enumerate() {
            let Value::Object(m) = item else {
                self.p.add(Some(&id), format!("branches.{i}"), "must be an object");
                continue;
            };
            let mut g = Fields::new(Some(&id), format!("branches.{i}"), m);
            let when = match g.get("when") {
                Some(w) => self.condition_tree(&id, format!("branches.{i}.when"), w),
                None => {
                    self.p.add(Some(&id), format!("branches.{i}.when"), "is required");
                    None
                }
            };
            let next = self.target(&mut g, "next", true);
            g.finish(self.p);
            if let Some(when) = when {
                branches.push(Branch { when, next });
            }
        }
        let otherwise = self.target(f, "else", true);
        Some(StepKind::Condition { branches, otherwise })
    }

    fn generate_jwt(&mut self, f: &mut Fields<'_>) -> Option<StepKind> {
        let id = f.step.unwrap_or("").to_owned();
        let mode = match f.string(self.p, "mode", true).as_deref() {
            Some("signIn") => SignUpMode::SignIn,
            Some("signUp") => SignUpMode::SignUp,
            Some("signUpOrIn") => SignUpMode::SignUpOrIn,
            Some(other) => {
                self.p.add(Some(&id), "mode", format!("unknown mode {other:?}; expected signIn, signUp or signUpOrIn"));
                SignUpMode::SignUpOrIn
            }
            None => SignUpMode::SignUpOrIn,
        };
        let login_id = f.string(self.p, "loginId", false);
        if let Some(path) = &login_id {
            check_path(self.p, &id, "loginId", path);
        }
        let next = self.target(f, "next", true);
        Some(StepKind::GenerateJwt(GenerateJwtStep { mode, login_id, next }))
    }

    fn values(&mut self, id: &str, field: &str, map: Option<&Map<String, Value>>) -> Vec<ClaimSpec> {
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

    fn claim_value(&mut self, id: &str, field: &str, m: &Map<String, Value>) -> Option<ClaimValue> {
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

    fn update_user(&mut self, f: &mut Fields<'_>) -> Option<StepKind> {
        let id = f.step.unwrap_or("").to_owned();
        let set = f.object(self.p, "set");
        for key in set.iter().flat_map(|m| m.keys()) {
            if !USER_FIELDS.contains(&key.as_str()) {
                self.p.add(Some(&id), format!("set.{key}"), format!("is not a user field; expected one of {}", USER_FIELDS.join(", ")));
            }
        }
        let fields = self.values(&id, "set", set);
        let custom = f.object(self.p, "customAttributes");
        let custom_attributes = self.values(&id, "customAttributes", custom);
        if fields.is_empty() && custom_attributes.is_empty() {
            self.p.add(Some(&id), "set", "an updateUser step sets at least one field or custom attribute");
        }
        let next = self.target(f, "next", true);
        Some(StepKind::UpdateUser(UpdateUserStep { fields, custom_attributes, next }))
    }

    fn custom_claims(&mut self, f: &mut Fields<'_>) -> Option<StepKind> {
        let id = f.step.unwrap_or("").to_owned();
        let mut claims = Vec::new();
        let mut keys = HashSet::new();
        let items = f.array(self.p, "claims", true);
        if matches!(items, Some(c) if c.is_empty()) {
            self.p.add(Some(&id), "claims", "must not be empty");
        }
        for (i, item) in items.into_iter().flatten().enumerate() {
            let field = format!("claims.{i}");
            let Value::Object(m) = item else {
                self.p.add(Some(&id), field, "must be an object");
                continue;
            };
            let key = match m.get("key") {
                Some(Value::String(k)) if !k.is_empty() => k.clone(),
                _ => {
                    self.p.add(Some(&id), format!("{field}.key"), "is required (a non-empty string)");
                    String::new()
                }
            };
            if RESERVED_CLAIMS.contains(&key.as_str()) {
                self.p.add(Some(&id), format!("{field}.key"), format!("{key:?} is a registered claim idflow sets itself; pick another name"));
            } else if !key.is_empty() && !keys.insert(key.clone()) {
                self.p.add(Some(&id), format!("{field}.key"), format!("claim {key:?} is set twice"));
            }
            let mut rest = m.clone();
            rest.remove("key");
            if let Some(value) = self.claim_value(&id, &field, &rest) {
                claims.push(ClaimSpec { key, value });
            }
        }
        let next = self.target(f, "next", true);
        Some(StepKind::CustomClaims { claims, next })
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
        if !steps.iter().any(|s| matches!(s.kind, StepKind::End)) {
            p.add(None, "steps", "the flow has no end step");
        }
    }
    let form_inputs = form_names(text, &steps);
    let flow = Flow { id, name, start, steps, form_inputs };
    (Some(flow), p.list)
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
        match &step.kind {
            StepKind::Screen(s) => names.extend(s.inputs.iter().map(|i| i.name.clone())),
            StepKind::GenerateJwt(g) if g.login_id.is_none() => {
                names.insert("email".to_owned());
                names.insert("externalId".to_owned());
            }
            _ => {}
        }
    }
    names
}
