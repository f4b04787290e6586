//! What travels through the queue: a small JSON envelope carrying an id and the enqueue time,
//! so consumers can de-duplicate and measure queue latency. Items pushed by other tools (the
//! dojo's producer, `redis-cli RPUSH`) are plain strings; they decode as a payload alone.

use std::borrow::Cow;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The dojo producer's payload, kept as the default so dashboards and logs look the same.
pub const DEFAULT_PAYLOAD: &str = "From Padok, with love 💜";

/// One queue item. `id` and `enqueued_at_ms` are absent for plain items from other tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub id: Option<String>,
    pub enqueued_at_ms: Option<u64>,
    pub payload: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    enqueued_at_ms: u64,
    // Borrowed when the JSON has no escapes, owned when it has to be unescaped.
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

impl Item {
    /// A fresh item: a time-ordered UUIDv7 id and the current time.
    pub fn new(payload: impl Into<String>) -> Item {
        let ids = IdRange::reserve(1);
        Item {
            id: Some(ids.id(0).to_string()),
            enqueued_at_ms: Some(ids.unix_ms),
            payload: payload.into(),
        }
    }

    /// The string stored in Redis: the JSON envelope, or the bare payload when there is no id.
    pub fn encode(&self) -> String {
        match (&self.id, self.enqueued_at_ms) {
            (Some(id), Some(enqueued_at_ms)) => {
                let mut encoded = Vec::new();
                write_envelope(
                    &mut encoded,
                    id,
                    &enqueued_at_ms.to_string(),
                    &json_string(&self.payload),
                );
                String::from_utf8(encoded).expect("an envelope of UTF-8 parts is UTF-8")
            }
            _ => self.payload.clone(),
        }
    }

    /// Reads any string found in the queue. Never fails: what is not our envelope is a plain
    /// payload, so foreign items are processed instead of lost.
    pub fn decode(raw: &str) -> Item {
        match serde_json::from_str::<Envelope>(raw) {
            Ok(envelope) => Item {
                id: Some(envelope.id.into_owned()),
                enqueued_at_ms: Some(envelope.enqueued_at_ms),
                payload: envelope.payload.into_owned(),
            },
            Err(_) => Item {
                id: None,
                enqueued_at_ms: None,
                payload: raw.to_owned(),
            },
        }
    }
}

/// Milliseconds since the Unix epoch; the enqueue-time clock shared by producers and consumers.
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Fresh encoded items, back to back in one buffer: what [`crate::Queue::push_batch`] sends.
/// Building one costs one clock read, one lock and at most one random draw for the whole batch,
/// and no allocation per item; batches append to each other, so concurrent single publishes can
/// travel in one `RPUSH`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    bytes: Vec<u8>,
    /// Where each item ends in `bytes`.
    ends: Vec<usize>,
}

impl Batch {
    /// `count` fresh items around `payload`, each with its own id, all enqueued now.
    pub fn fresh(count: usize, payload: &str) -> Batch {
        let ids = IdRange::reserve(count as u64);
        // Every item of the batch is the same envelope but for its id: write the envelope
        // once, then copy it with each id in place.
        let mut template = Vec::new();
        let placeholder = "0".repeat(ID_LEN);
        write_envelope(
            &mut template,
            &placeholder,
            &ids.unix_ms.to_string(),
            &json_string(payload),
        );
        let (head, tail) = template.split_at(ID_PLACE);
        let tail = &tail[ID_LEN..];
        let item_len = template.len();
        let mut batch = Batch {
            bytes: Vec::with_capacity(count.saturating_mul(item_len)),
            ends: Vec::with_capacity(count),
        };
        let mut id = [0; ID_LEN];
        for index in 0..count {
            let id = ids.id(index as u64).hyphenated().encode_lower(&mut id);
            batch.bytes.extend_from_slice(head);
            batch.bytes.extend_from_slice(id.as_bytes());
            batch.bytes.extend_from_slice(tail);
            batch.ends.push(batch.bytes.len());
        }
        debug_assert_eq!(
            batch.bytes.len(),
            count * item_len,
            "the capacity was exact"
        );
        batch
    }

    /// The encoded size of one fresh item around `payload`, without building it: what a
    /// batch of `count` such items takes is `count` times this (plus one `usize` per item for
    /// its end), so a limit can be checked before anything is allocated.
    pub fn item_len(payload: &str) -> usize {
        let mut envelope = Vec::new();
        write_envelope(
            &mut envelope,
            &"0".repeat(ID_LEN),
            &unix_ms_now().to_string(),
            &json_string(payload),
        );
        envelope.len()
    }

