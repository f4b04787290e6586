//! From recommendation to replica count, as the upstream controller does it: stabilization
//! windows first, then bounds and rate-limit policies (upstream `normalizeDesiredReplicas`
//! and `normalizeDesiredReplicasWithBehaviors`).

use std::time::Duration;

use crate::behavior::{PolicyKind, ScalingRules, SelectPolicy};
use crate::state::{ScalerState, Stamped};
use crate::time::{Instant, strictly_within, within_inclusive};

/// The count after normalization, with one note per step that changed it.
pub(crate) struct Normalized {
    pub replicas: u32,
    pub notes: Vec<String>,
}

/// The replica bounds and the count the target has now.
#[derive(Clone, Copy)]
pub(crate) struct Frame {
    pub min: u32,
    pub max: u32,
    pub current: u32,
}

/// No `spec.behavior`: highest recommendation of the window, then
/// [min, min(max, max(2 × current, 4))].
pub(crate) fn without_behavior(
    state: &mut ScalerState,
    window: Duration,
    frame: Frame,
    recommended: u32,
    now: Instant,
) -> Normalized {
    // Upstream keeps a sample exactly at the window's edge here (`!Before(cutoff)`).
    state
        .recommendations
        .retain(|r| within_inclusive(r.at, now, window));
    let stabilized = state
        .recommendations
        .iter()
        .map(|r| r.replicas)
        .fold(recommended, u32::max);
    state.recommendations.push(Stamped {
        at: now,
        replicas: recommended,
    });

    let mut notes = Vec::new();
    if stabilized != recommended {
        notes.push(format!(
            "scale-down stabilized at {stabilized}, the highest recommendation of the last {} s",
            window.as_secs()
        ));
    }
    let scale_up_limit = u64::from(frame.current).saturating_mul(2).max(4);
    let (max_allowed, cap) = if u64::from(frame.max) > scale_up_limit {
        (
            scale_up_limit as u32,
            format!(
                "scale-up limited to max(2 × {}, 4) = {scale_up_limit} per sync",
                frame.current
            ),
        )
    } else {
        (frame.max, format!("capped at max replicas {}", frame.max))
    };
    let replicas = if stabilized < frame.min {
        notes.push(format!("raised to min replicas {}", frame.min));
        frame.min
    } else if stabilized > max_allowed {
        notes.push(cap);
        max_allowed
    } else {
        stabilized
    };
    Normalized { replicas, notes }
}

/// With `spec.behavior`: clamp between the lowest recommendation of the scale-up window
/// and the highest of the scale-down window, then apply the direction's policies.
pub(crate) fn with_rules(
    state: &mut ScalerState,
    (scale_up, scale_down): (&ScalingRules, &ScalingRules),
    frame: Frame,
    recommended: u32,
    now: Instant,
) -> Normalized {
    let up_window = scale_up.stabilization_window;
    let down_window = scale_down.stabilization_window;
    let (mut up_floor, mut down_ceiling) = (recommended, recommended);
    for past in &state.recommendations {
        if strictly_within(past.at, now, up_window) {
            up_floor = up_floor.min(past.replicas);
        }
        if strictly_within(past.at, now, down_window) {
            down_ceiling = down_ceiling.max(past.replicas);
        }
    }
    let longest_window = up_window.max(down_window);
    state
        .recommendations
        .retain(|r| within_inclusive(r.at, now, longest_window));
    state.recommendations.push(Stamped {
        at: now,
        replicas: recommended,
    });

    let stabilized = frame.current.max(up_floor).min(down_ceiling);
    let mut notes = Vec::new();
    if stabilized != recommended {
        notes.push(if recommended >= frame.current {
            format!(
                "scale-up stabilized at {stabilized}, the lowest recommendation of the last {} s",
                up_window.as_secs()
            )
        } else {
            format!(
                "scale-down stabilized at {stabilized}, the highest recommendation of the last {} s",
                down_window.as_secs()
            )
        });
    }

    let current = i64::from(frame.current);
    let replicas = if stabilized > frame.current {
        let limit = scale_up_limit(state, scale_up, current, now).max(current);
        let (max_allowed, why) = if i64::from(frame.max) > limit {
            (limit, "scale-up policies allow at most")
        } else {
            (i64::from(frame.max), "capped at max replicas")
        };
        if i64::from(stabilized) > max_allowed {
            notes.push(format!("{why} {max_allowed}"));
            max_allowed as u32
        } else {
            stabilized
        }
    } else if stabilized < frame.current {
        let limit = scale_down_limit(state, scale_down, current, now).min(current);
        let (min_allowed, why) = if i64::from(frame.min) < limit {
            (limit, "scale-down policies allow at least")
        } else {
            (i64::from(frame.min), "raised to min replicas")
        };
        if i64::from(stabilized) < min_allowed {
            notes.push(format!("{why} {min_allowed}"));
            min_allowed as u32
        } else {
            stabilized
        }
    } else {
        stabilized
    };
    Normalized { replicas, notes }
}

