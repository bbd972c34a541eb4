//! The provider's state in the store: one serde type per kind of record,
//! each with its store kind, read and written only through [`Records`].
//! A store keeps a record by `(kind, id)` until its expiry, in one table
//! keyed by both on SQLite and PostgreSQL. (A partition per kind on
//! PostgreSQL was measured: a third to twice the database CPU per login,
//! for no gain at this size; so one table.)
//!
//! The JSON of every type is what earlier versions wrote (camelCase field
//! names, absent fields read as their defaults), so records written before
//! an upgrade still read after it.
//!
//! Races are single store operations: [`Records::insert`] (the first
//! insert of a live id wins), [`Records::redeem`] (a "used" marker and the
//! record that replaces what was used, in one transaction) and
//! [`Records::take`] (delete and return, once).

use crate::error::{Error, ErrorCode, Result};
use crate::store::{RecordWrite, Store};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A kind of provider record.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// Its store kind.
    const KIND: &'static str;
}

/// Typed access to the provider's records in a store.
#[derive(Clone, Copy)]
pub(crate) struct Records<'a>(pub &'a dyn Store);

fn encode<R: Record>(record: &R) -> Result<Value> {
    serde_json::to_value(record).map_err(|e| Error::internal(format!("a {} record: {e}", R::KIND)))
}

fn decode<R: Record>(value: Value) -> Result<R> {
    serde_json::from_value(value).map_err(|_| Error::new(ErrorCode::Storage, format!("a stored {} record is malformed", R::KIND)))
}

impl Records<'_> {
    /// The live record `id`.
    pub(crate) fn get<R: Record>(&self, id: &str) -> Result<Option<R>> {
        self.0.record(R::KIND, id)?.map(decode).transpose()
    }

    /// Whether a live record `id` exists.
    pub(crate) fn exists<R: Record>(&self, id: &str) -> Result<bool> {
        Ok(self.0.record(R::KIND, id)?.is_some())
    }

    /// Writes record `id` (replacing any), living until `expires_at`.
    pub(crate) fn put<R: Record>(&self, id: &str, record: &R, expires_at: Option<u64>) -> Result<()> {
        self.0.put_record(R::KIND, id, &encode(record)?, expires_at)
    }

    /// Writes record `id` only when no live one exists: whether it did.
    pub(crate) fn insert<R: Record>(&self, id: &str, record: &R, expires_at: Option<u64>) -> Result<bool> {
        self.0.insert_record(R::KIND, id, &encode(record)?, expires_at)
    }

    /// Deletes the live record `id` and returns it: of callers racing for
    /// it, one gets it.
    pub(crate) fn take<R: Record>(&self, id: &str) -> Result<Option<R>> {
        self.0.take_record(R::KIND, id)?.map(decode).transpose()
    }

    /// Every live record of the kind, ordered by id.
    pub(crate) fn all<R: Record>(&self) -> Result<Vec<(String, R)>> {
        self.0.records(R::KIND)?.into_iter().map(|(id, v)| Ok((id, decode(v)?))).collect()
    }

    pub(crate) fn delete<R: Record>(&self, id: &str) -> Result<()> {
        self.0.delete_record(R::KIND, id)
    }

    /// Redeems `id` once (a code, a client assertion's `jti`, a social
    /// login's code): inserts its `used` marker unless a live one exists.
    /// `false` means it was redeemed before, so it leaked or is replayed.
    pub(crate) fn redeem<M: Record>(&self, id: &str, used: &M, used_until: Option<u64>) -> Result<bool> {
        self.insert(id, used, used_until)
    }

    /// [`Records::redeem`], writing `next` (the successor of what was
    /// redeemed: a rotated refresh token) in the same transaction, and only
    /// when the redemption wins. A crash leaves both or neither.
    pub(crate) fn redeem_with<M: Record, T: Record>(&self, id: &str, used: &M, used_until: Option<u64>, next: (&str, &T, u64)) -> Result<bool> {
        let (marker, value) = (encode(used)?, encode(next.1)?);
        let marker = RecordWrite { kind: M::KIND, id, value: &marker, expires_at: used_until };
        self.0.redeem_and_put(&marker, &RecordWrite { kind: T::KIND, id: next.0, value: &value, expires_at: Some(next.2) })
    }
}

