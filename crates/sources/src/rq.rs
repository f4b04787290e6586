//! An RQ queue (RQ 2.x, python-rq): waiting = the queue's list of job ids, in flight = the
//! jobs its workers hold (the started registry), the age of the oldest waiting job, and every
//! worker of the queue with what it holds. One script, one command per queue per tick in the
//! shared reader's pipeline:
//!
//! - waiting: `LLEN rq:queue:<name>` (RQ pushes on the right and pops from the left).
//! - in flight: the entries of the started registry `rq:wip:<name>` (a zset of
//!   `<job id>:<execution id>`) whose score is still ahead of the server's clock, plus
//!   `rq:queue:<name>:intermediate`, where a worker of this one queue moves a job before it
//!   registers it (a job stays there only if the worker died in between). The score is an
//!   expiry, not a start time: a live worker pushes it about a minute and a half ahead
//!   (`--job-monitoring-interval` + 60 s) at each heartbeat. A SIGKILLed worker's entry
//!   stays until RQ's own cleanup (a worker's maintenance, every 10 minutes by default)
//!   moves the job to the failed registry; it is counted until its expiry and not after, so
//!   a crashed worker's job reads as in flight for at most that minute and a half.
//! - oldest waiting age: `enqueued_at` of the job at the head of the list (its hash
//!   `rq:job:<id>`, ISO 8601 UTC); unknown if that hash is gone.
//! - scheduled: `rq:scheduled:<name>` (`enqueue_in`, `enqueue_at`), kept apart.
//! - leases ([`Reading::leases`]): every worker in `rq:workers:<name>` whose hash
//!   `rq:worker:<name>` is still there (RQ's own liveness: the hash expires 60 s plus
//!   `--worker-ttl` after its last heartbeat), by the name it was started with (`rq worker --name`:
//!   set it from the pod's name). An idle worker holds 0; a worker holding a job of this queue
//!   holds 1 (an RQ worker runs one job at a time), dated by the start of that execution. A
//!   worker busy with a job of another queue, or with an expired entry, is not listed: it is
//!   not idle, and it holds nothing of this queue.
//!
//! RQ has no key prefix setting (`rq:` is written into its classes), so the spec has none.
//! Its keys do not share a hash slot: RQ on a Redis Cluster is refused when the source is built.
//! A queue nothing knows (not in `rq:queues`, no worker, nothing waiting or held) is an error,
//! never 0: far more likely a typo than an idle queue.
//!
//! No completion counter: the finished registry expires its entries (`result_ttl`), and
//! a worker's `successful_job_count` goes when the worker goes.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ebb_queue::{ReadScript, RedisReader};

use crate::catalogue::{fixed, standalone_redis};
use crate::template::verbatim;
use crate::{Count, Error, Kind, Lease, MetricSource, Reading, Redis, Result, Text};

/// KEYS: the queue, its started registry, its workers' set, its intermediate list, its
/// scheduled registry, RQ's set of queues. Answers `{waiting, oldest enqueued_at or false,
/// in flight, expired entries, scheduled, {{worker, jobs held, execution start or false}…}}`,
/// or false when nothing knows the queue (never enqueued to, no worker, nothing held). Reads
/// only.
const RQ_QUEUE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local waiting = redis.call('LLEN', KEYS[1])
if waiting == 0 and redis.call('SISMEMBER', KEYS[6], KEYS[1]) == 0
    and redis.call('SCARD', KEYS[3]) == 0 and redis.call('ZCARD', KEYS[2]) == 0 then
  return false
end
local oldest = false
if waiting > 0 then
  oldest = redis.call('HGET', 'rq:job:' .. redis.call('LINDEX', KEYS[1], 0), 'enqueued_at')
end
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. string.format('%.6f', now), '+inf')
local expired = redis.call('ZCARD', KEYS[2]) - #live
local held = {}
for _, entry in ipairs(live) do
  held[string.match(entry, '^[^:]*')] = entry
