//! `idflow serve --config a.json --config b.toml`: several projects in one
//! process, each at its own issuer with every endpoint under it, each in
//! a store of its own (`--db data/{project}.db`), over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use std::process::Command;
use support::*;

const CB: &str = "http%3A%2F%2F127.0.0.1%2Fcb";

/// `acme.json` and `globex.toml` in `dir`, for a server on `port`.
fn write_projects(dir: &std::path::Path, port: u16) -> (String, String) {
    let flow = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/flows/sign-up-or-in.json");
    let flow = flow.canonicalize().unwrap();
    let app = json!({"clientId": "spa", "public": true, "redirectUris": ["http://127.0.0.1/cb"], "grantTypes": ["authorization_code", "refresh_token"]});
    let acme = json!({"projectId": "acme", "baseUrl": format!("http://127.0.0.1:{port}"), "applications": [app], "flows": [flow.to_str().unwrap()]});
    let acme_file = dir.join("acme.json");
    std::fs::write(&acme_file, acme.to_string()).unwrap();
    let globex = format!(
        "projectId = \"globex\"\nbaseUrl = \"http://127.0.0.1:{port}\"\nflows = [{:?}]\n\n[[applications]]\nclientId = \"spa\"\npublic = true\nredirectUris = [\"http://127.0.0.1/cb\"]\ngrantTypes = [\"authorization_code\", \"refresh_token\"]\n",
        flow.to_str().unwrap()
    );
    let globex_file = dir.join("globex.toml");
    std::fs::write(&globex_file, globex).unwrap();
    (acme_file.to_str().unwrap().to_owned(), globex_file.to_str().unwrap().to_owned())
}

fn get(port: u16, target: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let (status, _, body) = http(port, "GET", target, headers, b"");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A sign-in of `email` at project `pid`, then its code redeemed there.
fn tokens(port: u16, pid: &str, email: &str) -> Value {
    let pair: Value = serde_json::from_slice(&Command::new(env!("CARGO_BIN_EXE_idflow")).arg("pkce").output().unwrap().stdout).unwrap();
    let (verifier, challenge) = (pair["code_verifier"].as_str().unwrap(), pair["code_challenge"].as_str().unwrap());
    let authorize = format!(
        "/{pid}/oauth2/v1/authorize?response_type=code&client_id=spa&redirect_uri={CB}&scope=openid%20offline_access&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256"
    );
    let signed = sign_in(port, &authorize, email);
    assert!(signed.landed.starts_with("http://127.0.0.1/cb?"), "{}", signed.landed);
    let code = param(&signed.landed, "code");
    let body = format!("grant_type=authorization_code&code={code}&redirect_uri={CB}&client_id=spa&code_verifier={verifier}");
    let (status, _, out) = http(port, "POST", &format!("/{pid}/oauth2/v1/token"), &[("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    serde_json::from_slice(&out).unwrap()
}

fn sub(tokens: &Value) -> String {
    let payload = tokens["id_token"].as_str().unwrap().split('.').nth(1).unwrap();
    // base64url without padding, decoded by hand to keep the test's dependencies few.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in payload.bytes() {
        bits = (bits << 6) | alphabet.iter().position(|&a| a == c).unwrap() as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    let claims: Value = serde_json::from_slice(&out).unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

#[test]
fn one_process_serves_several_projects_apart() {
    let dir = temp_dir("projects");
    let port = free_port();
    let (acme, globex) = write_projects(&dir, port);
    let db = dir.join("{project}.db");
    let server = start(&db, port, &["--config", &acme, "--config", &globex, "--metrics-addr", "127.0.0.1:0"]);
    assert!(server.stdout.iter().any(|l| l == &format!("issuer:    http://127.0.0.1:{port}/acme")), "{:?}", server.stdout);
    assert!(server.stdout.iter().any(|l| l == &format!("issuer:    http://127.0.0.1:{port}/globex")), "{:?}", server.stdout);
    assert!(dir.join("acme.db").is_file() && dir.join("globex.db").is_file());

    let (status, d) = get(port, "/globex/.well-known/openid-configuration", &[]);
    assert_eq!(status, 200);
    assert_eq!(d["token_endpoint"], format!("http://127.0.0.1:{port}/globex/oauth2/v1/token"));
    assert_eq!(get(port, "/oauth2/v1/token", &[]).0, 404);

    // The same email: two users. Acme's token: refused by globex.
    let a = tokens(port, "acme", "ann@example.com");
    let g = tokens(port, "globex", "ann@example.com");
    assert_ne!(sub(&a), sub(&g));
    let bearer = format!("Bearer {}", a["access_token"].as_str().unwrap());
    assert_eq!(get(port, "/acme/oauth2/v1/userinfo", &[("Authorization", &bearer)]).0, 200);
    assert_eq!(get(port, "/globex/oauth2/v1/userinfo", &[("Authorization", &bearer)]).0, 401);

    // The metrics of both, labelled.
    let metrics_port: u16 = server.line("metrics:").rsplit(':').next().unwrap().trim_end_matches("/metrics").parse().unwrap();
    let (_, _, text) = http(metrics_port, "GET", "/metrics", &[], b"");
    let text = String::from_utf8(text).unwrap();
    for pid in ["acme", "globex"] {
        let line = format!("idflow_tokens_issued_total{{project=\"{pid}\",grant=\"authorization_code\"}} 1");
        assert!(text.contains(&line), "{text}");
    }

    // `keys rotate` with the same --db and a project file reaches that
    // project's store alone.
    let kids = |pid: &str| get(port, &format!("/{pid}/.well-known/jwks.json"), &[]).1["keys"].as_array().unwrap().len();
    let (acme_keys, globex_keys) = (kids("acme"), kids("globex"));
    let rotated = Command::new(env!("CARGO_BIN_EXE_idflow"))
        .args(["keys", "rotate", "--config", &acme, "--prepublish", "1", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while kids("acme") == acme_keys && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(kids("acme"), acme_keys + 1, "acme publishes its new key");
    assert_eq!(kids("globex"), globex_keys, "globex's keys are its own");
    server.stop();

    // Several projects on one store file: refused before anything is written.
    let one = dir.join("one.db");
    let out = Command::new(env!("CARGO_BIN_EXE_idflow"))
        .args(["serve", "--addr", &format!("127.0.0.1:{}", free_port()), "--config", &acme, "--config", &globex, "--db"])
        .arg(&one)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("{project}"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!one.exists());
    // A folder stands for its project files.
    let folder = dir.join("projects");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(&acme, folder.join("acme.json")).unwrap();
    std::fs::copy(&globex, folder.join("globex.toml")).unwrap();
    let port2 = free_port();
    let server = start(dir.join("{project}.db"), port2, &["--config", folder.to_str().unwrap()]);
    assert_eq!(server.stdout.iter().filter(|l| l.starts_with("issuer:")).count(), 2, "{:?}", server.stdout);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
