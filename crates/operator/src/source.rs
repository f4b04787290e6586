//! The metric source a QueueScaler's spec names, as one type the control loop can own:
//! each variant is one of ebb-autoscaler's sources, shared with the metrics API.

use ebb_autoscaler::sources::prometheus::{EmptyResult as PromEmpty, PrometheusSource};
use ebb_autoscaler::sources::redis::RedisSource;
use ebb_autoscaler::sources::redis_list::RedisListSource;
use ebb_autoscaler::sources::redis_stream::RedisStreamSource;
use ebb_autoscaler::{MetricSource, Reading};

pub enum SpecSource {
    List(RedisListSource),
    Queue(RedisSource),
    Stream(RedisStreamSource),
    Prometheus(PrometheusSource),
}

/// The CRD's `emptyResult` as the source takes it.
pub fn empty_result(given: crate::crd::EmptyResult) -> PromEmpty {
    match given {
        crate::crd::EmptyResult::Zero => PromEmpty::Zero,
        crate::crd::EmptyResult::Error => PromEmpty::Error,
    }
}

impl MetricSource for SpecSource {
    fn describe(&self) -> String {
        match self {
            SpecSource::List(source) => source.describe(),
            SpecSource::Queue(source) => source.describe(),
            SpecSource::Stream(source) => source.describe(),
            SpecSource::Prometheus(source) => source.describe(),
        }
    }

    async fn read(&self) -> ebb_autoscaler::Result<Reading> {
        match self {
            SpecSource::List(source) => source.read().await,
            SpecSource::Queue(source) => source.read().await,
            SpecSource::Stream(source) => source.read().await,
            SpecSource::Prometheus(source) => source.read().await,
        }
    }
}
