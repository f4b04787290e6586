//! The consumer side: leased pop, ack, heartbeat, leaving, and the reconciliation that keeps
//! every item of a consumer's processing list accounted for. The one-round-trip ack-and-take
//! that carries a busy consumer from item to item is in `take.rs`.
//!
//! ```text
//!   <queue> ──BLMOVE LEFT RIGHT (empty queue)──▶ {<queue>}:processing:<id> ──LREM (ack)──▶ gone
//!      │  └──LMOVE in the ack's script (items waiting)──▶ ┘      │
//!      ▲                                                         │
//!      └──── reaper / leave / reconcile (LMOVE, LPUSH: back at the head) ◀┘
//! ```
//!
//! No item is ever stranded, whatever the timing:
//! - A pop waits in Redis at most a sixth of the lease ([`ConsumerLease::max_pop_wait`]),
//!   half the heartbeat period, and a pop whose last heartbeat is older than a third of the
//!   lease heartbeats first (re-registering a consumer a reaper dropped). So a `BLMOVE` that
//!   started while the consumer was registered moves its item while it still is.
//! - A pop that failed or timed out on the client may still have moved an item in Redis. The
//!   lease knows which items it handed out ([`Delivery`]s not yet acknowledged nor
//!   [`release`](ConsumerLease::release)d); the next pop first reconciles: anything else in its
//!   processing list goes back to the head of the queue. The same happens at the first pop
//!   (items of an earlier run under the same id), after the consumer finds itself reaped, and
//!   every lease. Reconciling runs on the pop's own connection, so Redis executes it after any
//!   `BLMOVE` still pending there, and waits for every ack-and-take in flight (they move items
//!   into the list from other tasks: one not yet answered would look like a stray).
//! - Should an item still land in the list of a consumer that is not registered (a process
//!   frozen between its heartbeat and its pop, then killed), the reaper finds the list by its
//!   name ([`crate::Queue::reap`]).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::connection::Connection;
use crate::keys::{ACK_AND_TAKE, RETURN_STRAYS, checked_name, key_name};
use crate::queue::COMMAND_TIMEOUT;
use crate::{Error, Item, Queue, Reaped, Result};

/// The longest a single [`ConsumerLease::pop`] blocks in Redis. Short, so that a consumer asked
/// to stop notices within this delay without abandoning a `BLMOVE` that could still move an item.
/// A lease shorter than six times this waits less: see [`ConsumerLease::max_pop_wait`].
pub const MAX_POP_WAIT: Duration = Duration::from_secs(5);

/// The shortest lease accepted: its pops wait at most 5ms in Redis and it heartbeats every
/// 10ms; anything shorter drowns in round trips and timer resolution.
pub const MIN_LEASE: Duration = Duration::from_millis(30);

/// An item taken from the queue, held until [`ConsumerLease::ack`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The exact string stored in Redis (needed to acknowledge it).
    pub raw: String,
    /// `raw`, decoded.
    pub item: Item,
}

/// One consumer's lease on a queue. [`pop`](Self::pop) heartbeats when due; call
/// [`heartbeat`](Self::heartbeat) besides every third of the lease, since work between pops
/// may take longer than the lease. Pops go one at a time (one fetcher); acks may overlap them.
pub struct ConsumerLease {
    pub(crate) queue: Queue,
    pub(crate) consumer_id: String,
    pub(crate) processing: String,
    pub(crate) heartbeat: String,
    /// Set by whoever scales in: take nothing new (see `take.rs`).
    pub(crate) draining: String,
    lease: Duration,
    lease_ms: u64,
    /// `BLMOVE` blocks its connection; it gets one of its own so heartbeats and acks never wait
    /// behind it.
    blocking: Connection,
    state: Mutex<State>,
    /// Held shared by every ack-and-take until its answer is in `held`, and exclusively by a
    /// reconciliation, which must not mistake an item such a take just moved for a stray.
    pub(crate) moves: tokio::sync::RwLock<()>,
    return_strays: redis::Script,
    pub(crate) ack_and_take: redis::Script,
}