/// Upstream `calculateScaleUpLimitWithScalingRules`; no policies means no limit.
fn scale_up_limit(state: &ScalerState, rules: &ScalingRules, current: i64, now: Instant) -> i64 {
    let (mut result, pick): (i64, fn(i64, i64) -> i64) = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i64::MAX, i64::min),
        SelectPolicy::Max => (i64::MIN, i64::max),
    };
    if rules.policies.is_empty() {
        return i64::MAX;
    }
    for policy in &rules.policies {
        let start = replicas_at_period_start(state, current, policy.period, now);
        let proposed = match policy.kind {
            PolicyKind::Pods => start + i64::from(policy.value),
            // Rounded up, or a small count could never grow.
            PolicyKind::Percent => {
                (start as f64 * (1.0 + f64::from(policy.value) / 100.0)).ceil() as i64
            }
        };
        result = pick(result, proposed);
    }
    result
}

/// Upstream `calculateScaleDownLimitWithBehaviors`; no policies means no limit.
fn scale_down_limit(state: &ScalerState, rules: &ScalingRules, current: i64, now: Instant) -> i64 {
    let (mut result, pick): (i64, fn(i64, i64) -> i64) = match rules.select_policy {
        SelectPolicy::Disabled => return current,
        SelectPolicy::Min => (i64::MIN, i64::max),
        SelectPolicy::Max => (i64::MAX, i64::min),
    };
    if rules.policies.is_empty() {
        return i64::MIN;
    }
    for policy in &rules.policies {
        let start = replicas_at_period_start(state, current, policy.period, now);
        let proposed = match policy.kind {
            PolicyKind::Pods => start - i64::from(policy.value),
            // Go's int32(float64) truncates toward zero.
            PolicyKind::Percent => {
                (start as f64 * (1.0 - f64::from(policy.value) / 100.0)).trunc() as i64
            }
        };
        result = pick(result, proposed);
    }
    result
}

/// The count at the start of the policy's period: current minus what was added plus what
/// was removed since then (upstream `getReplicasChangePerPeriod`, both directions).
fn replicas_at_period_start(
    state: &ScalerState,
    current: i64,
    period: Duration,
    now: Instant,
) -> i64 {
    let changed = |events: &[Stamped]| -> i64 {
        events
            .iter()
            .filter(|event| strictly_within(event.at, now, period))
            .map(|event| i64::from(event.replicas))
            .sum()
    };
    current - changed(&state.scale_ups) + changed(&state.scale_downs)
}

/// Remembers a change for the rate-limit policies; forgets what no policy can see anymore.
pub(crate) fn record_scale_event(
    state: &mut ScalerState,
    (scale_up, scale_down): (&ScalingRules, &ScalingRules),
    from: u32,
    to: u32,
    now: Instant,
) {
    let memory = scale_up.longest_period().max(scale_down.longest_period());
    for events in [&mut state.scale_ups, &mut state.scale_downs] {
        events.retain(|event| strictly_within(event.at, now, memory));
    }
    let (events, replicas) = if to > from {
        (&mut state.scale_ups, to - from)
    } else {
        (&mut state.scale_downs, from - to)
    };
    events.push(Stamped { at: now, replicas });
}
