//! What reading, checking or building a source fails with: one enum for the catalogue.

/// What a source of its own (outside the catalogue: a test's, an embedder's) failed with,
/// kept whole.
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

    /// Nothing on the broker knows the Celery queue: no binding set, no task listed or held.
    /// Far more likely a typo than an idle queue, and a typo must not scale to zero.
    #[error(
        "reading celery queue {queue:?} at {address}: no such queue ({binding:?} is missing, and no task is listed or held for it; check the queue's name, its keyPrefix and the database, or declare it by starting a worker or sending a task)"
    )]
    MissingCeleryQueue {
        address: String,
        queue: String,
        binding: String,
    },

    /// Nothing on Redis knows the RQ queue: never enqueued to, no worker, nothing held.
    /// Far more likely a typo than an idle queue, and a typo must not scale to zero.
    #[error(
        "reading rq queue {queue:?} at {address}: no such queue (\"rq:queue:{queue}\" is not in rq:queues, no worker serves it and no job of it is held; check the queue's name and the database, or enqueue to it or start a worker on it)"
    )]
    MissingRqQueue { address: String, queue: String },

    /// Nothing on Redis knows the Sidekiq queue: no job listed or ever pushed, no live
    /// process serving it. Far more likely a typo than an idle queue, and a typo must not
    /// scale to zero.
    #[error(
        "reading sidekiq queue {queue:?} at {address}: no such queue ({list:?} is empty, {queue:?} is not in {queues:?} and no live process serves it; check the queue's name, the namespace and the database, or push a job to it or start a process on it)"
    )]
    MissingSidekiqQueue {
        address: String,
        queue: String,
        list: String,
        queues: String,
    },

    /// Nothing on Redis knows the BullMQ queue: no meta hash (written by the first `add` and by
    /// every Worker), nothing waiting, delayed or held. Far more likely a typo (of the queue or
    /// its prefix) than an idle queue, and a typo must not scale to zero.
    #[error(
        "reading bullmq queue {queue:?} at {address}: no such queue ({meta:?} is missing and no job of it is listed; check the queue's name, its prefix and the database, or add a job to it or start a Worker on it)"
    )]
    MissingBullmqQueue {
        address: String,
        queue: String,
        meta: String,
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
    /// ([`EmptyResult::Error`](crate::prometheus::EmptyResult::Error)): its own variant,
    /// so that the metrics API can answer 404 for it rather than 503.
    #[error(
        "Prometheus at {server}, query {query:?}: the query returned nothing (empty result, read as an error for this source)"
    )]
    PrometheusEmpty { server: String, query: String },

    /// A source spec that cannot be read as written: `field` names it, as the side that
    /// wrote the spec calls it (`spec.source.redisStream.group`, `metrics[0].source…`).
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },

    /// A source that reads Redis was built without a Redis server to read.
    #[error("the {kind} source reads Redis, and no Redis server was given for it")]
    NoRedis { kind: &'static str },

    /// A spec whose templates were not filled in was built (a program error of the side
    /// that built it: it must resolve the spec first).
    #[error("the {kind} source's {field} is still a template ({template:?}): fill it in first")]
    Unresolved {
        kind: &'static str,
        field: &'static str,
        template: String,
    },

    /// The queue's key is not one the queue accepts.
    #[error(transparent)]
    Queue(#[from] ebb_queue::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
