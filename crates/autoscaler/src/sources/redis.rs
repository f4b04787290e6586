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
        let lengths = self.queue.lengths().await.map_err(|error| Error::Read {
            source_name: self.describe(),
            reason: error.to_string(),
        })?;
        Ok(Reading {
            waiting: lengths.waiting,
            in_flight: lengths.in_flight,
            completed_total: None,
        })
    }
}
