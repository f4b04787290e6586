//! A Redis stream consumer group: waiting = entries the group has not delivered yet (its lag),
//! in flight = entries delivered and not acknowledged (its pending entries list).
//!
//! The lag comes from `XINFO GROUPS` (Redis 7 or later), in one atomic call with the pending
//! count. When Redis cannot compute it (entries the group has not read were removed with
//! `XDEL`), the entries after the group's last delivered id are counted page by page with
//! `XRANGE`: exact but proportional to the backlog, and logged at debug level each time.
//!
//! A missing stream holds no work (0 and 0); a missing group is an error, never 0.
//!
//! No completion counter: the group's `entries-read` counts deliveries, not acknowledgements,
//! Redis documents it as a heuristic ("logical") counter, and `XGROUP SETID` rewrites it, so its
//! differences are no service rate.

use ebb_queue::{RedisReader, StreamGroup};

use crate::{Error, MetricSource, Reading, Result};

pub struct RedisStreamSource {
    redis: RedisReader,
    stream: String,
    group: String,
}

impl RedisStreamSource {
    pub fn new(redis: RedisReader, stream: impl Into<String>, group: impl Into<String>) -> Self {
        RedisStreamSource {
            redis,
            stream: stream.into(),
            group: group.into(),
        }
    }
}

impl MetricSource for RedisStreamSource {
    fn describe(&self) -> String {
        format!(
            "redis {} stream {} group {}",
            self.redis.address(),
            self.stream,
            self.group
        )
    }

    async fn read(&self) -> Result<Reading> {
        let answer = self
            .redis
            .stream_group(&self.stream, &self.group)
            .await
            .map_err(|source| Error::Redis {
                source_name: format!("stream {} group {}", self.stream, self.group),
                source,
            })?;
        match answer {
            StreamGroup::MissingStream => Ok(Reading::default()),
            StreamGroup::MissingGroup => Err(Error::MissingStreamGroup {
                address: self.redis.address().to_string(),
                stream: self.stream.clone(),
                group: self.group.clone(),
            }),
            StreamGroup::Found(backlog) => {
                if backlog.counted {
                    tracing::debug!(
                        "{}: Redis gave no lag, {} undelivered entries counted with XRANGE",
                        self.describe(),
                        backlog.undelivered
                    );
                }
                Ok(Reading {
                    waiting: backlog.undelivered,
                    in_flight: backlog.pending,
                    completed_total: None,
                })
            }
        }
    }
}
