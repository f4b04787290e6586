use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {source_name}: {reason}")]
    Read { source_name: String, reason: String },

    #[error("scaling {target}: {reason}")]
    Apply { target: String, reason: String },

    #[error("invalid scaling configuration: {0}")]
    Config(#[from] ebb_scaling::Error),

    #[error("the tick interval must be above zero, got {0:?}")]
    ZeroInterval(Duration),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
