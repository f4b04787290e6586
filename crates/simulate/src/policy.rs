//! Scaling policies under test. Each sees the world through an [`Observation`] every
//! simulation step and answers with a replica count when it acts; the delays of its own
//! pipeline (tick interval, scrapes, rule evaluation, sync period) are modelled inside it.

use std::time::Duration;

use ebb_scaling::{Input, Instant, RateMeter, RateReading, Scaler, ScalerConfig};

use crate::error::{Error, Result};

/// What a real scaler could read at one instant: what Redis and the target report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observation {
    pub waiting: u64,
    pub in_flight: u64,
    /// Replicas last asked for (the Deployment's `spec.replicas`).
    pub replicas: u32,
    /// Replicas started and not asked to stop: they take items.
    pub ready_replicas: u32,
    /// Items acknowledged since the start, as each ack counts them in `<queue>:completed`.
    pub completed: u64,
}

pub trait Policy {
    fn name(&self) -> &'static str;
    /// Called every step; returns the desired count when the policy acts at `now`.
    fn observe(&mut self, now: Instant, seen: &Observation) -> Option<u32>;
}

/// A loop with a period (a tick, a scrape, a sync): due once `now` reaches its next run.
#[derive(Debug, Clone, Copy)]
struct Every {
    next: Duration,
    period: Duration,
}

impl Every {
    /// `flag` names the period in the error: a zero period would be due forever.
    fn starting_at(phase: Duration, period: Duration, flag: &'static str) -> Result<Self> {
        if period.is_zero() {
            return Err(Error::ZeroDuration { flag });
        }
        Ok(Every {
            next: phase,
            period,
        })
    }

    fn due(&mut self, now: Instant) -> bool {
        let now = now.since_epoch();
        if now < self.next {
            return false;
        }
        // Runs missed between two steps collapse into this one, in one division: a period
        // far below the step must not cost a loop per missed run.
        let missed = (now - self.next).as_nanos() / self.period.as_nanos();
        let runs = u32::try_from(missed + 1).unwrap_or(u32::MAX);
        self.next = self.next.saturating_add(self.period.saturating_mul(runs));
        true
    }
}

/// ebb: reads the queue directly every `interval` and decides with `ebb-scaling`, with the
/// rates measured by the same [`RateMeter`] as `ebb up`, from the same readings.
pub struct Ebb {
    scaler: Scaler,
    tick: Every,
    rates: RateMeter,
}

impl Ebb {
    pub fn new(config: ScalerConfig, interval: Duration) -> Result<Self> {
        Ok(Ebb {
            scaler: Scaler::new(config)?,
            tick: Every::starting_at(Duration::ZERO, interval, "--interval")?,
            rates: RateMeter::new(RateMeter::DEFAULT_WINDOW),
        })
    }
}

impl Policy for Ebb {
    fn name(&self) -> &'static str {
        "ebb"
    }

    fn observe(&mut self, now: Instant, seen: &Observation) -> Option<u32> {
        if !self.tick.due(now) {
            return None;
        }
        let reading = RateReading {
            waiting: seen.waiting,
            in_flight: seen.in_flight,
            completed_total: seen.completed,
            ready_replicas: seen.ready_replicas,
        };
        let input = Input::new(seen.waiting, seen.in_flight, seen.replicas);
        let input = match self.rates.observe(now, reading) {
            Some(rates) => input.with_rates(rates),
            None => input,
        };
        Some(self.scaler.decide(&input, now).desired_replicas)
    }
}

/// The delays of the dojo's chain (`--scrape-interval`, `--rule-interval`,
/// `--hpa-sync-period`); the phases say when each loop first runs.
#[derive(Debug, Clone, Copy)]
pub struct PipelineTiming {
    pub scrape_interval: Duration,
    pub scrape_phase: Duration,
    pub rule_interval: Duration,
    pub rule_phase: Duration,
    pub sync_period: Duration,
    pub sync_phase: Duration,
}

/// The dojo's chain: redis_exporter scraped by Prometheus, the `redis_items_in_queue`
/// recording rule, prometheus-adapter serving the latest sample, the HPA syncing
/// periodically. The HPA never sees in-flight items: its only metric is the list length.
pub struct HpaPipeline {
    scaler: Scaler,
    scrape: Every,
    rule: Every,
    sync: Every,
    /// `redis_key_size` as of the latest scrape; absent until the first one.
    scraped: Option<u64>,
    /// `redis_items_in_queue`: the scraped value, or 0 when absent (the dojo's `or` rule).
    recorded: Option<u64>,
}

impl HpaPipeline {
    pub fn new(config: ScalerConfig, timing: PipelineTiming) -> Result<Self> {
        let t = timing;
        Ok(HpaPipeline {
            // The run starts at 0 replicas as the dojo's HPA left them once the queue first
            // drained; only from there does a 1.37 HPA scale up from 0 again.
            scaler: Scaler::new(config)?.with_scaled_to_zero(),
            scrape: Every::starting_at(t.scrape_phase, t.scrape_interval, "--scrape-interval")?,
            rule: Every::starting_at(t.rule_phase, t.rule_interval, "--rule-interval")?,
            sync: Every::starting_at(t.sync_phase, t.sync_period, "--hpa-sync-period")?,
            scraped: None,
            recorded: None,
        })
    }
}

impl Policy for HpaPipeline {
    fn name(&self) -> &'static str {
        "hpa-pipeline"
    }

    fn observe(&mut self, now: Instant, seen: &Observation) -> Option<u32> {
        if self.scrape.due(now) {
            // The exporter drops the series of an empty key.
            self.scraped = (seen.waiting > 0).then_some(seen.waiting);
        }
        if self.rule.due(now) {
            self.recorded = Some(self.scraped.unwrap_or(0));
        }
        if !self.sync.due(now) {
            return None;
        }
        // Before the rule's first evaluation the adapter has no value: the HPA skips the sync.
        let metric = self.recorded?;
        let input = Input::new(metric, 0, seen.replicas);
        Some(self.scaler.decide(&input, now).desired_replicas)
    }
}
