//! Helpers for the tests that run the real `idflow serve` on 127.0.0.1:
//! start and stop servers, one HTTP/1.1 exchange, and a sign-in through
//! authorize, the flow API and the completion URL.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub stdout: Vec<String>,
    /// Kept open so the server's stdout stays writable.
    _out: BufReader<std::process::ChildStdout>,
    /// Everything logged on stderr so far (read in the background).
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("idflow-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn start(db: impl AsRef<std::ffi::OsStr>, port: u16, extra: &[&str]) -> Server {
    start_with(db, port, extra, &[])
}

pub fn start_with(db: impl AsRef<std::ffi::OsStr>, port: u16, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_idflow"))
        .args(["serve", "--addr", &addr, "--db"])
        .arg(db)
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            let _ = child.kill();
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("serve exited early: {lines:?} {err}");
        }
        let done = line.starts_with("database:");
        lines.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    // The demo prints three more lines after the database, and
    // --metrics-addr one more.
    let more = if extra.contains(&"--config") { 0 } else { 3 } + usize::from(extra.contains(&"--metrics-addr"));
    {
        for _ in 0..more {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            lines.push(line.trim_end().to_owned());
        }
    }
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = stderr.clone();
    let mut err = child.stderr.take().unwrap();
    let stderr_reader = Some(std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }));
    Server { child, stdout: lines, _out: out, stderr, stderr_reader }
}

/// A test that fails half-way leaves no server running.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn line(&self, prefix: &str) -> String {
        self.stdout.iter().find(|l| l.starts_with(prefix)).map(|l| l[prefix.len()..].trim().to_owned()).unwrap()
    }

    /// SIGTERM, then the exit status and everything logged on stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().unwrap();
        }
        let err = self.stderr.lock().unwrap().clone();
        (status, err)
    }

    /// The six digits after the last `code: ` the console mail transport
    /// printed on stderr, waiting up to five seconds for one after `seen`
    /// characters of the log.
    pub fn mailed_code(&self, seen: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.stderr.lock().unwrap().clone();
            if let Some(i) = log.get(seen..).and_then(|tail| tail.rfind("code: ")).map(|i| seen + i + 6) {
                return log[i..i + 6].to_owned();
            }
            assert!(Instant::now() < deadline, "no code was printed: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_len(&self) -> usize {
        self.stderr.lock().unwrap().len()
    }
}

/// One HTTP/1.1 exchange; returns status, headers (lower-case names), body.
pub fn http(port: u16, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())).collect();
    (status, headers, raw[split + 4..].to_vec())
}

pub fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub fn param(url: &str, name: &str) -> String {
    url.split(['?', '&']).find_map(|kv| kv.strip_prefix(&format!("{name}="))).unwrap().to_owned()
}

