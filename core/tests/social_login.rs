//! Social login through a custom OAuth provider, by API (outside flows):
//! the upstream is a second idflow provider served on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use idflow::jose::{self, Algorithm, KeySet, Validation};
use idflow::oidc::provider::{HttpRequest, HttpResponse, Provider};
use idflow::project::Project;
use idflow::store::MemoryStore;
use idflow::user::UserQuery;
use idflow::ErrorCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::op::{browse, browse_response, e2e_dir, set_cookie};
use support::{Recorded, Reply, TestServer};

const AFTER: &str = "http://127.0.0.1:7000/after";
/// The PKCE pair of the API logins here (RFC 7636 Appendix B).
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9y6IJkN2IRRBsVs8Tr73dRPjI";

fn challenge() -> String {
    idflow::pkce::challenge(VERIFIER, idflow::pkce::Method::S256, false).unwrap()
}

/// The upstream OP: the e2e project plus an application for the downstream.
async fn upstream() -> (TestServer, Arc<Provider>) {
    upstream_with(|_| {}).await
}

async fn upstream_with(edit: impl FnOnce(&mut Value)) -> (TestServer, Arc<Provider>) {
    let server = TestServer::start().await;
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(e2e_dir().join("project.json")).unwrap()).unwrap();
    doc["baseUrl"] = server.url().into();
    edit(&mut doc);
    doc["applications"].as_array_mut().unwrap().push(json!({
        "clientId": "downstream", "clientSecret": "downstream-secret-0123456789",
        "redirectUris": ["http://127.0.0.1/v1/oauth/callback"], "grantTypes": ["authorization_code", "refresh_token"], "flow": "sign-up-or-in"
    }));
    let provider = Arc::new(Provider::new(Project::from_json(&doc.to_string(), &e2e_dir()).unwrap(), Arc::new(MemoryStore::new())).unwrap());
    let p = provider.clone();
    server.fallback(Arc::new(move |r: Recorded| {
        let p = p.clone();
        Box::pin(async move {
            let a = p.handle(HttpRequest::new(&r.method, &r.target, r.headers, r.body)).await;
            Reply { status: a.status, headers: a.headers, body: a.body, delay: Duration::ZERO }
        })
    }));
    (server, provider)
}

fn downstream(up: &TestServer, extra: impl FnOnce(&mut Value)) -> Result<Provider, idflow::Error> {
    let mut doc = json!({
        "projectId": "down", "baseUrl": "http://127.0.0.1:9999", "redirectUrls": [AFTER],
        "flows": ["../flows/sign-up-or-in.json"],
        "oauthProviders": [
            {"name": "acme", "clientId": "downstream", "clientSecret": "downstream-secret-0123456789",
             "discoveryUrl": format!("{}/e2e/.well-known/openid-configuration", up.url()),
             "scopes": ["openid", "email", "profile"], "emailHandling": "promoteIfVerified", "mergeUsersByEmail": true,
             "attributeMapping": {"customAttributes": {"upstreamName": "name"}}},
            {"name": "internal", "triggerMethod": "flowsOnly", "clientId": "downstream", "clientSecret": "downstream-secret-0123456789",
             "discoveryUrl": format!("{}/e2e/.well-known/openid-configuration", up.url())}
        ]
    });
    extra(&mut doc);
    Provider::new(Project::from_json(&doc.to_string(), &e2e_dir())?, Arc::new(MemoryStore::new()))
}

async fn post_json(p: &Provider, path: &str, body: Value) -> HttpResponse {
    p.handle(HttpRequest::new("POST", path, vec![("Content-Type".into(), "application/json".into())], body.to_string().into_bytes())).await
}

