//! idflow's own provider for the e2e project, served over loopback HTTP, and
//! a scripted browser that signs in through its flow API.

use super::{Recorded, Reply, TestServer};
use idflow::oidc::provider::{HttpRequest, Provider};
use idflow::project::Project;
use idflow::store::MemoryStore;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e")
}

/// The provider at a loopback URL.
pub async fn op() -> (TestServer, Arc<Provider>) {
    op_with(Duration::ZERO).await
}

/// The provider, answering refresh_token grants after `refresh_delay`.
pub async fn op_with(refresh_delay: Duration) -> (TestServer, Arc<Provider>) {
    op_edited(refresh_delay, |_| {}).await
}

/// The provider for the e2e project as `edit` changes it.
#[allow(dead_code)]
pub async fn op_project(edit: impl FnOnce(&mut Value)) -> (TestServer, Arc<Provider>) {
    op_edited(Duration::ZERO, edit).await
}

async fn op_edited(refresh_delay: Duration, edit: impl FnOnce(&mut Value)) -> (TestServer, Arc<Provider>) {
    let server = TestServer::start().await;
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(e2e_dir().join("project.json")).unwrap()).unwrap();
    edit(&mut doc);
    doc["baseUrl"] = server.url().into();
    let project = Project::from_json(&doc.to_string(), &e2e_dir()).unwrap();
    let provider = Arc::new(Provider::new(project, Arc::new(MemoryStore::new())).unwrap());
    let p = provider.clone();
    server.fallback(Arc::new(move |r: Recorded| {
        let p = p.clone();
        Box::pin(async move {
            if !refresh_delay.is_zero() && r.body.windows(24).any(|w| w == b"grant_type=refresh_token") {
                tokio::time::sleep(refresh_delay).await;
            }
            let answer = p.handle(HttpRequest::new(&r.method, &r.target, r.headers, r.body)).await;
            Reply { status: answer.status, headers: answer.headers, body: answer.body, delay: Duration::ZERO }
        })
    }));
    (server, provider)
}

pub fn discovery_url(server: &TestServer) -> String {
    format!("{}/e2e/.well-known/openid-configuration", server.url())
}

/// The first `name=value` among a response's Set-Cookie headers.
pub fn set_cookie(r: &idflow::oidc::provider::HttpResponse, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap_or_default().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// Plays the browser: follows the authorize URL into the flow API (with
/// the execution's secret), takes the finished authorization with the
/// browser cookie, and returns the callback URL.
pub async fn browse(provider: &Provider, authorize_url: &str, email: &str) -> String {
    browse_response(provider, authorize_url, email).await.header("Location").unwrap().to_owned()
}

/// [`browse`], returning the last answer: the redirect to the client, or
/// the form_post page.
pub async fn browse_response(provider: &Provider, authorize_url: &str, email: &str) -> idflow::oidc::provider::HttpResponse {
    let r = provider.handle(HttpRequest::new("GET", authorize_url, vec![], vec![])).await;
    let location = r.header("Location").unwrap().to_owned();
    if !location.contains("/login/") {
        return r; // an error redirect straight to the client
    }
    let browser = set_cookie(&r, "idflow_browser").unwrap();
    let request = location.split("request=").nth(1).unwrap().to_owned();
    let json_post = |path: &'static str, body: Value| async move {
        let r = provider
            .handle(HttpRequest::new("POST", path, vec![("Content-Type".into(), "application/json".into())], body.to_string().into_bytes()))
            .await;
        serde_json::from_slice::<Value>(&r.body).unwrap()
    };
    let s = json_post("/v1/flow/start", json!({"request": request})).await;
    let d = json_post(
        "/v1/flow/next",
        json!({"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"], "interactionId": "submit", "input": {"email": email}}),
    )
    .await;
    let complete = d["redirect"]["url"].as_str().unwrap();
    provider.handle(HttpRequest::new("GET", complete, vec![("Cookie".into(), browser)], vec![])).await
}
