//! One-time codes by email through the shared flow tests/flows/email-code.json,
//! mailed over SMTP to a server on 127.0.0.1: sign-in by code, password
//! reset, and every way a code is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use idflow::flow::{FlowEngine, FlowResponse, FlowStatus};
use idflow::jose::{Algorithm, Key};
use idflow::store::{MemoryStore, Store};
use idflow::ErrorCode;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use support::flows::{amr, obj};
use support::smtp::SmtpServer;

fn dir() -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}/../tests/flows", env!("CARGO_MANIFEST_DIR")))
}

fn project(smtp: &SmtpServer, extra: impl FnOnce(&mut Value)) -> idflow::project::Project {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("password-project.json")).unwrap()).unwrap();
    doc["flows"] = json!(["email-code.json", "password.json"]);
    doc["email"] = json!({"transport": "smtp", "from": "Example <no-reply@example.com>",
        "smtp": {"host": "127.0.0.1", "port": smtp.port, "tls": "none", "timeout": 5}});
    extra(&mut doc);
    idflow::project::Project::from_json(&doc.to_string(), &dir()).unwrap()
}


/// Starts the flow and asks for a code for `email`; the execution id.
async fn ask(engine: &FlowEngine, email: &str) -> String {
    let s = engine.start("email-code", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "ask", "send", obj(json!({"email": email}))).await.unwrap();
    assert_eq!((r.status, r.step_id.as_deref()), (FlowStatus::Waiting, Some("enter")), "{:?}", r.error);
    s.execution_id
}

async fn enter(engine: &FlowEngine, execution: &str, interaction: &str, input: Value) -> FlowResponse {
    engine.next(execution, "enter", interaction, obj(input)).await.unwrap()
}

fn setup(smtp: &SmtpServer) -> (FlowEngine, Key, Arc<MemoryStore>) {
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let store = Arc::new(MemoryStore::new());
    (project(smtp, |_| {}).engine(key.clone(), store.clone()).unwrap(), key, store)
}

#[tokio::test]
async fn a_mailed_code_signs_in_once_and_verifies_the_email() {
    let smtp = SmtpServer::start().await;
    let (engine, key, store) = setup(&smtp);
    let execution = ask(&engine, "Kim@Example.com").await;
    let mail = smtp.messages().pop().unwrap();
    assert!(mail.contains("To: kim@example.com") && mail.contains("From: Example <no-reply@example.com>"), "{mail}");
    let code = smtp.last_code().await;
    let kept = store.record("email_code", &execution).unwrap().unwrap();
    assert!(!kept.to_string().contains(&code), "only a digest of the code is stored");
    let done = enter(&engine, &execution, "signIn", json!({"code": code})).await;
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    assert_eq!(amr(&key, &done), json!(["otp"]));
    let user = store.user_by_login_id("kim@example.com").unwrap().unwrap();
    assert!(user.verified_email, "the code proved the address");
    // The same code again, in a new execution of the same person: refused.
    let other = ask(&engine, "kim@example.com").await;
    let replay = enter(&engine, &other, "signIn", json!({"code": code})).await;
    let fresh = smtp.last_code().await;
    if fresh != code {
        assert_eq!(replay.error.as_ref().unwrap().code, ErrorCode::InvalidCode);
    }
}

