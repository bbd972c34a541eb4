//! `JwksCache` against a real HTTP/1.1 server on 127.0.0.1.
//!
//! Assertions are on request counts and error codes. Where a test depends on
//! time (TTL, cooldown), the margins are wide: the "still fresh" check runs
//! immediately after a fetch while the window is a second or more, and the
//! "expired" check sleeps well past the window.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use idflow::jose::{self, Algorithm, JwksCache, JwksCacheOptions, Key, KeySet, Validation};
use idflow::ErrorCode;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NOW: u64 = 1_700_000_000;

// ---- a tiny HTTP/1.1 server ------------------------------------------------------

#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Sleep before answering.
    delay: Duration,
    /// Send a Content-Length header (else the body ends when the connection closes).
    content_length: bool,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/jwk-set+json".into())],
            body: body.into(),
            delay: Duration::ZERO,
            content_length: true,
        }
    }
    fn status(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: b"{\"error\":\"nope\"}".to_vec(), delay: Duration::ZERO, content_length: true }
    }
    fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

#[derive(Clone, Debug)]
struct Request {
    request_line: String,
    headers: Vec<(String, String)>,
}

struct Server {
    addr: std::net::SocketAddr,
    hits: Arc<AtomicUsize>,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    async fn start(reply: Reply) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let reply = Arc::new(Mutex::new(reply));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (h, r, q) = (hits.clone(), reply.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (h, r, q) = (h.clone(), r.clone(), q.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, h, r, q).await;
                });
            }
        });
        Server { addr, hits, reply, requests }
    }

    fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }
    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

async fn serve(
    mut stream: TcpStream,
    hits: Arc<AtomicUsize>,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<Mutex<Vec<Request>>>,
) -> std::io::Result<()> {
    // Read the request head (the client sends no body with GET).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let (Some(_method), Some(_path), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(());
    };
    if !version.starts_with("HTTP/1.") {
        return Ok(());
    }
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    hits.fetch_add(1, Ordering::SeqCst);
    requests.lock().unwrap().push(Request { request_line, headers });

    let reply = reply.lock().unwrap().clone();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if reply.content_length {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    stream.write_all(out.as_bytes()).await?;
    stream.write_all(&reply.body).await?;
    stream.flush().await?;
    stream.shutdown().await?;
    Ok(())
}

// ---- keys and tokens ------------------------------------------------------------------

fn key(kid: &str) -> Key {
    Key::generate(Algorithm::ES256, None).unwrap().with_kid(kid)
}

fn jwks(keys: &[&Key]) -> String {
    let set = KeySet::new(keys.iter().map(|k| (*k).clone()).collect()).unwrap();
    serde_json::to_string(&set.to_public_jwks().unwrap()).unwrap()
}

fn token(key: &Key) -> String {
    let claims: Map<String, Value> = match json!({"sub": "alice", "exp": NOW + 3600}) {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    jose::sign(&claims, key, None).unwrap()
}

fn validation() -> Validation {
    let mut v = Validation::new(&[Algorithm::ES256]);
    v.now = Some(NOW);
    v
}

fn options() -> JwksCacheOptions {
    JwksCacheOptions {
        timeout: Duration::from_secs(5),
        min_ttl: Duration::from_secs(60),
        max_ttl: Duration::from_secs(24 * 3600),
        default_ttl: Duration::from_secs(3600),
        refetch_cooldown: Duration::from_secs(30),
        max_response_bytes: 256 * 1024,
    }
}

fn code<T: std::fmt::Debug>(r: idflow::Result<T>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.code,
    }
}