end
local workers = {}
for _, key in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local fields = redis.call('HMGET', key, 'state', 'current_job')
  local name = string.sub(key, 11)
  if fields[1] then
    local job = fields[2]
    if not job or job == '' then
      workers[#workers + 1] = { name, 0, false }
    elseif held[job] then
      local started = redis.call('HGET', 'rq:execution:' .. held[job], 'created_at')
      workers[#workers + 1] = { name, 1, started }
    end
  end
end
return { waiting, oldest, #live + redis.call('LLEN', KEYS[4]), expired,
  redis.call('ZCARD', KEYS[5]), workers }
";

static SCRIPT: LazyLock<ReadScript> = LazyLock::new(|| ReadScript::new(RQ_QUEUE));

/// One worker as the script lists it: name, jobs held, when its execution began (epoch
/// seconds, as RQ writes it).
type ListedWorker = (String, u64, Option<String>);

/// What the script answers (see [`RQ_QUEUE`]).
type Answer = (u64, Option<String>, u64, u64, u64, Vec<ListedWorker>);

/// An RQ queue: `rq` in a QueueScaler and in the metrics API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RqSpec {
    /// The queue's name, as given to `Queue(name)` and `rq worker <name>`.
    pub queue: Text,
}

impl Kind for RqSpec {
    const KIND: &'static str = "rq";
    const REDIS_KEY: Option<&'static str> = Some("queue");
    const FIELDS: &'static [&'static str] = &[];
    const COUNTS: &'static [(&'static str, Count)] = &[
        ("waiting", Count::Waiting),
        ("inFlight", Count::InFlight),
        ("total", Count::Total),
    ];
    type Source = RqSource;

    fn check(&self, _field: &str) -> Result<()> {
        Ok(())
    }

    fn resolve(&self, fields: &[(&str, &str)]) -> Self {
        RqSpec {
            queue: self.queue.resolve(fields, verbatim),
        }
    }

    fn build(&self, redis_at: Option<&Redis>) -> Result<RqSource> {
        let queue = fixed(&self.queue, Self::KIND, "queue")?;
        let redis = standalone_redis(redis_at, Self::KIND, "RQ")?;
        Ok(RqSource::new(redis.reader.clone(), queue))
    }
}

/// RQ's set of every queue it was asked to enqueue to (`rq:queue:<name>` members).
const QUEUES: &str = "rq:queues";

/// The keys of one RQ queue, as RQ 2.x names them.
struct Keys {
    queue: String,
    started: String,
    workers: String,
    intermediate: String,
    scheduled: String,
}

impl Keys {
    fn of(name: &str) -> Keys {
        Keys {
            queue: format!("rq:queue:{name}"),
            started: format!("rq:wip:{name}"),
            workers: format!("rq:workers:{name}"),
            intermediate: format!("rq:queue:{name}:intermediate"),
            scheduled: format!("rq:scheduled:{name}"),
        }
    }
}

impl RqSpec {
    /// The Redis glob patterns whose keyspace notifications mean the counts may have changed:
    /// an enqueue or a take (the list, the list a worker takes into), a job's start or end
    /// (the started registry). None for a queue still a template.
    pub fn watched_patterns(&self) -> Vec<String> {
        let Some(name) = self.queue.fixed() else {
            return Vec::new();
        };
        let keys = Keys::of(name);
        [keys.queue, keys.intermediate, keys.started]
            .iter()
            .map(|key| ebb_queue::glob_escaped(key))
            .collect()
    }
}

pub struct RqSource {
    redis: RedisReader,
    queue: String,
}

impl RqSource {
    pub fn new(redis: RedisReader, queue: impl Into<String>) -> Self {
        RqSource {
            redis,
            queue: queue.into(),
        }
    }
}

impl MetricSource for RqSource {
    fn describe(&self) -> String {
        format!("redis {} rq queue {}", self.redis.address(), self.queue)
    }

    async fn read(&self) -> Result<Reading> {
        let keys = Keys::of(&self.queue);
        let typed = [
            (keys.queue.as_str(), "list"),
            (keys.started.as_str(), "zset"),
            (keys.workers.as_str(), "set"),
            (keys.intermediate.as_str(), "list"),
            (keys.scheduled.as_str(), "zset"),
            (QUEUES, "set"),
        ];
        let answer: Option<Answer> = self
            .redis
            .read_script(&SCRIPT, "rq queue", &typed, &[])
            .await
            .map_err(|source| Error::Redis {
                source_name: format!("rq queue {}", self.queue),
                source,
            })?;
        let Some((waiting, oldest, in_flight, expired, scheduled, listed)) = answer else {
            return Err(Error::MissingRqQueue {
                address: self.redis.address().to_string(),
                queue: self.queue.clone(),
            });
        };
        if expired > 0 {
            tracing::debug!(
                "{}: {expired} started-registry entries past their expiry (a worker that died) not counted, until RQ's cleanup moves their jobs to the failed registry",
                self.describe()
            );
        }
        let now = SystemTime::now();
        let leases = listed
            .into_iter()
            .map(|(consumer, leased, started)| Lease {
                consumer,
                leased,
                since: started.as_deref().and_then(epoch_seconds),
            })
            .collect();
        Ok(Reading {
            oldest_waiting_age: oldest
                .as_deref()
                .and_then(|stamp| humantime::parse_rfc3339(stamp).ok())
                .map(|enqueued| now.duration_since(enqueued).unwrap_or(Duration::ZERO)),
            scheduled: Some(scheduled),
            leases,
            ..Reading::counts(waiting, in_flight)
        })
    }
}

/// An epoch time in seconds as RQ writes it (`1796686214.242617`).
fn epoch_seconds(text: &str) -> Option<SystemTime> {
    let seconds: f64 = text.parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(seconds).ok()?)
}
