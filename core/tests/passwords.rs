//! Password sign-in, sign-up and change through the shared flows of
//! tests/flows (password.json, change-password.json), as the Python and
//! Node suites run them, and the attacks on them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use idflow::credentials::password::PasswordHashing;
use idflow::flow::{FlowEngine, FlowResponse, FlowStatus};
use idflow::jose::{self, Algorithm, Key, Validation};
use idflow::store::{MemoryStore, SqliteStore, Store};
use idflow::users::password as passwords;
use idflow::ErrorCode;
use serde_json::{json, Map, Value};
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery";

fn dir() -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}/../tests/flows", env!("CARGO_MANIFEST_DIR")))
}

fn project() -> idflow::project::Project {
    idflow::project::Project::from_file(dir().join("password-project.json")).unwrap()
}

fn setup(store: Arc<dyn Store>) -> (FlowEngine, Key) {
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    (project().engine(key.clone(), store).unwrap(), key)
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

async fn answer(engine: &FlowEngine, interaction: &str, email: &str, password: &str) -> FlowResponse {
    let s = engine.start("password", Map::new(), None).await.unwrap();
    engine.next(&s.execution_id, "welcome", interaction, obj(json!({"email": email, "password": password}))).await.unwrap()
}

fn session_claims(key: &Key, r: &FlowResponse) -> Map<String, Value> {
    let mut v = Validation::new(&[Algorithm::ES256]);
    v.audience = vec!["local".into()];
    jose::verify(&r.auth_info.as_ref().expect("a session").session_jwt, &key.public_key().unwrap(), &v).unwrap().claims
}

/// The error a failed step showed on the screen it went back to.
fn shown(r: &FlowResponse) -> ErrorCode {
    assert_eq!(r.status, FlowStatus::Waiting, "{:?}", r.error);
    assert!(r.step_id.is_some() && r.screen.is_some());
    r.error.as_ref().expect("the screen shows why").code
}

#[tokio::test]
async fn sign_up_then_sign_in_carries_pwd_and_wrong_answers_have_codes() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (engine, key) = setup(store.clone());
    let up = answer(&engine, "signUp", "ann@example.com", PASSWORD).await;
    assert_eq!(up.status, FlowStatus::Completed, "{:?}", up.error);
    assert_eq!(session_claims(&key, &up)["amr"], json!(["pwd"]));
    let user = store.user_by_login_id("ann@example.com").unwrap().unwrap();
    let stored = store.password_hash(&user.user_id).unwrap().unwrap();
    assert!(stored.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{stored}");
    assert!(!user.to_json().to_string().contains("argon2"), "no user JSON carries the hash");

    let again = answer(&engine, "signUp", "ANN@example.com", PASSWORD).await;
    assert_eq!(shown(&again), ErrorCode::UserExists);
    let weak = answer(&engine, "signUp", "bob@example.com", "password123").await;
    assert_eq!(shown(&weak), ErrorCode::WeakPassword);
    assert!(weak.error.as_ref().unwrap().message.contains("common"));
    assert!(store.user_by_login_id("bob@example.com").unwrap().is_none(), "a refused sign-up creates nobody");
    let short = answer(&engine, "signUp", "bob@example.com", "short").await;
    assert!(short.error.as_ref().unwrap().message.contains("at least 10"));

    let r#in = answer(&engine, "signIn", "Ann@Example.com", PASSWORD).await;
    assert_eq!(r#in.status, FlowStatus::Completed);
    let claims = session_claims(&key, &r#in);
    assert_eq!((claims["sub"].as_str(), &claims["amr"]), (Some(user.user_id.as_str()), &json!(["pwd"])));
    // A wrong password and an unknown login id are one answer.
    let wrong = answer(&engine, "signIn", "ann@example.com", "correct horse batterz").await;
    let unknown = answer(&engine, "signIn", "nobody@example.com", PASSWORD).await;
    assert_eq!((shown(&wrong), shown(&unknown)), (ErrorCode::InvalidCredentials, ErrorCode::InvalidCredentials));
    assert_eq!(wrong.error.as_ref().unwrap().message, unknown.error.as_ref().unwrap().message);
}

#[tokio::test]
async fn the_password_is_never_stored_with_the_execution() {
    let store = Arc::new(MemoryStore::new());
    let (engine, _) = setup(store.clone());
    let s = engine.start("password", Map::new(), None).await.unwrap();
    let secret = "a secret nobody should store";
    let r = engine.next(&s.execution_id, "welcome", "signIn", obj(json!({"email": "ann@example.com", "password": secret}))).await.unwrap();
    assert_eq!(shown(&r), ErrorCode::InvalidCredentials);
    let kept = store.execution(&s.execution_id).unwrap().unwrap();
    assert!(!kept.context.to_string().contains(secret), "{}", kept.context);
    assert_eq!(kept.context["error"]["code"], "invalid_credentials");
}

#[tokio::test]
async fn failures_lock_the_login_id_known_or_not_and_success_clears_them() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (engine, _) = setup(store.clone());
    assert_eq!(answer(&engine, "signUp", "ann@example.com", PASSWORD).await.status, FlowStatus::Completed);
    // One failure, then a success: the count starts again.
    assert_eq!(shown(&answer(&engine, "signIn", "ann@example.com", "wrong password 1").await), ErrorCode::InvalidCredentials);
    assert_eq!(answer(&engine, "signIn", "ann@example.com", PASSWORD).await.status, FlowStatus::Completed);
    for login in ["ann@example.com", "nobody@example.com"] {
        assert_eq!(shown(&answer(&engine, "signIn", login, "wrong password 1").await), ErrorCode::InvalidCredentials);
        assert_eq!(shown(&answer(&engine, "signIn", login, "wrong password 2").await), ErrorCode::InvalidCredentials);
        assert_eq!(shown(&answer(&engine, "signIn", login, "wrong password 3").await), ErrorCode::UserLocked, "{login}");
        // Locked: even the right password is refused, and not checked.
        assert_eq!(shown(&answer(&engine, "signIn", login, PASSWORD).await), ErrorCode::UserLocked, "{login}");
    }
    // Another login id is not locked, and an administrator can unlock.
    passwords::unlock(store.as_ref(), "ann@example.com").unwrap();
    assert_eq!(answer(&engine, "signIn", "ann@example.com", PASSWORD).await.status, FlowStatus::Completed);
}

#[tokio::test]
async fn parallel_guesses_cannot_slip_past_the_lock() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (engine, _) = setup(store.clone());
    assert_eq!(answer(&engine, "signUp", "ann@example.com", PASSWORD).await.status, FlowStatus::Completed);
    let engine = Arc::new(engine);
    let mut guesses = Vec::new();
    for i in 0..12 {
        let engine = engine.clone();
        guesses.push(tokio::spawn(async move { shown(&answer(&engine, "signIn", "ann@example.com", &format!("guess number {i}")).await) }));
    }
    let mut wrong = 0;
    for g in guesses {
        if g.await.unwrap() == ErrorCode::InvalidCredentials {
            wrong += 1;
        }
    }
    assert!(wrong < 3, "at most maxFailures - 1 guesses are answered as merely wrong, got {wrong}");
}

#[tokio::test]
async fn change_needs_the_current_password_and_the_policy() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (engine, key) = setup(store.clone());
    assert_eq!(answer(&engine, "signUp", "ann@example.com", PASSWORD).await.status, FlowStatus::Completed);
    let change = |current: &'static str, new: &'static str| {
        let engine = &engine;
        async move {
            let s = engine.start("change-password", Map::new(), None).await.unwrap();
            engine.next(&s.execution_id, "form", "submit", obj(json!({"email": "ann@example.com", "password": current, "newPassword": new}))).await.unwrap()
        }
    };
    assert_eq!(shown(&change("not my password", "a brand new secret").await), ErrorCode::InvalidCredentials);
    assert_eq!(shown(&change(PASSWORD, "qwertyuiop").await), ErrorCode::WeakPassword);
    let user_id = store.user_by_login_id("ann@example.com").unwrap().unwrap().user_id;
    let before = millis();
    assert!(!idflow::users::sessions::sign_in_ended(store.as_ref(), &user_id, before).unwrap(), "refused changes sign nobody out");
    let done = change(PASSWORD, "a brand new secret").await;
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    assert_eq!(session_claims(&key, &done)["amr"], json!(["pwd"]));
    assert!(idflow::users::sessions::sign_in_ended(store.as_ref(), &user_id, before).unwrap(), "earlier sign-ins end with the change");
    assert_eq!(shown(&answer(&engine, "signIn", "ann@example.com", PASSWORD).await), ErrorCode::InvalidCredentials);
    assert_eq!(answer(&engine, "signIn", "ann@example.com", "a brand new secret").await.status, FlowStatus::Completed);
}

