//! Celery on its Redis broker (kombu's Redis transport, checked with Celery and kombu 5.7.0).
//!
//! kombu lays one queue over several keys, all behind its `global_keyprefix` ([`keyPrefix`]):
//! - a list per priority step: step 0 is the queue's own name, each other step `<queue><sep>
//!   <step>` (separator `\x06\x16`, steps 0, 3, 6, 9 unless configured). Tasks sent with
//!   priority 3 or more go there even when no priority is configured, so waiting is the sum of
//!   `LLEN` over every step list;
//! - `unacked`, a hash of delivery tag → `[message, exchange, routing_key]`, and
//!   `unacked_index`, a zset of delivery tag → the epoch second the message was delivered: the
//!   tasks workers hold. An entry belongs to the queue whose name is its routing key (Celery's
//!   automatic routing: each queue has the exchange and the routing key of its name);
//! - `_kombu.binding.<queue>`, the set of the queue's bindings, there as soon as a client or a
//!   worker declared the queue. A queue with no binding, no list and no held task is a typo, and
//!   reads as an error ([`Error::MissingCeleryQueue`]), never as 0.
//!
//! What a held task is depends on the ack mode ([`CelerySpec::acks_late`]):
//! - `task_acks_late=True`: `unacked` holds the running tasks and the prefetched ones, so in
//!   flight is exact;
//! - Celery's default (early acks): a task is acked when it starts, so the running tasks are in
//!   no key, and `unacked` holds only the prefetched ones. Running work is then unknown
//!   (`in_flight` is `None`: the decision says "an unknown number", the metrics API refuses to
//!   serve `inFlight` and `total`), and the prefetched tasks, which have not started, count as
//!   waiting. Reading the running tasks over remote control (`inspect active`) would mean
//!   writing to the broker and waiting on every worker's reply each tick: not done.
//!
//! Stale entries: a worker killed without a warm shutdown leaves its entries in `unacked`, and
//! kombu puts an entry back on its list only once it is older than the visibility timeout (an
//! hour by default), when some worker polls. So an entry delivered more than
//! [`CelerySpec::visibility_timeout_seconds`] ago (by `unacked_index`'s score, against this
//! process's clock) counts as waiting, not in flight: it is work a worker must pick up again,
//! and it must keep one running (scaling to zero would leave it in `unacked` for good).
//!
//! No age of the oldest waiting task: kombu's messages carry no enqueue time anywhere. No
//! completion counter, and no per-worker leases: `unacked` does not record who holds a task.
//!
//! One script per read (queued with every other read of the server: one round trip per tick),
//! costing an `HGET` per held task of the whole broker, whose routing key is read from the
//! value's last bytes (no JSON decoding).
//!
//! [`keyPrefix`]: CelerySpec::key_prefix

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use ebb_queue::{ReadScript, RedisReader};

use crate::catalogue::{fixed, redis};
use crate::template::verbatim;
use crate::{Count, Error, Kind, MetricSource, Reading, Redis, Result, Text};

/// kombu's `priority_steps` when none are configured.
pub const DEFAULT_PRIORITY_STEPS: [u32; 4] = [0, 3, 6, 9];
/// kombu's `sep` between a queue's name and its priority step.
pub const DEFAULT_SEPARATOR: &str = "\x06\x16";
/// kombu's `visibility_timeout` when none is configured: an hour.
pub const DEFAULT_VISIBILITY_TIMEOUT_SECONDS: u64 = 3600;

/// [`DEFAULT_PRIORITY_STEPS`], for a side's `#[serde(default = …)]`.
pub fn default_priority_steps() -> Vec<u32> {
    DEFAULT_PRIORITY_STEPS.to_vec()
}

/// [`DEFAULT_SEPARATOR`], for a side's `#[serde(default = …)]`.
pub fn default_separator() -> String {
    DEFAULT_SEPARATOR.to_owned()
}

/// [`DEFAULT_VISIBILITY_TIMEOUT_SECONDS`], for a side's `#[serde(default = …)]`.
pub fn default_visibility_timeout_seconds() -> u64 {
    DEFAULT_VISIBILITY_TIMEOUT_SECONDS
}

/// One or more queues of a Celery app on Redis: `celery` in a QueueScaler and in the metrics
/// API. The Redis database is the one of the Redis address (`redis://host:6379/1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CelerySpec {
    /// The queues' names, as the workers consume them (`celery -Q a,b`); their work adds up.
    pub queues: Vec<Text>,
    /// kombu's `priority_steps` transport option, ascending.
    pub priority_steps: Vec<u32>,
    /// kombu's `sep` transport option.
    pub separator: String,
    /// kombu's `global_keyprefix` transport option (empty: none).
    pub key_prefix: String,
    /// Whether the app sets `task_acks_late=True`: then `unacked` holds the running tasks too.
    pub acks_late: bool,
    /// kombu's `visibility_timeout` transport option: tasks held longer count as waiting.
    pub visibility_timeout_seconds: u64,
}

