//! The length of a plain Redis list (`LLEN`), 0 when the key does not exist: the dojo's
//! `redis_items_in_queue` without the exporter, the scrape and the recording rule.
//!
//! A plain list has no leases, so nothing is in flight as far as Redis can tell, nothing is
//! reaped and no completion is counted: whoever pops an item owns it alone.

use ebb_queue::RedisReader;

use crate::{Error, MetricSource, Reading, Result};

pub struct RedisListSource {
    redis: RedisReader,
    key: String,
}

impl RedisListSource {
    pub fn new(redis: RedisReader, key: impl Into<String>) -> Self {
        RedisListSource {
            redis,
            key: key.into(),
        }
    }
}

impl MetricSource for RedisListSource {
    fn describe(&self) -> String {
        format!("redis {} list {}", self.redis.address(), self.key)
    }

    async fn read(&self) -> Result<Reading> {
        let waiting = self
            .redis
            .list_length(&self.key)
            .await
            .map_err(|source| Error::Redis {
                source_name: format!("list {}", self.key),
                source,
            })?;
        Ok(Reading {
            waiting,
            in_flight: 0,
            completed_total: None,
        })
    }
}
