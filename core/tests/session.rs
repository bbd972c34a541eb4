//! The session manager against idflow's own provider on 127.0.0.1: sign-in,
//! persistence through storage, single-flight refresh, invalid_grant sign
//! out, network failures that keep the session, and storage failures that
//! lose nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use idflow::oidc::client::{AuthorizationParams, ClientAuth, ClientOptions, OidcClient};
use idflow::oidc::provider::Provider;
use idflow::oidc::client::session::{
    MemoryStorage, SessionEvent, SessionListener, SessionManager, SessionOptions, SessionStatus, SessionStorage, SignOutReason, StorageFuture,
};
use idflow::{Error, ErrorCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::op::{browse, discovery_url, op, op_project, op_with};
use support::{Reply, TestServer};

async fn client(server: &TestServer) -> Arc<OidcClient> {
    let mut o = ClientOptions::new("e2e", "http://127.0.0.1:5555/callback", ClientAuth::None);
    o.scopes = vec!["openid".into(), "email".into(), "offline_access".into()];
    o.timeout = Duration::from_secs(1);
    Arc::new(OidcClient::discover(&discovery_url(server), None, o).await.unwrap())
}

/// Signs in through the provider's flow and hands the callback to `manager`.
async fn sign_in(provider: &Provider, manager: &SessionManager, email: &str) {
    let request = manager.client().authorization_request(&AuthorizationParams::default()).unwrap();
    let callback = browse(provider, &request.url, email).await;
    let session = manager.complete(&callback, Some(&request)).await.unwrap();
    assert_eq!(session.claims["email"], email);
}

/// The native sign-in: `begin`, the user's browser, `complete` with the
/// pending request the storage keeps.
async fn native_sign_in(provider: &Provider, manager: &SessionManager, email: &str) -> idflow::oidc::client::session::Session {
    let url = manager.begin(&AuthorizationParams::default()).await.unwrap();
    manager.complete(&browse(provider, &url, email).await, None).await.unwrap()
}

/// Refreshes whenever a token is asked for (the provider's tokens live 600 s).
fn eager() -> SessionOptions {
    SessionOptions { refresh_margin: Duration::from_secs(3600), ..Default::default() }
}

fn refresh_requests(server: &TestServer) -> usize {
    server.requests().iter().filter(|r| r.body.windows(24).any(|w| w == b"grant_type=refresh_token")).count()
}

#[tokio::test]
async fn signs_in_persists_and_restores_across_restarts() {
    let (server, provider) = op().await;
    let storage = Arc::new(MemoryStorage::new());
    let manager = SessionManager::new(client(&server).await, storage.clone(), SessionOptions::default());
    assert_eq!(manager.status().await.unwrap(), SessionStatus::SignedOut);
    assert_eq!(manager.access_token().await.unwrap_err().code, ErrorCode::LoginRequired);
    sign_in(&provider, &manager, "session@example.com").await;
    assert!(manager.is_valid().await.unwrap());
    let stored = storage.get().unwrap();
    assert!(stored.contains("\"refresh_token\""));
    // Fresh tokens are handed out as they are: no refresh.
    let token = manager.access_token().await.unwrap();
    assert_eq!(manager.access_token().await.unwrap(), token);
    assert_eq!(refresh_requests(&server), 0);
    // "The app restarts": a new manager over the same storage.
    let again = SessionManager::new(client(&server).await, storage.clone(), SessionOptions::default());
    assert_eq!(again.status().await.unwrap(), SessionStatus::Valid);
    assert_eq!(again.access_token().await.unwrap(), token);
    assert_eq!(again.session().await.unwrap().unwrap().subject(), manager.session().await.unwrap().unwrap().subject());
    // The access token works at the provider.
    let info = again.client().userinfo(&token).await.unwrap();
    assert_eq!(info["email"], "session@example.com");
}

#[tokio::test]
async fn concurrent_callers_share_one_refresh() {
    let (server, provider) = op_with(Duration::from_millis(300)).await;
    let storage = Arc::new(MemoryStorage::new());
    let manager = Arc::new(SessionManager::new(client(&server).await, storage.clone(), eager()));
    sign_in(&provider, &manager, "flight@example.com").await;
    let before = manager.session().await.unwrap().unwrap();
    let calls: Vec<_> = (0..8).map(|_| {
        let m = manager.clone();
        tokio::spawn(async move { m.access_token().await })
    }).collect();
    let mut tokens = Vec::new();
    for c in calls {
        tokens.push(c.await.unwrap().unwrap());
    }
    assert_eq!(refresh_requests(&server), 1, "eight callers, one refresh");
    assert!(tokens.iter().all(|t| t == &tokens[0]));
    assert_ne!(tokens[0], before.access_token);
    let after = manager.session().await.unwrap().unwrap();
    assert_ne!(after.refresh_token, before.refresh_token, "the provider rotated the refresh token");
    assert!(storage.get().unwrap().contains(after.refresh_token.as_deref().unwrap()), "the rotated token is stored");
    // A forced refresh works too, and the old (rotated) token is not reused.
    let forced = manager.refresh().await.unwrap();
    assert_ne!(forced.refresh_token, after.refresh_token);
    assert_eq!(forced.subject(), before.subject());
}

#[tokio::test]
async fn invalid_grant_signs_out() {
    let (server, provider) = op().await;
    let storage = Arc::new(MemoryStorage::new());
    let manager = SessionManager::new(client(&server).await, storage.clone(), eager());
    sign_in(&provider, &manager, "revoked@example.com").await;
    let rt = manager.session().await.unwrap().unwrap().refresh_token.unwrap();
    manager.client().revoke(&rt, Some("refresh_token")).await.unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidGrant);
    assert_eq!(storage.get(), None, "the stored session is cleared");
    assert_eq!(manager.status().await.unwrap(), SessionStatus::SignedOut);
    assert_eq!(manager.access_token().await.unwrap_err().code, ErrorCode::LoginRequired);
}

