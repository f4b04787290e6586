//! `ebb-sources`: the catalogue of metric sources, one file per source (KEDA-style): each
//! file holds its source's spec, the checks on it, its construction and its reading.
//!
//! ```text
//!  QueueScaler spec.source ─(operator: one fn)─┐                     ┌─▶ Reading (control loop)
//!                                              ├─▶ SourceSpec ─build─▶ Source
//!  metrics API metric.source ─(one fn)─────────┘   (+ Count served)  └─▶ Measured (served value)
//! ```
//!
//! The spec carries what both sides share: the key (fixed in a QueueScaler, a template
//! filled from a label value in the metrics API, see [`Text`]) and each source's own fields;
//! a metric adds the [`Count`] it serves. How a side finds its Redis server and credentials
//! stays its own: it hands the built source a [`Redis`].
//!
//! Adding a source: a new file implementing [`Kind`] for its spec and [`MetricSource`] for
//! its source, and one line in the `catalogue!` below. The operator's CRD and the metrics
//! API's configuration are checked against [`CATALOGUE`] by their tests.

mod catalogue;
mod error;
mod first_seen;
pub mod http_client;
mod reading;
pub mod template;

pub use catalogue::{Kind, KindInfo, Redis};
pub use error::{Cause, Error, Result};
pub use reading::{Count, Lease, Measured, MetricSource, Reading};
pub use template::{Template, Text};

catalogue::catalogue! {
    RedisList => redis_list::RedisListSpec,
    EbbQueue => queue::EbbQueueSpec,
    RedisStream => redis_stream::RedisStreamSpec,
    Prometheus => prometheus::PrometheusSpec,
    Celery => celery::CelerySpec,
    Rq => rq::RqSpec,
    Dramatiq => dramatiq::DramatiqSpec,
    Sidekiq => sidekiq::SidekiqSpec,
    Bullmq => bullmq::BullmqSpec,
}
