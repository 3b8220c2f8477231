//! Prometheus metrics, typed. Label values come from the route table, never from raw
//! request paths, so cardinality is bounded by the number of routes.

use std::fmt;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::BuildInfo;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: &'static str,
    /// The route template (`/api/v1/keys/{id}`), or `unmatched`.
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    git_sha: &'static str,
}

type HistogramFn = fn() -> Histogram;

fn latency_histogram() -> Histogram {
    // 100 µs to ~6.5 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// Every metric Vigil exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: Family<HttpLabels, Histogram, HistogramFn>,
    pub audit_failures: Counter,
    pub rate_limited: Counter,
    /// Vitals lost because storage fell behind (the queue was full) or a write failed.
    pub vitals_dropped: Counter,
    /// Observations the immune system could not take because its queue was full.
    pub immune_dropped: Counter,
    /// Time the gateway adds to a model call (everything but waiting for the provider).
    pub gateway_overhead: Histogram,
    /// Time to admit a call against its budgets (one store transaction).
    pub budget_admission: Histogram,
    /// Time to write one batch of budget settlements.
    pub budget_settlement: Histogram,
    /// Requests refused because a web page may have sent them (see [`crate::origin`]).
    pub browser_refused: Counter,
    /// Connections open now.
    pub connections_open: Gauge,
    /// Connections refused at the cap, or closed to make room for a new one.
    pub connections_shed: Family<ShedLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShedLabels {
    /// `refused` (every connection was busy) or `evicted` (an idle one made room).
    pub how: &'static str,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new(build: BuildInfo) -> Self {
        let mut registry = Registry::with_prefix("vigil");
        let requests = Family::<HttpLabels, Counter>::default();
        let latency = Family::<HttpLabels, Histogram, HistogramFn>::new_with_constructor(latency_histogram);
        let audit_failures = Counter::default();
        let rate_limited = Counter::default();
        let vitals_dropped = Counter::default();
        let immune_dropped = Counter::default();
        // 10 µs to ~0.3 s.
        let gateway_overhead = Histogram::new(exponential_buckets(0.000_01, 2.0, 16));
        let budget_admission = Histogram::new(exponential_buckets(0.000_01, 2.0, 16));
        let budget_settlement = Histogram::new(exponential_buckets(0.000_01, 2.0, 16));
        let browser_refused = Counter::default();
        let connections_open = Gauge::default();
        let connections_shed = Family::<ShedLabels, Counter>::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info.get_or_create(&BuildLabels { version: build.version, git_sha: build.git_sha }).set(1);
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        registry.register("audit_append_failures", "Audit entries that could not be written", audit_failures.clone());
        registry.register("rate_limited_requests", "Requests refused by the rate limiter", rate_limited.clone());
        registry.register(
            "vitals_dropped",
            "Model-call vitals not recorded because storage fell behind",
            vitals_dropped.clone(),
        );
        registry.register(
            "immune_observations_dropped",
            "Calls the immune system did not judge because its queue was full",
            immune_dropped.clone(),
        );
        registry.register(
            "gateway_overhead_seconds",
            "Time Vigil adds to a model call, excluding the provider",
            gateway_overhead.clone(),
        );
        registry.register(
            "budget_admission_seconds",
            "Time to admit a model call against the budgets it falls under",
            budget_admission.clone(),
        );
        registry.register(
            "budget_settlement_seconds",
            "Time to write one batch of budget settlements",
            budget_settlement.clone(),
        );
        registry.register(
            "browser_refused_requests",
            "Requests refused because a web page may have sent them (Host, Origin, simple requests)",
            browser_refused.clone(),
        );
        registry.register("http_connections_open", "HTTP connections open now", connections_open.clone());
        registry.register(
            "http_connections_shed",
            "Connections refused at the cap, or idle ones closed to make room",
            connections_shed.clone(),
        );
        registry.register("build_info", "Version of the running binary", build_info);
        Metrics {
            registry,
            requests,
            latency,
            audit_failures,
            rate_limited,
            vitals_dropped,
            immune_dropped,
            gateway_overhead,
            budget_admission,
            budget_settlement,
            browser_refused,
            connections_open,
            connections_shed,
        }
    }

    pub fn observe_request(&self, labels: HttpLabels, seconds: f64) {
        self.latency.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics");
        }
        out
    }
}
