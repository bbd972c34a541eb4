//! One issuer served by three `idflow serve` processes on one PostgreSQL
//! database (`IDFLOW_TEST_POSTGRES`, started by tests/run.sh): a sign-in
//! spread over the three, sessions, codes and refresh tokens raced across
//! them, rate limits counted together, and a `kill -9` of one server under
//! load that loses nothing acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

#[path = "../../../core/tests/support/postgres.rs"]
mod pg;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// The project's data key: every server needs the same one.
const DATA_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const CB: &str = "http%3A%2F%2F127.0.0.1%2Fcb";
const SVC_SECRET: &str = "svc-secret-0123456789abcdef";

struct Cluster {
    servers: Vec<Option<Server>>,
    ports: Vec<u16>,
    db: String,
    config: std::path::PathBuf,
}

impl Cluster {
    /// Three servers started together on a new database (their migrations
    /// race), the issuer named after the first.
    fn start(name: &str, tokens: Value, rate_limits: Value) -> Option<Cluster> {
        let db = pg::fresh_database(name)?;
        let dir = std::env::temp_dir().join(format!("idflow-many-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let flow = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/flows/sign-up-or-in.json");
        let project = json!({
            "projectId": "many", "baseUrl": format!("http://127.0.0.1:{}", ports[0]),
            "encryption": {"key": DATA_KEY},
            "tokens": tokens,
            "rateLimits": rate_limits,
            "applications": [
                {"clientId": "spa", "public": true, "redirectUris": ["http://127.0.0.1/cb"], "grantTypes": ["authorization_code", "refresh_token"], "flow": "sign-up-or-in"},
                {"clientId": "svc", "clientSecret": SVC_SECRET, "tokenEndpointAuthMethod": "client_secret_post", "redirectUris": ["http://127.0.0.1/cb"], "grantTypes": ["client_credentials"], "flow": "sign-up-or-in"}
            ],
            "flows": [flow.to_str().unwrap()]
        });
        let config = dir.join("project.json");
        std::fs::write(&config, project.to_string()).unwrap();
        let servers = std::thread::scope(|s| {
            let handles: Vec<_> = ports
                .iter()
                .map(|&p| {
                    let (db, config) = (&db, &config);
                    s.spawn(move || start(db, p, &["--config", config.to_str().unwrap(), "--metrics-addr", "127.0.0.1:0"]))
                })
                .collect();
            handles.into_iter().map(|h| Some(h.join().unwrap())).collect()
        });
        Some(Cluster { servers, ports, db, config })
    }

    fn restart(&mut self, i: usize) {
        self.servers[i] = Some(start(&self.db, self.ports[i], &["--config", self.config.to_str().unwrap(), "--metrics-addr", "127.0.0.1:0"]));
    }
}

fn form(port: u16, path: &str, body: &str) -> (u16, Value) {
    let (status, _, b) = http(port, "POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], body.as_bytes());
    (status, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// `client_credentials` for `svc` with `secret` (client_secret_post).
fn client_credentials(port: u16, secret: &str) -> (u16, Value) {
    form(port, "/oauth2/v1/token", &format!("grant_type=client_credentials&client_id=svc&client_secret={secret}"))
}

fn authorize_url(challenge: &str, extra: &str) -> String {
    format!(
        "/oauth2/v1/authorize?response_type=code&client_id=spa&redirect_uri={CB}&scope=openid%20email%20offline_access&code_challenge={challenge}&code_challenge_method=S256{extra}"
    )
}

/// A whole sign-in spread over `ports`; returns the code and its verifier.
fn code_across(ports: &[u16], email: &str) -> (SignIn, String, String) {
    let pair = idflow::pkce::generate(None).unwrap();
    let login = sign_in_across(ports, &authorize_url(&pair.challenge, ""), &mut |_| ("submit".into(), json!({"email": email})));
    let code = param(&login.landed, "code");
    (login, code, pair.verifier)
}

fn redeem(port: u16, code: &str, verifier: &str) -> (u16, Value) {
    form(port, "/oauth2/v1/token", &format!("grant_type=authorization_code&code={code}&client_id=spa&redirect_uri={CB}&code_verifier={verifier}"))
}

fn refresh(port: u16, token: &str) -> (u16, Value) {
    form(port, "/oauth2/v1/token", &format!("grant_type=refresh_token&client_id=spa&refresh_token={token}"))
}

fn userinfo(port: u16, access: &str) -> (u16, Value) {
    let bearer = format!("Bearer {access}");
    let (status, _, b) = http(port, "GET", "/oauth2/v1/userinfo", &[("Authorization", &bearer)], b"");
    (status, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// The same request to every port at once; the statuses, in port order.
fn race(ports: &[u16], request: impl Fn(u16) -> (u16, Value) + Sync) -> Vec<u16> {
    let barrier = std::sync::Barrier::new(ports.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = ports
            .iter()
            .map(|&p| {
                let (barrier, request) = (&barrier, &request);
                s.spawn(move || {
                    barrier.wait();
                    request(p).0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn verify_access(jwks: &Value, token: &str, issuer: &str) -> serde_json::Map<String, Value> {
    use idflow::jose::{self, Algorithm, KeySet, Validation};
    let keys = KeySet::from_jwks_json(&jwks.to_string()).unwrap();
    let mut v = Validation::new(&[Algorithm::RS256, Algorithm::ES256]);
    v.issuer = Some(issuer.to_owned());
    v.audience = vec!["many".into()];
    jose::verify(token, &keys, &v).unwrap().claims
}

#[test]
fn three_servers_on_one_database_are_one_provider() {
    let Some(cluster) = Cluster::start("one_issuer", json!({"refreshReuseGrace": 0}), json!({"clientAuthFailuresPerClient": 5})) else {
        return;
    };
    let ports = cluster.ports.clone();
    let get = |p: u16, path: &str| serde_json::from_slice::<Value>(&http(p, "GET", path, &[], b"").2).unwrap();
    // One issuer, one key set, whichever server answers.
    let discovery = get(ports[0], "/many/.well-known/openid-configuration");
    let issuer = discovery["issuer"].as_str().unwrap().to_owned();
    let jwks = get(ports[0], "/many/.well-known/jwks.json");
    for &p in &ports[1..] {
        assert_eq!(get(p, "/many/.well-known/openid-configuration"), discovery);
        assert_eq!(get(p, "/many/.well-known/jwks.json"), jwks);
    }
    // Authorize on one server, the flow's steps on the next two, the
    // delivery on the others (sign_in_across), the token on a third.
    let (login, code, verifier) = code_across(&ports, "many@example.com");
    let (status, tokens) = redeem(ports[2], &code, &verifier);
    assert_eq!(status, 200, "{tokens}");
    let sub = idflow::jose::decode_unverified(tokens["id_token"].as_str().unwrap()).unwrap().claims["sub"].clone();
    // Userinfo and refresh on any server.
    for &p in &ports {
        let (status, info) = userinfo(p, tokens["access_token"].as_str().unwrap());
        assert_eq!((status, &info["sub"]), (200, &sub), "server {p}: {info}");
    }
    let (status, refreshed) = refresh(ports[1], tokens["refresh_token"].as_str().unwrap());
    assert_eq!(status, 200, "{refreshed}");
    // The session cookie answers prompt=none on every server.
    for &p in &ports {
        let pair = idflow::pkce::generate(None).unwrap();
        let (status, headers, _) = http(p, "GET", &authorize_url(&pair.challenge, "&prompt=none"), &[("Cookie", &login.session)], b"");
        assert_eq!(status, 302);
        let location = header(&headers, "location").unwrap();
        assert!(location.contains("code="), "server {p}: {location}");
    }
    // A refresh token and a code raced across the three: one winner each.
    let statuses = race(&ports, |p| refresh(p, refreshed["refresh_token"].as_str().unwrap()));
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    let (_, code, verifier) = code_across(&ports, "race@example.com");
    let statuses = race(&ports, |p| redeem(p, &code, &verifier));
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 400), "{statuses:?}");
    // A finished sign-in's delivery raced by its own browser on the three
    // servers: one answer with a code, and "already delivered" for the rest.
    let pair = idflow::pkce::generate(None).unwrap();
    let one = || ports[0];
    let flow = finish_flow(&one, &authorize_url(&pair.challenge, ""), &mut |_| ("submit".into(), json!({"email": "deliver@example.com"})));
    let statuses = race(&ports, |p| (http(p, "GET", &flow.completion, &[("Cookie", &flow.cookie)], b"").0, Value::Null));
    assert_eq!(statuses.iter().filter(|s| **s == 302).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 302 || *s == 400), "{statuses:?}");
    // Client credentials from each server verify with the key set of any.
    for &p in &ports {
        let (status, t) = client_credentials(p, SVC_SECRET);
        assert_eq!(status, 200, "{t}");
        assert_eq!(
            verify_access(&get(ports[(p as usize) % 3], "/many/.well-known/jwks.json"), t["access_token"].as_str().unwrap(), &issuer)["client_id"],
            "svc"
        );
    }
    // A key rotated by `idflow keys rotate` on the database: every server
    // publishes it within seconds, signs with it after the prepublish
    // second, and a token from before still verifies with any key set.
    let before = client_credentials(ports[0], SVC_SECRET).1["access_token"].as_str().unwrap().to_owned();
    // A relying party with idflow's own JwksCache on the third server's key
    // set (it refetches at once on an unknown kid).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let options = idflow::jose::JwksCacheOptions { refetch_cooldown: Duration::ZERO, ..Default::default() };
    let cache = idflow::jose::JwksCache::new(&format!("http://127.0.0.1:{}/many/.well-known/jwks.json", ports[2]), options).unwrap();
    let mut validation = idflow::jose::Validation::new(&[idflow::jose::Algorithm::RS256]);
    validation.issuer = Some(issuer.clone());
    validation.audience = vec!["many".into()];
    let relying_party = |token: &str| rt.block_on(cache.verify(token, &validation)).map(|t| t.claims["client_id"].clone());
    assert_eq!(relying_party(&before).unwrap(), "svc");
    let config = cluster.config.to_str().unwrap();
    let rotated = std::process::Command::new(env!("CARGO_BIN_EXE_idflow"))
        .args(["keys", "rotate", "--db", &cluster.db, "--config", config, "--prepublish", "1"])
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let kid = serde_json::from_slice::<Value>(&rotated.stdout).unwrap()["kid"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    for &p in &ports {
        while !get(p, "/many/.well-known/jwks.json")["keys"].as_array().unwrap().iter().any(|k| k["kid"] == kid.as_str()) {
            assert!(Instant::now() < deadline, "server {p} never published {kid}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for &p in &ports {
        let after = loop {
            let t = client_credentials(p, SVC_SECRET).1["access_token"].as_str().unwrap().to_owned();
            if idflow::jose::decode_unverified(&t).unwrap().header["kid"] == kid.as_str() {
                break t;
            }
            assert!(Instant::now() < deadline, "server {p} never signed with {kid}");
            std::thread::sleep(Duration::from_millis(200));
        };
        let keys = get(ports[(p as usize + 1) % 3], "/many/.well-known/jwks.json");
        for token in [&before, &after] {
            assert_eq!(verify_access(&keys, token, &issuer)["client_id"], "svc");
            assert_eq!(relying_party(token).unwrap(), "svc", "the JwksCache verifies across the rotation");
        }
    }
    // Rate limits count together: five wrong secrets spread over the three
    // servers, and the right one is refused by every server.
    for i in 0..5 {
        let (status, _) = client_credentials(ports[i % 3], "wrong-secret-0123456789abcdef");
        assert_eq!(status, 401);
    }
    for &p in &ports {
        let (status, body) = client_credentials(p, SVC_SECRET);
        assert_eq!(status, 429, "server {p}: {body}");
    }
    // Each server's metrics: its store calls by operation, and its pool.
    let url = cluster.servers[0].as_ref().unwrap().line("metrics:");
    let port: u16 = url.trim_end_matches("/metrics").rsplit(':').next().unwrap().parse().unwrap();
    let metrics = String::from_utf8(http(port, "GET", "/metrics", &[], b"").2).unwrap();
    assert!(metrics.lines().any(|l| l == "idflow_store_pool_connections{state=\"max\"} 16"), "{metrics}");
    let open = metrics.lines().find_map(|l| l.strip_prefix("idflow_store_pool_connections{state=\"open\"} ")).unwrap();
    assert!(open.parse::<u64>().unwrap() >= 1, "{metrics}");
    let reads = metrics.lines().find_map(|l| l.strip_prefix("idflow_store_operation_duration_seconds_count{op=\"record\"} ")).unwrap();
    assert!(reads.parse::<u64>().unwrap() >= 1, "{metrics}");
    for server in cluster.servers.into_iter().flatten() {
        let (status, log) = server.stop();
        assert!(status.success(), "{log}");
    }
}

/// What the load acknowledged to its clients.
#[derive(Default)]
struct Acknowledged {
    /// (email, sub, latest refresh token, latest access token) per chain.
    chains: Vec<(String, Value, String, String)>,
    /// Codes delivered to a client and not yet redeemed (code, verifier).
    codes: Vec<(String, String)>,
    client_tokens: Vec<String>,
    failures_after_the_kill: Vec<String>,
}

/// `kill -9` of one server during 22 s of logins, refreshes and client
/// credentials spread over the three: the others keep serving, nothing a
/// client was told is lost (users, unredeemed codes, refresh chains,
/// tokens), and the restarted server rejoins.
#[test]
fn a_server_killed_under_load_loses_nothing_acknowledged() {
    let Some(mut cluster) =
        Cluster::start("kill", json!({"refreshReuseGrace": 120, "codeTtl": 300}), json!({"flowStartsPerIp": 100000, "answersPerExecution": 100}))
    else {
        return;
    };
    let ports = cluster.ports.clone();
    let victim = cluster.servers[1].as_ref().unwrap().child.id();
    let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let counter = AtomicUsize::new(0);
    let started = Instant::now();
    let load = Duration::from_secs(22);
    let killed_at = Mutex::new(None::<Instant>);
    std::thread::scope(|s| {
        for worker in 0..3 {
            let (dead, acked, counter, ports, killed_at) = (&dead, &acked, &counter, &ports, &killed_at);
            s.spawn(move || {
                let mut round = 0usize;
                while started.elapsed() < load {
                    round += 1;
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    // A balancer sends nothing to a server it saw die.
                    let alive: Vec<u16> = if dead.load(Ordering::SeqCst) { vec![ports[0], ports[2]] } else { ports.clone() };
                    let began = Instant::now();
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let port = alive[n % alive.len()];
                        match round % 4 {
                            0 | 1 => {
                                let email = format!("load-{worker}-{round}@example.com");
                                let (_, code, verifier) = code_across(&alive, &email);
                                if round % 8 == 1 {
                                    // Delivered to the client, redeemed after the kill.
                                    acked.lock().unwrap().codes.push((code, verifier));
                                    return;
                                }
                                let (status, t) = redeem(port, &code, &verifier);
                                assert_eq!(status, 200, "{t}");
                                let sub = idflow::jose::decode_unverified(t["id_token"].as_str().unwrap()).unwrap().claims["sub"].clone();
                                let chain =
                                    (email, sub, t["refresh_token"].as_str().unwrap().to_owned(), t["access_token"].as_str().unwrap().to_owned());
                                acked.lock().unwrap().chains.push(chain);
                            }
                            2 => {
                                let picked = {
                                    let a = acked.lock().unwrap();
                                    (!a.chains.is_empty()).then(|| (n % a.chains.len(), a.chains[n % a.chains.len()].2.clone()))
                                };
                                if let Some((i, token)) = picked {
                                    let (status, t) = refresh(port, &token);
                                    assert_eq!(status, 200, "{t}");
                                    let mut a = acked.lock().unwrap();
                                    // Another worker may have moved the chain on meanwhile.
                                    if a.chains[i].2 == token {
                                        a.chains[i].2 = t["refresh_token"].as_str().unwrap().to_owned();
                                        a.chains[i].3 = t["access_token"].as_str().unwrap().to_owned();
                                    }
                                }
                            }
                            _ => {
                                let (status, t) = client_credentials(port, SVC_SECRET);
                                assert_eq!(status, 200, "{t}");
                                acked.lock().unwrap().client_tokens.push(t["access_token"].as_str().unwrap().to_owned());
                            }
                        }
                    }));
                    if let Err(e) = outcome {
                        // Only what was in flight when the server died may fail.
                        let kill = *killed_at.lock().unwrap();
                        if kill.is_none_or(|k| began > k + Duration::from_millis(500)) {
                            let message = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()));
                            acked.lock().unwrap().failures_after_the_kill.push(message.unwrap_or_default());
                        }
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_secs(8));
        std::process::Command::new("kill").args(["-KILL", &victim.to_string()]).status().unwrap();
        *killed_at.lock().unwrap() = Some(Instant::now());
        dead.store(true, Ordering::SeqCst);
    });
    let _ = cluster.servers[1].take().map(|mut s| s.child.wait());
    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    assert!(acked.failures_after_the_kill.is_empty(), "the survivors failed requests: {:?}", acked.failures_after_the_kill);
    assert!(
        acked.chains.len() >= 10 && acked.codes.len() >= 3 && acked.client_tokens.len() >= 10,
        "too little load: {} chains, {} codes, {} client tokens",
        acked.chains.len(),
        acked.codes.len(),
        acked.client_tokens.len()
    );
    eprintln!(
        "load: {} sign-ins, {} unredeemed codes, {} client tokens, {} requests in all",
        acked.chains.len(),
        acked.codes.len(),
        acked.client_tokens.len(),
        counter.load(Ordering::Relaxed)
    );
    // The killed server rejoins; everything acknowledged works through it.
    cluster.restart(1);
    let back = ports[1];
    let jwks: Value = serde_json::from_slice(&http(back, "GET", "/many/.well-known/jwks.json", &[], b"").2).unwrap();
    let issuer = format!("http://127.0.0.1:{}/many", ports[0]);
    for (code, verifier) in &acked.codes {
        let (status, t) = redeem(back, code, verifier);
        assert_eq!(status, 200, "an unredeemed code was lost: {t}");
    }
    for (email, sub, refresh_token, access) in &acked.chains {
        let (status, info) = userinfo(back, access);
        assert_eq!((status, &info["sub"]), (200, sub), "{email}: {info}");
        // The latest refresh token goes on (or, if its reply was lost in
        // the kill, the grace window answers it again).
        let (status, t) = refresh(back, refresh_token);
        assert_eq!(status, 200, "{email}'s session was lost: {t}");
    }
    for token in &acked.client_tokens {
        assert_eq!(verify_access(&jwks, token, &issuer)["client_id"], "svc");
    }
    // A user signed in before the kill is the same user after it.
    let (email, sub, _, _) = &acked.chains[0];
    let (_, code, verifier) = code_across(&[back], email);
    let (status, t) = redeem(back, &code, &verifier);
    assert_eq!(status, 200, "{t}");
    assert_eq!(&idflow::jose::decode_unverified(t["id_token"].as_str().unwrap()).unwrap().claims["sub"], sub);
    for server in cluster.servers.into_iter().flatten() {
        let (status, log) = server.stop();
        assert!(status.success(), "{log}");
    }
}
