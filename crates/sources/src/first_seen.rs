//! Dates the ebb queue's leases by when a reader first saw each item in a consumer's hands.
//!
//! The queue records no lease start: a write per item in the consumer's one-round-trip take
//! would cost every consumer, on every item, for the sake of a reader. The reader dates them
//! instead, at no cost to anyone: an item is as old as the first reading that showed it in
//! that consumer's processing list. So a lease start is late by at most one reading interval
//! (the operator's polling, the metrics API's `interval`), and a reader that restarts dates
//! what is in hand from its first reading. Items are told apart by a fingerprint of their
//! content (`ebb_queue::HeldItems`): ebb's producer gives each item an id, so that is exact;
//! a plain string that repeats (the dojo's producer) and that one consumer holds again right
//! after acknowledging it reads as one long lease.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use ebb_queue::HeldItems;

use crate::Lease;

/// What each consumer held at the last reading: fingerprint and first sighting, oldest first.
#[derive(Default)]
pub(crate) struct FirstSeen {
    held: Mutex<HashMap<String, Vec<(String, SystemTime)>>>,
}

impl FirstSeen {
    /// The leases of `holders`, read at `now`: an item seen at the last reading keeps its
    /// date, a new one is dated `now`. Consumers gone from the reading are forgotten.
    pub(crate) fn leases(&self, holders: &[HeldItems], now: SystemTime) -> Vec<Lease> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = HashMap::with_capacity(holders.len());
        let mut leases = Vec::with_capacity(holders.len());
        for holder in holders {
            let mut before = held.remove(&holder.consumer).unwrap_or_default();
            let dated: Vec<(String, SystemTime)> = holder
                .fingerprints
                .iter()
                .map(|fingerprint| {
                    // Each earlier sighting matches one item only: two equal items held at once
                    // keep their own dates.
                    let seen = before
                        .iter()
                        .position(|(known, _)| known == fingerprint)
                        .map_or(now, |at| before.remove(at).1);
                    (fingerprint.clone(), seen)
                })
                .collect();
            leases.push(Lease {
                consumer: holder.consumer.clone(),
                leased: holder.items,
                since: (holder.items > 0)
                    .then(|| dated.iter().map(|(_, seen)| *seen).min().unwrap_or(now)),
            });
            next.insert(holder.consumer.clone(), dated);
        }
        *held = next;
        leases
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn holder(consumer: &str, fingerprints: &[&str]) -> HeldItems {
        HeldItems {
            consumer: consumer.to_owned(),
            items: fingerprints.len() as u64,
            fingerprints: fingerprints.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    #[test]
    fn an_item_is_dated_from_its_first_sighting_and_a_new_one_from_now() {
        let first_seen = FirstSeen::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let t1 = t0 + Duration::from_secs(5);
        let t2 = t1 + Duration::from_secs(5);
        let leases = first_seen.leases(&[holder("a", &["x", "y"]), holder("b", &[])], t0);
        assert_eq!(leases[0].since, Some(t0));
        assert_eq!(leases[1], Lease::idle("b"));
        // `x` acknowledged, `z` taken: the oldest in hand is still `y`, from t0.
        let leases = first_seen.leases(&[holder("a", &["y", "z"])], t1);
        assert_eq!(leases[0].since, Some(t0));
        assert_eq!(leases[0].leased, 2);
        // `y` acknowledged: `z` dates from t1, when it was first seen.
        let leases = first_seen.leases(&[holder("a", &["z"])], t2);
        assert_eq!(leases[0].since, Some(t1));
    }

    #[test]
    fn a_consumer_gone_from_a_reading_starts_afresh_when_it_comes_back() {
        let first_seen = FirstSeen::default();
        let t0 = SystemTime::UNIX_EPOCH;
        let t1 = t0 + Duration::from_secs(1);
        first_seen.leases(&[holder("a", &["x"])], t0);
        first_seen.leases(&[], t1);
        let leases = first_seen.leases(&[holder("a", &["x"])], t1);
        assert_eq!(leases[0].since, Some(t1));
    }
}
