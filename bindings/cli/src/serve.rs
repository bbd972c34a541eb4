//! `idflow serve`: the OIDC provider over HTTP/1.1 (hyper on tokio). The
//! server only converts requests and responses; `idflow::oidc::provider`
//! does the rest. Logs name the method, path (never the query: it carries
//! codes and state), status and duration, and nothing else of the request.
//!
//! A client cannot hold the server: a request's header must arrive within
//! the header timeout (10 s) of its first byte or of the connection, its
//! body within the body timeout (30 s), and an idle keep-alive connection
//! closes after the idle timeout (60 s). Connections are capped; at the
//! cap the connection idle the longest is closed for the new one, so a
//! flood of stuck connections never keeps `/health` or a stop waiting.
//! No maintained Rust server offers per-connection header and idle
//! timeouts with eviction at a cap, so the accept loop is written here on
//! hyper's connection API.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use idflow::oidc::provider::{HttpRequest, Providers};
use idflow::project::Project;
use idflow::Error;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Largest request body accepted (forms and flow API JSON are small).
const BODY_LIMIT: usize = 64 * 1024;
/// How long a stop waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The server's limits; `idflow serve` flags set them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request header must be complete this long after its first byte
    /// (or after the connection opened). Default 10 s.
    pub header_timeout: Duration,
    /// A request body must be complete this long after its header. Default 30 s.
    pub body_timeout: Duration,
    /// An idle keep-alive connection closes after this. Default 60 s.
    pub idle_timeout: Duration,
    /// Open connections at most. Default 1024.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

pub struct ServeArgs {
    /// Project files and folders of them; none for the demo project.
    pub config: Vec<String>,
    pub addr: String,
    pub db: String,
    pub base_url: Option<String>,
    pub limits: Limits,
    /// Where `GET /metrics` answers (a listener of its own); none by default.
    pub metrics_addr: Option<String>,
}

/// The demo project, at `base_url` when given.
fn demo_project(base_url: Option<&str>, addr: &SocketAddr) -> Result<Project, Error> {
    // On a loopback address the demo is named `localhost`: browsers take
    // no IP address as a passkey's relying party, and the demo offers passkeys.
    let mut project = if addr.ip().is_loopback() {
        crate::demo::project(&format!("http://localhost:{}", addr.port()))?
    } else {
        crate::demo::project(&format!("http://{addr}"))?
    };
    project.override_base_url(base_url);
    Ok(project)
}

/// One request: the body read within its limits, the provider's answer.
async fn handle(provider: Arc<Providers>, peer: IpAddr, limits: Limits, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let body = match tokio::time::timeout(limits.body_timeout, Limited::new(body, BODY_LIMIT).collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            tracing::info!(%method, %path, status = 413, "request body too large");
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        Ok(Err(_)) => {
            // The client went away mid-body: nobody reads an answer.
            tracing::info!(%method, %path, "the client closed the connection before its body was complete");
            return plain(StatusCode::BAD_REQUEST, "incomplete request body");
        }
        Err(_) => {
            tracing::info!(%method, %path, status = 408, "the request body did not arrive in time");
            return plain(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time");
        }
    };
    let headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let request = HttpRequest::new(&method, target, headers, body.to_vec()).with_peer(Some(peer));
    let response = provider.handle(request).await;
    tracing::info!(%method, %path, status = response.status, ms = started.elapsed().as_secs_f64() * 1e3, "request");
    let mut out = Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in response.headers {
        match (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            (Ok(k), Ok(v)) => {
                out.headers_mut().append(k, v);
            }
            // A header that cannot be sent (a control character in a
            // Location, say) is a server error, never a silent drop that
            // turns a redirect into a page without a target.
            _ => {
                tracing::error!(%method, %path, "the provider answered a header that HTTP cannot carry");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, "the server could not complete the request");
            }
        }
    }
    out
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r
}

/// Where a connection is in its life, for the timeouts and the cap.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Open, nothing received yet.
    Fresh(Instant),
    /// A request header is arriving (its first byte came then).
    Reading(Instant),
    /// A request is being handled.
    Busy,
    /// Between requests since then.
    Idle(Instant),
}

