//! `generateJwt`: signs the person in, up, or either, by a login id
//! (`users::provision`). `amr` starts empty: looking a user up verifies
//! nothing.

use super::prelude::*;
use crate::flow::engine::INTERNAL;
use crate::ids::now_secs;
use crate::users::provision::{self, SignUpMode};
use serde_json::json;

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateJwtStep {
    pub mode: SignUpMode,
    /// Context path of the login id; `None`: `form.email`, else `form.externalId`.
    pub login_id: Option<String>,
    pub next: String,
}

impl StepType for GenerateJwtStep {
    const NAME: &'static str = "generateJwt";
    const ON_ERROR: bool = true;

    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self> {
        let id = f.step.unwrap_or("").to_owned();
        let mode = match f.string(p.p, "mode", true).as_deref() {
            Some("signIn") => SignUpMode::SignIn,
            Some("signUp") => SignUpMode::SignUp,
            Some("signUpOrIn") => SignUpMode::SignUpOrIn,
            Some(other) => {
                p.p.add(Some(&id), "mode", format!("unknown mode {other:?}; expected signIn, signUp or signUpOrIn"));
                SignUpMode::SignUpOrIn
            }
            None => SignUpMode::SignUpOrIn,
        };
        let login_id = f.string(p.p, "loginId", false);
        if let Some(path) = &login_id {
            check_path(p.p, &id, "loginId", path);
        }
        let next = p.target(f, "next", true);
        Some(GenerateJwtStep { mode, login_id, next })
    }

    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
        let ctx = &mut *run.ctx;
        let login_id = match &self.login_id {
            Some(path) => ctx.get(path),
            None => ctx.get("form.email").or_else(|| ctx.get("form.externalId")),
        }
        .and_then(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .ok_or_else(|| {
            Error::new(ErrorCode::StepFailed, "generateJwt found no login id (form.email, form.externalId or its loginId path)")
        })?;
        let user = provision::by_login_id(run.engine.store.as_ref(), &login_id, self.mode, now_secs())?;
        ctx.set("user", user.to_json())?;
        ctx.set(&format!("{INTERNAL}.userId"), user.user_id.clone().into())?;
        // `amr` names only methods a step of this execution verified
        // (RFC 8176): looking the user up verifies nothing, and a
        // typed password is not checked here, so the list starts
        // empty for this user.
        ctx.set(&format!("{INTERNAL}.amr"), json!([]))?;
        ctx.set(&format!("{INTERNAL}.upstream"), Value::Null)?;
        super::describe_auth(ctx, run.engine.store.as_ref(), &user)?;
        Ok(Next::Step(self.next.clone()))
    }

    fn form_inputs(&self, names: &mut BTreeSet<String>) {
        if self.login_id.is_none() {
            names.insert("email".to_owned());
            names.insert("externalId".to_owned());
        }
    }
}
