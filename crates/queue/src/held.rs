//! What the scripts that read who holds what return, apart from the code that reads them:
//! the scripts themselves and the shapes of their answers, shared by the reader's
//! construction (`inspect.rs`) and the per-consumer reads (`holders.rs`).

use std::time::Duration;

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

/// One consumer as [`STREAM_GROUPS`] lists it: name, pending entries, idle ms of the oldest
/// delivery or -1.
pub(crate) type ListedConsumer = (String, u64, i64);

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