    /// How many items.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The encoded size of every item together.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Item `index`, encoded.
    pub fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        Some(std::str::from_utf8(&self.bytes[start..end]).expect("items are encoded from UTF-8"))
    }

    /// The encoded items in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.ends.iter().enumerate().map(|(index, &end)| {
            let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
            &self.bytes[start..end]
        })
    }

    /// Appends the items of `other`, after these.
    pub fn append(&mut self, other: &Batch) {
        let offset = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.ends.extend(other.ends.iter().map(|end| end + offset));
    }

    /// Empties the batch, keeping its buffers for the next items.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// A hyphenated UUID.
const ID_LEN: usize = 36;
/// Where the id starts in an envelope: after `{"id":"`.
const ID_PLACE: usize = 7;

/// The one writer of the envelope. Writes the same bytes as serializing [`Envelope`] with
/// serde_json (a test holds it to that), without building a value per item. `enqueued_at_ms`
/// is decimal digits, `payload_json` a JSON string literal (see [`json_string`]).
fn write_envelope(out: &mut Vec<u8>, id: &str, enqueued_at_ms: &str, payload_json: &str) {
    out.extend_from_slice(b"{\"id\":");
    if id
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
    {
        // Our ids: nothing to escape, no string to build.
        out.push(b'"');
        out.extend_from_slice(id.as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(json_string(id).as_bytes());
    }
    out.extend_from_slice(b",\"enqueued_at_ms\":");
    out.extend_from_slice(enqueued_at_ms.as_bytes());
    out.extend_from_slice(b",\"payload\":");
    out.extend_from_slice(payload_json.as_bytes());
    out.push(b'}');
}

/// `text` as a JSON string literal, quotes included.
fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serializes")
}

/// A run of consecutive UUIDv7 values sharing one millisecond, reserved from [`ID_CLOCK`].
struct IdRange {
    unix_ms: u64,
    first_counter: u128,
}

/// UUIDv7 layout (RFC 9562 §5.7, counter per §6.2 method 1): 48-bit Unix milliseconds,
/// version 7, then a 74-bit counter split around the variant bits (12 bits, then 62).
const COUNTER_BITS: u32 = 74;
const COUNTER_LOW_BITS: u32 = 62;

impl IdRange {
    /// `count` ids, greater than every id this process handed out before.
    fn reserve(count: u64) -> IdRange {
        let now = unix_ms_now();
        ID_CLOCK
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reserve(now, count, random_counter_seed)
    }

    /// The id at `offset` in the range.
    fn id(&self, offset: u64) -> Uuid {
        let counter = self.first_counter + u128::from(offset);
        let low_mask = (1u128 << COUNTER_LOW_BITS) - 1;
        Uuid::from_u128(
            (u128::from(self.unix_ms) & ((1 << 48) - 1)) << 80
                | 0x7 << 76
                | (counter >> COUNTER_LOW_BITS) << 64
                | 0b10 << 62
                | (counter & low_mask),
        )
    }
}

struct IdClock {
    unix_ms: u64,
    next_counter: u128,
}

impl IdClock {
    /// `count` ids at wall-clock time `now`, after every id reserved before.
    fn reserve(&mut self, now: u64, count: u64, seed: impl FnOnce() -> u128) -> IdRange {
        let fits = self.next_counter + u128::from(count) <= 1 << COUNTER_BITS;
        if now > self.unix_ms || !fits {
            // A new millisecond, or this one used up: reseed the counter at random, borrowing
            // the next millisecond when needed. A wall clock that went back keeps the last
            // millisecond, so ids stay ordered.
            self.unix_ms = if fits { now } else { now.max(self.unix_ms + 1) };
            self.next_counter = seed();
        }
        let range = IdRange {
            unix_ms: self.unix_ms,
            first_counter: self.next_counter,
        };
        self.next_counter += u128::from(count);
        range
    }
}

/// The process' id clock: ids from every thread are ordered by it.
static ID_CLOCK: Mutex<IdClock> = Mutex::new(IdClock {
    unix_ms: 0,
    next_counter: 0,
});

