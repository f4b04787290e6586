//! The Redis key layout of one queue, and the Lua scripts that must see it atomically.
//!
//! ```text
//!   <queue>                         list: waiting items, oldest at the head
//!   <queue>:consumers               set: ids of consumers that may hold items
//!   <queue>:processing:<consumer>   list: items a consumer holds (its leases)
//!   <queue>:heartbeat:<consumer>    string with TTL = lease: "this consumer is alive"
//!   <queue>:completed               counter: items acknowledged (for service rates)
//! ```
//!
//! The registry set lets the reaper and the in-flight count find processing lists without
//! `KEYS`/`SCAN`. The scripts build per-consumer key names from the queue name, so they only run
//! on a standalone Redis (not Redis Cluster), like the dojo's.

/// Checks a queue or consumer name before it becomes part of Redis keys: an empty or blank name
/// is always a mistake (an unset variable), never a queue anyone meant. As a clap value parser
/// it makes `--redis-queue ''` a one-line error naming the flag.
pub fn key_name(given: &str) -> Result<String, String> {
    if given.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(given.to_owned())
    }
}

pub(crate) fn checked_name(what: &'static str, given: &str) -> crate::Result<()> {
    key_name(given)
        .map(drop)
        .map_err(|reason| crate::Error::InvalidName {
            what,
            given: given.to_owned(),
            reason,
        })
}

#[derive(Clone, Debug)]
pub(crate) struct Keys {
    pub(crate) queue: String,
    pub(crate) consumers: String,
    pub(crate) completed: String,
}

impl Keys {
    pub(crate) fn new(queue: &str) -> Keys {
        Keys {
            queue: queue.to_owned(),
            consumers: format!("{queue}:consumers"),
            completed: format!("{queue}:completed"),
        }
    }

    pub(crate) fn processing(&self, consumer: &str) -> String {
        format!("{}:processing:{consumer}", self.queue)
    }

    pub(crate) fn heartbeat(&self, consumer: &str) -> String {
        format!("{}:heartbeat:{consumer}", self.queue)
    }
}

/// Returns the held items of consumers to the head of the queue, oldest first, and forgets the
/// consumers. KEYS: queue, consumers set. ARGV[1]: queue name (key prefix). ARGV[2], optional:
/// one consumer leaving on purpose (its heartbeat is dropped first); without it, every
/// registered consumer whose heartbeat has expired. One script, so two reapers running at once
/// cannot both return the same item. Returns {consumers reaped, items returned}.
pub(crate) const RETURN_HELD_ITEMS: &str = r"
local queue, consumers, prefix = KEYS[1], KEYS[2], ARGV[1]
local leaving = ARGV[2]
local candidates
if leaving then
  redis.call('DEL', prefix .. ':heartbeat:' .. leaving)
  candidates = { leaving }
else
  candidates = redis.call('SMEMBERS', consumers)
end
local reaped, returned = 0, 0
for _, id in ipairs(candidates) do
  if redis.call('EXISTS', prefix .. ':heartbeat:' .. id) == 0 then
    local processing = prefix .. ':processing:' .. id
    while redis.call('LMOVE', processing, queue, 'RIGHT', 'LEFT') do
      returned = returned + 1
    end
    redis.call('SREM', consumers, id)
    reaped = reaped + 1
  end
end
return { reaped, returned }
";

/// Waiting and in-flight counts read at one instant. KEYS: queue, consumers set. ARGV[1]: queue
/// name. Returns {waiting, in flight}.
pub(crate) const LENGTHS: &str = r"
local in_flight = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  in_flight = in_flight + redis.call('LLEN', ARGV[1] .. ':processing:' .. id)
end
return { redis.call('LLEN', KEYS[1]), in_flight }
";

/// Acknowledges one item: removes it from the processing list and, when it was still there,
/// counts it as completed. KEYS: processing list, completed counter. ARGV[1]: the raw item.
/// Returns how many were removed (0 when a reaper requeued it first: not counted, since the
/// redelivered copy will be).
pub(crate) const ACK: &str = r"
local removed = redis.call('LREM', KEYS[1], 1, ARGV[1])
if removed > 0 then
  redis.call('INCR', KEYS[2])
end
return removed
";
