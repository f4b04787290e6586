//! Reads the queue straight from Redis: waiting and in-flight counts in one atomic call,
//! 0 when the list does not exist (no recording-rule trick needed).
//!
//! Reads also run the reaper: consumers reap each other, but at 0 replicas nobody is left to
//! return a dead consumer's items, which would then count as in flight forever. On its own
//! ([`RedisSource::new`]) every read reaps first. Reading through a shared [`RedisReader`]
//! ([`RedisSource::with_reader`], the operator's thousands of scalers), the counts go in the
//! reader's pipeline and the reaper, a write of its own, runs only when something is in
//! flight and at most every [`RedisSource::reap_every`]: an idle queue costs almost no
//! reaping. Almost: an item can sit in the list of a consumer that is not registered (it
//! popped after a reaper dropped it, then died), counted nowhere, so even an idle queue is
//! swept for such lists every [`IDLE_SWEEP_EVERY`] ([`ebb_queue::Queue::reap`]); at 0
//! replicas nobody else would ever find it ([`REAP_EVERY`] is the one reap period of every
//! shared-reader source; a source of its own, `ebb up`'s, reaps at every read).
//!
//! In flight per consumer ([`Reading::leases`]): read through a shared reader, the counts'
//! script also lists every registered consumer with its items held (every item in hand,
//! whatever its `--concurrency`), one command in the reader's pipeline however many
//! consumers; each lease is dated by when this source first saw its item (`first_seen.rs`
//! says why and how closely). A processing list whose consumer is not registered counts
//! nowhere, like its items in `in_flight`. On its own ([`RedisSource::new`], `ebb up`) the
//! source lists no leases.

use std::sync::Mutex;
use std::time::Duration;

use ebb_queue::{Queue, RedisReader};

use crate::catalogue::{fixed, redis};
use crate::first_seen::FirstSeen;
use crate::template::verbatim;
use crate::{Count, Error, Kind, MetricSource, Reading, Redis, Result, Text};

/// How often a source reading through a shared reader reaps an idle queue (nothing in flight),
/// for the items of unregistered consumers.
pub const IDLE_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// How often, at most, a source reading through a shared reader (the operator's, the metrics
/// API's) returns dead consumers' items while items are in flight: a write of its own,
/// outside the shared read pipeline. A dead consumer's items come back this long after its
/// lease ran out, at the latest.
pub const REAP_EVERY: Duration = Duration::from_secs(5);

/// An ebb leased queue: `ebbQueue` in a QueueScaler and in the metrics API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EbbQueueSpec {
    /// The queue's name (its list's key), as given to the producer and consumers.
    pub queue: Text,
}

impl Kind for EbbQueueSpec {
    const KIND: &'static str = "ebbQueue";
    const REDIS_KEY: Option<&'static str> = Some("queue");
    const FIELDS: &'static [&'static str] = &[];
    const COUNTS: &'static [(&'static str, Count)] = &[
        ("waiting", Count::Waiting),
        ("inFlight", Count::InFlight),
        ("total", Count::Total),
    ];
    type Source = RedisSource;

    fn check(&self, _field: &str) -> Result<()> {
        Ok(())
    }

    fn resolve(&self, fields: &[(&str, &str)]) -> Self {
        EbbQueueSpec {
            queue: self.queue.resolve(fields, verbatim),
        }
    }

    /// Counts through the shared reader; the reaper (a write) only while items are in
    /// flight, at most every [`REAP_EVERY`].
    fn build(&self, redis_at: Option<&Redis>) -> Result<RedisSource> {
        let name = fixed(&self.queue, Self::KIND, "queue")?;
        let redis = redis(redis_at, Self::KIND)?;
        Ok(RedisSource::new(Queue::new(&redis.address, name)?)
            .with_reader(redis.reader.clone())
            .reap_every(REAP_EVERY))
    }
}

pub struct RedisSource {
    queue: Queue,
    reader: Option<RedisReader>,
    reap_every: Duration,
    last_reap: Mutex<Option<std::time::Instant>>,
    last_idle_sweep: Mutex<Option<std::time::Instant>>,
    first_seen: FirstSeen,
}

