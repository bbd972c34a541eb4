//! The OIDC client against a real OP on 127.0.0.1 (idflow's own provider
//! served over HTTP), and its validation rules against crafted tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use idflow::jose::{self, Algorithm, Key, KeySet};
use idflow::oidc::client::{AuthorizationParams, ClientAuth, ClientOptions, Endpoints, OidcClient, ResponseType};
use idflow::oidc::provider::HttpRequest;
use idflow::ErrorCode;
use serde_json::{json, Map, Value};
use std::time::Duration;
use support::op::{browse, browse_response, discovery_url, e2e_dir, op};
use support::{Reply, TestServer};

fn public_options() -> ClientOptions {
    let mut o = ClientOptions::new("e2e", "http://127.0.0.1:5555/callback", ClientAuth::None);
    o.scopes = vec!["openid".into(), "email".into(), "offline_access".into()];
    o
}

#[tokio::test]
async fn code_flow_with_discovery_pkce_userinfo_refresh_revoke_and_logout() {
    let (server, provider) = op().await;
    let client = OidcClient::discover(&discovery_url(&server), None, public_options()).await.unwrap();
    assert_eq!(client.endpoints().issuer.as_deref(), Some(provider.issuer()));
    let params = AuthorizationParams { extra: [("access_type".into(), "offline".into())].into(), ..Default::default() };
    let request = client.authorization_request(&params).unwrap();
    assert!(request.url.contains("code_challenge_method=S256") && request.url.contains("access_type=offline"));
    assert!(request.code_verifier.is_some());
    let callback = browse(&provider, &request.url, "rp@example.com").await;
    let tokens = client.handle_callback(&callback, &request).await.unwrap();
    let claims = tokens.claims.clone().unwrap();
    assert_eq!(claims["email"], "rp@example.com");
    assert_eq!(claims["nonce"], request.nonce.as_str());
    assert!(tokens.refresh_token.is_some());
    // The same callback again: the code is spent.
    let replay = client.handle_callback(&callback, &request).await.unwrap_err();
    assert_eq!(replay.code, ErrorCode::InvalidGrant);
    let info = client.userinfo(&tokens.access_token).await;
    assert_eq!(info.unwrap_err().code, ErrorCode::InvalidToken, "the replay revoked the first tokens");
    // A fresh login for the rest.
    let request = client.authorization_request(&AuthorizationParams::default()).unwrap();
    let tokens = client.handle_callback(&browse(&provider, &request.url, "rp@example.com").await, &request).await.unwrap();
    let info = client.userinfo(&tokens.access_token).await.unwrap();
    assert_eq!(info["sub"], tokens.claims.as_ref().unwrap()["sub"]);
    let refreshed = client.refresh(tokens.refresh_token.as_deref().unwrap(), None).await.unwrap();
    assert_ne!(refreshed.refresh_token, tokens.refresh_token);
    assert!(refreshed.claims.is_some());
    client.revoke(refreshed.refresh_token.as_deref().unwrap(), Some("refresh_token")).await.unwrap();
    let gone = client.refresh(refreshed.refresh_token.as_deref().unwrap(), None).await.unwrap_err();
    assert_eq!(gone.code, ErrorCode::InvalidGrant);
    let logout = client.end_session_url(tokens.id_token.as_deref(), Some("http://127.0.0.1/logged-out"), Some("bye")).unwrap();
    let r = provider.handle(HttpRequest::new("GET", &logout, vec![], vec![])).await;
    assert_eq!(r.header("Location"), Some("http://127.0.0.1/logged-out?state=bye"));
}

#[tokio::test]
async fn confidential_clients_authenticate_every_way() {
    let (server, provider) = op().await;
    let partner_key = Key::from_jwk_json(&std::fs::read_to_string(e2e_dir().join("partner-key.json")).unwrap()).unwrap();
    let cases = [
        ("web", "http://127.0.0.1/cb", ClientAuth::ClientSecretBasic("web-secret-0123456789abcdef".into())),
        ("web-post", "http://127.0.0.1/cb", ClientAuth::ClientSecretPost("post-secret-0123456789abcdef".into())),
        ("partner", "http://127.0.0.1/partner/cb", ClientAuth::PrivateKeyJwt(partner_key)),
    ];
    for (id, redirect, auth) in cases {
        let client = OidcClient::discover(&discovery_url(&server), Some(provider.issuer()), ClientOptions::new(id, redirect, auth)).await.unwrap();
        let request = client.authorization_request(&AuthorizationParams::default()).unwrap();
        let tokens = client.handle_callback(&browse(&provider, &request.url, "conf@example.com").await, &request).await;
        let tokens = tokens.unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(tokens.claims.unwrap()["aud"], id);
    }
    // A wrong secret is the provider's invalid_client.
    let client = OidcClient::discover(&discovery_url(&server), None, ClientOptions::new("web", "http://127.0.0.1/cb", ClientAuth::ClientSecretBasic("wrong-secret-0123456789".into())))
        .await
        .unwrap();
    let request = client.authorization_request(&AuthorizationParams::default()).unwrap();
    let err = client.handle_callback(&browse(&provider, &request.url, "conf@example.com").await, &request).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidClient);
}

