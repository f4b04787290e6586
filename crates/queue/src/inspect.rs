//! Read-only views of plain Redis data that other tools fill: a list's length, a stream consumer
//! group's backlog. The scalers read them with the same address handling (password, TLS with a
//! private CA) and the same time bounds as the queue itself.
//!
//! Missing keys are not errors: a list or stream nobody wrote to yet holds no work. A missing
//! consumer group is reported as such ([`StreamGroup::MissingGroup`]), since it is far more
//! likely a typo than an idle group, and a typo must not read as "nothing to do".

use std::collections::HashMap;
use std::time::Duration;

use crate::connection::Connection;
use crate::{COMMAND_TIMEOUT, Error, RedisAddress, Result};

/// Entries fetched per `XRANGE` page when the backlog has to be counted by hand.
const COUNT_PAGE: usize = 1_000;
/// The connection's own limit, a backstop behind [`COMMAND_TIMEOUT`] on every call.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// `XLEN` and `XINFO GROUPS` at one instant, and "no such stream" as an empty answer rather than
/// the error `XINFO` gives. One key, so it runs on Redis Cluster as well.
const STREAM_GROUPS: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return {redis.call('XLEN', KEYS[1]), redis.call('XINFO', 'GROUPS', KEYS[1])}
";

/// A read-only handle on one Redis server. Cheap to clone; clones share one multiplexed,
/// self-reconnecting connection. Every call waits at most [`COMMAND_TIMEOUT`] per round trip.
#[derive(Clone)]
pub struct RedisReader {
    address: RedisAddress,
    connection: Connection,
    stream_groups: redis::Script,
}

/// A consumer group's backlog, as seen by [`RedisReader::stream_group`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamGroup {
    /// The stream does not exist: nothing was ever added, or it was deleted.
    MissingStream,
    /// The stream exists without this group.
    MissingGroup,
    Found(GroupBacklog),
}

/// Entries of a stream a consumer group has still to deliver, and entries it delivered that are
/// not acknowledged yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBacklog {
    /// Entries not yet delivered to any consumer of the group.
    pub undelivered: u64,
    /// Entries delivered and not acknowledged (the group's pending entries list).
    pub pending: u64,
    /// Whether `undelivered` had to be counted entry by entry because Redis could not give the
    /// group's lag (see [`RedisReader::stream_group`]).
    pub counted: bool,
}

impl RedisReader {
    /// A reader of the server at `address`. Does not touch the network: each call reports its
    /// own error while Redis is down, and the connection comes back by itself.
    pub fn new(address: &RedisAddress) -> Result<RedisReader> {
        Ok(RedisReader {
            address: address.clone(),
            connection: address.connection(RESPONSE_TIMEOUT)?,
            stream_groups: redis::Script::new(STREAM_GROUPS),
        })
    }

    /// Where Redis is, password hidden.
    pub fn address(&self) -> &RedisAddress {
        &self.address
    }

    /// The length of list `key` (`LLEN`): 0 when it does not exist.
    pub async fn list_length(&self, key: &str) -> Result<u64> {
        let mut connection = self.connection.clone();
        self.answer(
            redis::cmd("LLEN")
                .arg(key)
                .query_async::<u64>(&mut connection),
        )
        .await
    }

    /// The backlog of consumer group `group` on stream `stream`.
    ///
    /// `undelivered` is the group's `lag` from `XINFO GROUPS` (Redis 7 or later), capped by the
    /// stream's length. Redis answers no lag when it cannot compute it, typically after `XDEL`
    /// removed entries the group has not read yet; the entries after the group's
    /// `last-delivered-id` are then counted with paged `XRANGE` calls, which costs a transfer of
    /// every undelivered entry and is not atomic with the rest of the reading.
    pub async fn stream_group(&self, stream: &str, group: &str) -> Result<StreamGroup> {
        let mut connection = self.connection.clone();
        let answer = self
            .answer(
                self.stream_groups
                    .key(stream)
                    .invoke_async::<Option<(u64, Vec<redis::Value>)>>(&mut connection),
            )
            .await?;
        let Some((length, groups)) = answer else {
            return Ok(StreamGroup::MissingStream);
        };
        let mut found = None;
        for entry in groups {
            let info: GroupInfo = self.parsed(entry)?;
            if info.name == group {
                found = Some(info);
                break;
            }
        }
        let Some(info) = found else {
            return Ok(StreamGroup::MissingGroup);
        };
        let (undelivered, counted) = match info.lag {
            Some(lag) => (lag.min(length), false),
            None => (
                self.entries_after(stream, &info.last_delivered).await?,
                true,
            ),
        };
        Ok(StreamGroup::Found(GroupBacklog {
            undelivered,
            pending: info.pending,
            counted,
        }))
    }

    /// Entries of `stream` with an id above `after`, page by page.
    async fn entries_after(&self, stream: &str, after: &str) -> Result<u64> {
        let mut connection = self.connection.clone();
        let mut start = format!("({after}");
        let mut total = 0;
        loop {
            let page = self
                .answer(
                    redis::cmd("XRANGE")
                        .arg(stream)
                        .arg(&start)
                        .arg("+")
                        .arg("COUNT")
                        .arg(COUNT_PAGE)
                        .query_async::<Vec<(String, redis::Value)>>(&mut connection),
                )
                .await?;
            total += page.len() as u64;
            match page.last() {
                Some((last, _)) if page.len() == COUNT_PAGE => start = format!("({last}"),
                _ => return Ok(total),
            }
        }
    }

    fn parsed(&self, entry: redis::Value) -> Result<GroupInfo> {
        let unexpected = |what: String| {
            self.address.redis_error(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "unexpected XINFO GROUPS reply",
                what,
            )))
        };
        let mut fields: HashMap<String, redis::Value> =
            redis::from_redis_value(entry).map_err(|error| unexpected(error.to_string()))?;
        let mut field = |name: &str| fields.remove(name).unwrap_or(redis::Value::Nil);
        let (name, pending, last_delivered, lag) = (
            field("name"),
            field("pending"),
            field("last-delivered-id"),
            field("lag"),
        );
        let parse_failed = |name: &'static str| {
            move |error: redis::ParsingError| unexpected(format!("field {name}: {error}"))
        };
        Ok(GroupInfo {
            name: redis::from_redis_value(name).map_err(parse_failed("name"))?,
            pending: redis::from_redis_value(pending).map_err(parse_failed("pending"))?,
            last_delivered: redis::from_redis_value(last_delivered)
                .map_err(parse_failed("last-delivered-id"))?,
            lag: redis::from_redis_value(lag).map_err(parse_failed("lag"))?,
        })
    }

    async fn answer<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(answer) => answer.map_err(|error| self.address.redis_error(error)),
            Err(_) => Err(Error::NoAnswer {
                address: self.address.to_string(),
                within: COMMAND_TIMEOUT,
            }),
        }
    }
}

/// The fields of one `XINFO GROUPS` entry that a backlog needs.
struct GroupInfo {
    name: String,
    pending: u64,
    last_delivered: String,
    lag: Option<u64>,
}
