//! The security contract of the login path, one attack per test, through
//! the provider's sans-IO edge: approved redirect URLs, browser binding of
//! authorization requests, flow downgrade, the OP's MUST items (OIDC Core,
//! RFC 6749, RFC 7636, RP-Initiated Logout), typed tokens. Social login's
//! attacks (API takeover, execution hijack) live in social_login.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use idflow::jose;
use idflow::oidc::provider::{HttpRequest, HttpResponse, Provider};
use idflow::pkce;
use idflow::project::Project;
use idflow::store::MemoryStore;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use support::op::{e2e_dir, set_cookie};

const BASE: &str = "http://127.0.0.1:18181";
const CB: &str = "http://127.0.0.1:4567/callback";

fn provider_with(edit: impl FnOnce(&mut Value)) -> Provider {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(e2e_dir().join("project.json")).unwrap()).unwrap();
    doc["baseUrl"] = BASE.into();
    edit(&mut doc);
    Provider::new(Project::from_json(&doc.to_string(), &e2e_dir()).unwrap(), Arc::new(MemoryStore::new())).unwrap()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn query(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn body(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

async fn get(p: &Provider, target: &str, cookies: &[&str]) -> HttpResponse {
    let headers = if cookies.is_empty() { vec![] } else { vec![("Cookie".to_owned(), cookies.join("; "))] };
    p.handle(HttpRequest::new("GET", target, headers, vec![])).await
}

async fn post(p: &Provider, path: &str, content_type: &str, body: Vec<u8>, cookies: &[&str]) -> HttpResponse {
    post_as(p, path, content_type, body, cookies, None).await
}

async fn post_as(p: &Provider, path: &str, content_type: &str, body: Vec<u8>, cookies: &[&str], basic: Option<(&str, &str)>) -> HttpResponse {
    let mut headers = vec![("Content-Type".to_owned(), content_type.to_owned())];
    if let Some((id, secret)) = basic {
        use base64::Engine;
        headers.push(("Authorization".into(), format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))));
    }
    if !cookies.is_empty() {
        headers.push(("Cookie".to_owned(), cookies.join("; ")));
    }
    p.handle(HttpRequest::new("POST", path, headers, body)).await
}

async fn post_json(p: &Provider, path: &str, v: Value) -> HttpResponse {
    post(p, path, "application/json", v.to_string().into_bytes(), &[]).await
}

fn authorize_url(client: &str, redirect: &str, challenge: &str, extra: &str) -> String {
    format!(
        "/oauth2/v1/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid%20email&state=st-1&nonce=n-1&code_challenge={challenge}&code_challenge_method=S256{extra}",
        enc(redirect)
    )
}

/// What a signed-in browser holds.
struct Browser {
    session: String,
    callback: String,
    verifier: String,
}

/// A whole login in one browser: authorize → flow → delivery.
async fn sign_in(p: &Provider, client: &str, redirect: &str, extra: &str, email: &str) -> Browser {
    sign_in_with(p, client, redirect, extra, "submit", json!({"email": email})).await
}

/// A login whose first screen is answered by `interaction` with `input`.
async fn sign_in_with(p: &Provider, client: &str, redirect: &str, extra: &str, interaction: &str, input: Value) -> Browser {
    let pair = pkce::generate(None).unwrap();
    let r = get(p, &authorize_url(client, redirect, &pair.challenge, extra), &[]).await;
    assert_eq!(r.status, 302, "{}", r.text());
    let browser = set_cookie(&r, "idflow_browser").unwrap();
    let q = query(r.header("Location").unwrap());
    let s = body(&post_json(p, "/v1/flow/start", json!({"request": q["request"]})).await);
    let d = body(
        &post_json(
            p,
            "/v1/flow/next",
            json!({"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"], "interactionId": interaction, "input": input}),
        )
        .await,
    );
    assert_eq!(d["status"], "completed", "{d}");
    let delivered = get(p, d["redirect"]["url"].as_str().unwrap(), &[&browser]).await;
    assert_eq!(delivered.status, 302, "{}", delivered.text());
    Browser {
        session: set_cookie(&delivered, "idflow_session").unwrap(),
        callback: delivered.header("Location").unwrap().to_owned(),
        verifier: pair.verifier,
    }
}

