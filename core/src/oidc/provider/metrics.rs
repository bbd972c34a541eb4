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

/// The families every project of a process shares (one registry, so one
/// `# TYPE` line per metric), each series labelled by its project when
/// several are served together.
struct Shared {
    registry: Registry,
    requests: Family<Labels, Counter>,
    durations: Family<Labels, Histogram, fn() -> Histogram>,
    tokens: Family<Labels, Counter>,
    answers: Family<Labels, Counter>,
    key_reload_failures: Family<Labels, Counter>,
    store_calls: Family<Labels, Histogram, fn() -> Histogram>,
    store_errors: Family<Labels, Counter>,
    pool: Family<Labels, Gauge>,
}

/// One provider's view of the metrics: the shared families, and the
/// `project` label its series carry when several projects share them.
pub(super) struct Metrics {
    shared: std::sync::Arc<Shared>,
    project: Option<String>,
}

impl Metrics {
    /// A provider's metrics, alone in their registry.
    pub(super) fn new() -> Metrics {
        Metrics::with(Shared::new(), None)
    }

    /// A registry for several projects' series ([`Metrics::for_project`]),
    /// itself recording none.
    pub(super) fn root() -> Metrics {
        Metrics { shared: Shared::new(), project: None }
    }

    fn with(shared: std::sync::Arc<Shared>, project: Option<String>) -> Metrics {
        let m = Metrics { shared, project };
        // Shown (at 0) before the first failure.
        let _ = m.shared.key_reload_failures.get_or_create(&m.labels(vec![]));
        m
    }
}

impl Shared {
    fn new() -> std::sync::Arc<Shared> {
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
        let key_reload_failures = Family::<Labels, Counter>::default();
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
        std::sync::Arc::new(Shared { registry, requests, durations, tokens, answers, key_reload_failures, store_calls, store_errors, pool })
    }
}

impl Metrics {
    /// The same families, for project `project_id`'s series.
    pub(super) fn for_project(&self, project_id: &str) -> Metrics {
        Metrics::with(self.shared.clone(), Some(project_id.to_owned()))
    }

    fn labels(&self, mut labels: Labels) -> Labels {
        if let Some(p) = &self.project {
            labels.insert(0, ("project", p.clone()));
        }
        labels
    }

    /// What the provider's store reports each call to.
    pub(super) fn store_observer(&self) -> crate::store::Observer {
        let (calls, errors) = (self.shared.store_calls.clone(), self.shared.store_errors.clone());
        let project = self.project.clone();
        std::sync::Arc::new(move |op: &'static str, took: std::time::Duration, failed: bool| {
            let mut labels = vec![("op", op.to_owned())];
            if let Some(p) = &project {
                labels.insert(0, ("project", p.clone()));
            }
            calls.get_or_create(&labels).observe(took.as_secs_f64());
            if failed {
                errors.get_or_create(&labels).inc();
            }
        })
    }

    pub(super) fn request(&self, route: &'static str, status: u16, seconds: f64) {
        self.shared.requests.get_or_create(&self.labels(vec![("route", route.to_owned()), ("status", status.to_string())])).inc();
        self.shared.durations.get_or_create(&self.labels(vec![("route", route.to_owned())])).observe(seconds);
    }

    pub(super) fn token(&self, grant: &'static str) {
        self.shared.tokens.get_or_create(&self.labels(vec![("grant", grant.to_owned())])).inc();
    }

    pub(super) fn answer(&self, outcome: &'static str) {
        self.shared.answers.get_or_create(&self.labels(vec![("outcome", outcome.to_owned())])).inc();
    }

    pub(super) fn key_reload_failed(&self) {
        self.shared.key_reload_failures.get_or_create(&self.labels(vec![])).inc();
    }

    /// Sets the pool's gauges to `pool`, read now.
    pub(super) fn set_pool(&self, pool: Option<crate::store::PoolUse>) {
        if let Some(p) = pool {
            for (state, n) in [("max", p.max), ("open", p.open), ("idle", p.idle), ("waiting", p.waiting)] {
                self.shared.pool.get_or_create(&self.labels(vec![("state", state.to_owned())])).set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    /// The text of every series of the shared families.
    pub(super) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.shared.registry);
        out
    }
}
