//! The session manager against idflow's own provider on 127.0.0.1: sign-in,
//! persistence through storage, single-flight refresh, invalid_grant sign
//! out, network failures that keep the session, and storage failures that
//! lose nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use idflow::oidc::client::{AuthorizationParams, ClientAuth, ClientOptions, OidcClient};
use idflow::oidc::provider::Provider;
use idflow::oidc::session::{MemoryStorage, SessionManager, SessionOptions, SessionStatus, SessionStorage, StorageFuture};
use idflow::{Error, ErrorCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::op::{browse, discovery_url, op, op_with};
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
    let session = manager.complete(&callback, &request).await.unwrap();
    assert_eq!(session.claims["email"], email);
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
    let id_token = stored["id_token"].as_str().unwrap();
    // Swap the signature for another token's: the device must notice.
    let other = SessionManager::new(client(&server).await, Arc::new(MemoryStorage::new()), SessionOptions::default());
    sign_in(&provider, &other, "other@example.com").await;
    let other_id = other.session().await.unwrap().unwrap().id_token.unwrap();
    let forged = format!("{}.{}", id_token.rsplit_once('.').unwrap().0, other_id.rsplit_once('.').unwrap().1);
    let mut doc = stored.clone();
    doc["id_token"] = forged.into();
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

/// Storage that fails its saves while `broken` is set.
#[derive(Default)]
struct FlakyStorage {
    inner: MemoryStorage,
    broken: AtomicBool,
}

impl SessionStorage for FlakyStorage {
    fn load(&self) -> StorageFuture<'_, Option<String>> {
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
}
