//! The OIDC provider through its sans-IO edge (`Provider::handle`): every
//! endpoint, every error path the provider issue names, restart on the same
//! SQLite database and key rotation. Real clients against `idflow serve`
//! live in tests/e2e.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use idflow::jose::{self, Algorithm, Key, KeySet, Validation};
use idflow::oidc::provider::{keys, HttpRequest, HttpResponse, Provider};
use idflow::pkce;
use idflow::project::Project;
use idflow::store::{MemoryStore, SqliteStore, Store};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const BASE: &str = "http://127.0.0.1:18181";
const ISSUER: &str = "http://127.0.0.1:18181/e2e";
const CB: &str = "http://127.0.0.1:4567/callback";

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e")
}

/// The e2e project, with `edit` applied to its JSON first.
fn project_with(edit: impl FnOnce(&mut Value)) -> Project {
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(e2e_dir().join("project.json")).unwrap()).unwrap();
    edit(&mut doc);
    Project::from_json(&doc.to_string(), &e2e_dir()).unwrap()
}

fn provider_on(store: Arc<dyn Store>, edit: impl FnOnce(&mut Value)) -> Provider {
    Provider::new(project_with(edit), store).unwrap()
}

fn provider() -> Provider {
    provider_on(Arc::new(MemoryStore::new()), |_| {})
}

