use std::time::Duration;

/// Why the consumer could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Queue(#[from] ebb_queue::Error),

    #[error(transparent)]
    Runtime(#[from] ebb_runtime::Error),

    #[error(
        "--lease {0:?} is too short: use at least 30ms (heartbeats go every third of it, and a pop waits in Redis at most a sixth)"
    )]
    LeaseTooShort(Duration),

    #[error("{0} stopped unexpectedly")]
    Panicked(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
