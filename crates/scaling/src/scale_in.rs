//! Which replicas go on a scale-in: the pure ranking, no I/O.
//!
//! A ReplicaSet that loses replicas deletes the pods it ranks first, busy or idle. When the
//! caller can tell what each replica holds (a queue that records its consumers' leases), it
//! chooses instead:
//!
//! ```text
//!   replicas (name, ready)  ─┐                      ┌─▶ Choice::Chosen { pods, idle, busy }
//!                            ├─▶ choose(remove) ────┤
//!   holdings (name → items,  ┘                      └─▶ Choice::Unknown { reason }
//!             oldest lease age)                          (order nothing: let the ReplicaSet)
//! ```
//!
//! The order: replicas that are not Ready first (the ReplicaSet deletes those first anyway,
//! whatever their cost), then idle ones (holding nothing), then busy ones whose oldest item
//! in hand has run longest (the ones most likely to be free soonest). A Ready replica the
//! queue does not know cannot be judged: nothing is chosen, and the reason says which.

use std::time::Duration;

/// One replica of the workload, as its pod is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// The pod's name: the consumer's id in the queue.
    pub name: String,
    /// Its Ready condition.
    pub ready: bool,
    /// An earlier scale-in chose it and its mark is still on it (that scaler stopped before
    /// lowering the count): among equals it is chosen again, so a restart converges.
    pub marked: bool,
}

/// What one consumer holds, as the queue tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub consumer: String,
    /// Items in hand, every one of them whatever its concurrency.
    pub items: u64,
    /// How long ago the oldest of them was taken; `None` when it holds nothing, or when the
    /// queue cannot date it (then it ranks as if it had just begun).
    pub oldest: Option<Duration>,
}

/// Why a chosen replica goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Why {
    NotReady,
    Idle,
    /// Busy, and among those whose work began longest ago.
    Busy,
}

/// One chosen replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub name: String,
    pub why: Why,
    /// Items it held when chosen.
    pub items: u64,
}

/// The answer: who goes, or why no one can be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Chosen(Vec<Chosen>),
    Unknown { reason: String },
}

impl Choice {
    /// "2 idle, 1 busy" (and not-Ready ones when there are): for Events and the status.
    pub fn summary(chosen: &[Chosen]) -> String {
        let count = |why| chosen.iter().filter(|c| c.why == why).count();
        let not_ready = count(Why::NotReady);
        let mut summary = format!("{} idle, {} busy", count(Why::Idle), count(Why::Busy));
        if not_ready > 0 {
            summary.push_str(&format!(", {not_ready} not Ready"));
        }
        summary
    }
}

