//! The read port: where the loop learns how much work there is.

use std::future::Future;

use crate::Result;

/// One observation of the work, taken at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    /// Items waiting to be taken.
    pub waiting: u64,
    /// Items taken and not yet acknowledged.
    pub in_flight: u64,
    /// Items finished since some fixed point in the past, if the source counts them: the
    /// difference between two readings gives the service rate.
    pub completed_total: Option<u64>,
}

pub trait MetricSource: Send + Sync {
    /// What this source reads, for messages (`redis 127.0.0.1:6379 list padok`).
    fn describe(&self) -> String;

    fn read(&self) -> impl Future<Output = Result<Reading>> + Send;
}
