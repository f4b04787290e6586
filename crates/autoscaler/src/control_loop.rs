//! Read → decide → apply, once per tick, and publish what happened.

use std::future::Future;
use std::time::Duration;

use ebb_scaling::{Decision, Input, Instant, RateMeter, RateReading, Scaler};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::{Error, MetricSource, Result, ScaleTarget};

/// What the loop saw and did last; `/status` serves it as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Status {
    pub waiting: u64,
    pub in_flight: u64,
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
}

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
        })
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
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            // `tick` has already logged and published the error.
            let _ = self.tick(Instant::from(started.elapsed())).await;
        }
    }

    /// One pass: read, decide, apply, publish. The scaler records the decision only once the
    /// target accepted it, so a refused change leaves no trace in its rate-limit history.
    ///
    /// An error is published as [`Status::last_error`] until a tick succeeds, and logged at
    /// warn only when its message differs from the one already published: an outage is one
    /// line, not one per tick.
    pub async fn tick(&mut self, now: Instant) -> Result<Decision> {
        let outcome = self.read_decide_apply(now).await;
        if let Err(error) = &outcome {
            let message = error.to_string();
            let repeated = self.status.borrow().last_error.as_deref() == Some(&message);
            if !repeated {
                tracing::warn!("{message}; trying again every {:?}", self.interval);
            }
            self.status
                .send_modify(|status| status.last_error = Some(message));
        }
        outcome
    }

    async fn read_decide_apply(&mut self, now: Instant) -> Result<Decision> {
        let reading = self.source.read().await?;
        let replicas = self.target.replicas().await?;
        let ready = self.target.ready_replicas().await?;
        // A source that counts no completions cannot tell a service rate.
        let rates = reading.completed_total.and_then(|completed_total| {
            self.rates.observe(
                now,
                RateReading {
                    waiting: reading.waiting,
                    in_flight: reading.in_flight,
                    completed_total,
                    ready_replicas: ready,
                },
            )
        });
        let input = Input {
            waiting: reading.waiting,
            in_flight: reading.in_flight,
            current_replicas: replicas,
            rates,
        };
        let proposal = self.scaler.propose(&input, now);
        let desired = proposal.decision().desired_replicas;
        let changed = desired != replicas;
        if changed {
            self.target.scale(desired).await?;
        }
        let decision = self.scaler.commit(proposal);
        if changed {
            // The reason already says "scale 3 → 5".
            tracing::info!("{}: {}", self.target.describe(), decision.reason);
        }
        let processed_per_sec = self.rates.completion_rate(DISPLAYED_RATE_WINDOW);
        self.status.send_modify(|status| {
            *status = Status {
                waiting: reading.waiting,
                in_flight: reading.in_flight,
                replicas,
                desired_replicas: decision.desired_replicas,
                last_decision: Some(DecisionStatus {
                    reason: decision.reason.clone(),
                    recommendation: decision.recommendation,
                    average_per_replica: decision.average_per_replica,
                    at_seconds: now.since_epoch().as_secs_f64(),
                }),
                processed_per_sec,
                scale_events: status.scale_events + u64::from(changed),
                last_error: None,
            }
        });
        Ok(decision)
    }
}