fn query(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn get(p: &Provider, target: &str, cookie: Option<&str>) -> HttpResponse {
    let headers = cookie.map(|c| vec![("Cookie".to_owned(), c.to_owned())]).unwrap_or_default();
    p.handle(HttpRequest::new("GET", target, headers, vec![])).await
}

async fn post_json(p: &Provider, path: &str, body: Value) -> HttpResponse {
    let headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    p.handle(HttpRequest::new("POST", path, headers, body.to_string().into_bytes())).await
}

async fn post_form(p: &Provider, path: &str, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> HttpResponse {
    let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let mut headers = vec![("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
    if let Some((id, secret)) = basic {
        let raw = format!("{}:{}", enc(id), enc(secret));
        use base64::Engine;
        headers.push(("Authorization".into(), format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))));
    }
    p.handle(HttpRequest::new("POST", path, headers, body.into_bytes())).await
}

fn body(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

struct Login {
    code: String,
    state: String,
    cookie: String,
    verifier: String,
    redirect: String,
}

fn authorize_url(client: &str, redirect: &str, scope: &str, challenge: Option<&str>, extra: &str) -> String {
    let mut url = format!("/oauth2/v1/authorize?response_type=code&client_id={client}&redirect_uri={}&scope={}&state=st-1&nonce=n-1", enc(redirect), enc(scope));
    if let Some(c) = challenge {
        url.push_str(&format!("&code_challenge={c}&code_challenge_method=S256"));
    }
    url + extra
}

/// The first `name=value` of a response's Set-Cookie headers.
fn set_cookie(r: &HttpResponse, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap_or_default().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// The browser's side of a finished flow: GET the delivery URL with the
/// browser cookie; the 302 goes to the client with the code.
async fn deliver(p: &Provider, url: &str, browser: &str) -> HttpResponse {
    assert!(url.starts_with(&format!("{BASE}/oauth2/v1/authorize/complete?id=")), "{url}");
    get(p, url, Some(browser)).await
}

/// Authorize → hosted page redirect → flow API → delivery → code.
async fn login(p: &Provider, client: &str, redirect: &str, scope: &str, email: &str) -> Login {
    login_with(p, client, redirect, scope, email, "").await
}

/// [`login`] with `extra` authorization parameters (`&name=value...`).
async fn login_with(p: &Provider, client: &str, redirect: &str, scope: &str, email: &str, extra: &str) -> Login {
    let pair = pkce::generate(None).unwrap();
    let r = get(p, &authorize_url(client, redirect, scope, Some(&pair.challenge), extra), None).await;
    assert_eq!(r.status, 302, "{}", r.text());
    let browser = set_cookie(&r, "idflow_browser").expect("authorize binds the request to the browser");
    let location = r.header("Location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{BASE}/login/e2e?flow=")), "{location}");
    let q = query(&location);
    let started = post_json(p, "/v1/flow/start", json!({"flowId": q["flow"], "request": q["request"]})).await;
    let s = body(&started);
    assert_eq!(s["status"], "waiting", "{s}");
    let done = post_json(
        p,
        "/v1/flow/next",
        json!({"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"], "interactionId": "submit", "input": {"email": email}}),
    )
    .await;
    let d = body(&done);
    assert_eq!(d["status"], "completed", "{d}");
    assert!(d.get("authInfo").is_none(), "an OIDC flow hands out a code, not session JWTs");
    let delivered = deliver(p, d["redirect"]["url"].as_str().unwrap(), &browser).await;
    assert_eq!(delivered.status, 302, "{}", delivered.text());
    let url = delivered.header("Location").unwrap().to_owned();
    assert!(url.starts_with(redirect), "{url}");
    let cookie = delivered.header("Set-Cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let q = query(&url);
    assert_eq!(q["iss"], ISSUER);
    Login { code: q["code"].clone(), state: q["state"].clone(), cookie, verifier: pair.verifier, redirect: redirect.to_owned() }
}

async fn redeem(p: &Provider, client: &str, l: &Login, basic: Option<(&str, &str)>) -> HttpResponse {
    let mut form = vec![("grant_type", "authorization_code"), ("code", &l.code), ("redirect_uri", &l.redirect), ("code_verifier", &l.verifier)];
    if basic.is_none() {
        form.push(("client_id", client));
    }
    post_form(p, "/oauth2/v1/token", &form, basic).await
}

fn verify(p: &Provider, token: &str, aud: &str) -> Map<String, Value> {
    let jwks = KeySet::from_jwks_json(&p.signing_keys().jwks_json).unwrap();
    let mut v = Validation::new(&[Algorithm::RS256]);
    v.issuer = Some(ISSUER.into());
    v.audience = vec![aud.into()];
    jose::verify(token, &jwks, &v).unwrap().claims
}

fn oauth_error(r: &HttpResponse) -> String {
    body(r)["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn discovery_and_jwks_describe_the_provider() {
    let p = provider();
    let r = get(&p, "/e2e/.well-known/openid-configuration", None).await;
    assert_eq!(r.status, 200);
    let d = body(&r);
    assert_eq!(d["issuer"], ISSUER);
    assert_eq!(d["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    // One type for both sides: what the provider serves is what the client reads.
    assert_eq!(idflow::oidc::discovery::ProviderMetadata::from_json(&r.body).unwrap(), p.metadata());
    for (k, path) in [
        ("authorization_endpoint", "/oauth2/v1/authorize"),
        ("token_endpoint", "/oauth2/v1/token"),
        ("userinfo_endpoint", "/oauth2/v1/userinfo"),
        ("end_session_endpoint", "/oauth2/v1/logout"),
        ("revocation_endpoint", "/oauth2/v1/revoke"),
    ] {
        assert_eq!(d[k], format!("{BASE}{path}"));
    }
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        d["scopes_supported"],
        json!(["openid", "profile", "email", "address", "phone", "offline_access", "descope.custom_claims", "descope.claims"])
    );
    assert_eq!(d["token_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(d["response_types_supported"], json!(["code", "id_token", "id_token token"]));
    let claims: Vec<&str> = d["claims_supported"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(d["claims_parameter_supported"], true);
    for c in [
        "iss", "aud", "sub", "auth_time", "acr", "email_verified", "phone_number_verified", "given_name", "middle_name", "nickname",
        "preferred_username", "profile", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at", "address", "plan",
        "loginEmail",
    ] {
        assert!(claims.contains(&c), "{c} missing from claims_supported");
    }
    let jwks = body(&get(&p, "/e2e/.well-known/jwks.json", None).await);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    assert!(keys[0].get("d").is_none(), "no private parts in the JWKS");
    assert_eq!(body(&get(&p, "/health", None).await)["status"], "ok");
    assert_eq!(get(&p, "/nope", None).await.status, 404);
    assert_eq!(get(&p, "/oauth2/v1/token", None).await.status, 405);
    let pre = p.handle(HttpRequest::new("OPTIONS", "/oauth2/v1/token", vec![], vec![])).await;
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("Access-Control-Allow-Origin"), Some("*"));
    // One route table: a known path with another method is 405 naming the
    // allowed ones; CORS only where web pages on other origins call.
    for (method, path, allow, cors) in [
        ("PUT", "/oauth2/v1/authorize", "GET, POST", false),
        ("DELETE", "/oauth2/v1/userinfo", "GET, POST", true),
        ("GET", "/v1/flow/start", "POST", false),
        ("POST", "/e2e/.well-known/jwks.json", "GET", true),
        ("POST", "/login/e2e", "GET", false),
        ("OPTIONS", "/oauth2/v1/authorize", "GET, POST", false),
    ] {
        let r = p.handle(HttpRequest::new(method, path, vec![], vec![])).await;
        assert_eq!((r.status, r.header("Allow")), (405, Some(allow)), "{method} {path}");
        assert_eq!(r.header("Access-Control-Allow-Origin").is_some(), cors, "{method} {path}");
    }
    for path in ["/other/.well-known/jwks.json", "/login/other", "/e2e/.well-known/nope", "/oauth2/v1/token/x"] {
        assert_eq!(get(&p, path, None).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn code_flow_with_pkce_issues_standard_tokens() {
    let p = provider();
    let l = login(&p, "e2e", CB, "openid profile email offline_access", "ann@example.com").await;
    assert_eq!(l.state, "st-1");
    let r = redeem(&p, "e2e", &l, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Cache-Control"), Some("no-store"));
    let t = body(&r);
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 600);
    assert!(t["refresh_token"].is_string(), "offline_access gives a public client a refresh token");
    let id = verify(&p, t["id_token"].as_str().unwrap(), "e2e");
    assert_eq!(id["azp"], "e2e");
    assert_eq!(id["nonce"], "n-1");
    // An access token is issued, so the scopes' claims are at userinfo,
    // not in the id_token (OIDC Core §5.4).
    for claim in ["email", "email_verified", "name", "updated_at"] {
        assert!(!id.contains_key(claim), "id_token carries {claim}");
    }
    for claim in ["auth_time", "sid", "at_hash", "iat", "exp"] {
        assert!(id.contains_key(claim), "id_token lacks {claim}");
    }
    // Typing an email verifies nothing: no amr names a method (RFC 8176),
    // and no acr claims an authentication context.
    assert!(!id.contains_key("amr") && !id.contains_key("acr"), "{id:?}");
    // at_hash = left half of SHA-256(access_token), base64url.
    let at = t["access_token"].as_str().unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, at.as_bytes());
    use base64::Engine;
    let half = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
    assert_eq!(id["at_hash"], half);
    let access = verify(&p, at, "e2e");
    assert_eq!(access["client_id"], "e2e");
    assert_eq!(access["scope"], "openid profile email offline_access");
    assert!(access["jti"].is_string());
    assert_eq!(jose::decode_unverified(at).unwrap().header["typ"], "at+jwt");
    // userinfo, GET with the header and POST with the form body.
    let headers = vec![("Authorization".to_owned(), format!("Bearer {at}"))];
    let u = p.handle(HttpRequest::new("GET", "/oauth2/v1/userinfo", headers, vec![])).await;
    assert_eq!(u.status, 200, "{}", u.text());
    let info = body(&u);
    assert_eq!(info["sub"], id["sub"]);
    assert_eq!(info["email"], "ann@example.com");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["name"], "ann@example.com");
    assert_eq!(info["preferred_username"], "ann@example.com");
    let u = post_form(&p, "/oauth2/v1/userinfo", &[("access_token", at)], None).await;
    assert_eq!(body(&u)["sub"], id["sub"]);
    // Without offline_access, a public client gets no refresh token.
    let l = login(&p, "e2e", CB, "openid", "ann@example.com").await;
    assert!(body(&redeem(&p, "e2e", &l, None).await).get("refresh_token").is_none());
}

#[tokio::test]
async fn custom_claims_and_tenants_follow_the_scopes() {
    let p = provider();
    let user = idflow::users::create_user(&**p.store(), "cat@example.com", &Map::new()).unwrap();
    idflow::users::update_user(
        &**p.store(),
        &user.user_id,
        &json!({"tenants": [{"tenantId": "T1", "roles": ["Tenant Admin"]}]}).as_object().unwrap().clone(),
    )
    .unwrap();
    let secret = ("web", "web-secret-0123456789abcdef");
    let l = login(&p, "web", "http://127.0.0.1/cb", "openid descope.custom_claims descope.claims", "cat@example.com").await;
    let t = body(&redeem(&p, "web", &l, Some(secret)).await);
    let id = verify(&p, t["id_token"].as_str().unwrap(), "web");
    assert_eq!(id["plan"], "pro");
    assert_eq!(id["loginEmail"], "cat@example.com");
    assert_eq!(id["tenants"], json!({"T1": {"roles": ["Tenant Admin"], "permissions": ["User Admin", "SSO Admin"]}}));
    let access = verify(&p, t["access_token"].as_str().unwrap(), "e2e");
    assert_eq!(access["plan"], "pro");
    assert!(access.contains_key("tenants"));
    let headers = vec![("Authorization".to_owned(), format!("Bearer {}", t["access_token"].as_str().unwrap()))];
    let info = body(&p.handle(HttpRequest::new("GET", "/oauth2/v1/userinfo", headers, vec![])).await);
    assert_eq!(info["plan"], "pro");
    assert_eq!(info["tenants"]["T1"]["roles"], json!(["Tenant Admin"]));
    // A confidential client refreshes without offline_access.
    assert!(t["refresh_token"].is_string());
    // Without the scopes, none of it is released.
    let l = login(&p, "web", "http://127.0.0.1/cb", "openid", "cat@example.com").await;
    let t = body(&redeem(&p, "web", &l, Some(secret)).await);
    let id = verify(&p, t["id_token"].as_str().unwrap(), "web");
    assert!(!id.contains_key("plan") && !id.contains_key("tenants") && !id.contains_key("email"));
}

#[tokio::test]
async fn bad_clients_and_redirect_uris_never_redirect() {
    let p = provider();
    for url in [
        authorize_url("nobody", CB, "openid", None, ""),
        authorize_url("e2e", "https://evil.example/callback", "openid", None, ""),
        authorize_url("e2e", "http://127.0.0.1:9/elsewhere", "openid", None, ""),
        "/oauth2/v1/authorize?response_type=code&client_id=e2e".to_owned(),
    ] {
        let r = get(&p, &url, None).await;
        assert_eq!(r.status, 400, "{url}");
        assert!(r.header("Location").is_none());
        assert!(r.header("Content-Type").unwrap().starts_with("text/html"));
        assert!(r.header("Content-Security-Policy").unwrap().contains("frame-ancestors 'none'"));
    }
}

#[tokio::test]
async fn authorize_errors_redirect_with_rfc_6749_codes() {
    let p = provider();
    let c = pkce::generate(None).unwrap().challenge;
    let cases = [
        (authorize_url("e2e", CB, "openid", None, ""), "invalid_request"), // public client without PKCE
        (authorize_url("e2e", CB, "openid", None, &format!("&code_challenge={c}&code_challenge_method=plain")), "invalid_request"),
        (authorize_url("e2e", CB, "openid", None, &format!("&code_challenge={c}")), "invalid_request"), // defaults to plain
        (authorize_url("e2e", CB, "openid", Some(&c), "&prompt=none"), "login_required"),
        (authorize_url("e2e", CB, "openid", Some(&c), "&prompt=none%20login"), "invalid_request"),
        (authorize_url("e2e", CB, "openid", Some(&c), "&response_type=token"), "invalid_request"), // repeated parameter
        (authorize_url("e2e", CB, "openid", Some(&c), "&flow=missing"), "invalid_request"),
    ];
    for (url, want) in cases {
        let r = get(&p, &url, None).await;
        assert_eq!(r.status, 302, "{url}: {}", r.text());
        let loc = r.header("Location").unwrap();
        let q = query(loc);
        assert_eq!(q.get("error").map(String::as_str), Some(want), "{url} → {loc}");
        assert_eq!(q["state"], "st-1");
        assert_eq!(q["iss"], ISSUER);
    }
    // An implicit type the application has not enabled: unsupported, in
    // the type's default response mode, the fragment (OIDC Core §3.2.2.5).
    let url = authorize_url("web-post", "http://127.0.0.1/cb", "openid", None, "").replace("response_type=code", "response_type=id_token");
    let r = get(&p, &url, None).await;
    assert_eq!(r.status, 302, "{}", r.text());
    let loc = r.header("Location").unwrap();
    let (_, fragment) = loc.split_once('#').expect("a fragment response");
    let f: HashMap<String, String> = url::form_urlencoded::parse(fragment.as_bytes()).into_owned().collect();
    assert_eq!(f["error"], "unsupported_response_type", "{loc}");
    assert_eq!(f["state"], "st-1");
    // Asked for form_post, it comes by form_post.
    let r = get(&p, &format!("{url}&response_mode=form_post"), None).await;
    assert!(r.text().contains("name=\"error\" value=\"unsupported_response_type\""), "{}", r.text());
}

#[tokio::test]
async fn codes_are_single_use_and_a_replay_revokes_what_they_issued() {
    let p = provider();
    let l = login(&p, "e2e", CB, "openid offline_access", "dan@example.com").await;
    let t = body(&redeem(&p, "e2e", &l, None).await);
    let at = t["access_token"].as_str().unwrap().to_owned();
    let replay = redeem(&p, "e2e", &l, None).await;
    assert_eq!(replay.status, 400);
    assert_eq!(oauth_error(&replay), "invalid_grant");
    let headers = vec![("Authorization".to_owned(), format!("Bearer {at}"))];
    let u = p.handle(HttpRequest::new("GET", "/oauth2/v1/userinfo", headers, vec![])).await;
    assert_eq!(u.status, 401);
    assert!(u.header("WWW-Authenticate").unwrap().contains("error=\"invalid_token\""));
    let rt = t["refresh_token"].as_str().unwrap();
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", "e2e")], None).await;
    assert_eq!(oauth_error(&r), "invalid_grant");
}

#[tokio::test]
async fn code_redemption_checks_verifier_redirect_uri_client_and_expiry() {
    let p = provider();
    // Wrong verifier.
    let mut l = login(&p, "e2e", CB, "openid", "eve@example.com").await;
    l.verifier = pkce::generate_verifier(None).unwrap();
    assert_eq!(oauth_error(&redeem(&p, "e2e", &l, None).await), "invalid_grant");
    // Missing verifier.
    let l = login(&p, "e2e", CB, "openid", "eve@example.com").await;
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "authorization_code"), ("code", &l.code), ("redirect_uri", CB), ("client_id", "e2e")], None).await;
    assert_eq!(oauth_error(&r), "invalid_grant");
    // Another redirect_uri than the authorize request's.
    let mut l = login(&p, "e2e", CB, "openid", "eve@example.com").await;
    l.redirect = "http://127.0.0.1:9999/callback".into();
    assert_eq!(oauth_error(&redeem(&p, "e2e", &l, None).await), "invalid_grant");
    // A code of another client.
    let l = login(&p, "e2e", CB, "openid", "eve@example.com").await;
    let r = redeem(&p, "web-post", &l, None).await;
    assert_eq!(oauth_error(&r), "invalid_client", "web-post must authenticate with its secret");
    // Unknown grant type and missing parameters.
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "password"), ("client_id", "e2e")], None).await;
    assert_eq!(oauth_error(&r), "unsupported_grant_type");
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "authorization_code"), ("client_id", "e2e")], None).await;
    assert_eq!(oauth_error(&r), "invalid_request");
    // Expired code (codeTtl 1 s).
    let p = provider_on(Arc::new(MemoryStore::new()), |d| d["tokens"]["codeTtl"] = json!(1));
    let l = login(&p, "e2e", CB, "openid", "eve@example.com").await;
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = redeem(&p, "e2e", &l, None).await;
    assert_eq!(oauth_error(&r), "invalid_grant");
    assert!(body(&r)["error_description"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let p = provider();
    let l = login(&p, "e2e", CB, "openid email offline_access", "fay@example.com").await;
    let t = body(&redeem(&p, "e2e", &l, None).await);
    let rt1 = t["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: String, scope: Option<&'static str>| {
        let p = &p;
        async move {
            let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt.as_str()), ("client_id", "e2e")];
            if let Some(s) = scope {
                form.push(("scope", s));
            }
            post_form(p, "/oauth2/v1/token", &form, None).await
        }
    };
    // Widening is refused and does not consume the token.
    let wide = refresh(rt1.clone(), Some("openid email phone offline_access")).await;
    assert_eq!(oauth_error(&wide), "invalid_scope");
    // Narrowing works and rotates.
    let r = refresh(rt1.clone(), Some("openid offline_access")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t2 = body(&r);
    assert_eq!(t2["scope"], "openid offline_access");
    let id = verify(&p, t2["id_token"].as_str().unwrap(), "e2e");
    assert!(!id.contains_key("email"), "narrowed scope releases less");
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    // Reusing the rotated token revokes the family: rt2 dies too.
    assert_eq!(oauth_error(&refresh(rt1, None).await), "invalid_grant");
    assert_eq!(oauth_error(&refresh(rt2, None).await), "invalid_grant");
    let headers = vec![("Authorization".to_owned(), format!("Bearer {}", t2["access_token"].as_str().unwrap()))];
    assert_eq!(p.handle(HttpRequest::new("GET", "/oauth2/v1/userinfo", headers, vec![])).await.status, 401);
}

