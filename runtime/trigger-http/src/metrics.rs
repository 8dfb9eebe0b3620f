//! The HTTP trigger's numbers: requests by route, method and status class,
//! their duration, and requests refused before or instead of a guest run.
//! Every counter is an atomic fixed when the app loads (one set per route),
//! so counting costs a few relaxed increments and never allocates.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flint_engine::metrics::{Counter, Histogram, MetricsWriter};

const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One route's requests and their duration (from the first byte of the
/// body to the last byte of the response).
pub struct RouteMetrics {
    requests: [[Counter; STATUS_CLASSES.len()]; METHODS.len()],
    duration: Histogram,
}

impl Default for RouteMetrics {
    fn default() -> Self {
        Self {
            requests: Default::default(),
            duration: Histogram::seconds(),
        }
    }
}

impl RouteMetrics {
    pub fn record(&self, method: &str, status: u16, elapsed: Duration) {
        let method = METHODS[..METHODS.len() - 1]
            .iter()
            .position(|m| *m == method)
            .unwrap_or(METHODS.len() - 1);
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.requests[method][class].inc();
        self.duration.observe_duration(elapsed);
    }

    /// Requests counted on this route.
    pub fn total(&self) -> u64 {
        self.requests.iter().flatten().map(Counter::get).sum()
    }
}

/// Why a request got no guest run.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// Every worker busy and the queue full (503).
    QueueFull,
    /// `max_instances_per_component` reached (503).
    InstanceLimit,
    /// No room in the guest memory budget (503).
    MemoryBudget,
    /// Head over `max_request_head_bytes` or `max_request_headers` (431).
    HeadTooLarge,
    /// Body over `max_request_body_bytes` (413).
    BodyTooLarge,
    /// A malformed request (400) or transfer coding (501).
    BadRequest,
    /// The request did not arrive within `read_timeout_ms` (408).
    Timeout,
    /// `max_connections` open and none idle (503).
    ConnectionLimit,
}

const REFUSALS: [&str; 8] = [
    "queue_full",
    "instance_limit",
    "memory_budget",
    "head_too_large",
    "body_too_large",
    "bad_request",
    "timeout",
    "connection_limit",
];

/// The trigger-wide numbers; each route's own are in its `RouteEntry`.
#[derive(Default)]
pub struct HttpMetrics {
    refused: [Counter; REFUSALS.len()],
    /// Requests no route matched (404).
    pub unmatched: RouteMetrics,
    /// Requests to Flint's own routes (health, status, metrics, status page).
    pub flint_routes: RouteMetrics,
    connections: AtomicUsize,
}

impl HttpMetrics {
    pub fn refused(&self, reason: Refusal) {
        self.refused[reason as usize].inc();
    }

    /// Counts an open connection until the returned guard is dropped.
    pub fn connection_opened(self: &std::sync::Arc<Self>) -> OpenConnectionCount {
        self.connections.fetch_add(1, Ordering::Relaxed);
        OpenConnectionCount(self.clone())
    }

    pub fn open_connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// One open connection in `flint_http_connections`.
pub struct OpenConnectionCount(std::sync::Arc<HttpMetrics>);

impl Drop for OpenConnectionCount {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A route as its metrics are labelled.
pub struct LabelledRoute<'a> {
    pub component: &'a str,
    pub route: &'a str,
    pub metrics: &'a RouteMetrics,
}

/// The requests seen so far, over every route.
pub fn requests_total(routes: &[LabelledRoute<'_>]) -> u64 {
    routes.iter().map(|r| r.metrics.total()).sum()
}

/// `flint_requests_total`, `flint_request_duration_seconds` (by component),
/// `flint_http_refused_total` and `flint_http_connections`.
pub fn write_metrics(w: &mut MetricsWriter, http: &HttpMetrics, routes: &[LabelledRoute<'_>]) {
    w.counter(
        "flint_requests",
        "HTTP requests by component, route pattern, method and status class.",
    );
    for r in routes {
        for (method, by_class) in METHODS.iter().zip(&r.metrics.requests) {
            for (class, counter) in STATUS_CLASSES.iter().zip(by_class) {
                let n = counter.get();
                if n > 0 {
                    w.value(
                        &[
                            ("component", r.component),
                            ("route", r.route),
                            ("method", method),
                            ("status_class", class),
                        ],
                        n,
                    );
                }
            }
        }
    }
    w.histogram(
        "flint_request_duration_seconds",
        "HTTP request duration by component, from the request body to the last response byte.",
    );
    let mut by_component: BTreeMap<&str, Histogram> = BTreeMap::new();
    for r in routes {
        by_component
            .entry(r.component)
            .or_insert_with(Histogram::seconds)
            .add(&r.metrics.duration);
    }
    for (component, histogram) in &by_component {
        w.histogram_value(&[("component", component)], histogram);
    }
    w.counter(
        "flint_http_refused",
        "HTTP requests refused without a guest run, by reason.",
    );
    for (reason, counter) in REFUSALS.iter().zip(&http.refused) {
        w.value(&[("reason", reason)], counter.get());
    }
    w.gauge("flint_http_connections", "Open client connections.");
    w.value(&[], http.open_connections() as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_method_and_class() {
        let route = RouteMetrics::default();
        route.record("GET", 200, Duration::from_millis(1));
        route.record("BREW", 418, Duration::from_millis(1));
        route.record("GET", 204, Duration::from_millis(1));
        let http = HttpMetrics::default();
        http.refused(Refusal::QueueFull);
        let routes = [LabelledRoute {
            component: "c",
            route: "/x",
            metrics: &route,
        }];
        assert_eq!(requests_total(&routes), 3);
        let mut w = MetricsWriter::new(flint_engine::metrics::Format::Prometheus);
        write_metrics(&mut w, &http, &routes);
        let text = w.finish();
        for line in [
            "flint_requests_total{component=\"c\",route=\"/x\",method=\"GET\",status_class=\"2xx\"} 2\n",
            "flint_requests_total{component=\"c\",route=\"/x\",method=\"other\",status_class=\"4xx\"} 1\n",
            "flint_request_duration_seconds_count{component=\"c\"} 3\n",
            "flint_http_refused_total{reason=\"queue_full\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
