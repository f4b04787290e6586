//! Sidekiq queues (tested with Debian's Sidekiq 6.4.1; the key names and time units of 6.5
//! to 8.1 read from Sidekiq's source): waiting = the queues' lists, in flight = the jobs its
//! live processes run, the age of the oldest waiting job, and every live process of the
//! queues with what it runs. One script, one command per source per tick in the shared
//! reader's pipeline:
//!
//! - waiting: `LLEN queue:<name>` summed over the queues. Sidekiq's client LPUSHes and its
//!   fetch BRPOPs, so the oldest job is `LINDEX queue:<name> -1`.
//! - oldest waiting age: that job's `enqueued_at`, float epoch seconds up to 7.x and integer
//!   epoch milliseconds from 8.0; told apart by size (above 10^11 it is milliseconds, as
//!   Sidekiq's own latency tells a float from an integer).
//! - in flight: per process of the `processes` set, the entries of its work hash whose
//!   `queue` is one of the queues. The hash is `<identity>:workers` up to 6.4 and
//!   `<identity>:work` from 6.5: both are read. Each entry's `run_at` is integer epoch
//!   seconds in every version. A process counts while its heartbeat (`beat` of the
//!   `<identity>` hash, float epoch seconds, written every 5 s in 6.x, 10 s from 7.0) is
//!   younger than [`SidekiqSpec::heartbeat_timeout_seconds`]; a SIGKILLed process leaves its
//!   entries until the hashes expire (60 s after its last beat), and its member of
//!   `processes` until Sidekiq's own cleanup. Sidekiq's basic fetch does not give a killed
//!   process's jobs back: once its beat is stale they are counted nowhere, as they are lost.
//! - scheduled: the jobs of the queues in the `schedule` and `retry` zsets (one set each for
//!   the whole app: each entry's JSON names its queue), kept apart.
//! - leases ([`Reading::leases`]): every live process serving one of the queues (its `info`
//!   lists them) or running a job of them, by the hostname of its identity
//!   (`<hostname>:<pid>:<nonce>`, the hostname from `DYNO` when set: set it from the pod's
//!   name, which scale-in then matches), holding the jobs it runs of these queues (0 when
//!   idle), dated by the oldest `run_at`; the processes of one host add up.
//!
//! [`SidekiqSpec::namespace`] is Sidekiq 6's `redis-namespace` (keys `<namespace>:…`; Sidekiq
//! 7 dropped it). A queue nothing knows (not in the `queues` set Sidekiq's client adds to,
//! no job listed, no live process serving it) is an error, never 0: far more likely a typo.
//! Its keys do not share a hash slot: Sidekiq on a Redis Cluster is refused when built.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ebb_queue::{ReadScript, RedisReader};

use crate::catalogue::{fixed, standalone_redis};
use crate::template::verbatim;
use crate::{Count, Error, Kind, Lease, MetricSource, Reading, Redis, Result, Text};

/// How long after its last heartbeat a process is taken for dead, when not set: Sidekiq's own
/// (the `<identity>` hash expires 60 s after each beat).
pub const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS: u64 = 60;

/// [`DEFAULT_HEARTBEAT_TIMEOUT_SECONDS`], for the sides' serde defaults.
pub fn default_heartbeat_timeout_seconds() -> u64 {
    DEFAULT_HEARTBEAT_TIMEOUT_SECONDS
}

/// KEYS: `processes`, `schedule`, `retry`, `queues`, then each queue's list. ARGV: the key
/// prefix (`<namespace>:` or empty), the heartbeat timeout in seconds, then each queue's
/// name. Answers `{waiting, oldest enqueued_at (epoch seconds, text) or false, in flight,
/// stale processes, scheduled, {{identity, jobs run, oldest run_at or false}…}, {index of
/// each queue nothing knows}}`. Reads only.
const SIDEKIQ_QUEUES: &str = r"
local time = redis.call('TIME')
local live_since = tonumber(time[1]) + tonumber(time[2]) / 1000000 - tonumber(ARGV[2])
local prefix = ARGV[1]
local ours, known = {}, {}
for q = 3, #ARGV do ours[ARGV[q]] = q - 2 end
local function decoded(text)
  local ok, value = pcall(cjson.decode, text)
  if ok and type(value) == 'table' then return value end
  return nil
end
local waiting, oldest = 0, false
for q = 1, #ARGV - 2 do
  local length = redis.call('LLEN', KEYS[4 + q])
  waiting = waiting + length
  known[q] = length > 0 or redis.call('SISMEMBER', KEYS[4], ARGV[q + 2]) == 1
  if length > 0 then
    local job = decoded(redis.call('LINDEX', KEYS[4 + q], -1))
    if job and type(job.enqueued_at) == 'number' then
      local at = job.enqueued_at
      if at > 100000000000 then at = at / 1000 end
      if not oldest or at < oldest then oldest = at end
    end
  end
