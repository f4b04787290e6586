//! `ebb producer`: HTTP in, queue items out. Dojo-compatible endpoints, flags and answers.
//!
//! ```text
//!   POST /publish          ─┐  validate ─▶ encode items ─▶ Queue::push (one MULTI/EXEC)
//!   POST /publish/{count}  ─┘        │ 400 bad count          │ 503 Redis unreachable
//!   GET  /healthz  ◀── Health ◀── push results + Redis probe every second
//!   GET  /metrics  ◀── producer_messages_published_total, producer_request_duration_seconds
//! ```
//!
//! Each item is an [`ebb_queue::Item`] envelope (id + enqueue time) around the request body,
//! or around the dojo's `From Padok, with love 💜` when the body is empty.

mod error;
mod metrics;
mod publish;

use std::time::Duration;

use ebb_queue::{Queue, RedisAddress};
use ebb_runtime::{Health, Shutdown, http};
use tokio::net::TcpListener;

pub use error::{Error, Result};

/// How often Redis is probed so `/healthz` recovers without waiting for a publish.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// `ebb producer` flags; each also reads the `EBB_…` environment variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Address to listen for requests on (`:8080` = every interface).
    #[arg(long, env = "EBB_HTTP", default_value = ":8080")]
    pub http: String,

    /// Redis server to publish to: host:port, redis://[:password@]host:port[/db] or rediss://….
    #[arg(long, env = "EBB_REDIS_SERVER", default_value = "redis-master:6379")]
    pub redis_server: RedisAddress,

    /// Redis list to publish to.
    #[arg(long, env = "EBB_REDIS_QUEUE", default_value = "padok")]
    pub redis_queue: String,

    /// Largest count accepted by POST /publish/{count}.
    #[arg(long, env = "EBB_MAX_BATCH", default_value_t = 1_000_000)]
    pub max_batch: u64,
}

/// Binds `--http` and serves until `shutdown`.
pub async fn run(args: Args, shutdown: Shutdown) -> Result<()> {
    let listener = http::bind(&args.http).await?;
    serve(args, listener, shutdown).await
}

/// Serves on an already bound listener (tests bind `127.0.0.1:0`) until `shutdown`.
pub async fn serve(args: Args, listener: TcpListener, shutdown: Shutdown) -> Result<()> {
    let queue = Queue::new(&args.redis_server, &args.redis_queue)?;
    tracing::info!(
        "publishing to Redis list {:?} at {}",
        queue.name(),
        queue.address()
    );
    let health = Health::new();
    let probe = tokio::spawn(probe_redis(queue.clone(), health.clone(), shutdown.clone()));
    let router = publish::router(queue, health, args.max_batch);
    let served = http::serve(listener, router, shutdown).await;
    probe.abort();
    Ok(served?)
}

/// Keeps `/healthz` truthful when nobody publishes: Redis going away, or coming back.
async fn probe_redis(queue: Queue, health: Health, shutdown: Shutdown) {
    let mut ticks = tokio::time::interval(PROBE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.requested() => return,
            _ = ticks.tick() => {}
        }
        match queue.ping().await {
            Ok(()) => health.set_healthy(),
            Err(error) => health.set_unhealthy(error.to_string()),
        }
    }
}
