//! The session manager: holds a signed-in user's tokens on a device (or a
//! backend), says whether the session is valid, refreshes before expiry and
//! persists through storage the app implements (Keychain / Keystore on a
//! phone).
//!
//! - **Sign-in survives process death.** [`SessionManager::begin`] keeps the
//!   pending request (state, nonce, PKCE verifier, redirect URI, expiry) in
//!   the storage, so [`SessionManager::complete`] works in a process that
//!   did not start it. A pending request is single-use and expires.
//! - **One refresh at a time for one session.** Every manager of the same
//!   client (issuer and client id) in a process shares one lock, and
//!   `lockPath` adds an advisory file lock across processes. Under the lock
//!   the storage is read again first: a session another instance already
//!   renewed is adopted instead of spending the same refresh token twice.
//!   Managers of one client in a process also see each other's sign-in and
//!   sign-out at their next call (another process's, at its next refresh).
//! - **Single flight.** Callers of one manager that find the access token
//!   due at the same time share one refresh and its outcome.
//! - **invalid_grant signs out**, after one more look at the storage (another
//!   process may have renewed meanwhile): the session and its stored copy
//!   are cleared and the caller gets `invalid_grant`.
//! - **Anything else keeps the session.** A network failure, a provider
//!   hiccup or a storage that cannot be read (a keychain before first
//!   unlock) leaves the tokens in place; the next call retries.
//! - **Nothing is lost.** New tokens are kept in memory before they are
//!   saved; a failed save (or clear) is reported with code `storage` and
//!   retried on the next call. A stored session in a newer format than this
//!   version reads is refused with `storage` and never overwritten.
//! - **A listener hears** `refreshed`, `signedOut` (with the reason) and
//!   `storageFailed`.

use crate::error::{Error, ErrorCode, Result};
use crate::ids::now_secs;
use crate::oidc::client::{OidcClient, TokenSet};
use serde_json::{json, Map, Value};
use crate::oidc::client::{AuthorizationParams, AuthorizationRequest, ResponseType};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as SyncMutex, OnceLock, Weak};
use std::time::{Duration, Instant};

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

/// The stored record's format: 2 is `{"v":2,"session":{...},"pending":{...}}`;
/// 1 (read, never written) was the session's fields at the top level.
const STORAGE_VERSION: u64 = 2;

/// A sign-in started by `begin`, waiting for its callback.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    state: String,
    nonce: String,
    code_verifier: Option<String>,
    redirect_uri: String,
    expires_at: u64,
}

impl Pending {
    fn to_json(&self) -> Value {
        json!({"state": self.state, "nonce": self.nonce, "code_verifier": self.code_verifier,
            "redirect_uri": self.redirect_uri, "expires_at": self.expires_at})
    }

    fn from_json(v: &Map<String, Value>) -> Option<Pending> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Pending {
            state: text("state").filter(|s| !s.is_empty())?,
            nonce: text("nonce")?,
            code_verifier: text("code_verifier"),
            redirect_uri: text("redirect_uri")?,
            expires_at: v.get("expires_at").and_then(Value::as_u64)?,
        })
    }

    fn request(&self) -> AuthorizationRequest {
        AuthorizationRequest {
            url: String::new(),
            state: self.state.clone(),
            nonce: self.nonce.clone(),
            code_verifier: self.code_verifier.clone(),
            redirect_uri: self.redirect_uri.clone(),
        }
    }
}

/// What the storage holds.
#[derive(Debug, Default)]
struct Stored {
    session: Option<Session>,
    pending: Option<Pending>,
}

fn unreadable(what: &str) -> Error {
    Error::new(ErrorCode::Storage, format!("the stored session is unreadable: {what}"))
}

/// A record this version does not know how to read (written by a newer
/// one): refused and never overwritten.
fn newer_format(doc: &Map<String, Value>) -> Option<Error> {
    let v = doc.get("v").and_then(Value::as_u64).filter(|v| *v > STORAGE_VERSION)?;
    Some(Error::new(
        ErrorCode::Storage,
        format!("the stored session is in format {v}, written by a newer version of idflow; it is left as it is"),
    ))
}

/// The refusal of `text` when a newer version of idflow wrote it.
fn newer_record(text: &str) -> Option<Error> {
    crate::json::parse_object(text.as_bytes()).ok().as_ref().and_then(newer_format)
}

