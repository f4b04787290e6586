//! What travels through the queue: a small JSON envelope carrying an id and the enqueue time,
//! so consumers can de-duplicate and measure queue latency. Items pushed by other tools (the
//! dojo's producer, `redis-cli RPUSH`) are plain strings; they decode as a payload alone.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

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
        Item {
            id: Some(uuid::Uuid::now_v7().to_string()),
            enqueued_at_ms: Some(unix_ms_now()),
            payload: payload.into(),
        }
    }

    /// The string stored in Redis: the JSON envelope, or the bare payload when there is no id.
    pub fn encode(&self) -> String {
        match (&self.id, self.enqueued_at_ms) {
            (Some(id), Some(enqueued_at_ms)) => serde_json::to_string(&Envelope {
                id: Cow::Borrowed(id),
                enqueued_at_ms,
                payload: Cow::Borrowed(&self.payload),
            })
            .expect("an envelope of strings and integers always serializes"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_round_trips() {
        let item = Item::new(DEFAULT_PAYLOAD);
        assert_eq!(Item::decode(&item.encode()), item);
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
    fn payloads_with_quotes_and_newlines_survive() {
        let item = Item::new("line one\n\"two\" 💜");
        assert_eq!(Item::decode(&item.encode()).payload, "line one\n\"two\" 💜");
    }
}
