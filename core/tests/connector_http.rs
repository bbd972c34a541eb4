//! The generic HTTP connector against a real HTTP server on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use idflow::connectors::{ConnectorCall, HttpConnector, HttpConnectorConfig};
use idflow::flow::template::{render_header, render_json, render_url};
use idflow::flow::{parse_flow, Context, EngineConfig, FlowEngine, FlowStatus, Method};
use idflow::jose::{self, Algorithm, Key};
use idflow::store::MemoryStore;
use idflow::ErrorCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use support::{Reply, TestServer};

/// The user record the platform docs show for the random-data API.
fn random_user() -> serde_json::Value {
    json!({"id": 4262, "uid": "c6a1b2c3", "first_name": "Jerrold", "last_name": "Kerluke",
           "email": "jerrold.kerluke@email.com", "date_of_birth": "1979-10-03",
           "employment": {"title": "Chief Hospitality Producer", "key_skill": "Teamwork"}})
}

fn connector(server: &TestServer, extra: serde_json::Value) -> HttpConnector {
    let mut config = json!({"id": "random", "type": "http", "baseUrl": format!("{}/api", server.url())});
    if let (Some(c), serde_json::Value::Object(e)) = (config.as_object_mut(), extra) {
        c.extend(e);
    }
    HttpConnector::new(HttpConnectorConfig::from_json(&config).unwrap()).unwrap()
}

fn get(endpoint: &str) -> ConnectorCall {
    ConnectorCall { method: Method::Get, endpoint: endpoint.into(), headers: vec![], body: None, timeout: None }
}

#[tokio::test]
async fn documented_random_user_lands_in_context() {
    let server = TestServer::start().await;
    server.route("/api/users", Reply::json(200, &random_user()).header("X-Trace", "t1"));
    let c = connector(&server, json!({"headers": {"X-Client": "idflow"}}));
    let response = c.call(&get("/users?size=1")).await.unwrap();
    assert_eq!(response.status, 200);
    let mut ctx = Context::new();
    ctx.set("connectors.random", response.context_value()).unwrap();
    ctx.set("connectorResponses.random", response.http_value()).unwrap();
    assert_eq!(ctx.get("connectors.random"), Some(&random_user()), "the body exactly as returned");
    assert_eq!(ctx.get("connectors.random.date_of_birth"), Some(&json!("1979-10-03")));
    assert_eq!(ctx.get("connectors.random.employment.title"), Some(&json!("Chief Hospitality Producer")));
    assert_eq!(ctx.get("connectorResponses.random.body.first_name"), Some(&json!("Jerrold")));
    assert_eq!(ctx.get("connectorResponses.random.status"), Some(&json!(200)));
    assert_eq!(ctx.get("connectorResponses.random.headers.x-trace"), Some(&json!("t1")));
    let req = &server.requests()[0];
    assert_eq!((req.method.as_str(), req.target.as_str()), ("GET", "/api/users?size=1"));
    assert_eq!(req.header("x-client"), Some("idflow"));
}

