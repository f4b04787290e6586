//! The length of a plain Redis list (`LLEN`), 0 when the key does not exist: the dojo's
//! `redis_items_in_queue` without the exporter, the scrape and the recording rule.
//!
//! A plain list has no leases, so nothing is in flight as far as Redis can tell, nothing is
//! reaped and no completion is counted: whoever pops an item owns it alone.

use ebb_queue::RedisReader;

use crate::catalogue::{fixed, redis};
use crate::template::verbatim;
use crate::{Count, Error, Kind, MetricSource, Reading, Redis, Result, Text};

/// A list's length: `redisList` in a QueueScaler and in the metrics API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RedisListSpec {
    /// The list's key.
    pub key: Text,
}

impl Kind for RedisListSpec {
    const KIND: &'static str = "redisList";
    const REDIS_KEY: Option<&'static str> = Some("key");
    const FIELDS: &'static [&'static str] = &[];
    const COUNTS: &'static [(&'static str, Count)] = &[("waiting", Count::Waiting)];
    type Source = RedisListSource;

    fn check(&self, _field: &str) -> Result<()> {
        Ok(())
    }

    fn resolve(&self, fields: &[(&str, &str)]) -> Self {
        RedisListSpec {
            key: self.key.resolve(fields, verbatim),
        }
    }

    fn build(&self, redis_at: Option<&Redis>) -> Result<RedisListSource> {
        let key = fixed(&self.key, Self::KIND, "key")?;
        Ok(RedisListSource::new(
            redis(redis_at, Self::KIND)?.reader.clone(),
            key,
        ))
    }
}

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
        // Whoever popped an item owns it alone: nothing in flight Redis could count.
        Ok(Reading::waiting(waiting))
    }
}