#[tokio::test]
async fn wrong_used_expired_and_foreign_codes_are_refused() {
    let smtp = SmtpServer::start().await;
    let (engine, _, store) = setup(&smtp);
    let a = ask(&engine, "ann@example.com").await;
    let code_a = smtp.last_code().await;
    let b = ask(&engine, "bob@example.com").await;
    let code_b = smtp.last_code().await;
    // Bob's code does not work in Ann's execution.
    if code_a != code_b {
        assert_eq!(enter(&engine, &a, "signIn", json!({"code": code_b})).await.error.unwrap().code, ErrorCode::InvalidCode);
    }
    let wrong = if code_a == "000000" { "000001" } else { "000000" };
    assert_eq!(enter(&engine, &a, "signIn", json!({"code": wrong})).await.error.unwrap().code, ErrorCode::InvalidCode);
    // Five wrong tries spend the code: even the right one fails after.
    for _ in 0..3 {
        enter(&engine, &a, "signIn", json!({"code": wrong})).await;
    }
    assert_eq!(enter(&engine, &a, "signIn", json!({"code": code_a})).await.error.unwrap().code, ErrorCode::InvalidCode);
    assert!(store.user_by_login_id("ann@example.com").unwrap().is_none());
    // A code used once does not work twice.
    let done = enter(&engine, &b, "signIn", json!({"code": code_b})).await;
    assert_eq!(done.status, FlowStatus::Completed);
    // An expired code says so.
    let c = ask(&engine, "cy@example.com").await;
    let mut kept = store.record("email_code", &c).unwrap().unwrap();
    kept["expiresAt"] = json!(1);
    store.put_record("email_code", &c, &kept, Some(u64::MAX / 2)).unwrap();
    assert_eq!(enter(&engine, &c, "signIn", json!({"code": smtp.last_code().await})).await.error.unwrap().code, ErrorCode::ExpiredCode);
    // A resend makes a new code; the sixth send is refused.
    let d = ask(&engine, "dee@example.com").await;
    for _ in 0..4 {
        let r = enter(&engine, &d, "resend", json!({})).await;
        assert_eq!((r.step_id.as_deref(), r.error.is_none()), (Some("enter"), true), "{:?}", r.error);
    }
    let r = enter(&engine, &d, "resend", json!({})).await;
    assert_eq!(r.error.unwrap().code, ErrorCode::RateLimited);
}

#[tokio::test]
async fn a_code_resets_a_forgotten_password_and_ends_the_lockout() {
    let smtp = SmtpServer::start().await;
    let (engine, key, store) = setup(&smtp);
    let settings = engine.passwords().clone();
    idflow::users::password::sign_up(store.as_ref(), &settings, "pat@example.com", "old long password".into(), 0).await.unwrap();
    // Locked out by guesses.
    for i in 0..3 {
        let s = engine.start("password", Map::new(), None).await.unwrap();
        engine.next(&s.execution_id, "welcome", "signIn", obj(json!({"email": "pat@example.com", "password": format!("guess {i} guess")}))).await.unwrap();
    }
    // A reset for an address nobody has: no user is made, the flow says why.
    let nobody = ask(&engine, "nobody@example.com").await;
    let r = enter(&engine, &nobody, "reset", json!({"code": smtp.last_code().await, "newPassword": "a new long password"})).await;
    assert_eq!(r.error.unwrap().code, ErrorCode::UserNotFound);
    let execution = ask(&engine, "pat@example.com").await;
    let weak = enter(&engine, &execution, "reset", json!({"code": smtp.last_code().await, "newPassword": "qwerty123456"})).await;
    assert_eq!(weak.error.as_ref().unwrap().code, ErrorCode::WeakPassword, "the code was spent before the policy refused");
    let execution = ask(&engine, "pat@example.com").await;
    let done = enter(&engine, &execution, "reset", json!({"code": smtp.last_code().await, "newPassword": "a new long password"})).await;
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    assert_eq!(amr(&key, &done), json!(["otp"]), "a reset verified the email, not a password");
    let s = engine.start("password", Map::new(), None).await.unwrap();
    let signed_in = engine.next(&s.execution_id, "welcome", "signIn", obj(json!({"email": "pat@example.com", "password": "a new long password"}))).await.unwrap();
    assert_eq!(signed_in.status, FlowStatus::Completed, "the lockout ended with the reset: {:?}", signed_in.error);
}

