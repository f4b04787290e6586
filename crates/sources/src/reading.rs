//! The read port, and what one read tells: how much work there is, as far as the source can
//! tell. Sources fill what they know and leave the rest unknown: never a 0 for "cannot tell".

use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::{Error, Result};

/// One observation of the work, taken at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// Items waiting to be taken.
    pub waiting: u64,
    /// Items taken and not yet acknowledged: `None` when the source cannot tell (a plain
    /// list, whose consumers own what they pop; a PromQL value), which is not "nothing in
    /// flight". What a decision does with an unknown count is its own rule (ebb-scaling's
    /// `Input::in_flight`): it judges emptiness on the waiting items alone, and says so.
    pub in_flight: Option<u64>,
    /// Items finished since some fixed point in the past, if the source counts them: the
    /// difference between two readings gives the service rate.
    pub completed_total: Option<u64>,
    /// How long the oldest waiting item has waited, if the source can tell (no source can
    /// today: the ebb queue's items carry no enqueue time the source reads).
    pub oldest_waiting_age: Option<Duration>,
    /// Items held back on purpose and not counted in `waiting` (a paused queue or
    /// partition), if the source has such a state.
    pub paused: Option<u64>,
    /// Items that become waiting at a later time (delayed, retried later), kept apart from
    /// `paused`, if the source has such a state.
    pub scheduled: Option<u64>,
    /// In flight per consumer, with when each one's oldest lease began, from sources that
    /// know who holds each item (the ebb queue, a stream's consumer group). Every consumer
    /// the source knows is listed, idle ones with 0 items: a consumer missing from the list
    /// is unknown to the source, which is not the same as idle. Empty when the source cannot
    /// tell (a plain list, a PromQL value). Read in the same call as the counts, so the
    /// leased items add up to `in_flight`.
    pub leases: Vec<Lease>,
}

impl Reading {
    /// A reading of only waiting items, from a source that cannot tell what is in flight.
    pub fn waiting(waiting: u64) -> Reading {
        Reading {
            waiting,
            ..Reading::default()
        }
    }

    /// A reading of waiting and in-flight items, both known.
    pub fn counts(waiting: u64, in_flight: u64) -> Reading {
        Reading {
            waiting,
            in_flight: Some(in_flight),
            ..Reading::default()
        }
    }
}

/// One consumer's share of the work in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The consumer, as the queue names it (the pod's name in the consumer chart).
    pub consumer: String,
    /// Items it holds: every item in hand, whatever its `--concurrency`.
    pub leased: u64,
    /// When the oldest of them was taken, as the source can date it (each source's file says
    /// how closely); `None` when it holds nothing.
    pub since: Option<SystemTime>,
}

impl Lease {
    /// A consumer holding nothing.
    pub fn idle(consumer: impl Into<String>) -> Lease {
        Lease {
            consumer: consumer.into(),
            leased: 0,
            since: None,
        }
    }
}

/// Which number of a reading a metric serves (the metrics API serves one per metric; a
/// QueueScaler's control loop takes the whole reading). Each source names the counts it can
/// serve, and what it calls them, in its own file (`COUNTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Count {
    Waiting,
    InFlight,
    /// Waiting plus in flight: the work there is, held or not. What an HPA should scale on
    /// when it must never remove the last pod while one item is still being worked on.
    Total,
}

/// What one read of a source gave, for a server of the value itself: the counts, or a
/// PromQL sample as it is (fractions kept: `0.5` is served as `500m`, not rounded up).
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    Counts(Reading),
    Sample(f64),
}

impl Count {
    /// The number this count serves out of `measured`; an error when the source could not
    /// tell it (never 0 for unknown).
    pub fn value(self, measured: &Measured, source: &str) -> Result<f64> {
        let reading = match measured {
            Measured::Sample(value) => return Ok(*value),
            Measured::Counts(reading) => reading,
        };
        let count = match self {
            Count::Waiting => Some(reading.waiting),
            Count::InFlight => reading.in_flight,
            Count::Total => reading
                .in_flight
                .map(|in_flight| in_flight + reading.waiting),
        };
        // Counts are far below 2^53: exact as f64.
        count
            .map(|count| count as f64)
            .ok_or_else(|| Error::Invalid {
                field: source.to_owned(),
                reason: "this source cannot tell the items in flight".to_owned(),
            })
    }
}

pub trait MetricSource: Send + Sync {
    /// What this source reads, for messages (`redis 127.0.0.1:6379 list padok`).
    fn describe(&self) -> String;

    fn read(&self) -> impl Future<Output = Result<Reading>> + Send;

    /// The read as a server of the value itself wants it: the counts, unless the source has
    /// a more exact value than a count (a PromQL sample).
    fn measure(&self) -> impl Future<Output = Result<Measured>> + Send {
        async { self.read().await.map(Measured::Counts) }
    }

    /// Whether [`drain`](Self::drain) can ask this source's consumers to take nothing new: a
    /// source whose queue its consumers consult before each take (the ebb queue's draining
    /// markers). A scale-in then waits for the chosen consumers to finish what they hold.
    fn can_drain(&self) -> bool {
        false
    }

    /// Asks `consumers` (their ids, as [`Reading::leases`] names them) to finish what they
    /// hold and take nothing new, until [`undrain`](Self::undrain) or for `ttl`, whichever
    /// comes first: a scaler that dies mid-drain never leaves consumers idle for good.
    /// Idempotent. Does nothing on a source that [cannot drain](Self::can_drain).
    fn drain(
        &self,
        consumers: &[String],
        ttl: Duration,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (consumers, ttl);
        async { Ok(()) }
    }

    /// Lets `consumers` take work again (a drain cancelled: the queue grew, or the scale-in
    /// went without them).
    fn undrain(&self, consumers: &[String]) -> impl Future<Output = Result<()>> + Send {
        let _ = consumers;
        async { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_is_waiting_plus_in_flight_and_unknown_when_in_flight_is() {
        let known = Measured::Counts(Reading::counts(3, 2));
        assert_eq!(Count::Total.value(&known, "m").unwrap(), 5.0);
        assert_eq!(Count::InFlight.value(&known, "m").unwrap(), 2.0);
        let list = Measured::Counts(Reading::waiting(3));
        let message = Count::Total
            .value(&list, "metrics[0]")
            .unwrap_err()
            .to_string();
        assert!(message.contains("metrics[0]"), "{message}");
        // One item in hand, nothing waiting: the HPA's value stays at 1, never 0.
        let busy = Measured::Counts(Reading::counts(0, 1));
        assert_eq!(Count::Total.value(&busy, "m").unwrap(), 1.0);
    }
}
