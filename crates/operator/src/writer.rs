//! The one writer: every write this operator makes to the API server goes through here — a
//! workload's scale, a QueueScaler's status (server-side apply), an Event — so that one place
//! checks leadership, counts writes, and owns the Event recorder (`events.rs`).
//!
//! ```text
//!  scale target ─┐
//!  pod marks ────┤
//!  status ───────┼─▶ Writer ── gate open? ──yes──▶ API server   ebb_operator_api_writes_total
//!  Events ───────┘              │                                {write, result=written|failed}
//!                               └─no──▶ NotLeading, nothing sent            {result=refused}
//! ```
//!
//! The gate is looked at last thing before each request: a leader that froze past its Lease
//! (SIGSTOP) and resumed must not send what its stopping controller had already decided.

use std::future::Future;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;

use crate::crd::{QueueScaler, QueueScalerStatus};
use crate::error::NotLeading;
use crate::events::EventRecorder;
use crate::gate::Gate;
use crate::metrics::Metrics;
use crate::status::FIELD_MANAGER;

/// Writes scales, statuses and Events while the gate is open; refuses them otherwise.
pub struct Writer {
    /// Built once: it keeps the Events it has recorded, so a repeated Event becomes a count
    /// on the existing one rather than a new object.
    recorder: EventRecorder,
    gate: Gate,
    metrics: Metrics,
}

impl Writer {
    /// A writer through `client`, naming `identity` (`POD_NAME`) as the Events' reporting
    /// instance, gated by `gate`, counting into `metrics`.
    pub fn new(client: Client, identity: Option<String>, gate: Gate, metrics: Metrics) -> Writer {
        Writer {
            recorder: EventRecorder::new(client, FIELD_MANAGER, identity),
            gate,
            metrics,
        }
    }

    /// The gate this writer obeys.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Sets the scale subresource of `name` (in `api`'s namespace and kind) to `replicas`.
    pub async fn scale(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        replicas: u32,
    ) -> crate::Result<()> {
        let patch = json!({ "spec": { "replicas": replicas } });
        self.send("scale", async {
            api.patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(drop)
        })
        .await
    }

    /// Sets (or with `None` values removes) annotations of the pod `name`, by merge patch;
    /// returns the pod as the API server stored it.
    pub async fn pod_annotations(
        &self,
        api: &Api<Pod>,
        name: &str,
        annotations: &serde_json::Map<String, serde_json::Value>,
    ) -> crate::Result<Pod> {
        let patch = json!({ "metadata": { "annotations": annotations } });
        let mut stored = None;
        self.send("pod", async {
            stored = Some(
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?,
            );
            Ok(())
        })
        .await?;
        Ok(stored.expect("a written patch returns the pod"))
    }

    /// Writes `status` to the QueueScaler `name` by server-side apply, owning every field it
    /// sets.
    pub async fn status(
        &self,
        api: &Api<QueueScaler>,
        name: &str,
        status: &QueueScalerStatus,
    ) -> crate::Result<()> {
        let patch = json!({
            "apiVersion": "ebb.dev/v1alpha1",
            "kind": "QueueScaler",
            "status": status,
        });
        self.send("status", async {
            api.patch_status(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map(drop)
        })
        .await
    }

    /// Records a Normal Event about `scaler` (action `Scale`).
    pub async fn event(
        &self,
        scaler: &QueueScaler,
        reason: &str,
        note: String,
    ) -> crate::Result<()> {
        self.send("event", self.recorder.publish(scaler, reason, note))
            .await
    }

    /// Sends `request` if the gate is open, and counts the write by `kind` and result. The
    /// request is a future not yet polled: nothing leaves before the gate is looked at.
    async fn send(
        &self,
        kind: &str,
        request: impl Future<Output = Result<(), kube::Error>>,
    ) -> crate::Result<()> {
        if !self.gate.is_open() {
            self.metrics.write(kind, "refused");
            return Err(NotLeading.into());
        }
        match request.await {
            Ok(()) => {
                self.metrics.write(kind, "written");
                Ok(())
            }
            Err(error) => {
                self.metrics.write(kind, "failed");
                Err(error.into())
            }
        }
    }
}
