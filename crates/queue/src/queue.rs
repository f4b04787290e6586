//! The producer side and the observer side of a queue: push, lengths, reaper.

use std::sync::Arc;
use std::time::Duration;

use redis::RedisWrite;

use crate::connection::Connection;
use crate::keys::{self, Keys, Layout};
use crate::{Batch, Error, RedisAddress, RedisErrorKind, Result};

/// Items per `RPUSH`: up to this many go in one command (atomic without `MULTI`); more are split
/// into commands of a few MB at most, sent in one round trip and applied in one `MULTI`/`EXEC`.
const RPUSH_CHUNK: usize = 10_000;

/// How long [`Queue::ping`] waits: a health probe must notice a frozen Redis quickly.
pub const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// How long any other small command waits for its answer.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// A push may take [`COMMAND_TIMEOUT`] plus one second per this many bytes sent: a rate far
/// below what even a busy Redis ingests, so only a Redis that stopped answering hits it.
const PUSH_BYTES_PER_SECOND: usize = 8 << 20;
/// The connections' own limit, a backstop behind the per-call bounds above.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);

/// Waiting and in-flight counts, read atomically.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lengths {
    /// Items in the queue list, not yet taken.
    pub waiting: u64,
    /// Items taken by a registered consumer and not yet acknowledged.
    pub in_flight: u64,
}

/// What one reaper pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Consumers found dead (heartbeat expired) and unregistered.
    pub consumers: u64,
    /// Items they held, now back at the head of the queue.
    pub items: u64,
}

/// A handle on one named queue, on a standalone Redis or a Redis Cluster. Cheap to clone; all
/// clones share one multiplexed connection that reconnects by itself after Redis comes back,
/// plus one for [`Queue::ping`] alone, so a health probe never waits behind a big batch.
///
/// Every call is bounded in time: a Redis that accepts connections but does not answer
/// (frozen, overloaded) gives [`Error::NoAnswer`] instead of a hang.
#[derive(Clone)]
pub struct Queue {
    pub(crate) inner: Arc<Shared>,
    pub(crate) connection: Connection,
}

pub(crate) struct Shared {
    pub(crate) address: RedisAddress,
    pub(crate) keys: Keys,
    probe: Connection,
    return_held_items: redis::Script,
    lengths: redis::Script,
    pub(crate) ack: redis::Script,
}

impl Queue {
    /// A handle on queue `name` at `address`. Does not touch the network: Redis may be down now
    /// and come up later; each call reports its own error until then.
    pub fn new(address: &RedisAddress, name: &str) -> Result<Queue> {
        let keys = Keys::new(name)?;
        let connection = address.connection(RESPONSE_TIMEOUT)?;
        Ok(Queue {
            inner: Arc::new(Shared {
                address: address.clone(),
                keys,
                probe: address.connection(PING_TIMEOUT * 2)?,
                return_held_items: redis::Script::new(keys::RETURN_HELD_ITEMS),
                lengths: redis::Script::new(keys::LENGTHS),
                ack: redis::Script::new(keys::ACK),
            }),
            connection,
        })
    }

    /// The queue's name (its Redis key).
    pub fn name(&self) -> &str {
        &self.inner.keys.queue
    }

    /// Where Redis is, password hidden.
    pub fn address(&self) -> &RedisAddress {
        &self.inner.address
    }