#[tokio::test]
async fn mail_failures_and_missing_settings_have_codes() {
    let smtp = SmtpServer::start().await;
    let (engine, _, _) = setup(&smtp);
    smtp.refuse_all(true);
    let s = engine.start("email-code", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "ask", "send", obj(json!({"email": "ann@example.com"}))).await.unwrap();
    assert_eq!((r.step_id.as_deref(), r.error.as_ref().unwrap().code), (Some("ask"), ErrorCode::Network));
    // No email section: the step fails with `config`.
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let bare = project(&smtp, |d| {
        d.as_object_mut().unwrap().remove("email");
    })
    .engine(key, Arc::new(MemoryStore::new()))
    .unwrap();
    let s = bare.start("email-code", Map::new(), None).await.unwrap();
    let r = bare.next(&s.execution_id, "ask", "send", obj(json!({"email": "ann@example.com"}))).await.unwrap();
    assert_eq!(r.error.unwrap().code, ErrorCode::Config);
    // A custom template, and one naming what it cannot fill.
    let custom = project(&smtp, |d| d["email"]["templates"] = json!({"code": {"subject": "{{project}} code {{code}}", "html": null}}));
    assert_eq!(custom.email.unwrap().code_template.html, None);
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("password-project.json")).unwrap()).unwrap();
    doc["email"] = json!({"transport": "console", "from": "a@example.com", "templates": {"code": {"text": "{{link}}"}}});
    let e = idflow::project::Project::from_json(&doc.to_string(), &dir()).unwrap_err();
    assert!(e.message.contains("{{link}}"), "{e}");
}

/// The demo's flow (`idflow serve` without a project): sign up with a
/// password, verify the email by a code: `amr` is pwd, otp and mfa; a later
/// password sign-in is pwd alone.
#[tokio::test]
async fn two_methods_in_one_execution_are_mfa() {
    let smtp = SmtpServer::start().await;
    let demo = std::path::PathBuf::from(format!("{}/../bindings/cli/demo/sign-up-or-in.json", env!("CARGO_MANIFEST_DIR")));
    let p = project(&smtp, |d| d["flows"] = json!([demo.to_str().unwrap()]));
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let engine = p.engine(key.clone(), Arc::new(MemoryStore::new())).unwrap();
    let s = engine.start("sign-up-or-in", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "welcome", "signUp", obj(json!({"email": "max@example.com", "password": "a long demo password"}))).await.unwrap();
    assert_eq!(r.step_id.as_deref(), Some("checkEmail"), "{:?}", r.error);
    let offer = engine.next(&s.execution_id, "checkEmail", "verify", obj(json!({"code": smtp.last_code().await}))).await.unwrap();
    assert_eq!(offer.step_id.as_deref(), Some("offerApp"), "{:?}", offer.error);
    let done = engine.next(&s.execution_id, "offerApp", "skip", Map::new()).await.unwrap();
    assert_eq!(amr(&key, &done), json!(["pwd", "otp", "mfa"]));
    let s = engine.start("sign-up-or-in", Map::new(), None).await.unwrap();
    let again = engine.next(&s.execution_id, "welcome", "signIn", obj(json!({"email": "max@example.com", "password": "a long demo password"}))).await.unwrap();
    assert_eq!(amr(&key, &again), json!(["pwd"]));
}

/// Pre-registration: someone signs up with another person's address and a
/// password of theirs. When the owner proves the address with a code, that
/// password is gone, so the account is the owner's alone.
#[tokio::test]
async fn the_owner_proving_an_address_removes_a_password_set_by_someone_else() {
    let smtp = SmtpServer::start().await;
    let (engine, _, store) = setup(&smtp);
    let s = engine.start("password", Map::new(), None).await.unwrap();
    let up = engine.next(&s.execution_id, "welcome", "signUp", obj(json!({"email": "vic@example.com", "password": "attacker's password"}))).await.unwrap();
    assert_eq!(up.status, FlowStatus::Completed);
    let attacker_signed_in = u64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap();
    let execution = ask(&engine, "vic@example.com").await;
    let done = enter(&engine, &execution, "signIn", json!({"code": smtp.last_code().await})).await;
    assert_eq!(done.status, FlowStatus::Completed);
    let user = store.user_by_login_id("vic@example.com").unwrap().unwrap();
    assert!(user.verified_email);
    assert_eq!(store.password_hash(&user.user_id).unwrap(), None, "the pre-registered password is removed");
    assert!(idflow::users::sessions::sign_in_ended(store.as_ref(), &user.user_id, attacker_signed_in).unwrap(), "and the sign-ins made with it end");
    let s = engine.start("password", Map::new(), None).await.unwrap();
    let attacker = engine.next(&s.execution_id, "welcome", "signIn", obj(json!({"email": "vic@example.com", "password": "attacker's password"}))).await.unwrap();
    assert_eq!(attacker.error.unwrap().code, ErrorCode::InvalidCredentials);
}

