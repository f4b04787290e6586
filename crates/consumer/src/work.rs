//! One worker slot's life in a consumer: log, measure, work, acknowledge, and while items wait,
//! take the next one in the same round trip as the ack (`ConsumerLease::ack_and_take`), so a
//! busy consumer costs Redis one script per item. The fetcher's `BLMOVE` is only for an empty
//! queue, a consumer found unregistered or draining, and the first item.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ebb_queue::{ConsumerLease, Delivery, Next, unix_ms_now};
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
    /// Works on `first`, then on every item its acknowledgement takes, while the queue has
    /// some and no shutdown is requested. `permit` is the concurrency slot, held throughout
    /// and released when the slot goes back to the fetcher.
    pub(crate) async fn handle(&self, first: Delivery, permit: OwnedSemaphorePermit) {
        let mut next = Some(first);
        while let Some(delivery) = next.take() {
            next = self.handle_one(&delivery).await;
        }
        drop(permit);
    }

    /// Works on one item and acknowledges it; returns the next item when the ack took one.
    async fn handle_one(&self, delivery: &Delivery) -> Option<Delivery> {
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
        tracing::info!(id, "Message processed.");
        // A consumer asked to stop takes nothing new.
        let (acked, next) = if self.shutdown.is_requested() {
            (self.ack(delivery).await, None)
        } else {
            self.ack_and_take(delivery).await
        };
        if acked {
            self.metrics.consumed.inc();
            self.metrics
                .processing
                .observe(started.elapsed().as_secs_f64());
        }
        next
    }

    /// Acknowledges and takes the next item in one round trip; on an error, falls back to
    /// [`Worker::ack`]'s retries (the outcome of the failed script is unknown: the lease
    /// reconciles any item it may have moved) and takes nothing.
    async fn ack_and_take(&self, delivery: &Delivery) -> (bool, Option<Delivery>) {
        match self.lease.ack_and_take(delivery).await {
            Ok(answer) => {
                if !answer.acked {
                    expired(delivery);
                }
                let next = match answer.next {
                    Next::Item(next) => Some(next),
                    Next::Empty | Next::NotRegistered | Next::Draining => None,
                };
                (answer.acked, next)
            }
            Err(error) => {
                self.health.set_unhealthy(error.to_string());
                (self.ack(delivery).await, None)
            }
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
                    expired(delivery);
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

/// Says that `delivery`'s ack found it gone: a reaper requeued it.
fn expired(delivery: &Delivery) {
    tracing::warn!(
        id = delivery.item.id.as_deref().unwrap_or("-"),
        "processed, but the lease had expired: the item was requeued and will be processed again"
    );
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
