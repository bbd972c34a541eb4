//! The session manager's public types: options, the session, its status,
//! sign-out reasons and the events a listener hears.

use super::*;

/// Session manager settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Refresh when the access token expires within this margin. Defaults to 60 s.
    pub refresh_margin: Duration,
    /// Revoke the refresh token at the provider on sign-out (best effort).
    /// Defaults to true.
    pub revoke_on_sign_out: bool,
    /// How long a sign-in started by `begin` can be completed. Defaults to 600 s.
    pub pending_ttl: Duration,
    /// A file whose advisory lock (flock) serialises refreshes across
    /// processes that share the storage: an app and its extension in a
    /// shared container. Created when missing; it stays empty.
    pub lock_path: Option<PathBuf>,
    /// How long to wait for another process's lock before giving up with
    /// `storage`. Defaults to 30 s.
    pub lock_timeout: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            refresh_margin: Duration::from_secs(60),
            revoke_on_sign_out: true,
            pending_ttl: Duration::from_secs(600),
            lock_path: None,
            lock_timeout: Duration::from_secs(30),
        }
    }
}

impl SessionOptions {
    /// Settings by name: `refreshMargin` (seconds), `revokeOnSignOut`,
    /// `pendingTtl` (seconds), `lockPath`, `lockTimeout` (seconds).
    pub fn from_json(v: &Map<String, Value>) -> Result<SessionOptions> {
        let mut o = SessionOptions::default();
        let seconds = |k: &str, n: &serde_json::Number, range: std::ops::RangeInclusive<f64>| match n.as_f64() {
            Some(s) if range.contains(&s) => Ok(Duration::from_secs_f64(s)),
            _ => Err(Error::config(format!("{k} must be {} to {} seconds", range.start(), range.end()))),
        };
        for (k, x) in v {
            match (k.as_str(), x) {
                (_, Value::Null) => {}
                ("refreshMargin", Value::Number(n)) => o.refresh_margin = seconds(k, n, 0.0..=86_400.0)?,
                ("pendingTtl", Value::Number(n)) => o.pending_ttl = seconds(k, n, 1.0..=3600.0)?,
                ("lockTimeout", Value::Number(n)) => o.lock_timeout = seconds(k, n, 0.0..=600.0)?,
                ("revokeOnSignOut", Value::Bool(b)) => o.revoke_on_sign_out = *b,
                ("lockPath", Value::String(p)) if !p.is_empty() && !p.contains('\0') => o.lock_path = Some(PathBuf::from(p)),
                ("lockPath", Value::String(_)) => return Err(Error::config("lockPath must be a file path")),
                ("refreshMargin" | "revokeOnSignOut" | "pendingTtl" | "lockPath" | "lockTimeout", _) => {
                    return Err(Error::config(format!("{k} has the wrong type")))
                }
                _ => return Err(Error::config(format!("unknown session setting {k:?}"))),
            }
        }
        Ok(o)
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum SignOutReason {
    /// `sign_out` was called.
    User,
    /// The provider refused the refresh token (`invalid_grant`).
    RefreshRefused,
    /// Another instance over the same storage signed out.
    Elsewhere,
}

impl SignOutReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SignOutReason::User => "user",
            SignOutReason::RefreshRefused => "refresh_refused",
            SignOutReason::Elsewhere => "elsewhere",
        }
    }
}

/// What a [`SessionListener`] hears.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// The session has new tokens: this manager refreshed, or it adopted
    /// the tokens another instance over the same storage renewed.
    Refreshed(Session),
    /// The session ended; `message` says why in words.
    SignedOut { reason: SignOutReason, message: String },
    /// The storage failed (load, save or clear); the session in memory is kept.
    StorageFailed(Error),
}

impl SessionEvent {
    /// `refreshed`, `signedOut` or `storageFailed`.
    pub fn name(&self) -> &'static str {
        match self {
            SessionEvent::Refreshed(_) => "refreshed",
            SessionEvent::SignedOut { .. } => "signedOut",
            SessionEvent::StorageFailed(_) => "storageFailed",
        }
    }

    /// The event as the bindings hand it to JavaScript and Python:
    /// `{type, session}`, `{type, reason, message}` or `{type, code, message}`.
    pub fn to_json(&self) -> Value {
        match self {
            SessionEvent::Refreshed(s) => json!({"type": self.name(), "session": s.to_json()}),
            SessionEvent::SignedOut { reason, message } => json!({"type": self.name(), "reason": reason.as_str(), "message": message}),
            SessionEvent::StorageFailed(e) => json!({"type": self.name(), "code": e.code.as_str(), "message": e.message}),
        }
    }
}

/// Hears session events. Called after the manager's lock is released, on
/// whichever thread the call that caused the event runs.
pub trait SessionListener: Send + Sync {
    fn on_event(&self, event: &SessionEvent);
}

/// A signed-in user's tokens.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Session {
    pub access_token: String,
    pub token_type: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
    /// When the access token expires (seconds since the epoch), if the provider said.
    pub expires_at: Option<u64>,
    /// The verified id_token's claims (or userinfo's for a plain OAuth
    /// provider); Swift and Kotlin see JSON text, `claimsJson`.
    #[cfg_attr(feature = "uniffi", uniffi(name = "claims_json"))]
    pub claims: Map<String, Value>,
}

impl Session {
    pub(super) fn from_tokens(tokens: TokenSet, now: u64) -> Session {
        Session {
            access_token: tokens.access_token,
            token_type: tokens.token_type,
            refresh_token: tokens.refresh_token,
            id_token: tokens.id_token,
            scope: tokens.scope,
            expires_at: tokens.expires_in.map(|e| now.saturating_add(e)),
            claims: tokens.claims.unwrap_or_default(),
        }
    }

    /// The user's `sub`.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// Whether the access token has expired at `now`.
    pub fn expired_at(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }

    /// The public view: tokens, `expires_at`, `claims`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "access_token": self.access_token,
            "token_type": self.token_type,
            "claims": self.claims,
        });
        for (k, x) in [("refresh_token", &self.refresh_token), ("id_token", &self.id_token), ("scope", &self.scope)] {
            if let Some(x) = x {
                v[k] = x.clone().into();
            }
        }
        if let Some(e) = self.expires_at {
            v["expires_at"] = e.into();
        }
        v
    }

    pub(super) fn from_fields(doc: &Map<String, Value>) -> Result<Session> {
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Session {
            access_token: text("access_token").filter(|s| !s.is_empty()).ok_or_else(|| unreadable("no access_token"))?,
            token_type: text("token_type").unwrap_or_else(|| "Bearer".into()),
            refresh_token: text("refresh_token"),
            id_token: text("id_token"),
            scope: text("scope"),
            expires_at: doc.get("expires_at").and_then(Value::as_u64),
            claims: doc.get("claims").and_then(Value::as_object).cloned().unwrap_or_default(),
        })
    }
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum SessionStatus {
    /// Nobody is signed in.
    SignedOut,
    /// The id_token's signature checks out and the access token is unexpired.
    Valid,
    /// The access token has expired; a refresh token can renew it.
    Expired,
    /// The stored tokens fail verification, or expired with no refresh token:
    /// sign in again.
    Invalid,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::SignedOut => "signed_out",
            SessionStatus::Valid => "valid",
            SessionStatus::Expired => "expired",
            SessionStatus::Invalid => "invalid",
        }
    }
}