#[tokio::test]
async fn client_authentication_methods_are_enforced() {
    let p = provider();
    let l = login(&p, "web", "http://127.0.0.1/cb", "openid", "gus@example.com").await;
    let r = redeem(&p, "web", &l, Some(("web", "wrong-secret-0123456789abcdef"))).await;
    assert_eq!(r.status, 401);
    assert_eq!(oauth_error(&r), "invalid_client");
    assert!(r.header("WWW-Authenticate").unwrap().starts_with("Basic"));
    // client_secret_post for a basic client is refused, and the reverse.
    let form = [("grant_type", "authorization_code"), ("code", l.code.as_str()), ("redirect_uri", "http://127.0.0.1/cb"), ("client_id", "web"), ("client_secret", "web-secret-0123456789abcdef")];
    assert_eq!(oauth_error(&post_form(&p, "/oauth2/v1/token", &form, None).await), "invalid_client");
    let l = login(&p, "web-post", "http://127.0.0.1/cb", "openid", "gus@example.com").await;
    let form = [("grant_type", "authorization_code"), ("code", l.code.as_str()), ("redirect_uri", "http://127.0.0.1/cb"), ("client_id", "web-post"), ("client_secret", "post-secret-0123456789abcdef"), ("code_verifier", l.verifier.as_str())];
    let r = post_form(&p, "/oauth2/v1/token", &form, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A public client cannot pretend to be confidential.
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "client_credentials")], Some(("e2e", "anything-0123456789"))).await;
    assert_eq!(oauth_error(&r), "invalid_client");
}

fn assertion(aud: &str, jti: &str, lifetime: u64) -> String {
    let key = Key::from_jwk_json(&std::fs::read_to_string(e2e_dir().join("partner-key.json")).unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({"iss": "partner", "sub": "partner", "aud": aud, "jti": jti, "iat": now, "exp": now + lifetime});
    jose::sign(claims.as_object().unwrap(), &key, None).unwrap()
}

#[tokio::test]
async fn private_key_jwt_assertions_are_verified_and_not_replayable() {
    let p = provider();
    let redeem_with = |code: String, verifier: String, a: String| {
        let p = &p;
        async move {
            let form = [
                ("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", "http://127.0.0.1/partner/cb"),
                ("code_verifier", verifier.as_str()), ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", a.as_str()),
            ];
            post_form(p, "/oauth2/v1/token", &form, None).await
        }
    };
    let token_endpoint = format!("{BASE}/oauth2/v1/token");
    let l = login(&p, "partner", "http://127.0.0.1/partner/cb", "openid", "hal@example.com").await;
    let a = assertion(&token_endpoint, "jti-1", 120);
    let r = redeem_with(l.code.clone(), l.verifier.clone(), a.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The same assertion again: replayed jti.
    let l = login(&p, "partner", "http://127.0.0.1/partner/cb", "openid", "hal@example.com").await;
    let r = redeem_with(l.code.clone(), l.verifier.clone(), a).await;
    assert_eq!(oauth_error(&r), "invalid_client");
    assert!(body(&r)["error_description"].as_str().unwrap().contains("replay"));
    // The issuer is an accepted audience; another audience is not; a long-lived assertion is not.
    let r = redeem_with(l.code.clone(), l.verifier.clone(), assertion("https://elsewhere.example", "jti-2", 60)).await;
    assert_eq!(oauth_error(&r), "invalid_client");
    let r = redeem_with(l.code.clone(), l.verifier.clone(), assertion(ISSUER, "jti-3", 7200)).await;
    assert_eq!(oauth_error(&r), "invalid_client");
    let r = redeem_with(l.code.clone(), l.verifier.clone(), assertion(ISSUER, "jti-4", 60)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn client_credentials_with_access_keys() {
    let p = provider();
    let key = ("K-reporting", "reporting-secret-0123456789");
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "client_credentials"), ("scope", "reports:read")], Some(key)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = body(&r);
    assert!(t.get("refresh_token").is_none() && t.get("id_token").is_none());
    let claims = verify(&p, t["access_token"].as_str().unwrap(), "e2e");
    assert_eq!(claims["sub"], "K-reporting");
    assert_eq!(claims["client_id"], "K-reporting");
    assert_eq!(claims["scope"], "reports:read");
    assert_eq!(claims["team"], "data");
    let all = body(&post_form(&p, "/oauth2/v1/token", &[("grant_type", "client_credentials")], Some(key)).await);
    assert_eq!(all["scope"], "reports:read reports:write");
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "client_credentials"), ("scope", "admin")], Some(key)).await;
    assert_eq!(oauth_error(&r), "invalid_scope");
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "client_credentials")], Some(("K-reporting", "nope-nope-nope-nope-nope"))).await;
    assert_eq!(r.status, 401);
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "authorization_code"), ("code", "x")], Some(key)).await;
    assert_eq!(oauth_error(&r), "unauthorized_client");
    // An application's client_credentials carry no user scopes.
    let web = ("web", "web-secret-0123456789abcdef");
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "client_credentials"), ("scope", "openid")], Some(web)).await;
    assert_eq!(oauth_error(&r), "invalid_scope");
    let t = body(&post_form(&p, "/oauth2/v1/token", &[("grant_type", "client_credentials")], Some(web)).await);
    assert_eq!(t["scope"], "");
    // Metrics count the tokens issued (three), not the refusals, and the
    // answers by status; no label carries a client id or secret.
    let metrics = p.metrics();
    assert!(metrics.lines().any(|l| l == "idflow_tokens_issued_total{grant=\"client_credentials\"} 3"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "idflow_http_requests_total{route=\"token\",status=\"401\"} 1"), "{metrics}");
    assert!(!metrics.contains("K-reporting") && !metrics.contains("secret"), "{metrics}");
    // Store calls by operation (the failed authentication's counter); a
    // store without a pool has no pool gauges.
    let hits = metrics.lines().find_map(|l| l.strip_prefix("idflow_store_operation_duration_seconds_count{op=\"hit\"} ")).unwrap();
    assert!(hits.parse::<u64>().unwrap() >= 1, "{metrics}");
    assert!(!metrics.contains("idflow_store_pool_connections{"), "{metrics}");
    // An expired key is refused.
    let p = provider_on(Arc::new(MemoryStore::new()), |d| d["accessKeys"][0]["expiresAt"] = json!(1));
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "client_credentials")], Some(key)).await;
    assert_eq!(oauth_error(&r), "invalid_client");
}

#[tokio::test]
async fn prompt_none_uses_the_session_cookie_and_prompt_login_ignores_it() {
    let p = provider();
    let l = login(&p, "e2e", CB, "openid", "ida@example.com").await;
    let c = pkce::generate(None).unwrap();
    let silent = get(&p, &authorize_url("e2e", CB, "openid", Some(&c.challenge), "&prompt=none"), Some(&l.cookie)).await;
    assert_eq!(silent.status, 302);
    let q = query(silent.header("Location").unwrap());
    assert!(q.contains_key("code"), "{q:?}");
    let l2 = Login { code: q["code"].clone(), state: q["state"].clone(), cookie: l.cookie.clone(), verifier: c.verifier.clone(), redirect: CB.into() };
    let t = body(&redeem(&p, "e2e", &l2, None).await);
    let id = verify(&p, t["id_token"].as_str().unwrap(), "e2e");
    assert_eq!(id["nonce"], "n-1");
    // prompt=login and max_age=0 send the browser to the flow again (at once:
    // max_age=0 means "sign in now" even within the same second).
    for extra in ["&prompt=login", "&max_age=0"] {
        let r = get(&p, &authorize_url("e2e", CB, "openid", Some(&c.challenge), extra), Some(&l.cookie)).await;
        assert!(r.header("Location").unwrap().starts_with(&format!("{BASE}/login/e2e")), "{extra}");
    }
    let r = get(&p, &authorize_url("e2e", CB, "openid", Some(&c.challenge), "&prompt=none&max_age=0"), Some(&l.cookie)).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "login_required");
    let r = get(&p, &authorize_url("e2e", CB, "openid", Some(&c.challenge), "&prompt=none&max_age=3600"), Some(&l.cookie)).await;
    assert!(query(r.header("Location").unwrap()).contains_key("code"));
    let none = get(&p, &authorize_url("e2e", CB, "openid", Some(&c.challenge), "&prompt=none"), Some("idflow_session=forged")).await;
    assert_eq!(query(none.header("Location").unwrap())["error"], "login_required");
    // login_hint pre-fills form.email: the flow's screen is answered already.
    let r = get(&p, &authorize_url("e2e", CB, "openid", Some(&c.challenge), "&login_hint=jo%40example.com"), None).await;
    let q = query(r.header("Location").unwrap());
    let s = body(&post_json(&p, "/v1/flow/start", json!({"request": q["request"]})).await);
    assert_eq!(s["status"], "waiting");
}

