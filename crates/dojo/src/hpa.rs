//! What a right HPA for the dojo looks like (docs/dojo/08-hpa.md), checked on the object as the
//! API server returns it at `autoscaling/v2`. Pure: the tests feed it JSON.

use serde_json::Value;

use crate::report::Report;

/// What the controller of 1.37 says about an Object metric whose target it cannot use
/// (`pkg/controller/podautoscaler/horizontal.go:627` at v1.37.2).
pub const NEITHER_TARGET: &str =
    "invalid object metric source: neither a value target nor an average value target was set";

/// The dojo's numbers.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub deployment: &'a str,
    pub service: &'a str,
    pub metric: &'a str,
    pub key: &'a str,
    pub max_replicas: i64,
    pub average_per_replica: f64,
}

impl Default for Expected<'_> {
    fn default() -> Self {
        Self {
            deployment: "consumer",
            service: "prometheus-redis-exporter",
            metric: "redis_items_in_queue",
            key: "padok",
            max_replicas: 20,
            average_per_replica: 20.0,
        }
    }
}

/// A Kubernetes quantity as a number ("20", "20000m", "1k"); `None` when it is not one.
pub fn quantity(value: &Value) -> Option<f64> {
    if let Some(number) = value.as_f64() {
        return Some(number);
    }
    let text = value.as_str()?;
    let (digits, scale) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        None => (text, 1.0),
        Some((at, _)) => {
            let scale = match &text[at..] {
                "m" => 1e-3,
                "k" => 1e3,
                "M" => 1e6,
                "G" => 1e9,
                "Ki" => 1024.0,
                "Mi" => 1024.0 * 1024.0,
                _ => return None,
            };
            (&text[..at], scale)
        }
    };
    digits.parse::<f64>().ok().map(|n| n * scale)
}

/// Checks the HPA's spec against the dojo's: target, bounds (`min_allowed` lists the minimums
/// this step accepts), and the one Object metric with its target.
pub fn check_spec(hpa: &Value, expected: &Expected<'_>, min_allowed: &[i64], report: &mut Report) {
    let spec = &hpa["spec"];
    let target = &spec["scaleTargetRef"];
    report.expect(
        target["kind"] == "Deployment" && target["name"] == expected.deployment,
        format!("it scales the Deployment {}", expected.deployment),
        format!(
            "scaleTargetRef is {} {}: it should be the Deployment {}",
            target["kind"].as_str().unwrap_or("?"),
            target["name"].as_str().unwrap_or("?"),
            expected.deployment
        ),
    );
    // An absent minReplicas defaults to 1.
    let min = spec["minReplicas"].as_i64().unwrap_or(1);
    let max = spec["maxReplicas"].as_i64().unwrap_or(-1);
    let allowed = min_allowed
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    report.expect(
        min_allowed.contains(&min),
        format!("minReplicas {min}"),
        format!("minReplicas is {min}: this step wants {allowed}"),
    );
    report.expect(
        max == expected.max_replicas,
        format!("maxReplicas {max}"),
        format!(
            "maxReplicas is {max}: the dojo wants {}",
            expected.max_replicas
        ),
    );

    let metrics = spec["metrics"].as_array().cloned().unwrap_or_default();
    let Some(object) = metrics.iter().find(|m| m["type"] == "Object") else {
        report.wrong(format!(
            "no metric of type Object (metrics: {}): the queue length is a metric of the Service {}",
            Value::Array(metrics.clone()),
            expected.service
        ));
        report.hint("hint 2 of docs/dojo/08-hpa.md: the adapter attached the series to the Service named by its `service` label");
        return;
    };
    let object = &object["object"];
    let described = &object["describedObject"];
    report.expect(
        described["kind"] == "Service" && described["name"] == expected.service,
        format!("the metric describes the Service {}", expected.service),
        format!(
            "describedObject is {} {}: the series' labels attach it to the Service {}",
            described["kind"].as_str().unwrap_or("?"),
            described["name"].as_str().unwrap_or("?"),
            expected.service
        ),
    );
    report.expect(
        object["metric"]["name"] == expected.metric,
        format!("metric {}", expected.metric),
        format!(
            "the metric is {:?}: use the recorded series {}",
            object["metric"]["name"].as_str().unwrap_or(""),
            expected.metric
        ),
    );
    let key = &object["metric"]["selector"]["matchLabels"]["key"];
    report.expect(
        key == expected.key,
        format!("selector key={}", expected.key),
        format!(
            "metric.selector.matchLabels.key is {key}: select the queue with key={}",
            expected.key
        ),
    );
    check_target(&object["target"], expected, report);
}

