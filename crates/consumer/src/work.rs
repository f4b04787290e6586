//! One item's life in a consumer: log, measure, work, acknowledge.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ebb_queue::{ConsumerLease, Delivery, unix_ms_now};
use ebb_runtime::{Backoff, Health, Shutdown};
use tokio::sync::OwnedSemaphorePermit;

use crate::metrics::ConsumerMetrics;
use crate::{RETRY_CAP, RETRY_FIRST};

/// Acknowledgement attempts after shutdown was requested, before leaving the item to the
/// reaper (it is then redelivered: a duplicate, never a loss).
const ACK_ATTEMPTS_WHILE_STOPPING: u32 = 5;

#[derive(Clone)]
pub(crate) struct Worker {
    pub(crate) lease: Arc<ConsumerLease>,
    pub(crate) per_msg: Duration,
    pub(crate) cpu_burn: bool,
    pub(crate) metrics: ConsumerMetrics,
    pub(crate) health: Health,
    pub(crate) shutdown: Shutdown,
}

impl Worker {
    /// Works on one item. `permit` is a concurrency slot, released once the work is done:
    /// the acknowledgement then overlaps the next pop instead of adding a round trip to it.
    pub(crate) async fn handle(&self, delivery: Delivery, permit: OwnedSemaphorePermit) {
        let started = Instant::now();
        let item = &delivery.item;
        if let Some(enqueued_at_ms) = item.enqueued_at_ms {
            let waited_ms = unix_ms_now().saturating_sub(enqueued_at_ms);
            self.metrics
                .queue_latency
                .observe(waited_ms as f64 / 1000.0);
        }
        let id = item.id.as_deref().unwrap_or("-");
        tracing::info!(id, "Received a message: {:?}.", item.payload);
        tracing::info!(id, "Processing message...");
        self.work().await;
        // Logged before the slot is released: the next item's "Received" line must follow
        // this one, as the dojo's consumer shows them, even though its pop overlaps our ack.
        tracing::info!(id, "Message processed.");
        drop(permit);
        if self.ack(&delivery).await {
            self.metrics.consumed.inc();
            self.metrics
                .processing
                .observe(started.elapsed().as_secs_f64());
        }
    }

    async fn work(&self) {
        if self.per_msg.is_zero() {
            return;
        }
        if self.cpu_burn {
            let per_msg = self.per_msg;
            let _ = tokio::task::spawn_blocking(move || burn_cpu(per_msg)).await;
        } else {
            tokio::time::sleep(self.per_msg).await;
        }
    }

    /// Retries until Redis takes the ack; true when the item was still ours.
    async fn ack(&self, delivery: &Delivery) -> bool {
        let mut backoff = Backoff::new(RETRY_FIRST, RETRY_CAP);
        let mut attempts_while_stopping = 0;
        loop {
            match self.lease.ack(delivery).await {
                Ok(true) => return true,
                Ok(false) => {
                    tracing::warn!(
                        id = delivery.item.id.as_deref().unwrap_or("-"),
                        "processed, but the lease had expired: the item was requeued and will be processed again"
                    );
                    return false;
                }
                Err(error) => {
                    self.health.set_unhealthy(error.to_string());
                    if self.shutdown.is_requested() {
                        attempts_while_stopping += 1;
                        if attempts_while_stopping >= ACK_ATTEMPTS_WHILE_STOPPING {
                            tracing::warn!(
                                "giving up acknowledging ({error}): the item will be redelivered"
                            );
                            self.lease.release(delivery);
                            return false;
                        }
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
}

/// Keeps one core busy for `duration`, like a CPU-bound job would.
fn burn_cpu(duration: Duration) {
    let deadline = Instant::now() + duration;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    while Instant::now() < deadline {
        for _ in 0..10_000 {
            state = state.rotate_left(5) ^ state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        }
        std::hint::black_box(state);
    }
}
