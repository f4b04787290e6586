//! A scale-in that never interrupts work: before the loop lowers the count, it chooses the
//! replicas that go (ebb-scaling's [`choose`]), drains them where the source can, makes them
//! the ones the workload removes, and only then scales.
//!
//! ```text
//!  decision: N → M ──▶ replicas_for_scale_in ──▶ choose (idle first, then oldest work)
//!                                                   │
//!             ┌──── source can drain, drain on ─────┤
//!             ▼                                     ▼
//!   drain(chosen), read again ── busy? ──▶ Wait (tick again soon; the status says whom)
//!             │ all idle, or the bound ran out
//!             ▼
//!   order(chosen) (deletion costs, confirmed) ──▶ scale(M) ──▶ unorder the survivors
//! ```
//!
//! A decision that stops asking for the scale-in (the queue grew) cancels the drain at once:
//! the consumers take work again and their marks go, so a pod that never drains never holds
//! up a scale-up. Nothing is read or written on a tick that does not scale in.

use std::time::{Duration, SystemTime};

use ebb_scaling::{Choice, Chosen, Holding, Why, choose};
use serde::Serialize;

use crate::{MetricSource, Reading, Result, ScaleInReplicas, ScaleTarget};

/// How a scale-in picks the replicas that go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleInPolicy {
    /// The workload's own rules (a ReplicaSet's ranking): the loop only lowers the count.
    Workload,
    /// The loop chooses (idle first, then the oldest work) and marks them to go first.
    Choose,
    /// As `Choose`, and the chosen replicas first finish what they hold, for at most
    /// `bound`: no item is interrupted, however long it runs.
    Drain { bound: Duration },
}

/// How long a drain marker outlives the bound: a scaler that dies mid-drain leaves consumers
/// that go back to work by themselves soon after.
const MARKER_SLACK: Duration = Duration::from_secs(30);

/// How soon the loop looks again while a drain waits: the replicas go within this long of
/// their last item's end.
pub const DRAIN_RECHECK: Duration = Duration::from_millis(500);

/// What the last scale-in did, or is doing: the status shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleInStatus {
    /// Whether the replicas that go were chosen (`false`: the workload's rules applied).
    pub ordered: bool,
    /// A word for the outcome (`Chosen`, `Draining`, `UnknownConsumer`, …).
    pub reason: String,
    /// What happened, for a person.
    pub message: String,
    /// The replicas chosen to go.
    pub chosen: Vec<String>,
    pub idle: u32,
    pub busy: u32,
    /// Chosen replicas still finishing their items, while a drain waits.
    pub waiting_for: Vec<String>,
    /// How long the drain has waited, or waited in all.
    pub drain_seconds: Option<f64>,
    /// The drain's bound ran out before every chosen replica was idle.
    pub drain_timed_out: bool,
}

/// Running totals, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScaleInCounts {
    /// Scale-ins that lowered the count.
    pub scale_ins: u64,
    /// Of those, the ones that found no idle replica to remove (some busy one went).
    pub without_idle: u64,
    /// Scale-ins whose replicas were chosen and marked.
    pub ordered: u64,
    pub drains_timed_out: u64,
    pub drains_cancelled: u64,
    /// Writes to replicas (marks and their removal).
    pub replica_writes: u64,
}

/// A drain under way.
#[derive(Debug, Clone)]
struct Drain {
    consumers: Vec<String>,
    since: std::time::Instant,
}

/// The scale-in state of one loop.
pub(crate) struct ScaleIn {
    policy: ScaleInPolicy,
    drain: Option<Drain>,
    /// Replicas chosen by the last scale-in, to unmark if they stayed.
    removed: Vec<String>,
    pub(crate) status: Option<ScaleInStatus>,
    pub(crate) counts: ScaleInCounts,
}

/// What the loop does with its scale-in now.
pub(crate) enum Prepared {
    /// Lower the count.
    Go,
    /// Not yet: chosen replicas are still finishing their items.
    Wait,
}

