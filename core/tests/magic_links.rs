//! Sign-in links by email through the shared flow tests/flows/magic-link.json
//! (the flow API) and through the provider (the hosted page's calls), mailed
//! over SMTP to a server on 127.0.0.1: a link works once, only for the
//! execution that asked, only in the browser that owns it unless the step
//! allows another device, and never spends anything when refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use idflow::flow::{FlowEngine, FlowResponse, FlowStatus};
use idflow::jose::{Algorithm, Key};
use idflow::oidc::provider::{HttpRequest, HttpResponse, Provider};
use idflow::project::Project;
use idflow::store::{MemoryStore, Store};
use idflow::ErrorCode;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use support::flows::{amr, obj};
use support::op::{e2e_dir, set_cookie};
use support::smtp::SmtpServer;

fn dir() -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}/../tests/flows", env!("CARGO_MANIFEST_DIR")))
}

fn smtp_email(smtp: &SmtpServer) -> Value {
    json!({"transport": "smtp", "from": "Example <no-reply@example.com>", "smtp": {"host": "127.0.0.1", "port": smtp.port, "tls": "none", "timeout": 5}})
}

fn setup(smtp: &SmtpServer) -> (FlowEngine, Key, Arc<MemoryStore>) {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("password-project.json")).unwrap()).unwrap();
    doc["flows"] = json!(["magic-link.json"]);
    doc["email"] = smtp_email(smtp);
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let store = Arc::new(MemoryStore::new());
    let engine = Project::from_json(&doc.to_string(), &dir()).unwrap().engine(key.clone(), store.clone()).unwrap();
    (engine, key, store)
}

/// The link in the newest message's text, with its `execution` and `link`
/// query parameters.
async fn last_link(smtp: &SmtpServer) -> (String, HashMap<String, String>) {
    let mail = smtp.last_text().await;
    let start = mail.find("http").expect("a link in the message");
    let link: String = mail[start..].chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
    let query = url::Url::parse(&link).unwrap().query_pairs().into_owned().collect();
    (link, query)
}

/// Starts the flow and asks for a link (`send` or `sendAnyDevice`); the
/// execution id and the mailed link's token.
async fn ask(engine: &FlowEngine, smtp: &SmtpServer, email: &str, how: &str) -> (String, String) {
    let s = engine.start("magic-link", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "ask", how, obj(json!({"email": email}))).await.unwrap();
    assert_eq!((r.status, r.step_id.as_deref()), (FlowStatus::Waiting, Some("wait")), "{:?}", r.error);
    let (link, q) = last_link(smtp).await;
    assert!(link.starts_with("https://app.example.com/sign-in/link?"), "{link}");
    assert_eq!(q["execution"], s.execution_id);
    (s.execution_id, q["link"].clone())
}

async fn answer(engine: &FlowEngine, execution: &str, input: Value) -> FlowResponse {
    engine.next(execution, "wait", "continue", obj(input)).await.unwrap()
}

#[tokio::test]
async fn a_mailed_link_signs_in_once_in_the_execution_that_asked() {
    let smtp = SmtpServer::start().await;
    let (engine, key, store) = setup(&smtp);
    let (execution, token) = ask(&engine, &smtp, "Lin@Example.com", "send").await;
    assert!(smtp.messages().pop().unwrap().contains("Subject: Your sign-in link"));
    let kept = store.record("email_code", &execution).unwrap().unwrap();
    assert!(!kept.to_string().contains(&token), "only a digest of the link's token is stored");
    // Another device cannot approve a link that is not crossDevice, and
    // trying spends nothing.
    for _ in 0..8 {
        let e = engine.approve_link(&execution, &token).unwrap_err();
        assert_eq!(e.code, ErrorCode::AccessDenied, "{e}");
    }
    let done = answer(&engine, &execution, json!({"token": token})).await;
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    assert_eq!(amr(&key, &done), json!(["otp"]));
    assert!(store.user_by_login_id("lin@example.com").unwrap().unwrap().verified_email);
    // Used: the link does not work again, in a new execution of the same person either.
    let (other, _) = ask(&engine, &smtp, "lin@example.com", "send").await;
    assert_eq!(answer(&engine, &other, json!({"token": token})).await.error.unwrap().code, ErrorCode::InvalidCode);
}

