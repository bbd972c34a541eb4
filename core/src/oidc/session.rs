//! The session manager: holds a signed-in user's tokens on a device (or a
//! backend), says whether the session is valid, refreshes before expiry and
//! persists through storage the app implements (Keychain / Keystore on a
//! phone).
//!
//! - **Single flight.** Callers that find the access token due at the same
//!   time share one refresh and its outcome, success or failure.
//! - **invalid_grant signs out.** The refresh token is dead: the session and
//!   its stored copy are cleared and the caller gets `invalid_grant`.
//! - **Anything else keeps the session.** A network failure (or a provider
//!   hiccup) leaves the tokens in place; the next call retries, and an access
//!   token that is still unexpired is handed out meanwhile.
//! - **Nothing is lost.** New tokens are kept in memory before they are
//!   saved; a failed save (or clear) is reported with code `storage` and
//!   retried on the next call.

use crate::error::{Error, ErrorCode, Result};
use crate::ids::now_secs;
use crate::oidc::client::{OidcClient, TokenSet};
use serde_json::{json, Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

/// What a storage call returns.
pub type StorageFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Where the session lives between app launches. The text is opaque JSON;
/// keep it as a secret (it holds the refresh token).
pub trait SessionStorage: Send + Sync {
    /// The stored text, or `None` when nobody is signed in.
    fn load(&self) -> StorageFuture<'_, Option<String>>;
    fn save(&self, session: String) -> StorageFuture<'_, ()>;
    fn clear(&self) -> StorageFuture<'_, ()>;
}

/// Storage in memory: the double for tests, or a backend's per-user cache.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    value: SyncMutex<Option<String>>,
}

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// What is stored now.
    pub fn get(&self) -> Option<String> {
        self.value.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl SessionStorage for MemoryStorage {
    fn load(&self) -> StorageFuture<'_, Option<String>> {
        Box::pin(async move { Ok(self.get()) })
    }
    fn save(&self, session: String) -> StorageFuture<'_, ()> {
        Box::pin(async move {
            *self.value.lock().unwrap_or_else(|p| p.into_inner()) = Some(session);
            Ok(())
        })
    }
    fn clear(&self) -> StorageFuture<'_, ()> {
        Box::pin(async move {
            *self.value.lock().unwrap_or_else(|p| p.into_inner()) = None;
            Ok(())
        })
    }
}

/// Session manager settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Refresh when the access token expires within this margin. Defaults to 60 s.
    pub refresh_margin: Duration,
    /// Revoke the refresh token at the provider on sign-out (best effort).
    /// Defaults to true.
    pub revoke_on_sign_out: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { refresh_margin: Duration::from_secs(60), revoke_on_sign_out: true }
    }
}

impl SessionOptions {
    /// Settings by name: `refreshMargin` (seconds), `revokeOnSignOut`.
    pub fn from_json(v: &Map<String, Value>) -> Result<SessionOptions> {
        let mut o = SessionOptions::default();
        for (k, x) in v {
            match (k.as_str(), x) {
                (_, Value::Null) => {}
                ("refreshMargin", Value::Number(n)) => match n.as_f64() {
                    Some(s) if (0.0..=86_400.0).contains(&s) => o.refresh_margin = Duration::from_secs_f64(s),
                    _ => return Err(Error::config("refreshMargin must be 0 to 86400 seconds")),
                },
                ("revokeOnSignOut", Value::Bool(b)) => o.revoke_on_sign_out = *b,
                ("refreshMargin" | "revokeOnSignOut", _) => return Err(Error::config(format!("{k} has the wrong type"))),
                _ => return Err(Error::config(format!("unknown session setting {k:?}"))),
            }
        }
        Ok(o)
    }
}

/// A signed-in user's tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub access_token: String,
    pub token_type: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
    /// When the access token expires (seconds since the epoch), if the provider said.
    pub expires_at: Option<u64>,
    /// The verified id_token's claims (or userinfo's for a plain OAuth provider).
    pub claims: Map<String, Value>,
}

const STORAGE_VERSION: u64 = 1;

