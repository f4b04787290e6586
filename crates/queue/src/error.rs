use std::time::Duration;

use crate::RedisErrorKind;

/// Everything that can go wrong talking to the queue.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--redis-server` value is none of the accepted forms.
    #[error(
        "invalid Redis server {given:?}: {reason} (expected host:port, redis://[:password@]host:port[/db], rediss://… or redis+cluster://host:port[,host:port…])"
    )]
    InvalidAddress { given: String, reason: String },

    /// The `--redis-server` value has an accepted form that Redis' client cannot read.
    #[error(
        "invalid Redis server {given:?}: {source} (expected host:port, redis://[:password@]host:port[/db] or rediss://…)"
    )]
    UnreadableAddress {
        given: String,
        #[source]
        source: redis::RedisError,
    },

    /// Redis could not be reached, or refused the call: `kind` says why, in one line
    /// ("Redis at host:port is unreachable: connection refused", "Redis at host:port: wrong
    /// password: …").
    #[error("Redis at {address}{}{kind}", if kind.is_unreachable() { " is " } else { ": " })]
    Redis {
        address: String,
        /// Boxed: every `Result` of the crates above carries this error.
        kind: Box<RedisErrorKind>,
        #[source]
        source: redis::RedisError,
    },

    /// Redis accepted the connection but did not answer in time (overloaded, or frozen).
    #[error("Redis at {address} did not answer within {within:?}")]
    NoAnswer { address: String, within: Duration },

    /// The `--redis-ca` file cannot serve as trusted CA: not for this address, or no
    /// certificate in it.
    #[error("invalid --redis-ca {file:?}: {reason}")]
    InvalidCa { file: String, reason: String },

    /// The `--redis-ca` file cannot be read.
    #[error("invalid --redis-ca {file:?}: {source}")]
    UnreadableCa {
        file: String,
        #[source]
        source: std::io::Error,
    },

    /// The `--redis-ca` file is not PEM.
    #[error("invalid --redis-ca {file:?}: not PEM: {source}")]
    CaNotPem {
        file: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },

    /// The TLS client refuses the `--redis-ca` certificates.
    #[error("invalid --redis-ca {file:?}: {source}")]
    CaRefused {
        file: String,
        #[source]
        source: redis::RedisError,
    },

    /// A queue or consumer name that cannot make a Redis key.
    #[error("invalid {what} {given:?}: {reason}")]
    InvalidName {
        what: &'static str,
        given: String,
        reason: String,
    },

    /// A lease too short for its pops to wait well below its heartbeat period.
    #[error(
        "lease {0:?} is too short: it must be at least 30ms (heartbeats go every third of it, and a pop waits in Redis at most a sixth)"
    )]
    LeaseTooShort(Duration),
}

impl Error {
    /// The class of a Redis failure ([`RedisErrorKind`]); `None` for errors that are not
    /// about talking to Redis (a bad flag, a bad name).
    pub fn kind(&self) -> Option<RedisErrorKind> {
        match self {
            Error::Redis { kind, .. } => Some((**kind).clone()),
            Error::NoAnswer { within, .. } => Some(RedisErrorKind::timeout(*within)),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
