//! A BullMQ queue (BullMQ 6.x, Node): waiting = the jobs a Worker will take (the `wait` list and
//! the `prioritized` zset), in flight = the jobs Workers hold (the `active` list, lock alive),
//! the age of the oldest waiting job, and per Worker name what it holds. One script, one
//! command per queue per tick in the shared reader's pipeline. Keys are `<prefix>:<queue>:…`
//! (prefix `bull` unless the app sets `prefix`), created lazily: a missing key counts 0.
//!
//! - waiting: `LLEN wait` + `ZCARD prioritized`, plus the stalled jobs (below).
//! - paused: a pause is the field `paused` of the `meta` hash, and the jobs stay in `wait` and
//!   `prioritized`: while it is set they are counted in [`Reading::paused`] and waiting is 0, as
//!   no Worker takes them (BullMQ's own `getJobCounts` keeps them in `wait`). Jobs in the legacy
//!   `paused` list (earlier BullMQ versions; `resume` moves them back) are always paused.
//! - in flight: the jobs of `active` whose lock `<prefix>:<queue>:<id>:lock` is there. A Worker
//!   renews its lock every half `lockDuration` (30 s by default); a SIGKILLed Worker's lock
//!   expires by then, its job stays in `active` and is *stalled*: counted as waiting, since the
//!   stalled check of some live Worker (every `stalledInterval`, 30 s by default) moves it back
//!   to `wait` (or fails it, past `maxStalledCount` stalls), and nobody runs it until then.
//! - scheduled: `ZCARD delayed` (`delay`, retries with backoff), kept apart.
//! - oldest waiting age: from the job hash `<prefix>:<queue>:<id>`: `timestamp` (epoch ms, when
//!   it was added) plus its `delay`, of the oldest plain job (`LINDEX wait -1`, BullMQ pushes on
//!   the left) and of the next prioritized job (the first of the zset), the older of the two.
//!   A prioritized job behind a higher priority may be older still: not read, as finding it
//!   would cost a walk of the zset every tick.
//! - leases ([`Reading::leases`]): BullMQ writes the Worker's `name` option into each job it
//!   takes (field `pb`, `processedBy`), and `processedOn` (epoch ms). Jobs held are listed per
//!   name, dated by the oldest `processedOn`; set `name` from the pod's name. A Worker without
//!   a name, and an idle Worker, are not listed: BullMQ records Workers only as Redis client
//!   names (`CLIENT LIST`), which a script cannot read.
//!
//! A queue nothing knows (no `meta` hash, which the first `add` and every Worker write, and no
//! job listed) is an error, never 0. Its keys do not share a hash slot unless the prefix is a
//! hash tag (`{bull}`): BullMQ on a Redis Cluster is refused when the source is built. No
//! completion counter: `completed` is trimmed by `removeOnComplete`.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ebb_queue::{ReadScript, RedisReader};

use crate::catalogue::{fixed, standalone_redis};
use crate::template::verbatim;
use crate::{Count, Error, Kind, Lease, MetricSource, Reading, Redis, Result, Text};

/// BullMQ's default key prefix (`new Queue(name, {prefix})`).
pub const DEFAULT_PREFIX: &str = "bull";

/// [`DEFAULT_PREFIX`], for the sides' serde defaults.
pub fn default_prefix() -> String {
    DEFAULT_PREFIX.to_owned()
}

/// KEYS: wait, prioritized, delayed, paused, active, meta. ARGV: the jobs' key prefix
/// (`<prefix>:<queue>:`). Answers `{listed (wait + prioritized), legacy paused, paused flag,
/// delayed, stalled, {{worker name or false, processedOn or false}…}, oldest enqueue ms or
/// false}`, or false when nothing knows the queue. Reads only.
const BULLMQ_QUEUE: &str = r"
local jobs = ARGV[1]
local listed = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
local delayed = redis.call('ZCARD', KEYS[3])
local legacy_paused = redis.call('LLEN', KEYS[4])
local active = redis.call('LRANGE', KEYS[5], 0, -1)
local paused = redis.call('HEXISTS', KEYS[6], 'paused')
if redis.call('EXISTS', KEYS[6]) == 0 and listed + delayed + legacy_paused + #active == 0 then
  return false
