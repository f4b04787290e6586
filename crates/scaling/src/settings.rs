//! The settings that build a scaler, as a person gives them: `ebb up` and `ebb simulate`
//! take them as flags (the clap struct behind the `cli` feature), a Kubernetes operator as
//! a custom resource's fields with the same defaults. One set of defaults, one validation,
//! one way to turn them into a [`ScalerConfig`].
//!
//! The defaults are the dojo's HPA (min 0, max 20, 20 items waiting per replica, 10 %
//! tolerance) with ebb's scale-to-zero rules and windows short enough to watch (20 s
//! cooldown, 20 s scale-down stabilization), read every 250 ms.

use std::time::Duration;

use crate::behavior::Behavior;
use crate::config::{ScalerConfig, Tolerance};
use crate::error::{Direction, Error, Result};

pub use crate::defaults::*;
pub use crate::setting::Setting;

/// What a person sets to build a scaler. [`ScalerSettings::scaler_config`] validates it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalerSettings {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub target_per_replica: f64,
    pub activation_threshold: u64,
    pub cooldown: Duration,
    pub scale_down_stabilization: Duration,
    /// Symmetric: the same fraction for scaling up and down.
    pub tolerance: f64,
    pub drain_time: Option<Duration>,
    /// Not part of a decision: how often the caller reads the queue and decides.
    pub interval: Duration,
}

impl Default for ScalerSettings {
    fn default() -> Self {
        ScalerSettings {
            min_replicas: DEFAULT_MIN_REPLICAS,
            max_replicas: DEFAULT_MAX_REPLICAS,
            target_per_replica: DEFAULT_TARGET_PER_REPLICA,
            activation_threshold: DEFAULT_ACTIVATION_THRESHOLD,
            cooldown: DEFAULT_COOLDOWN,
            scale_down_stabilization: DEFAULT_SCALE_DOWN_STABILIZATION,
            tolerance: DEFAULT_TOLERANCE,
            drain_time: DEFAULT_DRAIN_TIME,
            interval: DEFAULT_INTERVAL,
        }
    }
}

impl ScalerSettings {
    /// The scaler configuration these settings describe (ebb's rules: scale up at once,
    /// scale down after the stabilization window), or the first thing wrong with them, in
    /// one line naming the setting.
    pub fn scaler_config(&self) -> Result<ScalerConfig> {
        if self.interval.is_zero() {
            return Err(Error::Setting {
                setting: Setting::Interval,
                problem: Box::new(Error::ZeroInterval),
            });
        }
        let config = ScalerConfig {
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            target_per_replica: self.target_per_replica,
            drain_time: self.drain_time,
            tolerance: Tolerance::symmetric(self.tolerance),
            activation_threshold: self.activation_threshold,
            cooldown: self.cooldown,
            behavior: Behavior::ebb(self.scale_down_stabilization),
            ..ScalerConfig::ebb_default()
        };
        config
            .validate()
            .map_err(|problem| match setting_at_fault(&problem) {
                Some(setting) => Error::Setting {
                    setting,
                    problem: Box::new(problem),
                },
                None => problem,
            })?;
        Ok(config)
    }
}

/// The setting a configuration error is about, when a setting can cause it (a
/// behavior policy or measured rates are not settings).
fn setting_at_fault(error: &Error) -> Option<Setting> {
    Some(match error {
        Error::MaxIsZero => Setting::MaxReplicas,
        Error::MinAboveMax { .. } => Setting::MinReplicas,
        Error::InvalidTarget(_) => Setting::TargetPerReplica,
        Error::InvalidTolerance { .. } => Setting::Tolerance,
        Error::DrainTimeTooShort(_) => Setting::DrainTime,
        Error::WindowTooLong {
            direction: Direction::ScaleDown,
            ..
        } => Setting::ScaleDownStabilization,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_ebbs_default_configuration() {
        let config = ScalerSettings::default().scaler_config().unwrap();
        assert_eq!(config, ScalerConfig::ebb_default());
        // The dojo's numbers.
        assert_eq!(
            (
                config.min_replicas,
                config.max_replicas,
                config.target_per_replica
            ),
            (0, 20, 20.0)
        );
    }

    /// Each row: what is changed from the defaults, and the one-line error.
    #[test]
    fn each_bad_setting_is_one_line_naming_its_flag() {
        type Row = (fn(&mut ScalerSettings), &'static str);
        let rows: [Row; 9] = [
            (
                |s| (s.min_replicas, s.max_replicas) = (5, 3),
                "--min-replicas: min replicas (5) is above max replicas (3)",
            ),
            (
                |s| s.max_replicas = 0,
                "--max-replicas: max replicas must be at least 1, got 0",
            ),
            (
                |s| s.target_per_replica = 0.0,
                "--target-per-replica: target per replica must be a finite number above 0, got 0",
            ),
            (
                |s| s.target_per_replica = f64::NAN,
                "--target-per-replica: target per replica must be a finite number above 0, got NaN",
            ),
            (
                |s| s.tolerance = 1.5,
                "--tolerance: scale-up tolerance must be a finite number between 0 and 1, got 1.5",
            ),
            (
                |s| s.tolerance = -0.1,
                "--tolerance: scale-up tolerance must be a finite number between 0 and 1, got -0.1",
            ),
            (
                |s| s.drain_time = Some(Duration::from_millis(500)),
                "--drain-time: drain-time target must be at least 1 s, got 500ms",
            ),
            (
                |s| s.scale_down_stabilization = Duration::from_secs(3601),
                "--scale-down-stabilization: scale-down stabilization window must be at most 3600 s (autoscaling/v2 limit), got 3601 s",
            ),
            (
                |s| s.interval = Duration::ZERO,
                "--interval: interval must be above 0",
            ),
        ];
        for (change, message) in rows {
            let mut settings = ScalerSettings::default();
            change(&mut settings);
            let error = settings.scaler_config().unwrap_err();
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn flags_and_fields_name_the_same_setting() {
        for setting in Setting::ALL {
            let flag = setting.flag().trim_start_matches("--").replace('-', "");
            assert_eq!(flag, setting.field().to_lowercase(), "{setting:?}");
        }
    }
}