#[tokio::test]
async fn revocation_and_logout() {
    let p = provider();
    let l = login(&p, "e2e", CB, "openid offline_access", "kim@example.com").await;
    let t = body(&redeem(&p, "e2e", &l, None).await);
    let at = t["access_token"].as_str().unwrap();
    // Revoking the access token (by jti) fails it at userinfo.
    let r = post_form(&p, "/oauth2/v1/revoke", &[("token", at), ("token_type_hint", "access_token"), ("client_id", "e2e")], None).await;
    assert_eq!(r.status, 200);
    let headers = vec![("Authorization".to_owned(), format!("Bearer {at}"))];
    let u = p.handle(HttpRequest::new("GET", "/oauth2/v1/userinfo", headers, vec![])).await;
    assert_eq!(u.status, 401);
    assert!(u.header("WWW-Authenticate").unwrap().contains("revoked"));
    // Unknown tokens answer 200 too; confidential clients must authenticate.
    assert_eq!(post_form(&p, "/oauth2/v1/revoke", &[("token", "nonsense"), ("client_id", "e2e")], None).await.status, 200);
    assert_eq!(post_form(&p, "/oauth2/v1/revoke", &[("token", "nonsense"), ("client_id", "web")], None).await.status, 401);
    // Revoking the refresh token revokes its family.
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(post_form(&p, "/oauth2/v1/revoke", &[("token", rt), ("client_id", "e2e")], None).await.status, 200);
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", "e2e")], None).await;
    assert_eq!(oauth_error(&r), "invalid_grant");
    // Logout: registered redirect with state, cookie cleared, session's grants revoked.
    let l = login(&p, "e2e", CB, "openid offline_access", "kim@example.com").await;
    let t = body(&redeem(&p, "e2e", &l, None).await);
    let hint = t["id_token"].as_str().unwrap();
    let bad = get(&p, &format!("/oauth2/v1/logout?id_token_hint={hint}&post_logout_redirect_uri={}", enc("http://127.0.0.1/elsewhere")), Some(&l.cookie)).await;
    assert_eq!(bad.status, 400);
    assert!(bad.header("Location").is_none());
    let out = get(&p, &format!("/oauth2/v1/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye", enc("http://127.0.0.1/logged-out")), Some(&l.cookie)).await;
    assert_eq!(out.status, 302);
    assert_eq!(out.header("Location"), Some("http://127.0.0.1/logged-out?state=bye"));
    assert!(out.header("Set-Cookie").unwrap().contains("Max-Age=0"));
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap()), ("client_id", "e2e")], None).await;
    assert_eq!(oauth_error(&r), "invalid_grant");
    let c = pkce::generate(None).unwrap();
    let silent = get(&p, &authorize_url("e2e", CB, "openid", Some(&c.challenge), "&prompt=none"), Some(&l.cookie)).await;
    assert_eq!(query(silent.header("Location").unwrap())["error"], "login_required");
    // Without a redirect: the logged-out page; a forged hint is refused.
    let page = get(&p, "/oauth2/v1/logout", None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("signed out"));
    assert_eq!(get(&p, "/oauth2/v1/logout?id_token_hint=e30.e30.sig", None).await.status, 400);
}

#[tokio::test]
async fn implicit_form_post_for_applications_that_opt_in() {
    let p = provider();
    let url = "/oauth2/v1/authorize?response_type=id_token%20token&client_id=implicit&redirect_uri=http%3A%2F%2F127.0.0.1%2Fimplicit%2Fcb&scope=openid%20email&state=s9&nonce=n9&response_mode=form_post";
    let r = get(&p, url, None).await;
    let browser = set_cookie(&r, "idflow_browser").unwrap();
    let q = query(r.header("Location").unwrap());
    let s = body(&post_json(&p, "/v1/flow/start", json!({"request": q["request"]})).await);
    let d = body(&post_json(&p, "/v1/flow/next", json!({"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"], "interactionId": "submit", "input": {"email": "lou@example.com"}})).await);
    let next = d["redirect"]["url"].as_str().unwrap();
    let page = deliver(&p, next, &browser).await;
    let html = page.text();
    assert!(html.contains("action=\"http://127.0.0.1/implicit/cb\""), "{html}");
    for field in ["id_token", "access_token", "state", "iss"] {
        assert!(html.contains(&format!("name=\"{field}\"")), "{field}");
    }
    assert_eq!(get(&p, next, Some(&browser)).await.status, 400, "delivered once");
    // Without the nonce, or for an application that did not opt in: errors.
    let r = get(&p, &url.replace("&nonce=n9", ""), None).await;
    assert!(r.text().contains("name=\"error\" value=\"invalid_request\""));
}

#[tokio::test]
async fn flow_api_errors_are_json_with_codes() {
    let p = provider();
    let r = post_json(&p, "/v1/flow/start", json!({"flowId": "missing"})).await;
    assert_eq!(r.status, 404);
    assert_eq!(body(&r)["error"]["code"], "flow_not_found");
    let r = post_json(&p, "/v1/flow/start", json!({"request": "A-unknown"})).await;
    assert_eq!(body(&r)["error"]["code"], "invalid_request");
    let r = p.handle(HttpRequest::new("POST", "/v1/flow/start", vec![("Content-Type".into(), "application/json".into())], b"{\"a\":1,\"a\":2}".to_vec())).await;
    assert_eq!(r.status, 400);
    let r = post_json(&p, "/v1/flow/next", json!({"executionId": "E-x"})).await;
    assert_eq!(body(&r)["error"]["code"], "invalid_request");
    // Without an authorization request, a flow API client gets the session JWTs.
    let s = body(&post_json(&p, "/v1/flow/start", json!({"flowId": "sign-up-or-in"})).await);
    let d = body(&post_json(&p, "/v1/flow/next", json!({"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"], "interactionId": "submit", "input": {"email": "max@example.com"}})).await);
    assert!(d["authInfo"]["sessionJwt"].is_string(), "{d}");
    // The hosted login page.
    let page = get(&p, "/login/e2e?flow=sign-up-or-in", None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("../v1/flow/start"));
}

/// The `typ` check of RFC 9068 §4 that a resource server makes before it
/// takes a JWT as an access token.
fn rfc9068_typ_ok(token: &str) -> bool {
    let header = jose::decode_unverified(token).unwrap().header;
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    typ == "at+jwt" || typ == "application/at+jwt"
}

#[tokio::test]
async fn session_jwts_are_typed_for_the_project_and_are_not_access_tokens() {
    // RFC 8725 §3.11: the flow API's session JWTs and the access tokens share
    // issuer and key, so their `typ` keeps one from passing for the other.
    let p = provider();
    let input = |email: &str| json!({"email": email}).as_object().cloned().unwrap();
    let s = p.engine().start("sign-up-or-in", Map::new(), None).await.unwrap();
    let r = p.engine().next(&s.execution_id, "welcome", "submit", input("typed@example.com")).await.unwrap();
    let auth = r.auth_info.unwrap();
    let session = auth.session_jwt;
    assert_eq!(jose::decode_unverified(&session).unwrap().header["typ"], "session+jwt");
    let claims = verify(&p, &session, "e2e");
    assert_eq!((&claims["aud"], &claims["sub"]), (&json!("e2e"), &auth.user["userId"]));
    let refresh = jose::decode_unverified(&auth.refresh_jwt).unwrap();
    assert_eq!((&refresh.header["typ"], &refresh.claims["aud"]), (&json!("refresh+jwt"), &json!("e2e")));
    // idflow's own access-token verifier and an RFC 9068 resource server refuse it.
    assert_eq!(p.verify_access_token(&session).map_err(|e| e.code).err(), Some(idflow::ErrorCode::InvalidToken));
    assert!(!rfc9068_typ_ok(&session));
    // The other way round: an access token of the same project has the same
    // issuer and audience, and only its typ tells a session check to refuse it.
    let l = login(&p, "e2e", CB, "openid", "typed@example.com").await;
    let t = body(&redeem(&p, "e2e", &l, None).await);
    let at = t["access_token"].as_str().unwrap();
    assert!(rfc9068_typ_ok(at) && p.verify_access_token(at).is_ok());
    assert_eq!(verify(&p, at, "e2e")["iss"], ISSUER);
    assert_ne!(jose::decode_unverified(at).unwrap().header["typ"], "session+jwt");
}

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("idflow-provider-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("idflow.db")
}

#[tokio::test]
async fn a_restart_on_the_same_database_keeps_keys_and_refresh_tokens() {
    let db = temp_db("restart");
    let (rt, jwks) = {
        let p = provider_on(Arc::new(SqliteStore::open(&db).unwrap()), |_| {});
        let l = login(&p, "e2e", CB, "openid offline_access", "ned@example.com").await;
        let t = body(&redeem(&p, "e2e", &l, None).await);
        (t["refresh_token"].as_str().unwrap().to_owned(), p.signing_keys().jwks_json.clone())
    };
    let p = provider_on(Arc::new(SqliteStore::open(&db).unwrap()), |_| {});
    assert_eq!(p.signing_keys().jwks_json, jwks);
    let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "refresh_token"), ("refresh_token", &rt), ("client_id", "e2e")], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Secrets at rest: the database and its WAL files are owner-only, the
/// private signing key is sealed (its `d` is nowhere in the files), the
/// data key sits in a 0600 file beside the database, and a copy of the
/// database alone opens nothing.
#[tokio::test]
async fn the_database_holds_no_usable_secret_and_only_its_owner_reads_it() {
    use std::os::unix::fs::PermissionsExt;
    let db = temp_db("at-rest");
    let d = {
        let p = provider_on(Arc::new(SqliteStore::open(&db).unwrap()), |_| {});
        let _ = login(&p, "e2e", CB, "openid", "rae@example.com").await;
        let jwk = p.signing_keys().active.to_jwk(true).unwrap();
        jwk["d"].as_str().unwrap().to_owned()
    };
    let key_file = db.with_extension("db.key");
    for (file, must) in [(db.clone(), true), (db.with_extension("db-wal"), false), (db.with_extension("db-shm"), false), (key_file.clone(), true)] {
        if !must && !file.exists() {
            continue;
        }
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
        if file != key_file {
            let bytes = std::fs::read(&file).unwrap();
            assert!(!bytes.windows(d.len()).any(|w| w == d.as_bytes()), "{} holds the private key", file.display());
        }
    }
    // A backup of the database without its key file opens no key.
    let copy = temp_db("at-rest-copy");
    {
        let store = SqliteStore::open(&db).unwrap();
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()]).unwrap();
        drop(store);
    }
    let e = Provider::new(project_with(|_| {}), Arc::new(SqliteStore::open(&copy).unwrap())).unwrap_err();
    assert_eq!(e.code, idflow::ErrorCode::Storage, "{}", e.message);
    // With the key file beside it, the backup is whole.
    std::fs::copy(&key_file, copy.with_extension("db.key")).unwrap();
    assert!(Provider::new(project_with(|_| {}), Arc::new(SqliteStore::open(&copy).unwrap())).is_ok());
}

