//! The provider's sans-IO edge under arbitrary requests: any method, path,
//! headers, query and body against a project with every application type.
//! No panic, and every answer is a well-formed HTTP response: a real
//! status, header names and values HTTP can carry, a Location only on
//! redirects.
//!
//! Input layout: fields separated by 0x00 — method, target (path and
//! query), body, then header lines `name: value`.
#![no_main]

use idflow::oidc::provider::{HttpRequest, Provider};
use idflow::project::Project;
use idflow::store::MemoryStore;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

const PROJECT: &str = r#"{
  "projectId": "fz", "baseUrl": "http://127.0.0.1:18999",
  "redirectUrls": ["http://127.0.0.1:7000"],
  "applications": [
    {"clientId": "fz", "public": true, "redirectUris": ["http://127.0.0.1/cb"], "postLogoutRedirectUris": ["http://127.0.0.1/bye"]},
    {"clientId": "basic", "clientSecret": "basic-secret-0123456789", "redirectUris": ["https://app.example/cb"], "flows": ["in", "claims"]},
    {"clientId": "post", "clientSecret": "post-secret-0123456789", "tokenEndpointAuthMethod": "client_secret_post", "redirectUris": ["https://app.example/cb"], "responseTypes": ["code", "id_token", "id_token token"]},
    {"clientId": "jwt", "tokenEndpointAuthMethod": "private_key_jwt", "redirectUris": ["https://app.example/cb"],
     "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}},
    {"clientId": "m2m", "clientSecret": "m2m-secret-0123456789", "grantTypes": ["client_credentials"], "scopes": ["reports:read"]}
  ],
  "accessKeys": [{"id": "K1", "secret": "key-secret-0123456789", "scopes": ["reports:read"]}],
  "oauthProviders": [{"name": "acme", "clientId": "c", "clientSecret": "acme-secret-0123456789",
    "authorizationEndpoint": "http://127.0.0.1:9/authorize", "tokenEndpoint": "http://127.0.0.1:9/token"}],
  "flows": [
    {"id": "in", "name": "In", "start": "ask", "steps": {
      "ask": {"type": "screen", "title": "In", "inputs": [{"name": "email", "type": "email", "label": "Email", "required": true}],
              "interactions": [{"id": "submit", "label": "Go", "next": "jwt"}]},
      "jwt": {"type": "generateJwt", "mode": "signUpOrIn", "next": "done"},
      "done": {"type": "end"}}},
    {"id": "claims", "name": "Claims", "start": "ask", "steps": {
      "ask": {"type": "screen", "title": "In", "inputs": [{"name": "email", "type": "email", "label": "Email", "required": true}],
              "interactions": [{"id": "submit", "label": "Go", "next": "jwt"}]},
      "jwt": {"type": "generateJwt", "mode": "signUpOrIn", "next": "c"},
      "c": {"type": "customClaims", "claims": [{"key": "plan", "type": "static", "value": "pro"}], "next": "done"},
      "done": {"type": "end"}}}
  ]
}"#;

fn provider() -> &'static (Provider, tokio::runtime::Runtime) {
    static P: OnceLock<(Provider, tokio::runtime::Runtime)> = OnceLock::new();
    P.get_or_init(|| {
        let project = Project::from_json(PROJECT, std::path::Path::new(".")).expect("project");
        let provider = Provider::new(project, Arc::new(MemoryStore::new())).expect("provider");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        (provider, rt)
    })
}

fn header_ok(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        && value.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let method = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let target = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default().to_vec();
    let headers: Vec<(String, String)> = parts
        .filter_map(|line| {
            let line = String::from_utf8_lossy(line);
            line.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let (provider, rt) = provider();
    let request = HttpRequest::new(&method, &target, headers, body);
    let response = rt.block_on(provider.handle(request));
    assert!((100..=599).contains(&response.status), "status {}", response.status);
    for (k, v) in &response.headers {
        assert!(header_ok(k, v), "header {k:?}: {v:?} cannot be sent");
    }
    let location = response.header("Location");
    assert_eq!(location.is_some(), (300..400).contains(&response.status), "Location goes with a redirect: {}", response.status);
});
