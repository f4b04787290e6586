//! The producer side and the observer side of a queue: push, lengths, reaper.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::keys::{self, Keys};
use crate::{ConsumerLease, RedisAddress, Result};

/// Items per `RPUSH` inside one batch: keeps each command a few MB at most while the whole batch
/// still travels in one round trip and applies in one `MULTI`/`EXEC`.
const RPUSH_CHUNK: usize = 10_000;

/// How long a command may take before the call gives up. Generous because a million-item batch
/// is one round trip.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

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

/// A handle on one named queue. Cheap to clone; all clones share one multiplexed connection
/// that reconnects by itself after Redis comes back.
#[derive(Clone)]
pub struct Queue {
    pub(crate) inner: Arc<Shared>,
    pub(crate) connection: ConnectionManager,
}

pub(crate) struct Shared {
    pub(crate) address: RedisAddress,
    pub(crate) keys: Keys,
    return_held_items: redis::Script,
    lengths: redis::Script,
    pub(crate) ack: redis::Script,
}

impl Queue {
    /// A handle on queue `name` at `address`. Does not touch the network: Redis may be down now
    /// and come up later; each call reports its own error until then.
    pub fn new(address: &RedisAddress, name: &str) -> Result<Queue> {
        let connection = address.connection_manager(RESPONSE_TIMEOUT)?;
        Ok(Queue {
            inner: Arc::new(Shared {
                address: address.clone(),
                keys: Keys::new(name),
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

    /// Checks that Redis answers.
    pub async fn ping(&self) -> Result<()> {
        let mut connection = self.connection.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
            .map_err(|error| self.redis_error(error))
    }

    /// Appends `items` (already encoded, see [`crate::Item::encode`]) at the tail of the queue:
    /// one round trip, all or nothing.
    pub async fn push(&self, items: &[String]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut batch = redis::pipe();
        batch.atomic();
        for chunk in items.chunks(RPUSH_CHUNK) {
            batch
                .cmd("RPUSH")
                .arg(&self.inner.keys.queue)
                .arg(chunk)
                .ignore();
        }
        let mut connection = self.connection.clone();
        batch
            .query_async::<()>(&mut connection)
            .await
            .map_err(|error| self.redis_error(error))
    }

    /// Waiting and in-flight counts at one instant.
    pub async fn lengths(&self) -> Result<Lengths> {
        let keys = &self.inner.keys;
        let mut connection = self.connection.clone();
        let (waiting, in_flight) = self
            .inner
            .lengths
            .key(&keys.queue)
            .key(&keys.consumers)
            .arg(&keys.queue)
            .invoke_async::<(u64, u64)>(&mut connection)
            .await
            .map_err(|error| self.redis_error(error))?;
        Ok(Lengths { waiting, in_flight })
    }

    /// Items acknowledged on this queue since its counter was created (0 before the first
    /// ack). Two readings apart give the service rate.
    pub async fn completed(&self) -> Result<u64> {
        let mut connection = self.connection.clone();
        redis::cmd("GET")
            .arg(&self.inner.keys.completed)
            .query_async::<Option<u64>>(&mut connection)
            .await
            .map(Option::unwrap_or_default)
            .map_err(|error| self.redis_error(error))
    }

    /// Returns the items of every consumer whose heartbeat has expired to the head of the queue,
    /// and unregisters those consumers. Safe to run from many processes at once.
    pub async fn reap(&self) -> Result<Reaped> {
        self.return_held_items(None).await
    }

    /// A consumer's lease on this queue: registers as `consumer_id` on its first heartbeat; a
    /// consumer that stops heartbeating for `lease` is considered dead and its items are reaped.
    /// `consumer_id` must be unique among live consumers of this queue.
    pub fn consumer_lease(&self, consumer_id: &str, lease: Duration) -> Result<ConsumerLease> {
        ConsumerLease::new(self.clone(), consumer_id, lease)
    }

    pub(crate) async fn return_held_items(&self, leaving: Option<&str>) -> Result<Reaped> {
        let keys = &self.inner.keys;
        let mut invocation = self.inner.return_held_items.key(&keys.queue);
        invocation.key(&keys.consumers).arg(&keys.queue);
        if let Some(consumer) = leaving {
            invocation.arg(consumer);
        }
        let mut connection = self.connection.clone();
        let (consumers, items) = invocation
            .invoke_async::<(u64, u64)>(&mut connection)
            .await
            .map_err(|error| self.redis_error(error))?;
        Ok(Reaped { consumers, items })
    }

    pub(crate) fn redis_error(&self, error: redis::RedisError) -> crate::Error {
        self.inner.address.redis_error(error)
    }
}

impl RedisAddress {
    /// A lazily connecting, self-reconnecting connection. Reconnection gives up fast (one retry)
    /// so a call made while Redis is down fails in about a second instead of hanging; the next
    /// call tries again.
    pub(crate) fn connection_manager(
        &self,
        response_timeout: Duration,
    ) -> Result<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(response_timeout));
        ConnectionManager::new_lazy_with_config(self.client()?, config)
            .map_err(|error| self.redis_error(error))
    }
}
