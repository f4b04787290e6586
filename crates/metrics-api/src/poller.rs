//! The poller: every interval, every probe of the cache read concurrently (all Redis probes
//! through one `RedisReader`, so one interval's reads travel together on one connection), and
//! a new probe's first read as soon as a request asks for it.

use std::sync::Arc;
use std::time::Duration;

use ebb_runtime::Shutdown;
use futures::future::join_all;

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

/// One round: the due probes read at once.
pub async fn poll(cache: &Cache, only_new: bool) {
    let due = cache.due(only_new);
    if due.is_empty() {
        return;
    }
    cache.metrics.polls.inc();
    join_all(due.iter().map(|(probe, entry)| async move {
        let result = entry.source.read().await;
        cache.record(probe, entry, result);
    }))
    .await;
    cache
        .metrics
        .cache_age
        .set(cache.oldest_age().as_secs_f64());
    let round_trips = cache.redis_round_trips();
    let counted = cache.metrics.redis_round_trips.get();
    cache
        .metrics
        .redis_round_trips
        .inc_by(round_trips.saturating_sub(counted));
}
