//! `customClaims`: claims the flow adds to the tokens of this sign-in
//! (`claims.*`); registered claims idflow sets itself are refused.

use super::prelude::*;
use crate::flow::model::ClaimSpec;
use crate::flow::parser::RESERVED_CLAIMS;
use std::collections::HashSet;

/// Claims to set, each a literal or a context path read at run time.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomClaimsStep {
    pub claims: Vec<ClaimSpec>,
    pub next: String,
}

impl StepType for CustomClaimsStep {
    const NAME: &'static str = "customClaims";
    const ON_ERROR: bool = false;

    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self> {
        let id = f.step.unwrap_or("").to_owned();
        let mut claims = Vec::new();
        let mut keys = HashSet::new();
        let items = f.array(p.p, "claims", true);
        if matches!(items, Some(c) if c.is_empty()) {
            p.p.add(Some(&id), "claims", "must not be empty");
        }
        for (i, item) in items.into_iter().flatten().enumerate() {
            let field = format!("claims.{i}");
            let Value::Object(m) = item else {
                p.p.add(Some(&id), field, "must be an object");
                continue;
            };
            let key = match m.get("key") {
                Some(Value::String(k)) if !k.is_empty() => k.clone(),
                _ => {
                    p.p.add(Some(&id), format!("{field}.key"), "is required (a non-empty string)");
                    String::new()
                }
            };
            if RESERVED_CLAIMS.contains(&key.as_str()) {
                p.p.add(Some(&id), format!("{field}.key"), format!("{key:?} is a registered claim idflow sets itself; pick another name"));
            } else if !key.is_empty() && !keys.insert(key.clone()) {
                p.p.add(Some(&id), format!("{field}.key"), format!("claim {key:?} is set twice"));
            }
            let mut rest = m.clone();
            rest.remove("key");
            if let Some(value) = p.claim_value(&id, &field, &rest) {
                claims.push(ClaimSpec { key, value });
            }
        }
        let next = p.target(f, "next", true);
        Some(CustomClaimsStep { claims, next })
    }

    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
        for claim in &self.claims {
            let value = claim.value.read(run.ctx);
            run.ctx.set(&format!("claims.{}", claim.key), value)?;
        }
        Ok(Next::Step(self.next.clone()))
    }
}
