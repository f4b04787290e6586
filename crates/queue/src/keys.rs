//! The Redis key layout of one queue, and the Lua scripts that must see it atomically.
//!
//! ```text
//!   padok                         list: waiting items, oldest at the head (plain name: the
//!                                 dojo's apps and the exporter read it)
//!   {padok}:consumers             set: ids of consumers that may hold items
//!   {padok}:processing:<consumer> list: items a consumer holds (its leases)
//!   {padok}:heartbeat:<consumer>  string with TTL = lease: "this consumer is alive"
//!   {padok}:completed             counter: items acknowledged (for service rates)
//!   {padok}:draining:<consumer>   string (set with a TTL by whoever scales in): "take nothing
//!                                 new"; read by the one-round-trip take and the heartbeat
//! ```
//!
//! The queue's own keys carry the queue name as a hash tag, so Redis Cluster puts them in the
//! slot of the list itself: every script and transaction touches one slot and runs on one node.
//! A queue name that has a hash tag of its own (`{orders}.high`) is used as the prefix as it is,
//! since its keys then hash by that same tag. A name with a `}` but no tag cannot share its
//! slot with any other key and is refused.
//!
//! The registry set lets the reaper and the in-flight count find processing lists without
//! `KEYS`/`SCAN`.
//!
//! Rolling upgrade: versions before the hash tag used the plain prefix (`padok:consumers`,
//! `padok:processing:<id>`, …), on a standalone Redis only (they could not talk to a cluster).
//! While such consumers still run, the counts and the reaper read both layouts there
//! ([`Keys::legacy`]), so no item they hold is missed or left behind.

/// Checks a consumer name before it becomes part of Redis keys: an empty or blank name is
/// always a mistake (an unset variable), never a name anyone meant. As a clap value parser it
/// makes `--consumer-id ''` a one-line error naming the flag.
pub fn key_name(given: &str) -> Result<String, String> {
    if given.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(given.to_owned())
    }
}

/// Checks a queue name: [`key_name`], and a layout whose keys can share the list's Redis
/// Cluster slot (see the module docs). As a clap value parser it makes a bad `--redis-queue`
/// a one-line error naming the flag.
pub fn queue_name(given: &str) -> Result<String, String> {
    key_name(given)?;
    own_key_prefix(given)?;
    Ok(given.to_owned())
}

pub(crate) fn checked_name(
    what: &'static str,
    given: &str,
    check: fn(&str) -> Result<String, String>,
) -> crate::Result<()> {
    check(given)
        .map(drop)
        .map_err(|reason| crate::Error::InvalidName {
            what,
            given: given.to_owned(),
            reason,
        })
}

/// The part of `key` that Redis Cluster hashes to pick its slot: the text between the first
/// `{` and the first `}` after it when that text is not empty, else the whole key.
pub(crate) fn hashed_part(key: &str) -> &str {
    if let Some(open) = key.find('{') {
        let rest = &key[open + 1..];
        if let Some(close) = rest.find('}')
            && close > 0
        {
            return &rest[..close];
        }
    }
    key
}

/// The prefix of queue `queue`'s own keys (`{padok}`): `<prefix>:…` are its processing
/// lists, heartbeats, registry and counter. For a name the queue refuses, the name itself.
pub fn key_prefix(queue: &str) -> String {
    own_key_prefix(queue).unwrap_or_else(|_| queue.to_owned())
}

/// The prefix of the queue's own keys, chosen so that `<prefix>:<anything>` lands in the slot
/// of the list `queue`.
fn own_key_prefix(queue: &str) -> Result<String, String> {
    if hashed_part(queue) != queue {
        Ok(queue.to_owned())
    } else if queue.contains('}') {
        Err(
            "a '}' outside a {…} hash tag: no other Redis key could share the list's cluster slot"
                .to_owned(),
        )
    } else {
        Ok(format!("{{{queue}}}"))
    }
}

/// The names of a consumer's keys under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// What every key of this layout starts with (ARGV of the scripts).
    pub(crate) prefix: String,
    pub(crate) consumers: String,
}

impl Layout {
    fn new(prefix: String) -> Layout {
        Layout {
            consumers: format!("{prefix}:consumers"),
            prefix,
        }
    }

    pub(crate) fn processing(&self, consumer: &str) -> String {
        format!("{}:processing:{consumer}", self.prefix)
    }

    pub(crate) fn heartbeat(&self, consumer: &str) -> String {
        format!("{}:heartbeat:{consumer}", self.prefix)
    }

    pub(crate) fn completed(&self) -> String {
        format!("{}:completed", self.prefix)
    }