/// 73 random bits: the counter starts unpredictable (ids from two producers in the same
/// millisecond do not collide) with at least 2^73 values of room before it fills up.
fn random_counter_seed() -> u128 {
    // A v4 UUID carries 122 random bits; bits 64..76 and 0..62 are among them.
    let random = Uuid::new_v4().as_u128();
    let low_mask = (1u128 << COUNTER_LOW_BITS) - 1;
    let seed = ((random >> 64) & 0xFFF) << COUNTER_LOW_BITS | (random & low_mask);
    seed & ((1 << (COUNTER_BITS - 1)) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_round_trips() {
        let item = Item::new(DEFAULT_PAYLOAD);
        assert_eq!(Item::decode(&item.encode()), item);
    }

    #[test]
    fn item_len_is_the_encoded_size_of_each_item_of_a_batch() {
        for payload in ["x", DEFAULT_PAYLOAD, "\"quoted\" \u{1}"] {
            let batch = Batch::fresh(3, payload);
            assert_eq!(
                batch.byte_len(),
                3 * Batch::item_len(payload),
                "{payload:?}"
            );
        }
        // One byte of payload is about 90 bytes in Redis: the envelope is the cost.
        assert_eq!(Batch::item_len("x"), 90);
    }

    #[test]
    fn plain_strings_and_foreign_json_are_payloads() {
        for raw in [
            DEFAULT_PAYLOAD,
            "",
            "{\"id\": 3}",
            "{\"id\":\"a\",\"enqueued_at_ms\":1,\"payload\":\"p\",\"x\":1}",
            "[1,2]",
        ] {
            let item = Item::decode(raw);
            assert_eq!(
                (item.id, item.enqueued_at_ms, item.payload.as_str()),
                (None, None, raw)
            );
        }
    }

    #[test]
    fn the_envelope_writer_matches_serde_json() {
        for payload in [DEFAULT_PAYLOAD, "", "line one\n\"two\" \\ \u{1} 💜"] {
            let item = Item::new(payload);
            let by_serde = serde_json::to_string(&Envelope {
                id: Cow::Borrowed(item.id.as_deref().unwrap()),
                enqueued_at_ms: item.enqueued_at_ms.unwrap(),
                payload: Cow::Borrowed(payload),
            })
            .unwrap();
            assert_eq!(item.encode(), by_serde);
            let batch = Batch::fresh(1, payload);
            let fresh = Item::decode(batch.get(0).unwrap());
            assert_eq!(fresh.payload, payload);
            assert_eq!(batch.get(0).unwrap(), fresh.encode());
        }
    }

    #[test]
    fn batch_ids_are_uuid_v7_unique_and_increasing_across_batches_and_items() {
        let mut ids = Vec::new();
        for count in [3, 1, 1000, 2] {
            let batch = Batch::fresh(count, "p");
            assert_eq!(batch.len(), count);
            assert_eq!(batch.iter().len(), count);
            for (raw, encoded) in batch.iter().zip((0..count).map(|i| batch.get(i).unwrap())) {
                assert_eq!(raw, encoded.as_bytes());
                let item = Item::decode(encoded);
                assert_eq!(item.payload, "p");
                let id: Uuid = item.id.unwrap().parse().unwrap();
                assert_eq!(id.get_version_num(), 7);
                assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
                let (seconds, nanos) = id.get_timestamp().unwrap().to_unix();
                let id_ms = seconds * 1000 + u64::from(nanos) / 1_000_000;
                assert!(id_ms >= item.enqueued_at_ms.unwrap(), "{id}");
                ids.push(id);
            }
            ids.push(Item::new("single").id.unwrap().parse().unwrap());
        }
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    }

    #[test]
    fn the_id_clock_stays_ordered_when_the_counter_fills_or_the_wall_clock_goes_back() {
        let mut clock = IdClock {
            unix_ms: 0,
            next_counter: 0,
        };
        let seed = || 5;
        let ranges = [
            clock.reserve(1000, 2, seed),
            clock.reserve(1000, 1, seed),
            clock.reserve(999, 1, seed),
            clock.reserve(1001, 1, || (1 << COUNTER_BITS) - 2),
            clock.reserve(1001, 2, seed),
            clock.reserve(1001, 1, seed),
            clock.reserve(1003, 1, seed),
        ];
        let found: Vec<_> = ranges
            .iter()
            .map(|range| (range.unix_ms, range.first_counter))
            .collect();
        let expected = [
            (1000, 5),
            (1000, 7),
            (1000, 8),
            (1001, (1 << COUNTER_BITS) - 2),
            (1002, 5),
            (1002, 7),
            (1003, 5),
        ];
        assert_eq!(found, expected);
        let ids: Vec<_> = ranges.iter().map(|range| range.id(0)).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        assert!(ranges[0].id(0) < ranges[0].id(1) && ranges[0].id(1) < ranges[1].id(0));
    }

    #[test]
    fn batches_append_and_clear() {
        let mut group = Batch::default();
        assert!(group.is_empty() && group.get(0).is_none());
        let (one, two) = (Batch::fresh(1, "a"), Batch::fresh(2, "bc"));
        group.append(&one);
        group.append(&two);
        assert_eq!(group.len(), 3);
        assert_eq!(group.byte_len(), one.byte_len() + two.byte_len());
        assert_eq!(group.get(0), one.get(0));
        assert_eq!(group.get(2), two.get(1));
        group.clear();
        assert!(group.is_empty() && group.byte_len() == 0);
    }

    #[test]
    fn payloads_with_quotes_and_newlines_survive() {
        let item = Item::new("line one\n\"two\" 💜");
        assert_eq!(Item::decode(&item.encode()).payload, "line one\n\"two\" 💜");
    }
}