impl Stored {
    fn parse(text: &str) -> Result<Stored> {
        let doc = crate::json::parse_object(text.as_bytes()).map_err(|_| unreadable("not a JSON object"))?;
        if let Some(e) = newer_format(&doc) {
            return Err(e);
        }
        match doc.get("v").and_then(Value::as_u64) {
            Some(1) => Ok(Stored { session: Some(Session::from_fields(&doc)?), pending: None }),
            Some(2) => Ok(Stored {
                session: doc.get("session").and_then(Value::as_object).map(Session::from_fields).transpose()?,
                pending: match doc.get("pending").and_then(Value::as_object) {
                    Some(p) => Some(Pending::from_json(p).ok_or_else(|| unreadable("a bad pending sign-in"))?),
                    None => None,
                },
            }),
            _ => Err(unreadable("unknown version")),
        }
    }

    /// The text to save, or `None` when there is nothing to keep.
    fn to_text(session: Option<&Session>, pending: Option<&Pending>) -> Option<String> {
        if session.is_none() && pending.is_none() {
            return None;
        }
        let mut v = json!({"v": STORAGE_VERSION});
        if let Some(s) = session {
            v["session"] = s.to_json();
        }
        if let Some(p) = pending {
            v["pending"] = p.to_json();
        }
        Some(v.to_string())
    }
}

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

    fn from_fields(doc: &Map<String, Value>) -> Result<Session> {
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

/// What a refreshing call knew when it began, to tell under the lock
/// whether another instance renewed the session meanwhile.
struct Entry {
    /// The access token this manager held (before reading the storage again).
    token: Option<String>,
    /// The client's [`Shared::renewals`].
    renewals: u64,
}

#[derive(Default)]
struct State {
    loaded: bool,
    session: Option<Session>,
    pending: Option<Pending>,
    /// The stored copy lags behind `session` (a save or clear failed).
    dirty: bool,
    /// The outcome of the last refresh attempt, shared with its waiters.
    last_refresh: Option<Result<(), Error>>,
    /// Events to hand the listener once the lock is released.
    events: Vec<SessionEvent>,
    /// The client's [`Shared::generation`] this copy was read or written at.
    generation: u64,
}

/// What every manager of one client (issuer or endpoint, client id) in a
/// process shares.
#[derive(Default)]
struct Shared {
    /// Held while a manager reads, changes and writes the stored session.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Moves on after every save or clear by any of them: a manager whose
    /// copy is older reads the storage again before answering, so a
    /// sign-in or sign-out by another manager is seen at once.
    generation: AtomicU64,
    /// Moves on after every renewal saved by any of them.
    renewals: AtomicU64,
}

fn shared_for(key: (String, String)) -> Arc<Shared> {
    type Registry = SyncMutex<HashMap<(String, String), Weak<Shared>>>;
    static CLIENTS: OnceLock<Registry> = OnceLock::new();
    let mut clients = CLIENTS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(shared) = clients.get(&key).and_then(Weak::upgrade) {
        return shared;
    }
    clients.retain(|_, w| w.strong_count() > 0);
    let shared = Arc::new(Shared::default());
    clients.insert(key, Arc::downgrade(&shared));
    shared
}

/// Held while a manager reads, changes and writes the stored session.
struct Coordinated {
    _local: tokio::sync::OwnedMutexGuard<()>,
    /// Closing the file releases its advisory lock.
    _file: Option<std::fs::File>,
}

/// Takes the advisory lock on `path`, polling until `timeout`.
async fn lock_file(path: &std::path::Path, timeout: Duration) -> Result<std::fs::File> {
    let fail = |what: String| Error::new(ErrorCode::Storage, what);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| fail(format!("the session lock file {} could not be opened: {e}", path.display())))?;
    let deadline = Instant::now() + timeout;
    loop {
        match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
            Ok(true) => return Ok(file),
            Ok(false) => {}
            Err(e) => return Err(fail(format!("the session lock file {} could not be locked: {e}", path.display()))),
        }
        if Instant::now() >= deadline {
            return Err(fail(format!("another process held the session lock {} for more than {} s", path.display(), timeout.as_secs())));
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
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
    /// Shared with every other manager of this client in the process.
    shared: Arc<Shared>,
    listener: SyncMutex<Option<Arc<dyn SessionListener>>>,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager").field("client", &self.client).finish_non_exhaustive()
    }
}

fn signed_out() -> Error {
    Error::new(ErrorCode::LoginRequired, "nobody is signed in")
}