#[tokio::test]
async fn imported_hashes_sign_in_and_are_upgraded_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("idflow-passwords-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("import.db");
    let _ = std::fs::remove_file(&path);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path.to_str().unwrap()).unwrap());
    let (engine, _) = setup(store.clone());
    // The Python suite brings hashes from the bcrypt and argon2-cffi packages.
    let bcrypt_hash = bcrypt::hash_with_salt(PASSWORD, 4, [9u8; 16]).unwrap().format_for_version(bcrypt::Version::TwoB);
    let user = idflow::users::create_user(store.as_ref(), "old@example.com", &Map::new()).unwrap();
    assert_eq!(passwords::import_hash(store.as_ref(), &user.user_id, "$1$md5$nope").unwrap_err().code, ErrorCode::InvalidRequest);
    passwords::import_hash(store.as_ref(), &user.user_id, &bcrypt_hash).unwrap();
    assert!(passwords::has_password(store.as_ref(), &user.user_id).unwrap());
    assert_eq!(answer(&engine, "signIn", "old@example.com", PASSWORD).await.status, FlowStatus::Completed);
    let upgraded = store.password_hash(&user.user_id).unwrap().unwrap();
    assert!(upgraded.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{upgraded}");
    assert_eq!(answer(&engine, "signIn", "old@example.com", PASSWORD).await.status, FlowStatus::Completed);
    // A rehash never undoes a change made meanwhile.
    let hashing = PasswordHashing { memory_kib: 8192, iterations: 1, parallelism: 1 };
    let newer = hashing.hash("another long secret").unwrap();
    store.set_password_hash(&user.user_id, Some(&newer), None).unwrap();
    assert!(!store.set_password_hash(&user.user_id, Some(&upgraded), Some(&upgraded)).unwrap());
    assert_eq!(store.password_hash(&user.user_id).unwrap().unwrap(), newer);
    // Removing the password, then the user, leaves nothing behind.
    passwords::remove(store.as_ref(), &user.user_id).unwrap();
    assert!(!passwords::has_password(store.as_ref(), &user.user_id).unwrap());
    assert_eq!(shown(&answer(&engine, "signIn", "old@example.com", PASSWORD).await), ErrorCode::InvalidCredentials);
    store.set_password_hash(&user.user_id, Some(&newer), None).unwrap();
    idflow::users::delete_user(store.as_ref(), &user.user_id).unwrap();
    assert_eq!(store.password_hash(&user.user_id).unwrap(), None);
    assert_eq!(passwords::has_password(store.as_ref(), &user.user_id).unwrap_err().code, ErrorCode::UserNotFound);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_password_step_must_read_a_password_input() {
    let flow = json!({"id": "f", "start": "s", "steps": {
        "s": {"type": "screen", "inputs": [{"name": "email", "type": "email"}, {"name": "password", "type": "text"}], "next": "p"},
        "p": {"type": "password", "action": "signIn", "next": "e"},
        "e": {"type": "end"}}});
    let problems = idflow::flow::validate_flow(&flow.to_string());
    assert!(problems.iter().any(|p| p.step.as_deref() == Some("p") && p.field == "password" && p.message.contains("type password")), "{problems:?}");
    let bad_action = json!({"id": "f", "start": "p", "steps": {"p": {"type": "password", "action": "guess", "next": "e"}, "e": {"type": "end"}}});
    assert!(idflow::flow::validate_flow(&bad_action.to_string()).iter().any(|p| p.field == "action"));
    for name in ["password.json", "change-password.json"] {
        let text = std::fs::read_to_string(dir().join(name)).unwrap();
        assert!(idflow::flow::validate_flow(&text).is_empty(), "{name}");
    }
}

/// Through the provider's flow API: failed password sign-ins are counted per
/// address too, whichever login ids they try, and stop that address only.
#[tokio::test]
async fn failed_sign_ins_are_rate_limited_per_address() {
    use idflow::oidc::provider::{HttpRequest, Provider};
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("password-project.json")).unwrap()).unwrap();
    doc["rateLimits"] = json!({"passwordFailuresPerIp": 2});
    let store = Arc::new(MemoryStore::new());
    let p = Provider::new(idflow::project::Project::from_json(&doc.to_string(), &dir()).unwrap(), store.clone()).unwrap();
    let engine = p.engine();
    passwords::sign_up(store.as_ref(), engine.passwords(), "ann@example.com", PASSWORD.into(), 0).await.unwrap();
    let call = |path: &str, body: Value, ip: &str| {
        let req = HttpRequest::new("POST", path, vec![("Content-Type".to_owned(), "application/json".to_owned())], body.to_string().into_bytes())
            .with_peer(Some(ip.parse().unwrap()));
        p.handle(req)
    };
    let attempt = |email: &'static str, password: &'static str, ip: &'static str| async move {
        let s: Value = serde_json::from_slice(&call("/v1/flow/start", json!({"flowId": "password"}), ip).await.body).unwrap();
        let answer = json!({"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": "welcome",
            "interactionId": "signIn", "input": {"email": email, "password": password}});
        call("/v1/flow/next", answer, ip).await
    };
    for email in ["ann@example.com", "bob@example.com"] {
        let r = attempt(email, "not the password", "203.0.113.7").await;
        assert_eq!(r.status, 200);
        assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap()["error"]["code"], "invalid_credentials");
    }
    let r = attempt("ann@example.com", PASSWORD, "203.0.113.7").await;
    assert_eq!(r.status, 429, "the address waits out the window, even with the right password");
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap()["error"]["code"], "rate_limited");
    let other = attempt("ann@example.com", PASSWORD, "203.0.113.8").await;
    assert_eq!(serde_json::from_slice::<Value>(&other.body).unwrap()["status"], "completed");
}

