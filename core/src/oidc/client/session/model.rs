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

/// [`SessionOptions`] as they are given: JSON by these (camelCase) names in
/// Python and Node, this record in Swift and Kotlin. Durations are seconds;
/// every `None` keeps the default. [`SessionOptions::from_settings`] checks
/// them.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SessionSettings {
    /// 0 to 86400; defaults to 60.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub refresh_margin: Option<f64>,
    /// Defaults to true.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub revoke_on_sign_out: Option<bool>,
    /// 1 to 3600; defaults to 600.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub pending_ttl: Option<f64>,
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub lock_path: Option<String>,
    /// 0 to 600; defaults to 30.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub lock_timeout: Option<f64>,
}

impl SessionSettings {
    /// Reads the settings by name: `refreshMargin`, `revokeOnSignOut`,
    /// `pendingTtl`, `lockPath`, `lockTimeout`. Only the types are checked here.
    pub fn from_json(v: &Map<String, Value>) -> Result<SessionSettings> {
        let mut s = SessionSettings::default();
        for (k, x) in v {
            match (k.as_str(), x) {
                (_, Value::Null) => {}
                ("refreshMargin", Value::Number(n)) => s.refresh_margin = Some(n.as_f64().unwrap_or(f64::NAN)),
                ("pendingTtl", Value::Number(n)) => s.pending_ttl = Some(n.as_f64().unwrap_or(f64::NAN)),
                ("lockTimeout", Value::Number(n)) => s.lock_timeout = Some(n.as_f64().unwrap_or(f64::NAN)),
                ("revokeOnSignOut", Value::Bool(b)) => s.revoke_on_sign_out = Some(*b),
                ("lockPath", Value::String(p)) => s.lock_path = Some(p.clone()),
                ("refreshMargin" | "revokeOnSignOut" | "pendingTtl" | "lockPath" | "lockTimeout", _) => {
                    return Err(Error::config(format!("{k} has the wrong type")))
                }
                _ => return Err(Error::config(format!("unknown session setting {k:?}"))),
            }
        }
        Ok(s)
    }
}

impl SessionOptions {
    /// Parses settings by name ([`SessionSettings::from_json`]) and checks them.
    pub fn from_json(v: &Map<String, Value>) -> Result<SessionOptions> {
        SessionOptions::from_settings(&SessionSettings::from_json(v)?)
    }

    /// Checks settings given by name and fills in the defaults.
    pub fn from_settings(s: &SessionSettings) -> Result<SessionOptions> {
        let mut o = SessionOptions::default();
        let seconds = |k: &str, v: Option<f64>, range: std::ops::RangeInclusive<f64>, default: Duration| match v {
            None => Ok(default),
            Some(s) if range.contains(&s) => Ok(Duration::from_secs_f64(s)),
            Some(_) => Err(Error::config(format!("{k} must be {} to {} seconds", range.start(), range.end()))),
        };
        o.refresh_margin = seconds("refreshMargin", s.refresh_margin, 0.0..=86_400.0, o.refresh_margin)?;
        o.pending_ttl = seconds("pendingTtl", s.pending_ttl, 1.0..=3600.0, o.pending_ttl)?;
        o.lock_timeout = seconds("lockTimeout", s.lock_timeout, 0.0..=600.0, o.lock_timeout)?;
        if let Some(r) = s.revoke_on_sign_out {
            o.revoke_on_sign_out = r;
        }
        o.lock_path = match s.lock_path.as_deref() {
            None => None,
            Some(p) if !p.is_empty() && !p.contains('\0') => Some(PathBuf::from(p)),
            Some(_) => return Err(Error::config("lockPath must be a file path")),
        };
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