fn signed_out_elsewhere() -> SessionEvent {
    SessionEvent::SignedOut { reason: SignOutReason::Elsewhere, message: "another instance over the same storage signed out".into() }
}

fn storage_error(what: &str, e: Error) -> Error {
    match e.code {
        ErrorCode::Storage => e,
        _ => Error::new(ErrorCode::Storage, format!("{what}: {}", e.message)),
    }
}

type Guard<'a> = tokio::sync::MutexGuard<'a, State>;

impl SessionManager {
    pub fn new(client: Arc<OidcClient>, storage: Arc<dyn SessionStorage>, options: SessionOptions) -> SessionManager {
        let endpoints = client.endpoints();
        let key = (endpoints.issuer.unwrap_or(endpoints.token), client.options().client_id.clone());
        SessionManager {
            client,
            storage,
            options,
            state: tokio::sync::Mutex::new(State::default()),
            attempts: AtomicU64::new(0),
            shared: shared_for(key),
            listener: SyncMutex::new(None),
        }
    }

    pub fn client(&self) -> &Arc<OidcClient> {
        &self.client
    }

    /// Sets (or, with `None`, removes) the listener.
    pub fn set_listener(&self, listener: Option<Arc<dyn SessionListener>>) {
        *self.listener.lock().unwrap_or_else(|p| p.into_inner()) = listener;
    }

    /// Releases the state lock, then hands its events to the listener.
    fn finish<T>(&self, mut st: Guard<'_>, outcome: Result<T>) -> Result<T> {
        let events = std::mem::take(&mut st.events);
        drop(st);
        if !events.is_empty() {
            let listener = self.listener.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(l) = listener {
                for e in &events {
                    l.on_event(e);
                }
            }
        }
        outcome
    }

    /// The client's lock in this process, then `lockPath`'s across processes.
    async fn coordinate(&self) -> Result<Coordinated> {
        let local = self.shared.lock.clone().lock_owned().await;
        let file = match &self.options.lock_path {
            Some(p) => Some(lock_file(p, self.options.lock_timeout).await?),
            None => None,
        };
        Ok(Coordinated { _local: local, _file: file })
    }

    /// Reads the stored record into `st` (a failure is also an event).
    async fn load(&self, st: &mut State) -> Result<()> {
        let (generation, text) = self.read(st).await?;
        self.apply(st, text.as_deref(), generation)
    }

    /// The stored text, and the client's generation from before it was read
    /// (a save that lands meanwhile moves it on again).
    async fn read(&self, st: &mut State) -> Result<(u64, Option<String>)> {
        let generation = self.shared.generation.load(Ordering::SeqCst);
        match self.storage.load().await {
            Ok(text) => Ok((generation, text)),
            Err(e) => Err(self.storage_failed(st, storage_error("the session could not be loaded", e))),
        }
    }

    /// Makes the stored `text` this manager's copy.
    fn apply(&self, st: &mut State, text: Option<&str>, generation: u64) -> Result<()> {
        let stored = match text.map(Stored::parse).transpose() {
            Ok(s) => s.unwrap_or_default(),
            Err(e) => return Err(self.storage_failed(st, e)),
        };
        st.session = stored.session;
        st.pending = stored.pending;
        st.loaded = true;
        st.generation = generation;
        Ok(())
    }

    fn storage_failed(&self, st: &mut State, e: Error) -> Error {
        st.events.push(SessionEvent::StorageFailed(e.clone()));
        e
    }

    /// Loads from storage the first time and whenever another manager of
    /// this client saved since; saves or clears what a failed call left
    /// behind.
    async fn ready(&self, st: &mut State) -> Result<()> {
        let stale = st.generation != self.shared.generation.load(Ordering::SeqCst);
        if !st.loaded || (stale && !st.dirty) {
            let had = st.loaded && st.session.is_some();
            self.load(st).await?;
            if had && st.session.is_none() {
                st.events.push(signed_out_elsewhere());
            }
        }
        if st.dirty {
            self.persist(st).await?;
        }
        Ok(())
    }

    /// Under the coordination lock: what another instance stored wins,
    /// unless this manager holds changes the storage has not seen yet.
    async fn reload(&self, st: &mut State) -> Result<()> {
        if st.dirty {
            self.persist(st).await
        } else {
            self.load(st).await
        }
    }

