//! Reads the queue straight from Redis: waiting and in-flight counts in one atomic call,
//! 0 when the list does not exist (no recording-rule trick needed).

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
        let failed = |error: ebb_queue::Error| Error::Read {
            source_name: self.describe(),
            reason: error.to_string(),
        };
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
