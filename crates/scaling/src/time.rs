//! Time as an input. The scaler never reads a clock: callers pass `now` in, so the same
//! inputs give the same decisions, in tests, in `ebb simulate` and in production.

use std::ops::Add;
use std::time::Duration;

/// A point in time, as the time elapsed since an epoch the caller chooses (process start,
/// simulation start, ...). Only differences between instants matter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    /// The caller's epoch.
    pub const EPOCH: Instant = Instant(Duration::ZERO);

    pub const fn from_millis(millis: u64) -> Self {
        Instant(Duration::from_millis(millis))
    }

    pub const fn from_secs(secs: u64) -> Self {
        Instant(Duration::from_secs(secs))
    }

    pub const fn since_epoch(self) -> Duration {
        self.0
    }

    /// `age` before this instant, or the epoch when that reaches before it.
    pub fn saturating_sub(self, age: Duration) -> Instant {
        Instant(self.0.saturating_sub(age))
    }

    /// Time from `earlier` to `self`; zero when `earlier` is in the future.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0 + rhs)
    }
}

impl From<Duration> for Instant {
    fn from(since_epoch: Duration) -> Self {
        Instant(since_epoch)
    }
}

/// Upstream's `timestamp.After(now - window)`: strictly inside the last `window`.
pub(crate) fn strictly_within(at: Instant, now: Instant, window: Duration) -> bool {
    now.saturating_duration_since(at) < window
}

/// Upstream's `!timestamp.Before(now - window)`: inside the last `window`, edge included.
pub(crate) fn within_inclusive(at: Instant, now: Instant, window: Duration) -> bool {
    now.saturating_duration_since(at) <= window
}
