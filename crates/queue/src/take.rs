//! A busy consumer's way from item to item: one round trip per item at most, fewer for short
//! items.
//!
//! ```text
//!   worker: work ─▶ EVALSHA ack-and-take ─▶ { LREM + INCRBY (acks) ; checks ; LMOVE / LPOP n }
//!                        │ taken: work on them, same slot    │ empty / not registered /
//!                        ◀───────────────────────────────────┘ draining: back to the pop
//! ```
//!
//! A plain [`ConsumerLease::ack`] followed by a [`ConsumerLease::pop`] costs two commands on
//! two connections per item. While items wait, [`ConsumerLease::ack_and_take`] does both in
//! one script: the acks of what was finished, then a non-blocking move of the next items into
//! the same processing list. `BLMOVE` (the pop) is left for an empty queue, where waiting in
//! Redis is the point. The caller says how many to take: one for items of real work, so that
//! a consumer never sits on items that another could start; several when items take so little
//! that the round trip is most of their cost (the consumer's [`batch_to_take`]).
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
//!
//! Items taken here are held like popped ones, so reconciliation counts them; it waits for
//! every take in flight (`ConsumerLease::moves`), since one not yet answered would look like a
//! stray. A take whose answer is lost may have moved items nobody holds: the lease then
//! reconciles before its next pop, and the reaper returns them should the consumer die.

use std::time::Duration;

use crate::lease::forget;
use crate::queue::COMMAND_TIMEOUT;
use crate::{ConsumerLease, Delivery, Item, Result};

/// The most items one [`ConsumerLease::ack_and_take`] takes.
pub const MAX_BATCH: usize = 64;

/// How much work a batch may hold, judged by the time its items took so far: a crash redoes at
/// most about this much, and items wait behind each other at most this long.
pub const BATCH_WORK: Duration = Duration::from_millis(1);

/// How many items to take next when each has been taking `per_item` (work, log, metrics):
/// as many as fit in [`BATCH_WORK`], at least one, at most [`MAX_BATCH`]. Items of a
/// millisecond or more go one by one, as the dojo's consumer takes them.
pub fn batch_to_take(per_item: Duration) -> usize {
    let fitting = BATCH_WORK.as_nanos() / per_item.as_nanos().max(1);
    usize::try_from(fitting)
        .unwrap_or(MAX_BATCH)
        .clamp(1, MAX_BATCH)
}

/// What [`ConsumerLease::ack_and_take`] did after the acks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// The items at the head of the queue (one or more, in queue order), now in this
    /// consumer's processing list.
    Items(Vec<Delivery>),
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
    /// Per finished item, in the order given: it was still in the processing list, and is now
    /// acknowledged (false: a reaper requeued it first, like [`ConsumerLease::ack`]'s false).
    pub acked: Vec<bool>,
    pub next: Next,
}

impl ConsumerLease {
    /// Acknowledges the `finished` items like [`ack`](Self::ack) and, in the same round trip,
    /// takes up to `take` waiting items (at least one) into this consumer's processing list
    /// when it may take (see the module docs). On an error the outcome is unknown: the acks
    /// may have happened (retry them with [`ack`](Self::ack), whose false then means "already
    /// done or requeued"), and items may have been moved, which the next pop's reconciliation
    /// returns to the queue.
    pub async fn ack_and_take(&self, finished: &[Delivery], take: usize) -> Result<AckAndTake> {
        let take = take.clamp(1, MAX_BATCH);
        // Until the answer is in `held`: a reconciliation must not see the items taken as strays.
        let _take_in_flight = self.moves.read().await;
        let mut connection = self.queue.connection.clone();
        let mut invocation = self.ack_and_take.key(&self.processing);
        invocation
            .key(&self.queue.inner.keys.completed)
            .key(&self.queue.inner.keys.queue)
            .key(&self.queue.inner.keys.own.consumers)
            .key(&self.heartbeat)
            .key(&self.draining)
            .arg(&self.consumer_id)
            .arg(take);
        for delivery in finished {
            invocation.arg(&delivery.raw);
        }
        let answer = self
            .queue
            .answer_about(
                COMMAND_TIMEOUT,
                &self.own_keys(),
                invocation.invoke_async::<(Vec<u64>, String, Vec<String>)>(&mut connection),
            )
            .await;
        let mut state = self.state();
        let (removed, what, taken) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                state.reconcile = true;
                return Err(error);
            }
        };
        for delivery in finished {
            forget(&mut state.held, &delivery.raw);
        }
        let next = match what.as_str() {
            "taken" => Next::Items(
                taken
                    .into_iter()
                    .map(|raw| {
                        *state.held.entry(raw.clone()).or_default() += 1;
                        Delivery {
                            item: Item::decode(&raw),
                            raw,
                        }
                    })
                    .collect(),
            ),
            "empty" => Next::Empty,
            "draining" => Next::Draining,
            _ => Next::NotRegistered,
        };
        match next {
            Next::Items(_) | Next::Empty => state.draining = false,
            Next::Draining => state.draining = true,
            Next::NotRegistered => {
                // Reaped, or about to be: register again before the next pop, and account for
                // whatever the list holds by then.
                state.last_heartbeat = None;
                state.reconcile = true;
            }
        }
        let acked: Vec<bool> = removed.iter().map(|count| *count > 0).collect();
        if acked.len() != finished.len() || acked.contains(&false) {
            state.reconcile = true;
        }
        Ok(AckAndTake { acked, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_items_go_in_batches_and_items_of_real_work_one_by_one() {
        assert_eq!(batch_to_take(Duration::ZERO), MAX_BATCH);
        assert_eq!(batch_to_take(Duration::from_micros(10)), MAX_BATCH);
        assert_eq!(batch_to_take(Duration::from_micros(100)), 10);
        assert_eq!(batch_to_take(Duration::from_micros(400)), 2);
        assert_eq!(batch_to_take(Duration::from_millis(1)), 1);
        assert_eq!(batch_to_take(Duration::from_secs(1)), 1);
    }
}
