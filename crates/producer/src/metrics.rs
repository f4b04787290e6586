//! The producer's metrics: the dojo's counter, plus request latency per route and status.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) route: &'static str,
    pub(crate) code: u16,
}

#[derive(Clone)]
pub(crate) struct ProducerMetrics {
    pub(crate) published: Counter,
    pub(crate) request_duration: Family<RequestLabels, Histogram>,
}

impl ProducerMetrics {
    pub(crate) fn register() -> (ProducerMetrics, ebb_runtime::Metrics) {
        let metrics = ProducerMetrics {
            published: Counter::default(),
            request_duration: Family::new_with_constructor(|| {
                // 100µs … ~13s: a single push to a 1M-item batch.
                Histogram::new(exponential_buckets(0.0001, 2.0, 18))
            }),
        };
        let mut registry = Registry::default();
        registry.register(
            "producer_messages_published",
            "The total number of published messages",
            metrics.published.clone(),
        );
        registry.register(
            "producer_request_duration_seconds",
            "Time to answer a publish request",
            metrics.request_duration.clone(),
        );
        (metrics, ebb_runtime::Metrics::new(registry))
    }
}
