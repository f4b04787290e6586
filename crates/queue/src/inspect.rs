//! Read-only views of Redis data for scalers: a list's length, a stream consumer group's
//! backlog, an ebb leased queue's counts. The scalers read them with the same address handling
//! (password, TLS with a private CA) and the same time bounds as the queue itself.
//!
//! One [`RedisReader`] per server serves every scaler reading it: concurrent calls are coalesced
//! into one pipeline per round trip (see `batch.rs`), so a thousand scalers ticking together
//! cost a round trip or two, not a thousand.
//!
//! Missing keys are not errors: a list or stream nobody wrote to yet holds no work. A missing
//! consumer group is reported as such ([`StreamGroup::MissingGroup`]), since it is far more
//! likely a typo than an idle group, and a typo must not read as "nothing to do".

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::batch::{Batcher, Command, LuaScript};
use crate::held::{ListedConsumer, PendingConsumer};
use crate::keys::Keys;
use crate::{RedisAddress, RedisErrorKind, Result};

/// Entries fetched per `XRANGE` page when the backlog has to be counted by hand.
const COUNT_PAGE: usize = 1_000;
/// The connection's own limit, a backstop behind [`COMMAND_TIMEOUT`] on every call.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// A read-only handle on one Redis server (or cluster). Cheap to clone; clones share one
/// multiplexed, self-reconnecting connection, and their concurrent calls go out together: all
/// calls made while a pipeline is in flight form the next one (at most 512 commands; on a
/// cluster, one pipeline per node). Errors stay per call. Every call waits at most
/// [`crate::COMMAND_TIMEOUT`] per round trip (its own, and the one in flight when it came).
#[derive(Clone)]
pub struct RedisReader {
    address: RedisAddress,
    batcher: Arc<Batcher>,
    stream_groups: Arc<LuaScript>,
    queue_counts: Arc<LuaScript>,
    pub(crate) queue_holders: Arc<LuaScript>,
}

/// A read-only Lua script of a source outside this crate (a job framework's layout, in the
/// source catalogue), run by [`RedisReader::read_script`] in the reader's shared pipeline:
/// sent by hash, in full only when Redis does not know it yet.
pub struct ReadScript(LuaScript);

impl ReadScript {
    /// `code` must only read: it runs on replicas too, and a scaler's read never writes.
    pub fn new(code: &'static str) -> ReadScript {
        ReadScript(LuaScript::new(code))
    }
}