fn body(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

/// authorize → upstream → callback → redirectUrl?code= → exchange.
async fn social_login(down: &Provider, up: &Provider, email: &str) -> (HttpResponse, String) {
    let r = post_json(down, "/v1/auth/oauth/authorize", json!({"provider": "acme", "redirectUrl": AFTER, "codeChallenge": challenge()})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let url = body(&r)["url"].as_str().unwrap().to_owned();
    let callback = browse(up, &url, email).await;
    assert!(callback.starts_with("http://127.0.0.1/v1/oauth/callback?") || callback.contains("/v1/oauth/callback?"), "{callback}");
    let back = down.handle(HttpRequest::new("GET", &callback, vec![], vec![])).await;
    (back, callback)
}

#[tokio::test]
async fn a_user_signs_in_through_a_custom_provider_by_api() {
    let (server, up) = upstream().await;
    let down = downstream(&server, |_| {}).unwrap();
    let (back, callback) = social_login(&down, &up, "sam@example.com").await;
    assert_eq!(back.status, 302, "{}", back.text());
    let location = back.header("Location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{AFTER}?code=")), "{location}");
    let code = location.split("code=").nth(1).unwrap().to_owned();
    let r = post_json(&down, "/v1/auth/oauth/exchange", json!({"code": code, "codeVerifier": VERIFIER})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let info = body(&r);
    let user = &info["user"];
    let login_ids: Vec<&str> = user["loginIds"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(login_ids[0].starts_with("acme:"), "{login_ids:?}");
    assert!(login_ids.contains(&"sam@example.com"), "a verified email is promoted: {login_ids:?}");
    assert_eq!(user["verifiedEmail"], true);
    assert_eq!(user["name"], "sam@example.com");
    assert_eq!(user["customAttributes"]["upstreamName"], "sam@example.com");
    let jwks = KeySet::from_jwks_json(&down.signing_keys().jwks_json).unwrap();
    let mut v = Validation::new(&[Algorithm::RS256]);
    v.issuer = Some(down.issuer().to_owned());
    v.audience = vec!["down".into()];
    let session = jose::verify(info["sessionJwt"].as_str().unwrap(), &jwks, &v).unwrap();
    assert_eq!(session.header["typ"], "session+jwt");
    let session = session.claims;
    assert_eq!(session["sub"], user["userId"]);
    // The upstream signed the user in, not idflow: no RFC 8176 method to name.
    assert!(!session.contains_key("amr"), "{session:?}");
    // The code works once; the callback works once (nothing provisioned twice).
    let again = post_json(&down, "/v1/auth/oauth/exchange", json!({"code": code, "codeVerifier": VERIFIER})).await;
    assert_eq!(body(&again)["error"]["code"], "invalid_grant");
    let replay = down.handle(HttpRequest::new("GET", &callback, vec![], vec![])).await;
    assert_eq!(replay.status, 400);
    assert!(replay.header("Location").is_none());
    // The same upstream user again: the same idflow user.
    let (back, _) = social_login(&down, &up, "sam@example.com").await;
    let code = back.header("Location").unwrap().split("code=").nth(1).unwrap().to_owned();
    let info2 = body(&post_json(&down, "/v1/auth/oauth/exchange", json!({"code": code, "codeVerifier": VERIFIER})).await);
    assert_eq!(info2["user"]["userId"], user["userId"]);
    assert_eq!(down.store().search_users(&UserQuery::default()).unwrap().len(), 1);
}

#[tokio::test]
async fn merge_by_verified_email_and_email_handling() {
    let (server, up) = upstream().await;
    let down = downstream(&server, |_| {}).unwrap();
    let existing = idflow::users::create_user(&**down.store(), "lee@example.com", json!({"verifiedEmail": true}).as_object().unwrap()).unwrap();
    let (back, _) = social_login(&down, &up, "lee@example.com").await;
    let code = back.header("Location").unwrap().split("code=").nth(1).unwrap().to_owned();
    let info = body(&post_json(&down, "/v1/auth/oauth/exchange", json!({"code": code, "codeVerifier": VERIFIER})).await);
    assert_eq!(info["user"]["userId"], existing.user_id.as_str(), "merged into the user who owns the verified email");
    assert!(info["user"]["loginIds"].as_array().unwrap().iter().any(|l| l.as_str().unwrap().starts_with("acme:")));
    // Without merging, the same email makes a separate user and is not promoted.
    let down = downstream(&server, |d| {
        d["oauthProviders"][0]["mergeUsersByEmail"] = json!(false);
        d["oauthProviders"][0]["emailHandling"] = json!("attributeOnly");
    })
    .unwrap();
    let other = idflow::users::create_user(&**down.store(), "lee@example.com", json!({"verifiedEmail": true}).as_object().unwrap()).unwrap();
    let (back, _) = social_login(&down, &up, "lee@example.com").await;
    let code = back.header("Location").unwrap().split("code=").nth(1).unwrap().to_owned();
    let info = body(&post_json(&down, "/v1/auth/oauth/exchange", json!({"code": code, "codeVerifier": VERIFIER})).await);
    assert_ne!(info["user"]["userId"], other.user_id.as_str());
    assert_eq!(info["user"]["loginIds"].as_array().unwrap().len(), 1, "attributeOnly keeps the email out of the login ids");
    assert_eq!(info["user"]["email"], "lee@example.com");
}

#[tokio::test]
async fn api_path_errors_have_codes() {
    let (server, up) = upstream().await;
    let down = downstream(&server, |_| {}).unwrap();
    let r = post_json(&down, "/v1/auth/oauth/authorize", json!({"provider": "internal", "redirectUrl": AFTER, "codeChallenge": challenge()})).await;
    assert_eq!((r.status, body(&r)["error"]["code"].clone()), (403, json!("access_denied")));
    let r = post_json(&down, "/v1/auth/oauth/authorize", json!({"provider": "nobody", "redirectUrl": AFTER, "codeChallenge": challenge()})).await;
    assert_eq!(body(&r)["error"]["code"], "invalid_request");
    let r = post_json(&down, "/v1/auth/oauth/authorize", json!({"provider": "acme", "codeChallenge": challenge()})).await;
    assert_eq!(body(&r)["error"]["code"], "invalid_request", "no redirectUrl and no default");
    // The upstream refuses (prompt=none, no session there): the browser
    // lands on redirectUrl with the error, and nothing is issued.
    let r = post_json(&down, "/v1/auth/oauth/authorize", json!({"provider": "acme", "redirectUrl": AFTER, "prompt": "none", "codeChallenge": challenge()})).await;
    let callback = browse(&up, body(&r)["url"].as_str().unwrap(), "x@example.com").await;
    let back = down.handle(HttpRequest::new("GET", &callback, vec![], vec![])).await;
    let location = back.header("Location").unwrap();
    assert!(location.starts_with(&format!("{AFTER}?error=login_required")), "{location}");
    assert!(down.store().search_users(&UserQuery::default()).unwrap().is_empty());
    // The upstream is down: a network error.
    let down2 = downstream(&server, |d| d["oauthProviders"][0]["discoveryUrl"] = json!("http://127.0.0.1:9/.well-known/openid-configuration")).unwrap();
    let r = post_json(&down2, "/v1/auth/oauth/authorize", json!({"provider": "acme", "redirectUrl": AFTER, "codeChallenge": challenge()})).await;
    assert_eq!((r.status, body(&r)["error"]["code"].clone()), (502, json!("network")));
    let r = post_json(&down, "/v1/auth/oauth/exchange", json!({"code": "nope", "codeVerifier": VERIFIER})).await;
    assert_eq!(body(&r)["error"]["code"], "invalid_grant");
    let unknown = down.handle(HttpRequest::new("GET", "/v1/oauth/callback?code=x&state=forged", vec![], vec![])).await;
    assert_eq!(unknown.status, 400);
    // Configuration errors name the field.
    for (edit, want) in [
        (json!({"bogus": 1}), "bogus"),
        (json!({"emailHandling": "sometimes"}), "emailHandling"),
        (json!({"triggerMethod": "api"}), "triggerMethod"),
        (json!({"attributeMapping": {"shoeSize": "x"}}), "shoeSize"),
    ] {
        let err = downstream(&server, |d| {
            for (k, v) in edit.as_object().unwrap() {
                d["oauthProviders"][0][k] = v.clone();
            }
        })
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::Config);
        assert!(err.message.contains(want), "{want}: {}", err.message);
    }
}

/// A downstream whose flow starts with an `oauth` step, and an OIDC
/// application that uses it.
fn downstream_with_flow(up: &TestServer) -> Provider {
    downstream(up, |d| {
        d["flows"] = json!([{
            "id": "social", "name": "Sign in with Acme", "start": "sso",
            "steps": {
                "sso": {"type": "oauth", "provider": "acme", "next": "claims", "onError": "fallback"},
                "claims": {"type": "customClaims", "claims": [{"key": "upstreamIss", "type": "dynamic", "value": "oauth.acme.claims.iss"}], "next": "done"},
                "fallback": {"type": "screen", "title": "Sign in another way",
                    "inputs": [{"name": "email", "type": "email", "label": "Email", "required": true}],
                    "interactions": [{"id": "submit", "label": "Continue", "next": "jwt"}]},
                "jwt": {"type": "generateJwt", "mode": "signUpOrIn", "next": "done"},
                "done": {"type": "end"}
            }
        }]);
        d["applications"] = json!([{"clientId": "down-app", "public": true, "redirectUris": ["http://127.0.0.1/app/cb"], "flow": "social"}]);
    })
    .unwrap()
}

#[tokio::test]
async fn an_oauth_flow_step_resumes_the_execution_after_the_callback() {
    let (server, up) = upstream().await;
    let down = downstream_with_flow(&server);
    // Through the flow API: waiting with the upstream URL, then the callback
    // (in the browser that started it) resumes the execution and the
    // hosted page shows the outcome once, to the execution's owner.
    let started = post_json(&down, "/v1/flow/start", json!({"flowId": "social"})).await;
    let browser = set_cookie(&started, "idflow_browser").unwrap();
    let s = body(&started);
    assert_eq!(s["status"], "waiting");
    assert!(s.get("screen").is_none());
    let secret = s["executionSecret"].as_str().unwrap().to_owned();
    let upstream_url = s["redirect"]["url"].as_str().unwrap().to_owned();
    assert!(upstream_url.starts_with(&server.url()), "{upstream_url}");
    let refused = post_json(&down, "/v1/flow/next", json!({"executionId": s["executionId"], "executionSecret": secret, "stepId": "sso", "interactionId": "x"})).await;
    assert_eq!(body(&refused)["error"]["code"], "invalid_request", "an oauth step is not answered through next");
    let callback = browse(&up, &upstream_url, "flow-user@example.com").await;
    let back = down.handle(HttpRequest::new("GET", &callback, vec![("Cookie".into(), browser.clone())], vec![])).await;
    let page = back.header("Location").unwrap().to_owned();
    assert_eq!(page, format!("http://127.0.0.1:9999/login/down?execution={}", s["executionId"].as_str().unwrap()));
    let stranger = post_json(&down, "/v1/flow/start", json!({"executionId": s["executionId"]})).await;
    assert_eq!(stranger.status, 403, "the result is its owner's: {}", stranger.text());
    assert_eq!(body(&stranger)["error"]["code"], "access_denied");
    let done = body(&post_json(&down, "/v1/flow/start", json!({"executionId": s["executionId"], "executionSecret": secret})).await);
    assert_eq!(done["status"], "completed", "{done}");
    let jwks = KeySet::from_jwks_json(&down.signing_keys().jwks_json).unwrap();
    let mut v = Validation::new(&[Algorithm::RS256]);
    v.issuer = Some(down.issuer().to_owned());
    v.audience = vec!["down".into()];
    let claims = jose::verify(done["authInfo"]["sessionJwt"].as_str().unwrap(), &jwks, &v).unwrap().claims;
    assert_eq!(claims["upstreamIss"], up.issuer());
    assert!(!claims.contains_key("amr"), "{claims:?}");
    let gone = post_json(&down, "/v1/flow/start", json!({"executionId": s["executionId"], "executionSecret": secret})).await;
    assert_eq!(gone.status, 400, "shown once");

    // For an OIDC application: authorize → hosted page → flow → upstream →
    // callback → delivery → the application's redirect URI with a code.
    let pair = idflow::pkce::generate(None).unwrap();
    let authorize = format!(
        "/oauth2/v1/authorize?response_type=code&client_id=down-app&redirect_uri=http%3A%2F%2F127.0.0.1%3A4000%2Fapp%2Fcb&scope=openid%20email&state=st&code_challenge={}&code_challenge_method=S256",
        pair.challenge
    );
    let r = down.handle(HttpRequest::new("GET", &authorize, vec![], vec![])).await;
    let browser = set_cookie(&r, "idflow_browser").unwrap();
    let cookie = || vec![("Cookie".to_owned(), browser.clone()), ("Content-Type".to_owned(), "application/json".to_owned())];
    let request = r.header("Location").unwrap().split("request=").nth(1).unwrap().to_owned();
    let s = body(&down.handle(HttpRequest::new("POST", "/v1/flow/start", cookie(), json!({"request": request}).to_string().into_bytes())).await);
    let callback = browse(&up, s["redirect"]["url"].as_str().unwrap(), "flow-user@example.com").await;
    let back = down.handle(HttpRequest::new("GET", &callback, cookie(), vec![])).await;
    let complete = back.header("Location").unwrap().to_owned();
    let delivered = down.handle(HttpRequest::new("GET", &complete, cookie(), vec![])).await;
    let app = delivered.header("Location").unwrap().to_owned();
    assert!(app.starts_with("http://127.0.0.1:4000/app/cb?code="), "{app}");
    assert!(delivered.header("Set-Cookie").unwrap().starts_with("idflow_session="));
    let code = app.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let form = format!("grant_type=authorization_code&code={code}&client_id=down-app&redirect_uri=http%3A%2F%2F127.0.0.1%3A4000%2Fapp%2Fcb&code_verifier={}", pair.verifier);
    let t = down
        .handle(HttpRequest::new("POST", "/oauth2/v1/token", vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())], form.into_bytes()))
        .await;
    assert_eq!(t.status, 200, "{}", t.text());
    let id = jose::verify(body(&t)["id_token"].as_str().unwrap(), &jwks, &{
        let mut v = Validation::new(&[Algorithm::RS256]);
        v.issuer = Some(down.issuer().to_owned());
        v.audience = vec!["down-app".into()];
        v
    })
    .unwrap()
    .claims;
    assert_eq!(id["acr"], "social");
    // The email scope's claims are at userinfo (OIDC Core §5.4).
    assert!(!id.contains_key("email"));
    let bearer = vec![("Authorization".to_owned(), format!("Bearer {}", body(&t)["access_token"].as_str().unwrap()))];
    let info = body(&down.handle(HttpRequest::new("GET", "/oauth2/v1/userinfo", bearer, vec![])).await);
    assert_eq!(info["email"], "flow-user@example.com");
    assert_eq!(info["sub"], id["sub"]);
}