async fn tokens(p: &Provider, client: &str, b: &Browser, redirect: &str, secret: Option<&str>) -> Value {
    let code = query(&b.callback)["code"].clone();
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", b.verifier.as_str()),
    ];
    if secret.is_none() {
        form.push(("client_id", client));
    }
    let body_text: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&form).finish();
    let r = post_as(p, "/oauth2/v1/token", "application/x-www-form-urlencoded", body_text.into_bytes(), &[], secret.map(|s| (client, s))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    body(&r)
}

fn claims(token: &str) -> serde_json::Map<String, Value> {
    jose::decode_unverified(token).unwrap().claims
}

#[tokio::test]
async fn the_answer_of_an_authorization_request_goes_only_to_the_browser_that_sent_it() {
    let p = provider_with(|_| {});
    let pair = pkce::generate(None).unwrap();
    // The attacker starts an authorization request and sends the victim
    // the hosted page with its request id.
    let r = get(&p, &authorize_url("e2e", CB, &pair.challenge, ""), &[]).await;
    let attacker = set_cookie(&r, "idflow_browser").unwrap();
    let request = query(r.header("Location").unwrap())["request"].clone();
    // The victim signs in there, in its own browser.
    let s = body(&post_json(&p, "/v1/flow/start", json!({"request": request})).await);
    let d = body(
        &post_json(
            &p,
            "/v1/flow/next",
            json!({"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"], "interactionId": "submit", "input": {"email": "victim@example.com"}}),
        )
        .await,
    );
    let complete = d["redirect"]["url"].as_str().unwrap().to_owned();
    assert!(complete.starts_with(&format!("{BASE}/oauth2/v1/authorize/complete?id=")), "the code is not in the flow API's answer: {complete}");
    // No code in the victim's browser, nor anywhere but the first browser.
    for cookies in [vec![], vec!["idflow_browser=Bsomeone-else-0123456789ab"]] {
        let r = get(&p, &complete, &cookies).await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r.header("Location").is_none());
        assert!(r.header("Set-Cookie").is_none(), "no session for the wrong browser");
    }
    let r = get(&p, &complete, &[&attacker]).await;
    assert_eq!(r.status, 302);
    assert!(r.header("Location").unwrap().starts_with(CB));
}

