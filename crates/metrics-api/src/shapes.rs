//! The JSON shapes of the API, field for field as the upstream Go types of `k8s.io/metrics`
//! (`pkg/apis/custom_metrics/{v1beta1,v1beta2}/types.go`,
//! `pkg/apis/external_metrics/v1beta1/types.go`) write them; discovery and `Status` come from
//! k8s-openapi. `window`/`windowSeconds` is omitted (`omitempty` upstream): a value is one
//! instant read, not an average over a window.

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIResource, APIResourceList, LabelSelector, ListMeta, Status,
};
use serde::Serialize;

pub const CUSTOM_GROUP: &str = "custom.metrics.k8s.io";
pub const EXTERNAL_GROUP: &str = "external.metrics.k8s.io";

/// `v1.ObjectReference` as the custom metrics API fills it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribedObject {
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
    pub api_version: String,
}

/// custom.metrics.k8s.io/v1beta1 `MetricValue`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueV1Beta1 {
    pub described_object: DescribedObject,
    pub metric_name: String,
    pub timestamp: String,
    pub value: String,
    /// No `omitempty` upstream: `null` when the metric has no labels.
    pub selector: Option<LabelSelector>,
}

/// custom.metrics.k8s.io/v1beta2 `MetricIdentifier`.
#[derive(Debug, Clone, Serialize)]
pub struct MetricIdentifier {
    pub name: String,
    pub selector: Option<LabelSelector>,
}

/// custom.metrics.k8s.io/v1beta2 `MetricValue`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueV1Beta2 {
    pub described_object: DescribedObject,
    pub metric: MetricIdentifier,
    pub timestamp: String,
    pub value: String,
}

/// external.metrics.k8s.io/v1beta1 `ExternalMetricValue`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricValue {
    pub metric_name: String,
    pub metric_labels: BTreeMap<String, String>,
    pub timestamp: String,
    pub value: String,
}

/// `MetricValueList` / `ExternalMetricValueList`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueList<Item> {
    pub kind: &'static str,
    pub api_version: String,
    pub metadata: ListMeta,
    pub items: Vec<Item>,
}

/// A `metav1.Time`: RFC 3339, whole seconds, UTC.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A value as a Kubernetes quantity string in its canonical form, as `resource.Quantity`'s
/// `String()` writes a DecimalSI quantity (k8s.io/apimachinery/pkg/api/resource,
/// `CanonicalizeBytes`): precision nano, a finer value rounded up (away from zero); the
/// exponent lowered to a multiple of 3 so the mantissa is whole, and named by its suffix
/// (`n u m "" k M G T P E`): 0.5 → `500m`, 1234.5 → `1234500m`, 1500 → `1500`, 2000 → `2k`.
pub fn quantity(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        // Sources refuse NaN and infinities; 0 for them rather than text no client parses.
        return "0".to_owned();
    }
    // The shortest decimal that reads back as `value` (Rust's Display never uses an exponent).
    let shown = format!("{}", value.abs());
    let (whole, fraction) = shown.split_once('.').unwrap_or((&shown, ""));
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    let mut exponent = (significant.len() - trimmed.len()) as i64 - fraction.len() as i64;
    // At most 17 significant digits: fits in u128 with room for the steps below.
    let mut mantissa: u128 = trimmed.parse().expect("decimal digits");
    if exponent < -9 {
        let drop = (-9 - exponent) as u32;
        mantissa = match 10u128.checked_pow(drop) {
            Some(divisor) => mantissa.div_ceil(divisor),
            None => 1,
        };
        exponent = -9;
        while mantissa.is_multiple_of(10) {
            mantissa /= 10;
            exponent += 1;
        }
    }
    let down = exponent.rem_euclid(3);
    mantissa *= 10u128.pow(down as u32);
    exponent -= down;
    let mut text = if value < 0.0 {
        format!("-{mantissa}")
    } else {
        mantissa.to_string()
    };
    // Past the largest suffix (E, 10^18) the mantissa takes the zeros.
    if exponent > 18 {
        text.push_str(&"0".repeat((exponent - 18) as usize));
        exponent = 18;
    }
    text.push_str(match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        _ => "E",
    });
    text
}

/// The `selector` of an item: its metric labels as `matchLabels`; `None` without labels.
pub fn label_selector(labels: &BTreeMap<String, String>) -> Option<LabelSelector> {
    (!labels.is_empty()).then(|| LabelSelector {
        match_labels: Some(labels.clone()),
        match_expressions: None,
    })
}

