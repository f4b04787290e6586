//! `ebb consumer`: takes items from the queue under a lease, works on them, acknowledges them.
//! At least once: an item leaves Redis only when acknowledged after its work.
//!
//! ```text
//!             ┌─ keeper: heartbeat every lease/3, reaper every lease ──────────────────────┐
//!   Redis ────┤                                                                            │
//!             └─ fetcher: permit ─▶ pop (BLMOVE ≤ 1s, lease/6) ─▶ worker: work, ack + take ─┘
//!                  (concurrency permits)        ▲  (metrics, logs like the dojo)  │ next item
//!                                               │ queue empty: permit back        ◀┘ (same slot)
//!   SIGTERM ─▶ fetcher stops ─▶ workers finish ─▶ leave (unregister) ─▶ HTTP stops ─▶ exit 0
//! ```
//!
//! While items wait, each costs one round trip: the worker's ack takes the next item in the
//! same script (`ConsumerLease::ack_and_take`), and the fetcher's `BLMOVE` waits only on an
//! empty queue. Items that take under a millisecond go in batches (see `work.rs`).
//!
//! Redis down or refusing (a wrong password, OOM…): every loop retries with capped backoff and
//! `/readyz` (and `/healthz`) answers 503 with the reason, in the words of
//! [`ebb_queue::RedisErrorKind`], until a call succeeds again; `/livez` stays 200, since a
//! restart would cure none of it.

mod error;
mod metrics;
mod work;

use std::sync::Arc;
use std::time::Duration;

use ebb_queue::{ConsumerLease, QueueArgs, key_name};
use ebb_runtime::{Backoff, Health, Shutdown, http, parse_duration, parse_positive};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use error::{Error, Result};

use crate::metrics::ConsumerMetrics;

/// How long one pop waits in Redis: also how fast the fetcher notices a shutdown request.
/// The lease waits less when a sixth of it is shorter (see `ConsumerLease::max_pop_wait`).
const POP_WAIT: Duration = Duration::from_secs(1);
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_CAP: Duration = Duration::from_secs(5);

/// `ebb consumer` flags; each also reads the `EBB_…` environment variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Address to serve /livez, /readyz (alias /healthz) and /metrics on (`:8080` = every
    /// interface).
    #[arg(long, env = "EBB_HTTP", default_value = ":8080")]
    pub http: String,

    #[command(flatten)]
    pub http_limits: http::HttpLimits,

    #[command(flatten)]
    pub queue: QueueArgs,

    /// Time spent on each item (Go duration: 1s, 250ms, 0).
    #[arg(long, env = "EBB_PER_MSG", default_value = "1s",
          value_parser = parse_duration, allow_hyphen_values = true)]
    pub per_msg: Duration,

    /// Burn CPU for --per-msg instead of sleeping.
    #[arg(long, env = "EBB_CPU_BURN", default_value_t = false, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub cpu_burn: bool,

    /// Items worked on at the same time.
    #[arg(long, env = "EBB_CONCURRENCY", default_value = "1",
          value_parser = parse_positive::<u32>, allow_hyphen_values = true)]
    pub concurrency: u32,

    /// A consumer silent for this long is presumed dead and its items are redelivered (at
    /// least 30ms).
    #[arg(long, env = "EBB_LEASE", default_value = "10s",
          value_parser = parse_duration, allow_hyphen_values = true)]
    pub lease: Duration,

    /// Unique name of this consumer in Redis: the pod's name in the consumer chart, so that a
    /// restarted container takes back what its predecessor held (default: the host name plus
    /// a random suffix, unique per process).
    #[arg(long, env = "EBB_CONSUMER_ID", value_parser = key_name)]
    pub consumer_id: Option<String>,
}

/// Binds `--http` and consumes until `shutdown`.
pub async fn run(args: Args, shutdown: Shutdown) -> Result<()> {
    let listener = http::bind(&args.http).await?;
    serve(args, listener, shutdown).await
}