/// The hijack of an `oauth` step: the attacker starts the flow and sends
/// the upstream URL to a victim, who signs in there. The victim's browser
/// lands on the callback without the attacker's cookie, so nothing
/// resumes; the attacker, holding the execution's id and secret but not
/// the one-time resume id the victim's browser got, gets nothing either;
/// and the victim's browser, holding the resume id but not the secret, is
/// refused. A login CSRF from a second cookie jar is refused the same way.
#[tokio::test]
async fn nobody_finishes_an_execution_someone_else_started() {
    let (server, up) = upstream().await;
    let down = downstream_with_flow(&server);
    let started = post_json(&down, "/v1/flow/start", json!({"flowId": "social"})).await;
    let attacker = set_cookie(&started, "idflow_browser").unwrap();
    let s = body(&started);
    let (execution, secret) = (s["executionId"].as_str().unwrap().to_owned(), s["executionSecret"].as_str().unwrap().to_owned());
    let callback = browse(&up, s["redirect"]["url"].as_str().unwrap(), "victim@example.com").await;
    // The victim's browser: its own cookie, or none.
    let back = down.handle(HttpRequest::new("GET", &callback, vec![("Cookie".into(), "idflow_browser=Bvictim-browser-0123456789ab".into())], vec![])).await;
    assert_eq!(back.status, 302);
    let page = back.header("Location").unwrap().to_owned();
    assert!(page.starts_with(&format!("http://127.0.0.1:9999/login/down?execution={execution}&resume=")), "{page}");
    let resume = page.split("resume=").nth(1).unwrap().to_owned();
    assert!(down.store().search_users(&UserQuery::default()).unwrap().is_empty(), "nobody is provisioned before the owner resumes");
    // The attacker polls with everything it has.
    for attempt in [
        json!({"executionId": execution, "executionSecret": secret}),
        json!({"executionId": execution, "executionSecret": secret, "resume": "R-guess"}),
    ] {
        let r = post_json(&down, "/v1/flow/start", attempt.clone()).await;
        assert_ne!(body(&r)["status"], "completed", "{attempt}: {}", r.text());
        assert!(body(&r).get("authInfo").is_none());
    }
    let with_cookie = down
        .handle(HttpRequest::new(
            "POST",
            "/v1/flow/start",
            vec![("Cookie".into(), attacker.clone()), ("Content-Type".into(), "application/json".into())],
            json!({"executionId": execution}).to_string().into_bytes(),
        ))
        .await;
    assert!(body(&with_cookie).get("authInfo").is_none(), "{}", with_cookie.text());
    // The victim's page, with the resume id but not the secret: refused.
    let r = post_json(&down, "/v1/flow/start", json!({"executionId": execution, "resume": resume})).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(body(&r)["error"]["code"], "access_denied");
    let r = post_json(&down, "/v1/flow/next", json!({"executionId": execution, "stepId": "sso", "interactionId": "x"})).await;
    assert_eq!(r.status, 403, "next with the id alone: {}", r.text());
    // The resume id used with another execution the attacker owns: refused,
    // and it stays good for the execution it belongs to.
    let other = body(&post_json(&down, "/v1/flow/start", json!({"flowId": "social"})).await);
    let r = post_json(&down, "/v1/flow/start", json!({"executionId": other["executionId"], "executionSecret": other["executionSecret"], "resume": resume})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(body(&r).get("authInfo").is_none());
    // The owner, with both (a custom page that kept the secret): completes.
    let done = body(&post_json(&down, "/v1/flow/start", json!({"executionId": execution, "executionSecret": secret, "resume": resume})).await);
    assert_eq!(done["status"], "completed", "{done}");
    assert!(done["authInfo"]["sessionJwt"].is_string());
}

#[tokio::test]
async fn an_upstream_failure_takes_the_oauth_steps_error_branch() {
    let (server, up) = upstream().await;
    let down = downstream_with_flow(&server);
    let started = post_json(&down, "/v1/flow/start", json!({"flowId": "social"})).await;
    let browser = set_cookie(&started, "idflow_browser").unwrap();
    let s = body(&started);
    // The user denies at the upstream (here: prompt=none without a session there).
    let url = s["redirect"]["url"].as_str().unwrap().replace("&state=", "&prompt=none&state=");
    let callback = browse(&up, &url, "x@example.com").await;
    assert!(callback.contains("error=login_required"), "{callback}");
    let back = down.handle(HttpRequest::new("GET", &callback, vec![("Cookie".into(), browser)], vec![])).await;
    assert!(back.header("Location").unwrap().contains("/login/down?execution="));
    let screen = body(&post_json(&down, "/v1/flow/start", json!({"executionId": s["executionId"], "executionSecret": s["executionSecret"]})).await);
    assert_eq!(screen["status"], "waiting");
    assert_eq!(screen["stepId"], "fallback", "the onError branch: {screen}");
    // A replayed callback does nothing.
    let replay = down.handle(HttpRequest::new("GET", &callback, vec![], vec![])).await;
    assert_eq!(replay.status, 400);
}

#[tokio::test]
async fn provider_tokens_are_kept_sealed_and_refreshed_when_expired() {
    // Upstream access tokens live 2 s, so the kept one expires during the test.
    let (server, up) = upstream_with(|d| d["tokens"]["sessionTtl"] = json!(2)).await;
    let key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    };
    let down = downstream(&server, |d| {
        d["oauthProviders"][0]["manageProviderTokens"] = json!(true);
        d["encryption"] = json!({"key": key});
    })
    .unwrap();
    let (back, _) = social_login(&down, &up, "tok@example.com").await;
    let code = back.header("Location").unwrap().split("code=").nth(1).unwrap().to_owned();
    let user_id = body(&post_json(&down, "/v1/auth/oauth/exchange", json!({"code": code, "codeVerifier": VERIFIER})).await)["user"]["userId"].as_str().unwrap().to_owned();
    let first = down.provider_token(&user_id, "acme").await.unwrap();
    let access = first["accessToken"].as_str().unwrap().to_owned();
    let bearer = vec![("Authorization".to_owned(), format!("Bearer {access}"))];
    assert_eq!(up.handle(HttpRequest::new("GET", "/oauth2/v1/userinfo", bearer, vec![])).await.status, 200, "the kept token works upstream");
    // At rest it is sealed: the plaintext token is nowhere in the record.
    let sealed = down.store().record("provider_token", &format!("{user_id}:acme")).unwrap().unwrap().to_string();
    assert!(!sealed.contains(&access) && sealed.contains("A256GCM"));
    // Expired: refreshed at the upstream on the next read.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = down.provider_token(&user_id, "acme").await.unwrap();
    assert_ne!(second["accessToken"], first["accessToken"]);
    let bearer = vec![("Authorization".to_owned(), format!("Bearer {}", second["accessToken"].as_str().unwrap()))];
    assert_eq!(up.handle(HttpRequest::new("GET", "/oauth2/v1/userinfo", bearer, vec![])).await.status, 200);
    // Unknown user or provider; a wrong data key cannot open the blob.
    assert_eq!(down.provider_token("U-nobody", "acme").await.unwrap_err().code, ErrorCode::UserNotFound);
    let store = down.store().clone();
    let project = Project::from_json(
        &json!({"projectId": "down", "baseUrl": "http://127.0.0.1:9999", "encryption": {"key": base64_of([9u8; 32])},
                 "oauthProviders": [{"name": "acme", "clientId": "downstream", "clientSecret": "downstream-secret-0123456789",
                 "discoveryUrl": format!("{}/e2e/.well-known/openid-configuration", server.url()), "manageProviderTokens": true}]})
        .to_string(),
        &e2e_dir(),
    )
    .unwrap();
    // Another data key opens nothing sealed: not even the signing key.
    let _ = &user_id;
    assert_eq!(Provider::new(project, store).unwrap_err().code, ErrorCode::Storage);
    let bad = downstream(&server, |d| d["encryption"] = json!({"key": "c2hvcnQ="})).unwrap_err();
    assert!(bad.message.contains("32 bytes"), "{}", bad.message);
}