#[tokio::test]
async fn a_network_failure_keeps_the_session_and_the_next_call_retries() {
    let (server, provider) = op().await;
    let storage = Arc::new(MemoryStorage::new());
    let manager = SessionManager::new(client(&server).await, storage.clone(), eager());
    sign_in(&provider, &manager, "offline@example.com").await;
    let before = manager.session().await.unwrap().unwrap();
    let token_path = url::Url::parse(&manager.client().endpoints().token).unwrap().path().to_owned();
    // The token endpoint is slower than the client's 1 s timeout.
    server.route(&token_path, Reply::text(200, "{}").delay(Duration::from_secs(3)));
    let err = manager.refresh().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Network);
    // Still signed in; the still-valid access token is handed out meanwhile.
    assert_eq!(manager.session().await.unwrap().unwrap(), before);
    assert!(storage.get().unwrap().contains(before.refresh_token.as_deref().unwrap()));
    assert_eq!(manager.access_token().await.unwrap(), before.access_token);
    assert_eq!(manager.status().await.unwrap(), SessionStatus::Valid);
    // Back online: the next call refreshes.
    server.unroute(&token_path);
    let token = manager.access_token().await.unwrap();
    assert_ne!(token, before.access_token);
}

#[tokio::test]
async fn sign_out_revokes_and_clears() {
    let (server, provider) = op().await;
    let storage = Arc::new(MemoryStorage::new());
    let manager = SessionManager::new(client(&server).await, storage.clone(), SessionOptions::default());
    sign_in(&provider, &manager, "bye@example.com").await;
    let rt = manager.session().await.unwrap().unwrap().refresh_token.unwrap();
    manager.sign_out().await.unwrap();
    assert_eq!(storage.get(), None);
    assert_eq!(manager.status().await.unwrap(), SessionStatus::SignedOut);
    let err = manager.client().refresh(&rt, None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidGrant, "the refresh token was revoked at the provider");
}