    /// The marker that asks a consumer to take nothing new (see [`ACK_AND_TAKE`]).
    pub(crate) fn draining(&self, consumer: &str) -> String {
        format!("{}:draining:{consumer}", self.prefix)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Keys {
    pub(crate) queue: String,
    /// The layout this version writes: hash-tagged, in the list's cluster slot.
    pub(crate) own: Layout,
    /// The untagged layout of earlier versions, when it differs from `own`: read (counted,
    /// reaped) on a standalone Redis, never written.
    pub(crate) legacy: Option<Layout>,
    pub(crate) completed: String,
}

impl Keys {
    pub(crate) fn new(queue: &str) -> crate::Result<Keys> {
        checked_name("queue name", queue, queue_name)?;
        let prefix = own_key_prefix(queue).expect("checked by queue_name");
        let legacy = (prefix != queue).then(|| Layout::new(queue.to_owned()));
        let own = Layout::new(prefix);
        Ok(Keys {
            queue: queue.to_owned(),
            completed: own.completed(),
            own,
            legacy,
        })
    }

    /// The layouts the counts and the reaper read: this version's, then the legacy one where
    /// it may exist: only on a standalone Redis, since those versions could not talk to a
    /// cluster (and on a cluster its keys lie in other slots, out of reach of the scripts).
    pub(crate) fn layouts_read(&self, cluster: bool) -> impl Iterator<Item = &Layout> {
        let legacy = if cluster { None } else { self.legacy.as_ref() };
        std::iter::once(&self.own).chain(legacy)
    }
}

/// Returns the held items of consumers to the head of the queue, oldest first, and forgets the
/// consumers. KEYS[1]: the queue; KEYS[2..n]: consumer registries, one per key layout.
/// ARGV[1..n-1]: the key prefix of each registry's layout. ARGV[n], optional: one consumer
/// leaving on purpose (its heartbeat is dropped first; give it with one registry only);
/// without it, every registered consumer whose heartbeat has expired. One script, so two
/// reapers running at once cannot both return the same item. Returns {consumers reaped, items
/// returned}.
pub(crate) const RETURN_HELD_ITEMS: &str = r"
local queue = KEYS[1]
local leaving = ARGV[#KEYS]
local reaped, returned = 0, 0
for layout = 2, #KEYS do
  local consumers, prefix = KEYS[layout], ARGV[layout - 1]
  local candidates
  if leaving then
    redis.call('DEL', prefix .. ':heartbeat:' .. leaving)
    candidates = { leaving }
  else
    candidates = redis.call('SMEMBERS', consumers)
  end
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
end
return { reaped, returned }
";

/// Waiting and in-flight counts read at one instant. KEYS[1]: the queue; KEYS[2..n]: consumer
/// registries. ARGV[1..n-1]: the key prefix of each registry's layout. Returns {waiting, in
/// flight}.
pub(crate) const LENGTHS: &str = r"
local in_flight = 0
for layout = 2, #KEYS do
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[layout])) do
    in_flight = in_flight + redis.call('LLEN', ARGV[layout - 1] .. ':processing:' .. id)
  end
end
return { redis.call('LLEN', KEYS[1]), in_flight }
";

/// [`LENGTHS`] and the completed counters in one atomic reading. KEYS[1]: the queue; then per
/// layout its consumer registry and its completed counter. ARGV: each layout's key prefix.
/// Returns {waiting, in flight, completed}.
pub(crate) const QUEUE_COUNTS: &str = r"
local in_flight, completed = 0, 0
for layout = 1, #ARGV do
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[2 * layout])) do
    in_flight = in_flight + redis.call('LLEN', ARGV[layout] .. ':processing:' .. id)
  end
  completed = completed + (tonumber(redis.call('GET', KEYS[2 * layout + 1])) or 0)
end
return { redis.call('LLEN', KEYS[1]), in_flight, completed }
";

/// Returns a consumer's stray items (in its processing list, not in its hands) to the head of
/// the queue, the first of them first in line. KEYS: the processing list, the queue. ARGV:
/// the strays, in list order; one copy of each is moved, when still there (a reaper may have
/// taken them first). Returns how many were moved.
pub(crate) const RETURN_STRAYS: &str = r"
local moved = 0
for i = #ARGV, 1, -1 do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) > 0 then
    redis.call('LPUSH', KEYS[2], ARGV[i])
    moved = moved + 1
  end
end
return moved
";

/// Returns the items of a processing list whose consumer is neither registered nor alive (an
/// item popped after a reaper dropped its consumer, which then died) to the head of the
/// queue. KEYS: the queue, the registry, the processing list, the heartbeat. ARGV[1]: the
/// consumer id. A registered consumer is the plain reaper's; a live one re-registers on its
/// next heartbeat. Returns the number of items returned.
pub(crate) const RETURN_ORPHANED: &str = r"
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then
  return 0
end
local returned = 0
while redis.call('LMOVE', KEYS[3], KEYS[1], 'RIGHT', 'LEFT') do
  returned = returned + 1
end
return returned
";