#[tokio::test]
async fn an_application_runs_only_its_own_flows_and_tokens_name_the_flow() {
    // `web` signs users in with the `claims` flow only.
    let p = provider_with(|_| {});
    let pair = pkce::generate(None).unwrap();
    let web_cb = "http://127.0.0.1/cb";
    let r = get(&p, &authorize_url("web", web_cb, &pair.challenge, "&flow=sign-up-or-in"), &[]).await;
    let q = query(r.header("Location").unwrap());
    assert_eq!(q["error"], "invalid_request", "&flow= cannot pick a weaker flow");
    // flowId at the flow API, with web's request.
    let r = get(&p, &authorize_url("web", web_cb, &pair.challenge, ""), &[]).await;
    let request = query(r.header("Location").unwrap())["request"].clone();
    let r = post_json(&p, "/v1/flow/start", json!({"request": request, "flowId": "sign-up-or-in"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(body(&r)["error"]["code"], "invalid_request");
    // A session made by e2e's sign-up-or-in flow is not reused for web.
    let b = sign_in(&p, "e2e", CB, "", "flo@example.com").await;
    let r = get(&p, &authorize_url("web", web_cb, &pair.challenge, "&prompt=none"), &[&b.session]).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "login_required");
    // Discovery lists the flows as acr values.
    let d = body(&get(&p, "/e2e/.well-known/openid-configuration", &[]).await);
    assert_eq!(d["acr_values_supported"], json!(["sign-up-or-in", "claims", "password"]));
}

#[tokio::test]
async fn acr_values_choose_among_an_applications_flows_and_bound_session_reuse() {
    let p = provider_with(|d| d["applications"][0]["flows"] = json!(["sign-up-or-in", "claims"]));
    let b = sign_in(&p, "e2e", CB, "&acr_values=claims", "ace@example.com").await;
    assert_eq!(query(&b.callback)["state"], "st-1");
    let pair = pkce::generate(None).unwrap();
    // The session (from `claims`) answers a request that accepts `claims`...
    let r = get(&p, &authorize_url("e2e", CB, &pair.challenge, "&prompt=none&acr_values=claims"), &[&b.session]).await;
    assert!(query(r.header("Location").unwrap()).contains_key("code"));
    // ...but not one that asks for another flow.
    let r = get(&p, &authorize_url("e2e", CB, &pair.challenge, "&prompt=none&acr_values=sign-up-or-in"), &[&b.session]).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "login_required");
    // Unknown acr values are a preference, not an error: the default runs.
    let r = get(&p, &authorize_url("e2e", CB, &pair.challenge, "&acr_values=gold"), &[]).await;
    assert!(r.header("Location").unwrap().contains("flow=sign-up-or-in"), "{:?}", r.header("Location"));
}

#[tokio::test]
async fn acr_names_the_flow_only_when_it_verified_the_user() {
    // `sign-up-or-in` only looks a user up by the email typed; `password`
    // checks a password (tests/flows/password.json); `web` may run both.
    let p = provider_with(|d| d["applications"][2]["flows"] = json!(["claims", "password"]));
    let (web, web_cb, secret) = ("web", "http://127.0.0.1/cb", Some("web-secret-0123456789abcdef"));
    let acr_of = |t: &Value, kind: &str| claims(t[kind].as_str().unwrap()).get("acr").cloned();
    // Nothing verified: no acr in any token, and discovery still lists
    // the flows a relying party may ask for.
    let b = sign_in(&p, "e2e", CB, "", "nov@example.com").await;
    let t = tokens(&p, "e2e", &b, CB, None).await;
    assert_eq!((acr_of(&t, "id_token"), acr_of(&t, "access_token")), (None, None));
    let d = body(&get(&p, "/e2e/.well-known/openid-configuration", &[]).await);
    assert_eq!(d["acr_values_supported"], json!(["sign-up-or-in", "claims", "password"]));
    // An essential acr that such a flow answers is a failed authentication
    // (OIDC Core §5.5.1.1), and its session never answers one later.
    let essential = |values: Value| format!("&claims={}", enc(&json!({"id_token": {"acr": {"essential": true, "values": values}}}).to_string()));
    let refused = sign_in(&p, "e2e", CB, &essential(json!(["sign-up-or-in"])), "nov@example.com").await;
    let q = query(&refused.callback);
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("unmet_authentication_requirements", "st-1"));
    assert!(!q.contains_key("code"));
    let pair = pkce::generate(None).unwrap();
    let r = get(&p, &authorize_url("e2e", CB, &pair.challenge, &format!("&prompt=none{}", essential(json!([])))), &[&b.session]).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "login_required");
    // A password checked in this execution: acr names the flow, in the
    // id_token, the access token and refreshed tokens.
    let input = json!({"email": "pwd@example.com", "password": "correct horse battery staple"});
    let b = sign_in_with(&p, web, web_cb, "&acr_values=password", "signUp", input.clone()).await;
    let t = tokens(&p, web, &b, web_cb, secret).await;
    assert_eq!(acr_of(&t, "id_token"), Some(json!("password")));
    assert_eq!(acr_of(&t, "access_token"), Some(json!("password")));
    assert_eq!(claims(t["id_token"].as_str().unwrap())["amr"], json!(["pwd"]));
    let form = format!("grant_type=refresh_token&refresh_token={}", t["refresh_token"].as_str().unwrap());
    let r = post_as(&p, "/oauth2/v1/token", "application/x-www-form-urlencoded", form.into_bytes(), &[], Some((web, secret.unwrap()))).await;
    assert_eq!(acr_of(&body(&r), "access_token"), Some(json!("password")), "{}", r.text());
    // That session answers an essential acr without a new sign-in; a
    // request that insists on it can also sign in again.
    let r = get(&p, &authorize_url(web, web_cb, &pair.challenge, &format!("&prompt=none{}", essential(json!(["password"])))), &[&b.session]).await;
    assert!(query(r.header("Location").unwrap()).contains_key("code"), "{:?}", r.header("Location"));
    let b = sign_in_with(&p, web, web_cb, &format!("&prompt=login{}", essential(json!(["password"]))), "signIn", input).await;
    assert_eq!(acr_of(&tokens(&p, web, &b, web_cb, secret).await, "id_token"), Some(json!("password")));
}

