/// What a metric source or a scale target failed with, kept whole: each brings its own
/// error type.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {source_name}: {source}")]
    Read {
        source_name: String,
        #[source]
        source: Cause,
    },

    /// A Redis read failed; the queue error names Redis and its address.
    #[error("reading {source_name}: {source}")]
    Redis {
        source_name: String,
        #[source]
        source: ebb_queue::Error,
    },

    /// The consumer group is not on the stream: far more likely a typo than an idle group, and
    /// a typo must not read as "nothing to do" and scale to zero.
    #[error(
        "reading stream {stream:?} at {address}: it has no consumer group {group:?} (check the group's name, or create it with XGROUP CREATE)"
    )]
    MissingStreamGroup {
        address: String,
        stream: String,
        group: String,
    },

    /// The Prometheus server address is not an http URL.
    #[error("invalid Prometheus server address {given:?}: {reason}")]
    InvalidPrometheusAddress { given: String, reason: String },

    /// An HTTP request of a source failed (unreachable, timed out, redirected, a reply too
    /// large): `reason` says which, never with what the server sent.
    #[error("{server}: {reason}")]
    Http { server: String, reason: String },

    /// No usable answer from Prometheus (unreachable, timed out, redirected, too large).
    #[error("querying Prometheus at {server} for {query:?}: {reason}")]
    PrometheusRequest {
        server: String,
        query: String,
        reason: String,
    },

    /// Prometheus answered `status: error` (a PromQL syntax error, a timeout, …).
    #[error("Prometheus at {server} refused {query:?}: {error_type}: {error}")]
    PrometheusRefused {
        server: String,
        query: String,
        error_type: String,
        error: String,
    },

    /// Prometheus answered, but not with one count.
    #[error("Prometheus at {server}, query {query:?}: {reason}")]
    PrometheusResult {
        server: String,
        query: String,
        reason: String,
    },

    /// The query matched nothing and the source reads that as a failure
    /// ([`EmptyResult::Error`](crate::sources::prometheus::EmptyResult::Error)): its own variant,
    /// so that the metrics API can answer 404 for it rather than 503.
    #[error(
        "Prometheus at {server}, query {query:?}: the query returned nothing (empty result, read as an error for this source)"
    )]
    PrometheusEmpty { server: String, query: String },

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
