//! Read → decide → apply, once per tick, and publish what happened.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ebb_scaling::{Decision, Input, Instant, Memory, RateMeter, RateReading, Scaler};
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::time::MissedTickBehavior;

use crate::scale_in::{
    DRAIN_RECHECK, Prepared, ScaleIn, ScaleInCounts, ScaleInPolicy, ScaleInStatus,
};
use crate::{Error, MetricSource, Result, ScaleTarget};

/// What the loop saw and did last; `/status` serves it as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Status {
    pub waiting: u64,
    /// `None` when the source cannot tell (shown as unknown, never as 0).
    pub in_flight: Option<u64>,
    /// Replicas asked of the target before the last decision.
    pub replicas: u32,
    pub desired_replicas: u32,
    pub last_decision: Option<DecisionStatus>,
    /// Items finished per second, when the source counts completions.
    pub processed_per_sec: Option<f64>,
    /// Changes of the replica count the target accepted.
    pub scale_events: u64,
    /// The last error, until a tick succeeds again. The place to read an outage: the loop
    /// logs it once per new message, callers should not log it again.
    pub last_error: Option<String>,
    /// Failed reads in a row; 0 once a read succeeds.
    pub consecutive_read_failures: u32,
    /// The fallback count is applied: reads have failed [`Fallback::after_failures`] times.
    pub fallback_active: bool,
    /// How long the last successful read took.
    pub read_seconds: Option<f64>,
    /// When the last successful tick began its read. Whoever publishes the tick further (the
    /// operator: status, Events) measures the whole reconcile from here.
    #[serde(skip)]
    pub tick_started: Option<std::time::Instant>,
    /// Running totals of what the ticks did: exact however a follower's watch channel
    /// merges statuses (the difference between two statuses is what happened in between).
    pub counts: TickCounts,
    /// What a scaler taking over later needs to continue these decisions (see
    /// [`ebb_scaling::Memory`]), as of the last successful tick.
    #[serde(skip)]
    pub memory: Memory,
    /// The last scale-in: which replicas were chosen and why, or the drain it waits for.
    pub scale_in: Option<ScaleInStatus>,
    pub scale_in_counts: ScaleInCounts,
}

/// What the loop's ticks did since it started, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TickCounts {
    /// Successful reads.
    pub reads: u64,
    pub read_failures: u64,
    /// Ticks that read but could not look at or scale the target.
    pub apply_failures: u64,
    /// Decisions, by kind: more replicas, fewer, the same, or the fallback count (a tick
    /// after enough failed reads, whether or not it changed the count).
    pub scale_up: u64,
    pub scale_down: u64,
    pub hold: u64,
    pub fallback: u64,
}

impl TickCounts {
    /// The decisions counted, all kinds together.
    pub fn decisions(&self) -> u64 {
        self.scale_up + self.scale_down + self.hold + self.fallback
    }
}

/// What to run while the source cannot be read: `replicas`, once `after_failures` reads in
/// a row have failed, also from 0 replicas. Without one, a failed read holds the current
/// count; neither ever scales to zero on a failed read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    pub replicas: u32,
    pub after_failures: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionStatus {
    pub reason: String,
    pub recommendation: u32,
    /// Items waiting per replica; `null` at 0 replicas (where the HPA shows −2⁶³).
    pub average_per_replica: Option<f64>,
    /// Seconds since the loop started.
    pub at_seconds: f64,
}

pub struct ControlLoop<S, T> {
    source: S,
    target: T,
    scaler: Scaler,
    interval: Duration,
    rates: RateMeter,
    status: watch::Sender<Status>,
    fallback: Option<Fallback>,
    /// Memory of an earlier scaler to continue from, recalled at the first tick.
    recall: Option<Memory>,
    /// Rung when the source changed (a keyspace notification): tick now, not at the next
    /// interval.
    wake: Option<Arc<Notify>>,
    /// The instant `run` starts its clock at: far enough from the epoch that a recalled
    /// memory's past still fits on the new clock.
    origin: Duration,
    /// How a scale-in picks the replicas that go, and the drain under way.
    scale_in: ScaleIn,
}

/// When a tick read, and how long the read took: what its status reports.
#[derive(Clone, Copy)]
struct TickClock {
    now: Instant,
    read_started: std::time::Instant,
    read_seconds: f64,
}

/// How far back a recalled memory can reach: the longest stabilization window upstream
/// allows (an hour).
const RECALL_HORIZON: Duration = Duration::from_secs(3600);

/// When the target is missing ([`Error::TargetMissing`]) the next tick comes after a pause
/// that doubles from the first to the last of these, never later than the interval: a
/// workload created in the same apply as its scaler is scaled within a second or two, not
/// after a polling interval that may be minutes; one that never comes costs a tick every 8 s.
const MISSING_TARGET_RETRY: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(8)];