/// A database written before sealing (plain private JWKs, the data key in
/// a record) opens as before; its keys are sealed and its data key moves
/// to the key file.
#[tokio::test]
async fn an_older_database_is_sealed_when_opened() {
    let db = temp_db("legacy");
    let key = Key::generate(Algorithm::RS256, None).unwrap();
    let data_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    {
        let store = SqliteStore::open(&db).unwrap();
        store.put_record("signing_key", "000000000000000000000001-old", &json!({"jwk": key.to_jwk(true).unwrap(), "alg": "RS256", "createdAt": 1}), None).unwrap();
        store.put_record("data_key", "default", &json!(data_key), None).unwrap();
    }
    let p = provider_on(Arc::new(SqliteStore::open(&db).unwrap()), |_| {});
    assert_eq!(p.signing_keys().active.kid(), key.kid());
    let store = SqliteStore::open(&db).unwrap();
    let record = store.record("signing_key", "000000000000000000000001-old").unwrap().unwrap();
    assert!(record.get("jwk").is_none() && record.get("sealed").is_some(), "{record}");
    assert_eq!(store.record("data_key", "default").unwrap(), None, "the data key left the database");
    let file = std::fs::read_to_string(db.with_extension("db.key")).unwrap();
    use base64::Engine;
    let std_key = base64::engine::general_purpose::STANDARD.encode(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data_key).unwrap());
    assert_eq!(file.trim(), std_key);
    // And it opens again.
    assert_eq!(provider_on(Arc::new(SqliteStore::open(&db).unwrap()), |_| {}).signing_keys().active.kid(), key.kid());
}

/// Moves a signing key's `activeFrom` (or an older version's `retiredAt`)
/// `secs` into the past, as if that long had gone by.
fn key_time(store: &dyn Store, kid: &str, field: &str, secs: u64) {
    let (id, mut value) = store.records("signing_key").unwrap().into_iter().find(|(_, v)| v["kid"] == kid).unwrap();
    value[field] = (now() - secs).into();
    store.put_record("signing_key", &id, &value, None).unwrap();
}

fn published_kids(p: &Provider) -> Vec<String> {
    p.signing_keys().published.keys().iter().map(|k| k.kid().to_owned()).collect()
}

#[tokio::test]
async fn a_rotated_key_is_published_first_and_signs_after_its_prepublish_time_without_a_restart() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let p = provider_on(store.clone(), |_| {});
    let access_key = Some(("K-reporting", "reporting-secret-0123456789"));
    let t = body(&post_form(&p, "/oauth2/v1/token", &[("grant_type", "client_credentials")], access_key).await);
    let old_kid = p.signing_keys().active.kid().to_owned();
    // The first key has signed for a day.
    key_time(&*store, &old_kid, "activeFrom", 86_400);
    // Another process (idflow keys rotate) adds a key that signs in an hour.
    let vault = idflow::vault::Vault::open(None, &*store).unwrap();
    let rotation = keys::rotate(&*store, &vault, Algorithm::ES256, 3600).unwrap();
    assert!(rotation.signs_from >= now() + 3599);
    let new_kid = rotation.kid;
    // This provider sees it at its next reload (every few seconds; now here).
    p.reload_keys().unwrap();
    let jwks = body(&get(&p, "/e2e/.well-known/jwks.json", None).await);
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, vec![new_kid.as_str(), old_kid.as_str()], "published before it signs");
    let t2 = body(&post_form(&p, "/oauth2/v1/token", &[("grant_type", "client_credentials")], access_key).await);
    assert_eq!(jose::decode_unverified(t2["access_token"].as_str().unwrap()).unwrap().header["kid"], old_kid.as_str(), "the old key still signs");
    // Its time comes: it signs, and the old key stays published.
    key_time(&*store, &new_kid, "activeFrom", 1);
    p.reload_keys().unwrap();
    assert_eq!(p.signing_keys().active.kid(), new_kid);
    assert_eq!(published_kids(&p), vec![new_kid.clone(), old_kid.clone()]);
    let algs = body(&get(&p, "/e2e/.well-known/openid-configuration", None).await)["id_token_signing_alg_values_supported"].clone();
    assert_eq!(algs, json!(["ES256", "RS256"]), "the signing key's first; the old key's tokens are still valid");
    // A token signed before the rotation still verifies; new ones use ES256.
    assert!(p.verify_access_token(t["access_token"].as_str().unwrap()).is_ok());
    let t = body(&post_form(&p, "/oauth2/v1/token", &[("grant_type", "client_credentials")], access_key).await);
    let header = jose::decode_unverified(t["access_token"].as_str().unwrap()).unwrap().header;
    assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("ES256"), Some(new_kid.as_str())));
    // The same through the provider's own rotation (the bindings' management API).
    let third = p.rotate_keys(None, Some(0)).unwrap();
    assert_eq!(p.signing_keys().active.kid(), third.kid, "prepublish 0 signs at once");
    assert_eq!((third.alg, p.signing_keys().active.alg()), (Algorithm::RS256, Some(Algorithm::RS256)), "the project's signing.alg");
    assert_eq!(p.rotate_keys(Some("HS256"), None).unwrap_err().code, idflow::ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn a_superseded_key_stays_published_only_while_its_access_and_id_tokens_live() {
    // sessionTtl (600 s here) bounds it, not refreshTtl (a day here): a key
    // superseded because it leaked must not stay trusted for the refresh
    // JWTs' lifetime.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let old_kid = provider_on(store.clone(), |_| {}).signing_keys().active.kid().to_owned();
    let vault = idflow::vault::Vault::open(None, &*store).unwrap();
    let new_kid = keys::rotate(&*store, &vault, Algorithm::ES256, 0).unwrap().kid;
    key_time(&*store, &old_kid, "activeFrom", 86_400);
    let superseded_for = |secs: u64| {
        key_time(&*store, &new_kid, "activeFrom", secs);
        published_kids(&provider_on(store.clone(), |_| {})).contains(&old_kid)
    };
    // Plus 65 s: servers sign with it until their next reload (5 s), and clocks differ.
    assert!(superseded_for(660), "within sessionTtl and the grace: still published");
    assert!(!superseded_for(670), "past sessionTtl, codeTtl and the grace: gone, though refresh JWTs it signed still live");
    // A key an older version retired (retiredAt) counts from then.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let old_kid = provider_on(store.clone(), |_| {}).signing_keys().active.kid().to_owned();
    let (id, mut value) = store.records("signing_key").unwrap().remove(0);
    value["retiredAt"] = (now() - 670).into();
    store.put_record("signing_key", &id, &value, None).unwrap();
    let vault = idflow::vault::Vault::open(None, &*store).unwrap();
    keys::rotate(&*store, &vault, Algorithm::ES256, 0).unwrap();
    assert!(!published_kids(&provider_on(store.clone(), |_| {})).contains(&old_kid));
}

#[test]
fn project_errors_name_the_field() {
    let bad = |edit: fn(&mut Value), want: &str| {
        let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(e2e_dir().join("project.json")).unwrap()).unwrap();
        edit(&mut doc);
        let err = Project::from_json(&doc.to_string(), &e2e_dir())
            .and_then(|p| Provider::new(p, Arc::new(MemoryStore::new())))
            .unwrap_err();
        assert!(err.message.contains(want), "{want}: {}", err.message);
        assert_eq!(err.code, idflow::ErrorCode::Config);
    };
    bad(|d| d["applications"][0]["redirectURIs"] = json!([]), "redirectURIs");
    bad(|d| d["applications"][0]["flow"] = json!("missing"), "missing");
    bad(|d| d["applications"][1]["clientId"] = json!("e2e"), "twice");
    bad(|d| d["accessKeys"][0]["id"] = json!("web"), "already used");
    bad(|d| d["accessKeys"][0]["customClaims"] = json!({"sub": "x"}), "registered claim");
    bad(|d| d["tokens"]["idTtl"] = json!(5), "tokens.idTtl");
    // null means "not set" for the optional sections.
    let p = Project::from_json(r#"{"projectId":"x","baseUrl":"http://127.0.0.1:9","applications":null,"accessKeys":null,"flows":null,"tokens":null}"#, &e2e_dir()).unwrap();
    assert!(Provider::new(p, Arc::new(MemoryStore::new())).is_ok());
}

#[test]
fn toml_projects_map_one_to_one() {
    let dir = std::env::temp_dir().join(format!("idflow-toml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let flow = std::fs::read_to_string(e2e_dir().join("../flows/sign-up-or-in.json")).unwrap();
    std::fs::write(dir.join("flow.json"), flow).unwrap();
    let toml = r#"
projectId = "t"
baseUrl = "http://127.0.0.1:9000"
flows = ["flow.json"]

[[applications]]
clientId = "t"
public = true
redirectUris = ["http://127.0.0.1/cb"]
"#;
    std::fs::write(dir.join("project.toml"), toml).unwrap();
    let p = Project::from_file(dir.join("project.toml")).unwrap();
    assert_eq!(p.issuer(), "http://127.0.0.1:9000/t");
    let provider = Provider::new(p, Arc::new(MemoryStore::new())).unwrap();
    assert!(provider.application("t").unwrap().public);
    std::fs::write(dir.join("bad.toml"), "projectId = ").unwrap();
    assert_eq!(Project::from_file(dir.join("bad.toml")).unwrap_err().code, idflow::ErrorCode::Config);
}

/// OAuth 2.0 Form Post Response Mode §2 and RFC 6749 §4.1.2.1: an error
/// goes back the way the client asked for the answer, form_post included
/// (the conformance suite's form-post plan sends an unsigned `request`).
#[tokio::test]
async fn authorization_errors_use_the_requested_response_mode() {
    let p = provider();
    let base = authorize_url("e2e", CB, "openid", Some(&"A".repeat(43)), "&request=eyJhbGciOiJub25lIn0.e30.");
    let r = get(&p, &format!("{base}&response_mode=form_post"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("Location").is_none(), "never a redirect");
    let page = r.text();
    assert!(page.contains(&format!("action=\"{CB}\"")) && page.contains("method=\"post\""), "{page}");
    assert!(page.contains("name=\"error\" value=\"invalid_request_object\""), "{page}");
    assert!(page.contains("name=\"state\" value=\"st-1\""), "{page}");
    assert!(page.contains(&format!("name=\"iss\" value=\"{ISSUER}\"")), "RFC 9207: {page}");
    // The same error by query without response_mode.
    let r = get(&p, &base, None).await;
    let q = query(r.header("Location").unwrap());
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("invalid_request_object", "st-1"));
    // Asked for the fragment (which idflow keeps for the implicit flow),
    // the refusal itself still comes in the fragment.
    let r = get(&p, &format!("{base}&response_mode=fragment"), None).await;
    let loc = r.header("Location").unwrap();
    assert!(loc.starts_with(&format!("{CB}#error=")) && !loc.contains('?'), "{loc}");
}

/// A `claims` parameter, URL-encoded as an extra authorization parameter.
fn claims_param(c: Value) -> String {
    format!("&claims={}", enc(&c.to_string()))
}

async fn userinfo(p: &Provider, access_token: &str) -> Map<String, Value> {
    let headers = vec![("Authorization".to_owned(), format!("Bearer {access_token}"))];
    let r = p.handle(HttpRequest::new("GET", "/oauth2/v1/userinfo", headers, vec![])).await;
    assert_eq!(r.status, 200, "{}", r.text());
    body(&r).as_object().unwrap().clone()
}

const WEB: (&str, &str) = ("web", "web-secret-0123456789abcdef");
const WEB_CB: &str = "http://127.0.0.1/cb";

#[tokio::test]
async fn scope_claims_are_at_userinfo_with_every_standard_claim_the_user_has() {
    // OIDC Core §5.4: profile, email, address and phone release their
    // claims; with an access token they are at userinfo, not in the id_token.
    let p = provider();
    let l = login(&p, "web", WEB_CB, "openid profile email address phone", "pat@example.com").await;
    let t = body(&redeem(&p, "web", &l, Some(WEB)).await);
    let id = verify(&p, t["id_token"].as_str().unwrap(), "web");
    for (_, names) in [("profile", &PROFILE[..]), ("email", &["email", "email_verified"][..]), ("address", &["address"][..]), ("phone", &["phone_number", "phone_number_verified"][..])] {
        for c in names {
            assert!(!id.contains_key(*c), "the id_token carries {c}");
        }
    }
    let info = userinfo(&p, t["access_token"].as_str().unwrap()).await;
    for c in PROFILE {
        assert!(info.contains_key(c), "userinfo lacks {c}: {info:?}");
    }
    assert_eq!(info["given_name"], "Ann");
    assert_eq!(info["middle_name"], "Q.");
    assert_eq!(info["preferred_username"], "pat@example.com");
    assert_eq!(info["birthdate"], "1990-04-01");
    assert_eq!(info["zoneinfo"], "Europe/Paris");
    assert_eq!(info["locale"], "fr-FR");
    assert!(info["updated_at"].is_u64());
    assert_eq!(info["email"], "pat@example.com");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["phone_number"], "+33 1 23 45 67 89");
    assert_eq!(info["phone_number_verified"], true);
    assert_eq!(
        info["address"],
        json!({"formatted": "1 Rue Exemple\n75001 Paris\nFrance", "street_address": "1 Rue Exemple", "locality": "Paris", "postal_code": "75001", "country": "FR"})
    );
    // Each scope alone releases its claims only.
    for (scope, wanted, not) in [
        ("openid phone", "phone_number", "email"),
        ("openid address", "address", "name"),
        ("openid email", "email", "phone_number"),
        ("openid profile", "nickname", "address"),
    ] {
        let l = login(&p, "web", WEB_CB, scope, "pat@example.com").await;
        let t = body(&redeem(&p, "web", &l, Some(WEB)).await);
        let info = userinfo(&p, t["access_token"].as_str().unwrap()).await;
        assert!(info.contains_key(wanted) && !info.contains_key(not), "{scope}: {info:?}");
    }
    // Nothing asked, nothing released: only sub at userinfo, and no user
    // claim in the id_token (Core §5.4, §5.5).
    let l = login(&p, "web", WEB_CB, "openid", "pat@example.com").await;
    let t = body(&redeem(&p, "web", &l, Some(WEB)).await);
    let id = verify(&p, t["id_token"].as_str().unwrap(), "web");
    let mut keys: Vec<&str> = id.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["at_hash", "aud", "auth_time", "azp", "exp", "iat", "iss", "nonce", "sid", "sub"]);
    assert_eq!(userinfo(&p, t["access_token"].as_str().unwrap()).await.keys().collect::<Vec<_>>(), ["sub"]);
}

const PROFILE: [&str; 14] = [
    "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username", "profile", "picture", "website",
    "gender", "birthdate", "zoneinfo", "locale", "updated_at",
];

#[tokio::test]
async fn without_an_access_token_the_scope_claims_are_in_the_id_token() {
    // response_type=id_token issues no access token: the id_token is the
    // only place for the scope's claims (OIDC Core §5.4).
    let p = provider();
    let url = "/oauth2/v1/authorize?response_type=id_token&client_id=implicit&redirect_uri=http%3A%2F%2F127.0.0.1%2Fimplicit%2Fcb&scope=openid%20email%20profile&state=s9&nonce=n9&response_mode=form_post";
    for (url, with_claims) in [(url.to_owned(), true), (url.replace("response_type=id_token", "response_type=id_token%20token"), false)] {
        let html = sign_in_at_login_page(&p, &get(&p, &url, None).await, "ivy@example.com").await.text();
        let id = verify(&p, posted_field(&html, "id_token"), "implicit");
        assert_eq!(id.contains_key("email"), with_claims, "{url}: {id:?}");
        assert_eq!(id.contains_key("preferred_username"), with_claims, "{url}: {id:?}");
    }
}

#[tokio::test]
async fn the_claims_parameter_asks_for_single_claims_where_they_are_wanted() {
    // OIDC Core §5.5: userinfo and id_token members; essential changes
    // nothing; unknown claims are ignored; refreshes keep the request.
    let p = provider();
    let asked = json!({
        "userinfo": {"name": {"essential": true}, "birthdate": null, "no_such_claim": null},
        "id_token": {"email": null, "plan": {"essential": true}, "address": null},
    });
    let l = login_with(&p, "web", WEB_CB, "openid", "cy@example.com", &claims_param(asked)).await;
    let t = body(&redeem(&p, "web", &l, Some(WEB)).await);
    let id = verify(&p, t["id_token"].as_str().unwrap(), "web");
    assert_eq!(id["email"], "cy@example.com");
    assert_eq!(id["plan"], "pro", "a custom claim can be asked for by name");
    assert_eq!(id["address"]["locality"], "Paris");
    assert!(!id.contains_key("name") && !id.contains_key("birthdate"), "{id:?}");
    let info = userinfo(&p, t["access_token"].as_str().unwrap()).await;
    assert_eq!(info["name"], "cy@example.com");
    assert_eq!(info["birthdate"], "1990-04-01");
    assert!(!info.contains_key("email") && !info.contains_key("no_such_claim"), "{info:?}");
    // The refreshed tokens answer the same request.
    let r = body(&post_form(&p, "/oauth2/v1/token", &[("grant_type", "refresh_token"), ("refresh_token", t["refresh_token"].as_str().unwrap())], Some(WEB)).await);
    let id = verify(&p, r["id_token"].as_str().unwrap(), "web");
    assert_eq!(id["email"], "cy@example.com");
    assert_eq!(userinfo(&p, r["access_token"].as_str().unwrap()).await["birthdate"], "1990-04-01");
    // A malformed claims parameter is invalid_request, sent to the client.
    let c = pkce::generate(None).unwrap();
    for bad in [json!("x"), json!({"userinfo": []}), json!({"id_token": {"email": true}}), json!({"id_token": {"acr": {"values": "a"}}})] {
        let r = get(&p, &authorize_url("web", WEB_CB, "openid", Some(&c.challenge), &claims_param(bad.clone())), None).await;
        let q = query(r.header("Location").unwrap());
        assert_eq!(q["error"], "invalid_request", "{bad}");
        assert_eq!(q["state"], "st-1");
    }
    let r = get(&p, &authorize_url("web", WEB_CB, "openid", Some(&c.challenge), "&claims=%7Bnot%20json"), None).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "invalid_request");
}

