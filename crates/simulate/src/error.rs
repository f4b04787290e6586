//! The crate's one error type: each message is one line naming what is wrong and where.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}:{line}: {what}")]
    BadArrivalLine {
        path: String,
        line: usize,
        what: String,
    },
    #[error("{path}: no arrivals (expected lines `t_seconds,count`)")]
    NoArrivals { path: String },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Names the scaler flag at fault (`--min-replicas: ...`).
    #[error(transparent)]
    Scaling(#[from] ebb_scaling::Error),
    /// A pipeline flag the scaling crate refused.
    #[error("{flag}: {source}")]
    PipelineFlag {
        flag: &'static str,
        #[source]
        source: ebb_scaling::Error,
    },
    #[error("{flag} must be above 0")]
    ZeroDuration { flag: &'static str },
    #[error("{0}")]
    InvalidSettings(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
