//! `condition`: the first branch whose `when` holds picks the next step,
//! else `else`.

use super::prelude::*;
use crate::flow::condition::evaluate;
use crate::flow::model::{Branch, Condition, Operator};

/// Branches tried in order; `otherwise` when none holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionStep {
    pub branches: Vec<Branch>,
    pub otherwise: String,
}

impl StepType for ConditionStep {
    const NAME: &'static str = "condition";
    const ON_ERROR: bool = false;

    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self> {
        let id = f.step.unwrap_or("").to_owned();
        let mut branches = Vec::new();
        let items = f.array(p.p, "branches", true);
        if matches!(items, Some(b) if b.is_empty()) {
            p.p.add(Some(&id), "branches", "must not be empty");
        }
        for (i, item) in items.into_iter().flatten().enumerate() {
            let Value::Object(m) = item else {
                p.p.add(Some(&id), format!("branches.{i}"), "must be an object");
                continue;
            };
            let mut g = Fields::new(Some(&id), format!("branches.{i}"), m);
            let when = match g.get("when") {
                Some(w) => p.condition_tree(&id, format!("branches.{i}.when"), w),
                None => {
                    p.p.add(Some(&id), format!("branches.{i}.when"), "is required");
                    None
                }
            };
            let next = p.target(&mut g, "next", true);
            g.finish(p.p);
            if let Some(when) = when {
                branches.push(Branch { when, next });
            }
        }
        let otherwise = p.target(f, "else", true);
        Some(ConditionStep { branches, otherwise })
    }

    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
        Ok(Next::Step(self.branches.iter().find(|b| evaluate(&b.when, run.ctx)).map_or_else(|| self.otherwise.clone(), |b| b.next.clone())))
    }
}

impl StepParser<'_> {
    pub(in crate::flow) fn condition_tree(&mut self, id: &str, field: String, value: &Value) -> Option<Condition> {
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
}