fn base64_of(bytes: [u8; 32]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `callbackDomain` moves the callback URL; an implicit upstream
/// (`grantType: implicit`) answers with a form_post id_token, which the
/// callback validates (signature, nonce) before provisioning.
#[tokio::test]
async fn callback_domain_and_an_implicit_upstream() {
    let (server, up) = upstream_with(|d| {
        d["applications"].as_array_mut().unwrap().push(json!({
            "clientId": "down-implicit", "public": true, "responseTypes": ["id_token"],
            "redirectUris": ["http://127.0.0.1/v1/oauth/callback"], "grantTypes": ["authorization_code"], "flow": "sign-up-or-in"
        }));
    })
    .await;
    let discovery = format!("{}/e2e/.well-known/openid-configuration", server.url());
    let down = downstream(&server, |d| {
        d["oauthProviders"][0]["callbackDomain"] = json!("auth.myapp.example");
        d["oauthProviders"].as_array_mut().unwrap().push(json!({
            "name": "imp", "clientId": "down-implicit", "grantType": "implicit", "discoveryUrl": discovery,
            "scopes": ["openid", "email"]
        }));
    })
    .unwrap();
    let r = post_json(&down, "/v1/auth/oauth/authorize", json!({"provider": "acme", "redirectUrl": AFTER, "codeChallenge": challenge()})).await;
    let url = body(&r)["url"].as_str().unwrap().to_owned();
    assert!(url.contains("redirect_uri=https%3A%2F%2Fauth.myapp.example%2Fv1%2Foauth%2Fcallback"), "{url}");
    // The implicit upstream: authorize → its flow → its form_post page.
    let r = post_json(&down, "/v1/auth/oauth/authorize", json!({"provider": "imp", "redirectUrl": AFTER, "codeChallenge": challenge()})).await;
    let url = body(&r)["url"].as_str().unwrap().to_owned();
    assert!(url.contains("response_type=id_token") && url.contains("response_mode=form_post"), "{url}");
    let html = browse_response(&up, &url, "imp@example.com").await.text();
    assert!(html.contains("action=\"http://127.0.0.1:9999/v1/oauth/callback\""), "{html}");
    let field = |name: &str| -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap_or_else(|| panic!("{name} in {html}")) + marker.len();
        html[start..].split('"').next().unwrap().replace("&#x2F;", "/").replace("&#47;", "/").replace("&amp;", "&")
    };
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token", &field("id_token"))
        .append_pair("state", &field("state"))
        .finish();
    let form_header = vec![("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
    let back = down.handle(HttpRequest::new("POST", "/v1/oauth/callback", form_header.clone(), form.clone().into_bytes())).await;
    assert_eq!(back.status, 302, "{}", back.text());
    let location = back.header("Location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{AFTER}?code=")), "{location}");
    let info = body(&post_json(&down, "/v1/auth/oauth/exchange", json!({"code": location.split("code=").nth(1).unwrap(), "codeVerifier": VERIFIER})).await);
    assert_eq!(info["user"]["email"], "imp@example.com");
    assert!(info["user"]["loginIds"][0].as_str().unwrap().starts_with("imp:"));
    // The same posted id_token again: nothing to resume.
    let replay = down.handle(HttpRequest::new("POST", "/v1/oauth/callback", form_header, form.into_bytes())).await;
    assert_eq!(replay.status, 400);
}