/// Markers whose presence is all they say, stored as JSON `true`.
macro_rules! markers {
    ($($(#[$doc:meta])* $name:ident = $kind:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) struct $name;

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_bool(true)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                serde::de::IgnoredAny::deserialize(d).map(|_| $name)
            }
        }

        impl Record for $name {
            const KIND: &'static str = $kind;
        }
    )*};
}

markers! {
    /// A code was redeemed (kept 10 minutes past the code's expiry, so a
    /// replay is recognised and revokes the grant).
    CodeUsed = "code_used";
    /// An access token revoked before its expiry, by its `jti`.
    RevokedJti = "revoked_jti";
    /// A client assertion's `{client}:{jti}` was used (RFC 7523 §3: once).
    ClientJti = "client_jti";
    /// A social-login code was exchanged.
    SocialCodeUsed = "oauth_code_used";
}

/// An authorization request waiting for its flow (10 minutes), by its
/// request id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// `code`, `id_token` or `id_token token`.
    pub response_type: String,
    pub form_post: bool,
    /// The granted scope, space-separated.
    pub scope: String,
    /// The `state` received, base64url of its exact bytes.
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub max_age: Option<u64>,
    pub login_hint: Option<String>,
    /// The flow chosen to answer it.
    pub flow: String,
    /// The `claims` parameter (OIDC Core §5.5), as checked.
    pub claims_request: Option<Value>,
    /// The digest of the browser binding it belongs to.
    pub browser: Option<String>,
}

impl Record for AuthRequest {
    const KIND: &'static str = "authreq";
}

impl AuthRequest {
    /// The `state` as the exact bytes received.
    pub(crate) fn state_bytes(&self) -> Option<Vec<u8>> {
        self.state.as_deref().and_then(crate::b64::decode)
    }

}

/// What a sign-in established, carried by its code and refresh tokens
/// into every token minted from them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Authentication {
    pub user_id: String,
    pub auth_time: Option<u64>,
    /// The methods that verified the user (`amr`), a JSON array.
    pub amr: Value,
    /// The flow, when it verified the user.
    pub acr: Option<String>,
    /// The custom claims the flow gave.
    pub claims: Map<String, Value>,
    /// The provider session it belongs to.
    pub sid: Option<String>,
}

/// A code (by the SHA-256 of the code): the request it answers and the
/// sign-in behind it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Code {
    #[serde(flatten)]
    pub request: AuthRequest,
    #[serde(flatten)]
    pub auth: Authentication,
    #[serde(default)]
    pub grant_id: String,
    /// When the code expires (the record outlives it, see [`CodeUsed`]).
    #[serde(default)]
    pub exp: u64,
}

impl Record for Code {
    const KIND: &'static str = "code";
}

/// One authorization: every token issued from it is revoked with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Grant {
    pub client_id: Option<String>,
    pub user_id: String,
    pub signed_in_ms: Option<u64>,
    pub sid: Option<String>,
    pub revoked: bool,
    pub expires_at: Option<u64>,
    pub claims_request: Option<Value>,
}

impl Record for Grant {
    const KIND: &'static str = "grant";
}

/// A refresh token (by its digest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefreshToken {
    #[serde(flatten)]
    pub auth: Authentication,
    #[serde(default)]
    pub grant_id: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub claims_request: Option<Value>,
    /// The family's expiry.
    #[serde(default)]
    pub exp: Option<u64>,
}

impl Record for RefreshToken {
    const KIND: &'static str = "rt";
}

/// A refresh token was rotated: when, for whom, its successor, and the
/// sealed answer a retry within the grace window gets again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RefreshUsed {
    pub at: u64,
    pub client_id: String,
    pub response: Option<Value>,
    pub next: Option<String>,
}

impl Record for RefreshUsed {
    const KIND: &'static str = "rt_used";
}

/// The provider's browser session behind its cookie.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Session {
    pub user_id: String,
    pub auth_time: u64,
    pub signed_in_ms: Option<u64>,
    pub amr: Value,
    /// The flow that made it.
    pub flow: String,
    pub acr: Option<String>,
    pub claims: Map<String, Value>,
    /// The grants made under it, revoked when it ends.
    pub grants: Vec<String>,
    pub expires_at: Option<u64>,
}

