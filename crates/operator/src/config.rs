//! From a QueueScaler's spec to ebb-scaling's `ScalerConfig`: the shared settings `ebb up`
//! builds its scaler from, then the autoscaling/v2 `behavior` block mapped field by field.

use std::time::Duration;

use ebb_scaling::settings::ScalerSettings;
use ebb_scaling::{
    Behavior, PolicyKind, ScalerConfig, ScalingPolicy, ScalingRules, SelectPolicy, Tolerance,
};
use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::crd::QueueScalerSpec;
use crate::{Error, Result};

/// The scaler configuration a spec describes, validated by ebb-scaling. The API server's
/// schema and CEL rules already refuse what they can; this catches the rest (a policy
/// period above 30 minutes, an unparsable tolerance).
pub fn scaler_config(spec: &QueueScalerSpec) -> Result<ScalerConfig> {
    let shared = ScalerSettings {
        min_replicas: spec.min_replicas,
        max_replicas: spec.max_replicas,
        target_per_replica: spec.target_per_replica as f64,
        activation_threshold: spec.activation_threshold,
        cooldown: Duration::from_secs(spec.cooldown_seconds.into()),
        drain_time: spec
            .drain_time_seconds
            .map(|seconds| Duration::from_secs(seconds.into())),
        interval: Duration::from_secs(spec.polling_interval_seconds.into()),
        ..ScalerSettings::default()
    };
    let mut config = shared.scaler_config().map_err(Error::InvalidSpec)?;
    if let Some(behavior) = &spec.behavior {
        (config.behavior, config.tolerance) = behavior_rules(behavior, &config)?;
        config.validate().map_err(Error::InvalidSpec)?;
    }
    Ok(config)
}

fn behavior_rules(
    behavior: &HorizontalPodAutoscalerBehavior,
    defaults: &ScalerConfig,
) -> Result<(Behavior, Tolerance)> {
    let Behavior::Rules {
        scale_up: default_up,
        scale_down: default_down,
    } = &defaults.behavior
    else {
        unreachable!("ebb's default behavior has rules in both directions")
    };
    let scale_up = rules(
        behavior.scale_up.as_ref(),
        default_up,
        "spec.behavior.scaleUp",
    )?;
    let scale_down = rules(
        behavior.scale_down.as_ref(),
        default_down,
        "spec.behavior.scaleDown",
    )?;
    let tolerance = Tolerance {
        scale_up: tolerance(
            behavior.scale_up.as_ref(),
            defaults.tolerance.scale_up,
            "spec.behavior.scaleUp.tolerance",
        )?,
        scale_down: tolerance(
            behavior.scale_down.as_ref(),
            defaults.tolerance.scale_down,
            "spec.behavior.scaleDown.tolerance",
        )?,
    };
    Ok((
        Behavior::Rules {
            scale_up,
            scale_down,
        },
        tolerance,
    ))
}

fn rules(
    given: Option<&HPAScalingRules>,
    default: &ScalingRules,
    field: &'static str,
) -> Result<ScalingRules> {
    let Some(given) = given else {
        return Ok(default.clone());
    };
    let stabilization_window = match given.stabilization_window_seconds {
        None => default.stabilization_window,
        Some(seconds) => {
            Duration::from_secs(u64::try_from(seconds).map_err(|_| Error::InvalidField {
                field,
                reason: format!("stabilizationWindowSeconds {seconds} is negative"),
            })?)
        }
    };
    let select_policy = match given.select_policy.as_deref() {
        None => default.select_policy,
        Some("Max") => SelectPolicy::Max,
        Some("Min") => SelectPolicy::Min,
        Some("Disabled") => SelectPolicy::Disabled,
        Some(other) => {
            return Err(Error::InvalidField {
                field,
                reason: format!("selectPolicy {other:?} is not Max, Min or Disabled"),
            });
        }
    };
    let policies = match &given.policies {
        None => default.policies.clone(),
        Some(policies) => policies
            .iter()
            .map(|policy| {
                let kind = match policy.type_.as_str() {
                    "Pods" => PolicyKind::Pods,
                    "Percent" => PolicyKind::Percent,
                    other => {
                        return Err(Error::InvalidField {
                            field,
                            reason: format!("policy type {other:?} is not Pods or Percent"),
                        });
                    }
                };
                let number = |value: i32, what: &str| {
                    u32::try_from(value).map_err(|_| Error::InvalidField {
                        field,
                        reason: format!("policy {what} {value} is negative"),
                    })
                };
                Ok(ScalingPolicy {
                    kind,
                    value: number(policy.value, "value")?,
                    period: Duration::from_secs(
                        number(policy.period_seconds, "periodSeconds")?.into(),
                    ),
                })
            })
            .collect::<Result<_>>()?,
    };
    Ok(ScalingRules {
        stabilization_window,
        select_policy,
        policies,
    })
}

fn tolerance(given: Option<&HPAScalingRules>, default: f64, field: &'static str) -> Result<f64> {
    match given.and_then(|rules| rules.tolerance.as_ref()) {
        None => Ok(default),
        Some(Quantity(text)) => parse_fraction(text).ok_or_else(|| Error::InvalidField {
            field,
            reason: format!("{text:?} is not a quantity between 0 and 1 (e.g. 0.1 or 100m)"),
        }),
    }
}

/// A tolerance quantity: a decimal (`0.1`) or milli-units (`100m`).
fn parse_fraction(text: &str) -> Option<f64> {
    let value = match text.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok()? / 1000.0,
        None => text.parse::<f64>().ok()?,
    };
    (value.is_finite() && (0.0..=1.0).contains(&value)).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_parse_as_decimals_or_milli_units() {
        assert_eq!(parse_fraction("0.1"), Some(0.1));
        assert_eq!(parse_fraction("50m"), Some(0.05));
        assert_eq!(parse_fraction("1"), Some(1.0));
        assert_eq!(parse_fraction("2"), None);
        assert_eq!(parse_fraction("x"), None);
        assert_eq!(parse_fraction("-0.1"), None);
    }
}