#[tokio::test]
async fn callbacks_are_checked_before_any_exchange() {
    let (server, provider) = op().await;
    let client = OidcClient::discover(&discovery_url(&server), None, public_options()).await.unwrap();
    let request = client.authorization_request(&AuthorizationParams::default()).unwrap();
    let code_cb = format!("http://127.0.0.1:5555/callback?code=abc&state={}&iss={}", request.state, provider.issuer());
    assert_eq!(client.parse_callback(&code_cb, "another-state").unwrap_err().code, ErrorCode::InvalidRequest);
    let mixed_up = format!("http://127.0.0.1:5555/callback?code=abc&state={}&iss=https%3A%2F%2Fevil.example", request.state);
    assert_eq!(client.parse_callback(&mixed_up, &request.state).unwrap_err().code, ErrorCode::InvalidIssuer);
    let denied = format!("?error=access_denied&error_description=user%20said%20no&state={}", request.state);
    let e = client.parse_callback(&denied, &request.state).unwrap_err();
    assert_eq!(e.code, ErrorCode::AccessDenied);
    assert!(e.message.contains("user said no"));
    let e = client.parse_callback(&format!("error=login_required&state={}", request.state), &request.state).unwrap_err();
    assert_eq!(e.code, ErrorCode::LoginRequired);
    // prompt=none without a session, through the real provider.
    let silent = client.authorization_request(&AuthorizationParams { prompt: vec!["none".into()], ..Default::default() }).unwrap();
    let cb = browse(&provider, &silent.url, "x@example.com").await;
    assert_eq!(client.handle_callback(&cb, &silent).await.unwrap_err().code, ErrorCode::LoginRequired);
    // form_post bodies parse the same way.
    let body = format!("code=abc&state={}", request.state);
    assert_eq!(client.parse_callback(&body, &request.state).unwrap().code.as_deref(), Some("abc"));
    assert!(client.authorization_request(&AuthorizationParams { prompt: vec!["sometimes".into()], ..Default::default() }).is_err());
    let clash = AuthorizationParams { extra: [("state".into(), "x".into())].into(), ..Default::default() };
    assert_eq!(client.authorization_request(&clash).unwrap_err().code, ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn the_implicit_grant_validates_the_posted_id_token() {
    let (server, provider) = op().await;
    let options = ClientOptions::new("implicit", "http://127.0.0.1/implicit/cb", ClientAuth::None);
    let client = OidcClient::discover(&discovery_url(&server), None, options).await.unwrap();
    let request = client.authorization_request(&AuthorizationParams { response_type: Some(ResponseType::IdToken), ..Default::default() }).unwrap();
    assert!(request.url.contains("response_type=id_token") && request.url.contains("response_mode=form_post"));
    let page = browse_response(&provider, &request.url, "imp@example.com").await.text();
    let field = |name: &str| page.split(&format!("name=\"{name}\" value=\"")).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let body = format!("id_token={}&state={}", field("id_token"), field("state"));
    let tokens = client.handle_callback(&body, &request).await.unwrap();
    assert_eq!(tokens.claims.unwrap()["nonce"], request.nonce.as_str());
}

#[tokio::test]
async fn discovery_and_network_failures_have_codes() {
    let (server, provider) = op().await;
    // The document's issuer differs from the expected one.
    let e = OidcClient::discover(&discovery_url(&server), Some("https://other.example"), public_options()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidIssuer);
    let fake = TestServer::start().await;
    let doc = json!({"issuer": "https://evil.example", "authorization_endpoint": "https://evil.example/a", "token_endpoint": "https://evil.example/t"});
    fake.route("/.well-known/openid-configuration", Reply::json(200, &doc));
    let e = OidcClient::discover(&format!("{}/.well-known/openid-configuration", fake.url()), None, public_options()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidIssuer);
    // Down: nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = OidcClient::discover(&format!("http://{closed}/.well-known/openid-configuration"), None, public_options()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Network);
    // Slow: the token endpoint answers after the timeout.
    let slow = TestServer::start().await;
    slow.route("/token", Reply::json(200, &json!({"access_token": "x", "token_type": "Bearer"})).delay(Duration::from_millis(1500)));
    let mut options = public_options();
    options.timeout = Duration::from_millis(300);
    let endpoints = Endpoints { authorization: format!("{}/authorize", slow.url()), token: format!("{}/token", slow.url()), ..Default::default() };
    let client = OidcClient::new(options, endpoints).unwrap();
    let e = client.exchange_code("c", Some("v"), None, None, &[]).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Network);
    assert!(e.message.contains("timed out"), "{}", e.message);
    let _ = provider;
}

#[tokio::test]
async fn without_a_jwks_claims_come_from_userinfo() {
    let (server, provider) = op().await;
    let base = server.url();
    let endpoints = Endpoints {
        issuer: Some(provider.issuer().to_owned()),
        authorization: format!("{base}/oauth2/v1/authorize"),
        token: format!("{base}/oauth2/v1/token"),
        userinfo: Some(format!("{base}/oauth2/v1/userinfo")),
        ..Default::default()
    };
    let client = OidcClient::new(public_options(), endpoints).unwrap();
    let request = client.authorization_request(&AuthorizationParams::default()).unwrap();
    let tokens = client.handle_callback(&browse(&provider, &request.url, "ui@example.com").await, &request).await.unwrap();
    let claims = tokens.claims.unwrap();
    assert_eq!(claims["email"], "ui@example.com");
    assert!(!claims.contains_key("nonce"), "the claims are userinfo's, not the unverified id_token's");
    assert_eq!(client.validate_id_token(tokens.id_token.as_deref().unwrap(), None, None).await.unwrap_err().code, ErrorCode::Config);
}

/// A client for a made-up OP whose key we hold, to craft id_tokens.
fn crafted() -> (OidcClient, Key, KeySet) {
    let key = Key::generate(Algorithm::ES256, None).unwrap();
    let keys = KeySet::new(vec![key.public_key().unwrap()]).unwrap();
    let endpoints = Endpoints {
        issuer: Some("https://op.example".into()),
        authorization: "https://op.example/authorize".into(),
        token: "https://op.example/token".into(),
        jwks_uri: Some("https://op.example/jwks".into()),
        end_session: Some("https://op.example/logout".into()),
        ..Default::default()
    };
    (OidcClient::new(ClientOptions::new("rp", "https://rp.example/cb", ClientAuth::None), endpoints).unwrap(), key, keys)
}

fn id_token(key: &Key, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut claims = json!({"iss": "https://op.example", "sub": "u1", "aud": "rp", "iat": now, "exp": now + 300, "nonce": "n"})
        .as_object()
        .unwrap()
        .clone();
    edit(&mut claims);
    jose::sign(&claims, key, None).unwrap()
}

#[test]
fn id_token_rules_each_have_their_code() {
    let (client, key, keys) = crafted();
    let ok = id_token(&key, |_| {});
    assert_eq!(client.validate_id_token_with(&keys, &ok, Some("n"), None).unwrap()["sub"], "u1");
    let cases: Vec<(String, Option<&str>, ErrorCode)> = vec![
        (ok.clone(), Some("other-nonce"), ErrorCode::InvalidToken),
        (id_token(&key, |c| c.remove("nonce").map(|_| ()).unwrap_or(())), Some("n"), ErrorCode::InvalidToken),
        (id_token(&key, |c| c["iss"] = "https://elsewhere.example".into()), None, ErrorCode::InvalidIssuer),
        (id_token(&key, |c| c["aud"] = "another-client".into()), None, ErrorCode::InvalidAudience),
        (id_token(&key, |c| { c["aud"] = json!(["rp", "x"]); }), None, ErrorCode::InvalidAudience),
        (id_token(&key, |c| { c.insert("azp".into(), "x".into()); }), None, ErrorCode::InvalidAudience),
        (id_token(&key, |c| c["exp"] = json!(1_000_000)), None, ErrorCode::ExpiredToken),
        (id_token(&Key::generate(Algorithm::ES256, None).unwrap(), |_| {}), None, ErrorCode::InvalidKey),
    ];
    for (i, (token, nonce, want)) in cases.into_iter().enumerate() {
        let e = client.validate_id_token_with(&keys, &token, nonce, None).unwrap_err();
        assert_eq!(e.code, want, "case {i}: {}", e.message);
    }
    // A flipped signature, and alg none.
    // (A character well inside the signature: the last one may carry only
    // padding bits.)
    let mut bad: Vec<char> = ok.chars().collect();
    let i = bad.len() - 20;
    bad[i] = if bad[i] == 'A' { 'B' } else { 'A' };
    let bad: String = bad.into_iter().collect();
    assert_eq!(client.validate_id_token_with(&keys, &bad, None, None).unwrap_err().code, ErrorCode::InvalidSignature);
    let parts: Vec<&str> = ok.split('.').collect();
    let none = format!("{}.{}.", idflow_b64(br#"{"alg":"none"}"#), parts[1]);
    assert_eq!(client.validate_id_token_with(&keys, &none, None, None).unwrap_err().code, ErrorCode::UnsupportedAlgorithm);
    // at_hash must match the access token when both are present.
    let with_hash = id_token(&key, |c| { c.insert("at_hash".into(), "wrong".into()); });
    assert_eq!(client.validate_id_token_with(&keys, &with_hash, None, Some("at")).unwrap_err().code, ErrorCode::InvalidToken);
}

fn idflow_b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn the_callback_work_without_network() {
    let (client, key, keys) = crafted();
    let request = client.authorization_request(&AuthorizationParams::default()).unwrap();
    let token = id_token(&key, |c| c["nonce"] = request.nonce.clone().into());
    let body = json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 300, "id_token": token}).to_string();
    let callback = format!("https://rp.example/cb?code=c&state={}", request.state);
    let tokens = client.complete_with(&keys, &callback, &request.state, &request.nonce, 200, body.as_bytes()).unwrap();
    assert_eq!(tokens.expires_in, Some(300));
    assert_eq!(tokens.claims.unwrap()["sub"], "u1");
    let err = OidcClient::parse_token_response(400, br#"{"error":"invalid_grant","error_description":"spent"}"#).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidGrant);
    assert_eq!(OidcClient::parse_token_response(502, b"<html>").unwrap_err().code, ErrorCode::Network);
    assert_eq!(OidcClient::parse_token_response(200, br#"{"access_token":"x","token_type":"mac"}"#).unwrap_err().code, ErrorCode::InvalidToken);
    // Configuration errors name the field.
    let bad = ClientOptions::new("rp", "not a url", ClientAuth::None);
    assert_eq!(OidcClient::new(bad, Endpoints::default()).unwrap_err().code, ErrorCode::Config);
}

#[test]
fn redirect_uris_take_every_rfc_8252_form_and_name_the_rule_they_break() {
    let endpoints = || crafted().0.endpoints();
    for uri in ["com.example.app:/oauth2redirect", "https://app.example.com/cb", "http://127.0.0.1:51004/cb", "http://[::1]:8080/cb", "http://rp.example/cb"] {
        let client = OidcClient::new(ClientOptions::new("rp", uri, ClientAuth::None), endpoints()).unwrap_or_else(|e| panic!("{uri}: {e}"));
        let request = client.authorization_request(&AuthorizationParams::default()).unwrap();
        // The callback in the same form parses with the same state and iss checks.
        let cb = format!("{uri}?code=c1&state={}&iss=https%3A%2F%2Fop.example", request.state);
        assert_eq!(client.parse_callback(&cb, &request.state).unwrap().code.as_deref(), Some("c1"), "{uri}");
        assert_eq!(client.parse_callback(&cb, "other").unwrap_err().code, ErrorCode::InvalidRequest, "{uri}");
        let mixed_up = format!("{uri}?code=c1&state={}&iss=https%3A%2F%2Fevil.example", request.state);
        assert_eq!(client.parse_callback(&mixed_up, &request.state).unwrap_err().code, ErrorCode::InvalidIssuer, "{uri}");
    }
    for (uri, rule) in [
        ("javascript:alert(1)//", "javascript: scheme"),
        ("data:text/html,hi", "data: scheme"),
        ("vbscript:msgbox", "vbscript: scheme"),
        ("file:///etc/passwd", "file: scheme"),
        ("blob:https://rp.example/x", "blob: scheme"),
        ("about:blank", "about: scheme"),
        ("myapp:/cb", "reverse-DNS"),
        ("/cb", "absolute URL"),
        ("https://rp.example/cb#frag", "no fragment"),
    ] {
        let err = OidcClient::new(ClientOptions::new("rp", uri, ClientAuth::None), endpoints()).unwrap_err();
        assert_eq!(err.code, ErrorCode::Config, "{uri}");
        assert!(err.message.starts_with("redirect_uri: ") && err.message.contains(rule), "{uri}: {}", err.message);
        // The same rules for a per-request redirect URI and for logout.
        let (client, _, _) = crafted();
        let per_request = AuthorizationParams { redirect_uri: Some(uri.into()), ..Default::default() };
        assert_eq!(client.authorization_request(&per_request).unwrap_err().code, ErrorCode::Config, "{uri}");
        let err = client.end_session_url(None, Some(uri), None).unwrap_err();
        assert!(err.code == ErrorCode::Config && err.message.contains("post_logout_redirect_uri"), "{uri}: {err}");
    }
    let (client, _, _) = crafted();
    let native = AuthorizationParams { redirect_uri: Some("com.example.app:/other".into()), ..Default::default() };
    assert!(client.authorization_request(&native).unwrap().url.contains("redirect_uri=com.example.app%3A%2Fother"));
}

/// Settings given by name (JSON in Python, Node and project files) and as
/// the Swift/Kotlin record are one thing, checked in one place.
#[test]
fn client_and_session_settings_by_name_and_as_records_are_checked_alike() {
    use idflow::oidc::client::session::{SessionOptions, SessionSettings};
    use idflow::oidc::client::{ClientConfig, ClientSettings};
    let by_name = json!({"clientId": "app", "redirectUri": "com.example.app:/cb", "scopes": "openid email", "timeout": 5,
        "leeway": 30, "issuer": "https://op.example", "authorizationEndpoint": "https://op.example/a", "tokenEndpoint": "https://op.example/t"});
    let record = ClientSettings {
        client_id: "app".into(),
        redirect_uri: "com.example.app:/cb".into(),
        scopes: Some(vec!["openid".into(), "email".into()]),
        timeout: Some(5.0),
        leeway: Some(30),
        issuer: Some("https://op.example".into()),
        authorization_endpoint: Some("https://op.example/a".into()),
        token_endpoint: Some("https://op.example/t".into()),
        ..Default::default()
    };
    assert_eq!(ClientSettings::from_json(by_name.as_object().unwrap()).unwrap(), record);
    let config = ClientConfig::from_settings(record.clone(), None).unwrap();
    assert_eq!(config.options.scopes, ["openid", "email"]);
    assert_eq!(config.options.timeout, Duration::from_secs(5));
    assert_eq!(config.endpoints.unwrap().token, "https://op.example/t");
    // The record's values meet the same rules as JSON's, with the same codes.
    let refused = [
        ClientSettings { client_id: String::new(), ..record.clone() },
        ClientSettings { client_secret: Some(String::new()), ..record.clone() },
        ClientSettings { scopes: Some(vec!["openid email".into()]), ..record.clone() },
        ClientSettings { timeout: Some(0.0), ..record.clone() },
        ClientSettings { timeout: Some(f64::NAN), ..record.clone() },
        ClientSettings { leeway: Some(301), ..record.clone() },
        ClientSettings { id_token_algorithms: Some(vec!["none".into()]), ..record.clone() },
        ClientSettings { discovery_url: Some("https://op.example/.well-known/openid-configuration".into()), ..record.clone() },
        ClientSettings { userinfo_endpoint: Some(String::new()), ..record.clone() },
    ];
    for s in refused {
        let e = ClientConfig::from_settings(s.clone(), None).expect_err(&format!("{s:?}"));
        assert!(matches!(e.code, ErrorCode::Config | ErrorCode::UnsupportedAlgorithm), "{s:?}: {e}");
    }
    assert_eq!(ClientConfig::from_json(json!({"clientId": "app", "redirectUri": ""}).as_object().unwrap(), None).unwrap_err().code, ErrorCode::Config);

    let s = SessionSettings::from_json(json!({"refreshMargin": 3600, "lockPath": "/tmp/x.lock"}).as_object().unwrap()).unwrap();
    assert_eq!(s, SessionSettings { refresh_margin: Some(3600.0), lock_path: Some("/tmp/x.lock".into()), ..Default::default() });
    let o = SessionOptions::from_settings(&s).unwrap();
    assert_eq!((o.refresh_margin, o.pending_ttl, o.revoke_on_sign_out), (Duration::from_secs(3600), Duration::from_secs(600), true));
    for bad in [
        SessionSettings { refresh_margin: Some(-1.0), ..Default::default() },
        SessionSettings { pending_ttl: Some(0.0), ..Default::default() },
        SessionSettings { lock_timeout: Some(f64::NAN), ..Default::default() },
        SessionSettings { lock_path: Some(String::new()), ..Default::default() },
    ] {
        assert_eq!(SessionOptions::from_settings(&bad).unwrap_err().code, ErrorCode::Config, "{bad:?}");
    }
}