#[tokio::test]
async fn foreign_replaced_expired_and_missing_links_are_refused() {
    let smtp = SmtpServer::start().await;
    let (engine, _, store) = setup(&smtp);
    let (a, token_a) = ask(&engine, &smtp, "ann@example.com", "send").await;
    let (b, token_b) = ask(&engine, &smtp, "bob@example.com", "send").await;
    // Bob's link in Ann's execution: wrong.
    let r = answer(&engine, &a, json!({"token": token_b})).await;
    assert_eq!(r.error.as_ref().unwrap().code, ErrorCode::InvalidCode);
    assert_eq!(r.step_id.as_deref(), Some("wait"));
    // A newer send replaces the link.
    let r = engine.next(&b, "wait", "resend", Map::new()).await.unwrap();
    assert_eq!(r.step_id.as_deref(), Some("ask"));
    engine.next(&b, "ask", "send", obj(json!({"email": "bob@example.com"}))).await.unwrap();
    let (_, q) = last_link(&smtp).await;
    assert_ne!(q["link"], token_b);
    assert_eq!(answer(&engine, &b, json!({"token": token_b})).await.error.unwrap().code, ErrorCode::InvalidCode);
    assert_eq!(answer(&engine, &b, json!({"token": q["link"]})).await.status, FlowStatus::Completed);
    // An expired link says so.
    let mut kept = store.record("email_code", &a).unwrap().unwrap();
    kept["expiresAt"] = json!(1);
    store.put_record("email_code", &a, &kept, Some(u64::MAX / 2)).unwrap();
    assert_eq!(answer(&engine, &a, json!({"token": token_a})).await.error.unwrap().code, ErrorCode::ExpiredCode);
    // Continue with nothing to check: told so, and no attempt is spent
    // (eight of them, past the five attempts); a huge token is just wrong.
    let (c, token_c) = ask(&engine, &smtp, "cy@example.com", "send").await;
    for _ in 0..8 {
        assert_eq!(answer(&engine, &c, json!({})).await.error.unwrap().code, ErrorCode::InvalidRequest);
    }
    assert_eq!(answer(&engine, &c, json!({"token": "L".repeat(10_000)})).await.error.unwrap().code, ErrorCode::InvalidCode);
    assert_eq!(answer(&engine, &c, json!({"token": token_c})).await.status, FlowStatus::Completed);
    assert_eq!(engine.approve_link("Enope", "Lnope").unwrap_err().code, ErrorCode::InvalidCode);
}

#[tokio::test]
async fn a_cross_device_link_approves_the_sign_in_that_asked_once() {
    let smtp = SmtpServer::start().await;
    let (engine, key, _) = setup(&smtp);
    let (execution, token) = ask(&engine, &smtp, "dee@example.com", "sendAnyDevice").await;
    assert_eq!(engine.approve_link(&execution, "Lwrong").unwrap_err().code, ErrorCode::InvalidCode);
    engine.approve_link(&execution, &token).unwrap();
    // The approval used the link up.
    assert_eq!(engine.approve_link(&execution, &token).unwrap_err().code, ErrorCode::InvalidCode);
    let done = answer(&engine, &execution, json!({})).await;
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    assert_eq!(amr(&key, &done), json!(["otp"]));
    // Junk tokens from whoever knows the execution id (it is in the link)
    // end the link, not the sign-in: the code still works.
    let (e1, token1) = ask(&engine, &smtp, "fay@example.com", "sendAnyDevice").await;
    let code1 = {
        let mail = smtp.last_text().await;
        let at = mail.find("type the code ").unwrap() + "type the code ".len();
        mail[at..at + 6].to_owned()
    };
    for _ in 0..6 {
        assert_eq!(engine.approve_link(&e1, "Ljunk").unwrap_err().code, ErrorCode::InvalidCode);
    }
    assert_eq!(engine.approve_link(&e1, &token1).unwrap_err().code, ErrorCode::InvalidCode, "the link is spent");
    assert_eq!(answer(&engine, &e1, json!({"code": code1})).await.status, FlowStatus::Completed, "the code is not");
    // The typed code still works instead of a link, on either kind of send.
    let (e2, _) = ask(&engine, &smtp, "eli@example.com", "sendAnyDevice").await;
    let mail = smtp.last_text().await;
    let at = mail.find("type the code ").expect("the code in the message") + "type the code ".len();
    let code = &mail[at..at + 6];
    assert_eq!(answer(&engine, &e2, json!({"code": code})).await.status, FlowStatus::Completed);
}

