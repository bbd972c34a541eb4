//! `updateUser`: sets built-in fields and custom attributes of the flow's
//! user (after `generateJwt`).

use super::prelude::*;
use crate::flow::engine::INTERNAL;
use crate::flow::model::ClaimSpec;
use crate::ids::now_secs;
use crate::user::USER_FIELDS;

#[derive(Debug, Clone, PartialEq)]
pub struct UpdateUserStep {
    /// Built-in fields (`name`, `givenName`, ...) to set.
    pub fields: Vec<ClaimSpec>,
    pub custom_attributes: Vec<ClaimSpec>,
    pub next: String,
}

impl StepType for UpdateUserStep {
    const NAME: &'static str = "updateUser";
    const ON_ERROR: bool = true;

    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self> {
        let id = f.step.unwrap_or("").to_owned();
        let set = f.object(p.p, "set");
        for key in set.iter().flat_map(|m| m.keys()) {
            if !USER_FIELDS.contains(&key.as_str()) {
                p.p.add(Some(&id), format!("set.{key}"), format!("is not a user field; expected one of {}", USER_FIELDS.join(", ")));
            }
        }
        let fields = p.values(&id, "set", set);
        let custom = f.object(p.p, "customAttributes");
        let custom_attributes = p.values(&id, "customAttributes", custom);
        if fields.is_empty() && custom_attributes.is_empty() {
            p.p.add(Some(&id), "set", "an updateUser step sets at least one field or custom attribute");
        }
        let next = p.target(f, "next", true);
        Some(UpdateUserStep { fields, custom_attributes, next })
    }

    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
        let ctx = &mut *run.ctx;
        let user_id = ctx
            .get(&format!("{INTERNAL}.userId"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::new(ErrorCode::UserNotFound, "updateUser runs after generateJwt: no user yet"))?;
        let store = &run.engine.store;
        let mut user = store.user(&user_id)?.ok_or_else(|| Error::new(ErrorCode::UserNotFound, "the flow's user no longer exists"))?;
        for field in &self.fields {
            user.set_field(&field.key, &field.value.read(ctx)).map_err(|m| Error::new(ErrorCode::StepFailed, m))?;
        }
        for attr in &self.custom_attributes {
            user.custom_attributes.insert(attr.key.clone(), attr.value.read(ctx));
        }
        user.updated_time = now_secs();
        store.update_user(&user)?;
        ctx.set("user", user.to_json())?;
        Ok(Next::Step(self.next.clone()))
    }
}
