use std::time::Duration;

/// Everything that can go wrong talking to the queue.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--redis-server` value is none of the accepted forms.
    #[error(
        "invalid Redis server {given:?}: {reason} (expected host:port, redis://[:password@]host:port[/db], rediss://… or redis+cluster://host:port[,host:port…])"
    )]
    InvalidAddress { given: String, reason: String },

    /// Redis could not be reached or answered with an error.
    #[error("Redis at {address} is unreachable: {source}")]
    Redis {
        address: String,
        #[source]
        source: redis::RedisError,
    },

    /// Redis accepted the connection but did not answer in time (overloaded, or frozen).
    #[error("Redis at {address} did not answer within {within:?}")]
    NoAnswer { address: String, within: Duration },

    /// The `--redis-ca` file cannot serve as trusted CA.
    #[error("invalid --redis-ca {file:?}: {reason}")]
    InvalidCa { file: String, reason: String },

    /// A queue or consumer name that cannot make a Redis key.
    #[error("invalid {what} {given:?}: {reason}")]
    InvalidName {
        what: &'static str,
        given: String,
        reason: String,
    },

    /// A lease shorter than Redis' millisecond TTL resolution cannot be kept alive.
    #[error("lease {0:?} is too short: it must be at least 1ms")]
    LeaseTooShort(Duration),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