#[tokio::test]
async fn the_claims_parameter_acr_and_sub_bound_the_sign_in() {
    let p = provider();
    let c = pkce::generate(None).unwrap();
    // acr values choose among the application's flows (§5.5.1.1); an
    // essential acr no flow of the application gives is a failed sign-in.
    let acr = |v: Value| claims_param(json!({"id_token": {"acr": v}}));
    let r = get(&p, &authorize_url("web-post", WEB_CB, "openid", Some(&c.challenge), &acr(json!({"values": ["nope", "claims"]}))), None).await;
    assert!(r.header("Location").unwrap().contains("flow=claims"), "{:?}", r.header("Location"));
    let r = get(&p, &authorize_url("web-post", WEB_CB, "openid", Some(&c.challenge), &acr(json!({"essential": true, "value": "nope"}))), None).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "unmet_authentication_requirements");
    let r = get(&p, &authorize_url("web-post", WEB_CB, "openid", Some(&c.challenge), &acr(json!({"value": "nope"}))), None).await;
    assert!(r.header("Location").unwrap().starts_with(&format!("{BASE}/login/e2e")), "a voluntary acr is only a wish");
    // sub with a value: only that user's session may answer (§5.5.1).
    let l = login(&p, "e2e", CB, "openid", "dee@example.com").await;
    let t = body(&redeem(&p, "e2e", &l, None).await);
    let sub = verify(&p, t["id_token"].as_str().unwrap(), "e2e")["sub"].as_str().unwrap().to_owned();
    let want = |s: &str| claims_param(json!({"id_token": {"sub": {"value": s}}}));
    let r = get(&p, &authorize_url("e2e", CB, "openid", Some(&c.challenge), &format!("&prompt=none{}", want(&sub))), Some(&l.cookie)).await;
    assert!(query(r.header("Location").unwrap()).contains_key("code"), "the session's own user answers");
    let r = get(&p, &authorize_url("e2e", CB, "openid", Some(&c.challenge), &format!("&prompt=none{}", want("U-someone-else"))), Some(&l.cookie)).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "login_required");
    // ... and a fresh sign-in of another user answers access_denied.
    let r = get(&p, &authorize_url("e2e", CB, "openid", Some(&c.challenge), &want(&sub)), None).await;
    let q = finish_at_login_page(&p, &r, "eve@example.com").await;
    assert_eq!(q["error"], "access_denied", "{q:?}");
    assert!(!q.contains_key("code"));
}

