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

/// A count as a Kubernetes quantity string: a whole number is written as is (`20`).
pub fn quantity(count: u64) -> String {
    count.to_string()
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

    #[test]
    fn timestamps_are_rfc3339_seconds() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_780_000_000_500);
        assert_eq!(timestamp(at), "2026-05-28T20:26:40Z");
    }
}
