#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Redis `ebb up` starts when given none.
    #[error("{0}; or pass --redis-server HOST:PORT")]
    LocalRedis(#[from] ebb_redis_server::Error),

    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },

    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },

    #[error("the replica supervisor has stopped")]
    SupervisorGone,

    #[error("{flag} {reason}")]
    InvalidFlag { flag: &'static str, reason: String },

    #[error("{flag}: {source}")]
    Listen {
        flag: &'static str,
        source: ebb_runtime::Error,
    },

    #[error(transparent)]
    Runtime(#[from] ebb_runtime::Error),

    #[error(transparent)]
    Queue(#[from] ebb_queue::Error),

    #[error(transparent)]
    Autoscaler(#[from] ebb_autoscaler::Error),

    #[error(transparent)]
    Scaling(#[from] ebb_scaling::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
