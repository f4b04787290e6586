//! The raw recommendation: how many replicas the queue asks for right now, before bounds,
//! stabilization windows and rate limits. A pure function of the configuration and one
//! observation, monotone in the backlog.

use crate::config::ScalerConfig;
use crate::input::{Input, Rates};
use std::time::Duration;

/// A replica count and the one-line account of how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommendation {
    pub replicas: u32,
    pub basis: String,
}

pub(crate) fn recommend(config: &ScalerConfig, input: &Input) -> Recommendation {
    if input.current_replicas == 0 && input.waiting <= config.activation_threshold {
        return Recommendation {
            replicas: 0,
            basis: format!(
                "{} waiting is not above the activation threshold {}",
                input.waiting, config.activation_threshold
            ),
        };
    }
    match (config.drain_time, input.rates) {
        (Some(drain_time), Some(rates)) => drain_within(drain_time, rates, input),
        _ => average_value(config, input),
    }
}

/// The HPA's AverageValue rule (upstream `GetObjectPerPodMetricReplicas`), computed in
/// milli-units as upstream does so that rounding matches.
fn average_value(config: &ScalerConfig, input: &Input) -> Recommendation {
    let usage_milli = input.waiting as f64 * 1000.0;
    let target_milli = config.target_milli() as f64;
    let current = input.current_replicas;
    if current > 0 {
        let usage_ratio = usage_milli / (target_milli * f64::from(current));
        if config.tolerance.contains(usage_ratio) {
            return Recommendation {
                replicas: current,
                basis: format!(
                    "{} waiting is {:.2}× the target of {} per replica at {current}, within tolerance",
                    input.waiting, usage_ratio, config.target_per_replica
                ),
            };
        }
    }
    let replicas = saturating_replicas((usage_milli / target_milli).ceil());
    Recommendation {
        replicas,
        basis: format!(
            "{} waiting / {} per replica = {replicas}",
            input.waiting, config.target_per_replica
        ),
    }
}

/// The smallest n with n × service × T ≥ backlog + arrival × T: the backlog (waiting and
/// in flight) plus what arrives meanwhile is done within the drain time T.
fn drain_within(drain_time: Duration, rates: Rates, input: &Input) -> Recommendation {
    let seconds = drain_time.as_secs_f64();
    let work = input.backlog() as f64 + rates.arrival_per_sec() * seconds;
    let per_replica = rates.service_per_replica_per_sec() * seconds;
    // Float division can land a hair above an exact integer; that must not cost a replica.
    let replicas = saturating_replicas((work / per_replica - 1e-9).ceil());
    Recommendation {
        replicas,
        basis: format!(
            "{} queued + {:.2}/s arriving, drained within {} s at {:.2}/s per replica needs {replicas}",
            input.backlog(),
            rates.arrival_per_sec(),
            seconds,
            rates.service_per_replica_per_sec()
        ),
    }
}

fn saturating_replicas(value: f64) -> u32 {
    // `as` saturates and maps NaN to 0; inputs are validated so NaN cannot occur here.
    value.max(0.0) as u32
}
