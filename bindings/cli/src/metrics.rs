//! `idflow serve --metrics-addr`: the provider's metrics (Prometheus /
//! OpenMetrics text) at `GET /metrics` on a listener of their own, so they
//! are reachable from the monitoring network only, never through the
//! public one. Each connection answers one request within ten seconds, and
//! at most 16 are served at once, so the listener cannot use up the
//! descriptors the provider needs.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use idflow::oidc::provider::Providers;
use std::sync::Arc;
use std::time::Duration;

/// The media type of `Providers::metrics` (what prometheus-client writes).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn answer(provider: &Providers, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, kind, body) = if request.uri().path() != "/metrics" {
        (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found: the metrics are at /metrics\n".to_owned())
    } else if request.method() != Method::GET {
        (StatusCode::METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "GET only\n".to_owned())
    } else {
        (StatusCode::OK, OPENMETRICS, provider.metrics())
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(kind));
    r.headers_mut().insert(hyper::header::CACHE_CONTROL, hyper::header::HeaderValue::from_static("no-store"));
    r
}

/// Connections served at once; more wait for one to close.
const MAX_CONNECTIONS: usize = 16;

/// Serves the metrics on `listener` until the process stops.
pub async fn serve(listener: tokio::net::TcpListener, provider: Arc<Providers>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let provider = provider.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = answer(&provider, &request);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .max_buf_size(16 * 1024)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(10), connection).await;
        });
    }
}