struct Slot {
    phase: Phase,
    close: Arc<Notify>,
}

/// Every open connection, so the sweeper can time them out and the
/// acceptor can make room.
#[derive(Default)]
struct Connections {
    slots: Mutex<HashMap<u64, Slot>>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, id: u64, phase: Phase) {
        if let Some(slot) = self.lock().get_mut(&id) {
            slot.phase = phase;
        }
    }

    /// A first byte after `Fresh` or `Idle` starts a request header.
    fn bytes_arrived(&self, id: u64) {
        if let Some(slot) = self.lock().get_mut(&id) {
            if matches!(slot.phase, Phase::Fresh(_) | Phase::Idle(_)) {
                slot.phase = Phase::Reading(Instant::now());
            }
        }
    }

    /// Closes the connection waiting the longest (not one being served);
    /// false when every connection is busy.
    fn evict_one(&self) -> bool {
        let slots = self.lock();
        let since = |p: &Phase| match p {
            Phase::Fresh(t) | Phase::Reading(t) | Phase::Idle(t) => Some(*t),
            Phase::Busy => None,
        };
        match slots.values().filter_map(|s| since(&s.phase).map(|t| (t, s))).min_by_key(|(t, _)| *t) {
            Some((_, slot)) => {
                slot.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Closes connections past their header or idle timeout; with `all_idle`
    /// (stopping), every connection not being served.
    fn sweep(&self, limits: &Limits, all_idle: bool) {
        let now = Instant::now();
        for slot in self.lock().values() {
            let expired = match slot.phase {
                Phase::Fresh(t) | Phase::Reading(t) => all_idle || now.duration_since(t) > limits.header_timeout,
                Phase::Idle(t) => all_idle || now.duration_since(t) > limits.idle_timeout,
                Phase::Busy => false,
            };
            if expired {
                slot.close.notify_one();
            }
        }
    }
}

/// The socket, reporting reads to [`Connections`].
struct Tracked {
    stream: tokio::net::TcpStream,
    id: u64,
    connections: Arc<Connections>,
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connections.bytes_arrived(self.id);
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves one connection until it ends or is told to close.
fn spawn_connection(stream: tokio::net::TcpStream, peer: SocketAddr, id: u64, provider: Arc<Providers>, connections: Arc<Connections>, limits: Limits) {
    let close = Arc::new(Notify::new());
    connections.lock().insert(id, Slot { phase: Phase::Fresh(Instant::now()), close: close.clone() });
    let tracked = Tracked { stream, id, connections: connections.clone() };
    let service_connections = connections.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (provider, connections) = (provider.clone(), service_connections.clone());
        async move {
            connections.set(id, Phase::Busy);
            let response = handle(provider, peer.ip(), limits, request).await;
            connections.set(id, Phase::Idle(Instant::now()));
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    tokio::spawn(async move {
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_timeout.max(limits.idle_timeout))
            .max_buf_size(64 * 1024)
            .serve_connection(hyper_util::rt::TokioIo::new(tracked), service);
        tokio::select! {
            _ = connection => {}
            () = close.notified() => {}
        }
        connections.lock().remove(&id);
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

pub fn serve(args: ServeArgs) -> Result<String, Error> {
    let addr: SocketAddr = args.addr.parse().map_err(|_| Error::config(format!("--addr {:?} is not host:port", args.addr)))?;
    let metrics_addr: Option<SocketAddr> = match &args.metrics_addr {
        None => None,
        Some(a) => Some(a.parse().map_err(|_| Error::config(format!("--metrics-addr {a:?} is not host:port")))?),
    };
    let demo = args.config.is_empty();
    let provider = Arc::new(if demo {
        Providers::open(vec![demo_project(args.base_url.as_deref(), &addr)?], Some(&args.db))?
    } else {
        Providers::open_files(&args.config, Some(&args.db), args.base_url.as_deref())?
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("no async runtime: {e}")))?;
    // IDFLOW_LOG: error, warn, info (the default: a line per request), debug, or off.
    let level = match std::env::var("IDFLOW_LOG").unwrap_or_default().to_ascii_lowercase().as_str() {
        "off" | "none" => None,
        "error" => Some(tracing::Level::ERROR),
        "warn" => Some(tracing::Level::WARN),
        "debug" => Some(tracing::Level::DEBUG),
        "trace" => Some(tracing::Level::TRACE),
        "" | "info" => Some(tracing::Level::INFO),
        other => return Err(Error::config(format!("IDFLOW_LOG={other:?} is not off, error, warn, info or debug"))),
    };
    // IDFLOW_LOG_FORMAT: text (the default) or json (one JSON object per line).
    let json = match std::env::var("IDFLOW_LOG_FORMAT").unwrap_or_default().to_ascii_lowercase().as_str() {
        "" | "text" => false,
        "json" => true,
        other => return Err(Error::config(format!("IDFLOW_LOG_FORMAT={other:?} is not text or json"))),
    };
    if let Some(level) = level {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let log = tracing_subscriber::fmt().with_target(false).with_max_level(level).with_writer(std::io::stderr);
        let _ = if json { log.json().flatten_event(true).try_init() } else { log.with_ansi(ansi).try_init() };
    }
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::config(format!("cannot listen on {addr}: {e}")))?;
        // stdout may be closed by whoever started us; that is no reason to stop.
        macro_rules! say {
            ($($t:tt)*) => {{
                use std::io::Write;
                let _ = writeln!(std::io::stdout(), $($t)*);
            }};
        }
        say!("idflow serve: listening on http://{addr}");
        for p in provider.providers() {
            let issuer = p.issuer();
            say!("issuer:    {issuer}");
            say!("discovery: {issuer}/.well-known/openid-configuration");
        }
        say!("database:  {}", idflow::store::display_name(&args.db));
        let metrics = match metrics_addr {
            Some(a) => Some(tokio::net::TcpListener::bind(a).await.map_err(|e| Error::config(format!("cannot listen on {a} for metrics: {e}")))?),
            None => None,
        };
        if demo {
            let pair = idflow::pkce::generate(None)?;
            let url = format!(
                "{}?response_type=code&client_id=local&redirect_uri={}&scope=openid%20profile%20email&state=demo&code_challenge={}&code_challenge_method=S256",
                provider.providers()[0].url("/oauth2/v1/authorize"),
                "http%3A%2F%2F127.0.0.1%3A8765%2Fcallback",
                pair.challenge
            );
            say!("demo client id: local (public, PKCE)");
            say!("authorize URL:  {url}");
            say!("code_verifier:  {}", pair.verifier);
        }
        if let Some(m) = metrics {
            if let Ok(a) = m.local_addr() {
                say!("metrics:   http://{a}/metrics");
            }
            tokio::spawn(crate::metrics::serve(m, provider.clone()));
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // Expired codes, requests, sessions and revocations are dropped once a minute.
        let purged = provider.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                for p in purged.providers() {
                    if let Err(e) = p.store().purge_expired(now) {
                        tracing::warn!(code = e.code.as_str(), project = p.project().project_id, "purging expired records failed");
                    }
                }
            }
        });
        let connections = Arc::new(Connections::default());
        let limits = args.limits;
        // The sweeper enforces the header and idle timeouts.
        let swept = connections.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                swept.sweep(&limits, false);
            }
        });
        let stop = shutdown_signal();
        tokio::pin!(stop);
        let mut next_id = 0u64;
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = &mut stop => break,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors, say: wait for connections to close
                    // instead of spinning on accept.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if connections.lock().len() >= limits.max_connections && !connections.evict_one() {
                // Every connection is busy being served: this one waits its turn.
                drop(stream);
                continue;
            }
            next_id += 1;
            spawn_connection(stream, peer, next_id, provider.clone(), connections.clone(), limits);
        }
        // Stop: no new connections; idle ones close now, requests in flight
        // get SHUTDOWN_GRACE to finish.
        drop(listener);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        loop {
            connections.sweep(&limits, true);
            if connections.lock().is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(grace_s = SHUTDOWN_GRACE.as_secs(), "connections still open after the grace period; exiting");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok::<(), Error>(())
    })?;
    Ok("idflow serve: stopped".to_owned())
}
