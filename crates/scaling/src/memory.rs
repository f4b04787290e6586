//! What a scaler must not forget across a restart of the process that runs it, as ages
//! ("30 s ago") rather than instants, since a new process has a new clock: the
//! recommendations a scale-down window still holds, since when the queue has been empty
//! (the cooldown), and the last change of the count.
//!
//! Recommendations are kept only where they matter after a restart: those above the latest
//! one (they hold a scale-down back; without them a fresh scaler would scale down too soon),
//! each value with the latest time it was recommended. So a steady scaler remembers nothing
//! that changes, and persisting its memory writes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::state::{ScalerState, Stamped};
use crate::time::Instant;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// Recommendations above the latest one: how long ago, and the count.
    pub recommendations: Vec<(Duration, u32)>,
    /// How long the queue (waiting and in flight) has been empty, if it is.
    pub queue_empty_for: Option<Duration>,
    /// The last change of the count: how long ago, and by how much (negative: down).
    pub last_change: Option<(Duration, i64)>,
}

impl ScalerState {
    /// This state's memory at `now`.
    pub fn memory(&self, now: Instant) -> Memory {
        let newest = self
            .recommendations
            .iter()
            .max_by_key(|past| past.at)
            .map_or(0, |past| past.replicas);
        let mut latest: BTreeMap<u32, Instant> = BTreeMap::new();
        for past in self
            .recommendations
            .iter()
            .filter(|past| past.replicas > newest)
        {
            let at = latest.entry(past.replicas).or_insert(past.at);
            *at = (*at).max(past.at);
        }
        let age = |at: Instant| now.saturating_duration_since(at);
        let ups = self
            .scale_ups
            .iter()
            .map(|event| (event.at, i64::from(event.replicas)));
        let downs = self
            .scale_downs
            .iter()
            .map(|event| (event.at, -i64::from(event.replicas)));
        let last_change = ups
            .chain(downs)
            .max_by_key(|(at, _)| *at)
            .map(|(at, change)| (age(at), change));
        Memory {
            recommendations: latest
                .into_iter()
                .map(|(replicas, at)| (age(at), replicas))
                .collect(),
            queue_empty_for: self.queue_empty_since.map(age),
            last_change,
        }
    }

    /// A state holding `memory` as seen at `now` (ages that reach before the caller's epoch
    /// start at the epoch). The last change counts against the rate-limit policies as it did.
    pub fn recalled(memory: &Memory, now: Instant) -> ScalerState {
        let at = |age: Duration| now.saturating_sub(age);
        let mut state = ScalerState {
            recommendations: memory
                .recommendations
                .iter()
                .map(|&(age, replicas)| Stamped {
                    at: at(age),
                    replicas,
                })
                .collect(),
            queue_empty_since: memory.queue_empty_for.map(at),
            // Started: the count found now is not a fresh first recommendation that would
            // hold a scale-down for a whole window.
            started: true,
            ..ScalerState::default()
        };
        if let Some((age, change)) = memory.last_change {
            let event = Stamped {
                at: at(age),
                replicas: u32::try_from(change.unsigned_abs()).unwrap_or(u32::MAX),
            };
            match change.signum() {
                1 => state.scale_ups.push(event),
                -1 => state.scale_downs.push(event),
                _ => {}
            }
        }
        state
    }
}
