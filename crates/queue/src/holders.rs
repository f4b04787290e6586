//! Who holds what: the per-consumer part of a reading, for scalers that pick which pods go
//! first. Each is read in the one atomic script that reads the counts, so it rides the
//! shared reader's pipeline: one command per queue or stream, one round trip per server per
//! tick, however many consumers.
//!
//! - An ebb queue: each registered consumer (registry set, every key layout), the length of
//!   its processing list and a fingerprint of each item in it, oldest first. The queue keeps
//!   no lease start (recording one would cost every consumer a write per item): the reader
//!   dates each item from the first reading that shows it in a consumer's list
//!   (`ebb_sources::queue`), and the fingerprints are what lets it tell items apart.
//! - A stream consumer group: each consumer of the group (`XINFO CONSUMERS`), its pending
//!   entries and the longest time since one of them was delivered (`XPENDING … IDLE`
//!   order: the largest idle time of its entries), which is when its oldest lease began.

use std::time::Duration;

use crate::batch::Command;
use crate::keys::Keys;
use crate::{QueueCounts, RedisReader, Result};

/// Items of one processing list fingerprinted per reading, head (oldest) first; a longer list
/// is still counted in full. Far above any consumer's `--concurrency`.
pub const FINGERPRINTED: u64 = 1_000;

/// Bytes of an item hashed for its fingerprint, with its length: an ebb item's id comes first
/// (`{"id":…`), so this tells two of them apart without hashing megabytes of payload.
const FINGERPRINT_BYTES: usize = 256;

/// The queue's counts ([`crate::keys::QUEUE_COUNTS`]) and, per registered consumer, `{id,
/// items held, {fingerprint of each held item, oldest first}}`. KEYS[1]: the queue; then per
/// layout its registry and its completed counter. ARGV[1]: bytes hashed per item, ARGV[2]:
/// items fingerprinted per list; then each layout's key prefix. Reads only.
pub(crate) const QUEUE_HOLDERS: &str = r"
local bytes, most = tonumber(ARGV[1]), tonumber(ARGV[2])
local in_flight, completed, holders = 0, 0, {}
for layout = 1, #ARGV - 2 do
  local prefix = ARGV[layout + 2]
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[2 * layout])) do
    local processing = prefix .. ':processing:' .. id
    local held = redis.call('LLEN', processing)
    local fingerprints = {}
    if held > 0 then
      for _, item in ipairs(redis.call('LRANGE', processing, 0, most - 1)) do
        fingerprints[#fingerprints + 1] =
          string.sub(redis.sha1hex(#item .. ':' .. string.sub(item, 1, bytes)), 1, 16)
      end
    end
    in_flight = in_flight + held
    holders[#holders + 1] = { id, held, fingerprints }
  end
  completed = completed + (tonumber(redis.call('GET', KEYS[2 * layout + 1])) or 0)
end
return { redis.call('LLEN', KEYS[1]), in_flight, completed, holders }
";

/// `XLEN` and `XINFO GROUPS` at one instant, "no such stream" as an empty answer rather than
/// the error `XINFO` gives, and per consumer of group ARGV[1] `{name, pending, idle ms of its
/// oldest delivery or -1}` (none when the group is missing: `XINFO GROUPS` tells that). One
/// key, so it runs on Redis Cluster as well.
pub(crate) const STREAM_GROUPS: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local holders = {}
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not consumers.err then
  for _, fields in ipairs(consumers) do
    local name, pending = nil, 0
    for i = 1, #fields, 2 do
      if fields[i] == 'name' then name = fields[i + 1] end
      if fields[i] == 'pending' then pending = fields[i + 1] end
    end
    local oldest = -1
    if pending > 0 then
      local entries = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', math.min(pending, 1000), name)
      for _, entry in ipairs(entries) do
        if entry[3] > oldest then oldest = entry[3] end
      end
    end
    holders[#holders + 1] = { name, pending, oldest }
  end
end
return {redis.call('XLEN', KEYS[1]), redis.call('XINFO', 'GROUPS', KEYS[1]), holders}
";

/// One consumer as [`QUEUE_HOLDERS`] lists it: id, items held, their fingerprints.
type ListedHolder = (String, u64, Vec<String>);

/// One consumer as [`STREAM_GROUPS`] lists it: name, pending entries, idle ms of the oldest
/// delivery or -1.
pub(crate) type ListedConsumer = (String, u64, i64);

/// What one registered consumer of an ebb queue holds, as [`RedisReader::queue_holders`]
/// reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldItems {
    /// The consumer's id (`--consumer-id`, the pod's name in the consumer chart).
    pub consumer: String,
    /// Items in its processing list.
    pub items: u64,
    /// A fingerprint of each, oldest first (at most [`FINGERPRINTED`]): equal items have
    /// equal fingerprints, so only the readers' memory tells a repeated plain string apart.
    pub fingerprints: Vec<String>,
}

/// One consumer of a stream group and what it holds, as
/// [`RedisReader::stream_group_holders`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingConsumer {
    pub consumer: String,
    /// Entries delivered to it and not acknowledged.
    pub pending: u64,
    /// How long ago the longest-held of them was delivered (among its first 1,000 by id);
    /// `None` when it holds nothing.
    pub oldest_idle: Option<Duration>,
}

impl RedisReader {
    /// [`queue_counts`](Self::queue_counts) and, in the same atomic script, what each
    /// registered consumer holds (see the module docs). A consumer registered under both key
    /// layouts (a rolling upgrade) is listed once, with both lists' items.
    pub async fn queue_holders(&self, queue: &str) -> Result<(QueueCounts, Vec<HeldItems>)> {
        let keys = Keys::new(queue)?;
        let layouts: Vec<_> = keys.layouts_read(self.address().is_cluster()).collect();
        let completed: Vec<String> = layouts.iter().map(|layout| layout.completed()).collect();
        let mut names = vec![keys.queue.as_str()];
        let mut expected = vec![(keys.queue.as_str(), "list")];
        let (bytes, most) = (FINGERPRINT_BYTES.to_string(), FINGERPRINTED.to_string());
        let mut args = vec![bytes.as_str(), most.as_str()];
        for (layout, completed) in layouts.iter().zip(&completed) {
            names.push(&layout.consumers);
            names.push(completed);
            args.push(&layout.prefix);
            expected.push((layout.consumers.as_str(), "set"));
            expected.push((completed.as_str(), "string"));
        }
        let command = Command::script(&self.queue_holders, &names, &args);
        let (waiting, in_flight, completed, listed): (u64, u64, u64, Vec<ListedHolder>) =
            self.call(command, "queue holders", &expected).await?;
        let mut holders: Vec<HeldItems> = Vec::with_capacity(listed.len());
        for (consumer, items, fingerprints) in listed {
            match holders.iter_mut().find(|held| held.consumer == consumer) {
                Some(held) => {
                    held.items += items;
                    held.fingerprints.extend(fingerprints);
                }
                None => holders.push(HeldItems {
                    consumer,
                    items,
                    fingerprints,
                }),
            }
        }
        let counts = QueueCounts {
            waiting,
            in_flight,
            completed,
        };
        Ok((counts, holders))
    }
}
