//! `passkey`: passkeys (WebAuthn) in flows, through `users::passkeys`.
//! `beginRegistration` (for the user an earlier step signed in) and
//! `beginSignIn` (username-less) start a ceremony; the next screen carries
//! its options as `screen.passkey` (`{ceremony: "create" | "get",
//! publicKey}`), for `navigator.credentials` on the hosted page or for an
//! app's own (ASAuthorization, Credential Manager). The screen posts the
//! credential's JSON back in an input (`form.credential` by default), and
//! `finishRegistration` / `finishSignIn` check it. A sign-in makes the
//! passkey's user the flow's user, with `amr` `hwk` (or `swk` for a synced
//! passkey) and `user`.

use super::prelude::*;
use crate::flow::context::Context;
use crate::flow::engine::{FlowEngine, INTERNAL};
use crate::ids::now_secs;
use crate::users::passkeys;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyAction {
    BeginRegistration,
    FinishRegistration,
    BeginSignIn,
    FinishSignIn,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PasskeyStep {
    pub action: PasskeyAction,
    /// `finish*`: context path of the credential's JSON; defaults to
    /// `form.credential`.
    pub credential: String,
    pub next: String,
}

fn flag() -> String {
    format!("{INTERNAL}.passkey.ceremony")
}

impl StepType for PasskeyStep {
    const NAME: &'static str = "passkey";
    const ON_ERROR: bool = true;

    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self> {
        let id = f.step.unwrap_or("").to_owned();
        let action = match f.string(p.p, "action", true).as_deref() {
            Some("beginRegistration") => PasskeyAction::BeginRegistration,
            Some("finishRegistration") => PasskeyAction::FinishRegistration,
            Some("beginSignIn") => PasskeyAction::BeginSignIn,
            Some("finishSignIn") => PasskeyAction::FinishSignIn,
            Some(other) => {
                p.p.add(Some(&id), "action", format!("unknown action {other:?}; expected beginRegistration, finishRegistration, beginSignIn or finishSignIn"));
                PasskeyAction::BeginSignIn
            }
            None => PasskeyAction::BeginSignIn,
        };
        let credential = f.string(p.p, "credential", false).unwrap_or_else(|| "form.credential".to_owned());
        check_path(p.p, &id, "credential", &credential);
        let next = p.target(f, "next", true);
        Some(PasskeyStep { action, credential, next })
    }

    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
        let engine = run.engine;
        let store = engine.store.as_ref();
        let rp = engine.relying_party()?;
        let now = now_secs();
        let user_id = || -> Result<String> {
            run.ctx
                .get(&format!("{INTERNAL}.userId"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| Error::new(ErrorCode::AccessDenied, "registering a passkey needs the user signed in by an earlier step of this flow"))
        };
        match self.action {
            PasskeyAction::BeginRegistration => {
                let user_id = user_id()?;
                let user = store.user(&user_id)?.ok_or_else(|| Error::new(ErrorCode::UserNotFound, "the flow's user no longer exists"))?;
                passkeys::begin_registration(store, rp, run.execution_id, &user, now)?;
                run.ctx.set(&flag(), Value::Bool(true))?;
            }
            PasskeyAction::FinishRegistration => {
                let user_id = user_id()?;
                let credential = answer(run.ctx, &self.credential)?;
                run.ctx.set(&flag(), Value::Bool(false))?;
                passkeys::finish_registration(store, rp, run.execution_id, &user_id, &credential, now)?;
                let user = store.user(&user_id)?.ok_or_else(|| Error::new(ErrorCode::UserNotFound, "the flow's user no longer exists"))?;
                super::describe_auth(run.ctx, store, &user)?;
            }
            PasskeyAction::BeginSignIn => {
                passkeys::begin_sign_in(store, rp, run.execution_id, now)?;
                run.ctx.set(&flag(), Value::Bool(true))?;
            }
            PasskeyAction::FinishSignIn => {
                let credential = answer(run.ctx, &self.credential)?;
                run.ctx.set(&flag(), Value::Bool(false))?;
                let (user, methods) = passkeys::finish_sign_in(store, rp, run.execution_id, &credential, now)?;
                // `user` (presence) rides along with the key's method.
                super::sign_in_user(run.ctx, store, &user, &methods)?;
            }
        }
        Ok(Next::Step(self.next.clone()))
    }

    fn form_inputs(&self, names: &mut BTreeSet<String>) {
        if let Some(name) = self.credential.strip_prefix("form.") {
            names.insert(name.to_owned());
        }
    }
}

fn answer(ctx: &Context, path: &str) -> Result<String> {
    match ctx.get(path) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(crate::credentials::passkey::refused(&format!("no credential was given at {path}"))),
    }
}

/// Adds the ceremony under way to the view of a screen (`passkey`).
pub(crate) fn decorate(engine: &FlowEngine, execution_id: &str, ctx: &Context, screen: &mut Value) -> Result<()> {
    if ctx.get(&flag()).and_then(Value::as_bool) == Some(true) {
        if let Some((kind, options)) = passkeys::ceremony(engine.store.as_ref(), execution_id)? {
            screen["passkey"] = json!({"ceremony": kind, "publicKey": options});
        }
    }
    Ok(())
}