impl RedisSource {
    pub fn new(queue: Queue) -> Self {
        RedisSource {
            queue,
            reader: None,
            reap_every: Duration::ZERO,
            last_reap: Mutex::new(None),
            last_idle_sweep: Mutex::new(None),
            first_seen: FirstSeen::default(),
        }
    }

    /// Reads the counts through `reader` (one of the same server, shared with other
    /// sources), reaping only while items are in flight.
    pub fn with_reader(mut self, reader: RedisReader) -> Self {
        self.reader = Some(reader);
        self
    }

    /// Reaps at most this often (with a reader): a dead consumer's items come back this
    /// long after its lease ran out, at the latest.
    pub fn reap_every(mut self, every: Duration) -> Self {
        self.reap_every = every;
        self
    }

    fn failed(&self, source: ebb_queue::Error) -> Error {
        // Every queue error already names Redis and its address: saying them again in
        // front would print the address twice in one line.
        Error::Redis {
            source_name: format!("queue {}", self.queue.name()),
            source,
        }
    }

    /// Reaps when `period` has passed on `clock` (always, without a reader, whose period is
    /// zero); true when items came back. The in-flight reap and the idle sweep differ only in
    /// their clock and period: both say what they brought back.
    async fn reap_when_due(
        &self,
        clock: &Mutex<Option<std::time::Instant>>,
        period: Duration,
    ) -> Result<bool> {
        if !due(clock, period) {
            return Ok(false);
        }
        let reaped = self
            .queue
            .reap()
            .await
            .map_err(|error| self.failed(error))?;
        if reaped.items > 0 {
            tracing::info!(
                "{} items of {} dead consumers back in the queue",
                reaped.items,
                reaped.consumers
            );
        }
        Ok(reaped.items > 0)
    }

    async fn counts(&self, reader: &RedisReader) -> Result<Reading> {
        let (counts, holders) = reader
            .queue_holders(self.queue.name())
            .await
            .map_err(|error| self.failed(error))?;
        Ok(Reading {
            completed_total: Some(counts.completed),
            leases: self
                .first_seen
                .leases(&holders, std::time::SystemTime::now()),
            ..Reading::counts(counts.waiting, counts.in_flight)
        })
    }
}

impl MetricSource for RedisSource {
    fn describe(&self) -> String {
        format!("redis {} list {}", self.queue.address(), self.queue.name())
    }

    async fn read(&self) -> Result<Reading> {
        if let Some(reader) = &self.reader {
            let reading = self.counts(reader).await?;
            let reaped = if reading.in_flight.is_some_and(|in_flight| in_flight > 0) {
                self.reap_when_due(&self.last_reap, self.reap_every).await?
            } else {
                self.reap_when_due(&self.last_idle_sweep, IDLE_SWEEP_EVERY)
                    .await?
            };
            if reaped {
                return self.counts(reader).await;
            }
            return Ok(reading);
        }
        self.reap_when_due(&self.last_reap, self.reap_every).await?;
        // Two round trips on one connection, not atomic: an ack in between moves one item
        // from the backlog to the counter for one reading, which the rate window absorbs.
        let (lengths, completed) = tokio::try_join!(self.queue.lengths(), self.queue.completed())
            .map_err(|error| self.failed(error))?;
        Ok(Reading {
            completed_total: Some(completed),
            ..Reading::counts(lengths.waiting, lengths.in_flight)
        })
    }

    /// Consumers check their draining marker in the same script that takes their next items.
    fn can_drain(&self) -> bool {
        true
    }

    async fn drain(&self, consumers: &[String], ttl: Duration) -> Result<()> {
        self.queue
            .drain(consumers, ttl)
            .await
            .map_err(|error| self.failed(error))
    }

    async fn undrain(&self, consumers: &[String]) -> Result<()> {
        self.queue
            .undrain(consumers)
            .await
            .map_err(|error| self.failed(error))
    }
}

/// Whether `every` has passed since `last` (never set counts as passed); if so, `last` is
/// now. The reap and the idle sweep each keep their own clock with this one rule.
fn due(last: &Mutex<Option<std::time::Instant>>, every: std::time::Duration) -> bool {
    let mut last = last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if last.is_some_and(|at| at.elapsed() < every) {
        return false;
    }
    *last = Some(std::time::Instant::now());
    true
}
