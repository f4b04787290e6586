//! What the caller observed this tick, and what the scaler answers.

use crate::error::{Error, Result};

/// One observation of the queue and of the scaled target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Input {
    /// Items waiting in the queue (`LLEN`).
    pub waiting: u64,
    /// Items leased by consumers and not yet acknowledged; `None` when the source cannot
    /// tell (a plain list, a PromQL value). Unknown is not 0, and the decision says which it
    /// had: with an unknown count, the backlog (what scale to zero and drain time weigh) is
    /// the waiting items alone, and the reasons that name in-flight items say "unknown".
    pub in_flight: Option<u64>,
    /// Replicas the target has now (what the scaler asked for last, once applied).
    pub current_replicas: u32,
    /// Measured rates, for drain-time mode; `None` until measured.
    pub rates: Option<Rates>,
}

impl Input {
    pub fn new(waiting: u64, in_flight: u64, current_replicas: u32) -> Self {
        Input {
            waiting,
            in_flight: Some(in_flight),
            current_replicas,
            rates: None,
        }
    }

    /// The same observation, from a source that cannot tell what is in flight.
    pub fn in_flight_unknown(self) -> Self {
        Input {
            in_flight: None,
            ..self
        }
    }

    pub fn with_rates(self, rates: Rates) -> Self {
        Input {
            rates: Some(rates),
            ..self
        }
    }

    /// Items waiting per replica; absent at 0 replicas (upstream shows −2⁶³ there).
    pub fn average_per_replica(&self) -> Option<f64> {
        (self.current_replicas > 0).then(|| self.waiting as f64 / f64::from(self.current_replicas))
    }

    /// Waiting plus in flight; the waiting items alone when in flight is unknown (see
    /// [`Input::in_flight`]).
    pub(crate) fn backlog(&self) -> u64 {
        self.waiting.saturating_add(self.in_flight.unwrap_or(0))
    }

    /// The in-flight count as reasons show it.
    pub(crate) fn in_flight_shown(&self) -> String {
        match self.in_flight {
            Some(count) => count.to_string(),
            None => "an unknown number".to_owned(),
        }
    }
}

/// Measured throughput: items arriving per second, and items one replica finishes per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    arrival_per_sec: f64,
    service_per_replica_per_sec: f64,
}

impl Rates {
    pub fn new(arrival_per_sec: f64, service_per_replica_per_sec: f64) -> Result<Self> {
        let valid = arrival_per_sec.is_finite()
            && arrival_per_sec >= 0.0
            && service_per_replica_per_sec.is_finite()
            && service_per_replica_per_sec > 0.0;
        if !valid {
            return Err(Error::InvalidRates {
                arrival_per_sec,
                service_per_replica_per_sec,
            });
        }
        Ok(Rates {
            arrival_per_sec,
            service_per_replica_per_sec,
        })
    }

    pub fn arrival_per_sec(&self) -> f64 {
        self.arrival_per_sec
    }

    pub fn service_per_replica_per_sec(&self) -> f64 {
        self.service_per_replica_per_sec
    }
}

/// Which way a decision moves the replica count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Up,
    Down,
    None,
}

/// The scaler's answer for one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub current_replicas: u32,
    /// The count to apply.
    pub desired_replicas: u32,
    /// The raw recommendation from the metric, before bounds, windows and rate limits.
    pub recommendation: u32,
    /// Items waiting per replica; `None` at 0 replicas.
    pub average_per_replica: Option<f64>,
    /// Why, in one human-readable line.
    pub reason: String,
}

impl Decision {
    pub fn change(&self) -> Change {
        match self.desired_replicas.cmp(&self.current_replicas) {
            std::cmp::Ordering::Greater => Change::Up,
            std::cmp::Ordering::Less => Change::Down,
            std::cmp::Ordering::Equal => Change::None,
        }
    }
}
