//! The poller: every interval, every probe of the cache read concurrently (all Redis probes
//! through one `RedisReader`, so one interval's reads travel together in one pipelined round
//! trip), and a new probe's first read as soon as a request asks for it. A probe still being
//! read when its next turn comes is skipped for that turn.

use std::sync::Arc;
use std::time::Duration;

use ebb_runtime::Shutdown;
use futures::future::join_all;

use ebb_sources::MetricSource;

use crate::cache::Cache;

pub async fn run(cache: Arc<Cache>, interval: Duration, shutdown: Shutdown) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let only_new = tokio::select! {
            _ = ticks.tick() => false,
            () = cache.new_probe.notified() => true,
            () = shutdown.requested() => return,
        };
        poll(&cache, only_new).await;
    }
}

/// One round: the due probes' reads started, never awaited here, so that a slow source
/// (a frozen Redis, a Prometheus taking its 5 s timeout) delays only its own probes. The
/// Redis probes go together, in one task, so that the shared reader sends them in one
/// pipeline; each PromQL query in a task of its own.
pub async fn poll(cache: &Arc<Cache>, only_new: bool) {
    let due = cache.due(only_new);
    cache
        .metrics
        .cache_age
        .set(cache.oldest_age().as_secs_f64());
    if due.is_empty() {
        return;
    }
    cache.metrics.polls.inc();
    let (redis, prometheus): (Vec<_>, Vec<_>) =
        due.into_iter().partition(|(probe, _)| probe.reads_redis());
    for (probe, entry) in prometheus {
        let cache = cache.clone();
        tokio::spawn(async move {
            let result = entry.source.measure().await;
            cache.record(&probe, &entry, result);
        });
    }
    if redis.is_empty() {
        return;
    }
    let cache = cache.clone();
    tokio::spawn(async move {
        join_all(redis.iter().map(|(probe, entry)| async {
            let result = entry.source.measure().await;
            cache.record(probe, entry, result);
        }))
        .await;
        let round_trips = cache.redis_round_trips();
        let counted = cache.metrics.redis_round_trips.get();
        cache
            .metrics
            .redis_round_trips
            .inc_by(round_trips.saturating_sub(counted));
    });
}
