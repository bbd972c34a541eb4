//! Authenticator apps in flows (tests/flows/totp.json): enrollment on the
//! first sign-in with the secret shown on the screen and never stored with
//! the execution, the recovery codes shown once, then sign-ins with a code
//! (each step once), a recovery code (once), and the lockout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use idflow::credentials::totp::Authenticator;
use support::flows::{amr, obj};
use idflow::flow::{FlowEngine, FlowResponse, FlowStatus};
use idflow::jose::{Algorithm, Key};
use idflow::store::{MemoryStore, Store};
use idflow::ErrorCode;
use serde_json::{json, Map, Value};
use std::sync::Arc;

const PASSWORD: &str = "a long enough secret";

fn dir() -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}/../tests/flows", env!("CARGO_MANIFEST_DIR")))
}

fn setup(store: Arc<dyn Store>) -> (FlowEngine, Key) {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("password-project.json")).unwrap()).unwrap();
    doc["flows"] = json!(["totp.json"]);
    let project = idflow::project::Project::from_json(&doc.to_string(), &dir()).unwrap();
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    (project.engine(key.clone(), store).unwrap(), key)
}


fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Signs in with the password; the answer (the app's screen).
async fn password(engine: &FlowEngine) -> (String, FlowResponse) {
    let s = engine.start("totp", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "welcome", "submit", obj(json!({"email": "ann@example.com", "password": PASSWORD}))).await.unwrap();
    (s.execution_id, r)
}

fn wrong(right: &str) -> &'static str {
    if right == "000000" {
        "000001"
    } else {
        "000000"
    }
}