#[tokio::test]
async fn addresses_are_plain_and_mail_floods_are_bounded() {
    let smtp = SmtpServer::start().await;
    let (engine, _, _) = setup(&smtp);
    // A display name would let the mailer deliver elsewhere than the address kept.
    let s = engine.start("email-code", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "ask", "send", obj(json!({"email": "x<attacker@evil.example>"}))).await.unwrap();
    assert_eq!(r.step_id.as_deref(), Some("ask"));
    assert!(smtp.messages().is_empty(), "nothing was sent");
    // Ten codes an hour to one address, over every execution.
    for _ in 0..10 {
        ask(&engine, "flood@example.com").await;
    }
    let s = engine.start("email-code", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "ask", "send", obj(json!({"email": "flood@example.com"}))).await.unwrap();
    assert_eq!(r.error.unwrap().code, ErrorCode::RateLimited);
    assert_eq!(smtp.messages().len(), 10);
}

/// A message template may greet the flow's user by name.
#[tokio::test]
async fn templates_fill_the_flow_users_fields() {
    let smtp = SmtpServer::start().await;
    let flow = json!({"id": "step-up", "start": "ask", "steps": {
        "ask": {"type": "screen", "inputs": [{"name": "email", "type": "email"}, {"name": "password", "type": "password"}], "next": "pw"},
        "pw": {"type": "password", "action": "signIn", "next": "send"},
        "send": {"type": "emailCode", "action": "send", "next": "enter"},
        "enter": {"type": "screen", "inputs": [{"name": "code", "type": "text"}], "next": "verify"},
        "verify": {"type": "emailCode", "action": "verify", "next": "done"},
        "done": {"type": "end"}}});
    let p = project(&smtp, |d| {
        d["flows"] = json!([flow]);
        d["email"]["templates"] = json!({"code": {"subject": "Hi {{user.givenName}}: {{code}}"}});
    });
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let store = Arc::new(MemoryStore::new());
    let engine = p.engine(key.clone(), store.clone()).unwrap();
    let user = idflow::users::create_user(store.as_ref(), "ann@example.com", &obj(json!({"givenName": "Ann"}))).unwrap();
    idflow::users::password::set(store.as_ref(), engine.passwords(), &user.user_id, "a long enough secret".into()).await.unwrap();
    let s = engine.start("step-up", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "ask", "submit", obj(json!({"email": "ann@example.com", "password": "a long enough secret"}))).await.unwrap();
    assert_eq!(r.step_id.as_deref(), Some("enter"), "{:?}", r.error);
    let code = smtp.last_code().await;
    assert!(smtp.messages().last().unwrap().contains(&format!("Subject: Hi Ann: {code}")));
    let done = engine.next(&s.execution_id, "enter", "submit", obj(json!({"code": code}))).await.unwrap();
    assert_eq!(amr(&key, &done), json!(["pwd", "otp", "mfa"]), "a password then a code: two factors");
}

/// `auth.*` tells a condition what this execution verified and what the user
/// has: tests/flows/step-up.json steps a password sign-in up to a mailed
/// code, and lets the user through once `mfa` is among the methods.
#[tokio::test]
async fn conditions_read_what_was_verified_and_what_the_user_has() {
    let smtp = SmtpServer::start().await;
    let p = project(&smtp, |d| d["flows"] = json!(["step-up.json"]));
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let store = Arc::new(MemoryStore::new());
    let engine = p.engine(key.clone(), store.clone()).unwrap();
    let user = idflow::users::create_user(store.as_ref(), "ann@example.com", &Map::new()).unwrap();
    idflow::users::password::set(store.as_ref(), engine.passwords(), &user.user_id, "a long enough secret".into()).await.unwrap();
    let s = engine.start("step-up", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "ask", "submit", obj(json!({"email": "ann@example.com", "password": "a long enough secret"}))).await.unwrap();
    assert_eq!(r.step_id.as_deref(), Some("enter"), "a password alone is stepped up: {:?}", r.error);
    let kept = store.execution(&s.execution_id).unwrap().unwrap();
    assert_eq!(kept.context["auth"], json!({"methods": ["pwd"], "enrolled": {"password": true, "totp": false, "passkeys": 0, "verifiedEmail": false}}));
    let done = engine.next(&s.execution_id, "enter", "submit", obj(json!({"code": smtp.last_code().await}))).await.unwrap();
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    assert_eq!(amr(&key, &done), json!(["pwd", "otp", "mfa"]));
    assert!(store.user(&user.user_id).unwrap().unwrap().verified_email);
}