fn check_target(target: &Value, expected: &Expected<'_>, report: &mut Report) {
    let kind = target["type"].as_str().unwrap_or("");
    let average = quantity(&target["averageValue"]);
    match (kind, average) {
        ("AverageValue", Some(average)) if average == expected.average_per_replica => {
            report.right(format!("target AverageValue {average}"));
        }
        ("AverageValue", Some(average)) => report.wrong(format!(
            "target averageValue is {average}: the dojo wants {} items per replica",
            expected.average_per_replica
        )),
        ("Value", Some(_)) if target["value"].is_null() => {
            report.wrong(format!(
                "target.type is Value with an averageValue: the API accepts it, but the 1.37 controller refuses it at run time (ScalingActive=False, FailedGetObjectMetric: {NEITHER_TARGET})"
            ));
            report.hint("write `type: AverageValue`: the controller reads averageValue only with that type (docs/dojo/08-hpa.md, the trap in the seed's own solution)");
        }
        ("Value", _) => {
            report.wrong(
                "target.type is Value: the HPA would keep the total queue length at that value, whatever the number of consumers; the dojo wants an average per replica",
            );
            report.hint("hint 3 of docs/dojo/08-hpa.md: `target: {type: AverageValue, averageValue: \"20\"}`");
        }
        _ => report.wrong(format!(
            "target is {target}: the dojo wants {{type: AverageValue, averageValue: \"{}\"}}",
            expected.average_per_replica
        )),
    }
}

/// Reads the controller's conditions: `ScalingActive=False` is wrong unless the reason is
/// that the target is at zero (`ScalingDisabled`), which `allow_disabled` accepts.
pub fn check_conditions(hpa: &Value, allow_disabled: bool, report: &mut Report) {
    let conditions = hpa["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let Some(active) = conditions.iter().find(|c| c["type"] == "ScalingActive") else {
        report.note("the controller has not reported on the HPA yet (no ScalingActive condition): check again in a few seconds");
        return;
    };
    let reason = active["reason"].as_str().unwrap_or("");
    let message = active["message"].as_str().unwrap_or("");
    if active["status"] == "True" {
        report.right(format!(
            "the controller computes replicas: ScalingActive=True ({reason})"
        ));
    } else if reason == "ScalingDisabled" && allow_disabled {
        report.note(format!("ScalingActive=False ({reason}): {message}"));
    } else {
        report.wrong(format!(
            "the controller says ScalingActive=False, {reason}: {message}"
        ));
        if message.contains(NEITHER_TARGET) {
            report.hint(
                "write `type: AverageValue`: the controller reads averageValue only with that type",
            );
        } else if reason == "FailedGetObjectMetric" {
            report.hint("the metric does not reach the controller: `ebb dojo check adapter` first");
        } else {
            report.hint("`kubectl describe hpa consumer` shows the controller's events");
        }
    }
}