    async fn persist(&self, st: &mut State) -> Result<()> {
        st.dirty = true;
        let outcome = match Stored::to_text(st.session.as_ref(), st.pending.as_ref()) {
            Some(text) => self.storage.save(text).await.map_err(|e| storage_error("the session could not be saved", e)),
            None => self.storage.clear().await.map_err(|e| storage_error("the stored session could not be cleared", e)),
        };
        match outcome {
            Ok(()) => {
                st.dirty = false;
                st.generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(())
            }
            Err(e) => Err(self.storage_failed(st, e)),
        }
    }

    /// Starts a sign-in: builds the authorization URL (code flow with PKCE)
    /// and keeps the pending request in the storage, so
    /// [`SessionManager::complete`] can finish it in another process.
    /// A newer `begin` replaces an older pending request.
    pub async fn begin(&self, params: &AuthorizationParams) -> Result<String> {
        if params.response_type != ResponseType::Code {
            return Err(Error::config("begin starts the code flow; the implicit id_token grant gives no session"));
        }
        let request = self.client.authorization_request(params)?;
        let ttl = self.options.pending_ttl.as_secs().max(1);
        let pending = Pending {
            state: request.state,
            nonce: request.nonce,
            code_verifier: request.code_verifier,
            redirect_uri: request.redirect_uri,
            expires_at: now_secs().saturating_add(ttl),
        };
        let mut st = self.state.lock().await;
        let outcome = async {
            let _lock = self.coordinate().await?;
            self.reload(&mut st).await?;
            st.pending = Some(pending);
            self.persist(&mut st).await
        }
        .await;
        self.finish(st, outcome.map(|()| request.url))
    }

    /// Checks the callback, exchanges the code and signs in. With
    /// `request`, the caller kept it; without, the pending request `begin`
    /// stored answers the callback (once, before it expires). A callback
    /// for another state is refused with `invalid_request` and changes nothing.
    pub async fn complete(&self, callback: &str, request: Option<&AuthorizationRequest>) -> Result<Session> {
        if let Some(request) = request {
            let tokens = self.client.handle_callback(callback, request).await?;
            return self.sign_in(tokens).await;
        }
        let mut st = self.state.lock().await;
        let outcome = async {
            let lock = self.coordinate().await?;
            self.reload(&mut st).await?;
            let Some(pending) = st.pending.clone() else {
                return Err(Error::invalid_request("no sign-in is pending: call begin first (a callback completes once)"));
            };
            // Not this sign-in's callback (another state, a repeated
            // parameter, another issuer's iss): refused, nothing changes.
            self.client
                .callback_params(callback, &pending.state)
                .map_err(|e| Error::new(e.code, format!("the callback is not for the pending sign-in: {}", e.message)))?;
            // Single use: spent before the code is exchanged.
            st.pending = None;
            self.persist(&mut st).await?;
            if now_secs() >= pending.expires_at {
                return Err(Error::invalid_request("the pending sign-in expired: call begin again"));
            }
            drop(lock);
            let tokens = self.client.handle_callback(callback, &pending.request()).await?;
            let tokens = self.verified(tokens).await?;
            let _lock = self.coordinate().await?;
            self.reload(&mut st).await?;
            self.start(&mut st, tokens).await
        }
        .await;
        self.finish(st, outcome)
    }

    /// The id_token's signature checked against the provider's JWKS, and
    /// its claims merged into the token set's.
    async fn verified(&self, mut tokens: TokenSet) -> Result<TokenSet> {
        if tokens.access_token.is_empty() {
            return Err(Error::invalid_token("a session needs an access token (the implicit id_token grant gives none)"));
        }
        if let Some(id) = &tokens.id_token {
            if self.client.endpoints().jwks_uri.is_some() {
                let claims = self.client.verify_id_token_signature(id).await?;
                let mut merged = tokens.claims.take().unwrap_or_default();
                merged.extend(claims);
                tokens.claims = Some(merged);
            }
        }
        Ok(tokens)
    }

    /// Makes `tokens` the session and saves it.
    async fn start(&self, st: &mut State, tokens: TokenSet) -> Result<Session> {
        let session = Session::from_tokens(tokens, now_secs());
        st.loaded = true;
        st.session = Some(session.clone());
        st.last_refresh = None;
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.persist(st).await?;
        Ok(session)
    }