/// A flow start's input fills `form.*`, and what it fills is stored with the
/// execution: a password given there is dropped, and a password step must
/// read a name that is a password input on every screen.
#[tokio::test]
async fn a_password_given_at_flow_start_is_never_stored() {
    let store = Arc::new(MemoryStore::new());
    let (engine, _) = setup(store.clone());
    let mut input = Map::new();
    input.insert("email".into(), json!("ann@example.com"));
    input.insert("password".into(), json!("a secret in the start input"));
    let s = engine.start("password", input, None).await.unwrap();
    let kept = store.execution(&s.execution_id).unwrap().unwrap();
    assert_eq!(kept.context["form"]["email"], "ann@example.com");
    assert!(!kept.context.to_string().contains("a secret in the start input"), "{}", kept.context);
    let flow = json!({"id": "f", "start": "a", "steps": {
        "a": {"type": "screen", "inputs": [{"name": "password", "type": "password"}], "next": "b"},
        "b": {"type": "screen", "inputs": [{"name": "password", "type": "text"}], "next": "p"},
        "p": {"type": "password", "action": "signIn", "next": "e"},
        "e": {"type": "end"}}});
    assert!(idflow::flow::validate_flow(&flow.to_string()).iter().any(|p| p.field == "password" && p.message.contains("every screen")));
}