end
local in_flight, stale, leases = 0, 0, {}
for _, identity in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fields = redis.call('HMGET', prefix .. identity, 'beat', 'info')
  local beat = tonumber(fields[1])
  if beat and beat > live_since then
    local serves = false
    local info = fields[2] and decoded(fields[2])
    if info and type(info.queues) == 'table' then
      for _, name in ipairs(info.queues) do
        if ours[name] then serves = true; known[ours[name]] = true end
      end
    end
    local held, since = 0, false
    for _, suffix in ipairs({ ':workers', ':work' }) do
      local work = redis.call('HGETALL', prefix .. identity .. suffix)
      for i = 2, #work, 2 do
        local entry = decoded(work[i])
        if entry and ours[entry.queue] then
          held = held + 1
          local run_at = tonumber(entry.run_at)
          if run_at and (not since or run_at < since) then since = run_at end
        end
      end
    end
    in_flight = in_flight + held
    if serves or held > 0 then
      leases[#leases + 1] = { identity, held, since and string.format('%d', since) }
    end
  else
    stale = stale + 1
  end
end
local scheduled = 0
for _, key in ipairs({ KEYS[2], KEYS[3] }) do
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    local job = decoded(member)
    if job and ours[job.queue] then scheduled = scheduled + 1 end
  end
end
local unknown = {}
for q = 1, #ARGV - 2 do
  if not known[q] then unknown[#unknown + 1] = q end
end
return { waiting, oldest and string.format('%.6f', oldest), in_flight, stale, scheduled,
  leases, unknown }
";

static SCRIPT: LazyLock<ReadScript> = LazyLock::new(|| ReadScript::new(SIDEKIQ_QUEUES));

/// One process as the script lists it: identity, jobs it runs, oldest `run_at` (epoch s).
type ListedProcess = (String, u64, Option<String>);

/// What the script answers (see [`SIDEKIQ_QUEUES`]).
type Answer = (
    u64,
    Option<String>,
    u64,
    u64,
    u64,
    Vec<ListedProcess>,
    Vec<usize>,
);

/// One or more Sidekiq queues: `sidekiq` in a QueueScaler and in the metrics API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SidekiqSpec {
    /// The queues' names, as the processes serve them (`sidekiq -q a -q b`); their work adds
    /// up.
    pub queues: Vec<Text>,
    /// Sidekiq 6's `redis-namespace` (`namespace:` of its Redis options); empty: none.
    pub namespace: String,
    /// A process whose last heartbeat is older than this is taken for dead.
    pub heartbeat_timeout_seconds: u64,
}

impl SidekiqSpec {
    /// `queues` with Sidekiq's defaults for everything else.
    pub fn new(queues: impl IntoIterator<Item = impl Into<String>>) -> SidekiqSpec {
        SidekiqSpec {
            queues: queues
                .into_iter()
                .map(|queue| Text::Fixed(queue.into()))
                .collect(),
            namespace: String::new(),
            heartbeat_timeout_seconds: DEFAULT_HEARTBEAT_TIMEOUT_SECONDS,
        }
    }

    fn prefix(&self) -> String {
        match self.namespace.as_str() {
            "" => String::new(),
            namespace => format!("{namespace}:"),
        }
    }

    /// The Redis glob patterns whose keyspace notifications mean the counts may have changed:
    /// the queues' lists (a push or a fetch). The work hashes change at each heartbeat, seen
    /// by the polling interval.
    pub fn watched_patterns(&self) -> Vec<String> {
        let prefix = self.prefix();
        self.queues
            .iter()
            .filter_map(Text::fixed)
            .map(|queue| ebb_queue::glob_escaped(&format!("{prefix}queue:{queue}")))
            .collect()
    }
}

impl Kind for SidekiqSpec {
    const KIND: &'static str = "sidekiq";
    const REDIS_KEY: Option<&'static str> = Some("queues");
    const FIELDS: &'static [&'static str] = &["namespace", "heartbeatTimeoutSeconds"];
    const COUNTS: &'static [(&'static str, Count)] = &[
        ("waiting", Count::Waiting),
        ("inFlight", Count::InFlight),
        ("total", Count::Total),
    ];
    type Source = SidekiqSource;

    fn check(&self, field: &str) -> Result<()> {
        let invalid = |name: String, reason: &str| {
            Err(Error::Invalid {
                field: format!("{field}.{name}"),
                reason: reason.to_owned(),
            })
        };
        if self.queues.is_empty() {
            return invalid("queues".into(), "no queue is named");
        }
        for (index, queue) in self.queues.iter().enumerate() {
            if queue.fixed().is_some_and(str::is_empty) {
                return invalid(format!("queues[{index}]"), "the queue's name is empty");
            }
        }
        if self.heartbeat_timeout_seconds == 0 {
            return invalid(
                "heartbeatTimeoutSeconds".into(),
                "must be at least 1: every process would read as dead (Sidekiq's is 60)",
            );
        }
        Ok(())
    }

    fn resolve(&self, fields: &[(&str, &str)]) -> Self {
        SidekiqSpec {
            queues: self
                .queues
                .iter()
                .map(|queue| queue.resolve(fields, verbatim))
                .collect(),
            ..self.clone()
        }
    }

    fn build(&self, redis_at: Option<&Redis>) -> Result<SidekiqSource> {
        let queues = self
            .queues
            .iter()
            .map(|queue| fixed(queue, Self::KIND, "queues").map(str::to_owned))
            .collect::<Result<Vec<_>>>()?;
        let redis = standalone_redis(redis_at, Self::KIND, "Sidekiq")?;
        Ok(SidekiqSource::new(
            redis.reader.clone(),
            &self.namespace,
            queues,
            self.heartbeat_timeout_seconds,
        ))
    }
}