    /// Starts a session from a token response (e.g. `handle_callback`'s).
    /// The id_token is verified against the provider's JWKS when it has one.
    pub async fn sign_in(&self, tokens: TokenSet) -> Result<Session> {
        let tokens = self.verified(tokens).await?;
        let mut st = self.state.lock().await;
        let outcome = async {
            let _lock = self.coordinate().await?;
            // A pending sign-in another instance stored is kept; a load
            // that fails does not stop the sign-in, unless what is stored
            // was written by a newer idflow (never overwritten).
            if !st.dirty {
                if let Ok((generation, text)) = self.read(&mut st).await {
                    if let Err(e) = self.apply(&mut st, text.as_deref(), generation) {
                        if text.as_deref().and_then(newer_record).is_some() {
                            return Err(e);
                        }
                    }
                }
            }
            self.start(&mut st, tokens).await
        }
        .await;
        self.finish(st, outcome)
    }

    /// The current session, loaded from storage on first use.
    pub async fn session(&self) -> Result<Option<Session>> {
        let mut st = self.state.lock().await;
        let outcome = self.ready(&mut st).await.map(|()| st.session.clone());
        self.finish(st, outcome)
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

    fn due(&self, s: &Session) -> bool {
        s.expires_at.is_some_and(|e| now_secs().saturating_add(self.options.refresh_margin.as_secs()) >= e)
    }

    /// An access token good for at least the refresh margin when the
    /// provider allows: refreshed first when due (single flight).
    pub async fn access_token(&self) -> Result<String> {
        let seen = self.attempts.load(Ordering::SeqCst);
        let mut st = self.state.lock().await;
        let outcome = self.access_token_locked(&mut st, seen).await;
        self.finish(st, outcome)
    }

    fn entry(&self, st: &State) -> Entry {
        Entry { token: st.session.as_ref().map(|s| s.access_token.clone()), renewals: self.shared.renewals.load(Ordering::SeqCst) }
    }

    async fn access_token_locked(&self, st: &mut State, seen: u64) -> Result<String> {
        let entry = self.entry(st);
        self.ready(st).await?;
        let (token, due, expired, refreshable) = match &st.session {
            None => return Err(signed_out()),
            Some(s) => (s.access_token.clone(), self.due(s), s.expired_at(now_secs()), s.refresh_token.is_some()),
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
        let outcome = self.refresh_once(st, seen, false, entry).await;
        match (outcome, &st.session) {
            (Ok(()), Some(s)) => Ok(s.access_token.clone()),
            (Ok(()), None) => Err(signed_out()),
            // Still unexpired: hand it out and retry the refresh next time.
            (Err(e), Some(s)) if e.code != ErrorCode::Storage && !s.expired_at(now_secs()) => Ok(s.access_token.clone()),
            (Err(e), _) => Err(e),
        }
    }

    /// Refreshes now (single flight: callers waiting meanwhile share the
    /// outcome; a session another instance renewed meanwhile is adopted).
    /// `invalid_grant` signs out; other failures keep the session.
    pub async fn refresh(&self) -> Result<Session> {
        let seen = self.attempts.load(Ordering::SeqCst);
        let mut st = self.state.lock().await;
        let outcome = async {
            let entry = self.entry(&st);
            self.ready(&mut st).await?;
            self.refresh_once(&mut st, seen, true, entry).await?;
            st.session.clone().ok_or_else(signed_out)
        }
        .await;
        self.finish(st, outcome)
    }

    /// Single flight: when a refresh ended while this caller waited for the
    /// lock (the attempt count moved past `seen`), its outcome is shared;
    /// otherwise this caller refreshes.
    async fn refresh_once(&self, st: &mut State, seen: u64, forced: bool, entry: Entry) -> Result<()> {
        if let Some(outcome) = st.last_refresh.as_ref().filter(|_| self.attempts.load(Ordering::SeqCst) != seen) {
            return outcome.clone();
        }
        let outcome = self.refresh_coordinated(st, forced, entry).await;
        st.last_refresh = Some(outcome.clone());
        // Counted when it ends, under the lock: whoever called before this
        // point and is waiting shares this outcome.
        self.attempts.fetch_add(1, Ordering::SeqCst);
        outcome
    }

    /// Under the client's lock: reads the storage again and adopts what
    /// another instance renewed (a forced refresh is then done; an
    /// unforced one only refreshes when the adopted token is due too).
    async fn refresh_coordinated(&self, st: &mut State, forced: bool, entry: Entry) -> Result<()> {
        let _lock = self.coordinate().await?;
        let had = st.session.is_some();
        self.reload(st).await?;
        let renewed_here = self.shared.renewals.load(Ordering::SeqCst) != entry.renewals;
        match (&entry.token, &st.session) {
            (_, None) => {
                if had {
                    st.events.push(signed_out_elsewhere());
                }
                return Err(signed_out());
            }
            // Renewed by another instance since this call began: what is
            // stored differs from what this manager held, or (a manager
            // that held nothing yet) another manager of this client in the
            // process renewed meanwhile. Adopted.
            (held, Some(s)) if held.as_ref().map_or(renewed_here, |b| *b != s.access_token) => {
                st.events.push(SessionEvent::Refreshed(s.clone()));
                if forced || !self.due(s) {
                    return Ok(());
                }
            }
            _ => {}
        }
        self.refresh_with_provider(st).await
    }

    async fn refresh_with_provider(&self, st: &mut State) -> Result<()> {
        let Some(current) = st.session.clone() else { return Err(signed_out()) };
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(Error::new(ErrorCode::LoginRequired, "the session has no refresh token: sign in again"));
        };
        match self.client.refresh(&refresh_token, None).await {
            Ok(tokens) => {
                self.renewed(st, current, tokens)?;
                if let Some(s) = &st.session {
                    st.events.push(SessionEvent::Refreshed(s.clone()));
                }
                self.persist(st).await?;
                // Counted once stored: a renewal the storage lacks is none to adopt.
                self.shared.renewals.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(e) if e.code == ErrorCode::InvalidGrant => {
                // One more look: a process that does not share the lock may
                // have renewed the session with this very token.
                if self.reload(st).await.is_ok() {
                    if let Some(s) = st.session.as_ref().filter(|s| s.access_token != current.access_token) {
                        st.events.push(SessionEvent::Refreshed(s.clone()));
                        return Ok(());
                    }
                }
                let message = format!("signed out: the provider refused the refresh token ({})", e.message);
                st.session = None;
                // The error the caller sees is invalid_grant even when the clear fails.
                let _ = self.persist(st).await;
                st.events.push(SessionEvent::SignedOut { reason: SignOutReason::RefreshRefused, message: message.clone() });
                Err(Error::new(ErrorCode::InvalidGrant, message))
            }
            Err(e) => Err(e),
        }
    }

    fn renewed(&self, st: &mut State, current: Session, tokens: TokenSet) -> Result<()> {
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
        Ok(())
    }

    /// Signs out: revokes the refresh token at the provider (best effort,
    /// when it has a revocation endpoint) and clears the stored session and
    /// any pending sign-in. A stored session in a newer format is refused
    /// with `storage` and left as it is.
    pub async fn sign_out(&self) -> Result<()> {
        let mut st = self.state.lock().await;
        let outcome = self.sign_out_locked(&mut st).await;
        let (revoke, cleared) = match outcome {
            Ok(r) => r,
            Err(e) => return self.finish(st, Err(e)),
        };
        let cleared = self.finish(st, cleared);
        if let (true, Some((token, hint)), true) = (self.options.revoke_on_sign_out, revoke, self.client.endpoints().revocation.is_some()) {
            let _ = self.client.revoke(&token, Some(hint)).await;
        }
        cleared
    }

    #[allow(clippy::type_complexity)]
    async fn sign_out_locked(&self, st: &mut State) -> Result<(Option<(String, &'static str)>, Result<()>)> {
        // Sign-out goes on without the lock when it cannot be had.
        let _lock = self.coordinate().await.ok();
        if !st.dirty {
            match self.storage.load().await {
                Ok(Some(text)) => {
                    if let Some(e) = newer_record(&text) {
                        return Err(self.storage_failed(st, e));
                    }
                    // Whatever is stored goes; an unreadable copy is no reason to keep it.
                    st.session = Stored::parse(&text).ok().and_then(|s| s.session);
                }
                Ok(None) => st.session = None,
                // Keep what memory has; the clear below says whether storage works.
                Err(_) => {}
            }
            st.loaded = true;
        }
        let revoke = st.session.as_ref().map(|s| match &s.refresh_token {
            Some(t) => (t.clone(), "refresh_token"),
            None => (s.access_token.clone(), "access_token"),
        });
        let had = st.session.is_some();
        st.session = None;
        st.pending = None;
        st.last_refresh = None;
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let cleared = self.persist(st).await;
        if had {
            st.events.push(SessionEvent::SignedOut { reason: SignOutReason::User, message: "signed out".into() });
        }
        Ok((revoke, cleared))
    }
}