end
local held, stalled = {}, 0
for _, id in ipairs(active) do
  if redis.call('EXISTS', jobs .. id .. ':lock') == 1 then
    held[#held + 1] = redis.call('HMGET', jobs .. id, 'pb', 'processedOn')
  else
    stalled = stalled + 1
  end
end
local function enqueued(id)
  if not id then return false end
  local fields = redis.call('HMGET', jobs .. id, 'timestamp', 'delay')
  if not fields[1] then return false end
  return tonumber(fields[1]) + (tonumber(fields[2]) or 0)
end
local oldest = enqueued(redis.call('LINDEX', KEYS[1], -1))
local next_prioritized = enqueued(redis.call('ZRANGE', KEYS[2], 0, 0)[1])
if next_prioritized and (not oldest or next_prioritized < oldest) then
  oldest = next_prioritized
end
if oldest then oldest = string.format('%d', oldest) end
return { listed, legacy_paused, paused, delayed, stalled, held, oldest }
";

static SCRIPT: LazyLock<ReadScript> = LazyLock::new(|| ReadScript::new(BULLMQ_QUEUE));

/// One job held, as the script lists it: the Worker's name, when it started (epoch ms).
type HeldJob = (Option<String>, Option<String>);

/// What the script answers (see [`BULLMQ_QUEUE`]).
type Answer = (u64, u64, u64, u64, u64, Vec<HeldJob>, Option<String>);

/// A BullMQ queue: `bullmq` in a QueueScaler and in the metrics API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BullmqSpec {
    /// The queue's name, as given to `new Queue(name)` and `new Worker(name, …)`.
    pub queue: Text,
    /// The key prefix (`prefix` of the Queue and Worker options).
    pub prefix: String,
}

impl Kind for BullmqSpec {
    const KIND: &'static str = "bullmq";
    const REDIS_KEY: Option<&'static str> = Some("queue");
    const FIELDS: &'static [&'static str] = &["prefix"];
    const COUNTS: &'static [(&'static str, Count)] = &[
        ("waiting", Count::Waiting),
        ("inFlight", Count::InFlight),
        ("total", Count::Total),
    ];
    type Source = BullmqSource;

    fn check(&self, field: &str) -> Result<()> {
        if self.prefix.is_empty() {
            return Err(Error::Invalid {
                field: format!("{field}.prefix"),
                reason: format!("the prefix is empty (BullMQ's default is {DEFAULT_PREFIX:?})"),
            });
        }
        Ok(())
    }

    fn resolve(&self, fields: &[(&str, &str)]) -> Self {
        BullmqSpec {
            queue: self.queue.resolve(fields, verbatim),
            ..self.clone()
        }
    }

    fn build(&self, redis_at: Option<&Redis>) -> Result<BullmqSource> {
        let queue = fixed(&self.queue, Self::KIND, "queue")?;
        let redis = standalone_redis(redis_at, Self::KIND, "BullMQ")?;
        Ok(BullmqSource::new(redis.reader.clone(), &self.prefix, queue))
    }
}

impl BullmqSpec {
    /// The Redis glob patterns whose keyspace notifications mean the counts may have changed:
    /// an add or a take (`wait`, `prioritized`), a job's start or end (`active`), a pause
    /// (`meta`). None for a queue still a template.
    pub fn watched_patterns(&self) -> Vec<String> {
        let Some(queue) = self.queue.fixed() else {
            return Vec::new();
        };
        let keys = Keys::of(&self.prefix, queue);
        [keys.wait, keys.prioritized, keys.active, keys.meta]
            .iter()
            .map(|key| ebb_queue::glob_escaped(key))
            .collect()
    }
}