/// The HPA's condition `ScaledToZero` (1.37, `horizontal.go:1039-1046`): `Some(true)` when
/// the HPA itself took the target to 0.
pub fn scaled_to_zero(hpa: &Value) -> Option<bool> {
    hpa["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "ScaledToZero")
        .map(|c| c["status"] == "True")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hpa(target: Value, min: i64) -> Value {
        json!({
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "consumer"},
                "minReplicas": min,
                "maxReplicas": 20,
                "metrics": [{
                    "type": "Object",
                    "object": {
                        "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "prometheus-redis-exporter"},
                        "metric": {"name": "redis_items_in_queue", "selector": {"matchLabels": {"key": "padok"}}},
                        "target": target,
                    },
                }],
            },
        })
    }

    fn spec_report(hpa: &Value, min_allowed: &[i64]) -> Report {
        let mut report = Report::new("hpa");
        check_spec(hpa, &Expected::default(), min_allowed, &mut report);
        report
    }

    #[test]
    fn the_charts_hpa_is_right() {
        let report = spec_report(
            &hpa(json!({"type": "AverageValue", "averageValue": "20"}), 1),
            &[0, 1],
        );
        assert!(report.done(), "{report}");
    }

    #[test]
    fn the_seeds_value_type_with_an_average_value_is_recognised_and_explained() {
        let report = spec_report(
            &hpa(json!({"type": "Value", "averageValue": "20"}), 1),
            &[0, 1],
        );
        assert!(!report.done());
        let wrong: Vec<_> = report.wrong_texts().collect();
        assert_eq!(wrong.len(), 1, "{report}");
        assert!(
            wrong[0].contains("target.type is Value with an averageValue"),
            "{report}"
        );
        assert!(wrong[0].contains(NEITHER_TARGET), "{report}");
        assert!(
            report
                .hint
                .as_deref()
                .unwrap()
                .contains("type: AverageValue"),
            "{report}"
        );
    }

    #[test]
    fn a_value_target_with_a_value_is_a_different_mistake() {
        let report = spec_report(&hpa(json!({"type": "Value", "value": "20"}), 1), &[0, 1]);
        assert!(
            report
                .wrong_texts()
                .any(|t| t.contains("total queue length")),
            "{report}"
        );
    }

    #[test]
    fn a_wrong_average_or_minimum_is_named_with_the_expected_number() {
        let report = spec_report(
            &hpa(json!({"type": "AverageValue", "averageValue": "10"}), 1),
            &[0],
        );
        let wrong: Vec<_> = report.wrong_texts().collect();
        assert_eq!(
            wrong,
            [
                "minReplicas is 1: this step wants 0",
                "target averageValue is 10: the dojo wants 20 items per replica"
            ]
        );
    }

    #[test]
    fn quantities_parse_as_the_api_server_writes_them() {
        assert_eq!(quantity(&json!("20")), Some(20.0));
        assert_eq!(quantity(&json!("20000m")), Some(20.0));
        assert_eq!(quantity(&json!(20)), Some(20.0));
        assert_eq!(
            quantity(&json!("-9223372036854775808m")),
            Some(-9223372036854775.808)
        );
        assert_eq!(quantity(&json!("twenty")), None);
    }

    #[test]
    fn the_controllers_refusal_is_explained_and_scaling_disabled_at_zero_is_not_an_error() {
        let refused = json!({"status": {"conditions": [{
            "type": "ScalingActive", "status": "False", "reason": "FailedGetObjectMetric",
            "message": format!("the HPA was unable to compute the replica count: {NEITHER_TARGET}"),
        }]}});
        let mut report = Report::new("hpa");
        check_conditions(&refused, true, &mut report);
        assert!(!report.done());
        assert!(report.hint.unwrap().contains("type: AverageValue"));

        let at_zero = json!({"status": {"conditions": [
            {"type": "ScalingActive", "status": "False", "reason": "ScalingDisabled", "message": "scaling is disabled since the replica count of the target is zero"},
            {"type": "ScaledToZero", "status": "True", "reason": "ScaledToZero"},
        ]}});
        let mut report = Report::new("zero");
        check_conditions(&at_zero, true, &mut report);
        assert!(report.done(), "{report}");
        assert_eq!(scaled_to_zero(&at_zero), Some(true));
        let mut report = Report::new("hpa");
        check_conditions(&at_zero, false, &mut report);
        assert!(!report.done(), "{report}");
    }
}