impl Record for Session {
    const KIND: &'static str = "session";
}

impl Session {
    /// When its sign-in happened, in milliseconds (a session of an older
    /// version has only `authTime`, in seconds).
    pub(crate) fn signed_in_ms(&self) -> u64 {
        self.signed_in_ms.unwrap_or_else(|| self.auth_time.saturating_mul(1000))
    }
}

impl Grant {
    /// When the sign-in behind it happened, in milliseconds (0, the oldest,
    /// for a grant of an older version).
    pub(crate) fn signed_in_ms(&self) -> u64 {
        self.signed_in_ms.unwrap_or(0)
    }
}

/// A finished authorization waiting for its browser
/// (`/oauth2/v1/authorize/complete`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Delivery {
    /// The authorization response (`Completion::to_json`).
    pub delivery: Value,
    pub sid: Option<String>,
    /// The digest of the browser binding it goes to.
    pub browser: Option<String>,
}

impl Record for Delivery {
    const KIND: &'static str = "completion";
}

/// A sign-out waiting for its confirmation page (by the token's digest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct LogoutConfirm {
    pub sid: Option<String>,
    pub redirect: Option<String>,
    pub state: Option<String>,
}

impl Record for LogoutConfirm {
    const KIND: &'static str = "logout_confirm";
}

/// A rate limit's counter for one window (by bucket, key digest and
/// window), a JSON number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct RateCount(pub u64);

impl Record for RateCount {
    const KIND: &'static str = "rate";
}

impl Records<'_> {
    /// Adds one to counter `id` (created at 1, living until `expires_at`)
    /// and returns its new value, atomically.
    pub(crate) fn hit(&self, id: &str, expires_at: u64) -> Result<u64> {
        self.0.hit(RateCount::KIND, id, expires_at)
    }
}

/// What a social login returns to: a flow's `oauth` step, the social
/// login API's redirect URL, or `idflow oauth test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", rename_all_fields = "camelCase")]
pub(crate) enum SocialTarget {
    Flow { execution_id: String, step_id: String },
    Api { redirect_url: String, code_challenge: String },
    Test,
}

/// A social login waiting for the upstream's answer, by its `state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SocialState {
    #[serde(flatten)]
    pub target: SocialTarget,
    /// The `oauthProviders` name.
    pub provider: String,
    /// The upstream authorization request (`AuthorizationRequest::to_json`).
    pub request: Value,
}

impl Record for SocialState {
    const KIND: &'static str = "oauth_state";
}

/// An upstream's answer for a flow step, kept for the execution's owner
/// when it reached another browser (by a one-time resume id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SocialResume {
    pub execution_id: String,
    pub record: SocialState,
    pub input: String,
}

impl Record for SocialResume {
    const KIND: &'static str = "oauth_resume";
}

/// A social login API's one-time code (by its digest), bound to the
/// login's PKCE challenge.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SocialCode {
    pub user_id: String,
    pub provider: String,
    pub code_challenge: Option<String>,
    pub exp: u64,
}

impl Record for SocialCode {
    const KIND: &'static str = "oauth_code";
}

/// A finished execution's answer kept for its owner's page (by the
/// execution id): shown once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct FlowOutcome {
    pub response: Value,
    /// Who may read it (the engine's owner record).
    pub owner: Value,
}

impl Record for FlowOutcome {
    const KIND: &'static str = "flow_result";
}

/// A user's upstream tokens at an `oauthProviders` entry, sealed by the
/// data key (by `{userId}:{provider}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct ProviderTokens(pub Value);

impl Record for ProviderTokens {
    const KIND: &'static str = "provider_token";
}

/// A signing key: its private JWK sealed by the data key (a record from
/// before sealing has `jwk` in the clear, sealed when first loaded).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SigningKey {
    /// Its `kid` (the JWK's; absent in the oldest records).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kid: String,
    pub alg: String,
    pub created_at: u64,
    /// When it starts signing (absent: from its creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_from: Option<u64>,
    /// When an older version retired it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Map<String, Value>>,
}

