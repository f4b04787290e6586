//! What the caller configures: bounds, the target, scale-to-zero rules and the behavior.
//! Validated once, when a [`crate::Scaler`] is built, so deciding never fails.

use std::time::Duration;

use crate::behavior::Behavior;
use crate::defaults::{
    DEFAULT_COOLDOWN, DEFAULT_MAX_REPLICAS, DEFAULT_MIN_REPLICAS, DEFAULT_TARGET_PER_REPLICA,
    HPA_TOLERANCE,
};
use crate::error::{Direction, Error, Result};

/// Tolerance on the ratio usage / target under which the count does not change
/// (upstream `Tolerances.isWithin`: `1 - down <= ratio <= 1 + up`, edges included).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub scale_up: f64,
    pub scale_down: f64,
}

impl Tolerance {
    /// The controller's default `--horizontal-pod-autoscaler-tolerance`: 10 % both ways.
    pub const HPA_DEFAULT: Tolerance = Tolerance::symmetric(HPA_TOLERANCE);

    pub const fn symmetric(fraction: f64) -> Self {
        Tolerance {
            scale_up: fraction,
            scale_down: fraction,
        }
    }

    pub(crate) fn contains(&self, usage_ratio: f64) -> bool {
        1.0 - self.scale_down <= usage_ratio && usage_ratio <= 1.0 + self.scale_up
    }

    fn validate(&self) -> Result<()> {
        for (direction, value) in [
            (Direction::ScaleUp, self.scale_up),
            (Direction::ScaleDown, self.scale_down),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(Error::InvalidTolerance { direction, value });
            }
        }
        Ok(())
    }
}

/// Everything that shapes decisions. Fields are public: start from a preset and override
/// with struct update syntax, e.g. `ScalerConfig { max_replicas: 50, ..ScalerConfig::ebb_default() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalerConfig {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// AverageValue target: items waiting per replica (HPA `target.averageValue`).
    pub target_per_replica: f64,
    /// Drain-time mode: choose the smallest count that empties the backlog within this
    /// time, from the measured rates; the AverageValue rule applies until rates are known.
    pub drain_time: Option<Duration>,
    pub tolerance: Tolerance,
    /// From 0 replicas, scale up only when more than this many items wait.
    pub activation_threshold: u64,
    /// Scale to 0 only after the queue (waiting + in flight) stayed empty this long.
    pub cooldown: Duration,
    pub behavior: Behavior,
    /// Upstream (1.37, `shouldComputeMetricsForZeroReplicas`) leaves a target at 0 replicas
    /// alone, "scaling disabled", unless the HPA took it there itself (its `ScaledToZero`
    /// condition, see [`crate::Scaler::with_scaled_to_zero`]); scaling from 0 then brings it
    /// to at least min. When false, a target at 0 is scaled like any other and brought up to
    /// min.
    pub paused_at_zero: bool,
}

impl ScalerConfig {
    /// The dojo's HPA under upstream defaults: min 0, max 20, 20 items per replica, 10 %
    /// tolerance, the autoscaling/v2 default behavior, no activation threshold or cooldown.
    pub fn hpa_default() -> Self {
        ScalerConfig {
            min_replicas: DEFAULT_MIN_REPLICAS,
            max_replicas: DEFAULT_MAX_REPLICAS,
            target_per_replica: DEFAULT_TARGET_PER_REPLICA,
            drain_time: None,
            tolerance: Tolerance::HPA_DEFAULT,
            activation_threshold: 0,
            cooldown: Duration::ZERO,
            behavior: Behavior::hpa_default(),
            paused_at_zero: true,
        }
    }

    /// ebb's defaults: the dojo's bounds and target, scale-up without rate limit, a 20 s
    /// scale-down window and a 20 s cooldown before scaling to 0.
    pub fn ebb_default() -> Self {
        ScalerConfig {
            cooldown: DEFAULT_COOLDOWN,
            behavior: Behavior::ebb_default(),
            paused_at_zero: false,
            ..ScalerConfig::hpa_default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.max_replicas == 0 {
            return Err(Error::MaxIsZero);
        }
        if self.min_replicas > self.max_replicas {
            return Err(Error::MinAboveMax {
                min: self.min_replicas,
                max: self.max_replicas,
            });
        }
        if !(self.target_per_replica.is_finite() && self.target_per_replica > 0.0)
            || self.target_milli() == 0
        {
            return Err(Error::InvalidTarget(self.target_per_replica));
        }
        if let Some(drain_time) = self.drain_time
            && drain_time < Duration::from_secs(1)
        {
            return Err(Error::DrainTimeTooShort(drain_time));
        }
        self.tolerance.validate()?;
        self.behavior.validate()
    }

    /// The target as a Kubernetes milli-quantity, the unit upstream computes in.
    pub(crate) fn target_milli(&self) -> i64 {
        (self.target_per_replica * 1000.0).round() as i64
    }
}

impl Default for ScalerConfig {
    fn default() -> Self {
        ScalerConfig::ebb_default()
    }
}
