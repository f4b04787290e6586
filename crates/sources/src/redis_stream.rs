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
//! In flight per consumer ([`Reading::leases`]): every consumer of the group (`XINFO
//! CONSUMERS`) with its pending entries, and when its oldest lease began: now less the largest
//! idle time of its pending entries (`XPENDING`; the time since each was last delivered, which
//! a claim resets, as it starts a new lease). Read in the same script as the counts: one
//! command per stream per tick, however many consumers.
//!
//! No completion counter: the group's `entries-read` counts deliveries, not acknowledgements,
//! Redis documents it as a heuristic ("logical") counter, and `XGROUP SETID` rewrites it, so its
//! differences are no service rate.

use std::time::SystemTime;

use ebb_queue::{RedisReader, StreamGroup};

use crate::catalogue::{fixed, redis};
use crate::template::verbatim;
use crate::{Count, Error, Kind, Lease, MetricSource, Reading, Redis, Result, Text};

/// A stream consumer group's backlog: `redisStream` in a QueueScaler and in the metrics API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RedisStreamSpec {
    /// The stream's key.
    pub stream: Text,
    /// The consumer group whose backlog counts.
    pub group: String,
}

impl Kind for RedisStreamSpec {
    const KIND: &'static str = "redisStream";
    const REDIS_KEY: Option<&'static str> = Some("stream");
    const FIELDS: &'static [&'static str] = &["group"];
    const COUNTS: &'static [(&'static str, Count)] =
        &[
            ("lag", Count::Waiting),
            ("pending", Count::InFlight),
            ("total", Count::Total),
        ];
    type Source = RedisStreamSource;

    fn check(&self, field: &str) -> Result<()> {
        if self.group.is_empty() {
            return Err(Error::Invalid {
                field: format!("{field}.group"),
                reason: "the group is empty".to_owned(),
            });
        }
        Ok(())
    }

    fn resolve(&self, fields: &[(&str, &str)]) -> Self {
        RedisStreamSpec {
            stream: self.stream.resolve(fields, verbatim),
            group: self.group.clone(),
        }
    }

    fn build(&self, redis_at: Option<&Redis>) -> Result<RedisStreamSource> {
        let stream = fixed(&self.stream, Self::KIND, "stream")?;
        Ok(RedisStreamSource::new(
            redis(redis_at, Self::KIND)?.reader.clone(),
            stream,
            &self.group,
        ))
    }
}

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
        let (answer, holders) = self
            .redis
            .stream_group_holders(&self.stream, &self.group)
            .await
            .map_err(|source| Error::Redis {
                source_name: format!("stream {} group {}", self.stream, self.group),
                source,
            })?;
        match answer {
            StreamGroup::MissingStream => Ok(Reading::counts(0, 0)),
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
                let now = SystemTime::now();
                let leases = holders
                    .into_iter()
                    .map(|holder| Lease {
                        since: holder
                            .oldest_idle
                            .filter(|_| holder.pending > 0)
                            .map(|idle| now.checked_sub(idle).unwrap_or(now)),
                        consumer: holder.consumer,
                        leased: holder.pending,
                    })
                    .collect();
                Ok(Reading {
                    leases,
                    ..Reading::counts(backlog.undelivered, backlog.pending)
                })
            }
        }
    }
}