/// `processed_per_sec` follows the last few seconds, as a person watching expects.
const DISPLAYED_RATE_WINDOW: Duration = Duration::from_secs(3);

impl<S: MetricSource, T: ScaleTarget> ControlLoop<S, T> {
    pub fn new(source: S, target: T, scaler: Scaler, interval: Duration) -> Result<Self> {
        if interval.is_zero() {
            return Err(Error::ZeroInterval);
        }
        Ok(ControlLoop {
            source,
            target,
            scaler,
            interval,
            rates: RateMeter::new(RateMeter::DEFAULT_WINDOW),
            status: watch::Sender::new(Status::default()),
            fallback: None,
            recall: None,
            wake: None,
            origin: Duration::ZERO,
            scale_in: ScaleIn::new(ScaleInPolicy::Workload),
        })
    }

    /// Chooses the replicas a scale-in removes, and drains them first (see `scale_in.rs`);
    /// without it the workload's own rules pick them.
    pub fn with_scale_in(mut self, policy: ScaleInPolicy) -> Self {
        self.scale_in = ScaleIn::new(policy);
        self
    }

    /// Ticks at once whenever `wake` is notified, besides every interval: a source that can
    /// tell when it changed makes the loop react in a round trip, polling stays the net.
    pub fn with_wake(mut self, wake: Arc<Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// Continues from `memory`, taken from an earlier scaler (a process restarted, another
    /// replica taking over), instead of starting with no history.
    pub fn with_memory(mut self, memory: Memory) -> Self {
        self.recall = Some(memory);
        self
    }

    /// Runs `fallback.replicas` while reads fail (see [`Fallback`]).
    pub fn with_fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// Follows every status the loop publishes, one per tick.
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    /// Ticks until `shutdown` completes. A failed tick is not the end: the next one tries
    /// again, since a loop that gave up would leave the target wherever it was.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let started = tokio::time::Instant::now();
        self.origin = RECALL_HORIZON;
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let wake = self.wake.clone();
        let woken = || async {
            match &wake {
                Some(wake) => wake.notified().await,
                None => std::future::pending().await,
            }
        };
        let [first_retry, last_retry] = MISSING_TARGET_RETRY;
        let mut retry = first_retry;
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {}
                // The next poll comes a whole interval after this tick.
                () = woken() => ticks.reset(),
            }
            // `tick` has already logged and published the error.
            let outcome = self
                .tick(Instant::from(self.origin + started.elapsed()))
                .await;
            if let Err(Error::TargetMissing { .. }) = outcome {
                if retry < self.interval {
                    ticks.reset_after(retry);
                }
                retry = (retry * 2).min(last_retry);
            } else {
                retry = first_retry;
                // The replicas go as soon as their last item is done, not a poll later.
                if self.scale_in.is_draining() && DRAIN_RECHECK < self.interval {
                    ticks.reset_after(DRAIN_RECHECK);
                }
            }
        }
    }

    /// One pass: read, decide, apply, publish. The scaler records the decision only once the
    /// target accepted it, so a refused change leaves no trace in its rate-limit history.
    ///
    /// An error is published as [`Status::last_error`] until a tick succeeds, and logged at
    /// warn only when its message differs from the one already published: an outage is one
    /// line, not one per tick.
    pub async fn tick(&mut self, now: Instant) -> Result<Decision> {
        let read_started = std::time::Instant::now();
        let (outcome, read) = match self.source.read().await {
            Ok(reading) => (self.decide_apply(reading, now, read_started).await, true),
            Err(error) => {
                let failures = self.status.borrow().consecutive_read_failures + 1;
                self.status.send_modify(|status| {
                    status.consecutive_read_failures = failures;
                    status.counts.read_failures += 1;
                });
                self.fall_back(failures).await;
                (Err(error.into()), false)
            }
        };
        if let Err(error) = &outcome {
            let message = error.to_string();
            let repeated = self.status.borrow().last_error.as_deref() == Some(&message);
            if !repeated {
                let again = match error {
                    Error::TargetMissing { .. } => "within seconds".to_owned(),
                    _ => format!("every {:?}", self.interval),
                };
                tracing::warn!("{message}; trying again {again}");
            }
            self.status.send_modify(|status| {
                status.last_error = Some(message);
                if read {
                    status.counts.reads += 1;
                    status.counts.apply_failures += 1;
                }
            });
        }
        outcome
    }

    /// After a failed read: hold the count, or once enough reads failed, apply the fallback.
    async fn fall_back(&mut self, failures: u32) {
        let Some(fallback) = self.fallback else {
            return;
        };
        if failures < fallback.after_failures {
            return;
        }
        let replicas = match self.target.replicas().await {
            Ok(replicas) => replicas,
            Err(error) => {
                tracing::warn!("fallback: {error}");
                return;
            }
        };
        let changed = replicas != fallback.replicas;
        if changed && let Err(error) = self.target.scale(fallback.replicas).await {
            tracing::warn!("fallback: {error}");
            return;
        }
        let reason = format!(
            "fallback after {failures} failed reads: {} replicas",
            fallback.replicas
        );
        if changed {
            tracing::info!(
                "{}: scale {replicas} → {}, {reason}",
                self.target.describe(),
                fallback.replicas
            );
        }
        self.status.send_modify(|status| {
            status.replicas = replicas;
            status.desired_replicas = fallback.replicas;
            status.fallback_active = true;
            status.scale_events += u64::from(changed);
            status.counts.fallback += 1;
            status.last_decision = Some(DecisionStatus {
                reason: if changed {
                    format!("scale {replicas} → {}, {reason}", fallback.replicas)
                } else {
                    reason
                },
                recommendation: fallback.replicas,
                average_per_replica: None,
                at_seconds: status
                    .last_decision
                    .as_ref()
                    .map_or(0.0, |decision| decision.at_seconds),
            });
        });
    }

    async fn decide_apply(
        &mut self,
        reading: crate::Reading,
        now: Instant,
        read_started: std::time::Instant,
    ) -> Result<Decision> {
        let clock = TickClock {
            now,
            read_started,
            read_seconds: read_started.elapsed().as_secs_f64(),
        };
        if let Some(memory) = self.recall.take() {
            self.scaler.recall(&memory, now);
        }
        let replicas = self.target.replicas().await?;
        let ready = self.target.ready_replicas().await?;
        // A source that counts no completions cannot tell a service rate; nor can one that
        // cannot tell what is in flight (arrivals are the backlog's growth plus completions).
        let rates = reading.completed_total.zip(reading.in_flight).and_then(
            |(completed_total, in_flight)| {
                self.rates.observe(
                    now,
                    RateReading {
                        waiting: reading.waiting,
                        in_flight,
                        completed_total,
                        ready_replicas: ready,
                    },
                )
            },
        );
        let input = Input {
            waiting: reading.waiting,
            // Unknown stays unknown: the decision's own rule for it (`Input::in_flight`).
            in_flight: reading.in_flight,
            current_replicas: replicas,
            rates,
        };
        let proposal = self.scaler.propose(&input, now);
        let desired = proposal.decision().desired_replicas;
        let changed = desired != replicas;
        if desired < replicas && desired > 0 {
            let step = self
                .scale_in
                .prepare(&self.source, &self.target, (replicas, desired), &reading)
                .await?;
            if let Prepared::Wait = step {
                // Not committed: the scale-in is still to come, its history untouched.
                let mut decision = proposal.decision().clone();
                decision.desired_replicas = replicas;
                if let Some(waiting) = &self.scale_in.status {
                    decision.reason = waiting.message.clone();
                }
                self.publish(&reading, replicas, &decision, &clock, false);
                return Ok(decision);
            }
        } else {
            self.scale_in.settle(&self.source, &self.target).await;
        }
        if changed {
            self.target.scale(desired).await?;
            if desired < replicas && desired > 0 {
                self.scale_in.scaled();
            }
        }
        let decision = self.scaler.commit(proposal);
        if changed {
            // The reason already says "scale 3 → 5".
            tracing::info!("{}: {}", self.target.describe(), decision.reason);
        }
        self.publish(&reading, replicas, &decision, &clock, changed);
        Ok(decision)
    }

    /// Publishes the tick's status.
    fn publish(
        &self,
        reading: &crate::Reading,
        replicas: u32,
        decision: &Decision,
        clock: &TickClock,
        changed: bool,
    ) {
        let TickClock {
            now,
            read_started,
            read_seconds,
        } = *clock;
        let desired = decision.desired_replicas;
        let processed_per_sec = self.rates.completion_rate(DISPLAYED_RATE_WINDOW);
        self.status.send_modify(|status| {
            let mut counts = status.counts;
            counts.reads += 1;
            match desired.cmp(&replicas) {
                std::cmp::Ordering::Greater => counts.scale_up += 1,
                std::cmp::Ordering::Less => counts.scale_down += 1,
                std::cmp::Ordering::Equal => counts.hold += 1,
            }
            *status = Status {
                waiting: reading.waiting,
                in_flight: reading.in_flight,
                replicas,
                desired_replicas: decision.desired_replicas,
                last_decision: Some(DecisionStatus {
                    reason: decision.reason.clone(),
                    recommendation: decision.recommendation,
                    average_per_replica: decision.average_per_replica,
                    at_seconds: now.since_epoch().saturating_sub(self.origin).as_secs_f64(),
                }),
                processed_per_sec,
                scale_events: status.scale_events + u64::from(changed),
                last_error: None,
                consecutive_read_failures: 0,
                fallback_active: false,
                read_seconds: Some(read_seconds),
                tick_started: Some(read_started),
                counts,
                memory: self.scaler.memory(now),
                scale_in: self.scale_in.status.clone(),
                scale_in_counts: self.scale_in.counts,
            }
        });
    }
}
