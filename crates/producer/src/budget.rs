//! The memory every publish in flight may hold together (`--max-in-flight-bytes`): each
//! request takes its share before reading its body and before building its items, and gives
//! it back when its push is over (even if its client left). A request that finds too little
//! left is answered 429 at once, so the producer's memory stays bounded however many clients
//! ask at once.

use std::sync::{Arc, Mutex};

/// What one request is charged for its items, per encoded byte: the batch itself, the `RPUSH`
/// command built from it, that command packed for the socket, and the allocator's slack
/// (measured: one 16 MiB batch of 1-byte items raised the peak RSS by 97 MB,
/// bench/producer-limits/RESULTS.md).
pub(crate) const COPIES: u64 = 5;
/// And per item: its end offset in the batch, its slice, and its argument in the command and
/// in the packed command (RESP header).
pub(crate) const PER_ITEM: u64 = 72;

/// The memory a batch of `count` items of `item_len` encoded bytes takes while it is pushed.
pub(crate) fn batch_cost(count: u64, item_len: u64) -> u64 {
    count.saturating_mul(item_len.saturating_mul(COPIES).saturating_add(PER_ITEM))
}

/// The shared budget. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    limit: u64,
    used: Arc<Mutex<u64>>,
}

/// Not enough left: what is held, out of what.
#[derive(Debug)]
pub(crate) struct Busy {
    pub(crate) used: u64,
    pub(crate) limit: u64,
}

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub(crate) struct Charge {
    bytes: u64,
    used: Arc<Mutex<u64>>,
}

impl Budget {
    pub(crate) fn new(limit: u64) -> Budget {
        Budget {
            limit,
            used: Arc::new(Mutex::new(0)),
        }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// `bytes` of the budget, if that much is left.
    pub(crate) fn take(&self, bytes: u64) -> Result<Charge, Busy> {
        let mut used = self.used.lock().expect("budget lock");
        if used.saturating_add(bytes) > self.limit {
            return Err(Busy {
                used: *used,
                limit: self.limit,
            });
        }
        *used += bytes;
        Ok(Charge {
            bytes,
            used: self.used.clone(),
        })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        *self.used.lock().expect("budget lock") -= self.bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_to_the_limit_and_come_back_when_dropped() {
        let budget = Budget::new(100);
        let first = budget.take(60).unwrap();
        let busy = budget.take(41).unwrap_err();
        assert_eq!((busy.used, busy.limit), (60, 100));
        let second = budget.take(40).unwrap();
        drop(first);
        let third = budget.take(60).unwrap();
        drop((second, third));
        budget.take(100).unwrap();
    }
}
