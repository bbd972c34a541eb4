//! Flow engine benchmark (`cargo bench -p idflow --bench flow`, also run by
//! tests/bench/run.sh): engine overhead per non-IO step, completed
//! executions/s for a 4-step flow on the memory and SQLite stores, and the
//! documented connector flow against a loopback HTTP server. Prints a table
//! and the targets; it asserts nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use idflow::connectors::{HttpConnector, HttpConnectorConfig};
use idflow::flow::{parse_flow, EngineConfig, FlowEngine, FlowStatus};
use idflow::jose::{Algorithm, Key};
use idflow::store::{MemoryStore, SqliteStore, Store};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECONDS: f64 = 1.5;

fn engine(store: Arc<dyn Store>, flows: &[Value], api: Option<&str>) -> FlowEngine {
    let key = Key::generate(Algorithm::EdDSA, None).unwrap();
    let mut e = FlowEngine::new(EngineConfig::new("http://127.0.0.1:8080/bench", key), store);
    if let Some(url) = api {
        let c = json!({"id": "random", "type": "http", "baseUrl": url});
        e.add_connector(HttpConnector::new(HttpConnectorConfig::from_json(&c).unwrap()).unwrap());
    }
    for f in flows {
        e.add_flow(parse_flow(&f.to_string()).unwrap()).unwrap();
    }
    e
}

fn four_steps() -> Value {
    json!({"id": "four", "start": "ask", "steps": {
        "ask": {"type": "screen", "inputs": [{"name": "email", "type": "email", "required": true}], "next": "claims"},
        "claims": {"type": "customClaims", "claims": [{"key": "plan", "type": "static", "value": "free"}], "next": "jwt"},
        "jwt": {"type": "generateJwt", "mode": "signUpOrIn", "next": "done"},
        "done": {"type": "end"}}})
}

/// One screen, then `n` non-IO steps (conditions and custom claims), then an
/// unauthenticated end: no JWT is signed, so the time is the engine's.
fn long_chain(n: usize) -> Value {
    let mut steps = Map::new();
    steps.insert("ask".into(), json!({"type": "screen", "inputs": [{"name": "email", "type": "email"}], "next": "s0"}));
    for i in 0..n {
        let next = if i + 1 == n { "done".to_owned() } else { format!("s{}", i + 1) };
        let step = if i % 2 == 0 {
            json!({"type": "customClaims", "claims": [{"key": format!("c{i}"), "type": "dynamic", "value": "form.email"}], "next": next})
        } else {
            json!({"type": "condition", "branches": [{"when": {"key": "form.email", "operator": "endsWith", "value": "@example.com"}, "next": next}], "else": next})
        };
        steps.insert(format!("s{i}"), step);
    }
    steps.insert("done".into(), json!({"type": "end"}));
    json!({"id": "chain", "start": "ask", "steps": steps})
}

async fn executions_per_sec(e: &FlowEngine, flow: &str, answer: bool) -> (f64, usize) {
    let started = Instant::now();
    let mut n = 0usize;
    while started.elapsed().as_secs_f64() < SECONDS {
        let r = e.start(flow, Map::new(), None).await.unwrap();
        let r = if answer {
            let mut input = Map::new();
            input.insert("email".into(), Value::from(format!("user{n}@example.com")));
            e.next(&r.execution_id, r.step_id.as_deref().unwrap(), "submit", input).await.unwrap()
        } else {
            r
        };
        assert_eq!(r.status, FlowStatus::Completed, "{:?}", r.error);
        n += 1;
    }
    (n as f64 / started.elapsed().as_secs_f64(), n)
}

async fn loopback_api() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let body = json!({"email": "jerrold.kerluke@email.com", "date_of_birth": "1979-10-03", "employment": {"title": "Chef"}}).to_string();
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {
                            let reply = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                            if s.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}/api")
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut rows = Vec::new();
        // Engine overhead per non-IO step: a 90-step chain after one screen.
        let chain = 90; // under the 100-steps-per-request cap
        let e = engine(Arc::new(MemoryStore::new()), &[long_chain(chain)], None);
        let (per_sec, _) = executions_per_sec(&e, "chain", true).await;
        let us_per_step = 1e6 / per_sec / chain as f64;
        rows.push(format!("engine overhead per non-IO step (memory store)  {us_per_step:>10.2} us"));

        for (name, store) in [
            ("memory", Arc::new(MemoryStore::new()) as Arc<dyn Store>),
            ("sqlite", {
                let dir = std::env::temp_dir().join(format!("idflow-bench-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                Arc::new(SqliteStore::open(dir.join("bench.db")).unwrap()) as Arc<dyn Store>
            }),
        ] {
            let e = engine(store, &[four_steps()], None);
            let (per_sec, n) = executions_per_sec(&e, "four", true).await;
            rows.push(format!("4-step flow, {name:<6} store: completed executions/s {per_sec:>10.0}  ({:.1} us/step, {n} runs)", 1e6 / per_sec / 4.0));
            if name == "sqlite" {
                rows.push(format!("TARGET sqlite executions/s >= 2000: {}  ({per_sec:.0})", if per_sec >= 2000.0 { "PASS" } else { "MISS" }));
            }
        }
        rows.insert(1, format!("TARGET engine overhead <= 20 us per non-IO step: {}  ({us_per_step:.2} us)", if us_per_step <= 20.0 { "PASS" } else { "MISS" }));

        let api = loopback_api().await;
        let flow = serde_json::from_str::<Value>(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/flows/random-user.json")).unwrap()).unwrap();
        let e = engine(Arc::new(MemoryStore::new()), &[flow], Some(&api));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (per_sec, _) = executions_per_sec(&e, "random-user", false).await;
        rows.push(format!("documented connector flow (loopback API, memory) executions/s {per_sec:>8.0}  ({:.0} us each)", 1e6 / per_sec));
        println!("== flow engine ==");
        for r in rows {
            println!("  {r}");
        }
    });
}