fn millis() -> u64 {
    u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// Parallel wrong answers from one address cannot exceed
/// `passwordFailuresPerIp`: each answer counts before any step runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_from_one_address_stop_at_the_limit() {
    use idflow::oidc::provider::{HttpRequest, Provider};
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("password-project.json")).unwrap()).unwrap();
    doc["rateLimits"] = json!({"passwordFailuresPerIp": 3, "flowStartsPerIp": 1000, "windowSeconds": 3600});
    doc["passwords"]["lockout"] = json!({"maxFailures": 1000});
    let store = Arc::new(MemoryStore::new());
    let p = Arc::new(Provider::new(idflow::project::Project::from_json(&doc.to_string(), &dir()).unwrap(), store.clone()).unwrap());
    passwords::sign_up(store.as_ref(), p.engine().passwords(), "ann@example.com", PASSWORD.into(), 0).await.unwrap();
    let call = |p: Arc<Provider>, peer: String, path: &'static str, body: Value| async move {
        let req = HttpRequest::new("POST", path, vec![("Content-Type".to_owned(), "application/json".to_owned())], body.to_string().into_bytes())
            .with_peer(Some(peer.parse().unwrap()));
        serde_json::from_slice::<Value>(&p.handle(req).await.body).unwrap()
    };
    // Rounds from addresses of their own: a race that lets one answer too
    // many through shows in one of them.
    for round in 1..=8 {
        let peer = format!("203.0.113.{round}");
        let mut answers = Vec::new();
        for _ in 0..10 {
            let s = call(p.clone(), peer.clone(), "/v1/flow/start", json!({"flowId": "password"})).await;
            answers.push(json!({"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": "welcome",
                "interactionId": "signIn", "input": {"email": "ann@example.com", "password": "not the password"}}));
        }
        let tasks: Vec<_> = answers.into_iter().map(|a| tokio::spawn(call(p.clone(), peer.clone(), "/v1/flow/next", a))).collect();
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap()["error"]["code"].as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(codes.iter().filter(|c| *c == "invalid_credentials").count(), 3, "round {round}: {codes:?}");
        assert_eq!(codes.iter().filter(|c| *c == "rate_limited").count(), 7, "round {round}: {codes:?}");
    }
}
