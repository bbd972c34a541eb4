//! The management API (`/v1/mgmt/...`) through the provider's HTTP edge:
//! off without `management.keys`, a Bearer key required (failures rate
//! limited per address), and the users API and key rotation with the
//! bindings' error codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use idflow::oidc::provider::{HttpRequest, HttpResponse, Provider};
use idflow::project::Project;
use idflow::store::MemoryStore;
use serde_json::{json, Value};
use std::sync::Arc;
use support::op::e2e_dir;

const SECRET: &str = "mgmt-secret-0123456789abcdef0123456789";

fn provider(edit: impl FnOnce(&mut Value)) -> Provider {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(e2e_dir().join("project.json")).unwrap()).unwrap();
    doc["baseUrl"] = "http://127.0.0.1:18183".into();
    doc["management"] = json!({"keys": [{"id": "ops", "secret": SECRET}]});
    doc["rateLimits"] = json!({"clientAuthFailuresPerIp": 3});
    edit(&mut doc);
    Provider::new(Project::from_json(&doc.to_string(), &e2e_dir()).unwrap(), Arc::new(MemoryStore::new())).unwrap()
}

async fn call(p: &Provider, method: &str, target: &str, body: Option<Value>, secret: Option<&str>, peer: &str) -> (u16, Value, HttpResponse) {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if let Some(s) = secret {
        headers.push(("Authorization".to_owned(), format!("Bearer {s}")));
    }
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let r = p.handle(HttpRequest::new(method, target, headers, body).with_peer_text(Some(peer)).unwrap()).await;
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null), r)
}

async fn ok(p: &Provider, method: &str, target: &str, body: Option<Value>) -> (u16, Value) {
    let (status, v, _) = call(p, method, target, body, Some(SECRET), "192.0.2.1").await;
    (status, v)
}

#[tokio::test]
async fn the_api_is_off_without_keys_and_needs_one_with_them() {
    let off = provider(|d| {
        d.as_object_mut().unwrap().remove("management");
    });
    assert_eq!(call(&off, "GET", "/v1/mgmt/users", None, Some(SECRET), "192.0.2.1").await.0, 404);
    let p = provider(|_| {});
    let (status, v, r) = call(&p, "GET", "/v1/mgmt/users", None, None, "192.0.2.9").await;
    assert_eq!((status, v["error"]["code"].as_str()), (401, Some("invalid_client")));
    assert!(r.header("WWW-Authenticate").unwrap().starts_with("Bearer"));
    // Guessing from one address: after three failures even the right key waits.
    for _ in 0..2 {
        assert_eq!(call(&p, "GET", "/v1/mgmt/users", None, Some("mgmt-secret-guess-0123456789abcdef0123"), "192.0.2.9").await.0, 401);
    }
    let (status, v, _) = call(&p, "GET", "/v1/mgmt/users", None, Some(SECRET), "192.0.2.9").await;
    assert_eq!((status, v["error"]["code"].as_str()), (429, Some("rate_limited")));
    // Another address is not held back, and a client secret is no management key.
    assert_eq!(ok(&p, "GET", "/v1/mgmt/users", None).await.0, 200);
    assert_eq!(call(&p, "GET", "/v1/mgmt/users", None, Some("web-secret-0123456789abcdef"), "192.0.2.2").await.0, 401);
    // Configuration errors name the field.
    for (bad, needle) in [
        (json!({"keys": [{"id": "a", "secret": "short"}]}), "at least 32"),
        (json!({"keys": [{"id": "a", "secret": SECRET}, {"id": "a", "secret": SECRET}]}), "twice"),
        (json!({"keyz": []}), "management.keyz"),
    ] {
        let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(e2e_dir().join("project.json")).unwrap()).unwrap();
        doc["management"] = bad;
        let e = Project::from_json(&doc.to_string(), &e2e_dir()).and_then(|p| Provider::new(p, Arc::new(MemoryStore::new()))).unwrap_err();
        assert!(e.message.contains(needle), "{needle}: {e}");
    }
}