#[tokio::test]
async fn logout_without_proof_asks_the_user_first() {
    let p = provider_with(|_| {});
    let b = sign_in(&p, "e2e", CB, "", "lou@example.com").await;
    let t = tokens(&p, "e2e", &b, CB, None).await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    async fn alive_with(p: &Provider, at: &str) -> bool {
        let headers = vec![("Authorization".to_owned(), format!("Bearer {at}"))];
        p.handle(HttpRequest::new("GET", "/oauth2/v1/userinfo", headers, vec![])).await.status == 200
    }
    let alive = |p| alive_with(p, &at);
    // A cross-site GET with no hint: a confirmation page, nothing ended.
    let r = get(&p, "/oauth2/v1/logout?post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%2Flogged-out&client_id=e2e", &[&b.session]).await;
    assert_eq!(r.status, 200);
    let page = r.text();
    assert!(page.contains("name=\"confirm\""), "{page}");
    // The form's answer redirects to the post-logout URI, which the page's
    // form-action must allow (browsers apply it to the redirect too).
    let policy = r.header("Content-Security-Policy").unwrap();
    assert!(policy.contains("form-action 'self' http://127.0.0.1"), "{policy}");
    assert!(r.header("Set-Cookie").is_none());
    assert!(alive(&p).await, "the session still stands");
    let token = page.split("name=\"confirm\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    // The confirmation from a form on another site comes without the cookie (SameSite=Lax).
    let form = format!("confirm={token}").into_bytes();
    let r = post(&p, "/oauth2/v1/logout", "application/x-www-form-urlencoded", form.clone(), &[]).await;
    assert_eq!(r.status, 403);
    assert!(alive(&p).await);
    // A hint for another session ends nothing.
    let other = sign_in(&p, "e2e", CB, "", "other@example.com").await;
    let other_id = tokens(&p, "e2e", &other, CB, None).await["id_token"].as_str().unwrap().to_owned();
    let r = get(&p, &format!("/oauth2/v1/logout?id_token_hint={other_id}"), &[&b.session]).await;
    assert_eq!(r.status, 200, "asks instead");
    assert!(r.text().contains("name=\"confirm\""));
    assert!(alive(&p).await);
    // The user clicks "Sign out": the session ends and the browser goes on.
    let r = post(&p, "/oauth2/v1/logout", "application/x-www-form-urlencoded", form.clone(), &[&b.session]).await;
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(r.header("Location"), Some("http://127.0.0.1/logged-out"));
    assert!(!alive(&p).await);
    assert_eq!(post(&p, "/oauth2/v1/logout", "application/x-www-form-urlencoded", form, &[&b.session]).await.status, 400, "once");
}

#[tokio::test]
async fn logout_with_the_sessions_own_hint_ends_it_at_once() {
    let p = provider_with(|_| {});
    let b = sign_in(&p, "e2e", CB, "", "hal@example.com").await;
    let id = tokens(&p, "e2e", &b, CB, None).await["id_token"].as_str().unwrap().to_owned();
    let r = get(&p, &format!("/oauth2/v1/logout?id_token_hint={id}&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%2Flogged-out&state=s%26"), &[&b.session]).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("Location"), Some("http://127.0.0.1/logged-out?state=s%26"));
    assert!(r.header("Set-Cookie").unwrap().contains("Max-Age=0"));
    let pair = pkce::generate(None).unwrap();
    let r = get(&p, &authorize_url("e2e", CB, &pair.challenge, "&prompt=none"), &[&b.session]).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "login_required");
}

#[tokio::test]
async fn prompt_none_with_a_hint_for_another_user_needs_a_login() {
    let p = provider_with(|_| {});
    let ann = sign_in(&p, "e2e", CB, "", "ann@example.com").await;
    let bob = sign_in(&p, "e2e", CB, "", "bob@example.com").await;
    let bob_id = tokens(&p, "e2e", &bob, CB, None).await["id_token"].as_str().unwrap().to_owned();
    let ann_id = tokens(&p, "e2e", &ann, CB, None).await["id_token"].as_str().unwrap().to_owned();
    let pair = pkce::generate(None).unwrap();
    let r = get(&p, &authorize_url("e2e", CB, &pair.challenge, &format!("&prompt=none&id_token_hint={bob_id}")), &[&ann.session]).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "login_required", "OIDC Core §3.1.2.1");
    let r = get(&p, &authorize_url("e2e", CB, &pair.challenge, &format!("&prompt=none&id_token_hint={ann_id}")), &[&ann.session]).await;
    assert!(query(r.header("Location").unwrap()).contains_key("code"));
    let r = get(&p, &authorize_url("e2e", CB, &pair.challenge, "&prompt=none&id_token_hint=e30.e30.sig"), &[&ann.session]).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "invalid_request");
}