#[tokio::test]
async fn response_fields_named_like_http_metadata_are_not_shadowed() {
    // An API whose own fields are called status, headers and body: the flow
    // reads them as returned, and the HTTP metadata at connectorResponses.
    let server = TestServer::start().await;
    server.route("/api/accounts/7", Reply::json(200, &json!({"status": "active", "headers": "h", "body": "b"})).header("X-Trace", "t2"));
    server.route("/api/list", Reply::json(200, &json!([{"id": 1}, {"id": 2}])));
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let mut engine = FlowEngine::new(EngineConfig::new("http://127.0.0.1:8080/local", key), Arc::new(MemoryStore::new()));
    engine.add_connector(connector(&server, json!({"id": "acct"})));
    let flow = json!({"id": "account", "start": "acct", "steps": {
        "acct": {"type": "connector", "connector": "acct", "method": "GET", "endpoint": "/accounts/7", "contextKey": "acct", "next": "list"},
        "list": {"type": "connector", "connector": "acct", "method": "GET", "endpoint": "/list", "contextKey": "list", "next": "check"},
        "check": {"type": "condition", "branches": [{"when": {"and": [
            {"key": "connectors.acct.status", "operator": "equals", "value": "active"},
            {"key": "connectorResponses.acct.status", "operator": "equals", "value": 200}]}, "next": "claims"}], "else": "denied"},
        "claims": {"type": "customClaims", "claims": [
            {"key": "accountStatus", "type": "dynamic", "value": "connectors.acct.status"},
            {"key": "accountHeaders", "type": "dynamic", "value": "connectors.acct.headers"},
            {"key": "accountBody", "type": "dynamic", "value": "connectors.acct.body"},
            {"key": "httpStatus", "type": "dynamic", "value": "connectorResponses.acct.status"},
            {"key": "trace", "type": "dynamic", "value": "connectorResponses.acct.headers.x-trace"},
            {"key": "raw", "type": "dynamic", "value": "connectorResponses.acct.body"},
            {"key": "secondId", "type": "dynamic", "value": "connectors.list.1.id"}], "next": "jwt"},
        "jwt": {"type": "generateJwt", "mode": "signUpOrIn", "next": "done"},
        "denied": {"type": "end"},
        "done": {"type": "end"}}});
    engine.add_flow(parse_flow(&flow.to_string()).unwrap()).unwrap();
    let input = json!({"email": "acct@example.com"}).as_object().cloned().unwrap();
    let r = engine.start("account", input, None).await.unwrap();
    assert_eq!(r.status, FlowStatus::Completed, "{:?}", r.error);
    let auth = r.auth_info.expect("the condition saw status \"active\" and HTTP 200");
    let claims = jose::decode_unverified(&auth.session_jwt).unwrap().claims;
    assert_eq!(claims["accountStatus"], "active");
    assert_eq!(claims["accountHeaders"], "h");
    assert_eq!(claims["accountBody"], "b");
    assert_eq!(claims["httpStatus"], 200);
    assert_eq!(claims["trace"], "t2");
    assert_eq!(claims["raw"], json!({"status": "active", "headers": "h", "body": "b"}));
    assert_eq!(claims["secondId"], 2, "a non-object body is the value itself");
}

#[tokio::test]
async fn auth_modes_and_post_bodies() {
    let server = TestServer::start().await;
    server.route("/api/login", Reply::json(200, &json!({"valid": true})));
    std::env::set_var("IDFLOW_TEST_CONNECTOR_TOKEN", "s3cr3t");
    for (auth, header, expected) in [
        (json!({"type": "bearer", "token": "${IDFLOW_TEST_CONNECTOR_TOKEN}"}), "authorization", "Bearer s3cr3t"),
        (json!({"type": "basic", "username": "u", "password": "p"}), "authorization", "Basic dTpw"),
        (json!({"type": "apiKey", "header": "X-Api-Key", "key": "k1"}), "x-api-key", "k1"),
    ] {
        let c = connector(&server, json!({"auth": auth}));
        let mut ctx = Context::new();
        ctx.set("form.email", json!("a\"b@example.com")).unwrap();
        ctx.set("form.password", json!("pa ss&=?")).unwrap();
        let body = render_json(&json!({"user": "{{form.email}}", "password": "{{form.password}}"}), &ctx).unwrap();
        let call = ConnectorCall { method: Method::Post, endpoint: "/login".into(), headers: vec![], body: Some(body), timeout: None };
        assert_eq!(c.call(&call).await.unwrap().body, json!({"valid": true}));
        let req = server.requests().pop().unwrap();
        assert_eq!(req.header(header), Some(expected));
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.json(), json!({"user": "a\"b@example.com", "password": "pa ss&=?"}));
    }
    let missing = HttpConnectorConfig::from_json(&json!({"id": "x", "baseUrl": "http://127.0.0.1/", "auth": {"type": "bearer", "token": "${IDFLOW_TEST_UNSET_VAR_9}"}}));
    assert_eq!(missing.map_err(|e| (e.code, e.message.contains("IDFLOW_TEST_UNSET_VAR_9"))), Err((ErrorCode::Config, true)));
}

