//! A workload's pods, for a scale-in that chooses which go: read once per scale-in (a LIST
//! by the workload's selector, never on an idle tick), and marked with
//! `controller.kubernetes.io/pod-deletion-cost`, which a ReplicaSet reads when it picks the
//! pods to delete.
//!
//! ```text
//!  Deployment/ReplicaSet ─ spec.selector ─▶ LIST pods ─▶ replicas (name, Ready, marked?)
//!  chosen ─▶ mark (cost, ebb.dev/scale-in) ─▶ read back ─▶ scale patch
//!  others marked by an earlier scale-in ─▶ unmark
//! ```
//!
//! What costs cannot do, and the status says: the ReplicaSet deletes pods that are not
//! Ready before any cost; a StatefulSet ignores costs and removes its highest ordinals; other
//! kinds have their own rules; during a rolling update the Deployment controller removes the
//! old ReplicaSet's pods whatever their cost.

use std::collections::BTreeSet;
use std::sync::Mutex;

use ebb_autoscaler::ScaleInReplicas;
use ebb_scaling::Replica;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{GroupVersionKind, Selector};
use serde_json::{Map, Value};

use crate::writer::Writer;

/// The annotation a ReplicaSet ranks pods by when it deletes some (lower goes first).
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// Beside the cost: this operator set it, so it may take it away again.
pub const CHOSEN: &str = "ebb.dev/scale-in";
/// The cost of a chosen pod: below any a person is likely to set (the default is 0).
pub const CHOSEN_COST: &str = "-1000000";

/// How a workload's kind takes a scale-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindRule {
    /// A ReplicaSet picks the pods: costs apply.
    Costs,
    /// Highest ordinals go: they can be drained, not chosen.
    HighestOrdinals,
    /// Its own rules, unknown here.
    Own,
}

impl KindRule {
    pub fn of(gvk: &GroupVersionKind) -> KindRule {
        match (gvk.group.as_str(), gvk.kind.as_str()) {
            ("apps", "Deployment" | "ReplicaSet") => KindRule::Costs,
            ("apps", "StatefulSet") => KindRule::HighestOrdinals,
            _ => KindRule::Own,
        }
    }

    /// For the ScaleInOrder condition before any scale-in: whether replicas are chosen, why.
    pub fn condition(self, kind: &str) -> (bool, &'static str, String) {
        match self {
            KindRule::Costs => (
                true,
                "DeletionCost",
                format!(
                    "on a scale-in the replicas that go are chosen (idle first) and marked with {DELETION_COST}; not-Ready pods go first anyway, and a rolling update removes old pods whatever their cost"
                ),
            ),
            KindRule::HighestOrdinals => (
                false,
                "HighestOrdinalFirst",
                "a StatefulSet removes its highest ordinals whatever their cost: they are drained first, not chosen".to_owned(),
            ),
            KindRule::Own => (
                false,
                "KindIgnoresCosts",
                format!(
                    "a {kind} picks the replicas it removes by its own rules: the operator only lowers the count"
                ),
            ),
        }
    }
}

/// The pods of one workload, as the last scale-in read them.
pub struct WorkloadPods {
    api: Api<Pod>,
    /// The pods that carry this operator's mark, as last read.
    marked: Mutex<BTreeSet<String>>,
}

impl WorkloadPods {
    pub fn new(api: Api<Pod>) -> WorkloadPods {
        WorkloadPods {
            api,
            marked: Mutex::default(),
        }
    }

    /// The workload's pods that are not already going (no deletionTimestamp).
    pub async fn replicas(&self, workload: &DynamicObject) -> crate::Result<Vec<Replica>> {
        let selector = workload
            .data
            .pointer("/spec/selector")
            .cloned()
            .ok_or(crate::Error::NoSelector)?;
        let selector: LabelSelector =
            serde_json::from_value(selector).map_err(|_| crate::Error::NoSelector)?;
        let selector = Selector::try_from(selector).map_err(|_| crate::Error::NoSelector)?;
        let pods = self
            .api
            .list(&ListParams::default().labels_from(&selector))
            .await?;
        let mut marked = BTreeSet::new();
        let mut replicas = Vec::new();
        for pod in pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            // A pod already going needs no mark, nor its removal.
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let chosen_before = is_marked(&pod);
            if chosen_before {
                marked.insert(name.clone());
            }
            replicas.push(Replica {
                ready: is_ready(&pod),
                marked: chosen_before,
                name,
            });
        }
        *self.marked.lock().unwrap_or_else(|e| e.into_inner()) = marked;
        Ok(replicas)
    }

    /// Marks `chosen` (those not marked yet) and unmarks every other pod this operator
    /// marked; each write read back from the API server's answer. Returns the writes.
    pub async fn order(&self, writer: &Writer, chosen: &[String]) -> crate::Result<u32> {
        let marked = self
            .marked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut writes = 0;
        for name in chosen.iter().filter(|name| !marked.contains(*name)) {
            let stored = writer.pod_annotations(&self.api, name, &mark(true)).await?;
            if !is_marked(&stored) {
                return Err(crate::Error::MarkNotStored { pod: name.clone() });
            }
            writes += 1;
        }
        let stale: Vec<String> = marked
            .iter()
            .filter(|name| !chosen.contains(name))
            .cloned()
            .collect();
        writes += self.unorder(writer, &stale).await?;
        let mut now = self.marked.lock().unwrap_or_else(|e| e.into_inner());
        now.retain(|name| chosen.contains(name));
        now.extend(chosen.iter().cloned());
        Ok(writes)
    }

    /// Removes this operator's mark from those of `pods` that carry it (gone ones skipped).
    pub async fn unorder(&self, writer: &Writer, pods: &[String]) -> crate::Result<u32> {
        let marked = self
            .marked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut writes = 0;
        for name in pods.iter().filter(|name| marked.contains(*name)) {
            match writer.pod_annotations(&self.api, name, &mark(false)).await {
                Ok(_) => writes += 1,
                Err(crate::Error::Kube(kube::Error::Api(status))) if status.code == 404 => {}
                Err(error) => return Err(error),
            }
            self.marked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
        }
        Ok(writes)
    }
}

/// The annotations that mark a pod chosen (`true`) or take the mark away.
fn mark(chosen: bool) -> Map<String, Value> {
    let value = |text: &str| {
        if chosen {
            Value::String(text.to_owned())
        } else {
            Value::Null
        }
    };
    Map::from_iter([
        (DELETION_COST.to_owned(), value(CHOSEN_COST)),
        (CHOSEN.to_owned(), value("chosen")),
    ])
}

fn is_marked(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|annotations| annotations.contains_key(CHOSEN))
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|condition| condition.type_ == "Ready" && condition.status == "True")
        })
}

/// The StatefulSet `name`'s pods that go from `from` to `to` replicas: the highest ordinals.
pub fn highest_ordinals(name: &str, from: u32, to: u32) -> Vec<String> {
    (to..from)
        .rev()
        .map(|ordinal| format!("{name}-{ordinal}"))
        .collect()
}

/// The scale-in's view of a workload that cannot be chosen among.
pub fn unordered(rule: KindRule, kind: &str) -> ScaleInReplicas {
    ScaleInReplicas::Unordered {
        why: rule.condition(kind).2,
    }
}
