//! Arrival and service rates, measured from successive readings for drain-time mode. The one
//! measurement: `ebb up` feeds it what Redis says every tick, `ebb simulate` what its
//! simulated queue says; both pass the time in.
//!
//! Arrivals are what the backlog gained plus what was finished; the service rate of one
//! ready replica is measured only while every one was busy (items waited throughout), since
//! an idle replica says nothing about how fast a busy one works. The last saturated figure
//! is kept until a new one is measured.

use std::collections::VecDeque;
use std::time::Duration;

use crate::input::Rates;
use crate::time::Instant;

/// One reading of the queue and of the target, as the meter needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateReading {
    /// Items waiting to be taken.
    pub waiting: u64,
    /// Items taken and not yet acknowledged.
    pub in_flight: u64,
    /// Items acknowledged since some fixed point (the queue's `<queue>:completed` counter):
    /// only differences between readings matter.
    pub completed_total: u64,
    /// Replicas running and taking items; not those asked for and still starting, which
    /// finish nothing.
    pub ready_replicas: u32,
}

impl RateReading {
    fn backlog(&self) -> u64 {
        self.waiting.saturating_add(self.in_flight)
    }
}

#[derive(Debug)]
pub struct RateMeter {
    window: Duration,
    samples: VecDeque<(Instant, RateReading)>,
    service_per_replica: Option<f64>,
}

impl RateMeter {
    /// Long enough to smooth one-at-a-time completions, short enough to follow a burst.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

    /// A meter looking at the readings of the last `window`.
    pub fn new(window: Duration) -> Self {
        RateMeter {
            window,
            samples: VecDeque::new(),
            service_per_replica: None,
        }
    }

    /// Records a reading taken at `at`; returns the rates once both can be told, `None`
    /// before.
    pub fn observe(&mut self, at: Instant, reading: RateReading) -> Option<Rates> {
        // A counter that went back (Redis restarted, key flushed) starts a new series.
        if self
            .samples
            .back()
            .is_some_and(|(_, last)| reading.completed_total < last.completed_total)
        {
            self.samples.clear();
        }
        self.samples.push_back((at, reading));
        while self
            .samples
            .front()
            .is_some_and(|(first, _)| at.saturating_duration_since(*first) > self.window)
        {
            self.samples.pop_front();
        }
        let ((first_at, first), (last_at, last)) = (self.samples.front()?, self.samples.back()?);
        let seconds = last_at.saturating_duration_since(*first_at).as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        let finished = last.completed_total - first.completed_total;
        let arrived = (last.backlog() + finished).saturating_sub(first.backlog());
        let saturated = self
            .samples
            .iter()
            .all(|(_, sample)| sample.waiting > 0 && sample.ready_replicas > 0);
        if saturated && finished > 0 {
            let mean_replicas = self
                .samples
                .iter()
                .map(|(_, sample)| f64::from(sample.ready_replicas))
                .sum::<f64>()
                / self.samples.len() as f64;
            self.service_per_replica = Some(finished as f64 / seconds / mean_replicas);
        }
        Rates::new(arrived as f64 / seconds, self.service_per_replica?).ok()
    }

    /// Items finished per second over the last `recent` (at most the window), whatever the
    /// replicas did: what a person watching expects, so shorter than the rate window.
    pub fn completion_rate(&self, recent: Duration) -> Option<f64> {
        let (last_at, last) = self.samples.back()?;
        let (first_at, first) = self
            .samples
            .iter()
            .find(|(at, _)| last_at.saturating_duration_since(*at) <= recent)?;
        let seconds = last_at.saturating_duration_since(*first_at).as_secs_f64();
        (seconds > 0.0).then(|| (last.completed_total - first.completed_total) as f64 / seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(waiting: u64, in_flight: u64, completed_total: u64, ready: u32) -> RateReading {
        RateReading {
            waiting,
            in_flight,
            completed_total,
            ready_replicas: ready,
        }
    }

    /// Each row: readings one per `at` second, and the rates (arrival, service per replica)
    /// the meter answers after the last one.
    #[test]
    fn rates_from_readings() {
        type Row = (
            &'static str,
            u64,
            Vec<(u64, RateReading)>,
            Option<(f64, f64)>,
        );
        let rows: Vec<Row> = vec![
            (
                "one reading tells nothing",
                10,
                vec![(0, reading(100, 2, 0, 2))],
                None,
            ),
            (
                // 2 replicas finish 4 items/s in all while 6 items/s arrive: backlog +2/s.
                "saturated replicas give both rates",
                10,
                vec![(0, reading(100, 2, 0, 2)), (5, reading(110, 2, 20, 2))],
                Some((6.0, 2.0)),
            ),
            (
                // Queue drained: replicas idle; the measured 2 items/s per replica stays.
                "idle replicas do not lower the service rate",
                4,
                vec![
                    (0, reading(50, 2, 0, 2)),
                    (4, reading(34, 2, 16, 2)),
                    (8, reading(0, 0, 34, 2)),
                    (12, reading(0, 0, 34, 2)),
                ],
                Some((0.0, 2.0)),
            ),
            (
                "never saturated: arrivals alone are not enough",
                10,
                vec![(0, reading(0, 1, 0, 3)), (5, reading(0, 1, 10, 3))],
                None,
            ),
            (
                "no ready replica, nothing measured even with items waiting",
                10,
                vec![(0, reading(50, 0, 0, 0)), (5, reading(80, 0, 0, 0))],
                None,
            ),
            (
                // Over the window, 1 then 3 ready: a mean of 2 replicas finished 10 items in 5 s.
                "the service rate is per mean ready replica",
                10,
                vec![(0, reading(60, 1, 0, 1)), (5, reading(60, 3, 10, 3))],
                Some((2.4, 1.0)),
            ),
            (
                "a counter reset starts over",
                10,
                vec![(0, reading(10, 1, 500, 1)), (1, reading(10, 1, 3, 1))],
                None,
            ),
            (
                // Only the readings of the last 4 s count: the first one falls out.
                "readings older than the window are dropped",
                4,
                vec![
                    (0, reading(0, 0, 0, 1)),
                    (5, reading(10, 1, 0, 1)),
                    (9, reading(10, 1, 8, 1)),
                ],
                Some((2.0, 2.0)),
            ),
        ];
        for (name, window, readings, expected) in rows {
            let mut meter = RateMeter::new(Duration::from_secs(window));
            let mut rates = None;
            for (at, reading) in readings {
                rates = meter.observe(Instant::from_secs(at), reading);
            }
            let got = rates.map(|r| (r.arrival_per_sec(), r.service_per_replica_per_sec()));
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn the_completion_rate_looks_at_the_recent_past_only() {
        let mut meter = RateMeter::new(Duration::from_secs(10));
        // Idle for 6 s, then 10 items/s for 4 s: the last 3 s say 10/s, the window 4/s.
        meter.observe(Instant::from_secs(0), reading(0, 0, 0, 0));
        meter.observe(Instant::from_secs(6), reading(100, 10, 0, 10));
        meter.observe(Instant::from_secs(7), reading(90, 10, 10, 10));
        meter.observe(Instant::from_secs(10), reading(60, 10, 40, 10));
        assert_eq!(meter.completion_rate(Duration::from_secs(3)), Some(10.0));
        assert_eq!(meter.completion_rate(Duration::from_secs(10)), Some(4.0));
    }
}
