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
    /// In flight per consumer, with when each lease began, when the source can tell. Empty
    /// when it cannot: the ebb queue keeps one processing list per consumer but no lease
    /// start per item, and listing the consumers is a scan the shared read pipeline avoids.
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
    /// The consumer, as the queue names it.
    pub consumer: String,
    /// Items it holds.
    pub leased: u64,
    /// When its lease began.
    pub since: SystemTime,
}

/// Which number of a reading a metric serves (the metrics API serves one per metric; a
/// QueueScaler's control loop takes the whole reading). Each source names the counts it can
/// serve, and what it calls them, in its own file (`COUNTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Count {
    Waiting,
    InFlight,
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
}
