//! `idflow serve`: the OIDC provider over HTTP (axum on tokio). The server
//! only converts requests and responses; `idflow::oidc::provider` does the
//! rest. Logs name the method, path (never the query: it carries codes and
//! state), status and duration, and nothing else of the request.

use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use idflow::oidc::provider::{HttpRequest, Provider};
use idflow::project::Project;
use idflow::store::{SqliteStore, Store};
use idflow::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest request body accepted (forms and flow API JSON are small).
const BODY_LIMIT: usize = 64 * 1024;
/// How long a stop waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub struct ServeArgs {
    pub config: Option<String>,
    pub addr: String,
    pub db: String,
    pub base_url: Option<String>,
}

pub fn load_project(config: Option<&str>, base_url: Option<&str>, addr: &SocketAddr) -> Result<Project, Error> {
    let mut project = match config {
        Some(path) => Project::from_file(path)?,
        None => Project::demo(&format!("http://{addr}"))?,
    };
    if let Some(b) = base_url {
        project.base_url = b.trim_end_matches('/').to_owned();
    }
    Ok(project)
}

async fn handle(State(provider): State<Arc<Provider>>, request: Request<Body>) -> Response<Body> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let body = match to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            tracing::info!(%method, %path, status = 413, "request body too large");
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
    };
    let headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let response = provider.handle(HttpRequest::new(&method, target, headers, body.to_vec())).await;
    tracing::info!(%method, %path, status = response.status, ms = started.elapsed().as_secs_f64() * 1e3, "request");
    let mut out = Response::new(Body::from(response.body));
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

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r
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
    let demo = args.config.is_none();
    let project = load_project(args.config.as_deref(), args.base_url.as_deref(), &addr)?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&args.db)?);
    let provider = Arc::new(Provider::new(project, store.clone())?);
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
    if let Some(level) = level {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let _ = tracing_subscriber::fmt().with_target(false).with_ansi(ansi).with_max_level(level).with_writer(std::io::stderr).try_init();
    }
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::config(format!("cannot listen on {addr}: {e}")))?;
        let issuer = provider.issuer().to_owned();
        // stdout may be closed by whoever started us; that is no reason to stop.
        macro_rules! say {
            ($($t:tt)*) => {{
                use std::io::Write;
                let _ = writeln!(std::io::stdout(), $($t)*);
            }};
        }
        say!("idflow serve: listening on http://{addr}");
        say!("issuer:    {issuer}");
        say!("discovery: {issuer}/.well-known/openid-configuration");
        say!("database:  {}", args.db);
        if demo {
            let pair = idflow::pkce::generate(None)?;
            let url = format!(
                "{}?response_type=code&client_id=local&redirect_uri={}&scope=openid%20profile%20email&state=demo&code_challenge={}&code_challenge_method=S256",
                provider.url("/oauth2/v1/authorize"),
                "http%3A%2F%2F127.0.0.1%3A8765%2Fcallback",
                pair.challenge
            );
            say!("demo client id: local (public, PKCE)");
            say!("authorize URL:  {url}");
            say!("code_verifier:  {}", pair.verifier);
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // Expired codes, requests, sessions and revocations are dropped once a minute.
        let purge_store = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                if let Err(e) = purge_store.purge_expired(now) {
                    tracing::warn!(code = e.code.as_str(), "purging expired records failed");
                }
            }
        });
        let app = axum::Router::new().fallback(handle).with_state(provider);
        // On SIGINT/SIGTERM stop accepting, let in-flight requests finish,
        // and exit after SHUTDOWN_GRACE even if a client never completes its
        // request (a half-sent header must not keep the process alive).
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        });
        let server = std::future::IntoFuture::into_future(server);
        tokio::pin!(server);
        let failed = |e: std::io::Error| Error::internal(format!("the server failed: {e}"));
        tokio::select! {
            r = &mut server => r.map_err(failed)?,
            _ = shutdown_signal() => {
                let _ = stop_tx.send(true);
                match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                    Ok(r) => r.map_err(failed)?,
                    Err(_) => tracing::warn!(grace_s = SHUTDOWN_GRACE.as_secs(), "connections still open after the grace period; exiting"),
                }
            }
        }
        Ok::<(), Error>(())
    })?;
    Ok("idflow serve: stopped".to_owned())
}
