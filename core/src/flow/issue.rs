//! The session and refresh JWTs a completed flow issues for its user
//! (minted by `jose::Minter`, typed so neither passes for the other or for
//! an access token).

use super::api::AuthInfo;
use super::engine::{FlowEngine, INTERNAL};
use super::context::Context;
use crate::error::{Error, ErrorCode, Result};
use crate::jose::{add_custom_claims, Minter, TokenKind};
use crate::store::RefreshRecord;
use crate::users::provision;
use serde_json::{json, Map, Value};
use crate::ids::{now_secs as now, random_id};

/// The `amr` of an execution (RFC 8176): the methods its steps verified for
/// its user, with `mfa` added when two or more different ones did.
pub(crate) fn verified_methods(ctx: &Context) -> Value {
    let mut methods: Vec<Value> = ctx.get(&format!("{INTERNAL}.amr")).and_then(Value::as_array).cloned().unwrap_or_default();
    const FACTORS: [&str; 5] = ["pwd", "otp", "hwk", "swk", "sms"];
    let factors = FACTORS.iter().filter(|f| methods.iter().any(|m| m == *f)).count();
    if factors >= 2 && !methods.iter().any(|m| m == "mfa") {
        methods.push(json!("mfa"));
    }
    Value::Array(methods)
}

/// The `acr` of an execution of `flow_id`: the flow's id when a step of
/// this execution verified the user (a method in `amr`, or an upstream
/// provider's sign-in that the `oauth` step checked), else none, so that a
/// flow which only looked a user up never claims an authentication context.
pub(crate) fn verified_acr(ctx: &Context, flow_id: &str) -> Option<String> {
    let methods = ctx.get(&format!("{INTERNAL}.amr")).and_then(Value::as_array).is_some_and(|m| !m.is_empty());
    let upstream = ctx.get(&format!("{INTERNAL}.upstream")).is_some_and(Value::is_string);
    (methods || upstream).then(|| flow_id.to_owned())
}

impl FlowEngine {
    /// Session and refresh JWTs for the authenticated user.
    pub(super) fn issue(&self, ctx: &Context) -> Result<AuthInfo> {
        let user_id = ctx.get(&format!("{INTERNAL}.userId")).and_then(Value::as_str).unwrap_or_default();
        let custom = match ctx.get("claims") {
            Some(Value::Object(c)) => c.clone(),
            _ => Map::new(),
        };
        self.issue_for_user(user_id, verified_methods(ctx), &custom)
    }
    /// Session and refresh JWTs for `user_id` (signed in by `amr`, with
    /// `custom` claims), as a completed flow issues them; the social-login
    /// API path uses it too. Both are typed (`session+jwt`, `refresh+jwt`)
    /// and carry `aud` = the project, so neither passes for an access token
    /// (`at+jwt`) or a token of another project (RFC 8725 §3.11). An empty
    /// `amr` (nothing verified) leaves the claim out.
    pub fn issue_for_user(&self, user_id: &str, amr: Value, custom: &Map<String, Value>) -> Result<AuthInfo> {
        let user = self
            .store
            .user(user_id)?
            .ok_or_else(|| Error::new(ErrorCode::UserNotFound, "the flow's user no longer exists"))?;
        let iat = now();
        let minter = Minter::new(&self.config.issuer, &self.config.signing_key);
        let audience = &self.config.audience;
        let mut claims = Map::new();
        if let Some(tenants) = provision::tenants_claim(&user, &self.config.roles) {
            claims.insert("tenants".into(), tenants);
        }
        add_custom_claims(&mut claims, custom);
        // `amr` names only what a step verified, whatever the custom claims
        // say: none when nothing was.
        if amr.as_array().is_some_and(|methods| !methods.is_empty()) {
            claims.insert("amr".into(), amr);
        } else {
            claims.remove("amr");
        }
        let (session_jwt, _) = minter.mint(TokenKind::Session, &user.user_id, audience, iat, self.config.session_ttl, claims)?;
        let jti = random_id("R")?;
        let jti_claim: Map<String, Value> = [("jti".to_owned(), Value::from(jti.clone()))].into_iter().collect();
        let (refresh_jwt, exp) = minter.mint(TokenKind::Refresh, &user.user_id, audience, iat, self.config.refresh_ttl, jti_claim)?;
        self.store.insert_refresh(&RefreshRecord { jti, user_id: user.user_id.clone(), expires_at: exp, revoked: false })?;
        Ok(AuthInfo { session_jwt, refresh_jwt, user: user.to_json() })
    }
}
