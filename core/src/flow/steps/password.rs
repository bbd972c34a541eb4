//! `password`: signs a person in or up with a password, or changes the
//! signed-in user's password (`users::password`). The password comes from
//! a screen input of type `password`, so it is never stored with the
//! execution. A sign-in or sign-up sets the flow's user and adds `pwd` to
//! `amr`; errors (`invalid_credentials`, `user_locked`, `weak_password`,
//! `user_exists`) go to `onError` with their code.

use super::prelude::*;
use crate::flow::engine::INTERNAL;
use crate::ids::now_secs;
use crate::users::password as passwords;

/// What a `password` step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAction {
    SignIn,
    SignUp,
    /// The user signed in earlier in this execution changes its password.
    Change,
    /// A forgotten password: the user an `emailCode` step of this execution
    /// signed in (`amr` has `otp`) sets a new one, and its lockout ends.
    Reset,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PasswordStep {
    pub action: PasswordAction,
    /// Context path of the login id; defaults to `form.email`.
    pub login_id: String,
    /// The `form.*` path of the password; defaults to `form.password`.
    pub password: String,
    /// For `change`: the new password's path; defaults to `form.newPassword`.
    pub new_password: String,
    pub next: String,
}

impl PasswordStep {
    /// The `form.*` paths this step reads a password from.
    pub(crate) fn password_paths(&self) -> Vec<&str> {
        match self.action {
            PasswordAction::Change => vec![&self.password, &self.new_password],
            PasswordAction::Reset => vec![&self.new_password],
            _ => vec![&self.password],
        }
    }
}

fn text(ctx: &crate::flow::context::Context, path: &str, what: &str) -> Result<String> {
    match ctx.get(path) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(Error::new(ErrorCode::StepFailed, format!("the password step found no {what} at {path}"))),
    }
}

impl StepType for PasswordStep {
    const NAME: &'static str = "password";
    const ON_ERROR: bool = true;

    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self> {
        let id = f.step.unwrap_or("").to_owned();
        let action = match f.string(p.p, "action", true).as_deref() {
            Some("signIn") => PasswordAction::SignIn,
            Some("signUp") => PasswordAction::SignUp,
            Some("change") => PasswordAction::Change,
            Some("reset") => PasswordAction::Reset,
            Some(other) => {
                p.p.add(Some(&id), "action", format!("unknown action {other:?}; expected signIn, signUp, change or reset"));
                PasswordAction::SignIn
            }
            None => PasswordAction::SignIn,
        };
        let login_id = f.string(p.p, "loginId", false).unwrap_or_else(|| "form.email".to_owned());
        check_path(p.p, &id, "loginId", &login_id);
        let mut path = |field: &'static str, default: &str| {
            let path = f.string(p.p, field, false).unwrap_or_else(|| default.to_owned());
            if !path.starts_with("form.") || path.len() <= 5 || path[5..].contains('.') {
                p.p.add(Some(&id), field, "must be form.<name> of a password input");
            }
            path
        };
        let password = path("password", "form.password");
        let new_password = path("newPassword", "form.newPassword");
        let next = p.target(f, "next", true);
        Some(PasswordStep { action, login_id, password, new_password, next })
    }

    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
        let engine = run.engine;
        let settings = &engine.config.passwords;
        let store = engine.store.as_ref();
        let ctx = &mut *run.ctx;
        if self.action == PasswordAction::Reset {
            let user_id = ctx.get(&format!("{INTERNAL}.userId")).and_then(Value::as_str).map(str::to_owned);
            let proven = ctx.get(&format!("{INTERNAL}.amr")).and_then(Value::as_array).is_some_and(|a| a.iter().any(|m| m == "otp"));
            let (Some(user_id), true) = (user_id, proven) else {
                return Err(Error::new(ErrorCode::AccessDenied, "a password reset needs the user signed in by an emailCode step of this flow"));
            };
            let new = text(ctx, &self.new_password, "new password")?;
            passwords::set(store, settings, &user_id, new).await?;
            let user = store.user(&user_id)?.ok_or_else(|| Error::new(ErrorCode::UserNotFound, "the flow's user no longer exists"))?;
            for login_id in &user.login_ids {
                passwords::unlock(store, login_id)?;
            }
            ctx.set("user", user.to_json())?;
            super::describe_auth(ctx, store, &user)?;
            return Ok(Next::Step(self.next.clone()));
        }
        let password = text(ctx, &self.password, "password")?;
        let user = match self.action {
            PasswordAction::SignIn | PasswordAction::SignUp => {
                let login_id = text(ctx, &self.login_id, "login id")?;
                if self.action == PasswordAction::SignIn {
                    passwords::sign_in(store, settings, &login_id, password, now_secs()).await?
                } else {
                    passwords::sign_up(store, settings, &login_id, password, now_secs()).await?
                }
            }
            PasswordAction::Change | PasswordAction::Reset => {
                let user_id = ctx
                    .get(&format!("{INTERNAL}.userId"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| Error::new(ErrorCode::StepFailed, "a password change needs the user signed in earlier in this flow"))?;
                let new = text(ctx, &self.new_password, "new password")?;
                passwords::change(store, settings, &user_id, password, new, now_secs()).await?;
                store.user(&user_id)?.ok_or_else(|| Error::new(ErrorCode::UserNotFound, "the flow's user no longer exists"))?
            }
        };
        super::sign_in_user(ctx, store, &user, &["pwd"])?;
        Ok(Next::Step(self.next.clone()))
    }

    /// The login id only: a password comes from a screen answer, never
    /// from a flow start's input (which is stored with the execution).
    fn form_inputs(&self, names: &mut BTreeSet<String>) {
        if let Some(name) = self.login_id.strip_prefix("form.") {
            names.insert(name.to_owned());
        }
    }
}
