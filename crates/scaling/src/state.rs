//! The scaler's memory: past recommendations (for stabilization windows), past scale events
//! (for rate-limit policies) and how long the queue has been empty (for the cooldown).
//! Only what can still influence a decision is kept, so it stays small.

use crate::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamped {
    pub at: Instant,
    pub replicas: u32,
}

/// History owned by the caller (inside a [`crate::Scaler`]); clone it to explore
/// "what if" without touching the real one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScalerState {
    pub(crate) started: bool,
    pub(crate) recommendations: Vec<Stamped>,
    pub(crate) scale_ups: Vec<Stamped>,
    pub(crate) scale_downs: Vec<Stamped>,
    pub(crate) queue_empty_since: Option<Instant>,
    /// Upstream's `ScaledToZero` condition: the last change was this scaler taking the target
    /// from some replicas to 0 with min 0. Set on every change, as `reconcileAutoscaler` does.
    pub(crate) scaled_to_zero: bool,
}

impl ScalerState {
    /// Recommendations still inside a stabilization window, oldest first.
    pub fn recommendations(&self) -> impl Iterator<Item = (Instant, u32)> + '_ {
        self.recommendations.iter().map(|r| (r.at, r.replicas))
    }

    /// Since when waiting + in flight has been 0, if it is 0 now.
    pub fn queue_empty_since(&self) -> Option<Instant> {
        self.queue_empty_since
    }

    /// Whether the scaler itself took the target to 0 (upstream's `ScaledToZero` condition).
    pub fn scaled_to_zero(&self) -> bool {
        self.scaled_to_zero
    }
}