/// Consumes until `shutdown`, serving /healthz and /metrics on `listener` meanwhile; returns
/// once the items in hand are finished and this consumer has left the queue.
pub async fn serve(args: Args, listener: TcpListener, shutdown: Shutdown) -> Result<()> {
    if args.lease < ebb_queue::MIN_LEASE {
        return Err(Error::LeaseTooShort(args.lease));
    }
    let consumer_id = args.consumer_id.clone().unwrap_or_else(default_consumer_id);
    let queue = args.queue.queue()?;
    let lease = Arc::new(queue.consumer_lease(&consumer_id, args.lease)?);
    tracing::info!(
        "consumer {consumer_id} taking items from Redis list {:?} at {}",
        queue.name(),
        queue.address()
    );
    let health = Health::new();
    let (metrics, exposition) = ConsumerMetrics::register();
    let (stop_http, http_shutdown) = Shutdown::new();
    let router = http::with_error_fallbacks(http::ops_router(health.clone(), exposition));
    let server = tokio::spawn(http::serve(
        listener,
        router,
        args.http_limits,
        http_shutdown,
    ));
    let (stop_keeper, keeper_shutdown) = Shutdown::new();
    let keeper = tokio::spawn(keep_lease(
        Arc::clone(&lease),
        args.lease,
        health.clone(),
        keeper_shutdown,
    ));

    let worker = work::Worker {
        lease: Arc::clone(&lease),
        per_msg: args.per_msg,
        cpu_burn: args.cpu_burn,
        metrics,
        health: health.clone(),
        shutdown: shutdown.clone(),
    };
    fetch(&worker, args.concurrency, &shutdown).await;

    stop_keeper.trigger();
    let _ = keeper.await;
    match lease.leave().await {
        Ok(reaped) if reaped.items > 0 => {
            tracing::warn!(
                "left the queue, returning {} unacknowledged item(s)",
                reaped.items
            );
        }
        Ok(_) => tracing::info!("left the queue"),
        Err(error) => tracing::warn!(
            "could not leave the queue ({error}); items held will be redelivered once the lease expires"
        ),
    }
    stop_http.trigger();
    server
        .await
        .map_err(|_| Error::Panicked("the HTTP server"))??;
    tracing::info!("Done consuming messages.");
    Ok(())
}

/// Takes items while permits allow, hands each to a worker task, and on shutdown waits for
/// every worker to finish its item.
async fn fetch(worker: &work::Worker, concurrency: u32, shutdown: &Shutdown) {
    let permits = Arc::new(Semaphore::new(concurrency as usize));
    let mut workers = JoinSet::new();
    let mut backoff = Backoff::new(RETRY_FIRST, RETRY_CAP);
    tracing::info!("Starting to consume messages...");
    while !shutdown.is_requested() {
        let permit = tokio::select! {
            _ = shutdown.requested() => break,
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("never closed"),
        };
        // Not raced with shutdown: a pop abandoned mid-flight could still move an item. The
        // lease heartbeats before a pop when due (the first one included, so a crash right
        // after it leaves a reapable trail), and reconciles after a failed one.
        match worker.lease.pop(POP_WAIT).await {
            Ok(Some(delivery)) => {
                worker.health.set_healthy();
                backoff.reset();
                let worker = worker.clone();
                workers.spawn(async move { worker.handle(delivery, permit).await });
            }
            Ok(None) => {
                worker.health.set_healthy();
                backoff.reset();
            }
            Err(error) => {
                worker.health.set_unhealthy(error.to_string());
                pause(backoff.next_delay(), shutdown).await;
            }
        }
        while workers.try_join_next().is_some() {}
    }
    if !workers.is_empty() {
        tracing::info!("finishing {} item(s) in hand", workers.len());
    }
    while workers.join_next().await.is_some() {}
}

/// Heartbeats (a third of the lease, so two can be missed) and reaps dead consumers (every
/// lease: no consumer is ever more than a lease late to be found).
async fn keep_lease(lease: Arc<ConsumerLease>, every: Duration, health: Health, stop: Shutdown) {
    let mut heartbeats = tokio::time::interval(every / 3);
    let mut reaps = tokio::time::interval(every);
    for ticks in [&mut heartbeats, &mut reaps] {
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            _ = stop.requested() => return,
            _ = heartbeats.tick() => {
                if let Err(error) = lease.heartbeat().await {
                    health.set_unhealthy(error.to_string());
                }
            }
            _ = reaps.tick() => match lease.queue().reap().await {
                Ok(reaped) if reaped.consumers > 0 => tracing::warn!(
                    "reaped {} dead consumer(s): {} item(s) back at the head of the queue",
                    reaped.consumers, reaped.items
                ),
                Ok(_) => {}
                Err(error) => health.set_unhealthy(error.to_string()),
            },
        }
    }
}

/// Sleeps, unless shutdown comes first.
async fn pause(delay: Duration, shutdown: &Shutdown) {
    tokio::select! {
        _ = shutdown.requested() => {}
        _ = tokio::time::sleep(delay) => {}
    }
}

/// `<hostname>-<8 random hex>`, unique per process: outside the chart nothing names the
/// consumer, and on the host network the host name is the node's, shared by every pod on it.
fn default_consumer_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|host| !host.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|host| host.trim().to_owned())
        })
        .unwrap_or_else(|| "consumer".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..8])
}
