//! A QueueScaler's `spec.source` as the catalogue's [`SourceSpec`] ([`spec`], the one
//! mapping), and what the operator needs beside it: the Redis server the source names (found
//! with its Secrets by `scaler_task/secrets.rs`) and the keys whose keyspace notifications
//! wake the scaler. Reading, checking and building the source are the catalogue's.

use ebb_sources::SourceSpec;
use ebb_sources::bullmq::BullmqSpec;
use ebb_sources::celery::CelerySpec;
use ebb_sources::dramatiq::DramatiqSpec;
use ebb_sources::prometheus::PrometheusSpec;
use ebb_sources::queue::EbbQueueSpec;
use ebb_sources::redis_list::RedisListSpec;
use ebb_sources::redis_stream::RedisStreamSpec;
use ebb_sources::rq::RqSpec;
use ebb_sources::sidekiq::SidekiqSpec;
use ebb_sources::{Kind, Text};

use crate::crd::{RedisServer, Source};
use crate::{Error, Result};

/// The source `source` names, checked, with where its Redis server is written when it reads
/// one (`(server, "spec.source.redisList.redis")`).
pub fn spec(source: &Source) -> Result<(SourceSpec, Option<(&RedisServer, String)>)> {
    let set = [
        source.redis_list.is_some(),
        source.ebb_queue.is_some(),
        source.redis_stream.is_some(),
        source.prometheus.is_some(),
        source.celery.is_some(),
        source.rq.is_some(),
        source.dramatiq.is_some(),
        source.sidekiq.is_some(),
        source.bullmq.is_some(),
    ];
    if set.into_iter().filter(|set| *set).count() != 1 {
        // The CRD's own rule says the same; this is for objects the API server did not check.
        return Err(Error::InvalidField {
            field: "spec.source",
            reason: format!("set exactly one of {}", ebb_sources_kinds()),
        });
    }
    let field = |kind: &str| format!("spec.source.{kind}");
    let redis = |server, kind: &str| Some((server, format!("{}.redis", field(kind))));
    let (spec, server) = if let Some(list) = &source.redis_list {
        (
            SourceSpec::RedisList(RedisListSpec {
                key: Text::Fixed(list.key.clone()),
            }),
            redis(&list.redis, RedisListSpec::KIND),
        )
    } else if let Some(queue) = &source.ebb_queue {
        (
            SourceSpec::EbbQueue(EbbQueueSpec {
                queue: Text::Fixed(queue.queue.clone()),
            }),
            redis(&queue.redis, EbbQueueSpec::KIND),
        )
    } else if let Some(stream) = &source.redis_stream {
        (
            SourceSpec::RedisStream(RedisStreamSpec {
                stream: Text::Fixed(stream.stream.clone()),
                group: stream.group.clone(),
            }),
            redis(&stream.redis, RedisStreamSpec::KIND),
        )
    } else if let Some(prometheus) = &source.prometheus {
        (
            SourceSpec::Prometheus(PrometheusSpec {
                server: prometheus.server_address.clone(),
                query: Text::Fixed(prometheus.query.clone()),
                empty_result: prometheus.empty_result,
            }),
            None,
        )
    } else if let Some(celery) = &source.celery {
        (
            SourceSpec::Celery(CelerySpec {
                queues: celery
                    .queues
                    .iter()
                    .map(|queue| Text::Fixed(queue.clone()))
                    .collect(),
                priority_steps: celery.priority_steps.clone(),
                separator: celery.separator.clone(),
                key_prefix: celery.key_prefix.clone(),
                acks_late: celery.acks_late,
                visibility_timeout_seconds: celery.visibility_timeout_seconds,
            }),
            redis(&celery.redis, CelerySpec::KIND),
        )
    } else if let Some(rq) = &source.rq {
        (
            SourceSpec::Rq(RqSpec {
                queue: Text::Fixed(rq.queue.clone()),
            }),
            redis(&rq.redis, RqSpec::KIND),
        )
    } else if let Some(dramatiq) = &source.dramatiq {
        (
            SourceSpec::Dramatiq(DramatiqSpec {
                queue: Text::Fixed(dramatiq.queue.clone()),
                namespace: dramatiq.namespace.clone(),
                heartbeat_timeout_ms: dramatiq.heartbeat_timeout_ms,
            }),
            redis(&dramatiq.redis, DramatiqSpec::KIND),
        )
    } else if let Some(sidekiq) = &source.sidekiq {
        (
            SourceSpec::Sidekiq(SidekiqSpec {
                queues: sidekiq
                    .queues
                    .iter()
                    .map(|queue| Text::Fixed(queue.clone()))
                    .collect(),
                namespace: sidekiq.namespace.clone(),
                heartbeat_timeout_seconds: sidekiq.heartbeat_timeout_seconds,
            }),
            redis(&sidekiq.redis, SidekiqSpec::KIND),
        )
    } else if let Some(bullmq) = &source.bullmq {
        (
            SourceSpec::Bullmq(BullmqSpec {
                queue: Text::Fixed(bullmq.queue.clone()),
                prefix: bullmq.prefix.clone(),
            }),
            redis(&bullmq.redis, BullmqSpec::KIND),
        )
    } else {
        unreachable!("exactly one field is set (checked above)")
    };
    spec.check(&field(spec.kind()))?;
    Ok((spec, server))
}

/// The catalogue's kinds, as a message lists them.
fn ebb_sources_kinds() -> String {
    ebb_sources::CATALOGUE
        .iter()
        .map(|info| info.kind)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Redis glob patterns whose keyspace notifications mean `spec`'s counts may have
/// changed: its key, a leased queue's keys as the queue crate lays them out, or a job
/// framework's keys as it lays them out. None for a source that reads no Redis.
pub fn watched_patterns(spec: &SourceSpec) -> Vec<String> {
    match spec {
        SourceSpec::RedisList(RedisListSpec {
            key: Text::Fixed(key),
        })
        | SourceSpec::RedisStream(RedisStreamSpec {
            stream: Text::Fixed(key),
            ..
        }) => vec![ebb_queue::glob_escaped(key)],
        SourceSpec::EbbQueue(EbbQueueSpec {
            queue: Text::Fixed(queue),
        }) => ebb_queue::key_patterns(queue),
        SourceSpec::Celery(celery) => celery.watched_patterns(),
        SourceSpec::Rq(rq) => rq.watched_patterns(),
        SourceSpec::Dramatiq(dramatiq) => dramatiq.watched_patterns(),
        SourceSpec::Sidekiq(sidekiq) => sidekiq.watched_patterns(),
        SourceSpec::Bullmq(bullmq) => bullmq.watched_patterns(),
        _ => Vec::new(),
    }
}
