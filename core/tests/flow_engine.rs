//! The flow engine end to end, with a real HTTP server on 127.0.0.1 playing
//! the third-party APIs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use idflow::connectors::{HttpConnector, HttpConnectorConfig};
use idflow::flow::{parse_flow, EngineConfig, FlowEngine, FlowStatus};
use idflow::jose::{self, Algorithm, Key, Validation};
use idflow::store::{MemoryStore, Store};
use idflow::user::{User, UserStatus};
use idflow::ErrorCode;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use support::{Reply, TestServer};

const ISSUER: &str = "http://127.0.0.1:8080/local";

fn read_flow(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../tests/flows/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn engine(server: &TestServer, key: &Key, store: Arc<MemoryStore>) -> FlowEngine {
    let mut engine = FlowEngine::new(EngineConfig::new(ISSUER, key.clone()), store);
    for id in ["random", "auth"] {
        let config = json!({"id": id, "type": "http", "baseUrl": format!("{}/{id}", server.url()), "timeout": 2});
        engine.add_connector(HttpConnector::new(HttpConnectorConfig::from_json(&config).unwrap()).unwrap());
    }
    engine
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A session JWT as its consumer checks it (RFC 8725 §3.11): signature,
/// issuer, audience = the project id, and `typ: session+jwt`, so that
/// another JWT of the same issuer (an access token) is not taken for one.
fn verify_session(key: &Key, jwt: &str) -> Map<String, Value> {
    let mut v = Validation::new(&[Algorithm::ES256]);
    v.issuer = Some(ISSUER.into());
    v.audience = vec!["local".into()];
    let token = jose::verify(jwt, &key.public_key().unwrap(), &v).unwrap();
    assert_eq!(token.header["typ"], "session+jwt");
    token.claims
}

#[tokio::test]
async fn documented_connector_flow_issues_a_session_with_dob() {
    let server = TestServer::start().await;
    server.route(
        "/random/users",
        Reply::json(200, &json!({"id": 4262, "first_name": "Jerrold", "email": "Jerrold.Kerluke@email.com",
            "date_of_birth": "1979-10-03", "employment": {"title": "Chief Hospitality Producer"}})),
    );
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut engine = engine(&server, &key, store.clone());
    engine.add_flow(parse_flow(&read_flow("random-user.json")).unwrap()).unwrap();
    let response = engine.start("random-user", Map::new(), None).await.unwrap();
    assert_eq!(response.status, FlowStatus::Completed, "{:?}", response.error);
    let auth = response.auth_info.clone().unwrap();
    let claims = verify_session(&key, &auth.session_jwt);
    assert_eq!(claims["dob"], json!("1979-10-03"));
    assert_eq!(claims["title"], json!("Chief Hospitality Producer"));
    assert_eq!(claims["source"], json!("random-data-api"));
    assert_eq!(claims["sub"], auth.user["userId"]);
    assert_eq!(claims["aud"], "local");
    assert!(!claims.contains_key("amr"), "no step verified anything: {claims:?}");
    assert_eq!(auth.user["loginIds"], json!(["jerrold.kerluke@email.com"]));
    // The refresh JWT is recorded in the store, typed and for the project too.
    let refresh = jose::decode_unverified(&auth.refresh_jwt).unwrap();
    assert_eq!((&refresh.header["typ"], &refresh.claims["aud"]), (&json!("refresh+jwt"), &json!("local")));
    let jti = refresh.claims["jti"].as_str().unwrap();
    assert!(store.refresh(jti).unwrap().is_some());
    // The flow API's JSON shape.
    let wire = response.to_json();
    assert_eq!(wire["status"], "completed");
    assert!(wire["authInfo"]["sessionJwt"].is_string());
    // A second run signs the same user in (signUpOrIn).
    let again = engine.start("random-user", Map::new(), None).await.unwrap();
    assert_eq!(again.auth_info.unwrap().user["userId"], auth.user["userId"]);
    assert_eq!(server.requests()[0].target, "/random/users?size=1");
}

/// The bring-your-own-IdP flow (tests/flows/byo-idp.json), shared with the
/// Python and Node suites.
fn byo_idp_flow() -> String {
    read_flow("byo-idp.json")
}

#[tokio::test]
async fn bring_your_own_idp() {
    let server = TestServer::start().await;
    server.route("/auth/verify", Reply::json(200, &json!({"valid": true, "displayName": "Ann Example", "department": "R&D"})));
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let store = Arc::new(MemoryStore::new());
    store.create_user(&User::new("U-ann".into(), "ann@example.com", 1)).unwrap();
    let mut engine = engine(&server, &key, store.clone());
    engine.add_flow(parse_flow(&byo_idp_flow()).unwrap()).unwrap();

    // Unknown user: the API says valid, but signIn needs an existing user.
    let first = engine.start("byo-idp", Map::new(), None).await.unwrap();
    assert_eq!((first.status, first.step_id.as_deref()), (FlowStatus::Waiting, Some("login")));
    assert_eq!(first.screen.as_ref().unwrap()["inputs"][1]["type"], "password");
    let answer = obj(json!({"email": "nobody@example.com", "password": "pw"}));
    let r = engine.next(&first.execution_id, "login", "submit", answer).await.unwrap();
    assert_eq!(r.status, FlowStatus::Failed);
    assert_eq!(r.error.map(|e| e.code), Some(ErrorCode::UserNotFound));

    // Known user: signed in, profile copied from the connector's answer.
    let start = engine.start("byo-idp", Map::new(), None).await.unwrap();
    let answer = obj(json!({"email": "Ann@Example.com", "password": "p&ss \"word\""}));
    let r = engine.next(&start.execution_id, "login", "submit", answer).await.unwrap();
    assert_eq!(r.status, FlowStatus::Completed, "{:?}", r.error);
    let auth = r.auth_info.unwrap();
    assert_eq!(auth.user["userId"], "U-ann");
    assert_eq!(auth.user["name"], "Ann Example");
    assert_eq!(auth.user["customAttributes"]["department"], "R&D");
    // The connector answered "valid", but nothing in idflow checked the
    // password, so the session names no authentication method.
    assert!(!verify_session(&key, &auth.session_jwt).contains_key("amr"));
    let sent = server.requests().pop().unwrap();
    // The connector gets what the user typed; login ids are normalised only for lookup.
    assert_eq!(sent.json(), json!({"username": "Ann@Example.com", "password": "p&ss \"word\""}));
    assert_eq!(store.user("U-ann").unwrap().unwrap().name.as_deref(), Some("Ann Example"));

    // The API says invalid: the condition branches to the denied end, no session.
    server.route("/auth/verify", Reply::json(200, &json!({"valid": false})));
    let start = engine.start("byo-idp", Map::new(), None).await.unwrap();
    let r = engine.next(&start.execution_id, "login", "submit", obj(json!({"email": "ann@example.com", "password": "x"}))).await.unwrap();
    assert_eq!((r.status, r.auth_info.is_none()), (FlowStatus::Completed, true));

    // The API fails: onError takes the denied branch.
    server.route("/auth/verify", Reply::json(500, &json!({})));
    let start = engine.start("byo-idp", Map::new(), None).await.unwrap();
    let r = engine.next(&start.execution_id, "login", "submit", obj(json!({"email": "ann@example.com", "password": "x"}))).await.unwrap();
    assert_eq!((r.status, r.auth_info.is_none()), (FlowStatus::Completed, true));

    // A disabled user cannot sign in.
    server.route("/auth/verify", Reply::json(200, &json!({"valid": true, "displayName": "A", "department": "B"})));
    let mut ann = store.user("U-ann").unwrap().unwrap();
    ann.status = UserStatus::Disabled;
    store.update_user(&ann).unwrap();
    let start = engine.start("byo-idp", Map::new(), None).await.unwrap();
    let r = engine.next(&start.execution_id, "login", "submit", obj(json!({"email": "ann@example.com", "password": "x"}))).await.unwrap();
    assert_eq!(r.error.map(|e| e.code), Some(ErrorCode::AccessDenied));
}

#[tokio::test]
async fn answers_are_checked_replays_refused_and_passwords_not_kept() {
    let server = TestServer::start().await;
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut engine = engine(&server, &key, store.clone());
    let flow = json!({"id": "two-screens", "start": "a", "steps": {
        "a": {"type": "screen", "inputs": [{"name": "email", "type": "email", "required": true}, {"name": "password", "type": "password"}], "next": "b"},
        "b": {"type": "screen", "inputs": [{"name": "plan", "type": "select", "options": ["free", "pro"], "required": true}], "next": "jwt"},
        "jwt": {"type": "generateJwt", "mode": "signUpOrIn", "next": "end"},
        "end": {"type": "end"}}});
    engine.add_flow(parse_flow(&flow.to_string()).unwrap()).unwrap();
    let s = engine.start("two-screens", Map::new(), None).await.unwrap();
    let id = s.execution_id.clone();
    // Bad answers re-show the screen with the reason, and change nothing.
    for bad in [json!({}), json!({"email": "not-an-email"})] {
        let r = engine.next(&id, "a", "submit", obj(bad)).await.unwrap();
        assert_eq!((r.status, r.step_id.as_deref()), (FlowStatus::Waiting, Some("a")));
        assert_eq!(r.error.map(|e| e.code), Some(ErrorCode::InvalidRequest));
    }
    assert_eq!(engine.next(&id, "a", "nope", Map::new()).await.map_err(|e| e.code).err(), Some(ErrorCode::InvalidRequest));
    let r = engine.next(&id, "a", "submit", obj(json!({"email": "new@example.com", "password": "hunter2"}))).await.unwrap();
    assert_eq!(r.step_id.as_deref(), Some("b"));
    // The password is not in the stored execution.
    let stored = store.execution(&id).unwrap().unwrap();
    assert_eq!(stored.context["form"]["email"], "new@example.com");
    assert!(stored.context["form"].get("password").is_none(), "{}", stored.context);
    assert!(!stored.context.to_string().contains("hunter2"));
    assert!(!stored.context.to_string().contains("passwordSeen"), "a typed password is no authentication method");
    // Replaying the first answer is refused.
    let replay = engine.next(&id, "a", "submit", obj(json!({"email": "new@example.com"}))).await;
    assert_eq!(replay.map_err(|e| e.code).err(), Some(ErrorCode::InvalidRequest));
    let r = engine.next(&id, "b", "submit", obj(json!({"plan": "gold"}))).await.unwrap();
    assert_eq!(r.error.map(|e| e.code), Some(ErrorCode::InvalidRequest));
    let r = engine.next(&id, "b", "submit", obj(json!({"plan": "pro"}))).await.unwrap();
    assert_eq!(r.status, FlowStatus::Completed);
    // A finished execution cannot be answered again.
    assert!(engine.next(&id, "b", "submit", obj(json!({"plan": "pro"}))).await.is_err());
    assert_eq!(engine.start("nope", Map::new(), None).await.map_err(|e| e.code).err(), Some(ErrorCode::FlowNotFound));
}

#[tokio::test]
async fn a_cycle_without_a_screen_fails_instead_of_spinning() {
    let server = TestServer::start().await;
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let mut engine = engine(&server, &key, Arc::new(MemoryStore::new()));
    let flow = json!({"id": "loop", "start": "a", "steps": {
        "a": {"type": "customClaims", "claims": [{"key": "n", "type": "static", "value": 1}], "next": "b"},
        "b": {"type": "condition", "branches": [{"when": {"key": "claims.n", "operator": "equals", "value": 1}, "next": "a"}], "else": "end"},
        "end": {"type": "end"}}});
    engine.add_flow(parse_flow(&flow.to_string()).unwrap()).unwrap();
    let r = engine.start("loop", Map::new(), None).await.unwrap();
    assert_eq!(r.status, FlowStatus::Failed);
    assert_eq!(r.error.map(|e| e.code), Some(ErrorCode::InvalidFlow));
}

#[tokio::test]
async fn amr_names_only_methods_this_execution_verified() {
    // RFC 8176: a password typed into a screen proves nothing until a step
    // checks it, and generateJwt only looks the user up; neither may claim a
    // method, neither in the session JWT nor for the OIDC provider.
    let server = TestServer::start().await;
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let mut engine = engine(&server, &key, Arc::new(MemoryStore::new()));
    let flow = json!({"id": "typed-password", "start": "login", "steps": {
        "login": {"type": "screen", "inputs": [{"name": "email", "type": "email", "required": true}, {"name": "password", "type": "password", "required": true}], "next": "jwt"},
        "jwt": {"type": "generateJwt", "mode": "signUpOrIn", "next": "end"},
        "end": {"type": "end"}}});
    engine.add_flow(parse_flow(&flow.to_string()).unwrap()).unwrap();
    let answer = || obj(json!({"email": "pw@example.com", "password": "anything at all"}));
    let s = engine.start("typed-password", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "login", "submit", answer()).await.unwrap();
    assert_eq!(r.status, FlowStatus::Completed, "{:?}", r.error);
    let claims = verify_session(&key, &r.auth_info.unwrap().session_jwt);
    assert!(!claims.contains_key("amr"), "{claims:?}");
    assert_eq!(r.authenticated.unwrap().amr, json!([]));
    // For an authorization request the provider gets the same empty list.
    let s = engine.start("typed-password", Map::new(), Some(json!({"clientId": "app"}))).await.unwrap();
    let r = engine.next(&s.execution_id, "login", "submit", answer()).await.unwrap();
    assert!(r.auth_info.is_none());
    assert_eq!(r.authenticated.unwrap().amr, json!([]));
}

#[tokio::test]
async fn generate_jwt_without_a_login_id_is_a_failed_step() {
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut engine = FlowEngine::new(EngineConfig::new(ISSUER, key), store.clone());
    let bare = json!({"id": "bare", "start": "jwt", "steps": {
        "jwt": {"type": "generateJwt", "mode": "signUpOrIn", "next": "done"},
        "done": {"type": "end"}}});
    let branched = json!({"id": "branched", "start": "jwt", "steps": {
        "jwt": {"type": "generateJwt", "mode": "signUpOrIn", "next": "done", "onError": "ask"},
        "ask": {"type": "screen", "inputs": [{"name": "email", "type": "email", "required": true}], "next": "jwt"},
        "done": {"type": "end"}}});
    engine.add_flow(parse_flow(&bare.to_string()).unwrap()).unwrap();
    engine.add_flow(parse_flow(&branched.to_string()).unwrap()).unwrap();
    // No error branch: the flow fails with the step's code (docs/ARCHITECTURE.md, "Flows").
    let r = engine.start("bare", Map::new(), None).await.unwrap();
    assert_eq!(r.status, FlowStatus::Failed);
    assert_eq!(r.to_json()["error"]["code"], "step_failed");
    assert_eq!(r.error.map(|e| e.code), Some(ErrorCode::StepFailed));
    // With onError: the branch runs and the error is in the context.
    let r = engine.start("branched", Map::new(), None).await.unwrap();
    assert_eq!((r.status, r.step_id.as_deref()), (FlowStatus::Waiting, Some("ask")));
    let stored = store.execution(&r.execution_id).unwrap().unwrap();
    assert_eq!(stored.context["error"]["code"], "step_failed", "{}", stored.context);
    assert_eq!(stored.context["error"]["step"], "jwt");
    let done = engine.next(&r.execution_id, "ask", "submit", obj(json!({"email": "late@example.com"}))).await.unwrap();
    assert_eq!(done.status, FlowStatus::Completed, "{:?}", done.error);
    assert!(done.auth_info.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_answers_exactly_one_wins() {
    let server = TestServer::start().await;
    server.route("/auth/verify", Reply::json(200, &json!({"valid": true, "displayName": "C", "department": "D"})).delay(Duration::from_millis(300)));
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let store = Arc::new(MemoryStore::new());
    store.create_user(&User::new("U-c".into(), "c@example.com", 1)).unwrap();
    let mut engine = engine(&server, &key, store.clone());
    engine.add_flow(parse_flow(&byo_idp_flow()).unwrap()).unwrap();
    let engine = Arc::new(engine);
    let s = engine.start("byo-idp", Map::new(), None).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (engine, id) = (engine.clone(), s.execution_id.clone());
        tasks.push(tokio::spawn(async move {
            engine.next(&id, "login", "submit", obj(json!({"email": "c@example.com", "password": "pw"}))).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                assert_eq!(r.status, FlowStatus::Completed);
                wins += 1;
            }
            Err(e) => assert_eq!(e.code, ErrorCode::InvalidRequest),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(server.requests().len(), 1, "the connector ran once");
}

#[tokio::test]
async fn flows_naming_unknown_connectors_are_refused() {
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let mut engine = FlowEngine::new(EngineConfig::new(ISSUER, key), Arc::new(MemoryStore::new()));
    let err = engine.add_flow(parse_flow(&read_flow("random-user.json")).unwrap()).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidFlow);
}

#[tokio::test]
async fn a_project_file_builds_the_engine() {
    let server = TestServer::start().await;
    server.route("/random/users", Reply::json(200, &json!({"email": "p@example.com", "date_of_birth": "1979-10-03"})));
    let project = json!({
        "projectId": "local", "baseUrl": "http://127.0.0.1:8080", "signing": {"alg": "ES256"},
        "tokens": {"sessionTtl": 120},
        "connectors": [{"id": "random", "type": "http", "baseUrl": format!("{}/random", server.url())}],
        "flows": ["random-user.json", "sign-up-or-in.json"],
        "applications": [{"clientId": "local", "public": true}]
    });
    let dir = std::path::PathBuf::from(format!("{}/../tests/flows", env!("CARGO_MANIFEST_DIR")));
    let p = idflow::project::Project::from_json(&project.to_string(), &dir).unwrap();
    assert_eq!(p.issuer(), "http://127.0.0.1:8080/local");
    assert_eq!(p.flows.len(), 2);
    assert!(p.extra.contains_key("applications"));
    let key = Key::generate(p.signing_alg, None).unwrap();
    let engine = p.engine(key.clone(), Arc::new(MemoryStore::new())).unwrap();
    let r = engine.start("random-user", Map::new(), None).await.unwrap();
    let claims = verify_session(&key, &r.auth_info.unwrap().session_jwt);
    assert_eq!(claims["iss"], "http://127.0.0.1:8080/local");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 120);
    let t = engine.test_connector("random", "GET", "/users", None).await.unwrap();
    assert_eq!((t.ok, t.status), (true, Some(200)));
    assert_eq!(t.to_json()["body"]["date_of_birth"], "1979-10-03");
    assert!(engine.test_connector("nope", "GET", "/", None).await.is_err());
    for (bad, needle) in [
        (json!({"projectId": "x", "baseUrl": "http://h", "colour": 1}), "\"colour\""),
        (json!({"baseUrl": "http://h"}), "projectId"),
        (json!({"projectId": "x", "baseUrl": "http://h", "flows": ["missing.json"]}), "missing.json"),
        (json!({"projectId": "x", "baseUrl": "http://h", "signing": {"alg": "HS256"}}), "asymmetric"),
        (json!({"projectId": "x", "baseUrl": "http://h", "flows": [{"id": "bad"}]}), "flows[0]"),
        // A section of the wrong type is an error, never a silent default.
        (json!({"projectId": "x", "baseUrl": "http://h", "signing": "ES256"}), "signing must be an object"),
        (json!({"projectId": "x", "baseUrl": "http://h", "signing": {"algorithm": "ES256"}}), "unknown field signing.algorithm"),
        (json!({"projectId": "x", "baseUrl": "http://h", "tokens": [600]}), "tokens must be an object"),
        (json!({"projectId": "x", "baseUrl": "http://h", "flows": "sign-up-or-in.json"}), "flows must be an array"),
        (json!({"projectId": "x", "baseUrl": "http://h", "accessKeys": {"id": "k"}}), "accessKeys must be an array"),
        (json!({"projectId": "x", "baseUrl": "http://h", "applications": {"clientId": "a"}}), "applications must be an array"),
        (json!({"projectId": "x", "baseUrl": "http://h", "roles": "admin"}), "roles must be an array"),
        (json!({"projectId": "x", "baseUrl": "http://h", "connectors": {}}), "connectors must be an array"),
        // One id, one thing: a second flow or connector with an id is refused.
        (json!({"projectId": "x", "baseUrl": "http://h", "flows": ["sign-up-or-in.json", "sign-up-or-in.json"]}), "flow id \"sign-up-or-in\" is declared twice"),
        (json!({"projectId": "x", "baseUrl": "http://h", "connectors": [
            {"id": "c", "type": "http", "baseUrl": "http://127.0.0.1:9"}, {"id": "c", "type": "http", "baseUrl": "http://127.0.0.1:8"}]}), "connector id \"c\" is declared twice"),
    ] {
        let err = idflow::project::Project::from_json(&bad.to_string(), &dir).unwrap_err();
        assert!(err.message.contains(needle), "{bad}: {}", err.message);
    }
}

#[tokio::test]
async fn executions_expire() {
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let mut config = EngineConfig::new(ISSUER, key);
    config.execution_ttl = 0;
    let store = Arc::new(MemoryStore::new());
    let mut engine = FlowEngine::new(config, store.clone());
    engine.add_flow(parse_flow(&read_flow("sign-up-or-in.json")).unwrap()).unwrap();
    let r = engine.start("sign-up-or-in", Map::new(), None).await.unwrap();
    let err = engine.next(&r.execution_id, "welcome", "submit", obj(json!({"email": "a@example.com"}))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(err.message.contains("expired"), "{}", err.message);
    assert!(store.execution(&r.execution_id).unwrap().is_none(), "an expired execution is removed");
}

#[tokio::test]
async fn tenants_carry_roles_and_the_permissions_they_grant() {
    let project = json!({
        "projectId": "local", "baseUrl": "http://127.0.0.1:8080", "signing": {"alg": "ES256"},
        "roles": [{"name": "Tenant Admin", "permissions": ["User Admin", "SSO Admin"]}, {"name": "Viewer", "permissions": ["Read", "User Admin"]}],
        "flows": ["sign-up-or-in.json"]
    });
    let dir = std::path::PathBuf::from(format!("{}/../tests/flows", env!("CARGO_MANIFEST_DIR")));
    let p = idflow::project::Project::from_json(&project.to_string(), &dir).unwrap();
    let key = Key::generate(p.signing_alg, None).unwrap();
    let store = Arc::new(MemoryStore::new());
    let engine = p.engine(key.clone(), store.clone()).unwrap();
    let user = idflow::users::create_user(store.as_ref(), "t@example.com", &obj(json!({
        "tenants": [{"tenantId": "T1", "roles": ["Tenant Admin", "Viewer"]}, {"tenantId": "T2"}]}))).unwrap();
    assert_eq!(user.tenants.len(), 2);
    let s = engine.start("sign-up-or-in", Map::new(), None).await.unwrap();
    let r = engine.next(&s.execution_id, "welcome", "submit", obj(json!({"email": "t@example.com"}))).await.unwrap();
    let claims = verify_session(&key, &r.auth_info.unwrap().session_jwt);
    assert_eq!(claims["tenants"]["T1"]["roles"], json!(["Tenant Admin", "Viewer"]));
    assert_eq!(claims["tenants"]["T1"]["permissions"], json!(["User Admin", "SSO Admin", "Read"]));
    assert_eq!(claims["tenants"]["T2"], json!({"roles": [], "permissions": []}));
    let bad = json!({"projectId": "x", "baseUrl": "http://h", "roles": [{"name": "A"}, {"name": "A"}]});
    assert!(idflow::project::Project::from_json(&bad.to_string(), &dir).unwrap_err().message.contains("twice"));
    let bad_tenants = obj(json!({"tenants": [{"roles": ["x"]}]}));
    assert_eq!(idflow::users::update_user(store.as_ref(), &user.user_id, &bad_tenants).map_err(|e| e.code), Err(ErrorCode::InvalidRequest));
}
