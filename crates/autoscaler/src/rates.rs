//! Arrival and service rates, measured from successive readings for drain-time mode.
//!
//! Arrivals are what the backlog gained plus what was finished; the service rate of one
//! ready replica is measured only while every one was busy (items waited throughout), since
//! an idle replica says nothing about how fast a busy one works. The last saturated figure
//! is kept until a new one is measured.

use std::collections::VecDeque;
use std::time::Duration;

use ebb_scaling::{Instant, Rates};

use crate::Reading;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    backlog: u64,
    completed: u64,
    ready_replicas: u32,
    waiting: u64,
}

#[derive(Debug)]
pub struct RateMeter {
    window: Duration,
    samples: VecDeque<Sample>,
    service_per_replica: Option<f64>,
}

impl RateMeter {
    pub fn new(window: Duration) -> Self {
        RateMeter {
            window,
            samples: VecDeque::new(),
            service_per_replica: None,
        }
    }

    /// Records a reading taken at `at` while `ready_replicas` were running (not those asked
    /// for and still starting: they finish nothing); returns the rates once both can be told,
    /// `None` before (or when the source counts no completions).
    pub fn observe(
        &mut self,
        at: Instant,
        reading: &Reading,
        ready_replicas: u32,
    ) -> Option<Rates> {
        let completed = reading.completed_total?;
        // A counter that went back (Redis restarted, key flushed) starts a new series.
        if self
            .samples
            .back()
            .is_some_and(|last| completed < last.completed)
        {
            self.samples.clear();
        }
        self.samples.push_back(Sample {
            at,
            backlog: reading.waiting.saturating_add(reading.in_flight),
            completed,
            ready_replicas,
            waiting: reading.waiting,
        });
        while self
            .samples
            .front()
            .is_some_and(|first| at.saturating_duration_since(first.at) > self.window)
        {
            self.samples.pop_front();
        }
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let seconds = last.at.saturating_duration_since(first.at).as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        let finished = last.completed - first.completed;
        let arrived = (last.backlog + finished).saturating_sub(first.backlog);
        let saturated = self
            .samples
            .iter()
            .all(|s| s.waiting > 0 && s.ready_replicas > 0);
        if saturated && finished > 0 {
            let mean_replicas = self
                .samples
                .iter()
                .map(|s| f64::from(s.ready_replicas))
                .sum::<f64>()
                / self.samples.len() as f64;
            self.service_per_replica = Some(finished as f64 / seconds / mean_replicas);
        }
        Rates::new(arrived as f64 / seconds, self.service_per_replica?).ok()
    }

    /// Items finished per second over the last `recent` (at most the window), whatever the
    /// replicas did: what a person watching expects, so shorter than the rate window.
    pub fn completion_rate(&self, recent: Duration) -> Option<f64> {
        let last = self.samples.back()?;
        let first = self
            .samples
            .iter()
            .find(|sample| last.at.saturating_duration_since(sample.at) <= recent)?;
        let seconds = last.at.saturating_duration_since(first.at).as_secs_f64();
        (seconds > 0.0).then(|| (last.completed - first.completed) as f64 / seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(waiting: u64, in_flight: u64, completed: u64) -> Reading {
        Reading {
            waiting,
            in_flight,
            completed_total: Some(completed),
        }
    }

    #[test]
    fn no_completion_counter_means_no_rates() {
        let mut meter = RateMeter::new(Duration::from_secs(10));
        let blind = Reading {
            waiting: 5,
            ..Reading::default()
        };
        assert_eq!(meter.observe(Instant::from_secs(0), &blind, 1), None);
        assert_eq!(meter.observe(Instant::from_secs(1), &blind, 1), None);
    }

    #[test]
    fn saturated_replicas_give_both_rates() {
        let mut meter = RateMeter::new(Duration::from_secs(10));
        // 2 replicas finish 4 items/s in all while 6 items/s arrive: backlog grows by 2/s.
        assert_eq!(
            meter.observe(Instant::from_secs(0), &reading(100, 2, 0), 2),
            None
        );
        let rates = meter
            .observe(Instant::from_secs(5), &reading(110, 2, 20), 2)
            .expect("saturated for 5 s");
        assert_eq!(rates.arrival_per_sec(), 6.0);
        assert_eq!(rates.service_per_replica_per_sec(), 2.0);
    }

    #[test]
    fn idle_replicas_do_not_lower_the_service_rate() {
        let mut meter = RateMeter::new(Duration::from_secs(4));
        meter.observe(Instant::from_secs(0), &reading(50, 2, 0), 2);
        meter.observe(Instant::from_secs(4), &reading(34, 2, 16), 2);
        // Queue drained: replicas idle; the measured 2 items/s per replica stays.
        meter.observe(Instant::from_secs(8), &reading(0, 0, 34), 2);
        let rates = meter
            .observe(Instant::from_secs(12), &reading(0, 0, 34), 2)
            .expect("rates known");
        assert_eq!(rates.service_per_replica_per_sec(), 2.0);
        assert_eq!(rates.arrival_per_sec(), 0.0);
    }

    #[test]
    fn the_completion_rate_looks_at_the_recent_past_only() {
        let mut meter = RateMeter::new(Duration::from_secs(10));
        // Idle for 6 s, then 10 items/s for 4 s: the last 3 s say 10/s, the window 4/s.
        meter.observe(Instant::from_secs(0), &reading(0, 0, 0), 0);
        meter.observe(Instant::from_secs(6), &reading(100, 10, 0), 10);
        meter.observe(Instant::from_secs(7), &reading(90, 10, 10), 10);
        meter.observe(Instant::from_secs(10), &reading(60, 10, 40), 10);
        assert_eq!(meter.completion_rate(Duration::from_secs(3)), Some(10.0));
        assert_eq!(meter.completion_rate(Duration::from_secs(10)), Some(4.0));
    }

    #[test]
    fn a_counter_reset_starts_over() {
        let mut meter = RateMeter::new(Duration::from_secs(10));
        meter.observe(Instant::from_secs(0), &reading(10, 1, 500), 1);
        assert_eq!(
            meter.observe(Instant::from_secs(1), &reading(10, 1, 3), 1),
            None
        );
    }
}
