//! A probe: one concrete read the poller makes and the cache holds (a list's length, a queue's
//! counts, a stream group's backlog, one rendered PromQL query), and the ebb-autoscaler source
//! that makes it. Two requests that need the same read share one probe.

use ebb_autoscaler::sources::prometheus::{EmptyResult as PromEmpty, PrometheusSource};
use ebb_autoscaler::sources::redis::RedisSource;
use ebb_autoscaler::sources::redis_list::RedisListSource;
use ebb_autoscaler::sources::redis_stream::RedisStreamSource;
use ebb_autoscaler::{MetricSource, Reading};
use ebb_queue::{Queue, RedisAddress, RedisReader};

use crate::config::{EmptyResult, SourceKind};

/// How often a leased queue's dead consumers are reaped while it has items in flight.
const REAP_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    List {
        key: String,
    },
    Queue {
        key: String,
    },
    Stream {
        key: String,
        group: String,
    },
    Prometheus {
        server: String,
        query: String,
        not_found_when_empty: bool,
    },
}

impl Probe {
    /// The probe a metric with `source` needs for `key`, with the PromQL query already
    /// rendered for the object.
    pub fn new(source: &SourceKind, key: Option<&str>, rendered_query: Option<String>) -> Probe {
        let key = || {
            key.expect("Redis sources always have a key (checked at load)")
                .to_owned()
        };
        match source {
            SourceKind::RedisList => Probe::List { key: key() },
            SourceKind::Queue { .. } => Probe::Queue { key: key() },
            SourceKind::Stream { group, .. } => Probe::Stream {
                key: key(),
                group: group.clone(),
            },
            SourceKind::Prometheus {
                server,
                empty_result,
                ..
            } => Probe::Prometheus {
                server: server.clone(),
                query: rendered_query.expect("PromQL probes are rendered"),
                not_found_when_empty: *empty_result == EmptyResult::NotFound,
            },
        }
    }

    /// For this server's own metrics: which kind of source failed.
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::List { .. } => "redisList",
            Probe::Queue { .. } => "queue",
            Probe::Stream { .. } => "stream",
            Probe::Prometheus { .. } => "prometheus",
        }
    }
}

/// Where Redis probes read: one [`RedisReader`] for every list, stream and leased queue, which
/// coalesces one interval's concurrent reads into one pipelined round trip.
#[derive(Clone)]
pub struct Readers {
    pub address: RedisAddress,
    pub reader: RedisReader,
}

/// The source that reads a probe.
pub enum ProbeSource {
    List(RedisListSource),
    Queue(RedisSource),
    Stream(RedisStreamSource),
    Prometheus(PrometheusSource),
}

impl ProbeSource {
    pub fn new(probe: &Probe, readers: &Readers) -> crate::Result<ProbeSource> {
        Ok(match probe {
            Probe::List { key } => {
                ProbeSource::List(RedisListSource::new(readers.reader.clone(), key.clone()))
            }
            // Counts through the shared reader; the reaper (a write) only while items are in
            // flight, at most every REAP_EVERY.
            Probe::Queue { key } => ProbeSource::Queue(
                RedisSource::new(Queue::new(&readers.address, key)?)
                    .with_reader(readers.reader.clone())
                    .reap_every(REAP_EVERY),
            ),
            Probe::Stream { key, group } => ProbeSource::Stream(RedisStreamSource::new(
                readers.reader.clone(),
                key.clone(),
                group.clone(),
            )),
            Probe::Prometheus {
                server,
                query,
                not_found_when_empty,
            } => ProbeSource::Prometheus(PrometheusSource::new(
                server,
                query,
                if *not_found_when_empty {
                    PromEmpty::Error
                } else {
                    PromEmpty::Zero
                },
            )?),
        })
    }

    /// What it reads, for messages (`redis 127.0.0.1:6379 list padok`).
    pub fn describe(&self) -> String {
        match self {
            ProbeSource::List(source) => source.describe(),
            ProbeSource::Queue(source) => source.describe(),
            ProbeSource::Stream(source) => source.describe(),
            ProbeSource::Prometheus(source) => source.describe(),
        }
    }

    pub async fn read(&self) -> ebb_autoscaler::Result<Measured> {
        Ok(match self {
            ProbeSource::List(source) => Measured::Counts(source.read().await?),
            ProbeSource::Queue(source) => Measured::Counts(source.read().await?),
            ProbeSource::Stream(source) => Measured::Counts(source.read().await?),
            ProbeSource::Prometheus(source) => Measured::Sample(source.sample().await?),
        })
    }
}

/// What one read of a probe gave: a Redis source's counts, or a PromQL sample as it is
/// (fractions kept: `0.5` is served as `500m`, not rounded up to a count).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measured {
    Counts(Reading),
    Sample(f64),
}

/// The number a metric serves out of a probe's read.
pub fn value_of(source: &SourceKind, measured: &Measured) -> f64 {
    use crate::config::{QueueCount, StreamCount};
    let reading = match measured {
        Measured::Sample(value) => return *value,
        Measured::Counts(reading) => reading,
    };
    // Counts are far below 2^53: exact as f64.
    (match source {
        SourceKind::RedisList | SourceKind::Prometheus { .. } => reading.waiting,
        SourceKind::Queue { count } => match count {
            QueueCount::Waiting => reading.waiting,
            QueueCount::InFlight => reading.in_flight,
        },
        SourceKind::Stream { count, .. } => match count {
            StreamCount::Lag => reading.waiting,
            StreamCount::Pending => reading.in_flight,
        },
    }) as f64
}
