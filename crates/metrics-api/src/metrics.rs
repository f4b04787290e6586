//! This server's own Prometheus metrics, served on the plain `--metrics-port`: requests by
//! route and code, their latency, the cache's age and size, source errors, and the
//! SubjectAccessReviews sent (how many, how long, and whether a request waited for them).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// discovery, custom_value, external_value, openapi, probe, other.
    pub route: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// redisList, queue, stream, prometheus.
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    /// allowed, denied, error.
    pub result: &'static str,
    /// request: a request waited for it; background: refreshed ahead while the cached
    /// decision was served.
    pub waited_by: &'static str,
}

fn latency_buckets() -> Histogram {
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 2.5,
    ])
}

/// Cheap to clone: the families are shared.
#[derive(Clone)]
pub struct ServerMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Age of the oldest value in the cache at the last poll, in seconds.
    pub cache_age: Gauge<f64, AtomicU64>,
    pub cache_entries: Gauge,
    pub source_errors: Family<SourceLabels, Counter>,
    /// Poll rounds (one per interval, plus first reads of new keys).
    pub polls: Counter,
    /// Pipelines the Redis reader sent (one round trip each, whatever it carried).
    pub redis_round_trips: Counter,
    /// SubjectAccessReviews sent to the kube-apiserver.
    pub reviews: Family<ReviewLabels, Counter>,
    pub review_latency: Histogram,
}

impl ServerMetrics {
    pub fn register(registry: &mut Registry) -> ServerMetrics {
        let metrics = ServerMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_buckets),
            cache_age: Gauge::default(),
            cache_entries: Gauge::default(),
            source_errors: Family::default(),
            polls: Counter::default(),
            redis_round_trips: Counter::default(),
            reviews: Family::default(),
            review_latency: latency_buckets(),
        };
        registry.register(
            "ebb_metrics_api_requests",
            "Requests answered, by route and HTTP code",
            metrics.requests.clone(),
        );
        registry.register(
            "ebb_metrics_api_request_duration_seconds",
            "Time from request to answer (TLS handshake excluded), by route",
            metrics.latency.clone(),
        );
        registry.register(
            "ebb_metrics_api_cache_age_seconds",
            "Age of the oldest value in the cache after the last poll",
            metrics.cache_age.clone(),
        );
        registry.register(
            "ebb_metrics_api_cache_entries",
            "Reads the poller makes every interval (configured and learned keys)",
            metrics.cache_entries.clone(),
        );
        registry.register(
            "ebb_metrics_api_source_errors",
            "Failed reads, by source kind",
            metrics.source_errors.clone(),
        );
        registry.register(
            "ebb_metrics_api_polls",
            "Poll rounds made",
            metrics.polls.clone(),
        );
        registry.register(
            "ebb_metrics_api_redis_round_trips",
            "Round trips to Redis (pipelines sent, each carrying every read queued beside it)",
            metrics.redis_round_trips.clone(),
        );
        registry.register(
            "ebb_metrics_api_authorization_reviews",
            "SubjectAccessReviews sent, by result and by who waited for them (a request, or nobody: refreshed ahead in the background)",
            metrics.reviews.clone(),
        );
        registry.register(
            "ebb_metrics_api_authorization_review_duration_seconds",
            "Time a SubjectAccessReview took, sent to answered",
            metrics.review_latency.clone(),
        );
        metrics
    }
}