/// What the lease knows of itself between calls.
pub(crate) struct State {
    /// Raw items handed out and not yet acknowledged or released, with their multiplicity.
    pub(crate) held: HashMap<String, usize>,
    /// When the last successful heartbeat was sent (`None`: never, or found reaped).
    pub(crate) last_heartbeat: Option<Instant>,
    /// The processing list must be reconciled before the next pop.
    pub(crate) reconcile: bool,
    /// The draining marker was there at the last heartbeat or take: pops take nothing.
    pub(crate) draining: bool,
    last_reconcile: Instant,
    /// Registered at least once: a later `SADD` that adds means a reaper dropped us.
    registered_before: bool,
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
        if lease < MIN_LEASE {
            return Err(Error::LeaseTooShort(lease));
        }
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        let keys = &queue.inner.keys;
        let blocking = queue
            .inner
            .address
            .connection(MAX_POP_WAIT + Duration::from_secs(5))?;
        Ok(ConsumerLease {
            processing: keys.own.processing(consumer_id),
            heartbeat: keys.own.heartbeat(consumer_id),
            draining: keys.own.draining(consumer_id),
            consumer_id: consumer_id.to_owned(),
            lease,
            lease_ms,
            blocking,
            state: Mutex::new(State {
                held: HashMap::new(),
                last_heartbeat: None,
                reconcile: true,
                draining: false,
                last_reconcile: Instant::now(),
                registered_before: false,
            }),
            moves: tokio::sync::RwLock::new(()),
            return_strays: redis::Script::new(RETURN_STRAYS),
            ack_and_take: redis::Script::new(ACK_AND_TAKE),
            queue,
        })
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This consumer's keys and their types, to name one holding another type.
    pub(crate) fn own_keys(&self) -> [(&str, &'static str); 3] {
        [
            (&self.processing, "list"),
            (&self.heartbeat, "string"),
            (&self.draining, "string"),
        ]
    }

    /// This consumer's id.
    pub fn consumer_id(&self) -> &str {
        &self.consumer_id
    }

    /// The queue this lease is on.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The longest a pop waits in Redis: a sixth of the lease (half the heartbeat period),
    /// at most [`MAX_POP_WAIT`].
    pub fn max_pop_wait(&self) -> Duration {
        (self.lease / 6).min(MAX_POP_WAIT)
    }

    /// True when the draining marker was there at the last heartbeat or ack-and-take: pops
    /// then take nothing (see `take.rs`).
    pub fn is_draining(&self) -> bool {
        self.state().draining
    }

    /// Registers this consumer (again, if a reaper dropped it), extends its lease, and reads
    /// its draining marker.
    pub async fn heartbeat(&self) -> Result<()> {
        let sent = Instant::now();
        let mut connection = self.queue.connection.clone();
        let mut registration = redis::pipe();
        registration
            .atomic()
            .cmd("SADD")
            .arg(&self.queue.inner.keys.own.consumers)
            .arg(&self.consumer_id)
            .cmd("SET")
            .arg(&self.heartbeat)
            .arg(1)
            .arg("PX")
            .arg(self.lease_ms)
            .ignore()
            .cmd("EXISTS")
            .arg(&self.draining);
        let (added, draining): (u64, u64) = self
            .queue
            .answer_about(
                COMMAND_TIMEOUT,
                &self.own_keys(),
                registration.query_async(&mut connection),
            )
            .await?;
        let mut state = self.state();
        if added > 0 && std::mem::replace(&mut state.registered_before, true) {
            // A reaper judged us dead and returned what we held: what the list holds now may
            // be an item popped meanwhile, which only reconciling accounts for.
            tracing::warn!(
                "consumer {} was not registered any more (reaped after a missed lease): registered again",
                self.consumer_id
            );
            state.reconcile = true;
        }
        state.last_heartbeat = Some(sent);
        state.draining = draining > 0;
        Ok(())
    }

    /// Takes the item at the head of the queue into this consumer's processing list, waiting
    /// up to `wait` (capped at [`max_pop_wait`](Self::max_pop_wait)) for one to arrive. `None`
    /// when none came. Heartbeats first when the last one is older than a third of the lease,
    /// and reconciles the processing list first when due (see the module docs). While the
    /// consumer is draining ([`is_draining`](Self::is_draining)) it waits and takes nothing.
    /// For a consumer with items waiting, [`ack_and_take`](Self::ack_and_take) is the cheaper
    /// way from one item to the next; this is for the first, and for an empty queue.
    pub async fn pop(&self, wait: Duration) -> Result<Option<Delivery>> {
        let (heartbeat_due, reconcile_due) = {
            let state = self.state();
            (
                state
                    .last_heartbeat
                    .is_none_or(|at| at.elapsed() >= self.lease / 3),
                state.reconcile || state.last_reconcile.elapsed() >= self.lease,
            )
        };
        if heartbeat_due {
            self.heartbeat().await?;
        }
        if reconcile_due {
            self.reconcile().await?;
        }
        // BLMOVE's timeout 0 means "forever"; the smallest real wait is 1ms.
        let wait = wait.clamp(Duration::from_millis(1), self.max_pop_wait());
        if self.is_draining() {
            // Checked before, not with, the BLMOVE: a marker set meanwhile lets one more item
            // through, worked on and acknowledged like any other.
            tokio::time::sleep(wait).await;
            return Ok(None);
        }
        let mut connection = self.blocking.clone();
        let popped = self
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
            .await;
        let raw = match popped {
            Ok(raw) => raw,
            Err(error) => {
                // Redis may have moved an item all the same: the next pop accounts for it.
                self.state().reconcile = true;
                return Err(error);
            }
        };
        Ok(raw.map(|raw| {
            *self.state().held.entry(raw.clone()).or_default() += 1;
            Delivery {
                item: Item::decode(&raw),
                raw,
            }
        }))
    }

    /// Returns to the head of the queue every item of this consumer's processing list that it
    /// does not hold (handed out, not yet acknowledged nor released): items moved by a pop
    /// whose answer never came, or left by an earlier run under the same id. Runs on the pops'
    /// connection, after any `BLMOVE` still pending on it. Returns how many went back.
    pub async fn reconcile(&self) -> Result<u64> {
        let _no_take_in_flight = self.moves.write().await;
        let held: Vec<(String, usize)> = self
            .state()
            .held
            .iter()
            .map(|(raw, count)| (raw.clone(), *count))
            .collect();
        let mut connection = self.blocking.clone();
        // The list is read whole only when it holds more than what is in hand: usually it
        // holds exactly that, and the items may be megabytes each.
        let length = self
            .queue
            .answer_about(
                COMMAND_TIMEOUT,
                &self.own_keys(),
                redis::cmd("LLEN")
                    .arg(&self.processing)
                    .query_async::<u64>(&mut connection),
            )
            .await?;
        let in_hand: usize = held.iter().map(|(_, count)| count).sum();
        let must_compare = self.state().reconcile;
        let returned = if length == 0 || (length as usize == in_hand && !must_compare) {
            0
        } else {
            let listed = self
                .queue
                .answer_about(
                    COMMAND_TIMEOUT,
                    &self.own_keys(),
                    redis::cmd("LRANGE")
                        .arg(&self.processing)
                        .arg(0)
                        .arg(-1)
                        .query_async::<Vec<String>>(&mut connection),
                )
                .await?;
            let strays = strays(listed, held.into_iter().collect());
            if strays.is_empty() {
                0
            } else {
                let mut invocation = self.return_strays.key(&self.processing);
                invocation.key(&self.queue.inner.keys.queue).arg(&strays);
                self.queue
                    .answer_about(
                        COMMAND_TIMEOUT,
                        &self.own_keys(),
                        invocation.invoke_async::<u64>(&mut connection),
                    )
                    .await?
            }
        };
        if returned > 0 {
            tracing::warn!(
                "consumer {}: {returned} item(s) in its processing list were not in hand (left by an earlier run under this id, or a pop whose answer was lost); back at the head of the queue",
                self.consumer_id
            );
        }
        let mut state = self.state();
        state.reconcile = false;
        state.last_reconcile = Instant::now();
        Ok(returned)
    }

    /// Acknowledges a finished item: removes it from the processing list and counts it in
    /// [`Queue::completed`]. Returns false when it was not there any more (a reaper judged this
    /// consumer dead and requeued it); the next pop then heartbeats first, re-registering.
    pub async fn ack(&self, delivery: &Delivery) -> Result<bool> {
        let mut connection = self.queue.connection.clone();
        let removed = self
            .queue
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
            .await?;
        let mut state = self.state();
        forget(&mut state.held, &delivery.raw);
        if removed == 0 {
            state.last_heartbeat = None;
            state.reconcile = true;
        }
        Ok(removed > 0)
    }

    /// Gives an item back without acknowledging it: the next reconciliation returns it to the
    /// head of the queue, to be delivered again.
    pub fn release(&self, delivery: &Delivery) {
        let mut state = self.state();
        forget(&mut state.held, &delivery.raw);
        state.reconcile = true;
    }

    /// Leaves on purpose: anything still held goes back to the head of the queue, and the
    /// consumer is unregistered at once instead of after its lease runs out.
    pub async fn leave(&self) -> Result<Reaped> {
        let reaped = self
            .queue
            .return_held_items(Some(&self.consumer_id))
            .await?;
        let mut state = self.state();
        state.held.clear();
        state.last_heartbeat = None;
        state.registered_before = false;
        Ok(reaped)
    }
}

pub(crate) fn forget(held: &mut HashMap<String, usize>, raw: &str) {
    if let Some(count) = held.get_mut(raw) {
        *count -= 1;
        if *count == 0 {
            held.remove(raw);
        }
    }
}

/// The items of `listed` beyond those `held` (each copy counted), in list order.
fn strays(listed: Vec<String>, mut held: HashMap<String, usize>) -> Vec<String> {
    listed
        .into_iter()
        .filter(|raw| match held.get_mut(raw) {
            Some(count) if *count > 0 => {
                *count -= 1;
                false
            }
            _ => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strays_are_what_the_list_holds_beyond_what_is_in_hand() {
        let listed = ["a", "b", "a", "c"].map(String::from).to_vec();
        let held = HashMap::from([("a".to_owned(), 1), ("c".to_owned(), 1), ("z".into(), 2)]);
        assert_eq!(strays(listed, held), ["b", "a"]);
    }
}