/// `name=value` of the `Set-Cookie` header for `name`.
pub fn set_cookie(h: &[(String, String)], name: &str) -> Option<String> {
    h.iter()
        .filter(|(k, _)| k == "set-cookie")
        .filter_map(|(_, v)| v.split(';').next())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// What a sign-in through the flow API saw, and where the browser landed.
pub struct SignIn {
    pub request: String,
    /// The `idflow_browser` cookie (`name=value`).
    pub cookie: String,
    pub secret: String,
    pub landed: String,
    /// The provider session's `idflow_session` cookie (`name=value`).
    pub session: String,
}

/// The browser at `idflow serve`: authorize (whose redirect to the hosted
/// page binds the request to the `idflow_browser` cookie) → the flow API →
/// the completion URL, which delivers the answer to that browser only.
pub fn sign_in(port: u16, authorize: &str, email: &str) -> SignIn {
    sign_in_with(port, authorize, &mut |_| ("submit".into(), serde_json::json!({"email": email})))
}

/// As [`sign_in`], answering each screen with what `answer` gives for the
/// flow's last response (interaction id, input).
pub fn sign_in_with(port: u16, authorize: &str, answer: &mut dyn FnMut(&Value) -> (String, Value)) -> SignIn {
    sign_in_across(&[port], authorize, answer)
}

/// As [`sign_in_with`], each request going to the next of `ports` in turn
/// (servers of one issuer behind a balancer that keeps no affinity).
pub fn sign_in_across(ports: &[u16], authorize: &str, answer: &mut dyn FnMut(&Value) -> (String, Value)) -> SignIn {
    let turn = std::cell::Cell::new(0usize);
    let next_port = || {
        let i = turn.get();
        turn.set(i + 1);
        ports[i % ports.len()]
    };
    let flow = finish_flow(&next_port, authorize, answer);
    assert_eq!(http(next_port(), "GET", &flow.completion, &[], b"").0, 403, "another browser gets nothing");
    let (status, headers, _) = http(next_port(), "GET", &flow.completion, &[("Cookie", &flow.cookie)], b"");
    assert_eq!(status, 302);
    let session = set_cookie(&headers, "idflow_session").expect("the delivery sets the provider session");
    let landed = header(&headers, "location").unwrap().to_owned();
    SignIn { request: flow.request, cookie: flow.cookie, secret: flow.secret, landed, session }
}

/// A finished flow whose answer is not yet delivered.
pub struct FinishedFlow {
    pub request: String,
    /// The `idflow_browser` cookie (`name=value`).
    pub cookie: String,
    pub secret: String,
    /// The completion URL's path and query.
    pub completion: String,
}

/// Authorize, then the flow API to its end, each request to the port
/// `next_port` gives: the completion URL, not yet delivered.
pub fn finish_flow(next_port: &dyn Fn() -> u16, authorize: &str, answer: &mut dyn FnMut(&Value) -> (String, Value)) -> FinishedFlow {
    // The flow API is where authorize is: at the base URL, or under the
    // issuer of one of several projects.
    let base = &authorize[..authorize.find("/oauth2/v1/authorize").expect("an authorize target")];
    let (flow_start, flow_next) = (format!("{base}/v1/flow/start"), format!("{base}/v1/flow/next"));
    let (status, headers, _) = http(next_port(), "GET", authorize, &[], b"");
    assert_eq!(status, 302);
    let cookie = set_cookie(&headers, "idflow_browser").expect("authorize sets the idflow_browser cookie");
    let request = param(header(&headers, "location").unwrap(), "request");
    let jar = [("Content-Type", "application/json"), ("Cookie", cookie.as_str())];
    let post = |path: &str, body: Value| -> Value {
        let (_, _, b) = http(next_port(), "POST", path, &jar, body.to_string().as_bytes());
        serde_json::from_slice(&b).unwrap()
    };
    let s = post(&flow_start, serde_json::json!({"request": request}));
    let secret = s["executionSecret"].as_str().expect("flow/start answers an executionSecret").to_owned();
    let (interaction, input) = answer(&s);
    let step = serde_json::json!({"executionId": s["executionId"], "stepId": s["stepId"], "interactionId": interaction, "input": input});
    // The execution id alone drives nothing.
    let (status, _, body) = http(next_port(), "POST", &flow_next, &[("Content-Type", "application/json")], step.to_string().as_bytes());
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    let mut step = step;
    step["executionSecret"] = secret.clone().into();
    let mut d = post(&flow_next, step);
    // Further screens (a code to type, ...), up to a few.
    for _ in 0..4 {
        if d["status"] != "waiting" {
            break;
        }
        let (interaction, input) = answer(&d);
        let step = serde_json::json!({"executionId": d["executionId"], "executionSecret": secret, "stepId": d["stepId"], "interactionId": interaction, "input": input});
        d = post(&flow_next, step);
    }
    let complete = d["redirect"]["url"].as_str().unwrap_or_else(|| panic!("no redirect.url: {d}"));
    let completion = complete[complete.find(&format!("{base}/oauth2/v1/authorize/complete?")).unwrap()..].to_owned();
    FinishedFlow { request, cookie, secret, completion }
}