/// Endpoints given by hand (no discovery), custom authorization and token
/// parameters, and the default prompt with its per-call and per-step
/// overrides all reach the upstream.
#[tokio::test]
async fn hand_given_endpoints_custom_parameters_and_prompts() {
    let (server, up) = upstream().await;
    let base = server.url();
    let down = downstream(&server, |d| {
        let p = &mut d["oauthProviders"][0];
        let o = p.as_object_mut().unwrap();
        o.remove("discoveryUrl");
        for (k, v) in [
            ("issuer", format!("{base}/e2e")),
            ("authorizationEndpoint", format!("{base}/oauth2/v1/authorize")),
            ("tokenEndpoint", format!("{base}/oauth2/v1/token")),
            ("userinfoEndpoint", format!("{base}/oauth2/v1/userinfo")),
            ("jwksUri", format!("{base}/e2e/.well-known/jwks.json")),
        ] {
            o.insert(k.into(), json!(v));
        }
        o.insert("authorizationParams".into(), json!({"access_type": "offline"}));
        o.insert("tokenParams".into(), json!({"audience": "reports-api"}));
        o.insert("prompt".into(), json!(["login"]));
        d["flows"] = json!([{
            "id": "pick", "name": "Pick an account", "start": "sso",
            "steps": {"sso": {"type": "oauth", "provider": "acme", "prompt": "select_account", "next": "done"}, "done": {"type": "end"}}
        }]);
    })
    .unwrap();
    let authorize = |prompt: Option<&str>| {
        let mut request = json!({"provider": "acme", "redirectUrl": AFTER, "codeChallenge": challenge()});
        if let Some(p) = prompt {
            request["prompt"] = json!(p);
        }
        let down = &down;
        async move { body(&post_json(down, "/v1/auth/oauth/authorize", request).await)["url"].as_str().unwrap().to_owned() }
    };
    let url = authorize(None).await;
    assert!(url.starts_with(&format!("{base}/oauth2/v1/authorize?")), "{url}");
    assert!(url.contains("access_type=offline") && url.contains("prompt=login"), "{url}");
    let url = authorize(Some("consent")).await;
    assert!(url.contains("prompt=consent") && !url.contains("prompt=login"), "per call: {url}");
    // The flow step's prompt wins over the provider's default.
    let s = body(&post_json(&down, "/v1/flow/start", json!({"flowId": "pick"})).await);
    let step_url = s["redirect"]["url"].as_str().unwrap();
    assert!(step_url.contains("prompt=select_account") && !step_url.contains("prompt=login"), "per step: {step_url}");
    // A sign-in through the hand-given endpoints sends the token parameters.
    let url = authorize(Some("consent")).await;
    let callback = browse(&up, &url, "hand@example.com").await;
    let back = down.handle(HttpRequest::new("GET", &callback, vec![], vec![])).await;
    assert!(back.header("Location").unwrap().starts_with(&format!("{AFTER}?code=")), "{}", back.text());
    let token_request = server.requests().into_iter().find(|r| r.target.starts_with("/oauth2/v1/token")).unwrap();
    assert!(String::from_utf8_lossy(&token_request.body).contains("audience=reports-api"), "{}", String::from_utf8_lossy(&token_request.body));
}
