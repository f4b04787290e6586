//! A metric's `source` as the configuration file writes it: the model both the checker
//! (which holds it while it checks a metric) and the mapping to the catalogue's spec read,
//! kept apart so that neither imports the other.

use ebb_sources::prometheus::EmptyResult;
use ebb_sources::{bullmq, celery, dramatiq, sidekiq};
use serde::Deserialize;

/// A metric's `source`, as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) enum SourceFile {
    RedisList {},
    #[serde(alias = "queue")]
    EbbQueue {
        count: String,
    },
    #[serde(alias = "stream")]
    RedisStream {
        group: String,
        count: String,
    },
    /// Celery queues on Redis: the label's value names the queue; kombu's options default as
    /// kombu defaults them.
    #[serde(rename_all = "camelCase")]
    Celery {
        #[serde(default = "celery::default_priority_steps")]
        priority_steps: Vec<u32>,
        #[serde(default = "celery::default_separator")]
        separator: String,
        #[serde(default)]
        key_prefix: String,
        #[serde(default)]
        acks_late: bool,
        #[serde(default = "celery::default_visibility_timeout_seconds")]
        visibility_timeout_seconds: u64,
        count: String,
    },
    Rq {
        count: String,
    },
    /// A Dramatiq queue: the label's value names the queue; the broker's options default as
    /// Dramatiq defaults them.
    #[serde(rename_all = "camelCase")]
    Dramatiq {
        #[serde(default = "dramatiq::default_namespace")]
        namespace: String,
        #[serde(default = "dramatiq::default_heartbeat_timeout_ms")]
        heartbeat_timeout_ms: u64,
        count: String,
    },
    /// Sidekiq queues: the label's value names the queue (a list of one).
    #[serde(rename_all = "camelCase")]
    Sidekiq {
        #[serde(default)]
        namespace: String,
        #[serde(default = "sidekiq::default_heartbeat_timeout_seconds")]
        heartbeat_timeout_seconds: u64,
        count: String,
    },
    /// A BullMQ queue: the label's value names the queue; the prefix defaults as BullMQ's.
    Bullmq {
        #[serde(default = "bullmq::default_prefix")]
        prefix: String,
        count: String,
    },
    #[serde(rename_all = "camelCase")]
    Prometheus {
        server: Option<String>,
        query: String,
        empty_result: EmptyResult,
    },
}