/// `literal`'s characters that Redis' glob matching (`SCAN MATCH`, `PSUBSCRIBE`) would read
/// as wildcards, escaped, so that a queue named `a*` sweeps, or is woken by, only its own keys.
pub fn glob_escaped(literal: &str) -> String {
    let mut escaped = String::with_capacity(literal.len());
    for character in literal.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// The Redis glob patterns of the keys whose changes may change queue `queue`'s counts: the
/// list itself, and the queue's own keys (an ack moves an item out of a processing list, a
/// reaper moves it back). What a scaler subscribes to for keyspace notifications. The legacy
/// layout is left out: its consumers are old versions on their way out, and the scaler's
/// polling still counts them.
pub fn key_patterns(queue: &str) -> Vec<String> {
    vec![
        glob_escaped(queue),
        format!("{}:*", glob_escaped(&key_prefix(queue))),
    ]
}

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

/// Acknowledges finished items like [`ACK`], then takes the next ones into the same
/// processing list, when the consumer may still take: registered, its heartbeat alive, and not
/// marked draining. Checked in the script, so no item is ever moved into the list of a consumer
/// that a reaper dropped. One round trip for the lot while items wait; `BLMOVE` is left for an
/// empty queue. One item moves with `LMOVE`; several with `LPOP … count` and one `RPUSH`, the
/// same move under the script's atomicity. KEYS: processing list, completed counter, queue,
/// registry, heartbeat, draining marker. ARGV: the consumer id, how many to take at most, then
/// the raw items finished. Returns {removed per finished item, what happened (`taken`,
/// `empty`, `unregistered`, `draining`), the items taken (none unless `taken`)}.
pub(crate) const ACK_AND_TAKE: &str = r"
local removed, acked = {}, 0
for i = 3, #ARGV do
  local count = redis.call('LREM', KEYS[1], 1, ARGV[i])
  removed[i - 2] = count
  acked = acked + count
end
if acked > 0 then
  redis.call('INCRBY', KEYS[2], acked)
end
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then
  return { removed, 'unregistered', {} }
end
local marks = redis.call('MGET', KEYS[5], KEYS[6])
if not marks[1] then
  return { removed, 'unregistered', {} }
end
if marks[2] then
  return { removed, 'draining', {} }
end
local wanted = tonumber(ARGV[2])
local taken
if wanted == 1 then
  local item = redis.call('LMOVE', KEYS[3], KEYS[1], 'LEFT', 'RIGHT')
  taken = item and { item }
else
  taken = redis.call('LPOP', KEYS[3], wanted)
  if taken then
    redis.call('RPUSH', KEYS[1], unpack(taken))
  end
end
if not taken then
  return { removed, 'empty', {} }
end
return { removed, 'taken', taken }
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_keys_hash_like_the_list_and_legacy_keys_are_the_old_names() {
        for (queue, prefix, legacy) in [
            ("padok", "{padok}", Some("padok")),
            ("a{b", "{a{b}", Some("a{b")),
            ("{orders}.high", "{orders}.high", None),
            ("{padok}", "{padok}", None),
        ] {
            let keys = Keys::new(queue).unwrap();
            assert_eq!(keys.own.prefix, prefix, "{queue}");
            assert_eq!(
                keys.legacy.as_ref().map(|layout| layout.prefix.as_str()),
                legacy,
                "{queue}"
            );
            for key in [
                keys.own.consumers.clone(),
                keys.own.processing("c1"),
                keys.own.heartbeat("c}1{"),
                keys.own.draining("c1"),
                keys.completed.clone(),
            ] {
                assert_eq!(hashed_part(&key), hashed_part(queue), "{queue}: {key}");
            }
        }
        let keys = Keys::new("padok").unwrap();
        assert_eq!(keys.own.processing("c1"), "{padok}:processing:c1");
        assert_eq!(keys.own.heartbeat("c1"), "{padok}:heartbeat:c1");
        assert_eq!(keys.own.consumers, "{padok}:consumers");
        assert_eq!(keys.completed, "{padok}:completed");
        assert_eq!(keys.own.draining("c1"), "{padok}:draining:c1");
        let legacy = keys.legacy.unwrap();
        assert_eq!(legacy.processing("c1"), "padok:processing:c1");
        assert_eq!(legacy.heartbeat("c1"), "padok:heartbeat:c1");
        assert_eq!(legacy.consumers, "padok:consumers");
    }

    #[test]
    fn glob_characters_of_a_name_match_only_themselves() {
        assert_eq!(glob_escaped("{padok}"), "{padok}");
        assert_eq!(glob_escaped("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn a_queue_is_watched_through_its_list_and_its_own_keys_taken_literally() {
        assert_eq!(key_patterns("padok"), ["padok", "{padok}:*"]);
        assert_eq!(
            key_patterns("{orders}.high"),
            ["{orders}.high", "{orders}.high:*"]
        );
        assert_eq!(key_patterns("a*"), ["a\\*", "{a\\*}:*"]);
    }

    #[test]
    fn names_that_cannot_share_the_lists_slot_are_refused() {
        for queue in ["a}b", "{}x", "x{}y{z}", "", " "] {
            let message = Keys::new(queue).unwrap_err().to_string();
            assert!(message.starts_with("invalid queue name"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }
}
