//! Runs the real `idflow serve` on 127.0.0.1: the demo project end to end
//! through the printed authorize URL, body limits, graceful shutdown, logs
//! free of secrets, key rotation across a restart, and config errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

#[test]
fn the_demo_project_signs_a_user_in_from_the_printed_authorize_url() {
    let dir = temp_dir("demo");
    let port = free_port();
    let server = start(dir.join("idflow.db"), port, &[]);
    let issuer = server.line("issuer:");
    // Named localhost (not 127.0.0.1), so the demo's passkeys have a relying party.
    assert_eq!(issuer, format!("http://localhost:{port}/local"));
    assert_eq!(server.line("demo client id:"), "local (public, PKCE)");
    let (status, _, body) = http(port, "GET", "/health", &[], b"");
    assert_eq!((status, serde_json::from_slice::<Value>(&body).unwrap()["status"].clone()), (200, "ok".into()));
    let (_, _, body) = http(port, "GET", "/local/.well-known/openid-configuration", &[], b"");
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["issuer"], issuer.as_str());
    // The printed authorize URL and verifier work as printed.
    let url = server.line("authorize URL:");
    let verifier = server.line("code_verifier:");
    let target = &url[url.find("/oauth2").unwrap()..];
    let secret_email = "serve-test-user@example.com";
    let password = "a long demo password";
    // Sign up with a password; the console transport prints the code.
    let seen = server.log_len();
    let login = sign_in_with(port, target, &mut |screen| match screen["stepId"].as_str() {
        Some("welcome") => ("signUp".into(), serde_json::json!({"email": secret_email, "password": password})),
        Some("checkEmail") => ("verify".into(), serde_json::json!({"code": server.mailed_code(seen)})),
        Some("offerApp") => ("skip".into(), serde_json::json!({})),
        other => panic!("unexpected screen {other:?}: {screen}"),
    });
    assert!(login.landed.starts_with("http://127.0.0.1:8765/callback?"), "{}", login.landed);
    let code = param(&login.landed, "code");
    let form = format!("grant_type=authorization_code&code={code}&client_id=local&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&code_verifier={verifier}");
    let (status, headers, body) = http(port, "POST", "/oauth2/v1/token", &[("Content-Type", "application/x-www-form-urlencoded")], form.as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    let tokens: Value = serde_json::from_slice(&body).unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    // A password and a mailed code: two factors (RFC 8176).
    let id_token = idflow::jose::decode_unverified(tokens["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(id_token.claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    // A body over 64 KiB is refused before it reaches the provider.
    let big = vec![b'a'; 70 * 1024];
    let (status, _, _) = http(port, "POST", "/oauth2/v1/token", &[("Content-Type", "application/x-www-form-urlencoded")], &big);
    assert_eq!(status, 413);
    // Graceful stop on SIGTERM; the log names requests, never secrets.
    let (status, log) = server.stop();
    assert!(status.success(), "{status:?}: {log}");
    assert!(log.contains("path=/oauth2/v1/token") && log.contains("status=200"), "{log}");
    let browser = login.cookie.split_once('=').unwrap().1;
    assert!(log.contains("[idflow email, development only] to s***@example.com: Your sign-in code: "), "{log}");
    for secret in [code.as_str(), verifier.as_str(), access.as_str(), secret_email, password, login.request.as_str(), login.secret.as_str(), browser] {
        assert!(!log.contains(secret), "the log leaked {secret}");
    }
}

/// `idflow keys rotate` while two servers run on the database: both
/// publish the new key within seconds, with no restart, and keep the old.
#[test]
fn keys_rotate_while_servers_run_and_config_errors_exit_2() {
    let dir = temp_dir("rotate");
    let db = dir.join("idflow.db");
    let (port, port2) = (free_port(), free_port());
    let server = start(&db, port, &[]);
    let server2 = start(&db, port2, &[]);
    let jwks = |p: u16| serde_json::from_slice::<Value>(&http(p, "GET", "/local/.well-known/jwks.json", &[], b"").2).unwrap();
    let before = jwks(port);
    let rotated = Command::new(env!("CARGO_BIN_EXE_idflow"))
        .args(["keys", "rotate", "--db", db.to_str().unwrap(), "--alg", "ES256", "--prepublish", "1"])
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let rotated: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    assert_eq!(rotated["alg"], "ES256");
    let deadline = Instant::now() + Duration::from_secs(15);
    for p in [port, port2] {
        let after = loop {
            let after = jwks(p);
            if after["keys"].as_array().unwrap().len() == 2 || Instant::now() > deadline {
                break after;
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        assert_eq!(after["keys"].as_array().unwrap().len(), 2, "published within seconds: {after}");
        assert_eq!(after["keys"][0]["kid"], rotated["kid"]);
        assert_eq!(after["keys"][1], before["keys"][0], "the old public key stays published");
        let discovery: Value = serde_json::from_slice(&http(p, "GET", "/local/.well-known/openid-configuration", &[], b"").2).unwrap();
        assert!(discovery["id_token_signing_alg_values_supported"].as_array().unwrap().contains(&"ES256".into()), "{discovery}");
    }
    server.stop();
    server2.stop();
    // A bad project file: exit 2 with the error code.
    std::fs::write(dir.join("bad.json"), r#"{"projectId": "x", "baseUrl": "http://127.0.0.1", "applicationz": []}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_idflow"))
        .args(["serve", "--config", dir.join("bad.json").to_str().unwrap(), "--db", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("idflow: config: ") && err.contains("applicationz"), "{err}");
}

/// `idflow oauth test --provider acme` on `config`, its three streams piped.
fn oauth_test(config: &std::path::Path, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_idflow"))
        .args(["oauth", "test", "--config", config.to_str().unwrap(), "--provider", "acme", "--db", dir.join("down.db").to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `idflow oauth test` against an upstream `idflow serve` (the e2e project):
/// the printed URL, a sign-in there, the pasted callback address, then the
/// claims and mapped user, with nothing saved.
#[test]
fn oauth_test_prints_the_url_then_the_claims_and_mapped_user() {
    let dir = temp_dir("oauth-test");
    let up_port = free_port();
    let e2e = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/project.json");
    let base = format!("http://127.0.0.1:{up_port}");
    let upstream = start(dir.join("up.db"), up_port, &["--config", e2e, "--base-url", &base]);
    let down = dir.join("down.json");
    let doc = serde_json::json!({
        "projectId": "down",
        "baseUrl": "http://127.0.0.1:7999",
        "oauthProviders": [{
            "name": "acme", "clientId": "social-rp", "clientSecret": "social-rp-secret-0123456789",
            "discoveryUrl": format!("{base}/e2e/.well-known/openid-configuration"), "scopes": ["openid", "email", "profile"],
            "triggerMethod": "flowsOnly",
            "attributeMapping": {"customAttributes": {"emailCopy": "email"}},
        }],
    });
    std::fs::write(&down, doc.to_string()).unwrap();
    let mut cli = oauth_test(&down, &dir);
    let mut out = BufReader::new(cli.stdout.take().unwrap());
    let mut url = String::new();
    out.read_line(&mut url).unwrap();
    let url = url.trim().to_owned();
    assert!(url.starts_with(&format!("{base}/oauth2/v1/authorize?")), "{url}");
    assert!(url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A7999%2Fv1%2Foauth%2Fcallback"), "{url}");
    // Sign in at the upstream, as the browser would.
    let target = url.strip_prefix(&base).unwrap();
    let landed = sign_in(up_port, target, "cli-oauth@example.com").landed;
    assert!(landed.starts_with("http://127.0.0.1:7999/v1/oauth/callback?code="), "{landed}");
    let mut stdin = cli.stdin.take().unwrap();
    writeln!(stdin, "{landed}").unwrap();
    drop(stdin);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = cli.wait().unwrap();
    let mut err = String::new();
    cli.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{err}\n{rest}");
    assert!(err.contains("paste the address"), "{err}");
    let report: Value = serde_json::from_str(&rest).unwrap();
    assert_eq!(report["provider"], "acme");
    assert_eq!(report["claims"]["email"], "cli-oauth@example.com");
    assert_eq!(report["user"]["email"], "cli-oauth@example.com");
    assert_eq!(report["user"]["customAttributes"]["emailCopy"], "cli-oauth@example.com");
    assert!(report["user"]["loginIds"][0].as_str().unwrap().starts_with("acme:"));
    assert_eq!(report["existingUserId"], Value::Null);
    assert_eq!(report["tokens"]["idToken"], true);
    assert!(!rest.contains("eyJ"), "no token values are printed");
    // The same answer again: the test request was used up.
    let mut again = oauth_test(&down, &dir);
    writeln!(again.stdin.take().unwrap(), "{landed}").unwrap();
    let output = again.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid_request"), "{}", String::from_utf8_lossy(&output.stderr));
    // An unknown provider is a clear error.
    let output = Command::new(env!("CARGO_BIN_EXE_idflow"))
        .args(["oauth", "test", "--config", down.to_str().unwrap(), "--provider", "nope", "--db", dir.join("down.db").to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no oauth provider named \"nope\""));
    upstream.stop();
}

/// Opens `n` connections that send half a request header and then stall.
fn stuck_connections(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").unwrap();
            s
        })
        .collect()
}

#[test]
fn stuck_clients_never_stop_health_or_a_stop() {
    let dir = temp_dir("stuck");
    let port = free_port();
    let server = start(dir.join("idflow.db"), port, &["--max-connections", "32", "--header-timeout", "2"]);
    // More stuck connections than the cap: the longest-waiting make room.
    let stuck = stuck_connections(port, 100);
    let t0 = Instant::now();
    let (status, _, _) = http(port, "GET", "/health", &[], b"");
    assert_eq!(status, 200);
    assert!(t0.elapsed() < Duration::from_secs(2), "health waited {:?}", t0.elapsed());
    // A header that never completes is cut off after the header timeout.
    let mut slow = stuck_connections(port, 1).remove(0);
    slow.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 64];
    let n = slow.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5), "closed after {waited:?}");
    // A stop with stuck connections open is prompt.
    let more = stuck_connections(port, 20);
    let t0 = Instant::now();
    let (status, log) = server.stop();
    assert!(status.success(), "{status:?}: {log}");
    assert!(t0.elapsed() < Duration::from_secs(5), "the stop took {:?}", t0.elapsed());
    drop((stuck, more));
}

#[test]
fn a_client_that_aborts_its_body_is_not_called_too_large() {
    let dir = temp_dir("abort");
    let port = free_port();
    let server = start(dir.join("idflow.db"), port, &["--body-timeout", "2"]);
    {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"POST /oauth2/v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\ngrant_type").unwrap();
    }
    // A body that stalls: 408 after the body timeout.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    s.write_all(b"POST /oauth2/v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nabc").unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"), "{}", String::from_utf8_lossy(&answer));
    std::thread::sleep(Duration::from_millis(200));
    let (_, log) = server.stop();
    assert!(!log.contains("too large"), "{log}");
    assert!(log.contains("closed the connection before its body was complete"), "{log}");
}

#[test]
fn servers_starting_together_on_a_new_database_share_one_signing_key() {
    for round in 0..5 {
        let dir = temp_dir(&format!("together-{round}"));
        let db = dir.join("idflow.db");
        let (a, b) = (free_port(), free_port());
        let (sa, sb) = std::thread::scope(|s| {
            let ha = s.spawn(|| start(&db, a, &["--max-connections", "64"]));
            let hb = s.spawn(|| start(&db, b, &["--max-connections", "64"]));
            (ha.join().unwrap(), hb.join().unwrap())
        });
        let (_, _, ja) = http(a, "GET", "/local/.well-known/jwks.json", &[], b"");
        let (_, _, jb) = http(b, "GET", "/local/.well-known/jwks.json", &[], b"");
        let (ja, jb): (Value, Value) = (serde_json::from_slice(&ja).unwrap(), serde_json::from_slice(&jb).unwrap());
        assert_eq!(ja["keys"].as_array().unwrap().len(), 1, "round {round}: {ja}");
        assert_eq!(ja, jb, "round {round}");
        let (sa_status, log_a) = sa.stop();
        let (sb_status, log_b) = sb.stop();
        assert!(sa_status.success() && sb_status.success(), "{log_a}\n{log_b}");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&db).unwrap().permissions()) & 0o777;
        assert_eq!(mode, 0o600);
    }
}

/// kill -9 in the middle of refreshes: a chain whose request was in flight
/// retries its token after the restart and goes on, because the rotation
/// was one transaction and tokens.refreshReuseGrace answers a lost reply.
#[test]
fn a_crash_during_refreshes_loses_no_session_within_the_grace_window() {
    let dir = temp_dir("crash");
    let db = dir.join("idflow.db");
    let port = free_port();
    let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/flows/sign-up-or-in.json");
    let project = serde_json::json!({
        "projectId": "crash", "baseUrl": format!("http://127.0.0.1:{port}"),
        "tokens": {"refreshReuseGrace": 120},
        "applications": [{"clientId": "crash", "public": true, "redirectUris": ["http://127.0.0.1/cb"], "flow": "sign-up-or-in"}],
        "flows": [flows.to_str().unwrap()]
    });
    let config = dir.join("project.json");
    std::fs::write(&config, project.to_string()).unwrap();
    let server = start(&db, port, &["--config", config.to_str().unwrap()]);
    let mut chains = Vec::new();
    for i in 0..12 {
        let pair = idflow::pkce::generate(None).unwrap();
        let authorize = format!(
            "/oauth2/v1/authorize?response_type=code&client_id=crash&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&scope=openid%20offline_access&code_challenge={}&code_challenge_method=S256",
            pair.challenge
        );
        let login = sign_in(port, &authorize, &format!("chain-{i}@example.com"));
        let code = param(&login.landed, "code");
        let form = format!("grant_type=authorization_code&code={code}&client_id=crash&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&code_verifier={}", pair.verifier);
        let (status, _, body) = http(port, "POST", "/oauth2/v1/token", &[("Content-Type", "application/x-www-form-urlencoded")], form.as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let tokens: Value = serde_json::from_slice(&body).unwrap();
        chains.push(tokens["refresh_token"].as_str().unwrap().to_owned());
    }
    // Each chain refreshes in a loop until the server dies under it.
    let refresh = |port: u16, token: &str| -> Option<(u16, Value)> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let body = format!("grant_type=refresh_token&client_id=crash&refresh_token={token}");
        let req = format!("POST /oauth2/v1/token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        s.write_all(req.as_bytes()).ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let status = String::from_utf8_lossy(&raw[..split]).split(' ').nth(1)?.parse().ok()?;
        Some((status, serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null)))
    };
    let pid = server.child.id();
    let last: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = chains
            .iter()
            .map(|first| {
                s.spawn(move || {
                    let mut token = first.clone();
                    loop {
                        match refresh(port, &token) {
                            Some((200, t)) => token = t["refresh_token"].as_str().unwrap().to_owned(),
                            Some((status, t)) => panic!("refresh answered {status}: {t}"),
                            None => return token, // the server died mid-request
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut server = server;
    let _ = server.child.wait();
    let server = start(&db, port, &["--config", config.to_str().unwrap()]);
    for (i, token) in last.iter().enumerate() {
        let (status, body) = refresh(port, token).unwrap();
        assert_eq!(status, 200, "chain {i} lost its session: {body}");
        let next = body["refresh_token"].as_str().unwrap();
        let (status, body) = refresh(port, next).unwrap();
        assert_eq!(status, 200, "chain {i} goes on: {body}");
    }
    server.stop();
}

/// `--metrics-addr`: the metrics on a listener of their own (not on the
/// public one), in a format Prometheus reads, counting requests by route
/// and status and flow answers by outcome; `IDFLOW_LOG_FORMAT=json` logs
/// one JSON object per line, still without secrets.
#[test]
fn metrics_have_their_own_listener_and_logs_can_be_json() {
    let dir = temp_dir("metrics");
    let port = free_port();
    let server = start_with(dir.join("idflow.db"), port, &["--metrics-addr", "127.0.0.1:0"], &[("IDFLOW_LOG_FORMAT", "json")]);
    let url = server.line("metrics:");
    let metrics_port: u16 = url.trim_start_matches("http://127.0.0.1:").trim_end_matches("/metrics").parse().unwrap();
    // Not on the public listener.
    let (status, _, _) = http(port, "GET", "/metrics", &[], b"");
    assert_eq!(status, 404);
    http(port, "GET", "/health", &[], b"");
    http(port, "GET", "/nope?secret-in-query=1", &[], b"");
    let (status, headers, body) = http(port, "POST", "/v1/flow/start", &[("Content-Type", "application/json")], br#"{"flowId":"sign-up-or-in"}"#);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let cookie = header(&headers, "set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let started: Value = serde_json::from_slice(&body).unwrap();
    let answer = serde_json::json!({"executionId": started["executionId"], "stepId": "welcome", "interactionId": "signIn",
        "input": {"email": "nobody@example.com", "password": "not the password at all"}});
    let (_, _, body) = http(port, "POST", "/v1/flow/next", &[("Content-Type", "application/json"), ("Cookie", &cookie)], answer.to_string().as_bytes());
    let answered: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answered["error"]["code"], "invalid_credentials", "{answered}");
    let (status, headers, body) = http(metrics_port, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").unwrap().starts_with("application/openmetrics-text"));
    let text = String::from_utf8(body).unwrap();
    for line in [
        "idflow_http_requests_total{route=\"health\",status=\"200\"} 1",
        "idflow_http_requests_total{route=\"unknown\",status=\"404\"} 2",
        "idflow_http_requests_total{route=\"flow_next\",status=\"200\"} 1",
        "idflow_flow_answers_total{outcome=\"invalid_credentials\"} 1",
        "idflow_http_request_duration_seconds_count{route=\"flow_start\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    let (status, _, _) = http(metrics_port, "POST", "/metrics", &[], b"");
    assert_eq!(status, 405);
    let (status, log) = server.stop();
    assert!(status.success());
    let requests: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|v| v["message"] == "request").collect();
    assert!(requests.len() >= 5, "one JSON object per request: {log}");
    assert!(requests.iter().any(|r| r["path"] == "/v1/flow/next" && r["status"] == 200 && r["level"] == "INFO"), "{log}");
    for secret in ["secret-in-query", "not the password at all", "nobody@example.com", cookie.split_once('=').unwrap().1] {
        assert!(!log.contains(secret), "the log leaked {secret}");
    }
}