impl Session {
    fn from_tokens(tokens: TokenSet, now: u64) -> Session {
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

    fn to_storage(&self) -> String {
        let mut v = self.to_json();
        v["v"] = STORAGE_VERSION.into();
        v.to_string()
    }

    fn from_storage(text: &str) -> Result<Session> {
        let bad = |what: &str| Error::new(ErrorCode::Storage, format!("the stored session is unreadable: {what}"));
        let doc = crate::json::parse_object(text.as_bytes()).map_err(|_| bad("not a JSON object"))?;
        if doc.get("v").and_then(Value::as_u64) != Some(STORAGE_VERSION) {
            return Err(bad("unknown version"));
        }
        let text = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Session {
            access_token: text("access_token").filter(|s| !s.is_empty()).ok_or_else(|| bad("no access_token"))?,
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

#[derive(Default)]
struct State {
    loaded: bool,
    session: Option<Session>,
    /// The stored copy lags behind `session` (a save or clear failed).
    dirty: bool,
    /// The outcome of the last refresh attempt, shared with its waiters.
    last_refresh: Option<Result<(), Error>>,
}

/// Holds one user's session; clone-free, share it behind an `Arc`.
pub struct SessionManager {
    client: Arc<OidcClient>,
    storage: Arc<dyn SessionStorage>,
    options: SessionOptions,
    state: tokio::sync::Mutex<State>,
    /// Counts refresh attempts, read before waiting for the lock, so a
    /// caller can tell that a refresh ran while it waited.
    attempts: AtomicU64,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager").field("client", &self.client).finish_non_exhaustive()
    }
}

fn signed_out() -> Error {
    Error::new(ErrorCode::LoginRequired, "nobody is signed in")
}

fn storage_error(what: &str, e: Error) -> Error {
    match e.code {
        ErrorCode::Storage => e,
        _ => Error::new(ErrorCode::Storage, format!("{what}: {}", e.message)),
    }
}

impl SessionManager {
    pub fn new(client: Arc<OidcClient>, storage: Arc<dyn SessionStorage>, options: SessionOptions) -> SessionManager {
        SessionManager { client, storage, options, state: tokio::sync::Mutex::new(State::default()), attempts: AtomicU64::new(0) }
    }

    pub fn client(&self) -> &Arc<OidcClient> {
        &self.client
    }

    /// Loads from storage once; saves or clears what a failed call left behind.
    async fn ready(&self, st: &mut State) -> Result<()> {
        if !st.loaded {
            let text = self.storage.load().await.map_err(|e| storage_error("the session could not be loaded", e))?;
            st.session = text.as_deref().map(Session::from_storage).transpose()?;
            st.loaded = true;
        }
        if st.dirty {
            self.persist(st).await?;
        }
        Ok(())
    }

    async fn persist(&self, st: &mut State) -> Result<()> {
        st.dirty = true;
        match &st.session {
            Some(s) => self.storage.save(s.to_storage()).await.map_err(|e| storage_error("the session could not be saved", e))?,
            None => self.storage.clear().await.map_err(|e| storage_error("the stored session could not be cleared", e))?,
        }
        st.dirty = false;
        Ok(())
    }

    /// Starts a session from a token response (e.g. `handle_callback`'s).
    /// The id_token is verified against the provider's JWKS when it has one.
    pub async fn sign_in(&self, tokens: TokenSet) -> Result<Session> {
        if tokens.access_token.is_empty() {
            return Err(Error::invalid_token("a session needs an access token (the implicit id_token grant gives none)"));
        }
        let mut tokens = tokens;
        if let Some(id) = &tokens.id_token {
            if self.client.endpoints().jwks_uri.is_some() {
                let claims = self.client.verify_id_token_signature(id).await?;
                let mut merged = tokens.claims.take().unwrap_or_default();
                merged.extend(claims);
                tokens.claims = Some(merged);
            }
        }
        let session = Session::from_tokens(tokens, now_secs());
        let mut st = self.state.lock().await;
        st.loaded = true;
        st.session = Some(session.clone());
        st.last_refresh = None;
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.persist(&mut st).await?;
        Ok(session)
    }

    /// Checks the callback, exchanges the code and signs in.
    pub async fn complete(&self, callback: &str, request: &crate::oidc::client::AuthorizationRequest) -> Result<Session> {
        let tokens = self.client.handle_callback(callback, request).await?;
        self.sign_in(tokens).await
    }

    /// The current session, loaded from storage on first use.
    pub async fn session(&self) -> Result<Option<Session>> {
        let mut st = self.state.lock().await;
        self.ready(&mut st).await?;
        Ok(st.session.clone())
    }

    /// Where the session stands. The id_token's signature, issuer and
    /// audience are checked against the provider's JWKS (cached), on device.
    pub async fn status(&self) -> Result<SessionStatus> {
        let Some(session) = self.session().await? else { return Ok(SessionStatus::SignedOut) };
        if let (Some(id), true) = (&session.id_token, self.client.endpoints().jwks_uri.is_some()) {
            match self.client.verify_id_token_signature(id).await {
                Ok(claims) if claims.get("sub") == session.claims.get("sub") => {}
                Ok(_) => return Ok(SessionStatus::Invalid),
                Err(e) if e.code == ErrorCode::Network => return Err(e),
                Err(_) => return Ok(SessionStatus::Invalid),
            }
        }
        Ok(match (session.expired_at(now_secs()), &session.refresh_token) {
            (false, _) => SessionStatus::Valid,
            (true, Some(_)) => SessionStatus::Expired,
            (true, None) => SessionStatus::Invalid,
        })
    }

    /// Whether the session is [`SessionStatus::Valid`].
    pub async fn is_valid(&self) -> Result<bool> {
        Ok(self.status().await? == SessionStatus::Valid)
    }

    /// An access token good for at least the refresh margin when the
    /// provider allows: refreshed first when due (single flight).
    pub async fn access_token(&self) -> Result<String> {
        let seen = self.attempts.load(Ordering::SeqCst);
        let mut st = self.state.lock().await;
        self.ready(&mut st).await?;
        let now = now_secs();
        let margin = self.options.refresh_margin.as_secs();
        let (token, due, expired, refreshable) = match &st.session {
            None => return Err(signed_out()),
            Some(s) => (
                s.access_token.clone(),
                s.expires_at.is_some_and(|e| now.saturating_add(margin) >= e),
                s.expired_at(now),
                s.refresh_token.is_some(),
            ),
        };
        if !due {
            return Ok(token);
        }
        if !refreshable {
            return if expired {
                Err(Error::new(ErrorCode::LoginRequired, "the session expired and has no refresh token: sign in again"))
            } else {
                Ok(token)
            };
        }
        let outcome = self.refresh_once(&mut st, seen).await;
        match (outcome, &st.session) {
            (Ok(()), Some(s)) => Ok(s.access_token.clone()),
            (Ok(()), None) => Err(signed_out()),
            // Still unexpired: hand it out and retry the refresh next time.
            (Err(e), Some(s)) if e.code != ErrorCode::Storage && !s.expired_at(now_secs()) => Ok(s.access_token.clone()),
            (Err(e), _) => Err(e),
        }
    }

    /// Refreshes now (single flight: callers waiting meanwhile share the
    /// outcome). `invalid_grant` signs out; other failures keep the session.
    pub async fn refresh(&self) -> Result<Session> {
        let seen = self.attempts.load(Ordering::SeqCst);
        let mut st = self.state.lock().await;
        self.ready(&mut st).await?;
        self.refresh_once(&mut st, seen).await?;
        st.session.clone().ok_or_else(signed_out)
    }

    /// Single flight: when a refresh ended while this caller waited for the
    /// lock (the attempt count moved past `seen`), its outcome is shared;
    /// otherwise this caller refreshes.
    async fn refresh_once(&self, st: &mut State, seen: u64) -> Result<()> {
        match &st.last_refresh {
            Some(outcome) if self.attempts.load(Ordering::SeqCst) != seen => outcome.clone(),
            _ => self.refresh_locked(st).await,
        }
    }

    async fn refresh_locked(&self, st: &mut State) -> Result<()> {
        let Some(current) = st.session.clone() else { return Err(signed_out()) };
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(Error::new(ErrorCode::LoginRequired, "the session has no refresh token: sign in again"));
        };
        let outcome = match self.client.refresh(&refresh_token, None).await {
            Ok(tokens) => self.renewed(st, current, tokens).await,
            Err(e) if e.code == ErrorCode::InvalidGrant => {
                st.session = None;
                // The error the caller sees is invalid_grant even when the clear fails.
                let _ = self.persist(st).await;
                Err(Error::new(ErrorCode::InvalidGrant, format!("signed out: the provider refused the refresh token ({})", e.message)))
            }
            Err(e) => Err(e),
        };
        st.last_refresh = Some(outcome.clone());
        // Counted when it ends, under the lock: whoever called before this
        // point and is waiting shares this outcome.
        self.attempts.fetch_add(1, Ordering::SeqCst);
        outcome
    }

    async fn renewed(&self, st: &mut State, current: Session, tokens: TokenSet) -> Result<()> {
        let mut next = Session::from_tokens(tokens, now_secs());
        // OIDC Core §12.2: a refreshed id_token is for the same user.
        if next.id_token.is_some() && !next.claims.is_empty() && next.subject() != current.subject() {
            return Err(Error::invalid_token("the refreshed id_token is for another user"));
        }
        if next.refresh_token.is_none() {
            next.refresh_token = current.refresh_token;
        }
        if next.id_token.is_none() || next.claims.is_empty() {
            next.id_token = next.id_token.or(current.id_token);
            next.claims = current.claims;
        }
        if next.scope.is_none() {
            next.scope = current.scope;
        }
        st.session = Some(next);
        self.persist(st).await
    }

    /// Signs out: revokes the refresh token at the provider (best effort,
    /// when it has a revocation endpoint) and clears the stored session.
    pub async fn sign_out(&self) -> Result<()> {
        let mut st = self.state.lock().await;
        if !st.loaded {
            // Whatever is stored goes; an unreadable copy is no reason to keep it.
            st.session = self.storage.load().await.ok().flatten().and_then(|t| Session::from_storage(&t).ok());
            st.loaded = true;
        }
        let revoke = st.session.as_ref().map(|s| match &s.refresh_token {
            Some(t) => (t.clone(), "refresh_token"),
            None => (s.access_token.clone(), "access_token"),
        });
        st.session = None;
        st.last_refresh = None;
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let cleared = self.persist(&mut st).await;
        drop(st);
        if let (true, Some((token, hint)), true) = (self.options.revoke_on_sign_out, revoke, self.client.endpoints().revocation.is_some()) {
            let _ = self.client.revoke(&token, Some(hint)).await;
        }
        cleared
    }
}
