//! One worker slot's life in a consumer: log, measure, work, acknowledge, and while items wait,
//! take the next ones in the same round trip as the acks (`ConsumerLease::ack_and_take`), so a
//! busy consumer costs Redis one script per item, and fewer when items take under a
//! millisecond: it then takes as many as fit in one (`ebb_queue::batch_to_take`), judged by
//! the last batch. The fetcher's `BLMOVE` is only for an empty queue, a consumer found
//! unregistered or draining, and the first item.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ebb_queue::{ConsumerLease, Delivery, Next, batch_to_take, unix_ms_now};
use ebb_runtime::{Backoff, Health, Shutdown};
use tokio::sync::OwnedSemaphorePermit;

use crate::metrics::ConsumerMetrics;
use crate::{RETRY_CAP, RETRY_FIRST};

/// Acknowledgement attempts after shutdown was requested, before leaving the item to the
/// reaper (it is then redelivered: a duplicate, never a loss).
const ACK_ATTEMPTS_WHILE_STOPPING: u32 = 5;

/// How long an item of a batch may run before the batch's items not yet started go back to
/// the queue: a batch is taken for items of well under a millisecond (`ebb_queue::BATCH_WORK`),
/// and one that turns out long must not keep the rest from other consumers.
const GIVE_BACK_AFTER: Duration = Duration::from_millis(5);

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
        self.work_through(vec![first], permit).await;
    }

    /// Works on `batch`, then on every batch its acknowledgement takes (see [`handle`]).
    async fn work_through(&self, mut batch: Vec<Delivery>, permit: OwnedSemaphorePermit) {
        while !batch.is_empty() {
            let started = Instant::now();
            let mut started_at = Vec::with_capacity(batch.len());
            let mut index = 0;
            while index < batch.len() {
                started_at.push(Instant::now());
                let mut rest = batch.split_off(index + 1);
                if rest.is_empty() {
                    self.work_on(&batch[index]).await;
                } else {
                    let work = self.work_on(&batch[index]);
                    tokio::pin!(work);
                    tokio::select! {
                        () = &mut work => {}
                        () = tokio::time::sleep(GIVE_BACK_AFTER) => {
                            // Not a short item after all: the others must not wait behind it.
                            self.give_back(std::mem::take(&mut rest)).await;
                            work.await;
                        }
                    }
                }
                batch.append(&mut rest);
                index += 1;
                if index < batch.len() && self.shutdown.is_requested() {
                    self.give_back(batch.split_off(index)).await;
                }
            }
            let per_item = started.elapsed() / u32::try_from(batch.len()).unwrap_or(u32::MAX);
            // A consumer asked to stop takes nothing new.
            let (acked, next) = if self.shutdown.is_requested() {
                let mut acked = Vec::with_capacity(batch.len());
                for delivery in &batch {
                    acked.push(self.ack(delivery).await);
                }
                (acked, Vec::new())
            } else {
                self.ack_and_take(&batch, batch_to_take(per_item)).await
            };
            for (was_acked, item_started) in acked.into_iter().zip(started_at) {
                if was_acked {
                    self.metrics.consumed.inc();
                    self.metrics
                        .processing
                        .observe(item_started.elapsed().as_secs_f64());
                }
            }
            batch = next;
        }
        drop(permit);
    }

    /// Returns items taken in a batch and not started to the head of the queue, in their order,
    /// for any consumer to take. Should that fail, they are released all the same: the next
    /// pop's reconciliation returns them, or the reaper if this consumer dies.
    async fn give_back(&self, untouched: Vec<Delivery>) {
        for delivery in &untouched {
            self.lease.release(delivery);
        }
        if let Err(error) = self.lease.reconcile().await {
            tracing::warn!(
                "could not give back {} item(s) of a batch yet ({error}): the next pop will",
                untouched.len()
            );
        }
    }

    /// Logs, measures and works on one item, like the dojo's consumer.
    async fn work_on(&self, delivery: &Delivery) {
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
    }

    /// Acknowledges `finished` and takes up to `take` next items in one round trip; on an
    /// error, falls back to [`Worker::ack`]'s retries for each (the outcome of the failed
    /// script is unknown: the lease reconciles any item it may have moved) and takes nothing.
    async fn ack_and_take(&self, finished: &[Delivery], take: usize) -> (Vec<bool>, Vec<Delivery>) {
        match self.lease.ack_and_take(finished, take).await {
            Ok(answer) => {
                for (delivery, acked) in finished.iter().zip(&answer.acked) {
                    if !acked {
                        expired(delivery);
                    }
                }
                let next = match answer.next {
                    Next::Items(next) => next,
                    Next::Empty | Next::NotRegistered | Next::Draining => Vec::new(),
                };
                (answer.acked, next)
            }
            Err(error) => {
                self.health.set_unhealthy(error.to_string());
                let mut acked = Vec::with_capacity(finished.len());
                for delivery in finished {
                    acked.push(self.ack(delivery).await);
                }
                (acked, Vec::new())
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ebb_queue::{Item, Next, Queue, RedisAddress};
    use ebb_runtime::{Health, Shutdown};
    use ebb_testkit::poll;
    use ebb_testkit::redis::RedisServer;

    use super::*;

    /// A batch is taken for short items; when one of them runs long, the items not started go
    /// back to the head of the queue within `GIVE_BACK_AFTER`, in their order, for others to
    /// take, and each item is still completed exactly once.
    #[tokio::test]
    async fn a_batch_whose_item_runs_long_gives_the_rest_back_at_once() {
        let redis = RedisServer::start();
        let address: RedisAddress = redis.address().parse().unwrap();
        let queue = Queue::new(&address, "padok").unwrap();
        let items: Vec<String> = (0..5).map(|n| Item::new(format!("{n}")).encode()).collect();
        queue.push(&items).await.unwrap();
        let lease = Arc::new(queue.consumer_lease("c1", Duration::from_secs(10)).unwrap());
        let first = lease
            .pop(Duration::from_millis(100))
            .await
            .unwrap()
            .unwrap();
        let answer = lease.ack_and_take(&[first], 3).await.unwrap();
        let Next::Items(batch) = answer.next else {
            panic!("took {:?}", answer.next)
        };
        assert_eq!(batch.len(), 3);

        let (metrics, _registry) = ConsumerMetrics::register();
        let (_stop, shutdown) = Shutdown::new();
        let worker = Worker {
            lease: Arc::clone(&lease),
            per_msg: Duration::from_millis(300),
            cpu_burn: false,
            metrics,
            health: Health::new(),
            shutdown,
        };
        let permit = Arc::new(tokio::sync::Semaphore::new(1))
            .acquire_owned()
            .await
            .unwrap();
        let working = tokio::spawn(async move { worker.work_through(batch, permit).await });
        // Well before the first item of the batch is done, the two behind it are back.
        let given_back = items[2..].join("\n");
        poll::until(
            "the batch's rest given back",
            Duration::from_millis(200),
            || {
                let (redis, given_back) = (&redis, &given_back);
                async move { redis.cli(&["LRANGE", "padok", "0", "-1"]) == *given_back }
            },
        )
        .await
        .unwrap();
        assert_eq!(redis.cli(&["LLEN", "{padok}:processing:c1"]), "1");
        working.await.unwrap();
        // The worker went on with them one by one (300 ms items are not short).
        assert_eq!(queue.completed().await.unwrap(), 5);
        assert_eq!(
            queue.lengths().await.unwrap(),
            ebb_queue::Lengths::default()
        );
    }
}
