//! A Dramatiq queue on its Redis broker (Dramatiq 2.x, `RedisBroker`): waiting = the queue's
//! list of message ids, in flight = the messages its workers hold, the age of the oldest
//! waiting message. One script, one command per queue per tick in the shared reader's
//! pipeline; no `KEYS` or `SCAN`:
//!
//! - waiting: `LLEN <namespace>:<queue>` (Dramatiq pushes on the right, fetches from the left),
//!   plus the messages held by workers whose heartbeat is older than the broker's
//!   `heartbeat_timeout` (60 s by default): Dramatiq's maintenance puts them back in the queue,
//!   and until then nobody is known to run them.
//! - in flight: `SCARD <namespace>:__acks__.<worker>.<queue>` summed over the workers of
//!   `<namespace>:__heartbeats__` (a zset: worker id → last heartbeat, epoch ms) that beat
//!   within the timeout. A worker process prefetches twice its threads (16 with the default 8),
//!   so the sets hold running and prefetched messages alike: Redis cannot tell them apart.
//! - oldest waiting age: `message_timestamp` (epoch ms) of the message at the head of the list,
//!   from `<namespace>:<queue>.msgs`.
//! - scheduled: the delay queue `<queue>.DQ` (messages sent with a delay), listed or held by a
//!   worker until their eta, kept apart.
//!
//! No leases: a Dramatiq worker's id is a random UUID per process, which names no pod. No
//! completion counter. Dramatiq keeps no registry of queues in Redis, so a queue name that
//! matches nothing reads as an empty queue: check it with `ebb inspect`. Its keys do not share
//! a hash slot: Dramatiq on a Redis Cluster is refused when the source is built.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ebb_queue::{ReadScript, RedisReader};

use crate::catalogue::{fixed, standalone_redis};
use crate::template::verbatim;
use crate::{Count, Error, Kind, MetricSource, Reading, Redis, Result, Text};

/// Dramatiq's default key namespace (`RedisBroker(namespace=…)`).
pub const DEFAULT_NAMESPACE: &str = "dramatiq";
/// Dramatiq's default `heartbeat_timeout`, in milliseconds.
pub const DEFAULT_HEARTBEAT_TIMEOUT_MS: u64 = 60_000;

/// [`DEFAULT_NAMESPACE`], for the sides' serde defaults.
pub fn default_namespace() -> String {
    DEFAULT_NAMESPACE.to_owned()
}

/// [`DEFAULT_HEARTBEAT_TIMEOUT_MS`], for the sides' serde defaults.
pub fn default_heartbeat_timeout_ms() -> u64 {
    DEFAULT_HEARTBEAT_TIMEOUT_MS
}

/// KEYS: the queue, its messages' hash, the heartbeats zset, the delay queue. ARGV: the acks
/// sets' prefix (`<namespace>:__acks__.`), the queue's name, the heartbeat timeout in ms.
/// Answers `{waiting, held by stale workers, in flight, scheduled, oldest message_timestamp or
/// false}`. Reads only.
const DRAMATIQ_QUEUE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local live_since = now - tonumber(ARGV[3])
local waiting = redis.call('LLEN', KEYS[1])
local stale, in_flight = 0, 0
local scheduled = redis.call('LLEN', KEYS[4])
local beats = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
for i = 1, #beats, 2 do
  local acks = ARGV[1] .. beats[i] .. '.' .. ARGV[2]
  local held = redis.call('SCARD', acks)
  if tonumber(beats[i + 1]) > live_since then
    in_flight = in_flight + held
  else
    stale = stale + held
  end
  scheduled = scheduled + redis.call('SCARD', acks .. '.DQ')
end
local oldest = false
if waiting > 0 then
  local message = redis.call('HGET', KEYS[2], redis.call('LINDEX', KEYS[1], 0))
  if message then
    local decoded, fields = pcall(cjson.decode, message)
    if decoded and type(fields) == 'table' and type(fields.message_timestamp) == 'number' then
      oldest = string.format('%d', fields.message_timestamp)
    end
  end
end
return { waiting, stale, in_flight, scheduled, oldest }
";

static SCRIPT: LazyLock<ReadScript> = LazyLock::new(|| ReadScript::new(DRAMATIQ_QUEUE));

/// What the script answers (see [`DRAMATIQ_QUEUE`]).
type Answer = (u64, u64, u64, u64, Option<String>);

/// A Dramatiq queue: `dramatiq` in a QueueScaler and in the metrics API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DramatiqSpec {
    /// The queue's name (an actor's `queue_name`, `default` unless set).
    pub queue: Text,
    /// The broker's key namespace (`RedisBroker(namespace=…)`).
    pub namespace: String,
    /// The broker's `heartbeat_timeout` in ms: a worker silent longer is taken for dead.
    pub heartbeat_timeout_ms: u64,
}