#[tokio::test]
async fn authorize_follows_the_musts_of_oidc_core_and_rfc_6749() {
    let p = provider_with(|_| {});
    let pair = pkce::generate(None).unwrap();
    // Unknown scope values are ignored (OIDC Core §3.1.2.1).
    let b = sign_in(&p, "e2e", CB, "", "sc@example.com").await;
    let url = authorize_url("e2e", CB, &pair.challenge, "").replace("scope=openid%20email", "scope=openid%20foo");
    let r = get(&p, &format!("{url}&prompt=none"), &[&b.session]).await;
    assert!(query(r.header("Location").unwrap()).contains_key("code"), "{:?}", r.header("Location"));
    // state comes back as the bytes sent (RFC 6749 §4.1.2), even not UTF-8.
    let url = authorize_url("e2e", CB, &pair.challenge, "&prompt=none").replace("state=st-1", "state=%ff%fe");
    let r = get(&p, &url, &[&b.session]).await;
    let loc = r.header("Location").unwrap();
    assert!(loc.contains("state=%FF%FE"), "{loc}");
    assert!(!loc.contains("EF%BF%BD"), "{loc}");
    // An S256 challenge is exactly 43 characters (RFC 7636 §4.2).
    let long = format!("{}A", pair.challenge);
    let r = get(&p, &authorize_url("e2e", CB, &long, ""), &[]).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "invalid_request");
    // A repeated redirect_uri or client_id: the error page, never a redirect.
    for extra in [format!("&redirect_uri={}", enc(CB)), "&client_id=e2e".to_owned()] {
        let r = get(&p, &authorize_url("e2e", CB, &pair.challenge, &extra), &[]).await;
        assert_eq!(r.status, 400, "{extra}");
        assert!(r.header("Location").is_none());
    }
    // CR/LF in a loopback redirect_uri never matches (parsers drop them).
    for bad in ["http://127.0.0.1:9/c%0Aallback", "http://127.0.0.1:9/call%0Dback", "http://127.0.0.1:9/callback%09"] {
        let r = get(&p, &format!("/oauth2/v1/authorize?response_type=code&client_id=e2e&redirect_uri={bad}&code_challenge={}&code_challenge_method=S256", pair.challenge), &[]).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.header("Location").is_none());
    }
    // Oversized parameters are refused, not stored.
    let url = authorize_url("e2e", CB, &pair.challenge, &format!("&state={}", "s".repeat(3000))).replace("&state=st-1", "");
    let r = get(&p, &url, &[]).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "invalid_request");
    let url = authorize_url("e2e", CB, &pair.challenge, &format!("&login_hint={}", "h".repeat(3000)));
    let r = get(&p, &url, &[]).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "invalid_request");
    // Redirects carry no Referer (RFC 9700 §4.2.4); 405s are not cached.
    let r = get(&p, &authorize_url("e2e", CB, &pair.challenge, ""), &[]).await;
    assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
    for path in ["/oauth2/v1/token", "/oauth2/v1/revoke"] {
        let r = get(&p, path, &[]).await;
        assert_eq!(r.status, 405);
        assert_eq!(r.header("Cache-Control"), Some("no-store"), "{path}");
    }
}

