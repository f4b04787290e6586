#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {source_name}: {reason}")]
    Read { source_name: String, reason: String },

    #[error("scaling {target}: {reason}")]
    Apply { target: String, reason: String },

    #[error("the tick interval must be above 0")]
    ZeroInterval,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