#[tokio::test]
async fn template_values_cannot_change_the_request_shape() {
    let server = TestServer::start().await;
    server.route("/api/search", Reply::json(200, &json!({})));
    let c = connector(&server, json!({}));
    let mut ctx = Context::new();
    ctx.set("form.q", json!("a&b=c?d#e/f")).unwrap();
    ctx.set("form.evil", json!("x\r\nX-Injected: 1")).unwrap();
    let endpoint = render_url("/search?q={{form.q}}", &ctx).unwrap();
    c.call(&get(&endpoint)).await.unwrap();
    assert_eq!(server.requests()[0].target, "/api/search?q=a%26b%3Dc%3Fd%23e%2Ff");
    assert_eq!(render_header("{{form.evil}}", &ctx).map_err(|e| e.code), Err(ErrorCode::StepFailed));
}

#[tokio::test]
async fn failures_have_their_own_codes() {
    let server = TestServer::start().await;
    server.route("/api/500", Reply::json(500, &json!({"error": "boom"})));
    server.route("/api/slow", Reply::json(200, &json!({})).delay(Duration::from_millis(1500)));
    server.route("/api/garbage", Reply::text(200, "<html>not json</html>"));
    server.route("/api/huge", Reply::text(200, vec![b'x'; 5 * 1024 * 1024]));
    server.route("/api/redirect", Reply::text(302, "").header("Location", "/api/garbage"));
    let c = connector(&server, json!({}));
    let err = c.call(&get("/500")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ConnectorFailed);
    assert!(err.message.contains("500"), "{}", err.message);
    let slow = ConnectorCall { timeout: Some(0.3), ..get("/slow") };
    assert_eq!(c.call(&slow).await.map_err(|e| e.code), Err(ErrorCode::ConnectorTimeout));
    assert_eq!(c.call(&get("/garbage")).await.unwrap().body, json!("<html>not json</html>"));
    assert_eq!(c.call(&get("/huge")).await.map_err(|e| e.code), Err(ErrorCode::ConnectorFailed));
    // Redirects are not followed by default: the 302 itself is a failure.
    assert_eq!(c.call(&get("/redirect")).await.map_err(|e| e.code), Err(ErrorCode::ConnectorFailed));
    let follows = connector(&server, json!({"followRedirects": true}));
    assert_eq!(follows.call(&get("/redirect")).await.unwrap().body, json!("<html>not json</html>"));
    // Connection refused: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = HttpConnector::new(HttpConnectorConfig::from_json(&json!({"id": "gone", "baseUrl": format!("http://127.0.0.1:{port}")})).unwrap()).unwrap();
    let err = refused.call(&get("/")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ConnectorFailed);
    assert!(err.message.contains("connect"), "{}", err.message);
}

#[tokio::test]
async fn test_panel_reports_answers_and_errors() {
    let server = TestServer::start().await;
    server.route("/api/users", Reply::json(200, &random_user()));
    server.route("/api/500", Reply::json(500, &json!({"error": "boom"})));
    let c = connector(&server, json!({}));
    let ok = c.test(&get("/users")).await;
    assert!(ok.ok && ok.error.is_none());
    assert_eq!(ok.status, Some(200));
    assert_eq!(ok.body["date_of_birth"], json!("1979-10-03"));
    assert!(ok.duration_ms >= 0.0);
    let bad = c.test(&get("/500")).await;
    assert!(!bad.ok);
    assert_eq!(bad.status, Some(500));
    assert_eq!(bad.body, json!({"error": "boom"}));
    assert_eq!(bad.error.map(|e| e.code), Some(ErrorCode::ConnectorFailed));
}

#[test]
fn config_errors_name_the_field() {
    for (config, needle) in [
        (json!({"baseUrl": "http://x"}), "needs id"),
        (json!({"id": "a"}), "needs baseUrl"),
        (json!({"id": "a", "baseUrl": "ftp://x"}), "http or https"),
        (json!({"id": "a", "baseUrl": "http://x", "colour": 1}), "\"colour\""),
        (json!({"id": "a", "baseUrl": "http://x", "auth": {"type": "magic"}}), "magic"),
        (json!({"id": "a", "baseUrl": "http://x", "timeout": 0}), "timeout"),
        (json!({"id": "a", "type": "grpc", "baseUrl": "http://x"}), "grpc"),
    ] {
        let err = HttpConnectorConfig::from_json(&config).unwrap_err();
        assert_eq!(err.code, ErrorCode::Config);
        assert!(err.message.contains(needle), "{config}: {}", err.message);
    }
}
