//! From what the control loop saw to the QueueScaler's status, which the
//! [`Writer`](crate::Writer) writes by server-side apply under one field manager.
//!
//! Writes are few: a new decision, a change of replicas, a condition turning, or an error
//! is written at once; when only the counts move, at most once per `COUNTS_EVERY`; when
//! nothing changes, nothing is written.

use std::time::Duration;

use ebb_autoscaler::Status;
use ebb_scaling::Memory;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::crd::{QueueScalerStatus, ScaleInStatus, TimedRecommendation, condition};

/// The field manager of every write this operator makes.
pub const FIELD_MANAGER: &str = "ebb-operator";

/// Counts alone (waiting, in flight) are refreshed at most this often.
pub const COUNTS_EVERY: Duration = Duration::from_secs(5);

/// What the status says besides the loop's own status.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub generation: Option<i64>,
    /// This status follows a change of the count.
    pub scaled_now: bool,
    /// Another scaler of the same workload, in words.
    pub conflict: Option<String>,
    /// The ScaleInOrder condition before any scale-in: what the workload's kind and the
    /// policy allow (see `pods.rs`).
    pub scale_in_rule: (bool, &'static str, String),
}

/// The status for `seen`, carrying over from `previous` what did not change (condition
/// transition times, the last scale time).
pub fn next_status(
    previous: &QueueScalerStatus,
    seen: &Status,
    facts: Facts,
    now: Timestamp,
) -> QueueScalerStatus {
    let Facts {
        generation,
        scaled_now,
        conflict,
        scale_in_rule,
    } = facts;
    let decision = seen.last_decision.as_ref();
    let ready = match &seen.last_error {
        None => (
            true,
            "ReadAndDecided",
            "the queue was read and a decision made".to_owned(),
        ),
        Some(error) => (false, "ReadFailed", error.clone()),
    };
    let active = if seen.replicas > 0 || seen.desired_replicas > 0 {
        (
            true,
            "Running",
            "the workload has replicas or is being given some".to_owned(),
        )
    } else {
        (
            false,
            "ScaledToZero",
            "the workload is at 0 replicas".to_owned(),
        )
    };
    let fallback = if seen.fallback_active {
        (
            true,
            "ReadsFailing",
            format!(
                "{} reads failed in a row: running the fallback count",
                seen.consecutive_read_failures
            ),
        )
    } else {
        (false, "ReadsSucceed", "the queue can be read".to_owned())
    };
    let conflict = match conflict {
        Some(message) => (true, "AnotherScaler", message),
        None => (
            false,
            "SoleScaler",
            "nothing else scales the workload".to_owned(),
        ),
    };
    let paused = (false, "NotPaused", "decisions are applied".to_owned());
    // The last scale-in's outcome once there was one; what the kind allows before.
    let scale_in_order = match &seen.scale_in {
        Some(scale_in) if scale_in.reason != "Draining" && scale_in.reason != "DrainCancelled" => (
            scale_in.ordered,
            scale_in.reason.as_str(),
            scale_in.message.clone(),
        ),
        _ => (scale_in_rule.0, scale_in_rule.1, scale_in_rule.2.clone()),
    };
    let mut conditions = Vec::new();
    for (kind, (status, reason, message)) in [
        (condition::READY, ready),
        (condition::ACTIVE, active),
        (condition::FALLBACK, fallback),
        (condition::PAUSED, paused),
        (condition::CONFLICT, conflict),
        (condition::SCALE_IN_ORDER, scale_in_order),
    ] {
        conditions.push(carry_over(
            &previous.conditions,
            kind,
            status,
            reason,
            message,
            generation,
            now,
        ));
    }
    QueueScalerStatus {
        observed_generation: generation,
        replicas: Some(seen.replicas),
        desired_replicas: Some(seen.desired_replicas),
        waiting: Some(seen.waiting),
        // Absent when the source cannot tell: unknown, not 0.
        in_flight: seen.in_flight,
        average_per_replica: decision
            .and_then(|decision| decision.average_per_replica)
            .map(quantity),
        last_scale_time: if scaled_now {
            Some(Time(now))
        } else {
            previous.last_scale_time.clone()
        },
        last_decision: decision.map(|decision| decision.reason.clone()),
        queue_empty_since: seen
            .memory
            .queue_empty_for
            .map(|age| steady_time(previous.queue_empty_since.as_ref(), now, age)),
        recent_recommendations: seen
            .memory
            .recommendations
            .iter()
            .map(|&(age, replicas)| TimedRecommendation {
                time: steady_time(
                    previous
                        .recent_recommendations
                        .iter()
                        .find(|past| past.replicas == replicas)
                        .map(|past| &past.time),
                    now,
                    age,
                ),
                replicas,
            })
            .collect(),
        consecutive_read_failures: seen.consecutive_read_failures,
        scale_in: seen.scale_in.as_ref().map(|scale_in| ScaleInStatus {
            reason: scale_in.reason.clone(),
            message: scale_in.message.clone(),
            chosen: scale_in.chosen.clone(),
            idle: scale_in.idle,
            busy: scale_in.busy,
            waiting_for: scale_in.waiting_for.clone(),
            drain_seconds: scale_in
                .drain_seconds
                .map(|seconds| format!("{seconds:.1}")),
            without_idle: seen.scale_in_counts.without_idle,
        }),
        conditions,
    }
}