#[tokio::test]
async fn users_credentials_and_keys_are_managed_with_the_bindings_codes() {
    let p = provider(|_| {});
    let (status, user) = ok(&p, "POST", "/v1/mgmt/users", Some(json!({"loginId": "mia@example.com", "name": "Mia", "tenants": [{"tenantId": "acme", "roles": ["admin"]}]}))).await;
    assert_eq!(status, 201, "{user}");
    let id = user["userId"].as_str().unwrap().to_owned();
    assert_eq!(user["name"], "Mia");
    assert_eq!(user["tenants"], json!([{"tenantId": "acme", "roles": ["admin"]}]), "tenants and their roles are user fields");
    let (status, v) = ok(&p, "POST", "/v1/mgmt/users", Some(json!({"loginId": "x@example.com", "roleNames": ["admin"]}))).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("invalid_request")), "{v}");
    let (status, v) = ok(&p, "POST", "/v1/mgmt/users", Some(json!({"loginId": "mia@example.com"}))).await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("user_exists")));
    assert_eq!(ok(&p, "GET", &format!("/v1/mgmt/users/{id}"), None).await.1["loginIds"], json!(["mia@example.com"]));
    assert_eq!(ok(&p, "PATCH", &format!("/v1/mgmt/users/{id}"), Some(json!({"givenName": "Mia"}))).await.1["givenName"], "Mia");
    let (_, found) = ok(&p, "GET", "/v1/mgmt/users?text=mia&limit=5", None).await;
    assert_eq!(found["users"].as_array().unwrap().len(), 1);
    assert_eq!(ok(&p, "GET", "/v1/mgmt/users?limit=many", None).await.0, 400);
    // Passwords: the policy applies; set, then removed.
    let password_path = format!("/v1/mgmt/users/{id}/password");
    let password = |v: Value| ok(&p, "PUT", &password_path, Some(v));
    let (status, v) = password(json!({"password": "short"})).await;
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("weak_password")));
    assert_eq!(password(json!({"password": "a long enough management password"})).await.0, 204);
    assert_eq!(password(json!({})).await.0, 400);
    assert_eq!(ok(&p, "DELETE", &format!("/v1/mgmt/users/{id}/password"), None).await.0, 204);
    assert_eq!(ok(&p, "POST", &format!("/v1/mgmt/users/{id}/sign-out-everywhere"), None).await.0, 204);
    assert_eq!(ok(&p, "DELETE", &format!("/v1/mgmt/users/{id}/totp"), None).await.0, 204);
    assert_eq!(ok(&p, "GET", &format!("/v1/mgmt/users/{id}/passkeys"), None).await.1, json!({"passkeys": []}));
    assert_eq!(ok(&p, "DELETE", &format!("/v1/mgmt/users/{id}/passkeys/nope"), None).await.1["error"]["code"], "invalid_request");
    assert_eq!(ok(&p, "POST", "/v1/mgmt/login-ids/unlock", Some(json!({"loginId": "mia@example.com"}))).await.0, 204);
    // Keys: a rotation with no prepublish time signs at once.
    let (status, rotated) = ok(&p, "POST", "/v1/mgmt/keys/rotate", Some(json!({"alg": "ES256", "prepublish": 0}))).await;
    assert_eq!(status, 201, "{rotated}");
    assert_eq!(p.signing_keys().active.kid(), rotated["kid"].as_str().unwrap());
    assert_eq!(ok(&p, "POST", "/v1/mgmt/keys/rotate", Some(json!({"alg": "HS256"}))).await.1["error"]["code"], "invalid_request");
    // Gone: not found, with the bindings' code.
    assert_eq!(ok(&p, "DELETE", &format!("/v1/mgmt/users/{id}"), None).await.0, 204);
    let (status, v) = ok(&p, "GET", &format!("/v1/mgmt/users/{id}"), None).await;
    assert_eq!((status, v["error"]["code"].as_str()), (404, Some("user_not_found")));
    assert_eq!(ok(&p, "GET", "/v1/mgmt/nothing", None).await.0, 404);
    assert_eq!(ok(&p, "POST", "/v1/mgmt/users", Some(json!([1]))).await.0, 400);
}
