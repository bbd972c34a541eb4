//! The session manager for Swift and Kotlin apps. The app implements
//! `SessionStorage` over the Keychain (iOS) or the Keystore (Android) and,
//! if it wants, a `SessionListener`; every rule (the pending sign-in kept
//! in storage, one refresh at a time across managers and processes,
//! sign-out on invalid_grant, retries) is the core's.

use crate::oidc::{AuthorizationRequest, OidcClient, TokenResponse};
use crate::IdflowError;
use idflow::oidc::client::AuthorizationParams;
use idflow::oidc::client::session::{self, SessionOptions, SessionSettings, StorageFuture};
use std::sync::Arc;

/// Keeps the session text between launches. Treat it as a secret: it holds
/// the refresh token. Calls come from a background thread.
#[uniffi::export(with_foreign)]
pub trait SessionStorage: Send + Sync {
    /// The stored text, or null when nobody is signed in.
    fn load(&self) -> Result<Option<String>, IdflowError>;
    fn save(&self, session: String) -> Result<(), IdflowError>;
    fn clear(&self) -> Result<(), IdflowError>;
}

/// Runs a blocking foreign storage call off the async workers.
async fn call<T: Send + 'static>(f: impl FnOnce() -> Result<T, IdflowError> + Send + 'static) -> idflow::Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(idflow::Error::from),
        Err(_) => Err(idflow::Error::new(idflow::ErrorCode::Storage, "the storage callback panicked")),
    }
}

struct Foreign(Arc<dyn SessionStorage>);

impl session::SessionStorage for Foreign {
    fn load(&self) -> StorageFuture<'_, Option<String>> {
        let s = self.0.clone();
        Box::pin(call(move || s.load()))
    }
    fn save(&self, text: String) -> StorageFuture<'_, ()> {
        let s = self.0.clone();
        Box::pin(call(move || s.save(text)))
    }
    fn clear(&self) -> StorageFuture<'_, ()> {
        let s = self.0.clone();
        Box::pin(call(move || s.clear()))
    }
}

pub use session::{Session, SessionStatus, SignOutReason};

/// What a `SessionListener` hears.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum SessionEvent {
    /// New tokens: this manager refreshed, or it adopted the tokens another
    /// instance over the same storage renewed.
    Refreshed { session: Session },
    /// The session ended.
    SignedOut { reason: SignOutReason, message: String },
    /// The storage failed (load, save or clear); the session is kept.
    /// `code` is the error code (`storage`), `message` says what failed.
    StorageFailed { code: String, message: String },
}

impl From<&session::SessionEvent> for SessionEvent {
    fn from(e: &session::SessionEvent) -> Self {
        match e {
            session::SessionEvent::Refreshed(s) => SessionEvent::Refreshed { session: s.clone() },
            session::SessionEvent::SignedOut { reason, message } => SessionEvent::SignedOut { reason: *reason, message: message.clone() },
            session::SessionEvent::StorageFailed(e) => SessionEvent::StorageFailed { code: e.code.as_str().into(), message: e.message.clone() },
        }
    }
}

/// Hears session events, on the thread of the call that caused them
/// (never while the manager is locked: calling the manager back is safe).
#[uniffi::export(with_foreign)]
pub trait SessionListener: Send + Sync {
    fn on_event(&self, event: SessionEvent);
}

struct ForeignListener(Arc<dyn SessionListener>);

impl session::SessionListener for ForeignListener {
    fn on_event(&self, event: &session::SessionEvent) {
        self.0.on_event(event.into());
    }
}

/// Holds the signed-in user's session, refreshes it and persists it.
#[derive(uniffi::Object)]
pub struct SessionManager {
    inner: Arc<session::SessionManager>,
}

#[uniffi::export(async_runtime = "tokio")]
impl SessionManager {
    /// `options`: `refreshMargin` (seconds, default 60), `revokeOnSignOut`
    /// (default true), `pendingTtl` (seconds a sign-in started by `begin` can
    /// be completed, default 600), `lockPath` (a file whose advisory lock
    /// serialises refreshes across processes sharing the storage, e.g. an
    /// app and its extension), `lockTimeout` (seconds, default 30).
    #[uniffi::constructor(default(options = None))]
    pub fn new(client: Arc<OidcClient>, storage: Arc<dyn SessionStorage>, options: Option<SessionSettings>) -> Result<Arc<SessionManager>, IdflowError> {
        crate::error::guard(|| {
            let options = SessionOptions::from_settings(&options.unwrap_or_default())?;
            let inner = session::SessionManager::new(client.core(), Arc::new(Foreign(storage)), options);
            Ok(Arc::new(SessionManager { inner: Arc::new(inner) }))
        })
    }

    /// Starts a sign-in: returns the URL to open (ASWebAuthenticationSession,
    /// Custom Tabs) and keeps the pending request (state, nonce, PKCE
    /// verifier, redirect URI, expiry) in the storage, so `complete` works
    /// in a later process. `options`: as `OidcClient.authorizationRequest`'s
    /// (code flow only).
    #[uniffi::method(default(options = None))]
    pub async fn begin(&self, options: Option<AuthorizationParams>) -> Result<String, IdflowError> {
        Ok(self.inner.begin(&options.unwrap_or_default()).await?)
    }

    /// Checks the callback the redirect delivered (`com.example.app:/cb?...`),
    /// exchanges the code and signs in. With no `request`, the pending
    /// request `begin` stored is used once; a callback with none pending,
    /// for another state or too late is refused with `InvalidRequest`.
    #[uniffi::method(default(request = None))]
    pub async fn complete(&self, callback: String, request: Option<AuthorizationRequest>) -> Result<Session, IdflowError> {
        Ok(self.inner.complete(&callback, request.as_ref()).await?)
    }

    /// Hears `Refreshed`, `SignedOut` (with the reason) and `StorageFailed`;
    /// null stops.
    pub fn set_listener(&self, listener: Option<Arc<dyn SessionListener>>) {
        self.inner.set_listener(listener.map(|l| Arc::new(ForeignListener(l)) as Arc<dyn session::SessionListener>));
    }

    /// Signs in with tokens obtained elsewhere (the id_token is verified).
    pub async fn sign_in(&self, tokens: TokenResponse) -> Result<Session, IdflowError> {
        Ok(self.inner.sign_in(tokens).await?)
    }

    /// The session, or null when signed out.
    pub async fn session(&self) -> Result<Option<Session>, IdflowError> {
        Ok(self.inner.session().await?)
    }

    /// Checks the id_token's signature against the provider's JWKS, on device.
    pub async fn status(&self) -> Result<SessionStatus, IdflowError> {
        Ok(self.inner.status().await?)
    }

    pub async fn is_valid(&self) -> Result<bool, IdflowError> {
        Ok(self.inner.is_valid().await?)
    }

    /// A fresh access token, refreshed first when due (one refresh for
    /// every concurrent caller). `InvalidGrant`: the user was signed out.
    pub async fn access_token(&self) -> Result<String, IdflowError> {
        Ok(self.inner.access_token().await?)
    }

    /// Refreshes now.
    pub async fn refresh(&self) -> Result<Session, IdflowError> {
        Ok(self.inner.refresh().await?)
    }

    /// Revokes the refresh token (best effort) and clears the storage.
    pub async fn sign_out(&self) -> Result<(), IdflowError> {
        Ok(self.inner.sign_out().await?)
    }
}
