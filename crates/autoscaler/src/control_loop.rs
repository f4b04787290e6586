//! Read → decide → apply, once per tick, and publish what happened.

use std::future::Future;
use std::time::Duration;

use ebb_scaling::{Decision, Input, Instant, Scaler};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::{Error, MetricSource, RateMeter, Result, ScaleTarget};

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
    /// Times the loop changed the replica count.
    pub scale_events: u64,
    /// The last error, until a tick succeeds again.
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

/// Rates are measured over this window: long enough to smooth one-at-a-time completions,
/// short enough to follow a burst.
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// `processed_per_sec` follows the last few seconds, as a person watching expects.
const DISPLAYED_RATE_WINDOW: Duration = Duration::from_secs(3);

impl<S: MetricSource, T: ScaleTarget> ControlLoop<S, T> {
    pub fn new(source: S, target: T, scaler: Scaler, interval: Duration) -> Result<Self> {
        if interval.is_zero() {
            return Err(Error::ZeroInterval(interval));
        }
        Ok(ControlLoop {
            source,
            target,
            scaler,
            interval,
            rates: RateMeter::new(RATE_WINDOW),
            status: watch::Sender::new(Status::default()),
        })
    }

    /// Follows every status the loop publishes, one per tick.
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    /// Ticks until `shutdown` completes. Errors of one tick are logged and published, and the
    /// next tick tries again: a loop that gave up would leave the target wherever it was.
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
            let now = Instant::from(started.elapsed());
            if let Err(error) = self.tick(now).await {
                let message = error.to_string();
                let repeated = self.status.borrow().last_error.as_deref() == Some(&message);
                if !repeated {
                    tracing::warn!("{message}; trying again every {:?}", self.interval);
                }
                self.status
                    .send_modify(|status| status.last_error = Some(message));
            }
        }
    }

    /// One pass: read, decide, apply. Public so tests can drive the loop tick by tick.
    pub async fn tick(&mut self, now: Instant) -> Result<Decision> {
        let reading = self.source.read().await?;
        let replicas = self.target.replicas().await?;
        let rates = self.rates.observe(now, &reading, replicas);
        let input = Input {
            waiting: reading.waiting,
            in_flight: reading.in_flight,
            current_replicas: replicas,
            rates,
        };
        let decision = self.scaler.decide(&input, now);
        let changed = decision.desired_replicas != replicas;
        if changed {
            self.target.scale(decision.desired_replicas).await?;
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