// ---- tests -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn fetches_verifies_and_caches() {
    let a = key("a");
    let server = Server::start(Reply::ok(jwks(&[&a]))).await;
    let cache = JwksCache::new(&server.url(), options()).unwrap();
    assert_eq!(cache.url(), server.url());
    assert_eq!(server.hits(), 0, "nothing is fetched before first use");

    let verified = cache.verify(&token(&a), &validation()).await.unwrap();
    assert_eq!(verified.claims["sub"], "alice");
    assert_eq!(server.hits(), 1);

    for _ in 0..5 {
        cache.verify(&token(&a), &validation()).await.unwrap();
    }
    assert_eq!(cache.key_set().await.unwrap().len(), 1);
    assert_eq!(server.hits(), 1, "served from the cache");

    let requests = server.requests();
    assert_eq!(requests[0].request_line, "GET /.well-known/jwks.json HTTP/1.1");
    let accept = requests[0].headers.iter().find(|(k, _)| k == "accept").map(|(_, v)| v.as_str());
    assert!(accept.is_some_and(|a| a.contains("application/jwk-set+json")), "Accept: {accept:?}");

    // A token signed by another key with the same kid still fails on the signature.
    let impostor = key("a");
    assert_eq!(code(cache.verify(&token(&impostor), &validation()).await), ErrorCode::InvalidSignature);
    // And the claims are still checked.
    let mut strict = validation();
    strict.issuer = Some("https://issuer.example".into());
    assert_eq!(code(cache.verify(&token(&a), &strict).await), ErrorCode::InvalidIssuer);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_age_zero_is_clamped_to_min_ttl() {
    let a = key("a");
    let server = Server::start(Reply::ok(jwks(&[&a])).header("Cache-Control", "public, max-age=0")).await;
    let mut opts = options();
    opts.min_ttl = Duration::from_millis(1000);
    opts.default_ttl = Duration::from_secs(3600);
    let cache = JwksCache::new(&server.url(), opts).unwrap();

    cache.verify(&token(&a), &validation()).await.unwrap();
    cache.verify(&token(&a), &validation()).await.unwrap();
    assert_eq!(server.hits(), 1, "max-age=0 still caches for min_ttl");

    tokio::time::sleep(Duration::from_millis(2500)).await;
    cache.verify(&token(&a), &validation()).await.unwrap();
    assert_eq!(server.hits(), 2, "refetched once min_ttl has passed (not after default_ttl)");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_kid_refetches_once_then_cooldown_applies() {
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let server = Server::start(Reply::ok(jwks(&[&a]))).await;
    let mut opts = options();
    opts.refetch_cooldown = Duration::from_millis(1000);
    let cache = JwksCache::new(&server.url(), opts).unwrap();

    cache.verify(&token(&a), &validation()).await.unwrap();
    assert_eq!(server.hits(), 1);

    // The issuer rotates in key b. Wait out the cooldown counted from the
    // first fetch, so the unknown kid may refetch.
    server.set(Reply::ok(jwks(&[&a, &b])));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let verified = cache.verify(&token(&b), &validation()).await.unwrap();
    assert_eq!(verified.header["kid"], "b");
    assert_eq!(server.hits(), 2, "exactly one refetch for the unknown kid");
    cache.verify(&token(&b), &validation()).await.unwrap();
    cache.verify(&token(&a), &validation()).await.unwrap();
    assert_eq!(server.hits(), 2, "the rotated set is cached");

    // Key c appears too, but a second unknown kid right away is within the
    // cooldown: no fetch, and the token is refused.
    server.set(Reply::ok(jwks(&[&a, &b, &c])));
    assert_eq!(code(cache.verify(&token(&c), &validation()).await), ErrorCode::InvalidKey);
    let forged_kid = {
        let mut extra = Map::new();
        extra.insert("kid".into(), "zzz".into());
        let claims: Map<String, Value> = serde_json::from_str(&format!(r#"{{"exp":{}}}"#, NOW + 60)).unwrap();
        jose::sign(&claims, &a, Some(&extra)).unwrap()
    };
    for _ in 0..5 {
        assert_eq!(code(cache.verify(&forged_kid, &validation()).await), ErrorCode::InvalidKey);
    }
    assert_eq!(server.hits(), 2, "no refetch within refetch_cooldown");
}

#[tokio::test(flavor = "multi_thread")]
async fn server_error_after_a_good_fetch_serves_the_last_good_set() {
    let a = key("a");
    let server = Server::start(Reply::ok(jwks(&[&a])).header("Cache-Control", "max-age=0")).await;
    let mut opts = options();
    opts.min_ttl = Duration::from_millis(1000);
    let cache = JwksCache::new(&server.url(), opts).unwrap();
    cache.verify(&token(&a), &validation()).await.unwrap();
    assert_eq!(server.hits(), 1);

    server.set(Reply::status(500));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    cache.verify(&token(&a), &validation()).await.unwrap();
    assert_eq!(server.hits(), 2, "the stale set was refreshed (and the refresh failed)");
    cache.verify(&token(&a), &validation()).await.unwrap();
    assert_eq!(server.hits(), 2, "no retry before min_ttl");

    // An explicit refresh reports the failure but keeps the set.
    assert_eq!(code(cache.refresh().await), ErrorCode::Network);
    assert_eq!(server.hits(), 3);
    assert_eq!(cache.key_set().await.unwrap().len(), 1);
    cache.verify(&token(&a), &validation()).await.unwrap();

    // Malformed JSON after a good fetch: also keeps the last good set.
    server.set(Reply::ok("{not json"));
    assert_eq!(code(cache.refresh().await), ErrorCode::InvalidKey);
    cache.verify(&token(&a), &validation()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn server_error_without_a_good_set_is_network() {
    let a = key("a");
    for status in [500u16, 404] {
        let server = Server::start(Reply::status(status)).await;
        let cache = JwksCache::new(&server.url(), options()).unwrap();
        assert_eq!(code(cache.verify(&token(&a), &validation()).await), ErrorCode::Network, "HTTP {status}");
        assert_eq!(code(cache.key_set().await), ErrorCode::Network, "HTTP {status}");
        assert_eq!(server.hits(), 2, "HTTP {status}: each call tries again while nothing good is cached");
    }
    // A redirect is not followed, even to a good set.
    let good = Server::start(Reply::ok(jwks(&[&a]))).await;
    let redirect = Server::start(Reply::status(302).header("Location", &good.url())).await;
    let cache = JwksCache::new(&redirect.url(), options()).unwrap();
    assert_eq!(code(cache.verify(&token(&a), &validation()).await), ErrorCode::Network);
    assert_eq!(good.hits(), 0, "redirect not followed");
    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let cache = JwksCache::new(&format!("http://{closed}/jwks"), options()).unwrap();
    assert_eq!(code(cache.verify(&token(&a), &validation()).await), ErrorCode::Network);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_server_is_a_network_timeout() {
    let a = key("a");
    // The eventual answer is a good set: only the timeout can make this fail.
    let server = Server::start(Reply::ok(jwks(&[&a])).delay(Duration::from_secs(5))).await;
    let mut opts = options();
    opts.timeout = Duration::from_millis(300);
    let cache = JwksCache::new(&server.url(), opts).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(code(cache.verify(&token(&a), &validation()).await), ErrorCode::Network);
    assert!(started.elapsed() < Duration::from_secs(5), "gave up before the server answered");
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_body_is_network() {
    let a = key("a");
    // A valid JWKS, padded with JSON whitespace to 8 KiB.
    let mut body = jwks(&[&a]);
    body.push_str(&" ".repeat(8 * 1024 - body.len()));
    assert!(KeySet::from_jwks_json(&body).is_ok(), "the padded body is itself a valid JWKS");

    for content_length in [true, false] {
        let mut reply = Reply::ok(body.clone());
        reply.content_length = content_length;
        let server = Server::start(reply).await;

        let mut small = options();
        small.max_response_bytes = 1024;
        let cache = JwksCache::new(&server.url(), small).unwrap();
        assert_eq!(
            code(cache.verify(&token(&a), &validation()).await),
            ErrorCode::Network,
            "content_length={content_length}"
        );

        // Control: the same response under a large enough limit is fine.
        let cache = JwksCache::new(&server.url(), options()).unwrap();
        cache.verify(&token(&a), &validation()).await.unwrap_or_else(|e| panic!("content_length={content_length}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_jwks_is_invalid_key() {
    let a = key("a");
    for body in ["{not json", "[]", r#"{"keys":{}}"#, r#"{"keys":[1]}"#, r#"{"keys":[],"keys":[]}"#, "\u{fffd}"] {
        let server = Server::start(Reply::ok(body)).await;
        let cache = JwksCache::new(&server.url(), options()).unwrap();
        assert_eq!(code(cache.verify(&token(&a), &validation()).await), ErrorCode::InvalidKey, "{body:?}");
    }
    let mut invalid_utf8 = Reply::ok(vec![0xff, 0xfe, b'{', b'}']);
    invalid_utf8.headers.clear();
    let server = Server::start(invalid_utf8).await;
    let cache = JwksCache::new(&server.url(), options()).unwrap();
    assert_eq!(code(cache.verify(&token(&a), &validation()).await), ErrorCode::InvalidKey, "not UTF-8");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_verifies_on_a_cold_cache_share_one_fetch() {
    let a = key("a");
    let server = Server::start(Reply::ok(jwks(&[&a])).delay(Duration::from_millis(200))).await;
    let cache = Arc::new(JwksCache::new(&server.url(), options()).unwrap());
    let token = token(&a);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (cache, token) = (cache.clone(), token.clone());
            tokio::spawn(async move { cache.verify(&token, &validation()).await })
        })
        .collect();
    for task in tasks {
        let verified = task.await.unwrap().unwrap();
        assert_eq!(verified.claims["sub"], "alice");
    }
    assert_eq!(server.hits(), 1, "one fetch for eight concurrent callers");
}

#[test]
fn bad_cache_configuration_is_config() {
    assert_eq!(code(JwksCache::new("not a url", options())), ErrorCode::Config);
    assert_eq!(code(JwksCache::new("ftp://example.com/jwks", options())), ErrorCode::Config);
    let mut inverted = options();
    inverted.min_ttl = Duration::from_secs(10);
    inverted.max_ttl = Duration::from_secs(5);
    assert_eq!(code(JwksCache::new("https://example.com/jwks", inverted)), ErrorCode::Config);
}
