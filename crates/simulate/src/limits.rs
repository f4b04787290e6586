//! How big a simulated run may get. The simulator is for minutes up to a day of traffic;
//! these limits turn a typo (`1e12,5`, a count with six digits too many, `--step 1ms` over
//! a day) into a one-line error instead of hours of stepping or an allocation that aborts.

use std::time::Duration;

/// The latest arrival, and the longest duration flag, a run may have.
pub const MAX_HORIZON: Duration = Duration::from_secs(24 * 3600);
/// Items of one workload, all lines together.
pub const MAX_ITEMS: u64 = 100_000_000;
/// Clock steps of one run: the horizon divided by `--step`.
pub const MAX_STEPS: u64 = 10_000_000;
/// Timeline samples of one run: the horizon divided by `--sample-every`.
pub const MAX_SAMPLES: u64 = 500_000;

/// "`what` is past ...": the one wording for anything beyond [`MAX_HORIZON`].
pub(crate) fn past_horizon(what: &str) -> String {
    format!(
        "{what} is past the {} s (24h) a simulation covers",
        MAX_HORIZON.as_secs()
    )
}
