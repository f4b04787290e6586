//! Two scalers on one workload fight: each undoes the other's count. The older claim (by
//! creation time, then name) keeps the workload; a newer QueueScaler stays hands-off and
//! says why in its `Conflict` condition. An HPA cannot be told to stay away, so a QueueScaler
//! older than an HPA keeps scaling and reports the HPA.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::ResourceExt;

use crate::crd::{QueueScaler, ScaleTargetRef};

/// Another claim on the same workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// `HorizontalPodAutoscaler default/consumer`.
    pub other: String,
    /// True when the other claim is older: this QueueScaler must not touch the workload.
    pub yields: bool,
}

impl Conflict {
    pub fn message(&self, target: &ScaleTargetRef) -> String {
        let workload = format!("{}/{}", target.kind, target.name);
        if self.yields {
            format!(
                "{} scales {workload} and is older: this QueueScaler leaves it alone until that one is gone",
                self.other
            )
        } else {
            format!(
                "{} also scales {workload}; this QueueScaler is older and keeps scaling it",
                self.other
            )
        }
    }
}

fn group(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

fn same_workload(a: &ScaleTargetRef, api_version: &str, kind: &str, name: &str) -> bool {
    group(&a.api_version) == group(api_version) && a.kind == kind && a.name == name
}

/// The oldest other claim on `me`'s workload, if any.
pub fn find<'a>(
    me: &QueueScaler,
    scalers: impl IntoIterator<Item = &'a QueueScaler>,
    hpas: impl IntoIterator<Item = &'a HorizontalPodAutoscaler>,
) -> Option<Conflict> {
    // Compared by reference: every scaler runs this against every other, each second.
    let namespace = me.metadata.namespace.as_deref();
    let my_name = me.metadata.name.as_deref();
    let target = &me.spec.scale_target_ref;
    let my_claim = (me.creation_timestamp(), me.name_any());
    let mut claims: Vec<((Option<_>, String), String)> = Vec::new();
    for other in scalers {
        let other_target = &other.spec.scale_target_ref;
        if other.metadata.namespace.as_deref() == namespace
            && other.metadata.name.as_deref() != my_name
            && same_workload(
                target,
                &other_target.api_version,
                &other_target.kind,
                &other_target.name,
            )
        {
            claims.push((
                (other.creation_timestamp(), other.name_any()),
                format!(
                    "QueueScaler {}/{}",
                    other.namespace().unwrap_or_default(),
                    other.name_any()
                ),
            ));
        }
    }
    for hpa in hpas {
        let reference = &hpa.spec.scale_target_ref;
        if hpa.metadata.namespace.as_deref() == namespace
            && same_workload(
                target,
                reference.api_version.as_deref().unwrap_or_default(),
                &reference.kind,
                &reference.name,
            )
        {
            claims.push((
                (hpa.creation_timestamp(), hpa.name_any()),
                format!(
                    "HorizontalPodAutoscaler {}/{}",
                    hpa.namespace().unwrap_or_default(),
                    hpa.name_any()
                ),
            ));
        }
    }
    let key = |claim: &(
        Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
        String,
    )| { (claim.0.as_ref().map(|time| time.0), claim.1.clone()) };
    claims.sort_by_key(|(claim, _)| key(claim));
    let (oldest, other) = claims.into_iter().next()?;
    Some(Conflict {
        other,
        yields: key(&oldest) < key(&my_claim),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::autoscaling::v2::{
        CrossVersionObjectReference, HorizontalPodAutoscalerSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn scaler(name: &str, created: i64, target: &str) -> QueueScaler {
        let mut scaler: QueueScaler = serde_json::from_value(serde_json::json!({
            "apiVersion": "ebb.dev/v1alpha1", "kind": "QueueScaler",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                "source": {"redisList": {"redis": {"address": "r:6379"}, "key": "padok"}},
                "targetPerReplica": 20, "minReplicas": 0, "maxReplicas": 20,
                "activationThreshold": 0, "cooldownSeconds": 20, "pollingIntervalSeconds": 1
            }
        }))
        .unwrap();
        scaler.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        scaler
    }

    fn hpa(name: &str, created: i64, target: &str) -> HorizontalPodAutoscaler {
        HorizontalPodAutoscaler {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap())),
                ..Default::default()
            },
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: target.into(),
                },
                max_replicas: 20,
                ..Default::default()
            },
            status: None,
        }
    }

    #[test]
    fn the_older_claim_keeps_the_workload() {
        let (old, new) = (scaler("old", 10, "consumer"), scaler("new", 20, "consumer"));
        let all = [old.clone(), new.clone()];
        let none: [HorizontalPodAutoscaler; 0] = [];
        assert_eq!(
            find(&new, &all, &none),
            Some(Conflict {
                other: "QueueScaler default/old".into(),
                yields: true
            })
        );
        assert_eq!(
            find(&old, &all, &none),
            Some(Conflict {
                other: "QueueScaler default/new".into(),
                yields: false
            })
        );
    }

    #[test]
    fn an_older_hpa_wins_and_other_workloads_do_not_count() {
        let me = scaler("me", 20, "consumer");
        let scalers = [me.clone(), scaler("elsewhere", 1, "producer")];
        let hpas = [
            hpa("consumer", 5, "consumer"),
            hpa("producer", 1, "producer"),
        ];
        let conflict = find(&me, &scalers, &hpas).unwrap();
        assert!(conflict.yields);
        assert!(conflict.message(&me.spec.scale_target_ref).contains(
            "HorizontalPodAutoscaler default/consumer scales Deployment/consumer and is older"
        ));
        assert_eq!(find(&me, &scalers[..1], &hpas[1..]), None);
    }

    #[test]
    fn same_creation_second_falls_back_to_the_name() {
        let (a, b) = (scaler("a", 10, "consumer"), scaler("b", 10, "consumer"));
        let all = [a.clone(), b.clone()];
        let none: [HorizontalPodAutoscaler; 0] = [];
        assert!(find(&b, &all, &none).unwrap().yields);
        assert!(!find(&a, &all, &none).unwrap().yields);
    }
}