/// The keys of one BullMQ queue.
struct Keys {
    name: String,
    wait: String,
    prioritized: String,
    delayed: String,
    paused: String,
    active: String,
    meta: String,
    jobs: String,
}

impl Keys {
    fn of(prefix: &str, name: &str) -> Keys {
        let key = |suffix: &str| format!("{prefix}:{name}:{suffix}");
        Keys {
            name: name.to_owned(),
            wait: key("wait"),
            prioritized: key("prioritized"),
            delayed: key("delayed"),
            paused: key("paused"),
            active: key("active"),
            meta: key("meta"),
            jobs: key(""),
        }
    }
}

pub struct BullmqSource {
    redis: RedisReader,
    keys: Keys,
}

impl BullmqSource {
    /// The queue `queue` under the key prefix `prefix`.
    pub fn new(redis: RedisReader, prefix: &str, queue: &str) -> Self {
        BullmqSource {
            redis,
            keys: Keys::of(prefix, queue),
        }
    }

    fn name(&self) -> String {
        format!("bullmq queue {}", self.keys.jobs.trim_end_matches(':'))
    }
}

impl MetricSource for BullmqSource {
    fn describe(&self) -> String {
        format!("redis {} {}", self.redis.address(), self.name())
    }

    async fn read(&self) -> Result<Reading> {
        let keys = &self.keys;
        let typed = [
            (keys.wait.as_str(), "list"),
            (keys.prioritized.as_str(), "zset"),
            (keys.delayed.as_str(), "zset"),
            (keys.paused.as_str(), "list"),
            (keys.active.as_str(), "list"),
            (keys.meta.as_str(), "hash"),
        ];
        let answer: Option<Answer> = self
            .redis
            .read_script(&SCRIPT, "bullmq queue", &typed, &[keys.jobs.as_str()])
            .await
            .map_err(|source| Error::Redis {
                source_name: self.name(),
                source,
            })?;
        let Some((listed, legacy_paused, paused_flag, delayed, stalled, held, oldest)) = answer
        else {
            return Err(Error::MissingBullmqQueue {
                address: self.redis.address().to_string(),
                queue: keys.name.clone(),
                meta: keys.meta.clone(),
            });
        };
        if stalled > 0 {
            tracing::debug!(
                "{}: {stalled} active jobs without a lock (their Worker died) counted as waiting, until a live Worker's stalled check moves them back",
                self.describe()
            );
        }
        let (waiting, paused) = if paused_flag == 1 {
            (0, listed + stalled + legacy_paused)
        } else {
            (listed + stalled, legacy_paused)
        };
        let oldest_waiting_age = oldest
            .and_then(|ms| epoch_ms(&ms))
            .filter(|_| paused_flag == 0)
            .map(|added| {
                SystemTime::now()
                    .duration_since(added)
                    .unwrap_or(Duration::ZERO)
            });
        Ok(Reading {
            oldest_waiting_age,
            paused: Some(paused),
            scheduled: Some(delayed),
            leases: leases(&held),
            ..Reading::counts(waiting, held.len() as u64)
        })
    }
}

/// The jobs held per Worker name, each dated by its oldest `processedOn`; jobs of Workers
/// without a name are in flight but nobody's.
fn leases(held: &[HeldJob]) -> Vec<Lease> {
    let mut by_worker: BTreeMap<&str, Lease> = BTreeMap::new();
    for (worker, processed_on) in held {
        let Some(worker) = worker.as_deref() else {
            continue;
        };
        let started = processed_on.as_deref().and_then(epoch_ms);
        let lease = by_worker.entry(worker).or_insert_with(|| Lease::idle(worker));
        lease.leased += 1;
        lease.since = match (lease.since, started) {
            (Some(since), Some(started)) => Some(since.min(started)),
            (since, started) => since.or(started),
        };
    }
    by_worker.into_values().collect()
}

/// An epoch time in ms as BullMQ writes it.
fn epoch_ms(text: &str) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_millis(text.parse().ok()?))
}
