//! `ebb producer`: HTTP in, queue items out. Dojo-compatible endpoints, flags and answers.
//!
//! ```text
//!   POST /publish          ─┐  validate ──────▶ encode items ─▶ commit: push + count in a task
//!   POST /publish/{count}  ─┘   │ 400 bad count                  │ (small batches grouped)
//!                               │ 413 body > --max-body-bytes    │ 503 Redis unreachable,
//!                               │                                │     refusing (the line names
//!                               │                                │     the kind) or silent
//!                               │ 413 count × encoded item > --max-batch-bytes
//!                               │ 429 --max-in-flight-bytes held by publishes in flight
//!   GET  /readyz   ◀── Health ◀── push results + Redis probe every second (1 s timeout)
//!   GET  /livez    ◀── 200 while the process serves (/healthz: an alias of /readyz)
//!   GET  /metrics  ◀── producer_messages_published_total, producer_request_duration_seconds
//! ```
//!
//! Each item is an [`ebb_queue::Item`] envelope (id + enqueue time) around the request body,
//! or around the dojo's `From Padok, with love 💜` when the body is empty. The limits are
//! checked before any item is built, so a refused request costs no memory and pushes nothing;
//! the in-flight budget (`budget.rs`) bounds what all requests hold together.

mod budget;
mod commit;
mod error;
mod metrics;
mod publish;

use std::time::Duration;

use ebb_queue::{Queue, QueueArgs};
use ebb_runtime::{Health, Shutdown, http, parse_bytes, parse_positive};
use tokio::net::TcpListener;

pub use error::{Error, Result};

/// How often Redis is probed so `/healthz` recovers without waiting for a publish.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// `ebb producer` flags; each also reads the `EBB_…` environment variable.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// Address to serve the publish API, /healthz and /metrics on (`:8080` = every interface).
    #[arg(long, env = "EBB_HTTP", default_value = ":8080")]
    pub http: String,

    #[command(flatten)]
    pub http_limits: http::HttpLimits,

    #[command(flatten)]
    pub queue: QueueArgs,

    /// Largest count accepted by POST /publish/{count}.
    #[arg(long, env = "EBB_MAX_BATCH", default_value = "1000000",
          value_parser = parse_positive::<u64>, allow_hyphen_values = true)]
    pub max_batch: u64,

    /// Largest batch in encoded bytes, what goes to Redis (count × the item's envelope: id,
    /// time and JSON-escaped body, about 90 bytes for a 1-byte body), checked before building
    /// items. Bytes, or with KiB, MiB, GiB.
    #[arg(long, env = "EBB_MAX_BATCH_BYTES", default_value = "16MiB",
          value_parser = parse_bytes, allow_hyphen_values = true)]
    pub max_batch_bytes: u64,

    /// Memory all publishes in flight may hold together: bodies being read and batches being
    /// pushed (about 5 × their encoded bytes + 72 bytes per item). A publish that finds too
    /// little left is answered 429 at once; one that could never fit, 413. Bytes, or with
    /// KiB, MiB, GiB.
    #[arg(long, env = "EBB_MAX_IN_FLIGHT_BYTES", default_value = "96MiB",
          value_parser = parse_bytes, allow_hyphen_values = true)]
    pub max_in_flight_bytes: u64,

    /// Largest request body (the payload of each item). Bytes, or with KiB, MiB, GiB.
    #[arg(long, env = "EBB_MAX_BODY_BYTES", default_value = "2MiB",
          value_parser = parse_bytes, allow_hyphen_values = true)]
    pub max_body_bytes: u64,
}

/// Binds `--http` and serves until `shutdown`.
pub async fn run(args: Args, shutdown: Shutdown) -> Result<()> {
    let listener = http::bind(&args.http).await?;
    serve(args, listener, shutdown).await
}

/// Serves on an already bound listener (tests bind `127.0.0.1:0`) until `shutdown`.
pub async fn serve(args: Args, listener: TcpListener, shutdown: Shutdown) -> Result<()> {
    let queue = args.queue.queue()?;
    tracing::info!(
        "publishing to Redis list {:?} at {}",
        queue.name(),
        queue.address()
    );
    let health = Health::new();
    let probe = tokio::spawn(probe_redis(queue.clone(), health.clone(), shutdown.clone()));
    let limits = publish::Limits {
        max_batch: args.max_batch,
        max_batch_bytes: args.max_batch_bytes,
        max_body_bytes: args.max_body_bytes,
    };
    let budget = budget::Budget::new(args.max_in_flight_bytes);
    let router = publish::router(queue, health, limits, budget);
    let served = http::serve(listener, router, args.http_limits, shutdown).await;
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
