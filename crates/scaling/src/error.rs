//! The one error type of the crate: every way a configuration or an input can be wrong,
//! each message a single line that names the offending value.

use crate::setting::Setting;

/// What is wrong with a scaler configuration, its settings, or measured rates.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("max replicas must be at least 1, got 0")]
    MaxIsZero,
    #[error("min replicas ({min}) is above max replicas ({max})")]
    MinAboveMax { min: u32, max: u32 },
    #[error("target per replica must be a finite number above 0, got {0}")]
    InvalidTarget(f64),
    #[error("{direction} tolerance must be a finite number between 0 and 1, got {value}")]
    InvalidTolerance { direction: Direction, value: f64 },
    #[error("drain-time target must be at least 1 s, got {0:?}")]
    DrainTimeTooShort(std::time::Duration),
    #[error(
        "{direction} stabilization window must be at most 3600 s (autoscaling/v2 limit), got {secs} s"
    )]
    WindowTooLong { direction: Direction, secs: u64 },
    #[error("{direction} policy #{index}: value must be above 0")]
    PolicyValueZero { direction: Direction, index: usize },
    #[error(
        "{direction} policy #{index}: period must be between 1 and 1800 s (autoscaling/v2 limits), got {secs} s"
    )]
    PolicyPeriodOutOfRange {
        direction: Direction,
        index: usize,
        secs: u64,
    },
    #[error("interval must be above 0")]
    ZeroInterval,
    /// A setting a person gave (a flag, a resource's field) is wrong: names it.
    #[error("{setting}: {problem}")]
    Setting {
        setting: Setting,
        #[source]
        problem: Box<Error>,
    },
    #[error(
        "rates must be finite and not negative, with a service rate above 0: arrival {arrival_per_sec}/s, service {service_per_replica_per_sec}/s per replica"
    )]
    InvalidRates {
        arrival_per_sec: f64,
        service_per_replica_per_sec: f64,
    },
}

/// Which way a rule or a tolerance applies: used to say where an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ScaleUp,
    ScaleDown,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::ScaleUp => "scale-up",
            Direction::ScaleDown => "scale-down",
        })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