impl Kind for DramatiqSpec {
    const KIND: &'static str = "dramatiq";
    const REDIS_KEY: Option<&'static str> = Some("queue");
    const FIELDS: &'static [&'static str] = &["namespace", "heartbeatTimeoutMs"];
    const COUNTS: &'static [(&'static str, Count)] = &[
        ("waiting", Count::Waiting),
        ("inFlight", Count::InFlight),
        ("total", Count::Total),
    ];
    type Source = DramatiqSource;

    fn check(&self, field: &str) -> Result<()> {
        if self.namespace.is_empty() {
            return Err(Error::Invalid {
                field: format!("{field}.namespace"),
                reason: format!("the namespace is empty (Dramatiq's default is {DEFAULT_NAMESPACE:?})"),
            });
        }
        if self.heartbeat_timeout_ms == 0 {
            return Err(Error::Invalid {
                field: format!("{field}.heartbeatTimeoutMs"),
                reason: "the heartbeat timeout is 0: every worker would read as dead".to_owned(),
            });
        }
        Ok(())
    }

    fn resolve(&self, fields: &[(&str, &str)]) -> Self {
        DramatiqSpec {
            queue: self.queue.resolve(fields, verbatim),
            ..self.clone()
        }
    }

    fn build(&self, redis_at: Option<&Redis>) -> Result<DramatiqSource> {
        let queue = fixed(&self.queue, Self::KIND, "queue")?;
        let redis = standalone_redis(redis_at, Self::KIND, "Dramatiq")?;
        Ok(DramatiqSource {
            redis: redis.reader.clone(),
            keys: Keys::of(&self.namespace, queue),
            heartbeat_timeout_ms: self.heartbeat_timeout_ms.to_string(),
        })
    }
}

impl DramatiqSpec {
    /// The Redis glob patterns whose keyspace notifications mean the counts may have changed:
    /// an enqueue or a fetch (the list). Acks change the sets of each worker, not watched
    /// (their names come from the heartbeats): the polling interval sees them.
    pub fn watched_patterns(&self) -> Vec<String> {
        let Some(queue) = self.queue.fixed() else {
            return Vec::new();
        };
        vec![ebb_queue::glob_escaped(&Keys::of(&self.namespace, queue).queue)]
    }
}

/// The keys of one Dramatiq queue, as its Redis broker names them.
struct Keys {
    name: String,
    queue: String,
    messages: String,
    heartbeats: String,
    delayed: String,
    acks_prefix: String,
}

impl Keys {
    fn of(namespace: &str, name: &str) -> Keys {
        Keys {
            name: name.to_owned(),
            queue: format!("{namespace}:{name}"),
            messages: format!("{namespace}:{name}.msgs"),
            heartbeats: format!("{namespace}:__heartbeats__"),
            delayed: format!("{namespace}:{name}.DQ"),
            acks_prefix: format!("{namespace}:__acks__."),
        }
    }
}

pub struct DramatiqSource {
    redis: RedisReader,
    keys: Keys,
    heartbeat_timeout_ms: String,
}

impl DramatiqSource {
    /// The queue `queue` of the broker with namespace `namespace` and heartbeat timeout
    /// `heartbeat_timeout_ms`.
    pub fn new(
        redis: RedisReader,
        namespace: &str,
        queue: &str,
        heartbeat_timeout_ms: u64,
    ) -> Self {
        DramatiqSource {
            redis,
            keys: Keys::of(namespace, queue),
            heartbeat_timeout_ms: heartbeat_timeout_ms.to_string(),
        }
    }
}

impl MetricSource for DramatiqSource {
    fn describe(&self) -> String {
        format!(
            "redis {} dramatiq queue {}",
            self.redis.address(),
            self.keys.queue
        )
    }

    async fn read(&self) -> Result<Reading> {
        let keys = &self.keys;
        let typed = [
            (keys.queue.as_str(), "list"),
            (keys.messages.as_str(), "hash"),
            (keys.heartbeats.as_str(), "zset"),
            (keys.delayed.as_str(), "list"),
        ];
        let args = [
            keys.acks_prefix.as_str(),
            keys.name.as_str(),
            self.heartbeat_timeout_ms.as_str(),
        ];
        let (listed, stale, in_flight, scheduled, oldest): Answer = self
            .redis
            .read_script(&SCRIPT, "dramatiq queue", &typed, &args)
            .await
            .map_err(|source| Error::Redis {
                source_name: format!("dramatiq queue {}", keys.queue),
                source,
            })?;
        if stale > 0 {
            tracing::debug!(
                "{}: {stale} messages held by workers past their heartbeat timeout counted as waiting, until Dramatiq's maintenance puts them back",
                self.describe()
            );
        }
        let oldest_waiting_age = oldest
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
            .map(|sent| {
                SystemTime::now()
                    .duration_since(sent)
                    .unwrap_or(Duration::ZERO)
            });
        Ok(Reading {
            oldest_waiting_age,
            scheduled: Some(scheduled),
            ..Reading::counts(listed + stale, in_flight)
        })
    }
}
