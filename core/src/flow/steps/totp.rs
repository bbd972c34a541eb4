//! `totp`: authenticator apps (RFC 6238) for the flow's user, through
//! `users::totp`. `enroll` begins an enrollment (refused when the user has
//! an authenticator already, unless this execution verified it); the next
//! screen carries it as `screen.totp` (`uri`, `secret`, `qrSvg`), never
//! stored with the execution. `confirm` checks the first code from the app,
//! makes the authenticator the user's and puts the ten recovery codes on
//! the next screen (`screen.recoveryCodes`), once. `verify` checks a code or
//! a recovery code. `confirm` and `verify` add `otp` to `amr`.

use super::prelude::*;
use crate::flow::context::Context;
use crate::flow::engine::{FlowEngine, INTERNAL};
use crate::ids::now_secs;
use crate::users::totp as authenticators;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpAction {
    Enroll,
    Confirm,
    Verify,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TotpStep {
    pub action: TotpAction,
    /// `confirm` and `verify`: context path of the typed code; defaults to
    /// `form.code`.
    pub code: String,
    pub next: String,
}

/// Recovery codes waiting to be shown, sealed, by execution id.
const RECOVERY_SHOW: &str = "totp_recovery_show";

fn flag(name: &str) -> String {
    format!("{INTERNAL}.totp.{name}")
}

impl StepType for TotpStep {
    const NAME: &'static str = "totp";
    const ON_ERROR: bool = true;

    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self> {
        let id = f.step.unwrap_or("").to_owned();
        let action = match f.string(p.p, "action", true).as_deref() {
            Some("enroll") => TotpAction::Enroll,
            Some("confirm") => TotpAction::Confirm,
            Some("verify") => TotpAction::Verify,
            Some(other) => {
                p.p.add(Some(&id), "action", format!("unknown action {other:?}; expected enroll, confirm or verify"));
                TotpAction::Verify
            }
            None => TotpAction::Verify,
        };
        let code = f.string(p.p, "code", false).unwrap_or_else(|| "form.code".to_owned());
        check_path(p.p, &id, "code", &code);
        let next = p.target(f, "next", true);
        Some(TotpStep { action, code, next })
    }

    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
        let engine = run.engine;
        let store = engine.store.as_ref();
        let user_id = run
            .ctx
            .get(&format!("{INTERNAL}.userId"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::new(ErrorCode::AccessDenied, "a totp step needs the user signed in by an earlier step of this flow"))?;
        let now = now_secs();
        let lockout = &engine.config.passwords.lockout;
        match self.action {
            TotpAction::Enroll => {
                let verified_here = run.ctx.get(&flag("verified")).and_then(Value::as_bool) == Some(true);
                if authenticators::is_enrolled(store, &user_id)? && !verified_here {
                    return Err(Error::new(ErrorCode::AccessDenied, "the user has an authenticator app already; verify it first to replace it"));
                }
                let user = store.user(&user_id)?.ok_or_else(|| Error::new(ErrorCode::UserNotFound, "the flow's user no longer exists"))?;
                authenticators::begin(store, engine.vault()?, run.execution_id, &user, issuer(engine), now)?;
                run.ctx.set(&flag("enrolling"), Value::Bool(true))?;
            }
            TotpAction::Confirm => {
                let code = typed(run.ctx, &self.code)?;
                let codes = authenticators::confirm(store, engine.vault()?, lockout, run.execution_id, &user_id, &code, now)?;
                let sealed = engine.vault()?.seal(&format!("{RECOVERY_SHOW}:{}", run.execution_id), &json!(codes))?;
                store.put_record(RECOVERY_SHOW, run.execution_id, &sealed, Some(now + engine.config.execution_ttl))?;
                run.ctx.set(&flag("enrolling"), Value::Bool(false))?;
                run.ctx.set(&flag("recoveryAt"), Value::String(String::new()))?;
                self.signed_in(run, &user_id)?;
            }
            TotpAction::Verify => {
                let code = typed(run.ctx, &self.code)?;
                authenticators::verify(store, engine.vault()?, lockout, &user_id, &code, now)?;
                self.signed_in(run, &user_id)?;
            }
        }
        Ok(Next::Step(self.next.clone()))
    }

    fn form_inputs(&self, names: &mut BTreeSet<String>) {
        if let Some(name) = self.code.strip_prefix("form.") {
            names.insert(name.to_owned());
        }
    }
}

impl TotpStep {
    fn signed_in(&self, run: &mut StepRun<'_>, user_id: &str) -> Result<()> {
        let store = run.engine.store.as_ref();
        let user = store.user(user_id)?.ok_or_else(|| Error::new(ErrorCode::UserNotFound, "the flow's user no longer exists"))?;
        run.ctx.set(&flag("verified"), Value::Bool(true))?;
        super::sign_in_user(run.ctx, store, &user, &["otp"])
    }
}

/// How apps name the project: `totp_issuer`, else the project id.
fn issuer(engine: &FlowEngine) -> &str {
    match engine.config.totp_issuer.as_str() {
        "" => &engine.config.audience,
        s => s,
    }
}

fn typed(ctx: &Context, path: &str) -> Result<String> {
    match ctx.get(path) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(Error::new(ErrorCode::InvalidCode, format!("no code was given at {path}"))),
    }
}

/// Marks the screen `step_id` as the one that shows the recovery codes
/// a `confirm` of this request made (the first screen after it).
pub(crate) fn waiting_at(ctx: &mut Context, step_id: &str) -> Result<()> {
    if ctx.get(&flag("recoveryAt")).and_then(Value::as_str) == Some("") {
        ctx.set(&flag("recoveryAt"), Value::String(step_id.to_owned()))?;
    }
    Ok(())
}

/// Adds to the view of screen `step_id` what it shows of authenticators:
/// the enrollment begun by this execution (`totp`), and, on the first
/// screen after `confirm`, the recovery codes (`recoveryCodes`).
pub(crate) fn decorate(engine: &FlowEngine, execution_id: &str, step_id: &str, ctx: &Context, screen: &mut Value) -> Result<()> {
    let store = engine.store.as_ref();
    if ctx.get(&flag("enrolling")).and_then(Value::as_bool) == Some(true) {
        if let Some(e) = authenticators::pending(store, engine.vault()?, execution_id, issuer(engine))? {
            screen["totp"] = json!({"uri": e.uri, "secret": e.secret, "qrSvg": e.qr_svg});
        }
    }
    if ctx.get(&flag("recoveryAt")).and_then(Value::as_str) == Some(step_id) {
        if let Some(sealed) = store.record(RECOVERY_SHOW, execution_id)? {
            screen["recoveryCodes"] = engine.vault()?.open_sealed(&format!("{RECOVERY_SHOW}:{execution_id}"), &sealed)?;
        }
    }
    Ok(())
}
