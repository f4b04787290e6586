//! Who holds what: the per-consumer part of a reading, for scalers that pick which pods go
//! first. Each is read in the one atomic script that reads the counts, so it rides the
//! shared reader's pipeline: one command per queue or stream, one round trip per server per
//! tick, however many consumers.
//!
//! - An ebb queue: each registered consumer (registry set, every key layout), the length of
//!   its processing list and a fingerprint of each item in it, oldest first. The queue keeps
//!   no lease start (recording one would cost every consumer a write per item): the reader
//!   dates each item from the first reading that shows it in a consumer's list
//!   (`ebb_sources::queue`), and the fingerprints are what lets it tell items apart.
//! - A stream consumer group: each consumer of the group (`XINFO CONSUMERS`), its pending
//!   entries and the longest time since one of them was delivered (`XPENDING … IDLE`
//!   order: the largest idle time of its entries), which is when its oldest lease began.

use crate::batch::Command;
use crate::keys::Keys;
use crate::{QueueCounts, RedisReader, Result};

/// Items of one processing list fingerprinted per reading, head (oldest) first; a longer list
/// is still counted in full. Far above any consumer's `--concurrency`.
pub const FINGERPRINTED: u64 = 1_000;

/// Bytes of an item hashed for its fingerprint, with its length: an ebb item's id comes first
/// (`{"id":…`), so this tells two of them apart without hashing megabytes of payload.
const FINGERPRINT_BYTES: usize = 256;

/// One consumer as [`QUEUE_HOLDERS`](crate::held::QUEUE_HOLDERS) lists it: id, items held, their fingerprints.
type ListedHolder = (String, u64, Vec<String>);

/// What one registered consumer of an ebb queue holds, as [`RedisReader::queue_holders`]
/// reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldItems {
    /// The consumer's id (`--consumer-id`, the pod's name in the consumer chart).
    pub consumer: String,
    /// Items in its processing list.
    pub items: u64,
    /// A fingerprint of each, oldest first (at most [`FINGERPRINTED`]): equal items have
    /// equal fingerprints, so only the readers' memory tells a repeated plain string apart.
    pub fingerprints: Vec<String>,
}

impl RedisReader {
    /// [`queue_counts`](Self::queue_counts) and, in the same atomic script, what each
    /// registered consumer holds (see the module docs). A consumer registered under both key
    /// layouts (a rolling upgrade) is listed once, with both lists' items.
    pub async fn queue_holders(&self, queue: &str) -> Result<(QueueCounts, Vec<HeldItems>)> {
        let keys = Keys::new(queue)?;
        let layouts: Vec<_> = keys.layouts_read(self.address().is_cluster()).collect();
        let completed: Vec<String> = layouts.iter().map(|layout| layout.completed()).collect();
        let mut names = vec![keys.queue.as_str()];
        let mut expected = vec![(keys.queue.as_str(), "list")];
        let (bytes, most) = (FINGERPRINT_BYTES.to_string(), FINGERPRINTED.to_string());
        let mut args = vec![bytes.as_str(), most.as_str()];
        for (layout, completed) in layouts.iter().zip(&completed) {
            names.push(&layout.consumers);
            names.push(completed);
            args.push(&layout.prefix);
            expected.push((layout.consumers.as_str(), "set"));
            expected.push((completed.as_str(), "string"));
        }
        let command = Command::script(&self.queue_holders, &names, &args);
        let (waiting, in_flight, completed, listed): (u64, u64, u64, Vec<ListedHolder>) =
            self.call(command, "queue holders", &expected).await?;
        let mut holders: Vec<HeldItems> = Vec::with_capacity(listed.len());
        for (consumer, items, fingerprints) in listed {
            match holders.iter_mut().find(|held| held.consumer == consumer) {
                Some(held) => {
                    held.items += items;
                    held.fingerprints.extend(fingerprints);
                }
                None => holders.push(HeldItems {
                    consumer,
                    items,
                    fingerprints,
                }),
            }
        }
        let counts = QueueCounts {
            waiting,
            in_flight,
            completed,
        };
        Ok((counts, holders))
    }
}
