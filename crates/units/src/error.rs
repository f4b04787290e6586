//! The crate's one error type. Each message is one line; clap shows it after the flag.

/// Why a number, a size or a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("must be a positive integer (digits only)")]
    NotPositive,
    #[error("must be 0 or a positive integer (digits only)")]
    NotCount,
    #[error("must be a positive size in bytes: digits, optionally followed by KiB, MiB or GiB")]
    NotSize,
    /// `max` is written out with its unit, if any (`4294967295`, `18446744073709551615 bytes`).
    #[error("is too large (at most {max})")]
    TooLarge { max: String },
    #[error("invalid duration {given:?}: {problem}")]
    InvalidDuration {
        given: String,
        problem: DurationProblem,
    },
}

/// What is wrong with a duration's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationProblem {
    #[error("empty")]
    Empty,
    #[error("negative")]
    Negative,
    #[error("missing unit (e.g. 1s, 500ms)")]
    MissingUnit,
    #[error("expected a number before each unit")]
    MissingNumber,
    #[error("unknown unit {0:?}")]
    UnknownUnit(String),
    #[error("too large")]
    TooLarge,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