/// A flow cannot write `auth.*` itself: no step or input path can reach it,
/// and a flow start's input cannot either.
#[tokio::test]
async fn a_flow_start_cannot_claim_verified_methods() {
    let smtp = SmtpServer::start().await;
    let p = project(&smtp, |d| d["flows"] = json!(["step-up.json"]));
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let store = Arc::new(MemoryStore::new());
    let engine = p.engine(key, store.clone()).unwrap();
    let s = engine.start("step-up", obj(json!({"auth": {"methods": ["mfa"]}, "auth.methods": ["mfa"]})), None).await.unwrap();
    let kept = store.execution(&s.execution_id).unwrap().unwrap();
    assert!(kept.context.get("auth").is_none(), "{}", kept.context);
}

/// The `http` transport: each code is a JSON request to a mail API through
/// a project connector (its auth header included), shaped by the body
/// template; an API that refuses makes the step fail with `network`.
#[tokio::test]
async fn codes_go_through_a_mail_api_by_http() {
    use support::{Reply, TestServer};
    let smtp = SmtpServer::start().await;
    let api = TestServer::start().await;
    api.route("/v3/mail/send", Reply::json(202, &json!({"id": "msg-1"})));
    let p = project(&smtp, |d| {
        d["connectors"] = json!([{"id": "mailer", "type": "http", "baseUrl": api.url(), "auth": {"type": "bearer", "token": "mail-api-key"}}]);
        d["email"] = json!({"transport": "http", "from": "Example <no-reply@example.com>",
            "http": {"connector": "mailer", "endpoint": "/v3/mail/send",
                     "body": {"personalizations": [{"to": [{"email": "{{to}}"}]}], "from": {"email": "{{from}}"}, "subject": "{{subject}}",
                              "content": [{"type": "text/plain", "value": "{{text}}"}, {"type": "text/html", "value": "{{html}}"}]}}});
    });
    let engine = p.engine(Key::generate(Algorithm::ES256, None).unwrap(), Arc::new(MemoryStore::new())).unwrap();
    let execution = ask(&engine, "Kim@Example.com").await;
    let sent = api.requests().into_iter().find(|r| r.target == "/v3/mail/send").expect("the API was called");
    assert_eq!(sent.method, "POST");
    assert!(sent.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v == "Bearer mail-api-key"));
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["personalizations"][0]["to"][0]["email"], "kim@example.com");
    assert_eq!(body["from"]["email"], "Example <no-reply@example.com>");
    let subject = body["subject"].as_str().unwrap();
    let code = subject.rsplit(' ').next().unwrap().to_owned();
    assert!(subject.starts_with("Your sign-in code: ") && code.len() == 6, "{subject}");
    assert!(body["content"][1]["value"].as_str().unwrap().contains(&format!("<strong>{code}</strong>")));
    let done = enter(&engine, &execution, "signIn", json!({"code": code})).await;
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    assert!(smtp.messages().is_empty(), "nothing went by SMTP");

    api.route("/v3/mail/send", Reply::json(503, &json!({"error": "busy"})));
    let s = engine.start("email-code", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "ask", "send", obj(json!({"email": "kim@example.com"}))).await.unwrap();
    assert_eq!(r.error.unwrap().code, ErrorCode::Network);

    // A transport naming a connector the project lacks is refused at load.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("password-project.json")).unwrap()).unwrap();
    doc["email"] = json!({"transport": "http", "from": "a@example.com", "http": {"connector": "nowhere"}});
    let e = idflow::project::Project::from_json(&doc.to_string(), &dir()).unwrap_err();
    assert!(e.message.contains("nowhere"), "{e}");
}