impl CelerySpec {
    /// `queues` with kombu's defaults for everything else (early acks).
    pub fn new(queues: impl IntoIterator<Item = impl Into<String>>) -> CelerySpec {
        CelerySpec {
            queues: queues
                .into_iter()
                .map(|queue| Text::Fixed(queue.into()))
                .collect(),
            priority_steps: DEFAULT_PRIORITY_STEPS.to_vec(),
            separator: DEFAULT_SEPARATOR.to_owned(),
            key_prefix: String::new(),
            acks_late: false,
            visibility_timeout_seconds: DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
        }
    }
}

impl CelerySpec {
    /// The list keys of `queue`, one per priority step, as kombu's `_q_for_pri` names them
    /// (step 0 is the bare name), behind the key prefix.
    pub fn step_lists(&self, queue: &str) -> Vec<String> {
        let prefix = &self.key_prefix;
        self.priority_steps
            .iter()
            .map(|&step| match step {
                0 => format!("{prefix}{queue}"),
                step => format!("{prefix}{queue}{}{step}", self.separator),
            })
            .collect()
    }

    /// The Redis glob patterns whose keyspace notifications mean the counts may have changed:
    /// every step list of the fixed queues, and `unacked`.
    pub fn watched_patterns(&self) -> Vec<String> {
        let lists = self
            .queues
            .iter()
            .filter_map(Text::fixed)
            .flat_map(|queue| self.step_lists(queue));
        lists
            .chain([format!("{}unacked", self.key_prefix)])
            .map(|key| ebb_queue::glob_escaped(&key))
            .collect()
    }
}

impl Kind for CelerySpec {
    const KIND: &'static str = "celery";
    const REDIS_KEY: Option<&'static str> = Some("queues");
    const FIELDS: &'static [&'static str] = &[
        "prioritySteps",
        "separator",
        "keyPrefix",
        "acksLate",
        "visibilityTimeoutSeconds",
    ];
    const COUNTS: &'static [(&'static str, Count)] = &[
        ("waiting", Count::Waiting),
        ("inFlight", Count::InFlight),
        ("total", Count::Total),
    ];
    type Source = CelerySource;

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
        if self.priority_steps.is_empty() {
            return invalid("prioritySteps".into(), "no step is given (kombu's are [0, 3, 6, 9])");
        }
        if !self.priority_steps.windows(2).all(|pair| pair[0] < pair[1]) {
            return invalid(
                "prioritySteps".into(),
                "the steps must be ascending and distinct, as kombu bisects them",
            );
        }
        if self.visibility_timeout_seconds == 0 {
            return invalid(
                "visibilityTimeoutSeconds".into(),
                "must be at least 1 (kombu's default is 3600)",
            );
        }
        Ok(())
    }

    fn resolve(&self, fields: &[(&str, &str)]) -> Self {
        CelerySpec {
            queues: self
                .queues
                .iter()
                .map(|queue| queue.resolve(fields, verbatim))
                .collect(),
            ..self.clone()
        }
    }

    fn build(&self, redis_at: Option<&Redis>) -> Result<CelerySource> {
        let queues = self
            .queues
            .iter()
            .map(|queue| fixed(queue, Self::KIND, "queues").map(str::to_owned))
            .collect::<Result<Vec<_>>>()?;
        Ok(CelerySource {
            redis: redis(redis_at, Self::KIND)?.reader.clone(),
            queues,
            spec: self.clone(),
        })
    }
}

/// What the broker holds for the source's queues at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerCounts {
    /// Tasks in the queues' step lists.
    pub listed: u64,
    /// Tasks workers hold (`unacked`), delivered within the visibility timeout.
    pub held: u64,
    /// Tasks in `unacked` delivered longer ago: left by a worker that died, or due to be
    /// delivered again.
    pub stale: u64,
}

pub struct CelerySource {
    redis: RedisReader,
    queues: Vec<String>,
    spec: CelerySpec,
}