/// The wall-clock time `age` before `now`, whole seconds. The same past instant seen again a
/// moment later keeps the time already written: the few milliseconds between the loop's
/// reading and this conversion must not turn into a status write.
fn steady_time(written: Option<&Time>, now: Timestamp, age: Duration) -> Time {
    let age = SignedDuration::try_from(age).unwrap_or(SignedDuration::MAX);
    let at = now.checked_sub(age).unwrap_or(Timestamp::UNIX_EPOCH);
    let at = Timestamp::from_second(at.as_second()).unwrap_or(at);
    match written {
        Some(Time(before)) if before.duration_until(at).abs() <= SignedDuration::from_secs(2) => {
            Time(*before)
        }
        _ => Time(at),
    }
}

/// The memory a status holds, as ages at `now`: what a new scaler continues from.
pub fn memory(status: &QueueScalerStatus, now: Timestamp) -> Memory {
    let age =
        |time: &Time| Duration::try_from(time.0.duration_until(now)).unwrap_or(Duration::ZERO);
    Memory {
        recommendations: status
            .recent_recommendations
            .iter()
            .map(|past| (age(&past.time), past.replicas))
            .collect(),
        queue_empty_for: status.queue_empty_since.as_ref().map(age),
        last_change: None,
    }
}

pub fn carry_over(
    previous: &[Condition],
    kind: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_owned();
    let since = previous
        .iter()
        .find(|condition| condition.type_ == kind && condition.status == status)
        .map(|condition| condition.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: kind.to_owned(),
        status,
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time: since,
    }
}

/// Items per replica as a Kubernetes quantity: whole numbers plain, the rest in milli-units
/// (rounded up, as the HPA rounds its averages).
pub fn quantity(value: f64) -> String {
    let milli = (value * 1000.0).ceil();
    if milli % 1000.0 == 0.0 {
        format!("{}", milli / 1000.0)
    } else {
        format!("{milli}m")
    }
}

/// Whether `next` differs from `last` in more than the counts and the failure count.
pub fn differs_beyond_counts(last: &QueueScalerStatus, next: &QueueScalerStatus) -> bool {
    let strip = |status: &QueueScalerStatus| QueueScalerStatus {
        waiting: None,
        in_flight: None,
        average_per_replica: None,
        consecutive_read_failures: 0,
        conditions: status
            .conditions
            .iter()
            .map(|condition| Condition {
                message: String::new(),
                ..condition.clone()
            })
            .collect(),
        ..status.clone()
    };
    strip(last) != strip(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebb_autoscaler::DecisionStatus;

    fn seen(replicas: u32, desired: u32, average: Option<f64>) -> Status {
        Status {
            waiting: 200,
            in_flight: Some(0),
            replicas,
            desired_replicas: desired,
            last_decision: Some(DecisionStatus {
                reason: "scale".into(),
                recommendation: desired,
                average_per_replica: average,
                at_seconds: 1.0,
            }),
            ..Status::default()
        }
    }

    fn facts(scaled_now: bool) -> Facts {
        Facts {
            generation: Some(1),
            scaled_now,
            conflict: None,
            scale_in_rule: (true, "DeletionCost", "chosen".to_owned()),
        }
    }

    #[test]
    fn quantities_are_plain_or_milli() {
        assert_eq!(quantity(20.0), "20");
        assert_eq!(quantity(0.5), "500m");
        assert_eq!(quantity(33.3334), "33334m");
    }

    #[test]
    fn at_zero_replicas_there_is_no_average() {
        let status = next_status(
            &QueueScalerStatus::default(),
            &seen(0, 10, None),
            facts(true),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(status.average_per_replica, None);
        let json = serde_json::to_string(&status).unwrap();
        assert!(!json.contains("averagePerReplica"), "{json}");
        assert!(!json.contains("-9223372036854775808"), "{json}");
    }

    #[test]
    fn transition_times_are_kept_while_a_condition_holds() {
        let first = next_status(
            &QueueScalerStatus::default(),
            &seen(1, 1, Some(20.0)),
            facts(false),
            Timestamp::UNIX_EPOCH,
        );
        let later = Timestamp::from_second(60).unwrap();
        let second = next_status(&first, &seen(1, 1, Some(20.0)), facts(false), later);
        assert_eq!(first.conditions, second.conditions);
        assert!(!differs_beyond_counts(&first, &second));
        let down = next_status(&second, &seen(0, 0, None), facts(true), later);
        let active = down
            .conditions
            .iter()
            .find(|c| c.type_ == condition::ACTIVE)
            .unwrap();
        assert_eq!(active.status, "False");
        assert_eq!(active.last_transition_time, Time(later));
        assert!(differs_beyond_counts(&second, &down));
    }
}
