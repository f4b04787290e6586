//! A busy consumer's way from one item to the next: one round trip per item.
//!
//! ```text
//!   worker: work ─▶ EVALSHA ack-and-take ─▶ { LREM + INCR (ack) ; checks ; LMOVE (take) }
//!                        │ taken: work on it, same slot      │ empty / not registered /
//!                        ◀───────────────────────────────────┘ draining: back to the pop
//! ```
//!
//! A plain [`ConsumerLease::ack`] followed by a [`ConsumerLease::pop`] costs two commands on
//! two connections per item. While items wait, [`ConsumerLease::ack_and_take`] does both in
//! one script: the ack, then a non-blocking `LMOVE` of the next item into the same processing
//! list. `BLMOVE` (the pop) is left for an empty queue, where waiting in Redis is the point.
//!
//! The script takes only for a consumer that may take, checked atomically with the move:
//! - **registered**: in the queue's registry and its heartbeat alive. A consumer a reaper
//!   dropped (or about to drop: heartbeat expired) gets [`Next::NotRegistered`]; its next pop
//!   heartbeats first, registering again, so no item is ever moved into an unregistered list
//!   by this path.
//! - **not draining**: `{<queue>}:draining:<consumer id>` absent. That marker is the hook of
//!   scale-in: whoever picks a consumer to stop sets it (`SET … PX`, so that it cannot outlive
//!   the consumer by long) and the consumer takes nothing new ([`Next::Draining`]); it finishes
//!   and acknowledges what it holds, and its pops wait without taking
//!   ([`ConsumerLease::is_draining`], also read by every heartbeat) until the marker goes.
//!   Nothing sets it yet.
//!
//! Items taken here are held like popped ones, so reconciliation counts them; it waits for
//! every take in flight (`ConsumerLease::moves`), since one not yet answered would look like a
//! stray. A take whose answer is lost may have moved an item nobody holds: the lease then
//! reconciles before its next pop, and the reaper returns it should the consumer die.

use crate::lease::forget;
use crate::queue::COMMAND_TIMEOUT;
use crate::{ConsumerLease, Delivery, Item, Result};

/// What [`ConsumerLease::ack_and_take`] did after the ack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// The item at the head of the queue, now in this consumer's processing list.
    Item(Delivery),
    /// The queue is empty: wait for the next item with [`ConsumerLease::pop`].
    Empty,
    /// This consumer is not in the registry or its heartbeat expired: nothing was taken, and
    /// the next [`ConsumerLease::pop`] heartbeats first.
    NotRegistered,
    /// This consumer is marked draining: nothing was taken (see the module docs).
    Draining,
}

/// The answer of [`ConsumerLease::ack_and_take`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckAndTake {
    /// The item was still in the processing list, and is now acknowledged (false: a reaper
    /// requeued it first, like [`ConsumerLease::ack`]'s false).
    pub acked: bool,
    pub next: Next,
}

impl ConsumerLease {
    /// Acknowledges `delivery` like [`ack`](Self::ack) and, in the same round trip, takes the
    /// next waiting item into this consumer's processing list when it may take (see the module
    /// docs). On an error the outcome is unknown: the ack may have happened (retry it with
    /// [`ack`](Self::ack), whose false then means "already done or requeued"), and an item may
    /// have been moved, which the next pop's reconciliation returns to the queue.
    pub async fn ack_and_take(&self, delivery: &Delivery) -> Result<AckAndTake> {
        // Until the answer is in `held`: a reconciliation must not see the item taken as a stray.
        let _take_in_flight = self.moves.read().await;
        let mut connection = self.queue.connection.clone();
        let mut invocation = self.ack_and_take.key(&self.processing);
        invocation
            .key(&self.queue.inner.keys.completed)
            .key(&self.queue.inner.keys.queue)
            .key(&self.queue.inner.keys.own.consumers)
            .key(&self.heartbeat)
            .key(&self.draining)
            .arg(&delivery.raw)
            .arg(&self.consumer_id);
        let answer = self
            .queue
            .answer_about(
                COMMAND_TIMEOUT,
                &self.own_keys(),
                invocation.invoke_async::<(u64, String, String)>(&mut connection),
            )
            .await;
        let mut state = self.state();
        let (removed, what, raw) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                state.reconcile = true;
                return Err(error);
            }
        };
        forget(&mut state.held, &delivery.raw);
        let next = match what.as_str() {
            "taken" => {
                *state.held.entry(raw.clone()).or_default() += 1;
                Next::Item(Delivery {
                    item: Item::decode(&raw),
                    raw,
                })
            }
            "empty" => Next::Empty,
            "draining" => Next::Draining,
            _ => Next::NotRegistered,
        };
        match next {
            Next::Item(_) | Next::Empty => state.draining = false,
            Next::Draining => state.draining = true,
            Next::NotRegistered => {
                // Reaped, or about to be: register again before the next pop, and account for
                // whatever the list holds by then.
                state.last_heartbeat = None;
                state.reconcile = true;
            }
        }
        if removed == 0 {
            state.reconcile = true;
        }
        Ok(AckAndTake {
            acked: removed > 0,
            next,
        })
    }
}