#[tokio::test]
async fn link_settings_are_checked_when_the_project_loads() {
    let smtp = SmtpServer::start().await;
    let flow = |send: Value| {
        let mut f: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("magic-link.json")).unwrap()).unwrap();
        f["steps"]["send"] = send;
        f
    };
    let load = |flow: Value, templates: Value| {
        let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("password-project.json")).unwrap()).unwrap();
        doc["flows"] = json!([flow]);
        doc["email"] = smtp_email(&smtp);
        doc["email"]["templates"] = templates;
        Project::from_json(&doc.to_string(), &dir()).map(|_| ())
    };
    for (send, needle) in [
        (json!({"type": "emailCode", "action": "send", "link": "ftp://files.example.com/", "next": "wait"}), "link"),
        (json!({"type": "emailCode", "action": "send", "link": "http://app.example.com/link", "next": "wait"}), "https"),
        (json!({"type": "emailCode", "action": "send", "link": "https://app.example.com/#x", "next": "wait"}), "link"),
        (json!({"type": "emailCode", "action": "send", "link": 1, "next": "wait"}), "link"),
        (json!({"type": "emailCode", "action": "send", "crossDevice": true, "next": "wait"}), "crossDevice"),
    ] {
        let e = load(flow(send.clone()), Value::Null).unwrap_err();
        assert!(e.to_string().contains(needle), "{send}: {e}");
    }
    let ok = flow(json!({"type": "emailCode", "action": "send", "link": true, "next": "wait"}));
    load(ok.clone(), Value::Null).unwrap();
    let e = load(ok.clone(), json!({"link": {"text": "Your code is {{code}}"}})).unwrap_err();
    assert!(e.to_string().contains("{{link}}"), "{e}");
    let e = load(ok.clone(), json!({"code": {"text": "Open {{link}}"}})).unwrap_err();
    assert!(e.to_string().contains("{{link}}"), "a code message has no link: {e}");
    load(ok, json!({"link": {"subject": "Hi {{user.givenName}}", "text": "{{link}} or {{code}}"}})).unwrap();
}

#[tokio::test]
async fn a_hosted_page_link_leads_to_the_owner_page_and_needs_an_owner() {
    let smtp = SmtpServer::start().await;
    let mut f: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("magic-link.json")).unwrap()).unwrap();
    f["steps"]["send"]["link"] = json!(true);
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("password-project.json")).unwrap()).unwrap();
    doc["flows"] = json!([f]);
    doc["email"] = smtp_email(&smtp);
    let engine = Project::from_json(&doc.to_string(), &dir()).unwrap().engine(Key::generate(Algorithm::ES256, None).unwrap(), Arc::new(MemoryStore::new())).unwrap();
    // Started without the provider, the execution has no page to lead to.
    let s = engine.start("magic-link", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "ask", "send", obj(json!({"email": "x@example.com"}))).await.unwrap();
    let e = r.error.unwrap();
    assert_eq!((e.code, r.step_id.as_deref()), (ErrorCode::Config, Some("ask")), "{e}");
    assert!(e.message.contains("set link to your page's URL"), "{e}");
    assert!(smtp.messages().is_empty(), "nothing was mailed");
}

// ---- Through the provider: what the hosted page does in each browser. ----

const BASE: &str = "http://127.0.0.1:18182";

fn provider(smtp: &SmtpServer) -> Provider {
    let mut f: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("magic-link.json")).unwrap()).unwrap();
    f["steps"]["send"]["link"] = json!(true);
    f["steps"]["sendAnyDevice"]["link"] = json!(true);
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(e2e_dir().join("project.json")).unwrap()).unwrap();
    doc["baseUrl"] = BASE.into();
    doc["flows"].as_array_mut().unwrap().push(f);
    doc["email"] = smtp_email(smtp);
    Provider::new(Project::from_json(&doc.to_string(), &e2e_dir()).unwrap(), Arc::new(MemoryStore::new())).unwrap()
}

