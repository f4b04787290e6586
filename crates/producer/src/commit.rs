//! Pushing and counting as one unit, out of reach of the request.
//!
//! ```text
//!  handler ──batch ≤ GROUP_UP_TO──▶ group task: takes every pending batch (≤ GROUP_MAX_ITEMS),
//!     │                             one RPUSH for all, counts, answers each handler
//!     └──larger batch──▶ its own task: push, count, answer
//! ```
//!
//! Axum drops a handler's future when its client hangs up. Were the push awaited there, a
//! client leaving after the items reached Redis would leave them uncounted; here the push and
//! the counter run in a task of their own, so `producer_messages_published_total` is exactly
//! what reached Redis, whoever waits for the answer.
//!
//! Concurrent small publishes are committed together (group commit): while one `RPUSH` is on
//! its way, the next ones pile up and go in the following one. A single `RPUSH` is atomic, so
//! each request's items still land all or nothing, and each request answers only once its own
//! items are in Redis.

use std::sync::Arc;

use ebb_queue::{Batch, Queue};
use ebb_runtime::Health;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, oneshot};

use crate::budget::Charge;

/// Batches up to this many items join the group commit; larger ones are pushed on their own.
const GROUP_UP_TO: usize = 64;
/// A group stops taking batches at this many items.
const GROUP_MAX_ITEMS: usize = 4096;
/// Batches waiting for the group task before handlers wait to hand theirs over.
const PENDING_CAPACITY: usize = 4096;

/// Why a commit failed; shared by every request of a failed group.
pub(crate) type Failure = Arc<ebb_queue::Error>;

/// Pushes batches and counts them. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Committer {
    unit: Unit,
    pending: mpsc::Sender<Pending>,
}

/// What a push and its count need.
#[derive(Clone)]
struct Unit {
    queue: Queue,
    health: Health,
    published: Counter,
}

struct Pending {
    batch: Batch,
    answer: oneshot::Sender<Result<(), Failure>>,
    /// Its share of `--max-in-flight-bytes`, held until the push is over.
    _charge: Charge,
}

impl Committer {
    /// A committer and its group task, which ends once every clone is dropped.
    pub(crate) fn start(queue: Queue, health: Health, published: Counter) -> Committer {
        let unit = Unit {
            queue,
            health,
            published,
        };
        let (pending, waiting) = mpsc::channel(PENDING_CAPACITY);
        tokio::spawn(commit_groups(unit.clone(), waiting));
        Committer { unit, pending }
    }

    /// Pushes `batch` and counts its items. Dropping this future (the client hung up) does not
    /// stop the push once started, nor its count.
    /// `charge` is given back once the push is over, not when the client leaves: the memory
    /// is held until then.
    pub(crate) async fn commit(&self, batch: Batch, charge: Charge) -> Result<(), Failure> {
        if batch.len() > GROUP_UP_TO {
            let unit = self.unit.clone();
            return tokio::spawn(async move {
                let outcome = unit.push_and_count(&batch).await;
                drop((batch, charge));
                outcome
            })
            .await
            .expect("a push task does not panic");
        }
        let (answer, answered) = oneshot::channel();
        self.pending
            .send(Pending {
                batch,
                answer,
                _charge: charge,
            })
            .await
            .unwrap_or_else(|_| unreachable!("the group task runs while a committer exists"));
        answered
            .await
            .expect("the group task answers every batch it takes")
    }
}

impl Unit {
    async fn push_and_count(&self, batch: &Batch) -> Result<(), Failure> {
        match self.queue.push_batch(batch).await {
            Ok(()) => {
                self.published.inc_by(batch.len() as u64);
                self.health.set_healthy();
                Ok(())
            }
            Err(error) => {
                self.health
                    .set_unhealthy(format!("the last attempt to publish failed: {error}"));
                Err(Arc::new(error))
            }
        }
    }
}

/// The group task: one `RPUSH` at a time, carrying every batch that arrived meanwhile.
async fn commit_groups(unit: Unit, mut waiting: mpsc::Receiver<Pending>) {
    let mut group = Batch::default();
    let mut answers = Vec::new();
    let mut charges = Vec::new();
    while let Some(first) = waiting.recv().await {
        let mut next = Some(first);
        while let Some(pending) = next.take() {
            group.append(&pending.batch);
            answers.push(pending.answer);
            charges.push(pending._charge);
            if group.len() < GROUP_MAX_ITEMS {
                next = waiting.try_recv().ok();
            }
        }
        let outcome = unit.push_and_count(&group).await;
        for answer in answers.drain(..) {
            // A handler that stopped waiting (client gone) has nothing left to tell.
            let _ = answer.send(outcome.clone());
        }
        group.clear();
        charges.clear();
    }
}