#[tokio::test]
async fn flow_executions_need_their_secret_or_their_browser() {
    let p = provider_with(|_| {});
    let started = post_json(&p, "/v1/flow/start", json!({"flowId": "sign-up-or-in"})).await;
    let browser = set_cookie(&started, "idflow_browser").unwrap();
    assert!(started.headers.iter().any(|(k, v)| k == "Set-Cookie" && v.contains("HttpOnly") && v.contains("SameSite=Lax")));
    let s = body(&started);
    let answer = |extra: Value| {
        let mut v = json!({"executionId": s["executionId"], "stepId": s["stepId"], "interactionId": "submit", "input": {"email": "eve@example.com"}});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    // Login CSRF: a second browser with the id alone, or a wrong secret.
    for extra in [json!({}), json!({"executionSecret": "X-wrong"})] {
        let r = post_json(&p, "/v1/flow/next", answer(extra)).await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(body(&r)["error"]["code"], "access_denied");
    }
    let r = post(&p, "/v1/flow/next", "application/json", answer(json!({})).to_string().into_bytes(), &["idflow_browser=Bother-browser-0123456789ab"]).await;
    assert_eq!(r.status, 403);
    // The browser that started it (the built-in page) needs nothing else.
    let r = post(&p, "/v1/flow/next", "application/json", answer(json!({})).to_string().into_bytes(), &[&browser]).await;
    assert_eq!(body(&r)["status"], "completed", "{}", r.text());
    // Flow input is bounded.
    let big = json!({"flowId": "sign-up-or-in", "input": {"email": "x".repeat(17 * 1024)}});
    let r = post_json(&p, "/v1/flow/start", big).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn social_login_by_api_goes_only_to_approved_urls_with_pkce() {
    let p = provider_with(|d| {
        d["redirectUrls"] = json!(["https://app.example", "http://127.0.0.1:7000/after", "com.example.app:/cb"]);
        d["oauthProviders"] = json!([{"name": "acme", "clientId": "c", "clientSecret": "s-0123456789abcdef",
            "authorizationEndpoint": "https://idp.example/authorize", "tokenEndpoint": "https://idp.example/token",
            "redirectUrl": "https://own.example/back"}]);
    });
    let pair = pkce::generate(None).unwrap();
    let start = |redirect: Option<&str>, challenge: Option<&str>| {
        let mut v = json!({"provider": "acme"});
        if let Some(r) = redirect {
            v["redirectUrl"] = r.into();
        }
        if let Some(c) = challenge {
            v["codeChallenge"] = c.into();
        }
        v
    };
    for evil in ["https://evil.example/steal", "com.evil.app:/cb", "https://app.example.evil.example/", "https://user@app.example/x", "http://127.0.0.1:7000/after\n"] {
        let r = post_json(&p, "/v1/auth/oauth/authorize", start(Some(evil), Some(&pair.challenge))).await;
        assert_eq!(r.status, 400, "{evil}");
        assert_eq!(body(&r)["error"]["code"], "invalid_request");
        assert!(body(&r)["error"]["message"].as_str().unwrap().contains("redirectUrls"), "{}", r.text());
    }
    assert!(p.store().records("oauth_state").unwrap().is_empty(), "nothing is stored for a refused start");
    for ok in ["https://app.example/any/path", "http://127.0.0.1:7000/after", "com.example.app:/cb"] {
        let r = post_json(&p, "/v1/auth/oauth/authorize", start(Some(ok), Some(&pair.challenge))).await;
        assert_eq!(r.status, 200, "{ok}: {}", r.text());
    }
    // The provider's own redirectUrl is approved.
    assert_eq!(post_json(&p, "/v1/auth/oauth/authorize", start(None, Some(&pair.challenge))).await.status, 200);
    // PKCE is required, S256 only.
    let r = post_json(&p, "/v1/auth/oauth/authorize", start(Some("https://app.example/x"), None)).await;
    assert!(body(&r)["error"]["message"].as_str().unwrap().contains("codeChallenge"));
    let r = post_json(&p, "/v1/auth/oauth/authorize", start(Some("https://app.example/x"), Some(&format!("{}A", pair.challenge)))).await;
    assert_eq!(r.status, 400);
    let mut plain = start(Some("https://app.example/x"), Some(&pair.challenge));
    plain["codeChallengeMethod"] = "plain".into();
    assert_eq!(post_json(&p, "/v1/auth/oauth/authorize", plain).await.status, 400);
    // The exchange needs the verifier.
    let r = post_json(&p, "/v1/auth/oauth/exchange", json!({"code": "c"})).await;
    assert!(body(&r)["error"]["message"].as_str().unwrap().contains("codeVerifier"));
}

#[tokio::test]
async fn a_lost_refresh_reply_is_recovered_within_the_grace_window_and_only_then() {
    let p = provider_with(|d| d["tokens"]["refreshReuseGrace"] = json!(30));
    let web_cb = "http://127.0.0.1/cb";
    let secret = Some(("web", "web-secret-0123456789abcdef"));
    let b = sign_in(&p, "web", web_cb, "", "gil@example.com").await;
    let t = tokens(&p, "web", &b, web_cb, secret.map(|s| s.1)).await;
    let refresh = |token: &str| {
        let form = format!("grant_type=refresh_token&refresh_token={token}");
        let p = &p;
        async move { post_as(p, "/oauth2/v1/token", "application/x-www-form-urlencoded", form.into_bytes(), &[], secret).await }
    };
    let rt0 = t["refresh_token"].as_str().unwrap().to_owned();
    let first = refresh(&rt0).await;
    assert_eq!(first.status, 200, "{}", first.text());
    // The reply was lost; the client retries with the same token.
    let retry = refresh(&rt0).await;
    assert_eq!(retry.status, 200, "{}", retry.text());
    assert_eq!(body(&retry), body(&first), "the same answer, the same new pair");
    // Once the successor is used, the old token is a leak: the family goes.
    let rt1 = body(&first)["refresh_token"].as_str().unwrap().to_owned();
    let second = refresh(&rt1).await;
    assert_eq!(second.status, 200);
    let replay = refresh(&rt0).await;
    assert_eq!(body(&replay)["error"], "invalid_grant");
    let rt2 = body(&second)["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(body(&refresh(&rt2).await)["error"], "invalid_grant", "the family is revoked");
    // Without a grace window (the default) a second presentation revokes at once.
    let p = provider_with(|_| {});
    let b = sign_in(&p, "web", web_cb, "", "gil@example.com").await;
    let t = tokens(&p, "web", &b, web_cb, secret.map(|s| s.1)).await;
    let form = format!("grant_type=refresh_token&refresh_token={}", t["refresh_token"].as_str().unwrap());
    let once = post_as(&p, "/oauth2/v1/token", "application/x-www-form-urlencoded", form.clone().into_bytes(), &[], secret).await;
    assert_eq!(once.status, 200);
    let twice = post_as(&p, "/oauth2/v1/token", "application/x-www-form-urlencoded", form.into_bytes(), &[], secret).await;
    assert_eq!(body(&twice)["error"], "invalid_grant");
    // The grace window is bounded.
    let doc = json!({"projectId": "x", "baseUrl": BASE, "tokens": {"refreshReuseGrace": 3600}});
    let e = Project::from_json(&doc.to_string(), &e2e_dir()).unwrap_err();
    assert!(e.message.contains("refreshReuseGrace"), "{}", e.message);
}

/// A request from `ip` (as `idflow serve` passes the peer).
async fn from_ip(p: &Provider, method: &str, path: &str, headers: Vec<(String, String)>, body: Vec<u8>, ip: &str) -> HttpResponse {
    p.handle(HttpRequest::new(method, path, headers, body).with_peer(Some(ip.parse().unwrap()))).await
}

fn form_headers(basic: Option<(&str, &str)>) -> Vec<(String, String)> {
    let mut h = vec![("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
    if let Some((id, secret)) = basic {
        use base64::Engine;
        h.push(("Authorization".into(), format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))));
    }
    h
}

#[tokio::test]
async fn guessing_client_secrets_is_rate_limited_per_client_and_per_address() {
    let p = provider_with(|d| d["rateLimits"] = json!({"clientAuthFailuresPerClient": 5, "clientAuthFailuresPerIp": 8}));
    let cc = b"grant_type=client_credentials".to_vec();
    for _ in 0..5 {
        let r = from_ip(&p, "POST", "/oauth2/v1/token", form_headers(Some(("K-reporting", "wrong-secret-000000000"))), cc.clone(), "198.51.100.1").await;
        assert_eq!(r.status, 401);
    }
    // Now even the right secret waits: the secret is not checked at all.
    let r = from_ip(&p, "POST", "/oauth2/v1/token", form_headers(Some(("K-reporting", "reporting-secret-0123456789"))), cc.clone(), "198.51.100.2").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(body(&r)["error"], "rate_limited");
    let retry: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    // Other clients are not affected...
    let web = from_ip(&p, "POST", "/oauth2/v1/token", form_headers(Some(("web", "wrong-web-secret-00000"))), cc.clone(), "198.51.100.1").await;
    assert_eq!(web.status, 401);
    // ...until the address itself has failed too often (8 times), whatever the client id.
    for i in 0..2 {
        let id = format!("nobody-{i}");
        let r = from_ip(&p, "POST", "/oauth2/v1/token", form_headers(Some((&id, "x-000000000000000"))), cc.clone(), "198.51.100.1").await;
        assert_eq!(r.status, 401);
    }
    let r = from_ip(&p, "POST", "/oauth2/v1/token", form_headers(Some(("web", "web-secret-0123456789abcdef"))), cc.clone(), "198.51.100.1").await;
    assert_eq!(r.status, 429);
    let r = from_ip(&p, "POST", "/oauth2/v1/revoke", form_headers(Some(("web", "web-secret-0123456789abcdef"))), b"token=x".to_vec(), "198.51.100.1").await;
    assert_eq!(r.status, 429, "revocation authenticates clients too");
    // Limits off: nothing is counted.
    let p = provider_with(|d| d["rateLimits"] = json!({"enabled": false, "clientAuthFailuresPerClient": 1}));
    for _ in 0..3 {
        let r = from_ip(&p, "POST", "/oauth2/v1/token", form_headers(Some(("K-reporting", "wrong-secret-000000000"))), cc.clone(), "198.51.100.1").await;
        assert_eq!(r.status, 401);
    }
}

#[tokio::test]
async fn flow_starts_answers_and_social_calls_are_rate_limited() {
    let p = provider_with(|d| {
        d["rateLimits"] = json!({"flowStartsPerIp": 3, "answersPerExecution": 4, "socialApiPerIp": 2});
        d["trustedProxies"] = json!(["10.0.0.0/8"]);
    });
    let json_h = || vec![("Content-Type".to_owned(), "application/json".to_owned())];
    let start = json!({"flowId": "sign-up-or-in"}).to_string().into_bytes();
    for _ in 0..3 {
        assert_eq!(from_ip(&p, "POST", "/v1/flow/start", json_h(), start.clone(), "203.0.113.5").await.status, 200);
    }
    let r = from_ip(&p, "POST", "/v1/flow/start", json_h(), start.clone(), "203.0.113.5").await;
    assert_eq!(r.status, 429);
    assert_eq!(body(&r)["error"]["code"], "rate_limited");
    assert!(r.header("Retry-After").is_some());
    // Another address is its own count; behind a trusted proxy, the
    // forwarded address counts, and a forged header from outside does not.
    assert_eq!(from_ip(&p, "POST", "/v1/flow/start", json_h(), start.clone(), "203.0.113.6").await.status, 200);
    let mut via = json_h();
    via.push(("X-Forwarded-For".into(), "192.0.2.77".into()));
    assert_eq!(from_ip(&p, "POST", "/v1/flow/start", via.clone(), start.clone(), "10.0.0.2").await.status, 200);
    let mut forged = json_h();
    forged.push(("X-Forwarded-For".into(), "192.0.2.78".into()));
    assert_eq!(from_ip(&p, "POST", "/v1/flow/start", forged, start.clone(), "203.0.113.5").await.status, 429);
    // Answers per execution: wrong answers count too.
    let s = body(&from_ip(&p, "POST", "/v1/flow/start", json_h(), start.clone(), "203.0.113.9").await);
    let answer = json!({"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"], "interactionId": "submit", "input": {"email": "not an email"}});
    for _ in 0..4 {
        let r = from_ip(&p, "POST", "/v1/flow/next", json_h(), answer.to_string().into_bytes(), "203.0.113.9").await;
        assert_eq!(r.status, 200);
        assert_eq!(body(&r)["status"], "waiting");
    }
    let r = from_ip(&p, "POST", "/v1/flow/next", json_h(), answer.to_string().into_bytes(), "203.0.113.9").await;
    assert_eq!(r.status, 429);
    // Social login API calls per address.
    let social = json!({"provider": "nobody", "codeChallenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGcSsw6C0M"}).to_string().into_bytes();
    for _ in 0..2 {
        assert_eq!(from_ip(&p, "POST", "/v1/auth/oauth/authorize", json_h(), social.clone(), "203.0.113.11").await.status, 400);
    }
    assert_eq!(from_ip(&p, "POST", "/v1/auth/oauth/authorize", json_h(), social.clone(), "203.0.113.11").await.status, 429);
    let exchange = json!({"code": "c", "codeVerifier": "v"}).to_string().into_bytes();
    assert_eq!(from_ip(&p, "POST", "/v1/auth/oauth/exchange", json_h(), exchange, "203.0.113.11").await.status, 429);
    // A host that does not give the address is not counted per address.
    for _ in 0..5 {
        assert_eq!(post_json(&p, "/v1/flow/start", json!({"flowId": "sign-up-or-in"})).await.status, 200);
    }
}

#[tokio::test]
async fn a_flow_start_keeps_only_the_inputs_the_flow_reads() {
    let p = provider_with(|_| {});
    let s = body(&post_json(&p, "/v1/flow/start", json!({"flowId": "sign-up-or-in", "input": {"email": "kim@example.com", "junk": "x".repeat(8000)}})).await);
    assert_eq!(s["status"], "waiting", "{s}");
    let stored = p.store().execution(s["executionId"].as_str().unwrap()).unwrap().unwrap();
    assert_eq!(stored.context["form"]["email"], "kim@example.com");
    assert!(stored.context["form"].get("junk").is_none(), "{}", stored.context);
}
