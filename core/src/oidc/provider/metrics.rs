//! What an operator graphs: requests by route and status, their latency,
//! tokens issued by grant, flow answers by outcome, store calls by
//! operation and the store's connection pool, in the Prometheus
//! text format (the Prometheus project's `prometheus-client`). Labels come
//! from closed sets (route names, grant types, error codes), never from
//! request data, so an attacker cannot grow the series, and no label
//! carries a user, client secret or token.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn latency() -> Histogram {
    // 0.5 ms to about 8 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

fn store_latency() -> Histogram {
    // 50 µs to about 1.6 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

pub(super) struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    durations: Family<Labels, Histogram, fn() -> Histogram>,
    tokens: Family<Labels, Counter>,
    answers: Family<Labels, Counter>,
    key_reload_failures: Counter,
    store_calls: Family<Labels, Histogram, fn() -> Histogram>,
    store_errors: Family<Labels, Counter>,
    pool: Family<Labels, Gauge>,
}

impl Metrics {
    pub(super) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("idflow");
        let requests = Family::<Labels, Counter>::default();
        let durations = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency as fn() -> Histogram);
        let tokens = Family::<Labels, Counter>::default();
        let answers = Family::<Labels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered, by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer an HTTP request, by route", durations.clone());
        registry.register("tokens_issued", "Token responses issued at the token endpoint, by grant type", tokens.clone());
        registry.register(
            "flow_answers",
            "Flow API answers (POST /v1/flow/next), by outcome: completed, waiting, or the error code",
            answers.clone(),
        );
        let key_reload_failures = Counter::default();
        registry.register(
            "key_reload_failures",
            "Signing key reloads from the store that failed (the keys in use stay)",
            key_reload_failures.clone(),
        );
        let store_calls = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(store_latency as fn() -> Histogram);
        let store_errors = Family::<Labels, Counter>::default();
        let pool = Family::<Labels, Gauge>::default();
        registry.register("store_operation_duration_seconds", "Time a store call took, by operation", store_calls.clone());
        registry.register("store_errors", "Store calls that failed, by operation", store_errors.clone());
        registry.register(
            "store_pool_connections",
            "The store's connection pool (PostgreSQL): max, open, idle, and calls waiting for one",
            pool.clone(),
        );
        Metrics { registry, requests, durations, tokens, answers, key_reload_failures, store_calls, store_errors, pool }
    }

    /// What the provider's store reports each call to.
    pub(super) fn store_observer(&self) -> crate::store::Observer {
        let (calls, errors) = (self.store_calls.clone(), self.store_errors.clone());
        std::sync::Arc::new(move |op: &'static str, took: std::time::Duration, failed: bool| {
            let labels = vec![("op", op.to_owned())];
            calls.get_or_create(&labels).observe(took.as_secs_f64());
            if failed {
                errors.get_or_create(&labels).inc();
            }
        })
    }

    pub(super) fn request(&self, route: &'static str, status: u16, seconds: f64) {
        self.requests.get_or_create(&vec![("route", route.to_owned()), ("status", status.to_string())]).inc();
        self.durations.get_or_create(&vec![("route", route.to_owned())]).observe(seconds);
    }

    pub(super) fn token(&self, grant: &'static str) {
        self.tokens.get_or_create(&vec![("grant", grant.to_owned())]).inc();
    }

    pub(super) fn answer(&self, outcome: &'static str) {
        self.answers.get_or_create(&vec![("outcome", outcome.to_owned())]).inc();
    }

    pub(super) fn key_reload_failed(&self) {
        self.key_reload_failures.inc();
    }

    /// The text, with the pool's gauges read now.
    pub(super) fn text(&self, pool: Option<crate::store::PoolUse>) -> String {
        if let Some(p) = pool {
            for (state, n) in [("max", p.max), ("open", p.open), ("idle", p.idle), ("waiting", p.waiting)] {
                self.pool.get_or_create(&vec![("state", state.to_owned())]).set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