/// Chooses `remove` replicas of `replicas` to go, preferring among equals the ones in
/// `prefer` (already draining: they have stopped taking work) and the marked ones. A consumer in `holdings` that is
/// no replica is ignored (a pod gone, its lease not yet expired): it neither blocks nor
/// skews the choice.
pub fn choose(
    replicas: &[Replica],
    holdings: &[Holding],
    remove: usize,
    prefer: &[String],
) -> Choice {
    let mut ranked = Vec::with_capacity(replicas.len());
    for replica in replicas {
        if !replica.ready {
            ranked.push((Why::NotReady, Duration::MAX, replica, 0));
            continue;
        }
        let Some(holding) = holdings.iter().find(|h| h.consumer == replica.name) else {
            return Choice::Unknown {
                reason: format!(
                    "the queue does not know consumer {:?}: its pod's name is not its consumer id, or it has not registered yet",
                    replica.name
                ),
            };
        };
        if holding.items == 0 {
            ranked.push((Why::Idle, Duration::MAX, replica, 0));
        } else {
            let age = holding.oldest.unwrap_or(Duration::ZERO);
            ranked.push((Why::Busy, age, replica, holding.items));
        }
    }
    // Not Ready, then idle, then busy by oldest work first; among equals the ones already
    // draining, then the fewest items, then by name so the choice is stable tick to tick.
    ranked.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(b.1.cmp(&a.1))
            .then_with(|| {
                let other = |replica: &Replica| !(replica.marked || prefer.contains(&replica.name));
                other(a.2).cmp(&other(b.2))
            })
            .then(a.3.cmp(&b.3))
            .then_with(|| a.2.name.cmp(&b.2.name))
    });
    Choice::Chosen(
        ranked
            .into_iter()
            .take(remove)
            .map(|(why, _, replica, items)| Chosen {
                name: replica.name.clone(),
                why,
                items,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(name: &str) -> Replica {
        Replica {
            name: name.to_owned(),
            ready: true,
            marked: false,
        }
    }

    fn holding(consumer: &str, items: u64, oldest_secs: Option<u64>) -> Holding {
        Holding {
            consumer: consumer.to_owned(),
            items,
            oldest: oldest_secs.map(Duration::from_secs),
        }
    }

    fn names(choice: &Choice) -> Vec<(&str, Why)> {
        match choice {
            Choice::Chosen(chosen) => chosen.iter().map(|c| (c.name.as_str(), c.why)).collect(),
            Choice::Unknown { reason } => panic!("unknown: {reason}"),
        }
    }

    #[test]
    fn idle_replicas_go_before_busy_ones_and_not_ready_before_both() {
        let replicas = [
            ready("a"),
            ready("b"),
            Replica {
                name: "c".into(),
                ready: false,
                marked: false,
            },
            ready("d"),
        ];
        let holdings = [
            holding("a", 1, Some(3)),
            holding("b", 0, None),
            holding("d", 0, None),
        ];
        let choice = choose(&replicas, &holdings, 3, &[]);
        assert_eq!(
            names(&choice),
            [("c", Why::NotReady), ("b", Why::Idle), ("d", Why::Idle)]
        );
        let Choice::Chosen(chosen) = choice else {
            unreachable!()
        };
        assert_eq!(Choice::summary(&chosen), "2 idle, 0 busy, 1 not Ready");
    }

    #[test]
    fn among_busy_replicas_the_one_whose_work_began_longest_ago_goes_first() {
        let replicas = [ready("new"), ready("old"), ready("middle")];
        let holdings = [
            holding("new", 1, Some(1)),
            holding("old", 1, Some(19)),
            holding("middle", 1, Some(10)),
        ];
        assert_eq!(
            names(&choose(&replicas, &holdings, 2, &[])),
            [("old", Why::Busy), ("middle", Why::Busy)]
        );
    }

    #[test]
    fn a_ready_replica_the_queue_does_not_know_chooses_nothing() {
        let replicas = [ready("a"), ready("stranger")];
        let choice = choose(&replicas, &[holding("a", 0, None)], 1, &[]);
        let Choice::Unknown { reason } = choice else {
            panic!("{choice:?}")
        };
        assert!(reason.contains("\"stranger\""), "{reason}");
    }

    #[test]
    fn a_consumer_whose_pod_is_gone_neither_blocks_nor_skews_the_choice() {
        let replicas = [ready("a"), ready("b")];
        let holdings = [
            holding("gone", 5, Some(100)),
            holding("a", 1, Some(2)),
            holding("b", 0, None),
        ];
        assert_eq!(
            names(&choose(&replicas, &holdings, 1, &[])),
            [("b", Why::Idle)]
        );
    }

    #[test]
    fn replicas_already_draining_are_kept_chosen_among_equals() {
        let replicas = [ready("a"), ready("b"), ready("c")];
        let holdings = [
            holding("a", 0, None),
            holding("b", 0, None),
            holding("c", 0, None),
        ];
        assert_eq!(
            names(&choose(&replicas, &holdings, 1, &["c".to_owned()])),
            [("c", Why::Idle)]
        );
        // Without a preference, the name decides: the same answer every tick.
        assert_eq!(
            names(&choose(&replicas, &holdings, 1, &[])),
            [("a", Why::Idle)]
        );
        // A mark left by an earlier scale-in counts as a preference.
        let mut marked = replicas.to_vec();
        marked[1].marked = true;
        assert_eq!(
            names(&choose(&marked, &holdings, 1, &[])),
            [("b", Why::Idle)]
        );
    }
}