pub struct SidekiqSource {
    redis: RedisReader,
    prefix: String,
    queues: Vec<String>,
    heartbeat_timeout_seconds: String,
}

impl SidekiqSource {
    /// The queues `queues` of the Sidekiq app whose redis-namespace is `namespace` (empty:
    /// none), its processes taken for dead `heartbeat_timeout_seconds` after their last beat.
    pub fn new(
        redis: RedisReader,
        namespace: &str,
        queues: impl IntoIterator<Item = impl Into<String>>,
        heartbeat_timeout_seconds: u64,
    ) -> Self {
        let spec = SidekiqSpec {
            namespace: namespace.to_owned(),
            ..SidekiqSpec::new(queues)
        };
        SidekiqSource {
            redis,
            prefix: spec.prefix(),
            queues: spec.queues.iter().filter_map(Text::fixed).map(str::to_owned).collect(),
            heartbeat_timeout_seconds: heartbeat_timeout_seconds.to_string(),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

impl MetricSource for SidekiqSource {
    fn describe(&self) -> String {
        format!(
            "redis {} sidekiq queues {}",
            self.redis.address(),
            self.queues.join(",")
        )
    }

    async fn read(&self) -> Result<Reading> {
        let fixed_keys = [
            (self.key("processes"), "set"),
            (self.key("schedule"), "zset"),
            (self.key("retry"), "zset"),
            (self.key("queues"), "set"),
        ];
        let lists: Vec<String> = self
            .queues
            .iter()
            .map(|queue| self.key(&format!("queue:{queue}")))
            .collect();
        let typed: Vec<(&str, &'static str)> = fixed_keys
            .iter()
            .map(|(key, kind)| (key.as_str(), *kind))
            .chain(lists.iter().map(|list| (list.as_str(), "list")))
            .collect();
        let mut args = vec![self.prefix.as_str(), self.heartbeat_timeout_seconds.as_str()];
        args.extend(self.queues.iter().map(String::as_str));
        let source_name = || format!("sidekiq queues {}", self.queues.join(","));
        let (waiting, oldest, in_flight, stale, scheduled, listed, unknown): Answer = self
            .redis
            .read_script(&SCRIPT, "sidekiq queues", &typed, &args)
            .await
            .map_err(|source| Error::Redis {
                source_name: source_name(),
                source,
            })?;
        if let Some(&index) = unknown.first() {
            return Err(Error::MissingSidekiqQueue {
                address: self.redis.address().to_string(),
                queue: self.queues[index - 1].clone(),
                list: lists[index - 1].clone(),
                queues: self.key("queues"),
            });
        }
        if stale > 0 {
            tracing::debug!(
                "{}: {stale} processes without a heartbeat for {} s not counted (dead: what they ran is lost, or still listed until Sidekiq's cleanup)",
                self.describe(),
                self.heartbeat_timeout_seconds
            );
        }
        let now = SystemTime::now();
        let leases = by_host(listed);
        Ok(Reading {
            oldest_waiting_age: oldest
                .as_deref()
                .and_then(epoch_seconds)
                .map(|enqueued| now.duration_since(enqueued).unwrap_or(Duration::ZERO)),
            scheduled: Some(scheduled),
            leases,
            ..Reading::counts(waiting, in_flight)
        })
    }
}

/// One lease per host (the pod's name, from `DYNO`): the identity `<hostname>:<pid>:<nonce>`
/// less its last two fields; the processes of one pod (sidekiqswarm) add up, dated by the
/// oldest of their work.
fn by_host(listed: Vec<ListedProcess>) -> Vec<Lease> {
    let mut leases: Vec<Lease> = Vec::new();
    for (identity, leased, since) in listed {
        let host = identity.rsplitn(3, ':').nth(2).unwrap_or(&identity).to_owned();
        let since = since
            .and_then(|seconds| seconds.parse::<u64>().ok())
            .map(|seconds| UNIX_EPOCH + Duration::from_secs(seconds));
        match leases.iter_mut().find(|lease| lease.consumer == host) {
            Some(lease) => {
                lease.leased += leased;
                lease.since = lease.since.into_iter().chain(since).min();
            }
            None => leases.push(Lease {
                consumer: host,
                leased,
                since,
            }),
        }
    }
    leases
}

/// An epoch time in (fractional) seconds, as the script gives it.
fn epoch_seconds(text: &str) -> Option<SystemTime> {
    let seconds: f64 = text.parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(seconds).ok()?)
}
