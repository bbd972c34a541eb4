//! The step types of a flow. Each file here is one type: its settings,
//! how the parser reads it ([`StepType::parse`]) and what the engine does
//! when a flow reaches it ([`StepType::run`]). A new step type is a new
//! file and one line in the `step_types!` list below.

mod condition;
mod connector;
mod custom_claims;
mod email_code;
mod end;
mod generate_jwt;
mod oauth;
mod passkey;
mod password;
mod screen;
mod totp;
mod update_user;

pub use condition::ConditionStep;
pub use connector::ConnectorStep;
pub use custom_claims::CustomClaimsStep;
pub use email_code::{EmailCodeAction, EmailCodeStep};
pub use end::EndStep;
pub use generate_jwt::GenerateJwtStep;
pub use oauth::OAuthStep;
pub use passkey::{PasskeyAction, PasskeyStep};
pub use password::{PasswordAction, PasswordStep};
pub use screen::{Input, InputType, Interaction, ScreenStep};
pub use totp::{TotpAction, TotpStep};
pub(crate) use totp::waiting_at;
pub use update_user::UpdateUserStep;

use super::context::Context;
use super::engine::FlowEngine;
use super::parser::{Fields, StepParser};
use crate::error::Result;
use std::collections::BTreeSet;

/// What the step files share.
mod prelude {
    pub(super) use super::{Next, StepRun, StepType};
    pub(super) use crate::error::{Error, ErrorCode, Result};
    pub(super) use crate::flow::parser::{check_path, kind_of, Fields, StepParser};
    pub(super) use serde_json::Value;
    pub(super) use std::collections::BTreeSet;
}

/// Makes `user` the flow's user, verified by `methods` (RFC 8176 `amr`
/// values): the methods already verified for this user in this execution are
/// kept, and a different user starts the list again.
pub(crate) fn sign_in_user(ctx: &mut Context, store: &dyn crate::store::Store, user: &crate::user::User, methods: &[&str]) -> Result<()> {
    use super::engine::INTERNAL;
    let amr_path = format!("{INTERNAL}.amr");
    let same_user = ctx.get(&format!("{INTERNAL}.userId")).and_then(serde_json::Value::as_str) == Some(user.user_id.as_str());
    let mut amr: Vec<serde_json::Value> = match ctx.get(&amr_path) {
        Some(serde_json::Value::Array(a)) if same_user => a.clone(),
        _ => Vec::new(),
    };
    for method in methods {
        if !amr.iter().any(|m| m == method) {
            amr.push((*method).into());
        }
    }
    ctx.set("user", user.to_json())?;
    ctx.set(&format!("{INTERNAL}.userId"), user.user_id.clone().into())?;
    ctx.set(&amr_path, serde_json::Value::Array(amr))?;
    if !same_user {
        ctx.set(&format!("{INTERNAL}.upstream"), serde_json::Value::Null)?;
    }
    describe_auth(ctx, store, user)
}

/// `auth.*`, which conditions read (steps cannot write it): `auth.methods`,
/// what this execution verified for its user (the `amr` it would get, `mfa`
/// included), and `auth.enrolled.password` / `.totp` / `.passkeys` (a count) / `.verifiedEmail`,
/// what the user has, for step-up and "set a password?" branches.
pub(crate) fn describe_auth(ctx: &mut Context, store: &dyn crate::store::Store, user: &crate::user::User) -> Result<()> {
    let methods = super::issue::verified_methods(ctx);
    let password = store.password_hash(&user.user_id)?.is_some();
    let totp = crate::users::totp::is_enrolled(store, &user.user_id)?;
    let passkeys = crate::users::passkeys::list(store, &user.user_id)?.len();
    ctx.set(
        "auth",
        serde_json::json!({"methods": methods, "enrolled": {"password": password, "totp": totp, "passkeys": passkeys, "verifiedEmail": user.verified_email}}),
    )
}

/// Adds to the view of screen `step_id` what steps put there and the
/// execution never stores: an authenticator enrollment, recovery codes, a
/// passkey ceremony's options.
pub(crate) fn decorate_screen(engine: &FlowEngine, execution_id: &str, step_id: &str, ctx: &Context, screen: &mut serde_json::Value) -> Result<()> {
    totp::decorate(engine, execution_id, step_id, ctx, screen)?;
    passkey::decorate(engine, execution_id, ctx, screen)
}

/// Where a flow goes after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// On to this step.
    Step(String),
    /// The flow waits at this step for the person (a screen, an upstream
    /// provider's callback).
    Wait,
    /// The flow is complete.
    End,
}

/// What a running step may use: the engine (store, connectors, upstream
/// providers), the execution's context, and where it is.
pub(crate) struct StepRun<'a> {
    pub engine: &'a FlowEngine,
    pub ctx: &'a mut Context,
    pub execution_id: &'a str,
    pub step_id: &'a str,
}

/// A step type.
pub(crate) trait StepType: Sized {
    /// The `type` in flow files.
    const NAME: &'static str;
    /// Whether the step takes `onError` (it can fail at run time).
    const ON_ERROR: bool;
    /// Reads the step's fields; problems go to the parser. `None` when the
    /// step cannot be built.
    fn parse(p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<Self>;
    /// Runs the step; an error goes to the step's `onError`, else fails
    /// the flow.
    async fn run(&self, run: &mut StepRun<'_>) -> Result<Next>;
    /// Adds the `form.*` names this step reads beyond the `form.` paths
    /// written in the flow file.
    fn form_inputs(&self, names: &mut BTreeSet<String>) {
        let _ = names;
    }
}

macro_rules! step_types {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// A step with its settings, by type.
        #[derive(Debug, Clone, PartialEq)]
        pub enum StepKind {
            $($variant($ty)),*
        }

        /// Every step type's name, in the order of the list.
        pub(crate) const STEP_TYPES: &[&str] = &[$(<$ty as StepType>::NAME),*];

        impl StepKind {
            /// The `type` of this step in flow files.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(StepKind::$variant(_) => <$ty as StepType>::NAME),*
                }
            }

            /// Whether steps of the type named `name` take `onError`;
            /// `None` for an unknown type.
            pub(crate) fn takes_on_error(name: &str) -> Option<bool> {
                $(if name == <$ty as StepType>::NAME {
                    return Some(<$ty as StepType>::ON_ERROR);
                })*
                None
            }

            /// Parses a step of the type named `name` (a known one).
            pub(crate) fn parse(name: &str, p: &mut StepParser<'_>, f: &mut Fields<'_>) -> Option<StepKind> {
                $(if name == <$ty as StepType>::NAME {
                    return <$ty as StepType>::parse(p, f).map(StepKind::$variant);
                })*
                None
            }

            pub(crate) async fn run(&self, run: &mut StepRun<'_>) -> Result<Next> {
                match self {
                    $(StepKind::$variant(s) => s.run(run).await),*
                }
            }

            pub(crate) fn form_inputs(&self, names: &mut BTreeSet<String>) {
                match self {
                    $(StepKind::$variant(s) => s.form_inputs(names)),*
                }
            }
        }
    };
}

step_types!(
    Screen(ScreenStep),
    Connector(ConnectorStep),
    Condition(ConditionStep),
    GenerateJwt(GenerateJwtStep),
    Password(PasswordStep),
    EmailCode(EmailCodeStep),
    Totp(TotpStep),
    Passkey(PasskeyStep),
    UpdateUser(UpdateUserStep),
    CustomClaims(CustomClaimsStep),
    OAuth(OAuthStep),
    End(EndStep),
);
