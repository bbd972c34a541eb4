//! What an operator graphs: requests by route and status, their latency,
//! tokens issued by grant, and flow answers by outcome, in the Prometheus
//! text format (the Prometheus project's `prometheus-client`). Labels come
//! from closed sets (route names, grant types, error codes), never from
//! request data, so an attacker cannot grow the series, and no label
//! carries a user, client secret or token.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn latency() -> Histogram {
    // 0.5 ms to about 8 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

pub(super) struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    durations: Family<Labels, Histogram, fn() -> Histogram>,
    tokens: Family<Labels, Counter>,
    answers: Family<Labels, Counter>,
    key_reload_failures: Counter,
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
        Metrics { registry, requests, durations, tokens, answers, key_reload_failures }
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

    pub(super) fn text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