/// Discovery of one group-version: `entries` are `(name, namespaced)`; custom metrics are
/// named `<resource>/<metric>`, external ones `<metric>`.
pub fn resource_list(
    group_version: &str,
    kind: &str,
    entries: impl IntoIterator<Item = (String, bool)>,
) -> APIResourceList {
    APIResourceList {
        group_version: group_version.to_owned(),
        resources: entries
            .into_iter()
            .map(|(name, namespaced)| APIResource {
                name,
                namespaced,
                kind: kind.to_owned(),
                verbs: vec!["get".to_owned()],
                singular_name: String::new(),
                ..APIResource::default()
            })
            .collect(),
    }
}

/// A failure as Kubernetes writes it.
pub fn status(code: u16, reason: &str, message: String) -> Status {
    Status {
        code: Some(code.into()),
        message: Some(message),
        reason: Some(reason.to_owned()),
        status: Some("Failure".to_owned()),
        ..Status::default()
    }
}

/// Kind and apiVersion of the objects of a resource (`services`, `deployments.apps`): the
/// common ones by name, others by the usual plural rule.
pub fn described_kind(resource: &str) -> (String, String) {
    let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
    let known = match resource {
        "services" => Some(("Service", "v1")),
        "pods" => Some(("Pod", "v1")),
        "namespaces" => Some(("Namespace", "v1")),
        "nodes" => Some(("Node", "v1")),
        "deployments.apps" => Some(("Deployment", "apps/v1")),
        "statefulsets.apps" => Some(("StatefulSet", "apps/v1")),
        "replicasets.apps" => Some(("ReplicaSet", "apps/v1")),
        "daemonsets.apps" => Some(("DaemonSet", "apps/v1")),
        "jobs.batch" => Some(("Job", "batch/v1")),
        "ingresses.networking.k8s.io" => Some(("Ingress", "networking.k8s.io/v1")),
        _ => None,
    };
    if let Some((kind, api_version)) = known {
        return (kind.to_owned(), api_version.to_owned());
    }
    let singular = plural
        .strip_suffix("ies")
        .map(|stem| format!("{stem}y"))
        .or_else(|| {
            plural
                .strip_suffix("es")
                .filter(|stem| stem.ends_with(['s', 'x']))
                .map(str::to_owned)
        })
        .or_else(|| plural.strip_suffix('s').map(str::to_owned))
        .unwrap_or_else(|| plural.to_owned());
    let mut kind = String::with_capacity(singular.len());
    let mut chars = singular.chars();
    if let Some(first) = chars.next() {
        kind.extend(first.to_uppercase());
        kind.push_str(chars.as_str());
    }
    (
        kind,
        if group.is_empty() {
            "v1".to_owned()
        } else {
            group.to_owned()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_resources() {
        assert_eq!(described_kind("services"), ("Service".into(), "v1".into()));
        assert_eq!(
            described_kind("deployments.apps"),
            ("Deployment".into(), "apps/v1".into())
        );
        assert_eq!(
            described_kind("queues.example.com"),
            ("Queue".into(), "example.com".into())
        );
        assert_eq!(described_kind("policies"), ("Policy".into(), "v1".into()));
    }

    /// Upstream's DecimalSI canonical forms (k8s.io/apimachinery pkg/api/resource
    /// quantity_test.go `TestQuantityString`, commit eed236c), then fractions as PromQL gives
    /// them, checked against `resource.MustParse(text).String()`'s rules: nano precision,
    /// finer values rounded up away from zero.
    #[test]
    fn quantities_are_canonical() {
        for (value, expected) in [
            (1e9, "1G"),
            (1000e6, "1G"),
            (1e-3, "1m"),
            (80e-3, "80m"),
            (1080e-3, "1080m"),
            (108e-2, "1080m"),
            (10800e-4, "1080m"),
            (300e6, "300M"),
            (1e12, "1T"),
            (1234567e6, "1234567M"),
            (3e3, "3k"),
            (0.0, "0"),
            (1e-9, "1n"),
            (80e-9, "80n"),
            (1080e-9, "1080n"),
            (10800e-10, "1080n"),
            (1e-6, "1u"),
            (80e-6, "80u"),
            (1080e-6, "1080u"),
            // Counts and fractions.
            (3.0, "3"),
            (20.0, "20"),
            (100.0, "100"),
            (1500.0, "1500"),
            (2000.0, "2k"),
            (1_000_000.0, "1M"),
            (0.5, "500m"),
            (1234.5, "1234500m"),
            (0.25, "250m"),
            (2.5e-7, "250n"),
            (-0.5, "-500m"),
            (1e18, "1E"),
            (1e21, "1000E"),
            // Finer than nano: rounded up (0.1n is 1n, as upstream's `0.1m` is `1m` at milli).
            (1e-10, "1n"),
            (1.0000000001, "1000000001n"),
            (0.1 + 0.2, "300000001n"),
            (-1e-10, "-1n"),
        ] {
            assert_eq!(quantity(value), expected, "{value}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_seconds() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_780_000_000_500);
        assert_eq!(timestamp(at), "2026-05-28T20:26:40Z");
    }
}