const PARTNER_CB: &str = "http://127.0.0.1/partner/cb";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A request object signed with the partner's registered key (or `key`).
fn request_object(claims: Value, key: Option<&Key>) -> String {
    let partner = Key::from_jwk_json(&std::fs::read_to_string(e2e_dir().join("partner-key.json")).unwrap()).unwrap();
    jose::sign(claims.as_object().unwrap(), key.unwrap_or(&partner), None).unwrap()
}

/// An unsigned request object (`alg: none`).
fn unsigned_object(claims: Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims))
}

/// Follows an authorization that reached the hosted page through the flow
/// API (signing `email` in) to its delivery: the redirect, or the form_post page.
async fn sign_in_at_login_page(p: &Provider, r: &HttpResponse, email: &str) -> HttpResponse {
    assert_eq!(r.status, 302, "{}", r.text());
    let location = r.header("Location").unwrap();
    assert!(location.starts_with(&format!("{BASE}/login/e2e")), "{location}");
    let browser = set_cookie(r, "idflow_browser").unwrap();
    let s = body(&post_json(p, "/v1/flow/start", json!({"request": query(location)["request"]})).await);
    let d = body(&post_json(p, "/v1/flow/next", json!({"executionId": s["executionId"], "executionSecret": s["executionSecret"], "stepId": s["stepId"], "interactionId": "submit", "input": {"email": email}})).await);
    deliver(p, d["redirect"]["url"].as_str().unwrap(), &browser).await
}

/// [`sign_in_at_login_page`] to the client's redirect: its query parameters.
async fn finish_at_login_page(p: &Provider, r: &HttpResponse, email: &str) -> HashMap<String, String> {
    query(sign_in_at_login_page(p, r, email).await.header("Location").unwrap())
}

/// The value of the hidden form_post field `name` in `html`.
fn posted_field<'a>(html: &'a str, name: &str) -> &'a str {
    html.split(&format!("name=\"{name}\" value=\"")).nth(1).unwrap().split('"').next().unwrap()
}

#[tokio::test]
async fn signed_request_objects_carry_the_parameters_and_supersede_the_query() {
    // OIDC Core §6.1, §6.3; RFC 9101: the partner signs its request with its
    // registered key; only client_id and request travel in the query.
    let p = provider();
    let d = body(&get(&p, "/e2e/.well-known/openid-configuration", None).await);
    assert_eq!(d["request_parameter_supported"], true);
    assert_eq!(d["request_uri_parameter_supported"], false);
    let algs: Vec<&str> = d["request_object_signing_alg_values_supported"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(algs.contains(&"none") && algs.contains(&"ES256") && !algs.contains(&"HS256"), "{algs:?}");
    let pair = pkce::generate(None).unwrap();
    let claims = json!({
        "iss": "partner", "aud": ISSUER, "client_id": "partner", "response_type": "code", "redirect_uri": PARTNER_CB,
        "scope": "openid email", "state": "from-the-object", "nonce": "n-object", "code_challenge": pair.challenge,
        "code_challenge_method": "S256", "claims": {"id_token": {"email": null}}, "max_age": 3600, "exp": now() + 300,
    });
    let jar = format!("/oauth2/v1/authorize?client_id=partner&request={}", request_object(claims.clone(), None));
    let q = finish_at_login_page(&p, &get(&p, &jar, None).await, "obj@example.com").await;
    assert_eq!(q["state"], "from-the-object");
    let form = [
        ("grant_type", "authorization_code"), ("code", q["code"].as_str()), ("redirect_uri", PARTNER_CB), ("code_verifier", pair.verifier.as_str()),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
    ];
    let a = assertion(&format!("{BASE}/oauth2/v1/token"), "jti-request-object", 60);
    let mut form = form.to_vec();
    form.push(("client_assertion", &a));
    let t = body(&post_form(&p, "/oauth2/v1/token", &form, None).await);
    let id = verify(&p, t["id_token"].as_str().unwrap(), "partner");
    assert_eq!(id["nonce"], "n-object");
    assert_eq!(id["email"], "obj@example.com", "the object's claims parameter was honoured");
    // A signed object is the whole request (RFC 9101 §5): the query's
    // state, prompt=none and claims are not used.
    let url = format!(
        "/oauth2/v1/authorize?client_id=partner&response_type=code&scope=openid&state=from-query&prompt=none&claims={}&redirect_uri={}&request={}",
        enc(r#"{"id_token":{"phone_number":null}}"#),
        enc(PARTNER_CB),
        request_object(claims.clone(), None)
    );
    let r = get(&p, &url, None).await;
    assert!(r.header("Location").unwrap().starts_with(&format!("{BASE}/login/e2e")), "prompt=none from the query was not used");
    let q = finish_at_login_page(&p, &r, "obj@example.com").await;
    assert_eq!(q["state"], "from-the-object");
    let a = assertion(&format!("{BASE}/oauth2/v1/token"), "jti-request-object-2", 60);
    let form = [
        ("grant_type", "authorization_code"), ("code", q["code"].as_str()), ("redirect_uri", PARTNER_CB), ("code_verifier", pair.verifier.as_str()),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), ("client_assertion", a.as_str()),
    ];
    let id = verify(&p, body(&post_form(&p, "/oauth2/v1/token", &form, None).await)["id_token"].as_str().unwrap(), "partner");
    assert_eq!((id["nonce"].as_str(), id["email"].as_str()), (Some("n-object"), Some("obj@example.com")));
    assert!(!id.contains_key("phone_number"), "the query's claims parameter was not used");
    // A captured request object is not a client assertion (RFC 9101 §10.8),
    // even one carrying sub and jti for the token endpoint.
    let disguised = request_object(json!({"iss": "partner", "sub": "partner", "aud": format!("{BASE}/oauth2/v1/token"), "jti": "j-ro", "exp": now() + 60, "response_type": "code", "redirect_uri": PARTNER_CB}), None);
    let form = [
        ("grant_type", "authorization_code"), ("code", "nope"), ("redirect_uri", PARTNER_CB),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), ("client_assertion", disguised.as_str()),
    ];
    let r = post_form(&p, "/oauth2/v1/token", &form, None).await;
    assert_eq!((r.status, oauth_error(&r).as_str()), (401, "invalid_client"), "{}", r.text());
}

#[tokio::test]
async fn request_objects_that_fail_verification_are_refused() {
    let p = provider();
    let good = json!({"iss": "partner", "aud": ISSUER, "client_id": "partner", "response_type": "code", "redirect_uri": PARTNER_CB, "scope": "openid", "nonce": "n", "code_challenge": "A".repeat(43), "code_challenge_method": "S256", "exp": now() + 300});
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        edit(&mut c);
        c
    };
    let other_key = Key::generate(Algorithm::ES256, None).unwrap();
    let base = format!("/oauth2/v1/authorize?client_id=partner&response_type=code&redirect_uri={}&state=q-state", enc(PARTNER_CB));
    // Each is answered at the query's registered redirect URI.
    for (why, jwt) in [
        ("another key", request_object(good.clone(), Some(&other_key))),
        ("no aud", request_object(with(&|c| drop(c.as_object_mut().unwrap().remove("aud"))), None)),
        ("another audience", request_object(with(&|c| c["aud"] = "https://elsewhere.example".into()), None)),
        ("another iss", request_object(with(&|c| c["iss"] = "web".into()), None)),
        ("expired", request_object(with(&|c| c["exp"] = 1_000.into()), None)),
        ("no exp", request_object(with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))), None)),
        ("living for a day", request_object(with(&|c| c["exp"] = (now() + 86_400).into()), None)),
        ("typed as another JWT", {
            let partner = Key::from_jwk_json(&std::fs::read_to_string(e2e_dir().join("partner-key.json")).unwrap()).unwrap();
            let header: Map<String, Value> = [("typ".to_owned(), Value::from("at+jwt"))].into_iter().collect();
            jose::sign(good.as_object().unwrap(), &partner, Some(&header)).unwrap()
        }),
        ("unsigned, not allowed", unsigned_object(good.clone())),
        ("a request inside", request_object(with(&|c| c["request"] = "x".into()), None)),
        ("not a JWT", "not-a-jwt".to_owned()),
        ("another response_type", request_object(with(&|c| c["response_type"] = "id_token".into()), None)),
        ("too long", request_object(with(&|c| c["state"] = "s".repeat(9000).into()), None)),
    ] {
        let r = get(&p, &format!("{base}&request={}", enc(&jwt)), None).await;
        assert_eq!(r.status, 302, "{why}: {}", r.text());
        let location = r.header("Location").unwrap();
        assert!(location.starts_with(PARTNER_CB), "{why}: {location}");
        let q = query(location);
        assert_eq!((q["error"].as_str(), q["state"].as_str()), ("invalid_request_object", "q-state"), "{why}");
    }
    // Two request objects, each valid on its own: refused, never one of them picked.
    let (first, second) = (request_object(good.clone(), None), request_object(with(&|c| c["nonce"] = "other".into()), None));
    let r = get(&p, &format!("{base}&request={}&request={}", enc(&first), enc(&second)), None).await;
    assert_eq!(r.status, 302, "{}", r.text());
    let q = query(r.header("Location").unwrap());
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("invalid_request_object", "q-state"));
    assert!(q["error_description"].contains("repeated"), "{q:?}");
    // A client_id or redirect_uri that differs between the object and the
    // query: the error page, never a redirect anywhere.
    for (name, value) in [("client_id", "web"), ("redirect_uri", "http://127.0.0.1/partner/other")] {
        let jwt = request_object(with(&|c| c[name] = value.into()), None);
        let r = get(&p, &format!("{base}&request={jwt}"), None).await;
        assert_eq!(r.status, 400, "{name}");
        assert!(r.header("Location").is_none(), "{name}");
        assert!(r.text().contains(name), "{name}");
    }
    // An unregistered redirect_uri inside the object is refused like one in the query.
    let jwt = request_object(with(&|c| c["redirect_uri"] = "https://attacker.example/cb".into()), None);
    let r = get(&p, &format!("/oauth2/v1/authorize?client_id=partner&request={jwt}"), None).await;
    assert_eq!(r.status, 400);
    assert!(r.header("Location").is_none());
    assert!(r.text().contains("not registered"), "{}", r.text());
    // request_uri stays unsupported.
    let r = get(&p, &format!("{base}&request_uri=https%3A%2F%2Fpartner.example%2Fr"), None).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "request_uri_not_supported");
}

