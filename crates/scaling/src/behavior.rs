//! The autoscaling/v2 `behavior` block: how fast replicas may change, and how long past
//! recommendations hold the count steady. Plain data plus validation; the arithmetic that
//! uses it lives in [`crate::normalize`].

use std::time::Duration;

use crate::error::{Direction, Error, Result};

/// autoscaling/v2 `HPAScalingPolicy.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Change by at most `value` pods per period.
    Pods,
    /// Change by at most `value` percent of the count at the start of the period.
    Percent,
}

/// autoscaling/v2 `HPAScalingPolicy`: at most `value` (pods or percent) per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalingPolicy {
    pub kind: PolicyKind,
    pub value: u32,
    pub period: Duration,
}

impl ScalingPolicy {
    pub const fn pods(value: u32, period_seconds: u64) -> Self {
        ScalingPolicy {
            kind: PolicyKind::Pods,
            value,
            period: Duration::from_secs(period_seconds),
        }
    }

    pub const fn percent(value: u32, period_seconds: u64) -> Self {
        ScalingPolicy {
            kind: PolicyKind::Percent,
            value,
            period: Duration::from_secs(period_seconds),
        }
    }
}

/// autoscaling/v2 `selectPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SelectPolicy {
    /// The policy allowing the biggest change wins (upstream default).
    #[default]
    Max,
    /// The policy allowing the smallest change wins.
    Min,
    /// No change in this direction at all.
    Disabled,
}

/// autoscaling/v2 `HPAScalingRules` for one direction.
///
/// An empty `policies` list means "no rate limit": upstream rejects empty lists, so this
/// extension cannot be confused with an upstream configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingRules {
    pub stabilization_window: Duration,
    pub select_policy: SelectPolicy,
    pub policies: Vec<ScalingPolicy>,
}

impl ScalingRules {
    /// Upstream default scale-up: max of 4 pods and 100 % per 15 s, no window.
    pub fn hpa_scale_up() -> Self {
        ScalingRules {
            stabilization_window: Duration::ZERO,
            select_policy: SelectPolicy::Max,
            policies: vec![ScalingPolicy::pods(4, 15), ScalingPolicy::percent(100, 15)],
        }
    }

    /// Upstream default scale-down: 100 % per 15 s, 300 s window. API defaulting leaves the
    /// window unset and the controller fills in its `--horizontal-pod-autoscaler-downscale-stabilization`
    /// (`maybeInitScaleDownStabilizationWindow`): 300 s by default, 20 s in the dojo's cluster.
    pub fn hpa_scale_down() -> Self {
        ScalingRules {
            stabilization_window: Duration::from_secs(300),
            select_policy: SelectPolicy::Max,
            policies: vec![ScalingPolicy::percent(100, 15)],
        }
    }

    /// Any change at once, after `stabilization_window`.
    pub fn unlimited(stabilization_window: Duration) -> Self {
        ScalingRules {
            stabilization_window,
            select_policy: SelectPolicy::Max,
            policies: Vec::new(),
        }
    }

    /// The longest policy period: older scale events can no longer limit anything.
    pub(crate) fn longest_period(&self) -> Duration {
        self.policies
            .iter()
            .map(|policy| policy.period)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    pub(crate) fn validate(&self, direction: Direction) -> Result<()> {
        let window_secs = self.stabilization_window.as_secs();
        if self.stabilization_window > Duration::from_secs(3600) {
            return Err(Error::WindowTooLong {
                direction,
                secs: window_secs,
            });
        }
        for (index, policy) in self.policies.iter().enumerate() {
            if policy.value == 0 {
                return Err(Error::PolicyValueZero { direction, index });
            }
            if policy.period < Duration::from_secs(1) || policy.period > Duration::from_secs(1800) {
                return Err(Error::PolicyPeriodOutOfRange {
                    direction,
                    index,
                    secs: policy.period.as_secs(),
                });
            }
        }
        Ok(())
    }
}

/// How the recommendation is turned into a replica count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// An HPA without `spec.behavior`, as in the dojo: the controller keeps the highest
    /// recommendation of the last `downscale_stabilization` (its
    /// `--horizontal-pod-autoscaler-downscale-stabilization` flag) and grows by at most
    /// max(2 × current, 4) per sync.
    Unset { downscale_stabilization: Duration },
    /// An HPA with `spec.behavior`, or ebb's own rules.
    Rules {
        scale_up: ScalingRules,
        scale_down: ScalingRules,
    },
}

impl Behavior {
    /// The upstream HPA defaults (autoscaling/v2 defaulting of an empty `behavior`).
    pub fn hpa_default() -> Self {
        Behavior::Rules {
            scale_up: ScalingRules::hpa_scale_up(),
            scale_down: ScalingRules::hpa_scale_down(),
        }
    }

    /// ebb's default: scale up at once (a backlog is an exact signal, not a noisy one),
    /// scale down as the HPA does but after a 20 s window instead of 300 s.
    pub fn ebb_default() -> Self {
        Behavior::ebb(crate::defaults::DEFAULT_SCALE_DOWN_STABILIZATION)
    }

    /// ebb's rules with another scale-down stabilization window.
    pub fn ebb(scale_down_window: Duration) -> Self {
        Behavior::Rules {
            scale_up: ScalingRules::unlimited(Duration::ZERO),
            scale_down: ScalingRules {
                stabilization_window: scale_down_window,
                ..ScalingRules::hpa_scale_down()
            },
        }
    }

    /// The dojo's HPA: no `behavior`, controller flag `downscale-stabilization: 20s`.
    pub fn dojo() -> Self {
        Behavior::Unset {
            downscale_stabilization: Duration::from_secs(20),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self {
            Behavior::Unset {
                downscale_stabilization,
            } => {
                if *downscale_stabilization > Duration::from_secs(3600) {
                    return Err(Error::WindowTooLong {
                        direction: Direction::ScaleDown,
                        secs: downscale_stabilization.as_secs(),
                    });
                }
                Ok(())
            }
            Behavior::Rules {
                scale_up,
                scale_down,
            } => {
                scale_up.validate(Direction::ScaleUp)?;
                scale_down.validate(Direction::ScaleDown)
            }
        }
    }
}