fn body(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

async fn post(p: &Provider, path: &str, v: &Value, cookie: Option<&str>) -> HttpResponse {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if let Some(c) = cookie {
        headers.push(("Cookie".to_owned(), c.to_owned()));
    }
    p.handle(HttpRequest::new("POST", path, headers, v.to_string().into_bytes())).await
}

/// A browser starts the flow and asks for a link; its cookie, the
/// execution and the link's token.
async fn browser_asks(p: &Provider, smtp: &SmtpServer, email: &str, how: &str) -> (String, String, String) {
    let started = post(p, "/v1/flow/start", &json!({"flowId": "magic-link"}), None).await;
    let cookie = set_cookie(&started, "idflow_browser").unwrap();
    let execution = body(&started)["executionId"].as_str().unwrap().to_owned();
    let r = post(p, "/v1/flow/next", &json!({"executionId": execution, "stepId": "ask", "interactionId": how, "input": {"email": email}}), Some(&cookie)).await;
    assert_eq!(body(&r)["stepId"], "wait", "{}", r.text());
    let (link, q) = last_link(smtp).await;
    assert!(link.starts_with(&format!("{BASE}/login/e2e?execution=")), "the hosted page: {link}");
    assert_eq!(q["execution"], execution);
    (cookie, execution, q["link"].clone())
}

#[tokio::test]
async fn a_link_opened_in_another_browser_is_refused_and_spends_nothing() {
    let smtp = SmtpServer::start().await;
    let p = provider(&smtp);
    let (cookie, execution, token) = browser_asks(&p, &smtp, "mo@example.com", "send").await;
    // Another browser (a mail scanner, or an attacker who got the mail):
    // it cannot read the execution, nor approve it.
    let r = post(&p, "/v1/flow/start", &json!({"executionId": execution}), None).await;
    assert_eq!((r.status, body(&r)["error"]["code"].as_str()), (403, Some("access_denied")), "{}", r.text());
    let r = post(&p, "/v1/flow/link", &json!({"executionId": execution, "token": token}), Some("idflow_browser=Bother-browser-0123456789ab")).await;
    assert_eq!((r.status, body(&r)["error"]["code"].as_str()), (403, Some("access_denied")), "{}", r.text());
    let r = post(&p, "/v1/flow/next", &json!({"executionId": execution, "stepId": "wait", "interactionId": "continue", "input": {"token": token}}), None).await;
    assert_eq!(r.status, 403);
    // The browser that asked: the page reads the screen, then answers it with the token.
    let r = post(&p, "/v1/flow/start", &json!({"executionId": execution}), Some(&cookie)).await;
    assert_eq!(body(&r)["stepId"], "wait");
    let r = post(&p, "/v1/flow/next", &json!({"executionId": execution, "stepId": "wait", "interactionId": "continue", "input": {"token": token}}), Some(&cookie)).await;
    assert_eq!(body(&r)["status"], "completed", "{}", r.text());
}

#[tokio::test]
async fn a_cross_device_link_approves_from_another_browser() {
    let smtp = SmtpServer::start().await;
    let p = provider(&smtp);
    let (cookie, execution, token) = browser_asks(&p, &smtp, "nia@example.com", "sendAnyDevice").await;
    for bad in [json!({"executionId": execution}), json!({"executionId": execution, "token": 7}), json!([])] {
        let r = post(&p, "/v1/flow/link", &bad, None).await;
        assert_eq!((r.status, body(&r)["error"]["code"].as_str()), (400, Some("invalid_request")), "{bad}");
    }
    let r = post(&p, "/v1/flow/link", &json!({"executionId": execution, "token": token}), None).await;
    assert_eq!((r.status, body(&r)), (200, json!({"status": "approved"})));
    let r = post(&p, "/v1/flow/link", &json!({"executionId": execution, "token": token}), None).await;
    assert_eq!(body(&r)["error"]["code"], "invalid_code", "used once");
    // The approval is not the other browser's: only the asking one continues.
    let r = post(&p, "/v1/flow/next", &json!({"executionId": execution, "stepId": "wait", "interactionId": "continue", "input": {}}), None).await;
    assert_eq!(r.status, 403);
    let r = post(&p, "/v1/flow/next", &json!({"executionId": execution, "stepId": "wait", "interactionId": "continue", "input": {}}), Some(&cookie)).await;
    assert_eq!(body(&r)["status"], "completed", "{}", r.text());
    let r = p.handle(HttpRequest::new("GET", "/v1/flow/link", vec![], vec![])).await;
    assert_eq!(r.status, 405);
}