#[tokio::test]
async fn unsigned_request_objects_only_for_applications_that_opt_in() {
    // "requestObjectSigningAlg": "none" (OIDC Dynamic Client Registration §2).
    let p = provider_on(Arc::new(MemoryStore::new()), |doc| {
        doc["applications"][0]["requestObjectSigningAlg"] = "none".into();
    });
    let pair = pkce::generate(None).unwrap();
    let claims = json!({"client_id": "e2e", "response_type": "code", "redirect_uri": CB, "scope": "openid", "state": "unsigned-state", "nonce": "n", "code_challenge": pair.challenge, "code_challenge_method": "S256"});
    // An unsigned object is merged with the query (OIDC Core §6.3.3), and its
    // exp and nbf still count.
    for (why, edit) in [("expired", json!({"exp": 1_000})), ("not yet valid", json!({"nbf": now() + 3_600})), ("a text exp", json!({"exp": "soon"}))] {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().extend(edit.as_object().unwrap().clone());
        let r = get(&p, &format!("/oauth2/v1/authorize?client_id=e2e&response_type=code&redirect_uri={}&state=q&request={}", enc(CB), unsigned_object(c)), None).await;
        assert_eq!(query(r.header("Location").unwrap())["error"], "invalid_request_object", "{why}");
    }
    let url = format!("/oauth2/v1/authorize?client_id=e2e&response_type=code&request={}", unsigned_object(claims.clone()));
    let q = finish_at_login_page(&p, &get(&p, &url, None).await, "none@example.com").await;
    assert_eq!(q["state"], "unsigned-state");
    assert!(q.contains_key("code"));
    // Such an application sends no signed object, and a signature on an
    // "alg": "none" token is refused.
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let signed = jose::sign(claims.as_object().unwrap(), &key, None).unwrap();
    let tampered = format!("{}sig", unsigned_object(claims));
    for jwt in [signed, tampered] {
        let r = get(&p, &format!("/oauth2/v1/authorize?client_id=e2e&response_type=code&redirect_uri={}&state=q&request={jwt}", enc(CB)), None).await;
        assert_eq!(query(r.header("Location").unwrap())["error"], "invalid_request_object");
    }
    // A signing algorithm needs keys to verify with; anything else is a config error.
    for (alg, needs) in [("ES256", "jwks or jwksUri"), ("HS256", "not none or an asymmetric algorithm")] {
        let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(e2e_dir().join("project.json")).unwrap()).unwrap();
        doc["applications"][0]["requestObjectSigningAlg"] = alg.into();
        let e = Project::from_json(&doc.to_string(), &e2e_dir()).and_then(|p| Provider::new(p, Arc::new(MemoryStore::new()))).err().unwrap();
        assert!(e.message.contains(needs), "{alg}: {}", e.message);
    }
}

#[tokio::test]
async fn the_claims_parameter_reaches_no_further_than_the_applications_scopes() {
    // An application limited to "openid" cannot get email, tenants or a
    // custom claim through the claims parameter either.
    let p = provider_on(Arc::new(MemoryStore::new()), |doc| {
        doc["applications"][0]["scopes"] = json!(["openid", "offline_access"]);
    });
    let asked = json!({"id_token": {"email": null, "tenants": null, "plan": null, "auth_time": {"essential": true}}, "userinfo": {"email": null, "name": null}});
    let l = login_with(&p, "e2e", CB, "openid", "limited@example.com", &claims_param(asked)).await;
    let t = body(&redeem(&p, "e2e", &l, None).await);
    let id = verify(&p, t["id_token"].as_str().unwrap(), "e2e");
    for c in ["email", "tenants", "plan"] {
        assert!(!id.contains_key(c), "{c}: {id:?}");
    }
    assert!(id.contains_key("auth_time"));
    assert_eq!(userinfo(&p, t["access_token"].as_str().unwrap()).await.keys().collect::<Vec<_>>(), ["sub"]);
}

#[tokio::test]
async fn essential_acr_values_are_the_only_flows_that_answer() {
    // OIDC Core §5.5.1.1 with web-post (flows: sign-up-or-in, claims).
    let p = provider();
    let c = pkce::generate(None).unwrap();
    let url = |extra: &str| authorize_url("web-post", WEB_CB, "openid", Some(&c.challenge), extra);
    // Essential without values only asks for the claim.
    let r = get(&p, &url(&claims_param(json!({"id_token": {"acr": {"essential": true}}}))), None).await;
    assert!(r.header("Location").unwrap().contains("flow=sign-up-or-in"), "{:?}", r.header("Location"));
    // Essential values win over acr_values; a flow= outside them is refused.
    let essential = claims_param(json!({"id_token": {"acr": {"essential": true, "values": ["claims"]}}}));
    let r = get(&p, &url(&format!("&acr_values=sign-up-or-in{essential}")), None).await;
    assert!(r.header("Location").unwrap().contains("flow=claims"), "{:?}", r.header("Location"));
    let r = get(&p, &url(&format!("&flow=sign-up-or-in{essential}")), None).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "unmet_authentication_requirements");
    // A session made by another flow does not answer an essential acr.
    let l = login(&p, "web-post", WEB_CB, "openid", "acr@example.com").await;
    let r = get(&p, &url(&format!("&prompt=none&acr_values=sign-up-or-in{essential}")), Some(&l.cookie)).await;
    assert_eq!(query(r.header("Location").unwrap())["error"], "login_required");
}

#[tokio::test]
async fn implicit_access_tokens_keep_the_claims_request_for_userinfo() {
    let p = provider();
    let asked = enc(&json!({"userinfo": {"name": null, "email": null}}).to_string());
    let url = format!("/oauth2/v1/authorize?response_type=id_token%20token&client_id=implicit&redirect_uri=http%3A%2F%2F127.0.0.1%2Fimplicit%2Fcb&scope=openid&state=s9&nonce=n9&response_mode=form_post&claims={asked}");
    let html = sign_in_at_login_page(&p, &get(&p, &url, None).await, "imp@example.com").await.text();
    let info = userinfo(&p, posted_field(&html, "access_token")).await;
    assert_eq!((info["name"].as_str(), info["email"].as_str()), (Some("imp@example.com"), Some("imp@example.com")));
}

/// A new password ends every earlier sign-in of the user: whoever held the
/// old session (a thief, or the person who pre-registered the account)
/// loses its cookie (`prompt=none`), its unredeemed codes, its refresh
/// tokens and its access tokens at userinfo. Other users keep theirs, and
/// a sign-in after the change works.
#[tokio::test]
async fn a_new_password_signs_the_user_out_everywhere() {
    let p = provider();
    let old = login(&p, "e2e", CB, "openid email offline_access", "vic@example.com").await;
    let tokens = body(&redeem(&p, "e2e", &old, None).await);
    let pending = login(&p, "e2e", CB, "openid offline_access", "vic@example.com").await;
    let other = login(&p, "e2e", CB, "openid offline_access", "bystander@example.com").await;
    let other_tokens = body(&redeem(&p, "e2e", &other, None).await);
    let user = p.store().user_by_login_id("vic@example.com").unwrap().unwrap();

    idflow::users::password::set(p.store().as_ref(), p.engine().passwords(), &user.user_id, "a brand new passphrase".into()).await.unwrap();

    assert_eq!(oauth_error(&refresh(&p, tokens["refresh_token"].as_str().unwrap()).await), "invalid_grant");
    assert_eq!(oauth_error(&redeem(&p, "e2e", &pending, None).await), "invalid_grant", "a code from before the change");
    let bearer = |at: &str| vec![("Authorization".to_owned(), format!("Bearer {at}"))];
    let userinfo = p.handle(HttpRequest::new("GET", "/oauth2/v1/userinfo", bearer(tokens["access_token"].as_str().unwrap()), vec![])).await;
    assert_eq!(userinfo.status, 401);
    let c = pkce::generate(None).unwrap();
    let silent = get(&p, &authorize_url("e2e", CB, "openid", Some(&c.challenge), "&prompt=none"), Some(&old.cookie)).await;
    assert_eq!(query(silent.header("Location").unwrap())["error"], "login_required", "the old cookie no longer signs in");

    // Nobody else is touched, and signing in again works.
    assert_eq!(refresh(&p, other_tokens["refresh_token"].as_str().unwrap()).await.status, 200);
    let again = login(&p, "e2e", CB, "openid offline_access", "vic@example.com").await;
    let fresh = body(&redeem(&p, "e2e", &again, None).await);
    assert_eq!(refresh(&p, fresh["refresh_token"].as_str().unwrap()).await.status, 200);
    let silent = get(&p, &authorize_url("e2e", CB, "openid", Some(&c.challenge), "&prompt=none"), Some(&again.cookie)).await;
    assert!(query(silent.header("Location").unwrap()).contains_key("code"));
}

async fn refresh(p: &Provider, rt: &str) -> HttpResponse {
    post_form(p, "/oauth2/v1/token", &[("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", "e2e")], None).await
}

/// A code redeemed by several requests at once: exactly one gets tokens,
/// every round, and the others' replays then revoke what it got (RFC 6749
/// §4.1.2). The winner checks the grant before it redeems, so a loser's
/// revocation cannot turn the winner's answer into an error (the window is
/// wide on PostgreSQL, where several_servers.rs caught it; narrow here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_raced_by_parallel_requests_has_exactly_one_winner() {
    let p = Arc::new(provider());
    for round in 0..12 {
        let l = Arc::new(login(&p, "e2e", CB, "openid offline_access", &format!("race{round}@example.com")).await);
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (p, l) = (p.clone(), l.clone());
                tokio::spawn(async move { redeem(&p, "e2e", &l, None).await })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        let winners: Vec<&HttpResponse> = answers.iter().filter(|r| r.status == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}: {:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());
        assert!(answers.iter().all(|r| r.status == 200 || body(r)["error"] == "invalid_grant"));
        // The replays revoked the winner's grant: its refresh token is dead.
        let rt = body(winners[0])["refresh_token"].as_str().unwrap().to_owned();
        let r = post_form(&p, "/oauth2/v1/token", &[("grant_type", "refresh_token"), ("refresh_token", &rt), ("client_id", "e2e")], None).await;
        assert_eq!(body(&r)["error"], "invalid_grant", "round {round}");
    }
}