#[tokio::test]
async fn enroll_then_sign_in_with_codes_and_recovery_codes() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (engine, key) = setup(store.clone());
    let user = idflow::users::create_user(store.as_ref(), "ann@example.com", &Map::new()).unwrap();
    idflow::users::password::set(store.as_ref(), engine.passwords(), &user.user_id, PASSWORD.into()).await.unwrap();

    // First sign-in: the app is enrolled.
    let (execution, scan) = password(&engine).await;
    assert_eq!(scan.step_id.as_deref(), Some("scan"), "{:?}", scan.error);
    let shown = &scan.screen.as_ref().unwrap()["totp"];
    let uri = shown["uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/local:ann%40example.com?secret="), "{uri}");
    assert!(shown["qrSvg"].as_str().unwrap().starts_with("<?xml"));
    let secret_b32 = shown["secret"].as_str().unwrap().to_owned();
    let stored = store.execution(&execution).unwrap().unwrap();
    assert!(!stored.context.to_string().contains(&secret_b32), "the secret is not stored with the execution");
    let resumed = engine.current(&execution).unwrap();
    assert_eq!(resumed.screen.unwrap()["totp"]["secret"], secret_b32.as_str(), "a reloaded page shows it again");
    let secret = base32_decode(&secret_b32);
    let app = Authenticator::new(&secret, "x", "y").unwrap();
    let t = now();
    let again = engine.next(&execution, "scan", "submit", obj(json!({"code": wrong(&app.code_at(t))}))).await.unwrap();
    assert_eq!(again.step_id.as_deref(), Some("scan"));
    assert_eq!(again.error.as_ref().unwrap().code, ErrorCode::InvalidCode);
    let recovery = engine.next(&execution, "scan", "submit", obj(json!({"code": app.code_at(t)}))).await.unwrap();
    assert_eq!(recovery.step_id.as_deref(), Some("recovery"), "{:?}", recovery.error);
    let codes: Vec<String> = serde_json::from_value(recovery.screen.as_ref().unwrap()["recoveryCodes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);
    assert!(recovery.screen.as_ref().unwrap().get("totp").is_none(), "the enrollment is over");
    let stored = store.execution(&execution).unwrap().unwrap();
    assert!(!stored.context.to_string().contains(&codes[0]), "recovery codes are not stored with the execution");
    let done = engine.next(&execution, "recovery", "continue", Map::new()).await.unwrap();
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    assert_eq!(amr(&key, &done), json!(["pwd", "otp", "mfa"]));

    // Later sign-ins ask for a code: the step used at enrollment is spent,
    // the next one works once.
    let (execution, ask) = password(&engine).await;
    assert_eq!(ask.step_id.as_deref(), Some("ask-code"));
    let used = engine.next(&execution, "ask-code", "submit", obj(json!({"code": app.code_at(t)}))).await.unwrap();
    assert_eq!(used.error.as_ref().unwrap().code, ErrorCode::InvalidCode, "a replayed step");
    let next = app.code_at(t + 30);
    let done = engine.next(&execution, "ask-code", "submit", obj(json!({"code": next}))).await.unwrap();
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    assert_eq!(amr(&key, &done), json!(["pwd", "otp", "mfa"]));
    let (execution, _) = password(&engine).await;
    let replay = engine.next(&execution, "ask-code", "submit", obj(json!({"code": next}))).await.unwrap();
    assert_eq!(replay.error.as_ref().unwrap().code, ErrorCode::InvalidCode, "a code signs in once");

    // A recovery code signs in once.
    let done = engine.next(&execution, "ask-code", "submit", obj(json!({"code": codes[0]}))).await.unwrap();
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    let (execution, _) = password(&engine).await;
    let spent = engine.next(&execution, "ask-code", "submit", obj(json!({"code": codes[0]}))).await.unwrap();
    assert_eq!(spent.error.as_ref().unwrap().code, ErrorCode::InvalidCode);
    assert_eq!(idflow::users::totp::recovery_codes_left(store.as_ref(), &user.user_id).unwrap(), 9);

    // Guesses lock the user (passwords.lockout: 3 failures; the spent
    // recovery code was the first), and then even the right code is refused.
    let r = engine.next(&execution, "ask-code", "submit", obj(json!({"code": "12345"}))).await.unwrap();
    assert_eq!(r.error.as_ref().unwrap().code, ErrorCode::InvalidCode);
    let r = engine.next(&execution, "ask-code", "submit", obj(json!({"code": "12345"}))).await.unwrap();
    assert_eq!(r.error.as_ref().unwrap().code, ErrorCode::UserLocked);
    let r = engine.next(&execution, "ask-code", "submit", obj(json!({"code": app.code_at(now() + 30)}))).await.unwrap();
    assert_eq!(r.error.as_ref().unwrap().code, ErrorCode::UserLocked);
}

#[tokio::test]
async fn an_enrolled_app_is_replaced_only_after_it_is_verified() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("password-project.json")).unwrap()).unwrap();
    // A flow that tries to enroll right after the password.
    let flow = json!({"id": "replace", "start": "welcome", "steps": {
        "welcome": {"type": "screen", "inputs": [{"name": "email", "type": "email"}, {"name": "password", "type": "password"}], "next": "pw"},
        "pw": {"type": "password", "action": "signIn", "next": "enroll"},
        "enroll": {"type": "totp", "action": "enroll", "next": "scan", "onError": "welcome"},
        "scan": {"type": "screen", "inputs": [{"name": "code", "type": "text"}], "next": "done"},
        "done": {"type": "end"}}});
    doc["flows"] = json!(["totp.json", flow]);
    let project = idflow::project::Project::from_json(&doc.to_string(), &dir()).unwrap();
    let engine = project.engine(Key::generate(Algorithm::ES256, None).unwrap(), store.clone()).unwrap();
    let user = idflow::users::create_user(store.as_ref(), "ann@example.com", &Map::new()).unwrap();
    idflow::users::password::set(store.as_ref(), engine.passwords(), &user.user_id, PASSWORD.into()).await.unwrap();
    let (execution, scan) = password(&engine).await;
    let app = Authenticator::new(&base32_decode(scan.screen.as_ref().unwrap()["totp"]["secret"].as_str().unwrap()), "x", "y").unwrap();
    engine.next(&execution, "scan", "submit", obj(json!({"code": app.code_at(now())}))).await.unwrap();
    assert!(idflow::users::totp::is_enrolled(store.as_ref(), &user.user_id).unwrap());

    // A password alone (a thief's) cannot put its own app in place.
    let s = engine.start("replace", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "welcome", "submit", obj(json!({"email": "ann@example.com", "password": PASSWORD}))).await.unwrap();
    assert_eq!(r.step_id.as_deref(), Some("welcome"));
    assert_eq!(r.error.as_ref().unwrap().code, ErrorCode::AccessDenied);
}

#[test]
fn the_parser_checks_totp_steps() {
    let flow = json!({"id": "x", "start": "e", "steps": {"e": {"type": "totp", "action": "scan", "code": "nowhere.code", "next": "d"}, "d": {"type": "end"}}});
    let problems = idflow::flow::validate_flow(&flow.to_string());
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"action") && fields.contains(&"code"), "{problems:?}");
}

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').chars() {
        bits = (bits << 5) | ALPHABET.find(c).unwrap() as u64;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}