#[tokio::test]
async fn tampered_or_foreign_stored_sessions_are_invalid() {
    let (server, provider) = op().await;
    let storage = Arc::new(MemoryStorage::new());
    let manager = SessionManager::new(client(&server).await, storage.clone(), SessionOptions::default());
    sign_in(&provider, &manager, "tamper@example.com").await;
    let stored: serde_json::Value = serde_json::from_str(&storage.get().unwrap()).unwrap();
    let id_token = stored["session"]["id_token"].as_str().unwrap();
    // Swap the signature for another token's: the device must notice.
    let other = SessionManager::new(client(&server).await, Arc::new(MemoryStorage::new()), SessionOptions::default());
    sign_in(&provider, &other, "other@example.com").await;
    let other_id = other.session().await.unwrap().unwrap().id_token.unwrap();
    let forged = format!("{}.{}", id_token.rsplit_once('.').unwrap().0, other_id.rsplit_once('.').unwrap().1);
    let mut doc = stored.clone();
    doc["session"]["id_token"] = forged.into();
    let tampered = Arc::new(MemoryStorage::new());
    tampered.save(doc.to_string()).await.unwrap();
    let m = SessionManager::new(client(&server).await, tampered, SessionOptions::default());
    assert_eq!(m.status().await.unwrap(), SessionStatus::Invalid);
    // Unreadable storage is a storage error, not a crash or a silent sign-out.
    let junk = Arc::new(MemoryStorage::new());
    junk.save("not json".into()).await.unwrap();
    let m = SessionManager::new(client(&server).await, junk, SessionOptions::default());
    assert_eq!(m.access_token().await.unwrap_err().code, ErrorCode::Storage);
    m.sign_out().await.unwrap();
    assert_eq!(m.status().await.unwrap(), SessionStatus::SignedOut);
}

/// Storage that fails its saves while `broken` is set, and its loads
/// while `locked` is (a keychain before first unlock).
#[derive(Default)]
struct FlakyStorage {
    inner: MemoryStorage,
    broken: AtomicBool,
    locked: AtomicBool,
}

impl SessionStorage for FlakyStorage {
    fn load(&self) -> StorageFuture<'_, Option<String>> {
        if self.locked.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Error::new(ErrorCode::Internal, "keychain locked before first unlock")) });
        }
        self.inner.load()
    }
    fn save(&self, session: String) -> StorageFuture<'_, ()> {
        if self.broken.load(Ordering::SeqCst) {
            return Box::pin(async { Err(Error::new(ErrorCode::Internal, "keychain locked")) });
        }
        self.inner.save(session)
    }
    fn clear(&self) -> StorageFuture<'_, ()> {
        self.inner.clear()
    }
}

#[tokio::test]
async fn a_failed_save_loses_nothing_and_is_retried() {
    let (server, provider) = op().await;
    let storage = Arc::new(FlakyStorage::default());
    let manager = SessionManager::new(client(&server).await, storage.clone(), eager());
    sign_in(&provider, &manager, "flaky@example.com").await;
    storage.broken.store(true, Ordering::SeqCst);
    let err = manager.refresh().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Storage);
    assert!(err.message.contains("keychain locked"));
    // The rotated tokens are held in memory (the old refresh token is spent).
    let held = manager.session().await;
    assert_eq!(held.unwrap_err().code, ErrorCode::Storage, "the save is retried and still fails");
    storage.broken.store(false, Ordering::SeqCst);
    let held = manager.session().await.unwrap().unwrap();
    assert!(storage.inner.get().unwrap().contains(held.refresh_token.as_deref().unwrap()));
    // And the held refresh token is the live one.
    manager.refresh().await.unwrap();
}

#[test]
fn session_settings_are_checked() {
    let parse = |v: serde_json::Value| SessionOptions::from_json(v.as_object().unwrap());
    assert_eq!(parse(serde_json::json!({"refreshMargin": 5})).unwrap().refresh_margin, Duration::from_secs(5));
    assert!(!parse(serde_json::json!({"revokeOnSignOut": false})).unwrap().revoke_on_sign_out);
    assert_eq!(parse(serde_json::json!({"refreshMargin": -1})).unwrap_err().code, ErrorCode::Config);
    assert_eq!(parse(serde_json::json!({"margin": 1})).unwrap_err().code, ErrorCode::Config);
    let o = parse(serde_json::json!({"pendingTtl": 30, "lockPath": "/tmp/x.lock", "lockTimeout": 2})).unwrap();
    assert_eq!((o.pending_ttl, o.lock_path.as_deref(), o.lock_timeout), (Duration::from_secs(30), Some(std::path::Path::new("/tmp/x.lock")), Duration::from_secs(2)));
    assert_eq!(SessionOptions::default().pending_ttl, Duration::from_secs(600), "ten minutes by default");
    for bad in [serde_json::json!({"pendingTtl": 0}), serde_json::json!({"lockPath": ""}), serde_json::json!({"lockPath": 5})] {
        assert_eq!(parse(bad.clone()).unwrap_err().code, ErrorCode::Config, "{bad}");
    }
}

const NATIVE_REDIRECT: &str = "com.example.app:/oauth2redirect";