/// KEYS: `unacked`, `unacked_index`, then per queue its binding set and its step lists.
/// ARGV: the cutoff (epoch seconds: older deliveries are stale), the lists per queue, then per
/// queue how its held tasks' values end ([`held_suffix`]).
/// Returns listed, held, stale, unreadable `unacked` values, and the 1-based indexes of the
/// queues nothing knows.
const SCRIPT: &str = r#"
local cutoff = tonumber(ARGV[1])
local lists = tonumber(ARGV[2])
local index_of, known, lengths = {}, {}, {}
local listed = 0
local key = 3
for q = 3, #ARGV do
  index_of[ARGV[q]] = q - 2
  lengths[#ARGV[q]] = true
  known[q - 2] = redis.call('EXISTS', KEYS[key]) == 1
  key = key + 1
  for _ = 1, lists do
    local length = redis.call('LLEN', KEYS[key])
    if length > 0 then known[q - 2] = true end
    listed = listed + length
    key = key + 1
  end
end
-- A held task's queue is told by the end of its value alone: no JSON decoding, whatever
-- the message's size.
local held, stale, unreadable = 0, 0, 0
local delivered = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #delivered, 2 do
  local value = redis.call('HGET', KEYS[1], delivered[i])
  if value then
    if string.sub(value, -2) ~= '"]' then
      unreadable = unreadable + 1
    else
      local q
      for length in pairs(lengths) do
        q = q or index_of[string.sub(value, -length)]
      end
      if q then
        known[q] = true
        if tonumber(delivered[i + 1]) < cutoff then stale = stale + 1 else held = held + 1 end
      end
    end
  end
end
local missing = {}
for q = 1, #ARGV - 2 do
  if not known[q] then missing[#missing + 1] = q end
end
return {listed, held, stale, unreadable, missing}
"#;

/// How kombu's `unacked` value of a task routed to `queue` ends: `json.dumps([message,
/// exchange, routing_key])` with Python's defaults, so `, "<queue>"]` with the name escaped as
/// Python escapes it (`ensure_ascii`: every non-ASCII character as `\uXXXX`, UTF-16).
fn held_suffix(queue: &str) -> String {
    let mut suffix = String::from(", \"");
    for c in queue.chars() {
        match c {
            '"' => suffix.push_str("\\\""),
            '\\' => suffix.push_str("\\\\"),
            '\n' => suffix.push_str("\\n"),
            '\r' => suffix.push_str("\\r"),
            '\t' => suffix.push_str("\\t"),
            '\u{8}' => suffix.push_str("\\b"),
            '\u{c}' => suffix.push_str("\\f"),
            ' '..='~' => suffix.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    suffix.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    suffix.push_str("\"]");
    suffix
}

static READ: LazyLock<ReadScript> = LazyLock::new(|| ReadScript::new(SCRIPT));

impl CelerySource {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.spec.key_prefix)
    }

    /// The queues' tasks in the broker, split as the module's documentation says.
    pub async fn broker(&self) -> Result<BrokerCounts> {
        let unacked = self.key("unacked");
        let index = self.key("unacked_index");
        let mut keys: Vec<(String, &'static str)> =
            vec![(unacked.clone(), "hash"), (index, "zset")];
        let bindings: Vec<String> = self
            .queues
            .iter()
            .map(|queue| self.key(&format!("_kombu.binding.{queue}")))
            .collect();
        for (queue, binding) in self.queues.iter().zip(&bindings) {
            keys.push((binding.clone(), "set"));
            keys.extend(self.spec.step_lists(queue).into_iter().map(|list| (list, "list")));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let cutoff = format!("{:.6}", now - self.spec.visibility_timeout_seconds as f64);
        let lists = self.spec.priority_steps.len().to_string();
        let suffixes: Vec<String> = self.queues.iter().map(|queue| held_suffix(queue)).collect();
        let mut args = vec![cutoff.as_str(), lists.as_str()];
        args.extend(suffixes.iter().map(String::as_str));
        let typed: Vec<(&str, &'static str)> =
            keys.iter().map(|(key, kind)| (key.as_str(), *kind)).collect();
        let (listed, held, stale, unreadable, missing): (u64, u64, u64, u64, Vec<usize>) = self
            .redis
            .read_script(&READ, "celery counts", &typed, &args)
            .await
            .map_err(|source| Error::Redis {
                source_name: self.describe_queues(),
                source,
            })?;
        if unreadable > 0 {
            return Err(Error::Read {
                source_name: self.describe_queues(),
                source: format!(
                    "{unreadable} value(s) of {unacked:?} are not kombu's [message, exchange, routing_key] JSON array"
                )
                .into(),
            });
        }
        if let Some(&first) = missing.first() {
            let queue = self.queues[first - 1].clone();
            return Err(Error::MissingCeleryQueue {
                address: self.redis.address().to_string(),
                binding: bindings[first - 1].clone(),
                queue,
            });
        }
        Ok(BrokerCounts {
            listed,
            held,
            stale,
        })
    }

    fn describe_queues(&self) -> String {
        format!("celery queues {}", self.queues.join(", "))
    }
}

impl MetricSource for CelerySource {
    fn describe(&self) -> String {
        format!("redis {} {}", self.redis.address(), self.describe_queues())
    }

    async fn read(&self) -> Result<Reading> {
        let broker = self.broker().await?;
        let waiting = broker.listed + broker.stale;
        Ok(if self.spec.acks_late {
            Reading::counts(waiting, broker.held)
        } else {
            Reading::waiting(waiting + broker.held)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::held_suffix;

    /// Each expectation is what Python 3.11 printed for
    /// `json.dumps([{}, "", name])[-len(…):]`, kombu's encoding of an `unacked` value.
    #[test]
    fn a_held_tasks_queue_is_told_by_the_end_kombu_writes() {
        assert_eq!(held_suffix("celery"), r#", "celery"]"#);
        assert_eq!(held_suffix("a\"b\\c"), r#", "a\"b\\c"]"#);
        assert_eq!(held_suffix("rapports-é"), r#", "rapports-\u00e9"]"#);
        assert_eq!(held_suffix("q\u{1}\u{7f}😀"), r#", "q\u0001\u007f\ud83d\ude00"]"#);
    }
}