impl ScaleIn {
    pub(crate) fn new(policy: ScaleInPolicy) -> ScaleIn {
        ScaleIn {
            policy,
            drain: None,
            removed: Vec::new(),
            status: None,
            counts: ScaleInCounts::default(),
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.drain.is_some()
    }

    /// Before lowering the count from `from` to `to` (above 0: at 0 every replica goes, and
    /// only once nothing was in flight for the whole cooldown).
    pub(crate) async fn prepare<S: MetricSource, T: ScaleTarget>(
        &mut self,
        source: &S,
        target: &T,
        (from, to): (u32, u32),
        reading: &Reading,
    ) -> Result<Prepared> {
        if self.policy == ScaleInPolicy::Workload {
            self.status = Some(ScaleInStatus {
                reason: "WorkloadRules".to_owned(),
                message:
                    "scaleIn.policy is Workload: the workload's own rules pick the replicas that go"
                        .to_owned(),
                ..ScaleInStatus::default()
            });
            return Ok(Prepared::Go);
        }
        let (chosen, choosable) = match target.replicas_for_scale_in(from, to).await? {
            ScaleInReplicas::Unordered { why } => {
                self.cancel(source, target).await;
                self.unordered("NotChoosable", why);
                return Ok(Prepared::Go);
            }
            ScaleInReplicas::Fixed { going, why } => {
                let chosen = going
                    .into_iter()
                    .map(|name| Chosen {
                        items: held_by(reading, &name),
                        why: if held_by(reading, &name) > 0 {
                            Why::Busy
                        } else {
                            Why::Idle
                        },
                        name,
                    })
                    .collect::<Vec<_>>();
                self.status = Some(ScaleInStatus {
                    reason: "FixedByWorkload".to_owned(),
                    message: why,
                    ..ScaleInStatus::default()
                });
                (chosen, false)
            }
            ScaleInReplicas::Choosable(replicas) => {
                if reading.leases.is_empty() {
                    self.cancel(source, target).await;
                    self.unordered(
                        "SourceCannotTell",
                        format!(
                            "{} cannot tell which consumer holds what: the workload's rules pick the replicas that go",
                            source.describe()
                        ),
                    );
                    return Ok(Prepared::Go);
                }
                let preferred = self
                    .drain
                    .as_ref()
                    .map(|drain| drain.consumers.clone())
                    .unwrap_or_default();
                let holdings = holdings(reading, SystemTime::now());
                let remove = (from - to) as usize;
                match choose(&replicas, &holdings, remove, &preferred) {
                    Choice::Unknown { reason } => {
                        self.cancel(source, target).await;
                        self.unordered("UnknownConsumer", reason);
                        return Ok(Prepared::Go);
                    }
                    Choice::Chosen(chosen) => (chosen, true),
                }
            }
        };
        let names: Vec<String> = chosen.iter().map(|c| c.name.clone()).collect();

        let mut timed_out = false;
        let mut drained_for = None;
        if let ScaleInPolicy::Drain { bound } = self.policy
            && source.can_drain()
        {
            let fresh = self.drain_only(source, &names, bound).await?;
            let since = self
                .drain
                .as_ref()
                .map_or_else(std::time::Instant::now, |d| d.since);
            let waited = since.elapsed();
            drained_for = Some(waited);
            // Judged on a reading taken after the markers were set: an item taken before
            // them shows here, none can be taken after.
            let after = match fresh {
                Some(reading) => reading,
                None => reading.clone(),
            };
            let busy: Vec<String> = names
                .iter()
                .filter(|name| held_by(&after, name) > 0)
                .cloned()
                .collect();
            if !busy.is_empty() && waited < bound {
                let items: u64 = busy.iter().map(|name| held_by(&after, name)).sum();
                self.status = Some(ScaleInStatus {
                    ordered: choosable,
                    reason: "Draining".to_owned(),
                    message: format!(
                        "scale {from} → {to} waits for {} to finish {items} item(s) in hand ({:.1} s of at most {:.0} s)",
                        busy.join(", "),
                        waited.as_secs_f64(),
                        bound.as_secs_f64()
                    ),
                    chosen: names,
                    idle: count(&chosen, Why::Idle),
                    busy: count(&chosen, Why::Busy),
                    waiting_for: busy,
                    drain_seconds: Some(waited.as_secs_f64()),
                    drain_timed_out: false,
                });
                return Ok(Prepared::Wait);
            }
            timed_out = !busy.is_empty();
        }

        if choosable {
            let writes = target.order(&names).await?;
            self.counts.replica_writes += u64::from(writes);
            self.counts.ordered += 1;
        }
        let idle = count(&chosen, Why::Idle);
        let busy = count(&chosen, Why::Busy);
        let mut message = format!(
            "scale {from} → {to}: {} go ({})",
            names.join(", "),
            Choice::summary(&chosen)
        );
        if let Some(waited) = drained_for {
            message.push_str(&format!(", drained for {:.1} s", waited.as_secs_f64()));
        }
        if timed_out {
            message.push_str(": the drain's bound ran out while they still held items");
        }
        self.status = Some(ScaleInStatus {
            ordered: choosable,
            reason: if choosable {
                "Chosen"
            } else {
                "FixedByWorkload"
            }
            .to_owned(),
            message,
            chosen: names,
            idle,
            busy,
            waiting_for: Vec::new(),
            drain_seconds: drained_for.map(|waited| waited.as_secs_f64()),
            drain_timed_out: timed_out,
        });
        Ok(Prepared::Go)
    }

    /// Marks `names` draining (and only them: replicas no longer chosen go back to work);
    /// on a change, reads the source again so that the drain is judged after the markers.
    async fn drain_only<S: MetricSource>(
        &mut self,
        source: &S,
        names: &[String],
        bound: Duration,
    ) -> Result<Option<Reading>> {
        let unchanged = self
            .drain
            .as_ref()
            .is_some_and(|drain| drain.consumers == names);
        if unchanged {
            return Ok(None);
        }
        let released: Vec<String> = self
            .drain
            .as_ref()
            .map(|drain| {
                drain
                    .consumers
                    .iter()
                    .filter(|consumer| !names.contains(consumer))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        source.undrain(&released).await?;
        source.drain(names, bound + MARKER_SLACK).await?;
        let since = self
            .drain
            .as_ref()
            .map_or_else(std::time::Instant::now, |drain| drain.since);
        self.drain = Some(Drain {
            consumers: names.to_vec(),
            since,
        });
        Ok(Some(source.read().await?))
    }

    /// After the count was lowered: the chosen replicas are going.
    pub(crate) fn scaled(&mut self) {
        self.counts.scale_ins += 1;
        if let Some(status) = &self.status {
            if status.busy > 0 {
                self.counts.without_idle += 1;
            }
            if status.drain_timed_out {
                self.counts.drains_timed_out += 1;
            }
            self.removed = status.chosen.clone();
        }
        self.drain = None;
    }

    /// A tick that does not scale in: a drain under way is cancelled (its consumers go back
    /// to work, their marks go), and replicas a finished scale-in chose but left are unmarked.
    pub(crate) async fn settle<S: MetricSource, T: ScaleTarget>(&mut self, source: &S, target: &T) {
        if self.drain.is_some() {
            self.counts.drains_cancelled += 1;
            self.cancel(source, target).await;
            if let Some(status) = &mut self.status {
                status.reason = "DrainCancelled".to_owned();
                status.message = format!(
                    "the scale-in is no longer wanted: {} take work again",
                    status.chosen.join(", ")
                );
                status.waiting_for.clear();
            }
        }
        if !self.removed.is_empty() {
            let removed = std::mem::take(&mut self.removed);
            // Only those still there: the target reads its replicas once for it.
            let survivors = match target.replicas_for_scale_in(0, 0).await {
                Ok(ScaleInReplicas::Choosable(replicas)) => removed
                    .into_iter()
                    .filter(|name| replicas.iter().any(|replica| &replica.name == name))
                    .collect(),
                _ => Vec::new(),
            };
            self.release(source, target, &survivors).await;
        }
    }

    /// Undoes a drain under way, and the marks of its replicas.
    async fn cancel<S: MetricSource, T: ScaleTarget>(&mut self, source: &S, target: &T) {
        if let Some(drain) = self.drain.take() {
            self.release(source, target, &drain.consumers).await;
        }
    }

    async fn release<S: MetricSource, T: ScaleTarget>(
        &mut self,
        source: &S,
        target: &T,
        replicas: &[String],
    ) {
        if replicas.is_empty() {
            return;
        }
        // Best effort: a marker expires by itself, a mark is removed at the next scale-in.
        if let Err(error) = source.undrain(replicas).await {
            tracing::warn!("{}: undrain {replicas:?}: {error}", source.describe());
        }
        match target.unorder(replicas).await {
            Ok(writes) => self.counts.replica_writes += u64::from(writes),
            Err(error) => tracing::warn!("{}: unmark {replicas:?}: {error}", target.describe()),
        }
    }

    fn unordered(&mut self, reason: &str, message: String) {
        self.status = Some(ScaleInStatus {
            reason: reason.to_owned(),
            message,
            ..ScaleInStatus::default()
        });
    }
}

fn count(chosen: &[Chosen], why: Why) -> u32 {
    chosen.iter().filter(|c| c.why == why).count() as u32
}

/// Items `consumer` holds in `reading` (0 when unknown to it).
fn held_by(reading: &Reading, consumer: &str) -> u64 {
    reading
        .leases
        .iter()
        .find(|lease| lease.consumer == consumer)
        .map_or(0, |lease| lease.leased)
}

/// The reading's leases as the ranking takes them, aged at `now`.
fn holdings(reading: &Reading, now: SystemTime) -> Vec<Holding> {
    reading
        .leases
        .iter()
        .map(|lease| Holding {
            consumer: lease.consumer.clone(),
            items: lease.leased,
            oldest: lease
                .since
                .map(|since| now.duration_since(since).unwrap_or_default()),
        })
        .collect()
}