/// The mobile app's client: public, with its private-use redirect.
async fn native_client(server: &TestServer) -> Arc<OidcClient> {
    let mut o = ClientOptions::new("native", NATIVE_REDIRECT, ClientAuth::None);
    o.scopes = vec!["openid".into(), "email".into(), "offline_access".into()];
    o.timeout = Duration::from_secs(2);
    Arc::new(OidcClient::discover(&discovery_url(server), None, o).await.unwrap())
}

/// Everything a listener heard, by name.
#[derive(Default)]
struct Heard(std::sync::Mutex<Vec<SessionEvent>>);

impl SessionListener for Heard {
    fn on_event(&self, event: &SessionEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Heard {
    fn names(&self) -> Vec<&'static str> {
        self.0.lock().unwrap().iter().map(SessionEvent::name).collect()
    }
}

#[tokio::test]
async fn native_sign_in_through_a_private_use_redirect_survives_process_death() {
    let (server, provider) = op().await;
    let storage = Arc::new(MemoryStorage::new());
    let url = {
        let started = SessionManager::new(native_client(&server).await, storage.clone(), SessionOptions::default());
        started.begin(&AuthorizationParams::default()).await.unwrap()
        // "The OS kills the app while the browser is open."
    };
    assert!(url.contains("redirect_uri=com.example.app%3A%2Foauth2redirect") && url.contains("code_challenge="), "{url}");
    let stored = storage.get().unwrap();
    assert!(stored.contains("\"pending\"") && !stored.contains("\"session\""), "the pending request is stored: {stored}");
    let callback = browse(&provider, &url, "native@example.com").await;
    assert!(callback.starts_with("com.example.app:/oauth2redirect?code="), "{callback}");
    let manager = SessionManager::new(native_client(&server).await, storage.clone(), SessionOptions::default());
    let session = manager.complete(&callback, None).await.unwrap();
    assert_eq!(session.claims["email"], "native@example.com");
    assert!(!storage.get().unwrap().contains("\"pending\""), "the pending request is spent");
    let err = manager.complete(&callback, None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest, "a callback completes once: {}", err.message);
    assert_eq!(manager.session().await.unwrap().unwrap(), session, "the refused replay changed nothing");
    let info = manager.client().userinfo(&session.access_token).await.unwrap();
    assert_eq!(info["email"], "native@example.com");
    let refreshed = manager.refresh().await.unwrap();
    assert_ne!(refreshed.access_token, session.access_token);
    // The end-session URL with the app's private-use post-logout redirect:
    // the provider accepts it and asks the user (no cookie in this browser).
    let logout = manager.client().end_session_url(refreshed.id_token.as_deref(), Some("com.example.app:/signed-out"), Some("s1")).unwrap();
    let answer = provider.handle(idflow::oidc::provider::HttpRequest::new("GET", &logout, vec![], vec![])).await;
    let body = String::from_utf8_lossy(&answer.body);
    assert!(answer.status == 200 || answer.header("Location").is_some_and(|l| l.starts_with("com.example.app:/signed-out")), "{} {body}", answer.status);
    assert!(!body.contains("not registered"), "{body}");
    let bad = manager.client().end_session_url(None, Some("javascript:alert(1)"), None).unwrap_err();
    assert_eq!(bad.code, ErrorCode::Config);
    let rt = refreshed.refresh_token.clone().unwrap();
    manager.sign_out().await.unwrap();
    assert_eq!(storage.get(), None);
    assert_eq!(manager.client().refresh(&rt, None).await.unwrap_err().code, ErrorCode::InvalidGrant, "revoked at sign-out");
}

#[tokio::test]
async fn a_pending_sign_in_answers_only_its_own_callback_once_and_expires() {
    let (server, provider) = op().await;
    let storage = Arc::new(MemoryStorage::new());
    let manager = SessionManager::new(native_client(&server).await, storage.clone(), SessionOptions::default());
    // No pending request: refused, nothing stored.
    let err = manager.complete("com.example.app:/oauth2redirect?code=x&state=y", None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert_eq!(storage.get(), None);
    // A callback for another state (an attacker's, or an older begin's) is
    // refused and the real one still completes.
    let stale = manager.begin(&AuthorizationParams::default()).await.unwrap();
    let url = manager.begin(&AuthorizationParams::default()).await.unwrap();
    let stale_callback = browse(&provider, &stale, "stale@example.com").await;
    let before = storage.get();
    let err = manager.complete(&stale_callback, None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(err.message.contains("state"), "{}", err.message);
    assert_eq!(storage.get(), before, "nothing changed");
    let callback = browse(&provider, &url, "pending@example.com").await;
    // Someone who learned the state cannot spend the pending sign-in with a
    // doctored callback: a repeated state, another issuer's `iss` (mix-up)
    // or a huge state are refused before anything changes.
    let state = callback.split("state=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    for (doctored, code) in [
        (format!("com.example.app:/oauth2redirect?code=evil&state={state}&state=other"), ErrorCode::InvalidRequest),
        (format!("com.example.app:/oauth2redirect?code=evil&state=other&state={state}"), ErrorCode::InvalidRequest),
        (format!("com.example.app:/oauth2redirect?code=evil&state={state}&iss=https%3A%2F%2Fevil.example"), ErrorCode::InvalidIssuer),
        (format!("com.example.app:/oauth2redirect?code=evil&state={}", "s".repeat(100_000)), ErrorCode::InvalidRequest),
    ] {
        assert_eq!(manager.complete(&doctored, None).await.unwrap_err().code, code, "{:.120}", doctored);
        assert_eq!(storage.get(), before, "nothing changed: {:.120}", doctored);
    }
    assert_eq!(manager.complete(&callback, None).await.unwrap().claims["email"], "pending@example.com");
    // An expired pending request is refused and removed.
    let mut doc: serde_json::Value = serde_json::from_str(&storage.get().unwrap()).unwrap();
    let url = manager.begin(&AuthorizationParams::default()).await.unwrap();
    let callback = browse(&provider, &url, "late@example.com").await;
    let stored: serde_json::Value = serde_json::from_str(&storage.get().unwrap()).unwrap();
    doc["pending"] = stored["pending"].clone();
    doc["pending"]["expires_at"] = 1.into();
    storage.save(doc.to_string()).await.unwrap();
    let late = SessionManager::new(native_client(&server).await, storage.clone(), SessionOptions::default());
    let err = late.complete(&callback, None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(err.message.contains("expired"), "{}", err.message);
    let left: serde_json::Value = serde_json::from_str(&storage.get().unwrap()).unwrap();
    assert!(left.get("pending").is_none(), "the expired request is gone: {left}");
    assert_eq!(left["session"]["claims"]["email"], "pending@example.com", "the session it did not complete is kept");
    // The implicit grant is no way to start a session.
    let implicit = AuthorizationParams { response_type: Some(idflow::oidc::client::ResponseType::IdToken), ..Default::default() };
    assert_eq!(manager.begin(&implicit).await.unwrap_err().code, ErrorCode::Config);
}

#[tokio::test]
async fn two_managers_over_one_storage_never_spend_a_refresh_token_twice() {
    let (server, provider) = op().await;
    let storage = Arc::new(MemoryStorage::new());
    let first = Arc::new(SessionManager::new(native_client(&server).await, storage.clone(), eager()));
    native_sign_in(&provider, &first, "race@example.com").await;
    // "The app and its extension": another client object, another manager.
    let second = Arc::new(SessionManager::new(native_client(&server).await, storage.clone(), eager()));
    let heard = Arc::new(Heard::default());
    second.set_listener(Some(heard.clone()));
    let rounds = 50;
    for round in 0..rounds {
        let before = refresh_requests(&server);
        let (a, b) = (first.clone(), second.clone());
        let (x, y) = tokio::join!(tokio::spawn(async move { a.refresh().await }), tokio::spawn(async move { b.refresh().await }));
        let (x, y) = (x.unwrap().unwrap(), y.unwrap().unwrap());
        assert_eq!(x, y, "round {round}: both hold the same renewed session");
        assert_eq!(refresh_requests(&server) - before, 1, "round {round}: exactly one rotation");
        // Every access token in use works (none revoked by a reuse).
        second.client().userinfo(&x.access_token).await.unwrap();
    }
    assert_eq!(first.session().await.unwrap(), second.session().await.unwrap());
    assert!(heard.names().iter().all(|n| *n == "refreshed") && heard.names().len() == rounds, "{:?}", heard.names());
    // The first renews before the second even looks: the second, which last
    // saw the older session, adopts the renewal instead of spending again.
    let before = refresh_requests(&server);
    let renewed = first.refresh().await.unwrap();
    assert_eq!(second.refresh().await.unwrap(), renewed);
    assert_eq!(refresh_requests(&server) - before, 1, "one rotation for both");
    assert_eq!(heard.names().len(), rounds + 1);
    // access_token() from two managers at once when the stored token is
    // due (default margin): one refresh between them, the other adopts it.
    let mut doc: serde_json::Value = serde_json::from_str(&storage.get().unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    doc["session"]["expires_at"] = (now + 5).into();
    storage.save(doc.to_string()).await.unwrap();
    let third = SessionManager::new(native_client(&server).await, storage.clone(), SessionOptions::default());
    let fourth = SessionManager::new(native_client(&server).await, storage.clone(), SessionOptions::default());
    let before = refresh_requests(&server);
    let (x, y) = tokio::join!(third.access_token(), fourth.access_token());
    assert_eq!(x.unwrap(), y.unwrap());
    assert_eq!(refresh_requests(&server) - before, 1);
    // One signs out: the other sees it at once, and hears why.
    first.sign_out().await.unwrap();
    assert_eq!(second.session().await.unwrap(), None);
    assert_eq!(second.access_token().await.unwrap_err().code, ErrorCode::LoginRequired);
    let last = heard.0.lock().unwrap().last().cloned();
    assert!(matches!(last, Some(SessionEvent::SignedOut { reason: SignOutReason::Elsewhere, .. })), "{last:?}");
    // One signs in (begin in one, complete in the other): both see it.
    let url = second.begin(&AuthorizationParams::default()).await.unwrap();
    let session = first.complete(&browse(&provider, &url, "race@example.com").await, None).await.unwrap();
    assert_eq!(second.session().await.unwrap(), Some(session.clone()));
    second.client().userinfo(&second.access_token().await.unwrap()).await.unwrap();
}

#[tokio::test]
async fn another_process_holding_the_lock_file_makes_a_refresh_wait() {
    let (server, provider) = op().await;
    let dir = std::env::temp_dir().join(format!("idflow-lock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lock_path = dir.join("session.lock");
    let options = SessionOptions { lock_path: Some(lock_path.clone()), lock_timeout: Duration::from_millis(400), ..eager() };
    let storage = Arc::new(MemoryStorage::new());
    let manager = SessionManager::new(native_client(&server).await, storage.clone(), options);
    native_sign_in(&provider, &manager, "lock@example.com").await;
    // Another process's lock: an open file description with flock held.
    let held = std::fs::OpenOptions::new().read(true).write(true).open(&lock_path).unwrap();
    assert!(fs4::fs_std::FileExt::try_lock_exclusive(&held).unwrap());
    let before = refresh_requests(&server);
    let err = manager.refresh().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Storage);
    assert!(err.message.contains("session lock"), "{}", err.message);
    assert_eq!(refresh_requests(&server), before, "no refresh without the lock");
    drop(held);
    manager.refresh().await.unwrap();
    assert_eq!(refresh_requests(&server), before + 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_refresh_whose_reply_was_lost_is_retried_within_the_grace() {
    let (server, provider) = op_project(|doc| doc["tokens"]["refreshReuseGrace"] = 30.into()).await;
    let storage = Arc::new(MemoryStorage::new());
    let manager = SessionManager::new(native_client(&server).await, storage.clone(), eager());
    native_sign_in(&provider, &manager, "killed@example.com").await;
    let rt = manager.session().await.unwrap().unwrap().refresh_token.unwrap();
    // The app sends the refresh and is killed before it saves the reply.
    let lost = manager.client().refresh(&rt, None).await.unwrap();
    drop(manager);
    let relaunched = SessionManager::new(native_client(&server).await, storage.clone(), eager());
    let session = relaunched.refresh().await.unwrap();
    assert_eq!(session.refresh_token, lost.refresh_token, "the same answer again");
    relaunched.client().userinfo(&session.access_token).await.unwrap();
    relaunched.refresh().await.unwrap();
}

#[tokio::test]
async fn without_a_grace_a_lost_refresh_reply_signs_out_with_its_reason() {
    let (server, provider) = op().await;
    let storage = Arc::new(MemoryStorage::new());
    let manager = SessionManager::new(native_client(&server).await, storage.clone(), eager());
    native_sign_in(&provider, &manager, "nograce@example.com").await;
    let rt = manager.session().await.unwrap().unwrap().refresh_token.unwrap();
    manager.client().refresh(&rt, None).await.unwrap();
    drop(manager);
    let relaunched = SessionManager::new(native_client(&server).await, storage.clone(), eager());
    let heard = Arc::new(Heard::default());
    relaunched.set_listener(Some(heard.clone()));
    let err = relaunched.refresh().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidGrant);
    assert_eq!(storage.get(), None);
    let events = heard.0.lock().unwrap().clone();
    assert!(
        matches!(&events[..], [SessionEvent::SignedOut { reason: SignOutReason::RefreshRefused, message }] if message.contains("already used")),
        "{events:?}"
    );
}

#[tokio::test]
async fn storage_trouble_never_ends_a_session() {
    let (server, provider) = op().await;
    let storage = Arc::new(FlakyStorage::default());
    let manager = SessionManager::new(native_client(&server).await, storage.clone(), eager());
    native_sign_in(&provider, &manager, "keychain@example.com").await;
    let kept = storage.inner.get().unwrap();
    // A relaunch before first unlock: the load throws.
    storage.locked.store(true, Ordering::SeqCst);
    let relaunched = SessionManager::new(native_client(&server).await, storage.clone(), eager());
    let heard = Arc::new(Heard::default());
    relaunched.set_listener(Some(heard.clone()));
    for err in [relaunched.session().await.unwrap_err(), relaunched.access_token().await.unwrap_err(), relaunched.refresh().await.unwrap_err()] {
        assert_eq!(err.code, ErrorCode::Storage, "{}", err.message);
    }
    // The refresh of the manager that holds the session cannot read the
    // storage either, so it does not spend the refresh token.
    let before = refresh_requests(&server);
    assert_eq!(manager.refresh().await.unwrap_err().code, ErrorCode::Storage);
    assert_eq!(refresh_requests(&server), before);
    assert_eq!(storage.inner.get().unwrap(), kept, "the stored session is intact");
    assert!(heard.names().iter().all(|n| *n == "storageFailed") && heard.names().len() == 3, "{:?}", heard.names());
    storage.locked.store(false, Ordering::SeqCst);
    assert_eq!(relaunched.session().await.unwrap().unwrap().claims["email"], "keychain@example.com");
    relaunched.refresh().await.unwrap();
}

#[tokio::test]
async fn stored_format_versions_older_is_read_newer_is_left_alone() {
    let (server, provider) = op().await;
    let storage = Arc::new(MemoryStorage::new());
    let manager = SessionManager::new(native_client(&server).await, storage.clone(), eager());
    let session = native_sign_in(&provider, &manager, "format@example.com").await;
    let stored: serde_json::Value = serde_json::from_str(&storage.get().unwrap()).unwrap();
    assert_eq!(stored["v"], 2);
    // Format 1: the session's fields at the top level.
    let mut v1 = stored["session"].clone();
    v1["v"] = 1.into();
    storage.save(v1.to_string()).await.unwrap();
    let old = SessionManager::new(native_client(&server).await, storage.clone(), eager());
    assert_eq!(old.session().await.unwrap().unwrap(), session);
    old.refresh().await.unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&storage.get().unwrap()).unwrap()["v"], 2, "written back in the current format");
    // A newer format: refused by every call, never overwritten.
    let v3 = r#"{"v":3,"session":{"access_token":"from the future"}}"#;
    storage.save(v3.into()).await.unwrap();
    let newer = SessionManager::new(native_client(&server).await, storage.clone(), eager());
    for err in [newer.session().await.unwrap_err(), newer.refresh().await.unwrap_err(), newer.sign_out().await.unwrap_err(), old.refresh().await.unwrap_err()] {
        assert_eq!(err.code, ErrorCode::Storage);
        assert!(err.message.contains("newer version"), "{}", err.message);
    }
    let url = newer.begin(&AuthorizationParams::default()).await;
    assert_eq!(url.unwrap_err().code, ErrorCode::Storage);
    // Nor does a sign-in with tokens from elsewhere (or complete with an
    // explicit request, which signs in the same way) replace it.
    let tokens = idflow::oidc::client::TokenSet::from_json(serde_json::json!({"access_token": "at", "token_type": "Bearer"}).as_object().unwrap()).unwrap();
    assert_eq!(newer.sign_in(tokens).await.unwrap_err().code, ErrorCode::Storage);
    assert_eq!(storage.get().as_deref(), Some(v3), "left as it was");
}
