/// What a scale target failed with, kept whole: each brings its own error type.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A read of the metric source failed; the catalogue's error says which and why.
    #[error(transparent)]
    Source(#[from] ebb_sources::Error),

    #[error("scaling {target}: {source}")]
    Apply {
        target: String,
        #[source]
        source: Cause,
    },

    /// The target is not there (yet): created in the same apply as its scaler, it reaches the
    /// target's watch a moment later. The loop tries again within seconds, not at the next
    /// interval (see `ControlLoop::run`).
    #[error("scaling {target}: not found")]
    TargetMissing { target: String },

    #[error("the tick interval must be above 0")]
    ZeroInterval,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
