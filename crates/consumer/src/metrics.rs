//! The consumer's metrics: the dojo's counter, plus processing time and queue latency.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone)]
pub(crate) struct ConsumerMetrics {
    pub(crate) consumed: Counter,
    pub(crate) processing: Histogram,
    pub(crate) queue_latency: Histogram,
}

impl ConsumerMetrics {
    pub(crate) fn register() -> (ConsumerMetrics, ebb_runtime::Metrics) {
        let metrics = ConsumerMetrics {
            consumed: Counter::default(),
            // 1ms … ~2min.
            processing: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
            // 1ms … ~9h: items may wait long in a queue scaled to zero.
            queue_latency: Histogram::new(exponential_buckets(0.001, 2.0, 25)),
        };
        let mut registry = Registry::default();
        registry.register(
            "consumer_messages_consumed",
            "The total number of consumed messages",
            metrics.consumed.clone(),
        );
        registry.register(
            "consumer_processing_duration_seconds",
            "Time spent working on an item, acknowledgement included",
            metrics.processing.clone(),
        );
        registry.register(
            "consumer_queue_latency_seconds",
            "Time from an item's enqueueing to its delivery to this consumer",
            metrics.queue_latency.clone(),
        );
        (metrics, ebb_runtime::Metrics::new(registry))
    }
}