/// An ebb leased queue's counts at one instant, as [`RedisReader::queue_counts`] reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Items in the queue list, not yet taken.
    pub waiting: u64,
    /// Items taken by a registered consumer and not yet acknowledged.
    pub in_flight: u64,
    /// Items acknowledged since the counter was created (0 before the first ack).
    pub completed: u64,
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
            batcher: Arc::new(Batcher::new(
                address.clone(),
                address.connection(RESPONSE_TIMEOUT)?,
            )),
            stream_groups: Arc::new(LuaScript::new(crate::held::STREAM_GROUPS)),
            queue_counts: Arc::new(LuaScript::new(crate::keys::QUEUE_COUNTS)),
            queue_holders: Arc::new(LuaScript::new(crate::held::QUEUE_HOLDERS)),
        })
    }

    /// Pipelines sent so far by this reader and its clones: each is one round trip to one
    /// server or node, whatever the number of calls it carried.
    pub fn round_trips(&self) -> u64 {
        self.batcher.round_trips()
    }

    /// Sends `command` with the calls queued beside it and decodes its answer. `keys` are the
    /// keys it reads with the type each must have: a `WRONGTYPE` names the one that has not.
    pub(crate) async fn call<T: redis::FromRedisValue>(
        &self,
        command: Command,
        what: &str,
        keys: &[(&str, &'static str)],
    ) -> Result<T> {
        let value = match self.batcher.call(command).await {
            Ok(value) => value,
            Err(mut error) => {
                if let crate::Error::Redis { kind, .. } = &mut error
                    && matches!(**kind, RedisErrorKind::WrongType { key: None, .. })
                    && let Some(found) = self.wrong_type_among(keys).await
                {
                    **kind = found;
                }
                return Err(crate::tls_diagnosis::with_tls_diagnosis(&self.address, error).await);
            }
        };
        redis::from_redis_value(value).map_err(|error| self.unexpected(what, error.to_string()))
    }

    /// The first of `keys` whose type is neither the expected one nor missing.
    async fn wrong_type_among(&self, keys: &[(&str, &'static str)]) -> Option<RedisErrorKind> {
        for &(key, expected) in keys {
            let mut type_of = redis::cmd("TYPE");
            type_of.arg(key);
            let answer = self.batcher.call(Command::plain(type_of, key)).await.ok()?;
            let actual: String = redis::from_redis_value(answer).ok()?;
            if let Some(kind) = RedisErrorKind::wrong_type_of(key, actual, expected) {
                return Some(kind);
            }
        }
        None
    }

    fn unexpected(&self, what: &str, detail: String) -> crate::Error {
        self.address.redis_error(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "unexpected reply",
            format!("{what}: {detail}"),
        )))
    }

    /// Where Redis is, password hidden.
    pub fn address(&self) -> &RedisAddress {
        &self.address
    }

    /// Runs `script` on `keys` with `args`, queued with the other calls of this reader (one
    /// round trip for all), and decodes its answer; `what` names it in a decoding error. Each
    /// key comes with the type it must have: a `WRONGTYPE` names the one that has not. On a
    /// cluster the first key routes the call, and every key must be in its slot.
    pub async fn read_script<T: redis::FromRedisValue>(
        &self,
        script: &ReadScript,
        what: &str,
        keys: &[(&str, &'static str)],
        args: &[&str],
    ) -> Result<T> {
        let names: Vec<&str> = keys.iter().map(|(key, _)| *key).collect();
        self.call(Command::script(&script.0, &names, args), what, keys)
            .await
    }

    /// The length of list `key` (`LLEN`): 0 when it does not exist.
    pub async fn list_length(&self, key: &str) -> Result<u64> {
        let mut llen = redis::cmd("LLEN");
        llen.arg(key);
        self.call(Command::plain(llen, key), "LLEN", &[(key, "list")])
            .await
    }

    /// The counts of the ebb leased queue `queue` (see [`crate::Queue::lengths`] and
    /// [`crate::Queue::completed`]) in one atomic script: waiting, in flight (consumers of
    /// earlier versions included, on a standalone Redis) and completed. Reads only; reaping
    /// dead consumers stays [`crate::Queue::reap`]'s.
    pub async fn queue_counts(&self, queue: &str) -> Result<QueueCounts> {
        let keys = Keys::new(queue)?;
        let mut names = vec![keys.queue.as_str()];
        let mut prefixes = Vec::new();
        let layouts: Vec<_> = keys.layouts_read(self.address.is_cluster()).collect();
        let completed: Vec<String> = layouts.iter().map(|layout| layout.completed()).collect();
        for (layout, completed) in layouts.iter().zip(&completed) {
            names.push(&layout.consumers);
            names.push(completed);
            prefixes.push(layout.prefix.as_str());
        }
        let command = Command::script(&self.queue_counts, &names, &prefixes);
        let mut expected = vec![(keys.queue.as_str(), "list")];
        for (layout, completed) in layouts.iter().zip(&completed) {
            expected.push((layout.consumers.as_str(), "set"));
            expected.push((completed.as_str(), "string"));
        }
        let (waiting, in_flight, completed) = self.call(command, "queue counts", &expected).await?;
        Ok(QueueCounts {
            waiting,
            in_flight,
            completed,
        })
    }

    /// The backlog of consumer group `group` on stream `stream`.
    ///
    /// `undelivered` is the group's `lag` from `XINFO GROUPS` (Redis 7 or later), capped by the
    /// stream's length. Redis answers no lag when it cannot compute it, typically after `XDEL`
    /// removed entries the group has not read yet; the entries after the group's
    /// `last-delivered-id` are then counted with paged `XRANGE` calls, which costs a transfer of
    /// every undelivered entry and is not atomic with the rest of the reading.
    pub async fn stream_group(&self, stream: &str, group: &str) -> Result<StreamGroup> {
        Ok(self.stream_group_holders(stream, group).await?.0)
    }

    /// [`stream_group`](Self::stream_group), and in the same atomic call what each consumer
    /// of the group holds (`XINFO CONSUMERS`, and `XPENDING` of those holding entries): one
    /// command, however many consumers.
    pub async fn stream_group_holders(
        &self,
        stream: &str,
        group: &str,
    ) -> Result<(StreamGroup, Vec<PendingConsumer>)> {
        let command = Command::script(&self.stream_groups, &[stream], &[group]);
        let answer: Option<(u64, Vec<redis::Value>, Vec<ListedConsumer>)> = self
            .call(command, "stream groups", &[(stream, "stream")])
            .await?;
        let Some((length, groups, holders)) = answer else {
            return Ok((StreamGroup::MissingStream, Vec::new()));
        };
        let holders = holders
            .into_iter()
            .map(|(consumer, pending, idle_ms)| PendingConsumer {
                consumer,
                pending,
                oldest_idle: u64::try_from(idle_ms).ok().map(Duration::from_millis),
            })
            .collect();
        Ok((self.backlog(stream, group, length, groups).await?, holders))
    }

    async fn backlog(
        &self,
        stream: &str,
        group: &str,
        length: u64,
        groups: Vec<redis::Value>,
    ) -> Result<StreamGroup> {
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
        let mut start = format!("({after}");
        let mut total = 0;
        loop {
            let mut xrange = redis::cmd("XRANGE");
            xrange
                .arg(stream)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(COUNT_PAGE);
            let page: Vec<(String, redis::Value)> = self
                .call(
                    Command::plain(xrange, stream),
                    "XRANGE",
                    &[(stream, "stream")],
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
}

/// The fields of one `XINFO GROUPS` entry that a backlog needs.
struct GroupInfo {
    name: String,
    pending: u64,
    last_delivered: String,
    lag: Option<u64>,
}