    /// Checks that Redis answers within [`PING_TIMEOUT`], on a connection of its own (on a
    /// cluster: every master).
    pub async fn ping(&self) -> Result<()> {
        let mut connection = self.inner.probe.clone();
        self.answer(
            PING_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut connection),
        )
        .await
        .map(drop)
    }

    /// Appends `items` (already encoded, see [`crate::Item::encode`]) at the tail of the queue:
    /// one round trip, all or nothing. Waits at most [`Queue::push_timeout`]; after that
    /// [`Error::NoAnswer`] means the outcome is unknown (Redis may still apply the batch).
    pub async fn push(&self, items: &[String]) -> Result<()> {
        self.push_encoded(items.iter().map(String::as_bytes).collect())
            .await
    }

    /// [`Queue::push`] for a [`Batch`]: the same guarantees, without a string per item.
    pub async fn push_batch(&self, batch: &Batch) -> Result<()> {
        self.push_encoded(batch.iter().collect()).await
    }

    async fn push_encoded(&self, items: Vec<&[u8]>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let bytes = items.iter().map(|item| item.len()).sum();
        let rpush = |chunk: &[&[u8]]| {
            let mut rpush = redis::cmd("RPUSH");
            // Sized up front: growing a command of megabytes copies it again and again.
            let sizes = chunk.iter().map(|item| item.len());
            RedisWrite::reserve_space_for_args(&mut rpush, sizes.chain([self.name().len()]));
            rpush.arg(&self.inner.keys.queue).arg(chunk);
            rpush
        };
        let mut connection = self.connection.clone();
        if items.len() <= RPUSH_CHUNK {
            // One command is atomic by itself: no MULTI/EXEC around it.
            return self
                .answer(
                    Queue::push_timeout(bytes),
                    rpush(&items).query_async::<()>(&mut connection),
                )
                .await;
        }
        let mut batch = redis::pipe();
        batch.atomic();
        for chunk in items.chunks(RPUSH_CHUNK) {
            batch.add_command(rpush(chunk)).ignore();
        }
        self.answer(
            Queue::push_timeout(bytes),
            batch.query_async::<()>(&mut connection),
        )
        .await
    }

    /// How long a push of `bytes` (encoded items) may wait for Redis' answer.
    pub fn push_timeout(bytes: usize) -> Duration {
        COMMAND_TIMEOUT + Duration::from_secs_f64(bytes as f64 / PUSH_BYTES_PER_SECOND as f64)
    }

    /// Waiting and in-flight counts at one instant. In flight counts the items of consumers of
    /// earlier versions too (untagged keys, standalone Redis), so a rolling upgrade never looks
    /// idle while they work.
    pub async fn lengths(&self) -> Result<Lengths> {
        let mut invocation = self.inner.lengths.key(&self.inner.keys.queue);
        for layout in self.layouts_read() {
            invocation.key(&layout.consumers).arg(&layout.prefix);
        }
        let mut connection = self.connection.clone();
        let (waiting, in_flight) = self
            .answer(
                COMMAND_TIMEOUT,
                invocation.invoke_async::<(u64, u64)>(&mut connection),
            )
            .await?;
        Ok(Lengths { waiting, in_flight })
    }

    /// Items acknowledged on this queue since its counter was created (0 before the first
    /// ack), including the acks of consumers of earlier versions (their untagged counter, on
    /// a standalone Redis). Two readings apart give the service rate.
    pub async fn completed(&self) -> Result<u64> {
        let mut counters = redis::cmd("MGET");
        counters.arg(&self.inner.keys.completed);
        for legacy in self.layouts_read().skip(1) {
            counters.arg(legacy.completed());
        }
        let mut connection = self.connection.clone();
        self.answer(
            COMMAND_TIMEOUT,
            counters.query_async::<Vec<Option<u64>>>(&mut connection),
        )
        .await
        .map(|counts| counts.into_iter().flatten().sum())
    }

    /// The key layouts the counts and the reaper read: this version's, then the legacy one.
    pub(crate) fn layouts_read(&self) -> impl Iterator<Item = &Layout> {
        self.inner
            .keys
            .layouts_read(self.inner.address.is_cluster())
    }

    /// Returns the items of every consumer whose heartbeat has expired to the head of the queue,
    /// and unregisters those consumers; at most every [`crate::ORPHAN_SWEEP_EVERY`] (across
    /// every process), also the items of processing lists whose consumer is not registered
    /// ([`Queue::reap_orphans`]). Safe to run from many processes at once.
    pub async fn reap(&self) -> Result<Reaped> {
        let mut reaped = self.return_held_items(None).await?;
        if self.orphan_sweep_due().await? {
            let orphans = self.reap_orphans().await?;
            reaped.consumers += orphans.consumers;
            reaped.items += orphans.items;
        }
        Ok(reaped)
    }

    /// Reaps every layout's dead consumers, or (`leaving`) one consumer of this version.
    pub(crate) async fn return_held_items(&self, leaving: Option<&str>) -> Result<Reaped> {
        let mut invocation = self.inner.return_held_items.key(&self.inner.keys.queue);
        match leaving {
            None => {
                for layout in self.layouts_read() {
                    invocation.key(&layout.consumers).arg(&layout.prefix);
                }
            }
            Some(consumer) => {
                let own = &self.inner.keys.own;
                invocation
                    .key(&own.consumers)
                    .arg(&own.prefix)
                    .arg(consumer);
            }
        }
        let mut connection = self.connection.clone();
        let (consumers, items) = self
            .answer(
                COMMAND_TIMEOUT,
                invocation.invoke_async::<(u64, u64)>(&mut connection),
            )
            .await?;
        Ok(Reaped { consumers, items })
    }

    /// Waits up to `within` for Redis' answer to `call`.
    pub(crate) async fn answer<T>(
        &self,
        within: Duration,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        self.answer_about(within, &[], call).await
    }

    /// [`Queue::answer`] for a call that also touches `keys` (name, type the queue expects),
    /// beside the queue's own: a `WRONGTYPE` then names the culprit.
    pub(crate) async fn answer_about<T>(
        &self,
        within: Duration,
        keys: &[(&str, &'static str)],
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(within, call).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(self.explained(error, keys).await),
            Err(_) => Err(crate::tls_diagnosis::with_tls_diagnosis(
                &self.inner.address,
                Error::NoAnswer {
                    address: self.inner.address.to_string(),
                    within,
                },
            )
            .await),
        }
    }

    /// `error` classified; for a `WRONGTYPE`, with the key that holds the wrong type, found by
    /// asking `TYPE` of each key the call may have touched.
    async fn explained(&self, error: redis::RedisError, keys: &[(&str, &'static str)]) -> Error {
        let mut error = self.inner.address.redis_error(error);
        if let Error::Redis { kind, .. } = &mut error
            && matches!(**kind, RedisErrorKind::WrongType { key: None, .. })
        {
            let own = &self.inner.keys;
            let mut candidates: Vec<(&str, &'static str)> = keys.to_vec();
            candidates.push((&own.queue, "list"));
            for layout in self.layouts_read() {
                candidates.push((&layout.consumers, "set"));
            }
            candidates.push((&own.completed, "string"));
            if let Some(found) = self.wrong_type_among(&candidates).await {
                **kind = found;
            }
        }
        crate::tls_diagnosis::with_tls_diagnosis(&self.inner.address, error).await
    }

    /// The first of `candidates` whose type is neither the expected one nor missing.
    async fn wrong_type_among(
        &self,
        candidates: &[(&str, &'static str)],
    ) -> Option<RedisErrorKind> {
        let mut connection = self.inner.probe.clone();
        for &(key, expected) in candidates {
            let mut type_of = redis::cmd("TYPE");
            type_of.arg(key);
            let lookup = type_of.query_async::<String>(&mut connection);
            let Ok(Ok(actual)) = tokio::time::timeout(PING_TIMEOUT, lookup).await else {
                return None;
            };
            if let Some(kind) = RedisErrorKind::wrong_type_of(key, actual, expected) {
                return Some(kind);
            }
        }
        None
    }
}
