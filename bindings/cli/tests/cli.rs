//! Runs the real `idflow` binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn idflow(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_idflow"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn idflow");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("idflow runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_owned()
}

#[test]
fn keys_sign_verify_decode_round_trip() {
    let dir = std::env::temp_dir().join(format!("idflow-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    for (alg, format) in [("ES256", "jwk"), ("RS256", "pem"), ("EdDSA", "jwk"), ("HS256", "jwk")] {
        let gen = idflow(&["keys", "generate", "--alg", alg, "--format", format], None);
        assert!(gen.status.success(), "{}", stderr(&gen));
        let key_path = dir.join(format!("{alg}.key"));
        std::fs::write(&key_path, stdout(&gen)).expect("write key");
        let key = key_path.to_str().expect("utf-8 path");
        let signed = idflow(&["jwt", "sign", "--key", key, "--claims", r#"{"sub":"u1","exp":4102444800}"#], None);
        assert!(signed.status.success(), "{}", stderr(&signed));
        let token = stdout(&signed);
        let verify_key = if alg == "HS256" {
            key.to_owned()
        } else {
            let public = idflow(&["keys", "public", key], None);
            assert!(public.status.success(), "{}", stderr(&public));
            let p = dir.join(format!("{alg}.jwks"));
            std::fs::write(&p, stdout(&public)).expect("write jwks");
            p.to_str().expect("utf-8").to_owned()
        };
        let ok = idflow(&["jwt", "verify", "-", "--key", &verify_key, "--alg", alg], Some(&token));
        assert!(ok.status.success(), "{alg}: {}", stderr(&ok));
        assert!(stdout(&ok).contains("\"sub\": \"u1\""));
        let wrong_alg = idflow(&["jwt", "verify", &token, "--key", &verify_key, "--alg", "PS512"], None);
        assert_eq!(wrong_alg.status.code(), Some(2));
        assert!(stderr(&wrong_alg).starts_with("idflow: "), "{}", stderr(&wrong_alg));
        let decoded = idflow(&["jwt", "decode", &token], None);
        assert!(stdout(&decoded).contains("\"verified\": false"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_exits_2_with_a_code_on_stderr() {
    let o = idflow(&["jwt", "decode", "not-a-token"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("idflow: invalid_token:"), "{}", stderr(&o));
    let o = idflow(&["keys", "generate", "--alg", "none"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unsupported_algorithm"));
    let o = idflow(&["pkce", "--length", "12"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid_request"));
    let o = idflow(&["jwt", "verify", "x.y.z", "--key", "/nonexistent"], None);
    assert_eq!(o.status.code(), Some(2), "missing --alg is a usage error");
    let o = idflow(&["jwt", "verify", "x.y.z", "--key", "/nonexistent", "--alg", "ES256"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read /nonexistent"));
}

#[test]
fn pkce_generates_and_checks() {
    let o = idflow(&["pkce"], None);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let verifier = v["code_verifier"].as_str().expect("verifier");
    let challenge = v["code_challenge"].as_str().expect("challenge");
    assert_eq!(verifier.len(), 64);
    let ok = idflow(&["pkce", "--verifier", verifier, "--challenge", challenge], None);
    assert_eq!(stdout(&ok), "match");
    let bad = idflow(&["pkce", "--verifier", verifier, "--challenge", "nope"], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("invalid_grant"));
    let help = idflow(&["--help"], None);
    assert!(stdout(&help).contains("jwt"));
}

#[test]
fn flow_validate_prints_every_problem() {
    let flows = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/flows");
    let ok = idflow(&["flow", "validate", &format!("{flows}/random-user.json")], None);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).ends_with(": ok"));
    let bad = idflow(&["flow", "validate", &format!("{flows}/invalid.json")], None);
    assert_eq!(bad.status.code(), Some(2));
    let err = stderr(&bad);
    assert!(err.starts_with("idflow: invalid_flow: "), "{err}");
    assert!(err.contains("step \"mystery\", type: unknown step type \"teleport\""), "{err}");
    assert!(err.contains("step \"claims\", claims.0.key:"), "{err}");
    assert!(err.lines().count() > 15, "{err}");
}

/// Answers one HTTP request on 127.0.0.1 with `status` and a JSON body.
fn one_shot_server(status: u16, body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    port
}

#[test]
fn connector_test_prints_the_answer_or_the_error() {
    let dir = std::env::temp_dir().join(format!("idflow-cli-conn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    for (status, code) in [(200u16, Some(0)), (503, Some(2))] {
        let port = one_shot_server(status, r#"{"date_of_birth":"1979-10-03"}"#);
        let project = dir.join(format!("project-{status}.json"));
        std::fs::write(
            &project,
            format!(r#"{{"projectId":"p","baseUrl":"http://127.0.0.1:8080","connectors":[{{"id":"random","baseUrl":"http://127.0.0.1:{port}/api"}}]}}"#),
        )
        .expect("write project");
        let o = idflow(&["connector", "test", "--config", project.to_str().expect("utf-8"), "--connector", "random", "--endpoint", "/users"], None);
        assert_eq!(o.status.code(), code, "{}", stderr(&o));
        let out: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json result");
        assert_eq!(out["status"], status);
        assert_eq!(out["body"]["date_of_birth"], "1979-10-03");
        if status != 200 {
            assert!(stderr(&o).contains("connector_failed"), "{}", stderr(&o));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn provider_token_names_a_missing_user() {
    let dir = std::env::temp_dir().join(format!("idflow-cli-pt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let project = dir.join("project.json");
    std::fs::write(
        &project,
        r#"{"projectId":"p","baseUrl":"http://127.0.0.1:9","oauthProviders":[{"name":"acme","clientId":"c","clientSecret":"s-0123456789abcdef",
            "authorizationEndpoint":"http://127.0.0.1:9/a","tokenEndpoint":"http://127.0.0.1:9/t","manageProviderTokens":true}]}"#,
    )
    .expect("write project");
    let db = dir.join("idflow.db");
    let out = idflow(
        &["provider-token", "--config", project.to_str().expect("path"), "--db", db.to_str().expect("path"), "--user", "U-x", "--provider", "acme"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("idflow: user_not_found: "), "{}", stderr(&out));
}
