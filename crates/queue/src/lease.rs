//! The consumer side: leased pop, ack, heartbeat, leaving.
//!
//! ```text
//!   <queue> ──BLMOVE LEFT RIGHT──▶ {<queue>}:processing:<id> ──LREM (ack)──▶ gone
//!      ▲                                   │
//!      └──── reaper / leave (LMOVE RIGHT LEFT, oldest ends first in line) ◀┘
//! ```

use std::time::Duration;

use crate::connection::Connection;
use crate::keys::{checked_name, key_name};
use crate::queue::COMMAND_TIMEOUT;
use crate::{Error, Item, Queue, Reaped, Result};

/// The longest a single [`ConsumerLease::pop`] blocks in Redis. Short, so that a consumer asked
/// to stop notices within this delay without abandoning a `BLMOVE` that could still move an item.
pub const MAX_POP_WAIT: Duration = Duration::from_secs(5);

/// An item taken from the queue, held until [`ConsumerLease::ack`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The exact string stored in Redis (needed to acknowledge it).
    pub raw: String,
    /// `raw`, decoded.
    pub item: Item,
}

/// One consumer's lease on a queue. Call [`heartbeat`](Self::heartbeat) before the first pop
/// and then more often than the lease (a third of it is a good period).
pub struct ConsumerLease {
    queue: Queue,
    consumer_id: String,
    processing: String,
    heartbeat: String,
    lease_ms: u64,
    /// `BLMOVE` blocks its connection; it gets one of its own so heartbeats and acks never wait
    /// behind it.
    blocking: Connection,
}

// Here rather than beside the queue's other methods: the lease holds a queue, so the queue
// must not have to know the lease.
impl Queue {
    /// A consumer's lease on this queue: registers as `consumer_id` on its first heartbeat; a
    /// consumer that stops heartbeating for `lease` is considered dead and its items are reaped.
    /// `consumer_id` must be unique among live consumers of this queue.
    pub fn consumer_lease(&self, consumer_id: &str, lease: Duration) -> Result<ConsumerLease> {
        checked_name("consumer id", consumer_id, key_name)?;
        ConsumerLease::new(self.clone(), consumer_id, lease)
    }
}

impl ConsumerLease {
    pub(crate) fn new(queue: Queue, consumer_id: &str, lease: Duration) -> Result<ConsumerLease> {
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        if lease_ms == 0 {
            return Err(Error::LeaseTooShort(lease));
        }
        let keys = &queue.inner.keys;
        let blocking = queue
            .inner
            .address
            .connection(MAX_POP_WAIT + Duration::from_secs(5))?;
        Ok(ConsumerLease {
            processing: keys.own.processing(consumer_id),
            heartbeat: keys.own.heartbeat(consumer_id),
            consumer_id: consumer_id.to_owned(),
            lease_ms,
            blocking,
            queue,
        })
    }

    /// This consumer's keys and their types, to name one holding another type.
    fn own_keys(&self) -> [(&str, &'static str); 2] {
        [(&self.processing, "list"), (&self.heartbeat, "string")]
    }

    /// This consumer's id.
    pub fn consumer_id(&self) -> &str {
        &self.consumer_id
    }

    /// The queue this lease is on.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Registers this consumer (again, if a reaper dropped it) and extends its lease.
    pub async fn heartbeat(&self) -> Result<()> {
        let mut connection = self.queue.connection.clone();
        let mut registration = redis::pipe();
        registration
            .atomic()
            .cmd("SADD")
            .arg(&self.queue.inner.keys.own.consumers)
            .arg(&self.consumer_id)
            .ignore()
            .cmd("SET")
            .arg(&self.heartbeat)
            .arg(1)
            .arg("PX")
            .arg(self.lease_ms)
            .ignore();
        self.queue
            .answer_about(
                COMMAND_TIMEOUT,
                &self.own_keys(),
                registration.query_async::<()>(&mut connection),
            )
            .await
    }

    /// Takes the item at the head of the queue into this consumer's processing list, waiting
    /// up to `wait` (capped at [`MAX_POP_WAIT`]) for one to arrive. `None` when none came.
    pub async fn pop(&self, wait: Duration) -> Result<Option<Delivery>> {
        // BLMOVE's timeout 0 means "forever"; the smallest real wait is 1ms.
        let wait = wait.clamp(Duration::from_millis(1), MAX_POP_WAIT);
        let mut connection = self.blocking.clone();
        let raw = self
            .queue
            .answer_about(
                wait + COMMAND_TIMEOUT,
                &self.own_keys(),
                redis::cmd("BLMOVE")
                    .arg(&self.queue.inner.keys.queue)
                    .arg(&self.processing)
                    .arg("LEFT")
                    .arg("RIGHT")
                    .arg(wait.as_secs_f64())
                    .query_async::<Option<String>>(&mut connection),
            )
            .await?;
        Ok(raw.map(|raw| Delivery {
            item: Item::decode(&raw),
            raw,
        }))
    }

    /// Acknowledges a finished item: removes it from the processing list and counts it in
    /// [`Queue::completed`]. Returns false when it was not there any more (a reaper judged this
    /// consumer dead and requeued it).
    pub async fn ack(&self, delivery: &Delivery) -> Result<bool> {
        let mut connection = self.queue.connection.clone();
        self.queue
            .answer_about(
                COMMAND_TIMEOUT,
                &self.own_keys(),
                self.queue
                    .inner
                    .ack
                    .key(&self.processing)
                    .key(&self.queue.inner.keys.completed)
                    .arg(&delivery.raw)
                    .invoke_async::<u64>(&mut connection),
            )
            .await
            .map(|removed| removed > 0)
    }

    /// Leaves on purpose: anything still held goes back to the head of the queue, and the
    /// consumer is unregistered at once instead of after its lease runs out.
    pub async fn leave(&self) -> Result<Reaped> {
        self.queue.return_held_items(Some(&self.consumer_id)).await
    }
}
