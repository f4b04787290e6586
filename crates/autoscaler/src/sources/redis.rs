//! Reads the queue straight from Redis: waiting and in-flight counts in one atomic call,
//! 0 when the list does not exist (no recording-rule trick needed).
//!
//! Each read first runs the reaper: consumers reap each other, but at 0 replicas nobody is
//! left to return a dead consumer's items, which would then count as in flight forever.

use ebb_queue::Queue;

use crate::{Error, MetricSource, Reading, Result};

pub struct RedisSource {
    queue: Queue,
}

impl RedisSource {
    pub fn new(queue: Queue) -> Self {
        RedisSource { queue }
    }
}

impl MetricSource for RedisSource {
    fn describe(&self) -> String {
        format!("redis {} list {}", self.queue.address(), self.queue.name())
    }

    async fn read(&self) -> Result<Reading> {
        // Every queue error already names Redis and its address: saying them again in
        // front would print the address twice in one line.
        let failed = |source| Error::Redis {
            source_name: format!("queue {}", self.queue.name()),
            source,
        };
        let reaped = self.queue.reap().await.map_err(failed)?;
        if reaped.items > 0 {
            tracing::info!(
                "{} items of {} dead consumers back in the queue",
                reaped.items,
                reaped.consumers
            );
        }
        // Two round trips on one connection, not atomic: an ack in between moves one item
        // from the backlog to the counter for one reading, which the rate window absorbs.
        let (lengths, completed) =
            tokio::try_join!(self.queue.lengths(), self.queue.completed()).map_err(failed)?;
        Ok(Reading {
            waiting: lengths.waiting,
            in_flight: lengths.in_flight,
            completed_total: Some(completed),
        })
    }
}
