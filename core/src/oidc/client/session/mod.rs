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

mod coordination;
mod model;
mod refresh;
mod sign_in;
mod storage;

pub use model::{Session, SessionEvent, SessionListener, SessionOptions, SessionSettings, SessionStatus, SignOutReason};
pub use storage::{MemoryStorage, SessionStorage, StorageFuture};
use coordination::{lock_file, shared_for, Coordinated, Entry, Guard, Shared, State};
use storage::{newer_record, storage_error, unreadable, Pending, Stored};

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
    fn entry(&self, st: &State) -> Entry {
        Entry { token: st.session.as_ref().map(|s| s.access_token.clone()), renewals: self.shared.renewals.load(Ordering::SeqCst) }
    }
}