impl Record for SigningKey {
    const KIND: &'static str = "signing_key";
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use serde_json::json;

    #[test]
    fn records_read_what_earlier_versions_wrote() {
        let store = MemoryStore::new();
        let r = Records(&store);
        // A code as the provider wrote it before these types: the request's
        // fields and the sign-in's side by side.
        let old = json!({"clientId": "app", "redirectUri": "https://rp/cb", "responseType": "code", "formPost": false, "scope": "openid",
            "state": "c3Q", "nonce": "n", "codeChallenge": "x", "codeChallengeMethod": "S256", "maxAge": null, "loginHint": null,
            "flow": "f", "claimsRequest": null, "browser": "b", "userId": "U1", "authTime": 5, "amr": ["pwd"], "acr": "f",
            "claims": {"plan": "pro"}, "sid": "S1", "grantId": "G1", "exp": 9});
        store.put_record("code", "d", &old, None).unwrap();
        let code: Code = r.get("d").unwrap().unwrap();
        assert_eq!((code.request.client_id.as_str(), code.auth.user_id.as_str(), code.grant_id.as_str(), code.exp), ("app", "U1", "G1", 9));
        assert_eq!(code.request.state_bytes().as_deref(), Some(&b"st"[..]));
        assert_eq!(code.auth.claims["plan"], "pro");
        // Written back, it is the same JSON.
        r.put("e", &code, None).unwrap();
        assert_eq!(store.record("code", "e").unwrap().unwrap(), old);
        // A session from before `signedInMs` and `acr`.
        store.put_record("session", "s", &json!({"userId": "U1", "authTime": 7, "amr": [], "flow": "f", "grants": ["G1"]}), None).unwrap();
        let s: Session = r.get("s").unwrap().unwrap();
        assert_eq!((s.signed_in_ms(), s.acr, s.grants), (7000, None, vec!["G1".to_owned()]));
        // A marker is `true`, and anything reads as one.
        assert!(r.insert("m", &CodeUsed, None).unwrap() && !r.insert("m", &CodeUsed, None).unwrap());
        assert_eq!(store.record("code_used", "m").unwrap(), Some(json!(true)));
        // A malformed record is a storage error naming its kind.
        store.put_record("grant", "g", &json!({"revoked": "no"}), None).unwrap();
        let e = r.get::<Grant>("g").unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (ErrorCode::Storage, "a stored grant record is malformed"));
        // A social login's state: its mode beside the provider and request.
        let old = json!({"mode": "flow", "executionId": "E1", "stepId": "s", "provider": "acme", "request": {"state": "x"}});
        store.put_record("oauth_state", "x", &old, None).unwrap();
        let st: SocialState = r.get("x").unwrap().unwrap();
        assert_eq!(st.target, SocialTarget::Flow { execution_id: "E1".into(), step_id: "s".into() });
        r.put("y", &st, None).unwrap();
        assert_eq!(store.record("oauth_state", "y").unwrap(), Some(old));
        let test = SocialState { target: SocialTarget::Test, provider: "p".into(), request: json!({}) };
        assert_eq!(serde_json::to_value(&test).unwrap(), json!({"mode": "test", "provider": "p", "request": {}}));
    }

    #[test]
    fn a_redemption_writes_its_successor_once() {
        let store = MemoryStore::new();
        let r = Records(&store);
        let next = RefreshToken { grant_id: "G".into(), client_id: "app".into(), ..Default::default() };
        let used = RefreshUsed { at: 1, client_id: "app".into(), next: Some("n1".into()), ..Default::default() };
        assert!(r.redeem_with("old", &used, Some(u64::MAX), ("n1", &next, u64::MAX)).unwrap());
        assert!(!r.redeem_with("old", &used, Some(u64::MAX), ("n2", &next, u64::MAX)).unwrap());
        assert!(!r.redeem("old", &used, None).unwrap());
        assert_eq!(r.get::<RefreshToken>("n1").unwrap(), Some(next));
        assert!(r.get::<RefreshToken>("n2").unwrap().is_none());
        assert_eq!(r.take::<RefreshUsed>("old").unwrap(), Some(used));
        assert!(r.take::<RefreshUsed>("old").unwrap().is_none());
    }
}
